"""SRResNet and SRGAN: x4 super-resolution with a deep residual generator.

Ledig, Theis, Huszar, Caballero, Cunningham, Acosta, Aitken, Tejani, Totz, Wang, Shi,
"Photo-Realistic Single Image Super-Resolution Using a Generative Adversarial Network",
CVPR 2017 (arXiv 1609.04802).

Generator (the paper's Fig. 4; the same network is SRResNet and SRGAN's G): a 9x9 conv of
64 with PReLU (``conv1``, the source of the long skip); 16 residual blocks
``x + BN(conv(PReLU(BN(conv(x)))))``, 3x3 convs of 64, nothing after the add
(``block{b}_*``); a 3x3 conv of 64 with BN and the long skip to ``conv1``'s output
(``conv2``); two sub-pixel x2 upsamplers, each a 3x3 conv to 256, ``depth_to_space(2)``
(:class:`~mobile_enhance.models.layers.Mux`) and PReLU (``up{u}_*``); a 9x9 conv to 3
(``conv3``). Padding is ``same`` throughout, so any input size works. PReLU has one
slope per channel, as Lasagne's (the authors' framework) default; PyTorch ports use one
scalar. 1,550,659 trainable parameters (plus 4,224 BN moving statistics).

Value ranges, our choice where our contract differs from the paper's: the paper feeds
LR images in [0, 1], trains on HR targets in [-1, 1] and has no output activation. Here
``conv3``'s output is read as the paper's [-1, 1] image and mapped to [0, 1] by
``0.5 t + 0.5``. An affine map after a convolution is a convolution, so the map is folded
into ``conv3`` itself: its kernel starts at half the Glorot draw and its bias at 0.5
(the paper's output 0 is mid-grey), and weights trained in the paper's range load as
kernel x 0.5, bias x 0.5 + 0.5. The network therefore stays linear at its end, as the
paper's, and the exported file has no extra operator for the mapping. The output is then
clipped to [0, 1] (``hr``: RELU and MINIMUM in TFLite), so the contract holds exactly and
an int8 file's uint8 output is the pixel value; any pixel a trained model puts outside
[0, 1] is wrong anyway. The MSE on [0, 1] is 1/4 of the paper's on [-1, 1]: Adam's
steps do not depend on a constant factor of the loss, so the MSE recipe keeps weight 1;
where the MSE is balanced against another term (``novgg``) it takes weight 4, the paper's
balance.

Batch normalization: the paper gives no momentum or epsilon; Keras' defaults are used.
At inference (``training=False``) BN uses its moving statistics and TFLite's converter
folds it into the preceding CONV_2D, so the float file holds only CONV_2D, ADD,
DEPTH_TO_SPACE, PRELU and the clip's RELU and MINIMUM.

Discriminator (paper Sec. 2.1 and Fig. 4): a 3x3 conv of 64 with LeakyReLU(0.2), then seven
[3x3 conv, BN, LeakyReLU(0.2)] of 64 s2, 128, 128 s2, 256, 256 s2, 512, 512 s2; flatten,
dense 1024, LeakyReLU(0.2), dense 1. The paper ends in a sigmoid; here the last dense
gives the logit, because the ``bce`` GAN loss takes logits (``softplus(-d)`` is
``-log sigmoid(d)``, the paper's ``-log D(G(x))``, computed stably from the logit).
23,565,505 trainable parameters at 96x96 (the dense layer's count follows the patch).

Training (paper Sec. 3.2): SRResNet is trained with MSE, Adam (beta1 0.9) at 1e-4 for
1e6 updates on batches of 16 96x96 HR crops. SRGAN starts its generator from that
SRResNet and trains 1e5 updates at 1e-4, then 1e5 at 1e-5, with VGG54 content plus 1e-3
times the adversarial term, generator and discriminator alternating one step each.
The ``srgan`` card models this with stages:

* ``main``: the MSE pre-training (the SRResNet preset);
* ``gan`` (after ``main``): VGG54 + 1e-3 adversarial at 1e-4 for 1e5 steps,
  ``train --model=srgan --stage=gan --init_from=RUN_OF_MAIN``;
* ``gan_low_rate`` (after ``gan``): the paper's second 1e5 steps at 1e-5,
  ``train --model=srgan --stage=gan_low_rate --init_from=RUN_OF_GAN``. ``--init_from``
  carries the generator only: the discriminator and both Adam states start afresh,
  where the paper's one run kept them (``--set gan.disc_warmup=N`` lets the new
  discriminator catch up before the generator sees it).

VGG54 is the ReLU output of conv5_4. The paper divides the VGG feature maps by 12.75
before the squared difference; that is exactly a weight of ``1 / 12.75**2`` on the mean
squared difference of the unscaled features, which is how the recipe states it. Where
no ImageNet VGG-19 weights are at hand (an offline machine), ``novgg`` (the paper's
SRGAN-MSE variant: MSE + 1e-3 adversarial) trains the GAN stages without them:
``--stage=gan --losses=novgg``. ``--losses=paper`` names the recipe of the stage trained
(the MSE in ``main``, VGG54 + adversarial in the GAN stages); ``vgg54`` names the latter
in any stage.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mobile_enhance.compat import keras
from mobile_enhance.losses import T
from mobile_enhance.models.card import Discriminator, ModelCard, Preset, Stage
from mobile_enhance.models.layers import ChannelPReLU, Mux, centred_bicubic_taps

PAPER = "Ledig et al., Photo-Realistic Single Image Super-Resolution Using a GAN (CVPR 2017)"
SRGAN_PAPER = PAPER
SIZE_MULTIPLE = 1
UPSCALE = 4

L = keras.layers


def _conv(filters, kernel, name, strides=1, **kwargs):
    return L.Conv2D(filters, kernel, strides=strides, padding="same", name=name, **kwargs)


#: The new model's starting function: ``random`` (every layer's Keras default draw, the
#: paper's Lasagne-style initialisation) or ``interpolate`` (see :func:`interpolating_start`).
STARTS = ("random", "interpolate")


def srresnet_generator(
    input_shape=(None, None, 3),
    filters: int = 64,
    blocks: int = 16,
    start: str = "random",
    name: str = "srresnet",
) -> keras.Model:
    """SRResNet (and SRGAN's generator), x4.

    Args:
      input_shape: ``(H, W, 3)``; any H and W.
      filters: width of the body (64 in the paper).
      blocks: residual blocks (16 in the paper).
      start: ``random`` or ``interpolate``, the new model's weights (:data:`STARTS`); the
        architecture, and what a loaded checkpoint computes, are the same either way.

    Returns:
      Model mapping ``(N, H, W, 3)`` float32 in [0, 1] (low resolution) to
      ``(N, 4H, 4W, 3)`` float32 in [0, 1].
    """
    if start not in STARTS:
        raise ValueError(f"srresnet start must be one of {', '.join(STARTS)}, got {start!r}")
    inputs = keras.Input(input_shape, name="lr")
    head = ChannelPReLU(name="conv1_prelu")(_conv(filters, 9, "conv1")(inputs))
    x = head
    for b in range(1, blocks + 1):
        y = _conv(filters, 3, f"block{b}_conv1")(x)
        y = L.BatchNormalization(name=f"block{b}_bn1")(y)
        y = ChannelPReLU(name=f"block{b}_prelu")(y)
        y = _conv(filters, 3, f"block{b}_conv2")(y)
        y = L.BatchNormalization(name=f"block{b}_bn2")(y)
        x = L.Add(name=f"block{b}_add")([x, y])
    x = L.BatchNormalization(name="conv2_bn")(_conv(filters, 3, "conv2")(x))
    x = L.Add(name="long_skip_add")([x, head])
    for u in (1, 2):
        x = _conv(4 * filters, 3, f"up{u}_conv")(x)
        x = Mux(2, name=f"up{u}_shuffle")(x)
        x = ChannelPReLU(name=f"up{u}_prelu")(x)
    # the [-1, 1] -> [0, 1] map folded in: Glorot uniform halved (variance x 0.25), bias 0.5
    half_glorot = keras.initializers.VarianceScaling(0.25, "fan_avg", "uniform")
    x = _conv(3, 9, "conv3", kernel_initializer=half_glorot, bias_initializer=keras.initializers.Constant(0.5))(x)
    outputs = L.ReLU(max_value=1.0, name="hr")(x)
    model = keras.Model(inputs, outputs, name=name)
    if start == "interpolate":
        interpolating_start(model)
    return model


def nearest_to_bicubic_taps(scale: int = UPSCALE, taps: int = 9) -> np.ndarray:
    """``(taps,)`` filter that, after nearest-neighbour upscaling by ``scale``, comes
    closest (least squares, unit DC gain) to the centred bicubic (Keys ``a = -0.5``, PIL's
    and the ``sr:`` source's baseline) of the same low-resolution signal.

    Nearest upscaling then this filter has an impulse response of ``scale + taps - 1``
    samples, the bicubic one of ``4 * scale``: for x4 and 9 taps the shorter response
    cannot reach the bicubic's outermost lobes, and the least-squares fit spreads that
    residual over the taps, so the two also differ slightly inside."""
    bicubic = centred_bicubic_taps(scale)  # (phase, 5) weights on samples n-2 .. n+2
    length = 8 + 4  # low-resolution samples, one impulse in the middle, margin for both filters
    centre = length // 2
    want = np.zeros(length * scale)
    for dst in range(length * scale):
        n, p = divmod(dst, scale)
        if 0 <= centre - n + 2 < 5:
            want[dst] = bicubic[p][centre - n + 2]
    half = taps // 2
    design = np.zeros((length * scale, taps))  # column m: the response to tap m alone
    for dst in range(length * scale):
        for m in range(taps):
            src = dst + m - half  # cross-correlation, as a 'same' convolution computes it
            if 0 <= src < length * scale and src // scale == centre:
                design[dst, m] = 1.0
    rows = np.vstack([design, 1e3 * np.ones((1, taps))])
    target = np.concatenate([want, [1e3]])
    k, *_ = np.linalg.lstsq(rows, target, rcond=None)
    return (k + k[::-1]) / 2  # symmetric up to rounding; exactly so


def interpolating_start(model: keras.Model) -> None:
    """Set a new SRResNet's weights so that it starts as an interpolating upscaler.

    SRResNet has no bicubic skip, and from the default draw its output is far from any
    photo: on a 2-core CPU a 2000-step MSE run (patch 64, rate 3e-4) was still 17.7 dB
    below bicubic at step 500 on its validation crops. This start makes the same
    architecture compute nearest x4 then a 9x9 filter fitted to bicubic
    (:func:`nearest_to_bicubic_taps`) through channels 0-2, and training then learns the
    correction, as EnhanceNet's skip lets it:

    * ``conv1``: output channels 0-2 copy R, G, B (centre tap 1, bias 0); PReLU passes
      them unchanged (the input is in [0, 1]). The other 61 channels keep their draw.
    * ``conv2_bn``: gamma 0, so the residual body adds nothing to the long skip at first
      (zero-initialised residual branches, as in Goyal et al. 2017); it still gets
      gradients through gamma and the blocks keep their draw.
    * ``up1_conv`` and ``up2_conv``: the four sub-pixel outputs of channels 0-2 copy their
      input channel (nearest x2 after ``depth_to_space``, the ICNR start of Aitken et al.
      2017 for these channels); the rest keep their draw.
    * ``conv3``: channel c of the output filters channel c with the fitted 9x9 filter,
      bias 0; the weights from channels 3-63 are the halved Glorot draw scaled by 0.01,
      small enough not to disturb the start and nonzero so the body is trained from the
      first step.
    """
    copy = slice(0, 3)
    kernel, bias = model.get_layer("conv1").get_weights()
    kernel[:, :, :, copy] = 0.0
    centre = kernel.shape[0] // 2
    for c in range(3):
        kernel[centre, centre, c, c] = 1.0
    bias[copy] = 0.0
    model.get_layer("conv1").set_weights([kernel, bias])
    bn = model.get_layer("conv2_bn")
    gamma, *rest = bn.get_weights()
    bn.set_weights([np.zeros_like(gamma), *rest])
    for u in (1, 2):
        layer = model.get_layer(f"up{u}_conv")
        kernel, bias = layer.get_weights()
        width = kernel.shape[-1] // 4
        for phase in range(4):
            for c in range(3):
                kernel[:, :, :, phase * width + c] = 0.0
                kernel[1, 1, c, phase * width + c] = 1.0
                bias[phase * width + c] = 0.0
        layer.set_weights([kernel, bias])
    layer = model.get_layer("conv3")
    kernel, bias = layer.get_weights()
    kernel *= 0.01
    kernel[:, :, copy, :] = 0.0
    taps = nearest_to_bicubic_taps(UPSCALE, kernel.shape[0])
    for c in range(3):
        kernel[:, :, c, c] = np.outer(taps, taps)
    layer.set_weights([kernel, np.zeros_like(bias)])


#: The discriminator's convolutions after the first: (filters, stride).
DISCRIMINATOR_CONVS = ((64, 2), (128, 1), (128, 2), (256, 1), (256, 2), (512, 1), (512, 2))


def srgan_discriminator(input_shape=(96, 96, 3), name: str = "srgan_discriminator") -> keras.Model:
    """SRGAN's discriminator on ``(N, P, P, 3)`` float32 in [0, 1] (its dense layer is sized
    for P); output ``(N, 1)``, the logit of "a real HR image"."""
    inputs = keras.Input(tuple(input_shape), name="view")
    x = L.LeakyReLU(0.2, name="conv1_lrelu")(_conv(64, 3, "conv1")(inputs))
    for i, (filters, stride) in enumerate(DISCRIMINATOR_CONVS, start=2):
        x = _conv(filters, 3, f"conv{i}", strides=stride)(x)
        x = L.BatchNormalization(name=f"conv{i}_bn")(x)
        x = L.LeakyReLU(0.2, name=f"conv{i}_lrelu")(x)
    x = L.Flatten(name="flatten")(x)
    x = L.LeakyReLU(0.2, name="fc1_lrelu")(L.Dense(1024, name="fc1")(x))
    outputs = L.Dense(1, name="logit")(x)
    return keras.Model(inputs, outputs, name=name)


#: SRGAN's discriminator: RGB HR patches, non-saturating cross-entropy on its logit.
DISCRIMINATOR = Discriminator("srgan", srgan_discriminator, sees="rgb", gan_loss="bce")

#: SRResNet's recipe: MSE (on [0, 1]; see the module docstring for the paper's [-1, 1]).
MSE = (T("l2", 1.0),)

#: SRGAN (VGG54): the paper's 1/12.75 feature scaling as a weight on the squared difference,
#: plus 1e-3 of the adversarial term.
VGG54 = (T("content", 1.0 / 12.75**2, layers=("relu5_4",)), T("gan", 1e-3, disc="srgan"))

#: SRGAN-MSE, the paper's variant without VGG: its MSE on [-1, 1] is 4x ours on [0, 1].
NOVGG = (T("l2", 4.0), T("gan", 1e-3, disc="srgan"))

#: The paper's SRResNet training: batch 16, 96x96 HR (24x24 LR), Adam 1e-4 (beta1 0.9), 1e6 steps.
PRESET = Preset(batch_size=16, patch_size=96, learning_rate=1e-4, beta_1=0.9, steps=1_000_000)

#: SRGAN's adversarial phases: 1e5 steps at 1e-4, then 1e5 at 1e-5.
GAN_PRESET = dataclasses.replace(PRESET, steps=100_000)
LOW_RATE_PRESET = dataclasses.replace(GAN_PRESET, learning_rate=1e-5)

CARD = ModelCard(
    name="srresnet",
    paper=PAPER,
    builder=srresnet_generator,
    size_multiple=SIZE_MULTIPLE,
    upscale=UPSCALE,
    trains_on=("sr",),
    losses=MSE,
    preset=PRESET,
)

SRGAN_CARD = dataclasses.replace(
    CARD,
    name="srgan",
    paper=SRGAN_PAPER,
    # main: srresnet's MSE pre-training; it declares the discriminator too, so that the
    # named recipes (checked against the first stage) can name it
    discriminators=(DISCRIMINATOR,),
    recipes={"vgg54": VGG54, "novgg": NOVGG},
    stages=(
        Stage("gan", ("sr",), VGG54, GAN_PRESET, (DISCRIMINATOR,), after="main"),
        Stage("gan_low_rate", ("sr",), VGG54, LOW_RATE_PRESET, (DISCRIMINATOR,), after="gan"),
    ),
)
