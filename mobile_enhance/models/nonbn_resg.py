"""NonBN-ResG: a residual GAN generator without batch norm, for same-size sharpening.

范晓烨 (Fan Xiaoye), 王敏 (Wang Min), "基于生成对抗网络的图像清晰度提升方法" (Improved Image
Sharpness Method Based on Generative Adversarial Network), 计算机系统应用 (Computer Systems &
Applications) 2021, 30(2):176-181.

What the paper states: a blurred photo goes in and a sharp one of the same size comes out.
The generator follows Johnson et al.'s residual network: 5 "improved" residual blocks (the
usual block with its batch norm removed and PReLU for ReLU), nested skip connections
(pixel-wise additions) that carry detail to the top of the network, no pooling or
un-pooling, SAME padding everywhere. The discriminator is 8 convolution -> activation ->
normalisation blocks, in that order, then two fully connected layers and a sigmoid. The
generator's losses are L1, a VGG-19 perceptual term fusing pool2 and pool5 (after
EnhanceNet), a patch-wise Gram texture term (after Ulyanov et al.) and the adversarial
term; D is updated twice per G update; 24x24 crops with flips; Adam for 500,000
iterations, the rate x0.1 after 250,000.

The paper's figures (all of its architecture) are missing from the text we have, and it
gives no loss weights, rates, batch or blur model. What we chose, and why:

Generator (437,763 parameters):

* **Blocks: 5**, as the text says. Each is 3x3 conv 64, PReLU, 3x3 conv 64, then the
  block's input added (the SRResNet block, BN removed; no activation after the add).
* **Widths and kernels**: 64 channels and 3x3 kernels in the body (Johnson et al.'s and
  SRGAN's residual blocks are 3x3; 64 is SRGAN's width at full resolution, where
  Johnson's 128 sit at a quarter of it). **Head and tail: 9x9** (Johnson et al.'s first
  and last layers, which the paper follows): 9x9 conv 3 -> 64 + PReLU, and 9x9 conv 64 -> 3.
* **No down- or up-sampling**: Johnson's stride-2 convolutions and fractional strides are
  left out with the pooling the paper removes; the whole net works at the input's size.
* **Nested skips**, three levels: (1) each block's identity skip, (2) a long skip from
  the head's output over the five blocks and a 3x3 conv 64 (``conv_mid``; SRResNet's
  arrangement), which is what carries low-level detail to the top, and (3) with
  ``global_skip`` (the default) the input photo itself added to the tail's output, then
  clipped to [0, 1]. (3) is ours: a sharpened photo differs from its blurred input by a
  correction of a fraction of the photo's range, so the net learns only that, and its
  int8 rounding error is a fraction of that correction, as the package's ``fast_dped``
  global skip found. A new net starts near the identity: the tail's initial weight
  variance is scaled by 1e-4 (at 1e-2 the five random blocks made a new net's output
  differ from its input by more than a blurred input differs from its target).
  ``global_skip=False`` ends in ``0.5 * tanh + 0.5`` instead.
* **PReLU**: one learned slope per channel, shared over height and width
  (``shared_axes=(1, 2)``), so the net takes any input size; slopes start at 0.25 (He et
  al.'s PReLU initialisation). The layer is :class:`~mobile_enhance.models.layers.ChannelPReLU`, which carries
  the quantization config that QAT needs (tfmot has none for PReLU).

Discriminator (:func:`nonbn_resg_discriminator`; 23,565,633 parameters at 96x96):

* 8 x [3x3 conv, LeakyReLU(0.2), instance norm], widths 64, 64, 128, 128, 256, 256, 512,
  512 with strides 1, 2, 1, 2, 1, 2, 1, 2 (SRGAN's discriminator, the common 8-conv GAN
  discriminator of this family). The paper's order (activation before the norm) is kept;
  DPED's discriminator has the same order. **Instance norm** rather than batch norm
  (the text says only "normalisation"): it is the same for every batch size and on any
  number of replicas, where batch norm would normalise a batch of real photos and one of
  generated photos each by its own statistics (the two go through the net in separate
  calls).
* Then dense 1024, LeakyReLU(0.2), dense 1. The sigmoid is the ``bce`` GAN loss's: it
  takes logits and computes ``-log sigmoid`` in a stable form.

Losses (the ``paper`` recipe), the paper's four terms:

* ``l1``, weight 1: the paper's content term (Eq. 3), the main one; the others are
  relative to it.
* **Perceptual** (Eq. 4, "fusing pool2 and pool5 like EnhanceNet"): EnhanceNet's L_P, the
  mean squared difference of VGG-19 ``pool2`` and of ``pool5`` features, each on the scale
  where the target's features have a mean of one (``mean_one``, EnhanceNet's
  normalisation), as two ``content`` terms, so that they keep EnhanceNet's weights: pool2
  ten times pool5.
* **Texture** (Eq. 5, patch-wise Gram matrices): EnhanceNet's L_T, the unnormalised Gram
  matrices of 16x16 tiles of ``relu1_1``, ``relu2_1`` and ``relu3_1`` (``gram`` with
  ``patch=16``, ``mean_one``), EnhanceNet's layers, tile and weights (relu1_1 a third of
  the other two), as two terms.
* **Adversarial**: the paper's Eq. 6, ``-log D(G(x))``, with D trained on Eq. 7,
  ``-log D(y) - log(1 - D(G(x)))``: together the non-saturating cross-entropy GAN
  (``bce``). The text then "rewrites" Eq. 6 as ``-D(G(x))``, a Wasserstein-like linear
  form that does not fit a sigmoid discriminator trained with a log loss; we keep the log
  form, which is also EnhanceNet's L_A.
* **Weights**: EnhanceNet's (ENet-PAT: adversarial 2, pool2 0.2, pool5 0.02, Gram 3e-7 on
  relu1_1 and 1e-6 on relu2_1 and relu3_1), which fit the normalisations above, all
  scaled by 1e-3 against L1's 1. EnhanceNet has no pixel term; here L1 must lead, because
  the paper's NonBN-ResG-L (with the three terms) stays within 0.15 dB PSNR of the L1
  model (28.39 against 28.54 dB, SSIM 0.933 against 0.917): the added terms only nudge
  it. At 1e-3 the adversarial term of an untrained discriminator (about 0.7 x 2e-3) is a
  fraction of the L1 term between a ``blur:`` input and its target (about 1e-2 on
  96x96 crops); at 1e-2 it would match it. They were not tuned with real VGG features:
  there are no ImageNet VGG-19 weights on the machine this was written on. Each term is
  logged on its own; re-weight with ``--losses=...``.

``novgg`` (L1 1 + the same adversarial 2e-3) is the recipe for machines without VGG-19
weights.

Training (the preset):

* **Patch 96, not 24.** The perceptual term needs pool5, VGG-19's fifth halving: a 24x24
  crop's pool5 is 0x0 with valid pooling (24, 12, 6, 3, 1, 0; ours pools with SAME
  padding: 1x1, one vector per crop), and its relu3_1 is 6x6, smaller than a 16x16
  texture tile. At 96, pool5 is 3x3 and relu3_1 24x24; 96 is also SRGAN's crop.
* **Batch 16** (SRGAN's; the paper gives none).
* **Adam 1e-4**, betas 0.9, 0.999: the paper names Adam but no rate; 1e-4 is SRGAN's and
  EnhanceNet's.
* **500,000 steps, D twice per G step** (``disc_steps=2``), both as the paper says.
* **Schedule: cosine** (to 5% of the rate). The paper divides the rate by 10 after half
  the steps; the package's schedules are ``constant`` and ``cosine`` only, and cosine is
  the closer: it ends 20x down where the step schedule ends 10x down, and its mean rate
  over the run (0.525 of the start) is near the step schedule's (0.55), where
  ``constant`` would train the second half at ten times the paper's rate.

Tensor contract: ``(N, H, W, 3)`` float32 in [0, 1] to the same shape and range, any H, W.
"""

from __future__ import annotations

from mobile_enhance.compat import keras
from mobile_enhance.errors import UserError
from mobile_enhance.losses import T
from mobile_enhance.models.card import Discriminator, ModelCard, Preset
from mobile_enhance.models.layers import InstanceNormalization, ScaledTanh
from mobile_enhance.models.layers import ChannelPReLU  # one PReLU class (and serialized name) for both papers

PAPER = "Fan, Wang, Improved Image Sharpness Method Based on GAN (Computer Systems & Applications 2021)"
SIZE_MULTIPLE = 1

L = keras.layers


def nonbn_resg_generator(
    input_shape=(None, None, 3),
    filters: int = 64,
    blocks: int = 5,
    global_skip: bool = True,
    name: str = "nonbn_resg",
) -> keras.Model:
    """The NonBN-ResG generator (see the module docstring for every choice).

    Args:
      input_shape: ``(H, W, 3)``; any H and W.
      filters: width of the body (64).
      blocks: residual blocks without batch norm (5, as the paper says).
      global_skip: add the input to the tail's output and clip to [0, 1] (ours, default);
        ``False`` ends in ``0.5 * tanh + 0.5``.

    Returns:
      Model mapping ``(N, H, W, 3)`` float32 in [0, 1] (blurred) to the same shape and
      range (sharpened).
    """
    inputs = keras.Input(input_shape, name="phone")
    x = L.Conv2D(filters, 9, padding="same", name="conv_in")(inputs)
    head = x = ChannelPReLU(name="conv_in_prelu")(x)
    for b in range(1, blocks + 1):
        skip = x
        x = L.Conv2D(filters, 3, padding="same", name=f"block{b}_conv1")(x)
        x = ChannelPReLU(name=f"block{b}_prelu")(x)
        x = L.Conv2D(filters, 3, padding="same", name=f"block{b}_conv2")(x)
        x = L.Add(name=f"block{b}_add")([skip, x])
    x = L.Conv2D(filters, 3, padding="same", name="conv_mid")(x)
    x = L.Add(name="long_skip_add")([head, x])
    init = keras.initializers.VarianceScaling(1e-4, "fan_avg", "uniform") if global_skip else "glorot_uniform"
    x = L.Conv2D(3, 9, padding="same", kernel_initializer=init, name="conv_out")(x)
    if global_skip:
        x = L.Add(name="skip_add")([inputs, x])
        outputs = L.ReLU(max_value=1.0, name="enhanced")(x)
    else:
        outputs = ScaledTanh(name="enhanced")(x)
    return keras.Model(inputs, outputs, name=name)


#: (filters, stride) of the discriminator's 8 conv -> LeakyReLU -> instance-norm blocks.
DISC_BLOCKS = ((64, 1), (64, 2), (128, 1), (128, 2), (256, 1), (256, 2), (512, 1), (512, 2))


def nonbn_resg_discriminator(input_shape=(96, 96, 3), name: str = "nonbn_resg_discriminator") -> keras.Model:
    """NonBN-ResG's discriminator: 8 x [3x3 conv, LeakyReLU(0.2), instance norm], dense
    1024, LeakyReLU(0.2), dense 1.

    Input ``(N, P, P, 3)`` float32 in [0, 1], P > 16; output ``(N, 1)`` logits, "sharp
    photo" positive (the sigmoid is in the ``bce`` loss). At P <= 16 the last blocks' maps
    are one pixel, which instance norm turns into a constant: such a discriminator could
    not see its input, so it is refused.
    """
    side = min(int(d) for d in input_shape[:2])
    if side <= 16:
        raise UserError(f"nonbn_resg's discriminator needs patches larger than 16x16 (its last maps would be one pixel, "
                        f"which instance norm makes constant); got {input_shape[0]}x{input_shape[1]}: use a larger --patch_size")
    inputs = keras.Input(tuple(input_shape), name="view")
    x = inputs
    for i, (filters, stride) in enumerate(DISC_BLOCKS, start=1):
        x = L.Conv2D(filters, 3, strides=stride, padding="same", name=f"conv{i}")(x)
        x = L.LeakyReLU(0.2, name=f"conv{i}_lrelu")(x)
        x = InstanceNormalization(epsilon=1e-3, name=f"conv{i}_in")(x)
    x = L.Flatten(name="flatten")(x)
    x = L.Dense(1024, name="fc1")(x)
    x = L.LeakyReLU(0.2, name="fc1_lrelu")(x)
    outputs = L.Dense(1, name="logit")(x)
    return keras.Model(inputs, outputs, name=name)


#: The discriminator: sharp photos against sharpened ones, RGB, cross-entropy on logits.
SHARP = Discriminator("sharp", nonbn_resg_discriminator, sees="rgb", gan_loss="bce")

#: The paper's four terms: L1, then EnhanceNet's perceptual, texture and adversarial terms
#: with its weights x 1e-3 (see the module docstring).
LOSSES = (
    T("l1", 1.0),
    T("content", 2e-4, layers=("pool2",), mean_one=True),
    T("content", 2e-5, layers=("pool5",), mean_one=True),
    T("gram", 3e-10, layers=("relu1_1",), patch=16, mean_one=True),
    T("gram", 1e-9, layers=("relu2_1", "relu3_1"), patch=16, mean_one=True),
    T("gan", 2e-3, disc="sharp"),
)

#: Without VGG-19 weights: L1 and the adversarial term.
NOVGG = (T("l1", 1.0), T("gan", 2e-3, disc="sharp"))

CARD = ModelCard(
    name="nonbn_resg",
    paper=PAPER,
    builder=nonbn_resg_generator,
    size_multiple=SIZE_MULTIPLE,
    trains_on=("paired",),
    losses=LOSSES,
    preset=Preset(batch_size=16, patch_size=96, learning_rate=1e-4, schedule="cosine", steps=500_000, disc_steps=2),
    discriminators=(SHARP,),
    recipes={"novgg": NOVGG},
)
