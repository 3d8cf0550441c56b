"""RSGUNet, Range Scaling Global U-Net: PIRM 2018 Perceptual Image Enhancement, 1st place.

Huang, Zhu, et al. (MTlab, Meitu), "Range Scaling Global U-Net for Perceptual Image
Enhancement on Mobile Devices", ECCV 2018 Workshops (PIRM).

Layer sizes follow the authors' released code (MTlab, ``net/unet.py``): every conv is
3x3 with bias, no normalization, LeakyReLU(0.2). A stride-2 input conv (16) and
encoder stages of 16/32/64/128 channels, each ended by a stride-2 conv; one 3x3 conv of
256 at 1/32 resolution whose global mean feeds a dense layer of 128 (ReLU), tiled over
the 1/16 grid and concatenated to the deepest skip; a decoder of 2x2 stride-2
transposed convs (no bias) concatenated with the skips; the range-scaling layer
multiplies the last decoder features by the input conv's features (instead of a
residual add); a 2x2 transposed conv to 3 channels at full size, a 3x3 conv and a
scaled tanh. 1,451,268 parameters. Five stride-2 stages: H and W must be multiples of
32 (train on 96x96 crops of DPED's 100x100 patches).
"""

from __future__ import annotations

from mobile_enhance.compat import keras
from mobile_enhance.losses import T
from mobile_enhance.models import dped
from mobile_enhance.models.card import ModelCard, Preset
from mobile_enhance.models.layers import BroadcastSpatial, RangeScale, ScaledTanh

PAPER = "Huang et al., Range Scaling Global U-Net (PIRM 2018, 1st)"
SIZE_MULTIPLE = 32

L = keras.layers


def _conv(x, filters, name, strides=1):
    x = L.Conv2D(filters, 3, strides=strides, padding="same", name=name)(x)
    return L.LeakyReLU(0.2, name=f"{name}_lrelu")(x)


def _up(x, filters, name):
    return L.Conv2DTranspose(filters, 2, strides=2, padding="same", use_bias=False, name=name)(x)


def rsgunet_generator(
    input_shape=(None, None, 3),
    widths=(16, 32, 64, 128),
    global_width: int = 256,
    global_units: int = 128,
    output_scale: float = 0.5,
    name: str = "rsgunet",
) -> keras.Model:
    """The RSGUNet generator.

    Args:
      input_shape: ``(H, W, 3)``, H and W multiples of 32.
      widths: channels of the four encoder stages (16, 32, 64, 128 in the paper).
      global_width: channels of the conv whose global mean is the global feature (256).
      global_units: units of the dense layer on that mean (128).
      output_scale: ``output = output_scale * tanh(x) + 0.5`` (official code: 0.58, +0.52).

    Returns:
      Model mapping ``(N, H, W, 3)`` float32 in [0, 1] to the same shape and range.
    """
    widths = tuple(int(w) for w in widths)
    inputs = keras.Input(input_shape, name="phone")
    input1 = _conv(inputs, widths[0], "input_conv", strides=2)
    x = input1
    skips = []
    for stage, width in enumerate(widths, start=1):
        x = _conv(x, width, f"g_conv{stage}_1")
        x = _conv(x, width, f"g_conv{stage}_2")
        skips.append(x)
        x = _conv(x, width, f"pooling{stage}", strides=2)
    deepest = _conv(x, global_width, f"g_conv{len(widths) + 1}_1")
    g = L.GlobalAveragePooling2D(keepdims=True, name="global_mean")(deepest)
    g = L.Dense(global_units, activation="relu", name="global_dense")(g)
    g = BroadcastSpatial(name="global_tile")([g, skips[-1]])
    x = L.Concatenate(name="global_concat")([skips[-1], g])
    stage = len(widths) + 2
    x = _conv(x, widths[-1], f"g_conv{stage}_1")
    x = _conv(x, widths[-1], f"g_conv{stage}_2")
    for skip, width in zip(reversed(skips[:-1]), reversed(widths[:-1])):
        stage += 1
        x = _up(x, width, f"up{stage}")
        x = L.Concatenate(name=f"up{stage}_concat")([x, skip])
        x = _conv(x, width, f"g_conv{stage}_1")
        x = _conv(x, width, f"g_conv{stage}_2")
    x = RangeScale(name="range_scale")([x, input1])
    x = _up(x, 3, "up_out")
    x = L.Conv2D(3, 3, padding="same", name="conv_out")(x)
    outputs = ScaledTanh(scale=output_scale, offset=0.5, name="enhanced")(x)
    return keras.Model(inputs, outputs, name=name)


CARD = ModelCard(
    name="rsgunet",
    paper=PAPER,
    builder=rsgunet_generator,
    size_multiple=SIZE_MULTIPLE,
    trains_on=("paired",),
    # MTlab code: VGG relu1_2/3_4/5_4 0.001, texture 17.5, L1 colour 0.5, TV 100,
    # grayscale MS-SSIM 0.5 (the term is 1000 * (1 - MS-SSIM))
    losses=(T("vgg_multi", 0.001), T("texture", 17.5), T("l1_sum", 0.5), T("tv", 100), T("ms_ssim_gray", 0.5)),
    # batches of 32 96x96 crops (multiples of 32 for its five stride-2 levels)
    preset=Preset(batch_size=32, patch_size=96, learning_rate=5e-4),
    discriminators=(dped.TEXTURE,),
)
