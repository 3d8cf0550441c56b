"""DPED ResNet generator and its texture discriminator.

Ignatov, Kobyshev, Timofte, Vanhoey, Van Gool, "DSLR-Quality Photos on Mobile Devices
with Deep Convolutional Networks", ICCV 2017.

Layer sizes follow the authors' released code (aiff22/DPED, ``models.py``): a 9x9 conv
with 64 filters and ReLU; four residual blocks, each two [3x3 conv 64, instance norm,
ReLU] with the skip added after the second ReLU; two 3x3 convs of 64 with ReLU and no
normalization; a 9x9 conv to 3 channels and a scaled tanh. Instance norm has a learned
scale and shift per channel (epsilon 1e-3). The official checkpoint has 401,475
parameters, which this graph reproduces.

The discriminator sees grayscale 100x100 patches: conv 11x11/48 stride 4, 5x5/128 s2,
3x3/192, 3x3/192, 3x3/128 s2, each LeakyReLU(0.2) then instance norm (none after the
first), dense 1024 LeakyReLU, dense 2 softmax (7,361,122 parameters at 100x100).
"""

from __future__ import annotations

from mobile_enhance.compat import keras
from mobile_enhance.losses import T
from mobile_enhance.models.card import Discriminator, ModelCard, Preset
from mobile_enhance.models.layers import InstanceNormalization, ScaledTanh

PAPER = "Ignatov et al., DSLR-Quality Photos on Mobile Devices (ICCV 2017)"
SIZE_MULTIPLE = 1

L = keras.layers


def _conv(filters, kernel, name, strides=1):
    return L.Conv2D(filters, kernel, strides=strides, padding="same", name=name)


def dped_generator(
    input_shape=(None, None, 3),
    filters: int = 64,
    blocks: int = 4,
    output_scale: float = 0.5,
    name: str = "dped",
) -> keras.Model:
    """The DPED image-enhancement ResNet.

    Args:
      input_shape: ``(H, W, 3)``; any H and W.
      filters: width of every hidden layer (64 in the paper).
      blocks: number of residual blocks (4 in the paper).
      output_scale: ``output = output_scale * tanh(x) + 0.5``. 0.5 keeps the output in
        [0, 1]; the official code uses 0.58.

    Returns:
      Model mapping ``(N, H, W, 3)`` float32 in [0, 1] to the same shape and range.
    """
    inputs = keras.Input(input_shape, name="phone")
    x = _conv(filters, 9, "conv1")(inputs)
    x = L.ReLU(name="conv1_relu")(x)
    for b in range(1, blocks + 1):
        skip = x
        for i in (1, 2):
            x = _conv(filters, 3, f"block{b}_conv{i}")(x)
            x = InstanceNormalization(epsilon=1e-3, name=f"block{b}_in{i}")(x)
            x = L.ReLU(name=f"block{b}_relu{i}")(x)
        x = L.Add(name=f"block{b}_add")([x, skip])
    for i in (1, 2):
        x = _conv(filters, 3, f"conv{blocks + 1 + i}")(x)
        x = L.ReLU(name=f"conv{blocks + 1 + i}_relu")(x)
    x = _conv(3, 9, "conv_out")(x)
    outputs = ScaledTanh(scale=output_scale, offset=0.5, name="enhanced")(x)
    return keras.Model(inputs, outputs, name=name)


def dped_discriminator(input_shape=(100, 100, 1), name: str = "dped_discriminator") -> keras.Model:
    """DPED's discriminator: the texture one on grayscale patches (``(P, P, 1)``), or the
    same network on RGB (``(P, P, 3)``: WESPE's colour discriminator on blurred images).

    Input ``(N, P, P, C)`` float32 in [0, 1]; output ``(N, 2)`` softmax probabilities,
    column 0 = "DSLR photo", column 1 = "enhanced".
    """
    inputs = keras.Input(tuple(input_shape), name="view")
    x = inputs
    specs = [(48, 11, 4, False), (128, 5, 2, True), (192, 3, 1, True), (192, 3, 1, True), (128, 3, 2, True)]
    for i, (filters, kernel, stride, norm) in enumerate(specs, start=1):
        x = _conv(filters, kernel, f"conv{i}", strides=stride)(x)
        x = L.LeakyReLU(0.2, name=f"conv{i}_lrelu")(x)
        if norm:
            x = InstanceNormalization(epsilon=1e-3, name=f"conv{i}_in")(x)
    x = L.Flatten(name="flatten")(x)
    x = L.Dense(1024, name="fc1")(x)
    x = L.LeakyReLU(0.2, name="fc1_lrelu")(x)
    outputs = L.Dense(2, activation="softmax", name="prob")(x)
    return keras.Model(inputs, outputs, name=name)


#: DPED's texture discriminator: grayscale patches, two-class softmax (aiff22/DPED).
TEXTURE = Discriminator("texture", dped_discriminator, sees="gray", gan_loss="dped_softmax")

#: The DPED recipe (aiff22/DPED defaults): content 10, colour 0.5, texture 1, TV 2000.
LOSSES = (T("content", 10), T("color", 0.5), T("texture", 1), T("tv", 2000))

CARD = ModelCard(
    name="dped",
    paper=PAPER,
    builder=dped_generator,
    size_multiple=SIZE_MULTIPLE,
    trains_on=("paired",),
    losses=LOSSES,
    # aiff22/DPED: batch 50, 100x100 patches, Adam 5e-4, 20,000 iterations
    preset=Preset(batch_size=50, patch_size=100, learning_rate=5e-4, steps=20000),
    discriminators=(TEXTURE,),
)
