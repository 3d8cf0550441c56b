"""Fast Perceptual Image Enhancement, PIRM 2018 Perceptual Image Enhancement, 2nd place.

de Stoutz, Ignatov, Kobyshev, Timofte, Van Gool, "Fast Perceptual Image Enhancement",
ECCV 2018 Workshops (PIRM).

The DPED generator made cheap: most of the work moves to 1/4 resolution. Layer sizes
follow the authors' released configuration (``convdeconv`` with depth 16, the model of
their README and test script): c1 9x9 conv d; c2, c3 4x4 stride-2 convs 2d, 4d with
instance norm; two residual blocks of [3x3 conv 4d, IN, ReLU] x2 at 1/4 resolution;
c8, c9 4x4 stride-2 transposed convs 2d, d with IN, c9 plus a long skip from c1; c10,
c11 3x3 convs d; c12 9x9 conv to 3 and a scaled tanh. ReLU throughout; 243,011
parameters at d = 16.

Global skip (ours, ``global_skip=True``; the default is the released graph): c12 predicts
a correction that is added to the input photo and the sum clipped to [0, 1], in place of
the scaled tanh, as the Mux/Demux model of this package does. Same layers and parameter
count. It is there for int8: the released graph rebuilds every output pixel through the
16-channel full-resolution tail (c9 to c12), and rounding those activations to int8 put
the full-integer file 40.9 dB from the float model; with the skip, 50.3 dB, and 27.17 dB
against the targets instead of 26.62 (held-out synthetic patches, ``benchmarks/README.md``):
a correction is a fraction of the photo's range, and so is the rounding error it
carries. c12 then starts small (its initial weights scaled by 1e-2), so a new model
starts close to the identity. The shipped default model is this variant.
"""

from __future__ import annotations

from mobile_enhance.compat import keras
from mobile_enhance.models import dped
from mobile_enhance.models.card import ModelCard, Preset
from mobile_enhance.models.layers import InstanceNormalization, ScaledTanh

PAPER = "de Stoutz et al., Fast Perceptual Image Enhancement (PIRM 2018, 2nd)"
SIZE_MULTIPLE = 4

L = keras.layers


def _conv_in_relu(x, filters, kernel, name, strides=1, transpose=False):
    conv = L.Conv2DTranspose if transpose else L.Conv2D
    x = conv(filters, kernel, strides=strides, padding="same", name=name)(x)
    x = InstanceNormalization(epsilon=1e-3, name=f"{name}_in")(x)
    return L.ReLU(name=f"{name}_relu")(x)


def fast_dped_generator(
    input_shape=(None, None, 3),
    depth: int = 16,
    blocks: int = 2,
    output_scale: float = 0.5,
    global_skip: bool = False,
    name: str = "fast_dped",
) -> keras.Model:
    """The released ``convdeconv`` generator.

    Args:
      input_shape: ``(H, W, 3)``, H and W multiples of 4.
      depth: base width d (16 in the released model).
      blocks: residual blocks at 1/4 resolution (2 in the released model).
      output_scale: ``output = output_scale * tanh(x) + 0.5`` (official code: 0.58); unused
        with ``global_skip``.
      global_skip: ``output = clip(input + c12, 0, 1)`` instead (ours; see the module).

    Returns:
      Model mapping ``(N, H, W, 3)`` float32 in [0, 1] to the same shape and range.
    """
    inputs = keras.Input(input_shape, name="phone")
    c1 = L.Conv2D(depth, 9, padding="same", name="c1")(inputs)
    c1 = L.ReLU(name="c1_relu")(c1)
    x = _conv_in_relu(c1, 2 * depth, 4, "c2", strides=2)
    x = _conv_in_relu(x, 4 * depth, 4, "c3", strides=2)
    index = 4
    for b in range(1, blocks + 1):
        skip = x
        x = _conv_in_relu(x, 4 * depth, 3, f"c{index}")
        x = _conv_in_relu(x, 4 * depth, 3, f"c{index + 1}")
        x = L.Add(name=f"res{b}_add")([x, skip])
        index += 2
    x = _conv_in_relu(x, 2 * depth, 4, f"c{index}", strides=2, transpose=True)
    x = _conv_in_relu(x, depth, 4, f"c{index + 1}", strides=2, transpose=True)
    x = L.Add(name="long_skip_add")([x, c1])
    for i in (index + 2, index + 3):
        x = L.Conv2D(depth, 3, padding="same", name=f"c{i}")(x)
        x = L.ReLU(name=f"c{i}_relu")(x)
    init = keras.initializers.VarianceScaling(1e-2, "fan_avg", "uniform") if global_skip else "glorot_uniform"
    x = L.Conv2D(3, 9, padding="same", kernel_initializer=init, name=f"c{index + 4}")(x)
    if global_skip:
        x = L.Add(name="skip_add")([inputs, x])
        outputs = L.ReLU(max_value=1.0, name="enhanced")(x)
    else:
        outputs = ScaledTanh(scale=output_scale, offset=0.5, name="enhanced")(x)
    return keras.Model(inputs, outputs, name=name)


CARD = ModelCard(
    name="fast_dped",
    paper=PAPER,
    builder=fast_dped_generator,
    size_multiple=SIZE_MULTIPLE,
    trains_on=("paired",),
    # the paper trains with the DPED losses, weights and discriminator
    losses=dped.LOSSES,
    # the released code is DPED's training script: its batch, patch, rate and iterations
    preset=Preset(batch_size=50, patch_size=100, learning_rate=5e-4, steps=20000),
    discriminators=(dped.TEXTURE,),
)
