"""Enhancement models: one file per architecture, one registry at the user boundary.

``build_model(name, ...)`` is where a model name from the user arrives; everything
inside the package calls the builder functions directly.

Every generator maps ``(N, H, W, 3)`` float32 in [0, 1] to ``(N, H, W, 3)`` float32 in
[0, 1]; H and W must be multiples of ``ModelInfo.size_multiple``.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from mobile_enhance.errors import InputSizeError, UnknownNameError
from mobile_enhance.models import dped, fast_dped, muxdemux, rsgunet, srcnn
from mobile_enhance.models.layers import custom_objects


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about a model.

    Attributes:
      name: registry name, as typed on the command line.
      builder: function ``(input_shape=(None, None, 3), **kwargs) -> keras.Model``.
      paper: short citation of the paper the architecture follows.
      size_multiple: H and W must be multiples of this (product of the strides).
    """

    name: str
    builder: Callable
    paper: str
    size_multiple: int


MODELS: dict[str, ModelInfo] = {
    info.name: info
    for info in (
        ModelInfo("dped", dped.dped_generator, dped.PAPER, dped.SIZE_MULTIPLE),
        ModelInfo("fast_dped", fast_dped.fast_dped_generator, fast_dped.PAPER, fast_dped.SIZE_MULTIPLE),
        ModelInfo("rsgunet", rsgunet.rsgunet_generator, rsgunet.PAPER, rsgunet.SIZE_MULTIPLE),
        ModelInfo("muxdemux", muxdemux.muxdemux_generator, muxdemux.PAPER, muxdemux.SIZE_MULTIPLE),
        ModelInfo("srcnn", srcnn.srcnn_generator, srcnn.PAPER, srcnn.SIZE_MULTIPLE),
    )
}


def get_model_info(name: str) -> ModelInfo:
    """Registry entry for ``name``; an unknown name raises an error listing the known ones."""
    try:
        return MODELS[name]
    except KeyError:
        raise UnknownNameError("model", name, MODELS) from None


def check_input_size(name: str, height, width) -> None:
    """Raise :class:`InputSizeError` unless ``height x width`` fits model ``name``'s strides."""
    multiple = get_model_info(name).size_multiple
    bad = [d for d in (height, width) if d is not None and (int(d) <= 0 or int(d) % multiple)]
    if bad:
        def near(d):
            lo = max(multiple, int(d) // multiple * multiple)
            return f"{lo} or {lo + multiple}" if lo != d else str(lo)

        raise InputSizeError(
            f"model {name!r} needs height and width that are multiples of {multiple}; "
            f"got {height}x{width} (use {near(height)} x {near(width)}, or pad/crop the image)"
        )


def padded_size(name: str, height: int, width: int) -> tuple[int, int]:
    """The smallest size >= ``height x width`` that model ``name`` takes (pad to it)."""
    m = get_model_info(name).size_multiple
    return -(-int(height) // m) * m, -(-int(width) // m) * m


def build_model(name: str, input_shape=(None, None, 3), **kwargs):
    """Build generator ``name`` as a functional tf_keras model.

    Args:
      name: one of :data:`MODELS`.
      input_shape: ``(H, W, 3)``; ``None`` dimensions accept any multiple of the stride.
      **kwargs: the architecture's own arguments (see its builder).
    """
    info = get_model_info(name)
    check_input_size(name, input_shape[0], input_shape[1])
    return info.builder(input_shape=tuple(input_shape), **kwargs)


__all__ = ["MODELS", "ModelInfo", "build_model", "check_input_size", "custom_objects", "get_model_info", "padded_size"]
