"""Parameter and multiply-accumulate counts, computed from a built graph."""

from __future__ import annotations

import numpy as np

from mobile_enhance.compat import keras
from mobile_enhance.models.layers import LegacyBicubicUpsample


def count_params(model) -> int:
    """All weights, trainable or not (Keras ``count_params``)."""
    return int(model.count_params())


def _spatial(shape):
    return int(np.prod([d for d in shape[1:-1]]))


def layer_macs(layer) -> int:
    """Multiply-accumulates of one layer for one image; 0 for layers without weights.

    Conv2D: ``H_out * W_out * kh * kw * C_in / groups * C_out``; Conv2DTranspose:
    ``H_in * W_in * kh * kw * C_in * C_out``; DepthwiseConv2D: ``H_out * W_out * kh * kw
    * C_in * depth_multiplier``; Dense: inputs x units per position. Elementwise work
    (activations, norms, adds) is not counted, as is usual for GMAC figures.
    """
    L = keras.layers
    if isinstance(layer, L.Conv2DTranspose):
        kh, kw = layer.kernel_size
        return _spatial(layer.input_shape) * kh * kw * int(layer.input_shape[-1]) * layer.filters
    if isinstance(layer, L.DepthwiseConv2D):
        kh, kw = layer.kernel_size
        return _spatial(layer.output_shape) * kh * kw * int(layer.input_shape[-1]) * layer.depth_multiplier
    if isinstance(layer, L.Conv2D):
        kh, kw = layer.kernel_size
        cin = int(layer.input_shape[-1]) // getattr(layer, "groups", 1)
        return _spatial(layer.output_shape) * kh * kw * cin * layer.filters
    if isinstance(layer, LegacyBicubicUpsample):  # one fixed KxK conv to s*s*C channels, as run
        c, k = int(layer.input_shape[-1]), sum(layer.pad) + 1
        return _spatial(layer.input_shape) * k * k * c * layer.scale**2 * c
    if isinstance(layer, L.Dense):
        positions = int(np.prod(layer.output_shape[1:-1])) if len(layer.output_shape) > 2 else 1
        return positions * int(layer.input_shape[-1]) * layer.units
    return 0


def count_macs(model, height: int, width: int) -> int:
    """Multiply-accumulates of ``model`` for one ``height x width`` image.

    The graph is cloned with a fixed input size so every layer's shape is known; the
    count is then the sum of :func:`layer_macs` over the layers.
    """
    channels = model.input_shape[-1]
    fixed = keras.models.clone_model(model, input_tensors=keras.Input((height, width, channels)))
    return int(sum(layer_macs(layer) for layer in fixed.layers))
