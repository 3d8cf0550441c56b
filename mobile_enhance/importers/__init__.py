"""The authors' published models as run folders: ``mobile-enhance import``.

An importer reads one published format and maps it onto a model card; the result is a run
folder like any training run's (``config.json``, a checkpoint, ``generator.weights.h5``),
which export, bench, enhance, evaluate and ``train --init_from`` take. The run's config
names the source file and its sha256 under ``imported`` and has no data source.

:data:`IMPORTERS` is the table of known formats (a registry at the user boundary: an
unknown ``--format`` lists them). Adding a format is one reader module and one row.

The weights themselves are never part of this project: they are read from where the user
puts them (see the README for where the authors publish them).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Callable

from mobile_enhance.errors import UnknownNameError, UserError


class ImportError_(UserError):  # noqa: N801 - not the builtin ImportError
    """A source that cannot be imported; the message names the file (and the variable)."""


@dataclasses.dataclass(frozen=True)
class Importer:
    """One published format.

    Attributes:
      name: ``--format`` value.
      card: the registry name of the model it maps onto.
      model_kwargs: builder arguments that reproduce the authors' graph.
      read: ``(source_path) -> {layer name: [weights in Keras order]}``; errors name the
        source and the source's own variable names.
      files: ``(source_path) -> [files]`` whose bytes the sha256 covers.
      describe: one line for ``--help`` and errors.
    """

    name: str
    card: str
    model_kwargs: dict
    read: Callable
    files: Callable
    describe: str


def _importers() -> dict:
    from mobile_enhance.importers import dped_tf1, enhancenet_tf

    rows = (dped_tf1.IMPORTER, enhancenet_tf.IMPORTER)
    return {row.name: row for row in rows}


#: The known formats (filled on first use; the readers import TensorFlow).
IMPORTERS: dict[str, Importer] = {}


def get_importer(name: str) -> Importer:
    """Row ``name`` of the table; an unknown name lists the known ones."""
    if not IMPORTERS:
        IMPORTERS.update(_importers())
    try:
        return IMPORTERS[name]
    except KeyError:
        raise UnknownNameError("import format", name, IMPORTERS) from None


def format_names() -> list[str]:
    if not IMPORTERS:
        IMPORTERS.update(_importers())
    return sorted(IMPORTERS)


def first_line(error: Exception) -> str:
    """The first line of an error's text (at most 200 characters), or its type's name."""
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__


def checked_checkpoint(path: str, shapes: dict, network: str, name, unreadable=None, damaged: str = "the file is damaged"):
    """Open the TF checkpoint at ``path`` and check that it holds every variable of
    ``shapes`` (``{variable: shape}``) with that shape; return ``tensor(variable) -> array``.

    Errors name ``name`` (the source as the user gave it; ``unreadable`` where a file that
    is not a checkpoint should be named instead), the source's variable and ``network``'s
    expectation; a variable that cannot be read says ``damaged``.
    """
    from mobile_enhance.compat import tf

    try:
        reader = tf.train.load_checkpoint(path)
        found = reader.get_variable_to_shape_map()
    except Exception as error:  # noqa: BLE001 - any failure to parse means not a checkpoint
        raise ImportError_(f"{unreadable or name}: not a TF checkpoint ({first_line(error)})") from None
    missing = [v for v in shapes if v not in found]
    if missing:
        generator = sorted(v for v in found if v.startswith("generator/"))
        raise ImportError_(
            f"{name}: variable {missing[0]} is missing ({len(missing)} of {network}'s {len(shapes)} generator variables "
            f"absent, {len(generator)} generator variables found): not a{'n' if network[0] in 'AEIOU' else ''} {network} generator checkpoint"
        )
    for variable, shape in shapes.items():
        if list(found[variable]) != shape:
            raise ImportError_(f"{name}: variable {variable} has shape {list(found[variable])}, {network}'s generator has {shape}")

    def tensor(variable):
        try:
            return reader.get_tensor(variable)
        except Exception as error:  # noqa: BLE001 - a damaged data file
            raise ImportError_(f"{name}: variable {variable} cannot be read ({first_line(error)}); {damaged}") from None

    return tensor


def sha256_of(files) -> str:
    digest = hashlib.sha256()
    for path in files:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def import_weights(fmt: str, source, run_dir) -> dict:
    """Import ``source`` (format ``fmt``) into a new run folder ``run_dir``.

    Returns ``{"run_dir", "model", "model_kwargs", "imported"}``.

    Raises:
      UserError: an unknown format, a ``run_dir`` that exists and is not empty, a source
        that is missing, not of the format, of another network or damaged (named, with the
        variable); nothing is left in ``run_dir`` then.
    """
    from mobile_enhance.compat import tf
    from mobile_enhance.fileio import atomic_path
    from mobile_enhance.models import build_model
    from mobile_enhance.training import TrainConfig

    importer = get_importer(fmt)
    run_dir = Path(run_dir)
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise UserError(f"{run_dir} already exists and is not empty; choose a new --run_dir")
    weights = importer.read(source)
    model = build_model(importer.card, **importer.model_kwargs)
    for layer in model.layers:
        if layer.weights:
            if layer.name not in weights:
                raise ImportError_(f"{source}: the {fmt} reader gave no weights for layer {layer.name}")
            layer.set_weights(weights.pop(layer.name))
    if weights:
        raise ImportError_(f"{source}: weights for layers the {importer.card} model does not have: {', '.join(sorted(weights))}")
    files = importer.files(source)
    imported = {"format": fmt, "source": str(source), "files": [str(f) for f in files], "sha256": sha256_of(files)}
    config = TrainConfig(model=importer.card, model_kwargs=dict(importer.model_kwargs), steps=1, imported=imported)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(run_dir, is_dir=True) as tmp:
        step = tf.Variable(0, dtype=tf.int64, name="step")
        ckpt = tmp / "checkpoints" / "ckpt-00000000"
        ckpt.mkdir(parents=True)
        tf.train.Checkpoint(generator=model, step=step).write(str(ckpt / "ckpt"))
        (tmp / "checkpoints" / "latest").write_text("ckpt-00000000\n")
        model.save_weights(str(tmp / "generator.weights.h5"))
        (tmp / "config.json").write_text(json.dumps(config.to_json(), indent=2) + "\n")
    return {"run_dir": run_dir, "model": importer.card, "model_kwargs": dict(importer.model_kwargs), "imported": imported}


__all__ = ["IMPORTERS", "Importer", "ImportError_", "format_names", "get_importer", "import_weights"]
