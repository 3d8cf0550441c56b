"""Image quality metrics shared by training, export and evaluation, in numpy and scipy.

:func:`image_metrics` scores ``(N, H, W, 3)`` images in [0, 1] against targets of the
same shape and returns the means over the batch of:

  * **PSNR** (dB, peak 1.0): ``-10 log10(MSE)``, the MSE over all pixels and channels of
    an image; the definition of ``tf.image.psnr(a, b, max_val=1.0)``. Identical images
    give ``inf``.
  * **SSIM** (Wang et al., 2004): an 11x11 Gaussian window (sigma 1.5), k1 0.01, k2 0.03,
    only the windows that fit inside the image (VALID), biased (weighted) variances, the
    mean of the SSIM map per channel, then the mean over channels; the definition of
    ``tf.image.ssim(a, b, max_val=1.0)`` with its defaults. Images need both sides >= 11,
    as there.
  * **MS-SSIM** (Wang et al., 2003): as :func:`mobile_enhance.losses.functions.ms_ssim_value`
    (the training loss's definition): a 7x7 Gaussian window (sigma 1.5), 2x2 average
    pooling between scales (odd rows and columns dropped), as many of the 5 scales as
    keep the smaller side >= 7 with the standard weights of those renormalised to sum 1,
    contrast-structure terms of the coarser scales and the SSIM of the last, each
    averaged over pixels and channels and clamped at 1e-6 before its power. Images need
    both sides >= 7.

These reproduce the TensorFlow functions named above without importing TensorFlow, so
evaluating a ``.tflite`` file needs only numpy, scipy and LiteRT; ``tests/test_metrics.py``
compares them under stated tolerances. Inputs are taken as float32 (as TensorFlow saw
them) and summed in float64, so the figures differ from TensorFlow's only by its float32
rounding (``tf.image.ssim``'s float32 mean of the SSIM map drifts most, on large,
nearly identical images). The Gaussian filters are separable (two 1-D passes).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import correlate1d

#: ``tf.image.ssim``'s defaults.
SSIM_FILTER, SSIM_SIGMA, K1, K2 = 11, 1.5, 0.01, 0.03
#: :func:`mobile_enhance.losses.functions.ms_ssim_value`'s defaults.
MS_SSIM_FILTER, MS_SSIM_SCALES = 7, 5
#: Standard MS-SSIM weights (finest scale first); the same as ``losses.functions.MS_SSIM_WEIGHTS``.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
#: Pixels (images x H x W, one channel) filtered at once: bounds the float64 temporaries.
_SLAB = 1 << 22


def _gauss_1d(size: int, sigma: float) -> np.ndarray:
    """The 1-D factor of the ``size x size`` Gaussian window (their outer product), sum 1."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _blur_valid(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``(n, H, W)`` -> ``(n, H-k+1, W-k+1)``: correlation with ``outer(g, g)``, VALID."""
    k, c = len(g), len(g) // 2
    h, w = x.shape[1] - k + 1, x.shape[2] - k + 1
    x = correlate1d(x, g, axis=1, mode="constant")[:, c : c + h]
    return correlate1d(x, g, axis=2, mode="constant")[:, :, c : c + w]


def _ssim_means(a: np.ndarray, b: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per image of ``(n, H, W)`` float64 (one channel): mean of the SSIM map, mean of cs."""
    c1, c2 = K1**2, K2**2
    mu_a, mu_b = _blur_valid(a, g), _blur_valid(b, g)
    mu_ab = mu_a * mu_b
    mu_sq = mu_a * mu_a + mu_b * mu_b
    luminance = (2 * mu_ab + c1) / (mu_sq + c1)
    cs = (2 * (_blur_valid(a * b, g) - mu_ab) + c2) / (_blur_valid(a * a + b * b, g) - mu_sq + c2)
    return (luminance * cs).mean(axis=(1, 2)), cs.mean(axis=(1, 2))


def _slabs(n: int, h: int, w: int):
    """Index ranges over ``n`` images of ``h x w`` with at most ``_SLAB`` pixels each (>= 1 image)."""
    step = max(1, _SLAB // max(1, h * w))
    return [slice(i, i + step) for i in range(0, n, step)]


def _check(a: np.ndarray, b: np.ndarray, side: int, what: str) -> None:
    if a.shape != b.shape or a.ndim != 4:
        raise ValueError(f"{what} needs two (N, H, W, C) batches of one shape, got {a.shape} and {b.shape}")
    if min(a.shape[1:3]) < side:
        raise ValueError(f"{what} needs images of at least {side}x{side}, got {a.shape[1]}x{a.shape[2]}")


def psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(N,)`` PSNR in dB (peak 1.0) of ``(N, H, W, C)`` batches, as ``tf.image.psnr``."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 4:
        raise ValueError(f"PSNR needs two (N, H, W, C) batches of one shape, got {a.shape} and {b.shape}")
    mse = np.stack([np.mean(np.square(a[i] - b[i])) for i in range(len(a))]) if len(a) else np.zeros(0)
    with np.errstate(divide="ignore"):
        return -10.0 * np.log10(mse)


def ssim(a: np.ndarray, b: np.ndarray, filter_size: int = SSIM_FILTER, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """``(N,)`` SSIM of ``(N, H, W, C)`` batches in [0, 1], as ``tf.image.ssim(max_val=1.0)``."""
    a, b = np.asarray(a), np.asarray(b)
    _check(a, b, filter_size, "SSIM")
    g = _gauss_1d(filter_size, sigma)
    out = np.zeros(len(a))
    for ch in range(a.shape[3]):
        for s in _slabs(*a.shape[:3]):
            value, _ = _ssim_means(a[s, ..., ch].astype(np.float64), b[s, ..., ch].astype(np.float64), g)
            out[s] += value
    return out / a.shape[3]


def _pool2(x: np.ndarray) -> np.ndarray:
    """2x2 average pooling of ``(n, H, W)``, VALID (an odd last row or column is dropped)."""
    n, h, w = x.shape
    x = x[:, : h // 2 * 2, : w // 2 * 2]
    return x.reshape(n, h // 2, 2, w // 2, 2).mean(axis=(2, 4))


def ms_ssim(a: np.ndarray, b: np.ndarray, filter_size: int = MS_SSIM_FILTER, max_scales: int = MS_SSIM_SCALES,
            sigma: float = SSIM_SIGMA) -> np.ndarray:
    """``(N,)`` MS-SSIM of ``(N, H, W, C)`` batches in [0, 1], as
    :func:`mobile_enhance.losses.functions.ms_ssim_value`."""
    a, b = np.asarray(a), np.asarray(b)
    _check(a, b, filter_size, "MS-SSIM")
    size = min(a.shape[1:3])
    scales = 1
    while scales < max_scales and size // (2**scales) >= filter_size:
        scales += 1
    weights = np.array(MS_SSIM_WEIGHTS[:scales], np.float64)
    weights = (weights / weights.sum()).astype(np.float32).astype(np.float64)  # the loss's float32 weights
    g = _gauss_1d(filter_size, sigma)
    terms = np.zeros((len(a), scales))  # per image and scale: cs (coarser scales), SSIM (the last)
    for ch in range(a.shape[3]):
        for s in _slabs(*a.shape[:3]):
            x, y = a[s, ..., ch].astype(np.float64), b[s, ..., ch].astype(np.float64)
            for j in range(scales):
                value, cs = _ssim_means(x, y, g)
                terms[s, j] += value if j == scales - 1 else cs
                if j < scales - 1:
                    x, y = _pool2(x), _pool2(y)
    terms /= a.shape[3]
    return np.prod(np.maximum(terms, 1e-6) ** weights, axis=1)


def image_metrics(enhanced: np.ndarray, target: np.ndarray) -> dict:
    """Mean PSNR (dB), SSIM and MS-SSIM over ``(N, H, W, 3)`` images in [0, 1].

    ``enhanced`` is clipped to [0, 1] first, as an 8-bit output would be. Both are taken
    as float32 first (as the TensorFlow definitions saw them), then summed in float64.
    Returns ``{"psnr", "ssim", "ms_ssim"}`` as Python floats.
    """
    a = np.clip(np.asarray(enhanced, np.float32), 0.0, 1.0)
    b = np.asarray(target, np.float32)
    return {
        "psnr": float(np.mean(psnr(a, b))),
        "ssim": float(np.mean(ssim(a, b))),
        "ms_ssim": float(np.mean(ms_ssim(a, b))),
    }


__all__ = ["image_metrics", "ms_ssim", "psnr", "ssim"]
