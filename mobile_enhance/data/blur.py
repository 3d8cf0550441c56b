"""A seedable model of blurred, noisy photos: the inputs of same-size sharpening (deblurring).

:class:`Blur` turns a sharp crop (the target) into a blurred and noisy input. NonBN-ResG
(:mod:`mobile_enhance.models.nonbn_resg`), the paper this source was made for, trains on
blurred/sharp pairs but never says how its blurred images were made, so this is our
model, stated here. Per example, from the example's seed:

1. **One blur kernel**, its kind drawn uniformly from ``kinds``:

   * ``gaussian``: an isotropic Gaussian (lens softness, slight focus error), sigma
     uniform in :data:`GAUSSIAN_SIGMA` pixels, cut at 3 sigma;
   * ``defocus``: a uniform disk (the out-of-focus aperture image), radius uniform in
     :data:`DEFOCUS_RADIUS` pixels, its edge pixels weighted by the share of them the disk
     covers (antialiased, so small radii do not snap to a few sizes);
   * ``motion``: a straight line segment (camera shake or subject motion during the
     exposure), length uniform in :data:`MOTION_LENGTH` pixels at an angle uniform in
     :data:`MOTION_ANGLE` degrees, rasterised with bilinear weights.

   One kernel rather than all three in a row: a photo's blur usually has one dominant
   cause, and three kernels convolved together tend towards one larger Gaussian (the
   central limit), which would wash out the disk's and the line's shapes that make
   defocus and motion blur hard to undo. Every kernel sums to 1 (brightness is kept),
   and the crop is reflected outward at its borders before blurring, so each input
   depends on its own crop only.
2. **Sensor noise**, after the blur (the sensor records the blurred image):
   signal-dependent shot noise plus read noise, ``x + sqrt(x) * N(0, shot^2) +
   N(0, read^2)``, shot uniform in :data:`SHOT_NOISE`, read uniform in :data:`READ_NOISE`,
   independently per pixel and channel; then clipped to [0, 1].
3. **8-bit rounding**, as the input of a photo saved to a file would be.

The ranges are the dataclass's defaults; pass others to :class:`Blur`. The same
``(image, rng)`` always gives the same output.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage

#: Gaussian blur: sigma range, pixels (0.5: barely soft; 2.5: a strongly blurred photo).
GAUSSIAN_SIGMA = (0.5, 2.5)
#: Defocus blur: disk radius range, pixels.
DEFOCUS_RADIUS = (1.0, 4.0)
#: Motion blur: segment length range, pixels (the whole path, end to end).
MOTION_LENGTH = (3.0, 11.0)
#: Motion blur: direction range, degrees counterclockwise from the image's x axis
#: (a segment at 180 degrees is the one at 0, so this covers every direction).
MOTION_ANGLE = (0.0, 180.0)
#: Shot-noise scale range (noise standard deviation at a signal of 1).
SHOT_NOISE = (0.0, 0.02)
#: Read-noise standard deviation range.
READ_NOISE = (0.001, 0.01)
#: The kernel kinds, each drawn with the same probability.
KINDS = ("gaussian", "defocus", "motion")


def gaussian_kernel(sigma: float) -> np.ndarray:
    """Isotropic Gaussian, ``(2r + 1, 2r + 1)`` with ``r = ceil(3 sigma)``, summing to 1."""
    if sigma <= 0:
        raise ValueError(f"Gaussian sigma must be positive, got {sigma}")
    radius = max(1, int(np.ceil(3 * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    k2 = np.outer(k, k)
    return (k2 / k2.sum()).astype(np.float32)


def disk_kernel(radius: float, supersample: int = 8) -> np.ndarray:
    """Uniform disk of ``radius`` pixels: each pixel weighted by the share of its area
    inside the disk (``supersample`` x ``supersample`` points per pixel), summing to 1."""
    if radius <= 0:
        raise ValueError(f"disk radius must be positive, got {radius}")
    half = int(np.ceil(radius - 0.5))  # pixels out to this offset reach into the disk
    offsets = (np.arange(supersample) + 0.5) / supersample - 0.5
    centres = np.arange(-half, half + 1, dtype=np.float64)
    sub = (centres[:, None] + offsets[None, :]).reshape(-1)  # sample coordinates along one axis
    inside = (sub[:, None] ** 2 + sub[None, :] ** 2) <= radius**2
    n = 2 * half + 1
    coverage = inside.reshape(n, supersample, n, supersample).mean(axis=(1, 3))
    return (coverage / coverage.sum()).astype(np.float32)


def motion_kernel(length: float, angle: float, samples_per_pixel: int = 16) -> np.ndarray:
    """Straight segment of ``length`` pixels through the centre at ``angle`` degrees
    (counterclockwise from the x axis; image rows grow downwards), points along it spread
    onto the pixel grid with bilinear weights, summing to 1."""
    if length <= 0:
        raise ValueError(f"motion length must be positive, got {length}")
    half = int(np.ceil(length / 2)) + 1
    n = 2 * half + 1
    kernel = np.zeros((n, n), np.float64)
    count = max(2, int(np.ceil(length * samples_per_pixel)) + 1)
    t = np.linspace(-length / 2, length / 2, count)
    theta = np.deg2rad(angle)
    xs = half + t * np.cos(theta)
    ys = half - t * np.sin(theta)
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    fx, fy = xs - x0, ys - y0
    for dy, dx, w in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
        np.add.at(kernel, (y0 + dy, x0 + dx), w)
    rows, cols = np.nonzero(kernel > 1e-12)
    r, c = int(np.abs(rows - half).max()), int(np.abs(cols - half).max())
    full = kernel[half - r : half + r + 1, half - c : half + c + 1]  # the smallest box centred on the centre
    return (full / full.sum()).astype(np.float32)


def blur_image(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Convolve each channel of ``(H, W, C)`` with ``kernel``, borders reflected outward."""
    out = np.empty_like(image, dtype=np.float32)
    for c in range(image.shape[2]):
        out[..., c] = ndimage.convolve(image[..., c].astype(np.float32), kernel, mode="reflect")
    return out


@dataclasses.dataclass(frozen=True)
class Blur:
    """Parameter ranges of the blur model (see the module docstring).

    Attributes:
      kinds: kernel kinds to draw from (a subset of :data:`KINDS`).
      gaussian_sigma: Gaussian sigma range, pixels.
      defocus_radius: disk radius range, pixels.
      motion_length: motion segment length range, pixels.
      motion_angle: motion direction range, degrees.
      shot_noise: shot-noise scale range.
      read_noise: read-noise standard deviation range.
    """

    kinds: tuple = KINDS
    gaussian_sigma: tuple = GAUSSIAN_SIGMA
    defocus_radius: tuple = DEFOCUS_RADIUS
    motion_length: tuple = MOTION_LENGTH
    motion_angle: tuple = MOTION_ANGLE
    shot_noise: tuple = SHOT_NOISE
    read_noise: tuple = READ_NOISE

    def __post_init__(self):
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown or not self.kinds:
            raise ValueError(f"blur kinds must be a non-empty subset of {', '.join(KINDS)}; got {self.kinds}")

    def kernel(self, rng: np.random.Generator) -> tuple[str, dict, np.ndarray]:
        """Draw one kernel: ``(kind, its parameters, the kernel)``."""
        u = lambda r: float(rng.uniform(*r))  # noqa: E731
        kind = self.kinds[int(rng.integers(len(self.kinds)))]
        if kind == "gaussian":
            params = {"sigma": u(self.gaussian_sigma)}
            return kind, params, gaussian_kernel(**params)
        if kind == "defocus":
            params = {"radius": u(self.defocus_radius)}
            return kind, params, disk_kernel(**params)
        params = {"length": u(self.motion_length), "angle": u(self.motion_angle)}
        return kind, params, motion_kernel(**params)

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Blur and add noise to ``image`` ``(H, W, 3)`` float32 in [0, 1]; same shape and range,
        on the 8-bit grid. ``rng`` gives the kernel, the noise levels and the noise."""
        _, _, kernel = self.kernel(rng)
        x = np.clip(blur_image(image, kernel), 0, 1)
        shot, read = float(rng.uniform(*self.shot_noise)), float(rng.uniform(*self.read_noise))
        x = x + np.sqrt(x) * rng.normal(0, 1, x.shape) * shot + rng.normal(0, 1, x.shape) * read
        return (np.round(np.clip(x, 0, 1) * 255) / 255).astype(np.float32)
