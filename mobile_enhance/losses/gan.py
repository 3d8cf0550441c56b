"""GAN losses and what a discriminator sees, named by model cards.

A card's :class:`mobile_enhance.models.card.Discriminator` names one view (its input
transform) and one GAN loss. Every function returns one value per example (``(N,)``),
so the task averages over the global batch the same way on one device or many.
Discriminator outputs may be ``(N, K)`` or patch maps ``(N, h, w, K)``; the per-example
mean is taken.

Randomness (WGAN-GP interpolates, noisy LSGAN labels) comes from ``draw(shape, salt)``,
uniform in [0, 1): the task's is stateless, seeded with the step and drawn for the whole
global batch (each replica takes its rows), so a resumed run, and a run on more devices,
draws what the uninterrupted single-device run drew. Without one, ``draw`` is a stateless
draw of seed 0.
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


def _draw0(shape, salt: int):
    return tf.random.stateless_uniform(shape, tf.constant([0, salt], tf.int64))


# -- DPED's two-class softmax ------------------------------------------------------------


def _softmax_g(d_fake, global_batch=None, batch_sum: bool = True):
    return F.texture_generator(d_fake, batch_sum=batch_sum, global_batch=global_batch)


def _softmax_d(disc, real, fake, *, global_batch=None, draw=None, weight=None, batch_sum: bool = True):
    value = F.discriminator_loss(disc(real, training=True), disc(fake, training=True), batch_sum=batch_sum, global_batch=global_batch)
    return value, {}


# -- non-saturating BCE on logits ------------------------------------------------------


def _bce_g(d_fake, global_batch=None):
    return _mean(tf.nn.softplus(-d_fake))


def _bce_d(disc, real, fake, *, global_batch=None, draw=None, weight=None):
    return _mean(tf.nn.softplus(-disc(real, training=True))) + _mean(tf.nn.softplus(disc(fake, training=True))), {}


# -- least squares ---------------------------------------------------------------------


def _label(like, value_range, draw, salt: int):
    lo, hi = (float(v) for v in value_range)
    if lo == hi:
        return tf.fill(tf.shape(like), lo)
    return lo + (hi - lo) * draw(tf.shape(like), salt)


def _lsgan_g(d_fake, global_batch=None):
    return 0.5 * _mean(tf.square(d_fake - 1.0))


def _lsgan_d(disc, real, fake, *, global_batch=None, draw=None, weight=None, real_range=(1.0, 1.0), fake_range=(0.0, 0.0)):
    """LSGAN with optional noisy labels: real ~ U(real_range), fake ~ U(fake_range) (DRBN: 0.7-1.2, 0-0.3)."""
    draw = draw or _draw0
    d_real, d_fake = disc(real, training=True), disc(fake, training=True)
    value = 0.5 * _mean(tf.square(d_real - _label(d_real, real_range, draw, 1))) + 0.5 * _mean(
        tf.square(d_fake - _label(d_fake, fake_range, draw, 2))
    )
    return value, {}


# -- WGAN-GP ---------------------------------------------------------------------------


def _wgan_g(d_fake, global_batch=None):
    return -_mean(d_fake)


def _wgan_d(disc, real, fake, *, global_batch=None, draw=None, weight=None, gp_weight: float = 10.0, one_sided: bool = False):
    """Critic loss ``D(fake) - D(real) + weight * penalty`` (Gulrajani et al. 2017).

    The penalty is ``(||grad D(x_hat)|| - 1)^2`` at uniform interpolates ``x_hat`` of real
    and fake, or DPE's one-sided hinge ``max(0, ||grad|| - 1)`` with ``one_sided``; the
    gradient is that of each example's score (the mean of a patch map, as the
    Wasserstein term takes it). ``weight`` (a tensor, DPE's adaptive weight) replaces
    ``gp_weight`` when given. The extras carry the per-example penalty (before the weight).
    """
    draw = draw or _draw0
    n = tf.shape(real)[0]
    alpha = draw(tf.stack([n] + [1] * (len(real.shape) - 1)), 3)
    x_hat = alpha * real + (1.0 - alpha) * fake
    with tf.GradientTape() as tape:
        tape.watch(x_hat)
        score = _mean(disc(x_hat, training=True))
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
      discriminator: ``(disc, real, fake, *, global_batch, draw, weight, **kwargs) ->
        ((N,), extras)``; ``disc`` is called on the views of real and fake images.
    """

    generator: Callable
    discriminator: Callable

    def check_kwargs(self, side: str, kwargs: dict, where: str) -> None:
        """Refuse arguments the ``side`` (``generator`` or ``discriminator``) does not take, naming them."""
        import inspect

        fn = getattr(self, side)
        taken = [p.name for p in inspect.signature(fn).parameters.values() if p.kind == p.KEYWORD_ONLY or p.default is not p.empty]
        taken = [k for k in taken if k not in ("global_batch", "draw", "weight")]
        unknown = sorted(set(kwargs) - set(taken))
        if unknown:
            from mobile_enhance.errors import UserError

            raise UserError(f"{where}: unknown argument(s) {', '.join(unknown)}; it takes: {', '.join(taken) or 'none'}")


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
