"""Loss functions of the enhancement papers, each returning one value per example.

Inputs are ``(N, H, W, 3)`` float32 in [0, 1] (``enhanced``, ``target``); every function
returns a ``(N,)`` tensor, so the trainer averages over the global batch the same way
on one device or many. Where a paper's weights were tuned for its own normalisation
(sum over pixels, sum over the batch), the function reproduces that normalisation and
says so, so the paper's weights carry over unchanged.
"""

from __future__ import annotations

import numpy as np

from mobile_enhance.compat import tf


def _per_example_mean(x):
    return tf.reduce_mean(tf.reshape(x, [tf.shape(x)[0], -1]), axis=1)


def _per_example_sum(x):
    return tf.reduce_sum(tf.reshape(x, [tf.shape(x)[0], -1]), axis=1)


# -- pixel losses ----------------------------------------------------------------------


def l1(enhanced, target):
    """Mean absolute error per example."""
    return _per_example_mean(tf.abs(enhanced - target))


def l2(enhanced, target):
    """Mean squared error per example."""
    return _per_example_mean(tf.square(enhanced - target))


def dped_gauss_kernel(size: int = 21, nsig: float = 3.0) -> np.ndarray:
    """DPED's blur kernel: ``size x size``, spanning ``nsig`` standard deviations.

    The kernel is the square root of the outer product of binned normal densities,
    normalised to sum 1, as in DPED's code (its effective sigma is about 4.3 px).
    """
    from math import erf, sqrt

    interval = (2 * nsig + 1.0) / size
    x = np.linspace(-nsig - interval / 2.0, nsig + interval / 2.0, size + 1)
    cdf = np.array([0.5 * (1 + erf(v / sqrt(2))) for v in x])
    k1 = np.diff(cdf)
    kernel = np.sqrt(np.outer(k1, k1))
    return (kernel / kernel.sum()).astype(np.float32)


def gaussian_blur(images, size: int = 21, nsig: float = 3.0):
    """Depthwise blur of ``(N, H, W, C)`` with :func:`dped_gauss_kernel`, zero padding."""
    images = tf.cast(images, tf.float32)
    kernel = dped_gauss_kernel(size, nsig)
    channels = images.shape[-1]
    kernel = np.tile(kernel[:, :, None, None], (1, 1, channels, 1))
    return tf.nn.depthwise_conv2d(images, kernel, [1, 1, 1, 1], padding="SAME")


def color(enhanced, target, size: int = 21, nsig: float = 3.0):
    """DPED colour loss: squared difference of Gaussian-blurred images.

    DPED normalisation: half the sum over pixels and channels per example (its weight
    0.5 assumes it).
    """
    diff = gaussian_blur(target, size, nsig) - gaussian_blur(enhanced, size, nsig)
    return _per_example_sum(tf.square(diff)) / 2.0


def l1_sum(enhanced, target, scale: float = 0.1):
    """RSGUNet's colour term: ``scale`` x half the per-example sum of absolute differences."""
    return scale * _per_example_sum(tf.abs(enhanced - target)) / 2.0


def total_variation(enhanced, target=None):
    """DPED total variation: mean squared horizontal plus mean squared vertical difference."""
    dy = enhanced[:, 1:] - enhanced[:, :-1]
    dx = enhanced[:, :, 1:] - enhanced[:, :, :-1]
    return _per_example_mean(tf.square(dx)) + _per_example_mean(tf.square(dy))


def rgb_to_yuv(images):
    """BT.601 YUV of RGB in [0, 1]."""
    return tf.image.rgb_to_yuv(images)


def yuv_l1(enhanced, target, weights=(1.0, 0.5, 0.5)):
    """L1 in YUV with per-channel weights (Mux/Demux's weighted L1).

    The paper weights the channels to favour PSNR; its exact weights are not public,
    so the default stresses luminance: Y 1.0, U 0.5, V 0.5.
    """
    diff = tf.abs(rgb_to_yuv(enhanced) - rgb_to_yuv(target)) * tf.constant(weights, tf.float32)
    return _per_example_mean(diff) * 3.0 / float(sum(weights))


def cycle_mse(x, x_cycled, y, y_cycled):
    """DPE's cycle ("constant") term: ``MSE(F(G(x)), x) + MSE(G(F(y)), y)`` per example."""
    return l2(x_cycled, x) + l2(y_cycled, y)


def identity_mse(x, enhanced, y=None, inverted=None):
    """DPE's identity ("source data") term: ``MSE(G(x), x)``, plus ``MSE(F(y), y)`` with an
    inverse generator, per example (it keeps the output's content that of the input)."""
    value = l2(enhanced, x)
    return value if inverted is None else value + l2(inverted, y)


# -- structural ------------------------------------------------------------------------

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _gauss_window(size: int, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(x**2) / (2 * sigma**2))
    g /= g.sum()
    return np.outer(g, g).astype(np.float32)


def _ssim_parts(a, b, window):
    """Per-example mean luminance*cs (SSIM) and cs terms, 'VALID' Gaussian window."""
    c = a.shape[-1]
    kernel = np.tile(window[:, :, None, None], (1, 1, c, 1))
    blur = lambda t: tf.nn.depthwise_conv2d(t, kernel, [1, 1, 1, 1], "VALID")  # noqa: E731
    mu_a, mu_b = blur(a), blur(b)
    s_aa = blur(a * a) - mu_a * mu_a
    s_bb = blur(b * b) - mu_b * mu_b
    s_ab = blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    luminance = (2 * mu_a * mu_b + c1) / (mu_a * mu_a + mu_b * mu_b + c1)
    cs = (2 * s_ab + c2) / (s_aa + s_bb + c2)
    return _per_example_mean(luminance * cs), _per_example_mean(cs)


def ms_ssim_value(a, b, filter_size: int = 7, max_scales: int = 5, sigma: float = 1.5):
    """Multi-scale SSIM per example (Wang et al., 2003), with as many scales as fit.

    Images are ``(N, H, W, C)`` in [0, 1]; 2x2 average pooling between scales; a
    Gaussian window of ``filter_size`` and ``sigma``. Scales whose size would drop below
    the window are left out and the standard weights of the rest renormalised (100x100
    patches with a 7x7 window keep 4 scales). Terms are clamped at a small positive
    value before the fractional powers, so the gradient stays finite where
    ``tf.image.ssim_multiscale``'s gives NaN (a negative or zero contrast term).
    """
    a = tf.cast(a, tf.float32)
    b = tf.cast(b, tf.float32)
    size = min(int(a.shape[1]), int(a.shape[2]))
    if size < filter_size:
        raise ValueError(f"MS-SSIM needs images of at least {filter_size}x{filter_size}, got {a.shape[1]}x{a.shape[2]}")
    scales = 1
    while scales < max_scales and size // (2**scales) >= filter_size:
        scales += 1
    weights = np.array(MS_SSIM_WEIGHTS[:scales], np.float64)
    weights = (weights / weights.sum()).astype(np.float32)
    window = _gauss_window(filter_size, sigma)
    value = 1.0
    for j in range(scales):
        ssim, cs = _ssim_parts(a, b, window)
        term = ssim if j == scales - 1 else cs
        value = value * tf.pow(tf.maximum(term, 1e-6), weights[j])
        if j < scales - 1:
            a = tf.nn.avg_pool2d(a, 2, 2, "VALID")
            b = tf.nn.avg_pool2d(b, 2, 2, "VALID")
    return value


def ssim(enhanced, target, filter_size: int = 11, scale: float = 1.0):
    """``scale * (1 - SSIM)`` per example: single scale, Gaussian window ``filter_size``
    (sigma 1.5), the SSIM our validation reports (``tf.image.ssim``'s settings)."""
    value, _ = _ssim_parts(tf.cast(enhanced, tf.float32), tf.cast(target, tf.float32), _gauss_window(filter_size))
    return scale * (1.0 - value)


def ms_ssim(enhanced, target, filter_size: int = 7, scale: float = 1.0):
    """``scale * (1 - MS-SSIM)`` per example (RSGUNet: scale 1000 on grayscale)."""
    return scale * (1.0 - ms_ssim_value(enhanced, target, filter_size))


def ms_ssim_gray(enhanced, target, filter_size: int = 7, scale: float = 1000.0):
    """RSGUNet's MS-SSIM term: ``1000 * (1 - MS-SSIM)`` on grayscale images."""
    gray = tf.image.rgb_to_grayscale
    return scale * (1.0 - ms_ssim_value(gray(enhanced), gray(target), filter_size))


# -- feature losses (need a VGG; see mobile_enhance.losses.vgg) ------------------------


def normalize_mean_one(features_enhanced, features_target, eps: float = 1e-6):
    """Both feature maps ``(N, H, W, C)`` divided by the target's mean over H, W and C, one
    scalar per example (EnhanceNet §5.3: "we normalized feature activations to have a mean
    of one").

    The paper does not say over which axes. Of the two public re-implementations, one
    divides every pixel's features by their channel mean, which is near zero wherever a
    pixel's ReLU features are, and would erase the local contrast the texture term is
    there to match; tensorpack divides each image's features by their own mean over
    H, W, C. We take tensorpack's axes and the target's mean for both images: the term is
    then an MSE of features on the scale where the target layer's mean is one, as the
    paper says, without tensorpack's blindness to a global scaling of the estimate's
    features (dividing each by its own mean cancels one), and with a divisor that depends
    on the target only, so the generator's gradient is that of a scaled MSE. The mean is
    held at ``eps`` at least.
    """
    scale = tf.maximum(tf.reduce_mean(features_target, axis=[1, 2, 3], keepdims=True), eps)
    return features_enhanced / scale, features_target / scale


def content(features_enhanced: dict, features_target: dict, layers=("relu5_4",), mean_one: bool = False):
    """Mean squared difference of VGG-19 features per example, averaged over ``layers``.

    DPED's content loss (``relu5_4``) by default. EnhanceNet's perceptual loss L_P is
    ``layers=("pool2",)`` and ``("pool5",)`` with ``mean_one``: the features divided by
    the target's mean first (:func:`normalize_mean_one`).
    """
    terms = []
    for k in layers:
        a, b = features_enhanced[k], features_target[k]
        if mean_one:
            a, b = normalize_mean_one(a, b)
        terms.append(_per_example_mean(tf.square(a - b)))
    return tf.add_n(terms) / float(len(terms))


def gram_matrix(features):
    """``(N, H, W, C) -> (N, C, C)`` Gram matrix normalised by ``H * W * C``."""
    shape = tf.shape(features)
    flat = tf.reshape(features, [shape[0], -1, shape[3]])
    return tf.matmul(flat, flat, transpose_a=True) / tf.cast(shape[1] * shape[2] * shape[3], tf.float32)


def _side(features, axis: int):
    static = features.shape[axis]
    return int(static) if static is not None else tf.shape(features)[axis]


def patch_gram_matrices(features, patch: int):
    """``(N, H, W, C) -> (N, T, C, C)``: the Gram matrix ``F^T F`` of each non-overlapping
    ``patch x patch`` tile (T tiles, row-major), summed over the tile's pixels and not
    normalised, as EnhanceNet's texture loss has it (its weights assume it).

    Rows and columns past the last whole tile are left out; a map smaller than ``patch``
    on a side is one tile of its own size on that side (EnhanceNet's conv3_1 is 32x32 on
    128-px crops; on smaller crops the deeper maps have fewer pixels than a tile).
    """
    h, w = _side(features, 1), _side(features, 2)
    ph = tf.minimum(patch, h) if isinstance(h, tf.Tensor) else min(patch, h)
    pw = tf.minimum(patch, w) if isinstance(w, tf.Tensor) else min(patch, w)
    rows, cols = h // ph, w // pw
    c = features.shape[-1]
    c = int(c) if c is not None else tf.shape(features)[-1]
    n = tf.shape(features)[0]
    tiles = features[:, : rows * ph, : cols * pw]
    tiles = tf.reshape(tiles, tf.stack([n, rows, ph, cols, pw, c]))
    tiles = tf.transpose(tiles, [0, 1, 3, 2, 4, 5])
    tiles = tf.reshape(tiles, tf.stack([n, rows * cols, ph * pw, c]))
    return tf.matmul(tiles, tiles, transpose_a=True)


def gram_texture(features_enhanced: dict, features_target: dict, layers=("relu1_2", "relu2_2", "relu3_4"),
                 patch: int | None = None, mean_one: bool = False):
    """Texture loss: squared difference of Gram matrices, per example, summed over ``layers``.

    ``patch=None``: one Gram matrix of the whole map, normalised by ``H * W * C``
    (:func:`gram_matrix`), the mean over its entries. ``patch=P``: EnhanceNet's L_T
    (§4.2.3, 16x16 tiles): the Gram matrices of the map's ``P x P`` tiles
    (:func:`patch_gram_matrices`, unnormalised), the mean over tiles and entries, as
    tensorpack's re-implementation computes it; EnhanceNet's weights (3e-7 on ``relu1_1``,
    1e-6 on ``relu2_1`` and ``relu3_1``) assume that scale. With ``mean_one`` the features
    are divided by the target's mean first (:func:`normalize_mean_one`).
    """
    terms = []
    for k in layers:
        a, b = features_enhanced[k], features_target[k]
        if mean_one:
            a, b = normalize_mean_one(a, b)
        if patch is None:
            ga, gb = gram_matrix(a), gram_matrix(b)
        else:
            ga, gb = patch_gram_matrices(a, int(patch)), patch_gram_matrices(b, int(patch))
        terms.append(_per_example_mean(tf.square(ga - gb)))
    return tf.add_n(terms)


def contextual(features_enhanced: dict, features_target: dict, layers=("relu4_2",), bandwidth: float = 0.5, eps: float = 1e-5):
    """Contextual loss (Mechrez et al., ECCV 2018) per example, averaged over ``layers``.

    Features are centred on the target's mean, L2-normalised, compared by cosine
    distance; distances are normalised by each row's minimum, turned into affinities
    with ``exp((1 - d) / bandwidth)``, normalised per row; the loss is
    ``-log(mean_j max_i CX_ij)``.
    """
    terms = []
    for k in layers:
        x, y = features_enhanced[k], features_target[k]
        c = tf.shape(x)[-1]
        x = tf.reshape(x, [tf.shape(x)[0], -1, c])
        y = tf.reshape(y, [tf.shape(y)[0], -1, c])
        mu = tf.reduce_mean(y, axis=1, keepdims=True)
        x = tf.math.l2_normalize(x - mu, axis=-1)
        y = tf.math.l2_normalize(y - mu, axis=-1)
        d = 1.0 - tf.matmul(x, y, transpose_b=True)  # (N, Px, Py) cosine distance
        d_rel = d / (tf.reduce_min(d, axis=2, keepdims=True) + eps)
        w = tf.exp((1.0 - d_rel) / bandwidth)
        cx = w / tf.reduce_sum(w, axis=2, keepdims=True)
        score = tf.reduce_mean(tf.reduce_max(cx, axis=1), axis=1)
        terms.append(-tf.math.log(score + eps))
    return tf.add_n(terms) / float(len(terms))


# -- adversarial -----------------------------------------------------------------------


def to_gray(images):
    return tf.image.rgb_to_grayscale(images)


def texture_generator(prob_enhanced, batch_sum: bool = True, global_batch: int | None = None):
    """DPED texture (adversarial) loss for the generator, per example.

    ``prob_enhanced``: the discriminator's ``(N, 2)`` softmax on grayscale enhanced
    images, column 0 = "DSLR". The generator minimises ``log p(enhanced)`` (DPED writes
    it as minus the discriminator's cross-entropy). DPED sums over the batch rather than averaging;
    with ``batch_sum`` (and ``global_batch``) the per-example value is scaled so the
    trainer's batch average equals that sum and DPED's weight 1 keeps its meaning.
    """
    value = tf.math.log(tf.clip_by_value(prob_enhanced[:, 1], 1e-10, 1.0))
    return value * float(global_batch) if batch_sum and global_batch else value


def discriminator_loss(prob_real, prob_fake, batch_sum: bool = True, global_batch: int | None = None):
    """DPED discriminator cross-entropy per example: real = column 0, enhanced = column 1."""
    value = -(
        tf.math.log(tf.clip_by_value(prob_real[:, 0], 1e-10, 1.0)) + tf.math.log(tf.clip_by_value(prob_fake[:, 1], 1e-10, 1.0))
    ) / 2.0
    return value * float(global_batch) if batch_sum and global_batch else value


def wgan_gp_critic(critic, real, fake, gp_weight: float = 10.0):
    """WGAN-GP critic loss per example (Gulrajani et al., 2017).

    ``critic(x) -> (N, 1)`` scores. Loss: ``D(fake) - D(real) + gp_weight * (||grad
    D(x_hat)|| - 1)^2`` at random interpolates ``x_hat``.
    """
    n = tf.shape(real)[0]
    alpha = tf.random.uniform(tf.stack([n] + [1] * (len(real.shape) - 1)))
    x_hat = alpha * real + (1.0 - alpha) * fake
    with tf.GradientTape() as tape:
        tape.watch(x_hat)
        score = critic(x_hat, training=True)
    grads = tape.gradient(score, x_hat)
    norm = tf.sqrt(_per_example_sum(tf.square(grads)) + 1e-12)
    wasserstein = tf.reshape(critic(fake, training=True), [-1]) - tf.reshape(critic(real, training=True), [-1])
    return wasserstein + gp_weight * tf.square(norm - 1.0)


def wgan_generator(critic_fake):
    """WGAN generator loss per example: ``-D(fake)``."""
    return -tf.reshape(critic_fake, [-1])
