"""A seedable model of how a small phone camera degrades a scene.

:class:`Degradation` turns a clean crop (the "DSLR" target) into a phone-like input.
The steps follow the camera pipeline, each with its parameter drawn uniformly from the
range given (per example, from the example's seed):

1. **Vignetting** (lens): brightness falls off as ``1 - v * r^2`` with ``r`` the distance
   from the centre of the *whole photo* (so crops near a corner are darker), ``v`` in
   ``vignetting``.
2. **Softness** (small lens, demosaicking): Gaussian blur, sigma in ``blur_sigma`` pixels.
3. **Colour cast** (white balance error): per-channel gains in ``color_gain``.
4. **Sensor noise**: signal-dependent shot noise plus read noise,
   ``x + sqrt(x) * N(0, shot^2) + N(0, read^2)``, shot in ``shot_noise``, read in
   ``read_noise``; luminance and chroma noise alike.
5. **Compressed tone and contrast** (flat phone tone curve): contrast pulled towards the
   mean by a factor in ``contrast``, shadows lifted by a gamma in ``gamma`` (> 1 lifts),
   then the range squeezed to ``[black, 1 - white_clip]`` with ``black`` in ``black_level``.
6. **JPEG** at a quality in ``jpeg_quality``.

The same ``(image, rng, frame)`` always gives the same output.
"""

from __future__ import annotations

import dataclasses
import io

import numpy as np
from PIL import Image


def gaussian_kernel1d(sigma: float) -> np.ndarray:
    radius = max(1, int(np.ceil(3 * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float32)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of ``(H, W, C)`` with reflected borders."""
    if sigma <= 0:
        return image
    k = gaussian_kernel1d(sigma)
    r = len(k) // 2
    padded = np.pad(image, ((r, r), (r, r), (0, 0)), mode="reflect")
    h, w = image.shape[:2]
    rows = sum(k[i] * padded[i : i + h] for i in range(len(k)))
    return sum(k[i] * rows[:, i : i + w] for i in range(len(k)))


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode and decode ``image`` (float [0, 1]) as JPEG at ``quality``."""
    buffer = io.BytesIO()
    Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)).save(buffer, "JPEG", quality=int(quality))
    buffer.seek(0)
    return np.asarray(Image.open(buffer).convert("RGB"), np.float32) / 255.0


@dataclasses.dataclass(frozen=True)
class Degradation:
    """Parameter ranges of the phone-camera model (see the module docstring).

    Attributes:
      vignetting: falloff strength at the photo's corner (r = 1).
      blur_sigma: Gaussian blur sigma, pixels.
      color_gain: per-channel gain range.
      shot_noise: shot-noise scale.
      read_noise: read-noise standard deviation.
      contrast: contrast factor (< 1 flattens).
      gamma: tone-curve exponent divisor (> 1 lifts shadows).
      black_level: raised black point.
      white_clip: lowered white point.
      jpeg_quality: JPEG quality range (integers).
    """

    vignetting: tuple = (0.1, 0.35)
    blur_sigma: tuple = (0.4, 1.2)
    color_gain: tuple = (0.88, 1.12)
    shot_noise: tuple = (0.005, 0.02)
    read_noise: tuple = (0.002, 0.01)
    contrast: tuple = (0.7, 0.9)
    gamma: tuple = (0.9, 1.25)
    black_level: tuple = (0.0, 0.06)
    white_clip: tuple = (0.0, 0.06)
    jpeg_quality: tuple = (60, 90)

    def __call__(self, image: np.ndarray, rng: np.random.Generator, frame=None) -> np.ndarray:
        """Degrade ``image`` ``(H, W, 3)`` float32 in [0, 1].

        Args:
          rng: source of the parameters and the noise.
          frame: ``(y, x, photo_h, photo_w)`` where the crop sits in its photo, for
            vignetting; ``None`` treats the crop as the whole photo.
        """
        u = lambda r: float(rng.uniform(*r))  # noqa: E731
        h, w = image.shape[:2]
        y0, x0, ph, pw = frame if frame is not None else (0, 0, h, w)
        yy = (np.arange(h, dtype=np.float32) + y0 + 0.5 - ph / 2) / (ph / 2)
        xx = (np.arange(w, dtype=np.float32) + x0 + 0.5 - pw / 2) / (pw / 2)
        r2 = (yy[:, None] ** 2 + xx[None, :] ** 2) / 2
        x = image * (1 - u(self.vignetting) * r2)[..., None]
        x = gaussian_blur(x, u(self.blur_sigma))
        x = x * np.array([u(self.color_gain) for _ in range(3)], np.float32)
        x = np.clip(x, 0, 1)
        x = x + np.sqrt(x) * rng.normal(0, u(self.shot_noise), x.shape) + rng.normal(0, u(self.read_noise), x.shape)
        x = np.clip(x, 0, 1)
        mean = x.mean()
        x = np.clip(mean + (x - mean) * u(self.contrast), 0, 1) ** (1 / u(self.gamma))
        black, white = u(self.black_level), 1 - u(self.white_clip)
        x = black + x * (white - black)
        quality = int(rng.integers(int(self.jpeg_quality[0]), int(self.jpeg_quality[1]) + 1))
        return jpeg_roundtrip(x.astype(np.float32), quality)
