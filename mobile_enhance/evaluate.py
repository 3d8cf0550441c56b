"""Fidelity of exported and trained models on held-out pairs: the API behind
``mobile-enhance evaluate``.

For every pair ``(phone photo, target)`` each system's output is compared with the
target by PSNR (dB, peak 1.0), SSIM (as ``tf.image.ssim``) and MS-SSIM (as
:func:`mobile_enhance.losses.functions.ms_ssim_value`), through
:func:`mobile_enhance.metrics.image_metrics` (numpy and scipy; scoring a ``.tflite``
file imports no TensorFlow); the unprocessed input is scored the same way, as the row to
beat. Figures are means over the pairs.

Super-resolution: when the systems upscale ``s`` times (``s > 1``: a ``.tflite`` file's
:attr:`~mobile_enhance.enhance.pipeline.TFLiteModel.upscale`, a run folder's model card),
each pair is ``(low-resolution input, high-resolution target)`` with the target exactly
``s`` times the input on each side, and the row to beat is ``bicubic xS``: the input,
rounded to 8 bits, upsampled to the target's size by PIL's bicubic resize (as
:meth:`mobile_enhance.data.sources.SRSource.make_pair` makes its inputs), in place of
the unprocessed input, which cannot be scored against a larger target. All systems of
one evaluation share one upscale.

Systems:
  * a ``.tflite`` file (:class:`mobile_enhance.enhance.pipeline.TFLiteModel`): a
    dynamic-size file runs on the whole image, reflect-padded up to its size multiple and
    cropped back (DPED's 100x100 patches become 128x128 for a model needing multiples of
    32); a fixed-size file is tiled at its size (a smaller image is reflect-padded up to
    it). Float and quantized files are listed side by side.
  * a training run folder (:func:`mobile_enhance.training.load_generator`): the Keras
    generator, padded and cropped the same way (the only system that imports TensorFlow).
  With ``tile`` both are tiled instead of run whole (for large pairs).

Data: ``dped:ROOT`` with a phone uses ``ROOT/<phone>/test_data/patches/{<phone>,canon}/``
(DPED's test patches; the training data need not be there); ``pairs:IN,TARGET`` any two
folders of aligned images paired by file name (for super-resolution, ``IN`` holds the
low-resolution images). Pairs are taken in natural name order, the first ``limit`` of
them. Unreadable or misaligned pairs (a target not the input's size, or not ``s`` times
it) are skipped, each with one line naming the files and their sizes, and counted in
the report.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path
from typing import Callable

import numpy as np

from mobile_enhance.data.images import BadImageError, list_images, read_image
from mobile_enhance.data.sources import PHONES, DataError, _match_pairs
from mobile_enhance.enhance.tiling import enhance_tiled
from mobile_enhance.errors import UserError
from mobile_enhance.fileio import atomic_write_text

METRICS = ("psnr", "ssim", "ms_ssim")
#: Smallest side the metrics accept (SSIM's 11x11 window, as in ``tf.image.ssim``).
MIN_SIDE = 11
METRICS_NOTE = (
    "PSNR in dB (peak 1.0), SSIM (as tf.image.ssim), MS-SSIM (as mobile_enhance.losses.functions.ms_ssim_value); "
    "means over pairs; outputs clipped to [0, 1]"
)


@dataclasses.dataclass
class System:
    """One thing scored: the unprocessed input, its bicubic upsampling, a ``.tflite`` file
    or a Keras generator.

    Attributes:
      name: row label (file or folder name; ``input``; ``bicubic xS``).
      kind: ``input``, ``bicubic``, ``tflite`` or ``keras``.
      info: what to report about it (path, quantization, size, size multiple, upscale, ...).
      run: ``(H, W, 3)`` float32 in [0, 1] -> ``(sH, sW, 3)``; ``None`` for the input row.
      padding: ``"HxW -> H'xW'"`` -> number of images padded so (or tiled, for fixed sizes).
      upscale: ``s``, output side / input side.
    """

    name: str
    kind: str
    info: dict
    run: Callable[[np.ndarray], np.ndarray] | None = None
    padding: Counter = dataclasses.field(default_factory=Counter)
    upscale: int = 1


def load_pairs(spec: str, phone: str = "iphone", limit: int | None = None) -> tuple[list[tuple[Path, Path]], str]:
    """``(pairs, description)`` for ``dped:ROOT`` or ``pairs:IN,TARGET``.

    Raises:
      DataError: a missing folder or layout, naming the path expected.
    """
    kind, sep, rest = str(spec).partition(":")
    if not sep or not rest:
        raise DataError(f"--data must be dped:ROOT or pairs:IN_DIR,TARGET_DIR, got {spec!r}")
    if kind == "dped":
        if phone not in PHONES:
            raise DataError(f"unknown DPED phone {phone!r}; DPED phones: {', '.join(PHONES)}")
        root = Path(rest)
        patches = root / phone / "test_data" / "patches"
        if not root.is_dir():
            raise DataError(f"{root}: no such folder (expected a DPED tree: {patches}/{{{phone},canon}}/)")
        for sub in (phone, "canon"):
            if not (patches / sub).is_dir():
                raise DataError(f"{patches / sub}: missing (DPED test patches live in {patches}/{{{phone},canon}}/)")
        pairs = _match_pairs(list_images(patches / phone), list_images(patches / "canon"), str(patches))
        where = f"dped:{root} ({phone} test patches)"
    elif kind == "pairs":
        parts = rest.split(",")
        if len(parts) != 2 or not all(parts):
            raise DataError(f"pairs data is pairs:IN_DIR,TARGET_DIR, got {spec!r}")
        for folder in parts:
            if not Path(folder).is_dir():
                raise DataError(f"{folder}: no such folder")
        pairs = _match_pairs(list_images(parts[0]), list_images(parts[1]), f"{parts[0]} , {parts[1]}")
        where = f"pairs:{parts[0]},{parts[1]}"
    else:
        raise DataError(f"unknown evaluation data kind {kind!r}; known: dped, pairs")
    if limit is not None:
        if limit < 1:
            raise DataError(f"--limit must be >= 1, got {limit}")
        pairs = pairs[:limit]
    return pairs, where


def _size(h: int, w: int) -> str:
    return f"{h}x{w}"


def tflite_system(path, num_threads: int | None = None, tile: int | None = None) -> System:
    """A ``.tflite`` file as a :class:`System` (whole image unless ``tile``)."""
    from mobile_enhance.enhance.pipeline import TFLiteModel

    model = TFLiteModel(path, num_threads=num_threads)
    tile = tile if tile and model.dynamic else None  # a fixed-size file is always tiled at its size
    if tile:
        if tile % model.multiple[0]:
            raise UserError(f"--tile {tile} is not a multiple of {model.path.name}'s size multiple {model.multiple[0]}")
        model.tile, model.overlap = (tile, tile), min(model.overlap, tile // 4)
    info = {
        "path": str(model.path),
        "quant": model.quant,
        "size": "dynamic" if model.dynamic else _size(*model.tile),
        "size_multiple": model.multiple[0] if model.multiple[0] == model.multiple[1] else list(model.multiple),
        "size_multiple_from": model.multiple_from,
        "upscale": model.upscale,
        "run_as": (f"tiles of {_size(*model.tile)}, overlap {model.overlap}" if (tile or not model.dynamic) else "whole image"),
    }
    if model.contract.warning:  # no sidecar: the contract was read from the file
        info["warning"] = model.contract.warning
    system = System(Path(path).name, "tflite", info, upscale=model.upscale)

    def run(image):
        h, w = image.shape[:2]
        if model.dynamic and not tile:
            window = model.whole_image_tile(h, w)
            if window != (h, w):
                system.padding[f"{_size(h, w)} -> {_size(*window)}"] += 1
            return model.enhance(image, tile=window, overlap=0)
        if (h, w) != tuple(model.tile):
            system.padding[f"{_size(h, w)} -> tiles of {_size(*model.tile)}"] += 1
        return model.enhance(image)

    system.run = run
    return system


def keras_system(run_dir, tile: int | None = None, overlap: int = 32) -> System:
    """The generator of a training run folder as a :class:`System` (imports TensorFlow)."""
    from mobile_enhance.models import get_card
    from mobile_enhance.training import load_generator

    model, config = load_generator(run_dir)
    card = get_card(config.model)
    multiple, upscale = card.size_multiple, card.upscale
    if tile and tile % multiple:
        raise UserError(f"--tile {tile} is not a multiple of {config.model}'s size multiple {multiple}")
    info = {
        "path": str(run_dir),
        "quant": "float32 (Keras)",
        "model": config.model,
        "size": "dynamic",
        "size_multiple": multiple,
        "size_multiple_from": "model registry",
        "upscale": upscale,
        "run_as": f"tiles of {tile}x{tile}, overlap {min(overlap, tile // 4)}" if tile else "whole image",
    }
    system = System(Path(run_dir).name or str(run_dir), "keras", info, upscale=upscale)

    def forward(batch):
        return model(batch, training=False).numpy()

    def run(image):
        h, w = image.shape[:2]
        if tile:
            return enhance_tiled(forward, image, tile=tile, overlap=min(overlap, tile // 4), multiple=multiple, upscale=upscale)
        window = (-(-h // multiple) * multiple, -(-w // multiple) * multiple)
        if window != (h, w):
            system.padding[f"{_size(h, w)} -> {_size(*window)}"] += 1
        return enhance_tiled(forward, image, tile=window, overlap=0, multiple=multiple, upscale=upscale)

    system.run = run
    return system


def bicubic_system(upscale: int) -> System:
    """The row to beat for ``upscale``-times super-resolution: the input rounded to 8 bits
    and upsampled by PIL's bicubic resize (``SRSource.make_pair``'s convention)."""
    from mobile_enhance.data.images import bicubic_upscale

    def run(image):
        return bicubic_upscale(np.clip(image, 0.0, 1.0), upscale)

    what = f"the input upsampled x{upscale} by PIL bicubic (8-bit)"
    return System(f"bicubic x{upscale}", "bicubic", {"what": what, "upscale": upscale}, run=run, upscale=upscale)


def common_upscale(systems: list[System]) -> int:
    """The one upscale all ``systems`` share.

    Raises:
      UserError: systems that upscale differently (one evaluation scores one upscale).
    """
    ups = {s.upscale for s in systems}
    if len(ups) > 1:
        listed = ", ".join(f"{s.name} x{s.upscale}" for s in systems)
        raise UserError(f"the models upscale differently ({listed}); evaluate models of one upscale at a time")
    return ups.pop() if ups else 1


def _check_pair(x: np.ndarray, y: np.ndarray, a_path, b_path, s: int) -> None:
    """Raise :class:`BadImageError` (one line naming both files) unless ``y`` is ``s`` times ``x``."""
    (h, w), (th, tw) = x.shape[:2], y.shape[:2]
    if s == 1:
        if x.shape != y.shape:
            raise BadImageError(f"{a_path} / {b_path}: input is {w}x{h} but target is {tw}x{th}")
        if min(h, w) < MIN_SIDE:
            raise BadImageError(f"{a_path}: {w}x{h} is too small to score (SSIM needs {MIN_SIDE}x{MIN_SIDE})")
        return
    if (th, tw) != (s * h, s * w) or x.shape[2:] != y.shape[2:]:
        raise BadImageError(f"{a_path} / {b_path}: input is {w}x{h} and target {tw}x{th}, "
                            f"but the models upscale x{s} (target should be {s * w}x{s * h})")
    if min(th, tw) < MIN_SIDE:
        raise BadImageError(f"{b_path}: {tw}x{th} is too small to score (SSIM needs {MIN_SIDE}x{MIN_SIDE})")


def _other_upscale(x: np.ndarray, y: np.ndarray, a_path, b_path, s: int, systems) -> str | None:
    """One line when a pair is of another kind than the models (its target an integer
    ``k != s`` times its input, both sides): the whole set is then, and scoring it pair by
    pair would only skip every pair."""
    (h, w), (th, tw) = x.shape[:2], y.shape[:2]
    if th % h or tw % w or th // h != tw // w or th // h == s:
        return None
    k = th // h
    names = ", ".join(system.name for system in systems)
    kind = "same-size pairs" if k == 1 else f"x{k} pairs"
    need = ("same-size pairs (pairs:IN,TARGET or dped:)" if s == 1
            else f"pairs whose targets are {s}x their inputs (pairs:LR_DIR,HR_DIR)")
    return (f"{a_path} / {b_path}: {kind} ({w}x{h} -> {tw}x{th}), but {names} upscale{'s' if len(systems) == 1 else ''} "
            f"x{s}: give {need}")


def _unique_names(systems: list[System]) -> None:
    counts = Counter(s.name for s in systems)
    for s in systems:
        if counts[s.name] > 1:
            s.name = s.info.get("path", s.name)


class _Totals:
    """Running sums of per-image metrics, fed a chunk of same-size images at a time."""

    def __init__(self, names):
        self.sums = {n: dict.fromkeys(METRICS, 0.0) for n in names}
        self.count = 0

    def add(self, outputs: dict, targets: list):
        from mobile_enhance.metrics import image_metrics

        n = len(targets)
        target = np.stack(targets)
        for name, images in outputs.items():
            means = image_metrics(np.stack(images), target)
            for k in METRICS:
                self.sums[name][k] += means[k] * n
        self.count += n

    def means(self, name):
        return {k: (self.sums[name][k] / self.count if self.count else None) for k in METRICS}


def evaluate(
    systems: list[System],
    pairs: list[tuple[Path, Path]],
    chunk: int = 32,
    on_pair: Callable[[int, int, str | None], None] | None = None,
) -> dict:
    """Score ``systems`` (plus the unprocessed input, or for super-resolution its bicubic
    upsampling) on ``pairs``; returns the report dict.

    ``on_pair(done, total, error)`` is called after each pair (``error``: one line naming
    the files of a skipped pair, else ``None``).

    Raises:
      UserError: systems of different upscales; a first pair whose target is another whole
        multiple of its input than the models' upscale (a set of the wrong kind).
    """
    models = list(systems)
    s = common_upscale(systems)
    baseline = System("input", "input", {"what": "the unprocessed phone photo"}) if s == 1 else bicubic_system(s)
    systems = [baseline, *systems]
    _unique_names(systems)
    totals = _Totals([s.name for s in systems])
    buffers: dict = {}  # target (h, w) -> {"target": [...], name: [...]}
    skipped, sizes = [], Counter()

    def flush(key):
        buf = buffers.pop(key)
        targets = buf.pop("target")
        totals.add(buf, targets)

    for i, (a_path, b_path) in enumerate(pairs):
        error = None
        try:
            x, y = read_image(a_path), read_image(b_path)
            if not totals.count and not buffers:  # the first pair read decides whether the set fits at all
                wrong = _other_upscale(x, y, a_path, b_path, s, models)
                if wrong:
                    raise UserError(wrong)
            _check_pair(x, y, a_path, b_path, s)
        except BadImageError as failure:
            error = str(failure)
            skipped.append(error)
        else:
            key = y.shape[:2]
            sizes[_size(*key) if s == 1 else f"{_size(*x.shape[:2])} -> {_size(*key)}"] += 1
            buf = buffers.setdefault(key, {"target": []})
            buf["target"].append(y)
            for system in systems:
                buf.setdefault(system.name, []).append(x if system.run is None else np.asarray(system.run(x), np.float32))
            if len(buf["target"]) >= chunk:
                flush(key)
        if on_pair:
            on_pair(i + 1, len(pairs), error)
    for key in list(buffers):
        flush(key)
    results = []
    for system in systems:
        row = {"name": system.name, "kind": system.kind, **system.info, **totals.means(system.name)}
        if system.padding:
            row["padding"] = dict(system.padding)
        results.append(row)
    return {
        "upscale": s,
        "pairs_evaluated": totals.count,
        "pairs_skipped": len(skipped),
        "skipped": skipped,
        "image_sizes": dict(sizes),
        "metrics": METRICS_NOTE,
        "results": results,
    }


def padding_notes(report: dict) -> list[str]:
    """One line per system whose inputs were padded or tiled, saying how."""
    notes = []
    for row in report["results"]:
        for change, n in row.get("padding", {}).items():
            how = "tiled" if "tiles" in change else "reflect-padded and cropped back"
            why = f"size multiple {row['size_multiple']}" if "tiles" not in change else f"fixed {row['size']} input"
            notes.append(f"{row['name']}: {n} image{'s' if n != 1 else ''} {change} ({how}; {why})")
    return notes


def format_table(report: dict) -> str:
    """The report as a fixed-width text table in input order, the row to beat first (the
    input; ``bicubic xS`` for super-resolution, its column ``vs bicubic``), with notes."""

    def num(v, fmt):
        return "-" if v is None else format(v, fmt)

    first = report["results"][0]
    base = first["psnr"]
    header = ["system", "kind", "quant", "PSNR dB", "vs bicubic" if first["kind"] == "bicubic" else "vs input", "SSIM", "MS-SSIM"]
    rows = []
    for r in report["results"]:
        gain = None if r["psnr"] is None or base is None or r is first else r["psnr"] - base
        rows.append([
            r["name"],
            r["kind"],
            r.get("quant", "-"),
            num(r["psnr"], ".2f"),
            "-" if gain is None else f"{gain:+.2f}",
            num(r["ssim"], ".4f"),
            num(r["ms_ssim"], ".4f"),
        ])
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) if i < 3 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths)))]
    lines += ["  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))) for row in rows]
    lines.append(f"{report['pairs_evaluated']} pairs from {report.get('data', '?')}"
                 + (f"; {report['pairs_skipped']} skipped" if report["pairs_skipped"] else ""))
    lines += padding_notes(report)
    return "\n".join(lines)


def write_json(report: dict, path) -> None:
    """Write ``report`` to ``path`` atomically (temporary file beside it, then rename)."""
    path = Path(path)
    try:
        atomic_write_text(path, json.dumps(report, indent=2) + "\n")
    except OSError as error:
        raise UserError(f"{path}: cannot write the report ({error.strerror or error})") from None


__all__ = [
    "System", "bicubic_system", "common_upscale", "evaluate", "format_table", "keras_system", "load_pairs",
    "padding_notes", "tflite_system", "write_json",
]
