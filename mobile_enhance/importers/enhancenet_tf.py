"""EnhanceNet's released generator (msmsajjadi/EnhanceNet-Code, the file ``weights``).

The file is a TF 0.12 single-file (V1) Saver checkpoint of ENet-PAT, read here with
``tf.train.load_checkpoint`` (a V2 prefix, ``NAME.index`` + ``NAME.data-*``, with the same
variables is read too). Its 50 variables are the 25 convolutions of the authors'
``tf.contrib.layers.convolution2d`` calls, named in creation order: ``generator/Conv`` (the
entry conv), ``generator/Conv_1`` .. ``Conv_20`` (the ten residual blocks, two each),
``Conv_21`` and ``Conv_22`` (after the two nearest-neighbour upsamplings), ``Conv_23`` and
``Conv_24`` (64 to 3, the residual), each ``/weights`` (HWIO, Keras' layout) and
``/biases``. The authors' graph does not clip its output: the ``enhancenet`` card with
``clip=False``.

The weights are CC BY-NC-ND 4.0: the project reads them from where the user puts them and
never ships them or anything converted from them.
"""

from __future__ import annotations

from pathlib import Path

from mobile_enhance.importers import Importer, ImportError_, checked_checkpoint

#: Our conv layers in the order of the authors' ``Conv``, ``Conv_1`` .. ``Conv_24``.
CONVS = ["conv_in"] + [f"res{b}_conv{i}" for b in range(1, 11) for i in (1, 2)] + ["up1_conv", "up2_conv", "conv_post", "conv_out"]


def _scope(k: int) -> str:
    return "generator/Conv" + (f"_{k}" if k else "")


def _shapes() -> dict:
    shapes = {}
    for k, _ in enumerate(CONVS):
        cin = 3 if k == 0 else 64
        cout = 3 if k == len(CONVS) - 1 else 64
        shapes[_scope(k) + "/weights"] = [3, 3, cin, cout]
        shapes[_scope(k) + "/biases"] = [cout]
    return shapes


#: Every variable of the authors' generator and its shape.
SHAPES = _shapes()


def _v2_prefix(source: Path) -> Path | None:
    """The prefix of a V2 checkpoint ``source`` names (the prefix or its ``.index``), else None."""
    prefix = source.with_name(source.name[: -len(".index")]) if source.name.endswith(".index") else source
    return prefix if prefix.with_name(prefix.name + ".index").is_file() else None


def _files(source) -> list[Path]:
    source = Path(str(source))
    prefix = _v2_prefix(source)
    if prefix is None:
        return [source]
    return [prefix.with_name(prefix.name + ".index")] + sorted(prefix.parent.glob(prefix.name + ".data-*"))


def read(source) -> dict:
    """``{layer name: [kernel, bias]}`` for the ``enhancenet`` card from checkpoint ``source``."""
    path = Path(str(source))
    prefix = _v2_prefix(path)
    if prefix is None and path.is_dir():
        raise ImportError_(f"{source}: a folder; pass the checkpoint file itself (EnhanceNet-Code's 'weights')")
    if prefix is None and not path.is_file():
        raise ImportError_(f"{source}: no such file; pass EnhanceNet's checkpoint (the file 'weights' of msmsajjadi/EnhanceNet-Code)")
    where = str(prefix) if prefix is not None else str(path)
    tensor = checked_checkpoint(where, SHAPES, "EnhanceNet", source)
    return {layer: [tensor(_scope(k) + "/weights"), tensor(_scope(k) + "/biases")] for k, layer in enumerate(CONVS)}


IMPORTER = Importer(
    name="enhancenet_tf",
    card="enhancenet",
    model_kwargs={"clip": False, "bicubic": "legacy"},
    read=read,
    files=_files,
    describe="EnhanceNet's released ENet-PAT generator (msmsajjadi/EnhanceNet-Code 'weights': TF V1 checkpoint file)",
)
