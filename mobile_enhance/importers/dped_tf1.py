"""DPED's published generators (aiff22/DPED ``models_orig/<phone>_orig``): TF1 checkpoints.

Layout (name-based, read with ``tf.train.load_checkpoint``): the conv kernels
``generator/W1`` .. ``W12`` (HWIO) and biases ``generator/b1`` .. ``b12`` in graph order
(``W1`` the 9x9 entry, ``W2``-``W9`` the residual blocks, ``W10``, ``W11`` the two 3x3
convs, ``W12`` the 9x9 exit), and the eight instance norms' shift and scale as
``generator/Variable``, ``Variable_1`` .. ``Variable_15``, shift then scale, in graph order.
The authors' graph ends in ``tanh(x) * 0.58 + 0.5``: the ``dped`` card with
``output_scale=0.58``.
"""

from __future__ import annotations

from pathlib import Path

from mobile_enhance.importers import Importer, ImportError_, checked_checkpoint

#: Our conv layers in the authors' W/b order, and our instance norms in their order.
CONVS = ["conv1"] + [f"block{b}_conv{i}" for b in range(1, 5) for i in (1, 2)] + ["conv6", "conv7", "conv_out"]
NORMS = [f"block{b}_in{i}" for b in range(1, 5) for i in (1, 2)]


def _shapes() -> dict:
    shapes = {}
    for k, _ in enumerate(CONVS, start=1):
        cin = 3 if k == 1 else 64
        cout = 3 if k == 12 else 64
        size = 9 if k in (1, 12) else 3
        shapes[f"generator/W{k}"] = [size, size, cin, cout]
        shapes[f"generator/b{k}"] = [cout]
    for j in range(16):
        shapes["generator/Variable" + (f"_{j}" if j else "")] = [64]
    return shapes


#: Every variable of the authors' generator and its shape.
SHAPES = _shapes()


def _files(prefix) -> list[Path]:
    prefix = Path(str(prefix))
    return [prefix.with_name(prefix.name + ".index")] + sorted(prefix.parent.glob(prefix.name + ".data-*"))


def read(prefix) -> dict:
    """``{layer name: [kernel, bias] or [gamma, beta]}`` for the ``dped`` card from checkpoint ``prefix``."""
    prefix = str(prefix)
    if prefix.endswith(".index"):
        prefix = prefix[: -len(".index")]
    index = Path(prefix + ".index")
    if not index.is_file():
        raise ImportError_(f"{prefix}: no TF1 checkpoint there (no {index.name}); pass the prefix, e.g. models_orig/iphone_orig")
    if not list(Path(prefix).parent.glob(Path(prefix).name + ".data-*")):
        raise ImportError_(f"{prefix}: the checkpoint has no data file ({Path(prefix).name}.data-00000-of-00001)")
    tensor = checked_checkpoint(prefix, SHAPES, "DPED", prefix, unreadable=index, damaged="the data file is damaged")
    weights = {layer: [tensor(f"generator/W{k}"), tensor(f"generator/b{k}")] for k, layer in enumerate(CONVS, start=1)}
    for i, layer in enumerate(NORMS):
        shift = tensor("generator/Variable" + (f"_{2 * i}" if i else ""))
        scale = tensor(f"generator/Variable_{2 * i + 1}")
        weights[layer] = [scale, shift]  # our instance norm holds gamma (scale), then beta (shift)
    return weights


IMPORTER = Importer(
    name="dped_tf1",
    card="dped",
    model_kwargs={"output_scale": 0.58},
    read=read,
    files=_files,
    describe="DPED's published generators (aiff22/DPED models_orig/<phone>_orig: TF1 checkpoint prefix)",
)
