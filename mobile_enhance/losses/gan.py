"""GAN losses and what a discriminator sees, named by model cards.

A card's :class:`mobile_enhance.models.card.Discriminator` names one view (its input
transform) and one GAN loss. Every function returns one value per example (``(N,)``),
so the task averages over the global batch the same way on one device or many.
Discriminator outputs may be ``(N, K)`` or patch maps ``(N, h, w, K)``; the per-example
mean is taken.

Randomness (WGAN-GP interpolates, noisy LSGAN labels) is stateless, seeded by the task
with the step, so a resumed run draws what the uninterrupted run drew.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from mobile_enhance.compat import tf
from mobile_enhance.losses import functions as F


def _blur_rgb(images):
    return F.gaussian_blur(images, 21, 3.0)


def _rgb(images):
    return images


@dataclasses.dataclass(frozen=True)
class View:
    """A discriminator's input transform: ``fn`` of ``(N, H, W, 3)`` -> ``(N, H, W, channels)``."""

    fn: Callable
    channels: int


#: What a discriminator can see: the RGB image, its luminance (DPED's texture
#: discriminator), or the RGB image Gaussian-blurred with DPED's 21x21 kernel (WESPE's
#: colour discriminator: colour and brightness without texture).
VIEWS = {
    "rgb": View(_rgb, 3),
    "gray": View(F.to_gray, 1),
    "blur_rgb": View(_blur_rgb, 3),
}


def _mean(x):
    return F._per_example_mean(tf.cast(x, tf.float32))


# -- DPED's two-class softmax ------------------------------------------------------------


def _softmax_g(d_fake, global_batch=None, batch_sum: bool = True):
    return F.texture_generator(d_fake, batch_sum=batch_sum, global_batch=global_batch)


def _softmax_d(disc, real, fake, *, global_batch=None, seed=None, weight=None, batch_sum: bool = True):
    value = F.discriminator_loss(disc(real, training=True), disc(fake, training=True), batch_sum=batch_sum, global_batch=global_batch)
    return value, {}


# -- non-saturating BCE on logits ------------------------------------------------------


def _bce_g(d_fake, global_batch=None):
    return _mean(tf.nn.softplus(-d_fake))


def _bce_d(disc, real, fake, *, global_batch=None, seed=None, weight=None):
    return _mean(tf.nn.softplus(-disc(real, training=True))) + _mean(tf.nn.softplus(disc(fake, training=True))), {}


# -- least squares ---------------------------------------------------------------------


def _label(like, value_range, seed):
    lo, hi = (float(v) for v in value_range)
    if lo == hi:
        return tf.fill(tf.shape(like), lo)
    return tf.random.stateless_uniform(tf.shape(like), seed, lo, hi)


def _lsgan_g(d_fake, global_batch=None, **_):
    return 0.5 * _mean(tf.square(d_fake - 1.0))


def _lsgan_d(disc, real, fake, *, global_batch=None, seed=None, weight=None, real_range=(1.0, 1.0), fake_range=(0.0, 0.0)):
    """LSGAN with optional noisy labels: real ~ U(real_range), fake ~ U(fake_range) (DRBN: 0.7-1.2, 0-0.3)."""
    d_real, d_fake = disc(real, training=True), disc(fake, training=True)
    seed = tf.zeros([2], tf.int64) if seed is None else seed
    value = 0.5 * _mean(tf.square(d_real - _label(d_real, real_range, seed))) + 0.5 * _mean(
        tf.square(d_fake - _label(d_fake, fake_range, seed + [0, 1]))
    )
    return value, {}


# -- WGAN-GP ---------------------------------------------------------------------------


def _wgan_g(d_fake, global_batch=None, **_):
    return -_mean(d_fake)


def _wgan_d(disc, real, fake, *, global_batch=None, seed=None, weight=None, gp_weight: float = 10.0, one_sided: bool = False):
    """Critic loss ``D(fake) - D(real) + weight * penalty`` (Gulrajani et al. 2017).

    The penalty is ``(||grad D(x_hat)|| - 1)^2`` at uniform interpolates ``x_hat`` of real
    and fake, or DPE's one-sided hinge ``max(0, ||grad|| - 1)`` with ``one_sided``.
    ``weight`` (a tensor, DPE's adaptive weight) replaces ``gp_weight`` when given. The
    extras carry the per-example penalty (before the weight).
    """
    n = tf.shape(real)[0]
    seed = tf.zeros([2], tf.int64) if seed is None else seed
    alpha = tf.random.stateless_uniform(tf.stack([n] + [1] * (len(real.shape) - 1)), seed)
    x_hat = alpha * real + (1.0 - alpha) * fake
    with tf.GradientTape() as tape:
        tape.watch(x_hat)
        score = disc(x_hat, training=True)
    grads = tape.gradient(score, x_hat)
    norm = tf.sqrt(F._per_example_sum(tf.square(grads)) + 1e-12)
    penalty = tf.nn.relu(norm - 1.0) if one_sided else tf.square(norm - 1.0)
    wasserstein = _mean(disc(fake, training=True)) - _mean(disc(real, training=True))
    w = tf.cast(gp_weight if weight is None else weight, tf.float32)
    return wasserstein + w * penalty, {"gp": penalty}


@dataclasses.dataclass(frozen=True)
class GanLoss:
    """A GAN loss's two sides.

    Attributes:
      generator: ``(d_fake, global_batch=None, **kwargs) -> (N,)``.
      discriminator: ``(disc, real, fake, *, global_batch, seed, weight, **kwargs) ->
        ((N,), extras)``; ``disc`` is called on the views of real and fake images.
    """

    generator: Callable
    discriminator: Callable


#: The GAN losses a card's discriminator can name.
GAN_LOSSES = {
    # DPED: (N, 2) softmax, column 0 "real"; sums over the batch as DPED's code does
    "dped_softmax": GanLoss(_softmax_g, _softmax_d),
    # non-saturating cross-entropy on logits (SRGAN, EnhanceNet, WESPE ports)
    "bce": GanLoss(_bce_g, _bce_d),
    # least squares (DRBN's stage 2, with noisy labels)
    "lsgan": GanLoss(_lsgan_g, _lsgan_d),
    # Wasserstein with gradient penalty (DPE, with its adaptive weight)
    "wgan_gp": GanLoss(_wgan_g, _wgan_d),
}

__all__ = ["GAN_LOSSES", "VIEWS", "GanLoss", "View"]
