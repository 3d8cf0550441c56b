"""EnhanceNet: x4 super-resolution by a residual on top of bicubic, and its discriminator.

Sajjadi, Schölkopf, Hirsch, "EnhanceNet: Single Image Super-Resolution Through Automated
Texture Synthesis", ICCV 2017 (arXiv 1612.07919).

The generator is the authors' released graph (msmsajjadi/EnhanceNet-Code, ``enhancenet.py``
and ``nnlib.py``): every convolution 3x3, 64 filters, stride 1, ``same``, with bias, and no
normalisation anywhere. The photo minus the per-channel means of the training set goes
through a 3x3 conv and ReLU, ten residual blocks ``h + conv(relu(conv(h)))`` (nothing after
the add), twice [nearest-neighbour x2, conv, ReLU], a conv and ReLU, and a conv to 3
channels: a residual that is added to the bicubic x4 of the input. 852,867 parameters,
those of the released checkpoint (``mobile-enhance import --format=enhancenet_tf``).

The bicubic is TensorFlow's legacy one (``align_corners=False``, ``half_pixel_centers=False``),
which the released weights were trained against: the network learned to correct its grid,
about 1.5 HR pixels off the centred one (``bicubic="centred"`` builds the graph on the
centred grid instead, for training from scratch on ``sr:`` data). It is computed inside the graph by
:class:`~mobile_enhance.models.layers.LegacyBicubicUpsample` from ops a full-integer
TFLite file takes, so no export needs a Flex op. The authors add the means back after the
bicubic of the mean-subtracted input; the taps sum to one, so that is the bicubic of the
photo itself, which is what this graph adds.

Choices where the release is silent, ours: the authors' graph does not clip, their script
clips when it saves; ``clip=True`` (the card's default) clips the sum to [0, 1] in the
graph (the card's output contract), ``clip=False`` is the released graph as it computes.

Layer names: ``conv_in``; ``res{b}_conv1``, ``res{b}_conv2``, ``res{b}_add`` (b = 1..10);
``up{i}`` (nearest x2), ``up{i}_conv`` (i = 1, 2); ``conv_post``; ``conv_out`` (the
residual); ``bicubic``; ``enhanced``.

The discriminator follows the supplement as both public re-implementations have it
(tensorpack ``enet-pat.py`` and a TF2 one): ten 3x3 convs of 32, 32/2, 64, 64/2, 128,
128/2, 256, 256/2, 512, 512/2 filters (``/2``: stride 2), each LeakyReLU(0.2), no
normalisation, then dense 1024 LeakyReLU(0.2) and dense 1, a logit (13,102,881 parameters
at 128x128). It sees the RGB crop in [0, 1] as it is (tensorpack subtracts the VGG means
first; nothing says the authors did).

Losses, the paper's terms (§4.2, weights of ENet-PAT from the supplement's Table 2): L_E
the pixel MSE; L_P the MSE of VGG-19 pool2 (weight 0.2) and pool5 (0.02) features; L_T the
Gram matrices of conv1_1 (3e-7), conv2_1 (1e-6) and conv3_1 (1e-6) features (after their
ReLU) on 16x16 tiles; L_A the non-saturating GAN loss (2); features normalised to a mean of
one (§5.3; see :func:`mobile_enhance.losses.functions.content`). Recipes: ``E`` (L_E),
``P`` (L_P), ``EA``, ``EAT``, ``PAT`` (= ``paper``). The paper gives the weights of
ENet-PAT; in ``EA`` and ``EAT`` the weight 1 of L_E is ours (L_E is the whole of ENet-E,
weight 1), L_A and L_T keep ENet-PAT's. ``E`` and ``EA`` need no VGG weights.

Training preset, as tensorpack's re-implementation has it (the authors released no
training code): 128x128 HR crops (32x32 LR), batch 16, Adam 1e-4. Ours where neither says:
Adam's betas (0.9, 0.999), a constant rate, the discriminator's rate that of the
generator, no warm-up, one discriminator step per generator step (tensorpack trains it
every third step and doubles its loss; the authors, its author reports, skip
discriminator steps while it wins), 1000 steps (the paper's count is not known to us).
"""

from __future__ import annotations

from mobile_enhance.compat import keras
from mobile_enhance.losses import T
from mobile_enhance.models.card import Discriminator, ModelCard, Preset
from mobile_enhance.models.layers import CentredBicubicUpsample, ChannelOffset, LegacyBicubicUpsample

PAPER = "Sajjadi et al., EnhanceNet (ICCV 2017)"
SIZE_MULTIPLE = 1
UPSCALE = 4

#: The per-channel means the authors subtract from the RGB input in [0, 1] (``enhancenet.py``).
PER_CHANNEL_MEANS = (0.47614917, 0.45001204, 0.40904046)

L = keras.layers


def _conv(filters, name, strides=1, activation=None):
    return L.Conv2D(filters, 3, strides=strides, padding="same", activation=activation, name=name)


def enhancenet_generator(
    input_shape=(None, None, 3),
    filters: int = 64,
    blocks: int = 10,
    clip: bool = True,
    bicubic: str = "legacy",
    name: str = "enhancenet",
) -> keras.Model:
    """The EnhanceNet x4 generator (see the module docstring).

    Args:
      input_shape: ``(H, W, 3)``; any H and W.
      filters: width of every hidden conv (64 in the release).
      blocks: residual blocks (10 in the release).
      clip: clip the output to [0, 1] (ours, the card's contract); False computes the
        released graph, which can overshoot [0, 1] slightly.
      bicubic: the upscaling the residual is added to: ``"legacy"`` (the release's, which
        its weights need) or ``"centred"`` (:class:`CentredBicubicUpsample`, the grid of the
        ``sr:`` source's inputs and baseline: for training on them from scratch, where the
        legacy grid starts ~2 dB below the baseline and has to learn a 1.5-pixel shift).

    Returns:
      Model mapping ``(N, H, W, 3)`` float32 in [0, 1] to ``(N, 4H, 4W, 3)`` float32 (in
      [0, 1] with ``clip``).
    """
    upsamplers = {"legacy": LegacyBicubicUpsample, "centred": CentredBicubicUpsample}
    if bicubic not in upsamplers:
        raise ValueError(f"enhancenet: bicubic must be one of {sorted(upsamplers)}, got {bicubic!r}")
    inputs = keras.Input(input_shape, name="low_res")
    x = ChannelOffset([-m for m in PER_CHANNEL_MEANS], name="sub_means")(inputs)
    x = _conv(filters, "conv_in", activation="relu")(x)
    for b in range(1, blocks + 1):
        h = _conv(filters, f"res{b}_conv1", activation="relu")(x)
        h = _conv(filters, f"res{b}_conv2")(h)
        x = L.Add(name=f"res{b}_add")([x, h])
    for i in (1, 2):
        x = L.UpSampling2D(2, interpolation="nearest", name=f"up{i}")(x)
        x = _conv(filters, f"up{i}_conv", activation="relu")(x)
    x = _conv(filters, "conv_post", activation="relu")(x)
    residual = _conv(3, "conv_out")(x)
    base = upsamplers[bicubic](UPSCALE, name="bicubic")(inputs)
    if clip:
        x = L.Add(name="residual_add")([residual, base])
        outputs = L.ReLU(max_value=1.0, name="enhanced")(x)
    else:
        outputs = L.Add(name="enhanced")([residual, base])
    return keras.Model(inputs, outputs, name=name)


def enhancenet_discriminator(input_shape=(128, 128, 3), name: str = "enhancenet_discriminator") -> keras.Model:
    """EnhanceNet's discriminator (see the module docstring).

    Input ``(N, P, P, 3)`` float32 in [0, 1] (HR crops, P = 128 in training); output
    ``(N, 1)`` logits, positive = "real photo".
    """
    inputs = keras.Input(tuple(input_shape), name="view")
    x = inputs
    for i, width in enumerate((32, 64, 128, 256, 512), start=1):
        for suffix, stride in (("a", 1), ("b", 2)):
            x = _conv(width, f"conv{i}{suffix}", strides=stride)(x)
            x = L.LeakyReLU(0.2, name=f"conv{i}{suffix}_lrelu")(x)
    x = L.Flatten(name="flatten")(x)
    x = L.Dense(1024, name="fc1")(x)
    x = L.LeakyReLU(0.2, name="fc1_lrelu")(x)
    outputs = L.Dense(1, name="logit")(x)
    return keras.Model(inputs, outputs, name=name)


#: The discriminator of the adversarial term: RGB HR crops, non-saturating GAN loss on logits.
IMAGE = Discriminator("image", enhancenet_discriminator, sees="rgb", gan_loss="bce")

#: The loss terms, ENet-PAT's weights (supplement Table 2); features normalised to a mean of one.
L_E = (T("l2", 1.0),)
L_P = (T("content", 2e-1, layers=("pool2",), mean_one=True), T("content", 2e-2, layers=("pool5",), mean_one=True))
L_A = (T("gan", 2.0, disc="image"),)
L_T = (
    T("gram", 3e-7, layers=("relu1_1",), patch=16, mean_one=True),
    T("gram", 1e-6, layers=("relu2_1",), patch=16, mean_one=True),
    T("gram", 1e-6, layers=("relu3_1",), patch=16, mean_one=True),
)

#: The paper's variants by name; ``PAT`` is the released model's and the card's ``paper``.
RECIPES = {
    "E": L_E,
    "P": L_P,
    "EA": L_E + L_A,
    "EAT": L_E + L_A + L_T,
    "PAT": L_P + L_A + L_T,
}

CARD = ModelCard(
    name="enhancenet",
    paper=PAPER,
    builder=enhancenet_generator,
    size_multiple=SIZE_MULTIPLE,
    upscale=UPSCALE,
    trains_on=("sr",),
    losses=RECIPES["PAT"],
    # tensorpack's enet-pat.py: batch 16, 128-px HR crops (32-px LR), Adam 1e-4
    preset=Preset(batch_size=16, patch_size=128, learning_rate=1e-4),
    discriminators=(IMAGE,),
    recipes=dict(RECIPES),
    # the bicubic skip and the sum: in int8 they cost 5 dB from the float model (51.3 dB
    # against 56.2 kept float, trained x4 model at 45x80; benchmarks/README.md)
    float_in_int8=("bicubic", "residual_add", "enhanced"),
)
