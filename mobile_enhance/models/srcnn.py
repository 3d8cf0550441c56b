"""SRCNN-style baseline that the PIRM 2018 challenge timed every entry against.

Dong, Loy, He, Tang, "Image Super-Resolution Using Deep Convolutional Networks"
(TPAMI 2016), in the form the PIRM 2018 enhancement track used as its runtime baseline
(aiff22/ai-challenge README): 9x9 conv 64 + ReLU, 5x5 conv 32 + ReLU, 5x5 conv 3, then
``0.58 * tanh + 0.5``. The challenge's graph has a single scalar bias on the last conv
(69,249 parameters); this one has the usual per-channel bias (69,251).
"""

from __future__ import annotations

from mobile_enhance.compat import keras
from mobile_enhance.losses import T
from mobile_enhance.models import dped
from mobile_enhance.models.card import ModelCard, Preset
from mobile_enhance.models.layers import ScaledTanh

PAPER = "Dong et al., SRCNN (TPAMI 2016), the PIRM 2018 runtime baseline"
SIZE_MULTIPLE = 1

L = keras.layers


def srcnn_generator(input_shape=(None, None, 3), output_scale: float = 0.5, name: str = "srcnn") -> keras.Model:
    """Three-layer SRCNN: ``(N, H, W, 3)`` float32 in [0, 1] to the same shape and range."""
    inputs = keras.Input(input_shape, name="phone")
    x = L.Conv2D(64, 9, padding="same", activation="relu", name="conv1")(inputs)
    x = L.Conv2D(32, 5, padding="same", activation="relu", name="conv2")(x)
    x = L.Conv2D(3, 5, padding="same", name="conv3")(x)
    outputs = ScaledTanh(scale=output_scale, offset=0.5, name="enhanced")(x)
    return keras.Model(inputs, outputs, name=name)


CARD = ModelCard(
    name="srcnn",
    paper=PAPER,
    builder=srcnn_generator,
    size_multiple=SIZE_MULTIPLE,
    # enhancement pairs, or bicubic-upsampled x4 super-resolution (SRCNN's own task)
    trains_on=("paired", "sr"),
    losses=(T("l2", 1.0),),  # plain MSE, as in the SRCNN paper
    preset=Preset(batch_size=50, patch_size=100, learning_rate=5e-4),
    # DPED's texture discriminator, for the no-VGG DPED recipe the challenge entries share
    discriminators=(dped.TEXTURE,),
)
