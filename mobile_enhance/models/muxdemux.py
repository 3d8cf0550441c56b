"""Mux/Demux DenseNet, PIRM 2018 Perceptual Image Enhancement, 3rd place.

Liu, Navarrete Michelini, Zhu, "Deep Networks for Image-to-Image Translation with Mux
and Demux Layers", ECCV 2018 Workshops (PIRM).

What the paper states and this graph follows: Demux layers downscale 2x without losing
information by moving each 2x2 block of pixels into channels, Mux layers do the inverse;
the work happens in DenseBlocks at the low resolutions; noise channels are appended
after each Demux; instance normalization. The paper's exact filter counts were not
available to us (no public code for this entry), so the widths here are our choice,
sized to sit between the DPED ResNet and the other PIRM entries in cost: two Demux
levels, a DenseBlock of ``dense_layers`` pre-activated [IN, ReLU, 3x3 conv, growth
``growth``] layers at each level, 1x1 transitions, and a skip from each encoder level
to the decoder level of the same resolution.

Global skip (ours, ``global_skip=True``): the network predicts a correction that is added
to the input photo and the sum clipped to [0, 1], instead of the photo itself through a
scaled tanh. Our first runs without it stayed below their own input (23.06 dB against
24.97 on held-out pairs after 2500 steps; 23.53 after 2000 more): rebuilding every pixel
through two Demux levels and eleven instance norms is hard to learn on a CPU budget,
while a correction starts at the identity. It also helps int8: quantization error
inside the network scales with what the network outputs, and a correction is a fraction
of the photo's range. The last convolution starts small (its initial weights are scaled
by 1e-2), so a new model starts close to the identity.

Layer names: ``demux{l}``, ``noise{l}``, ``enc{l}_conv``, ``dense{l}_{i}_*``,
``trans{l}``, ``mux{l}``, ``dec{l}_*``; with the global skip ``skip_add`` and the clip
``enhanced``.
"""

from __future__ import annotations

from mobile_enhance.compat import keras
from mobile_enhance.losses import T
from mobile_enhance.models import dped
from mobile_enhance.models.card import ModelCard, Preset
from mobile_enhance.models.layers import Demux, InstanceNormalization, Mux, NoiseChannels, ScaledTanh

PAPER = "Liu, Navarrete Michelini, Zhu, Mux and Demux Layers (PIRM 2018, 3rd)"
SIZE_MULTIPLE = 4

L = keras.layers


def _dense_block(x, layers: int, growth: int, prefix: str):
    """DenseNet block: each layer sees the concatenation of all earlier outputs."""
    for i in range(1, layers + 1):
        y = InstanceNormalization(name=f"{prefix}_{i}_in")(x)
        y = L.ReLU(name=f"{prefix}_{i}_relu")(y)
        y = L.Conv2D(growth, 3, padding="same", name=f"{prefix}_{i}_conv")(y)
        x = L.Concatenate(name=f"{prefix}_{i}_concat")([x, y])
    return x


def muxdemux_generator(
    input_shape=(None, None, 3),
    filters: int = 32,
    growth: int = 16,
    dense_layers: int = 4,
    noise_channels: int = 1,
    noise_stddev: float = 1.0,
    global_skip: bool = True,
    name: str = "muxdemux",
) -> keras.Model:
    """The Mux/Demux enhancement network with two Demux levels.

    Args:
      input_shape: ``(H, W, 3)``, H and W multiples of 4.
      filters: width of the first level; the second level has ``2 * filters``.
      growth: DenseBlock growth rate.
      dense_layers: layers per DenseBlock.
      noise_channels: noise channels appended after each Demux (zero at inference).
      noise_stddev: standard deviation of that noise in training.
      global_skip: add the network's output to the input and clip to [0, 1]; False: the
        network's output through ``0.5 * tanh + 0.5`` (the first runs, before 2026-11-30).

    Returns:
      Model mapping ``(N, H, W, 3)`` float32 in [0, 1] to the same shape and range.
    """
    inputs = keras.Input(input_shape, name="phone")
    skips = []
    x = inputs
    widths = [filters, 2 * filters]
    for level, width in enumerate(widths, start=1):
        x = Demux(name=f"demux{level}")(x)
        x = NoiseChannels(noise_channels, noise_stddev, name=f"noise{level}")(x)
        x = L.Conv2D(width, 3, padding="same", name=f"enc{level}_conv")(x)
        x = InstanceNormalization(name=f"enc{level}_in")(x)
        x = L.ReLU(name=f"enc{level}_relu")(x)
        x = _dense_block(x, dense_layers, growth, f"dense{level}")
        x = L.Conv2D(width, 1, name=f"trans{level}")(x)
        skips.append(x)
    # Decoder: back up through the levels, each Mux halving channels by 4.
    for level in range(len(widths), 0, -1):
        if level < len(widths):
            x = L.Concatenate(name=f"dec{level}_concat")([x, skips[level - 1]])
            x = L.Conv2D(widths[level - 1], 3, padding="same", name=f"dec{level}_conv")(x)
            x = InstanceNormalization(name=f"dec{level}_in")(x)
            x = L.ReLU(name=f"dec{level}_relu")(x)
        out_channels = 4 * (widths[level - 2] if level > 1 else 3)
        last = level == 1 and global_skip
        init = keras.initializers.VarianceScaling(1e-2, "fan_avg", "uniform") if last else "glorot_uniform"
        x = L.Conv2D(out_channels, 3, padding="same", kernel_initializer=init, name=f"dec{level}_expand")(x)
        x = Mux(name=f"mux{level}")(x)
    if global_skip:
        x = L.Add(name="skip_add")([inputs, x])
        outputs = L.ReLU(max_value=1.0, name="enhanced")(x)
    else:
        outputs = ScaledTanh(name="enhanced")(x)
    return keras.Model(inputs, outputs, name=name)


CARD = ModelCard(
    name="muxdemux",
    paper=PAPER,
    builder=muxdemux_generator,
    size_multiple=SIZE_MULTIPLE,
    trains_on=("paired",),
    # weighted L1 (YUV), contextual, adversarial: the paper's weights are not public;
    # these are ours, chosen so the terms start at comparable magnitudes. The
    # adversarial term goes through DPED's texture discriminator.
    losses=(T("yuv_l1", 1.0), T("contextual", 0.1), T("texture", 0.01)),
    preset=Preset(batch_size=32, patch_size=100, learning_rate=5e-4),
    discriminators=(dped.TEXTURE,),
)
