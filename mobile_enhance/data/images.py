"""Reading image files for training: any PIL-readable file to ``(H, W, 3)`` float32 in [0, 1]."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from mobile_enhance.errors import UserError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm")


class BadImageError(UserError):
    """A file that cannot be read as an image; the message names the file."""


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files directly in ``folder``, sorted by name (numbers in natural order)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: not a folder")
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(files, key=natural_key)


def natural_key(path: Path):
    """Sort ``2.jpg`` before ``10.jpg``."""
    stem = path.stem
    return (0, int(stem), path.suffix) if stem.isdigit() else (1, stem, path.suffix)


def to_rgb_array(image: Image.Image) -> np.ndarray:
    """PIL image of any mode (L, LA, RGBA, P, CMYK, I;16, ...) to float32 RGB in [0, 1].

    Alpha is composited over white; 16-bit images keep their precision.
    """
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float32)
        peak = 65535.0 if image.mode != "I" or array.max() > 255 else 255.0
        gray = np.clip(array / peak, 0, 1)
        return np.repeat(gray[..., None], 3, axis=-1)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0


def read_image(path: str | os.PathLike, max_pixels: int | None = 200_000_000) -> np.ndarray:
    """Decode ``path`` to ``(H, W, 3)`` float32 in [0, 1], EXIF orientation applied.

    Raises:
      BadImageError: missing, empty, truncated or non-image file (the message names it).
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise BadImageError(f"{path}: empty file")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if max_pixels and image.width * image.height > max_pixels:
                    raise BadImageError(f"{path}: {image.width}x{image.height} is over the {max_pixels:,}-pixel limit")
                image.load()
                image = ImageOps.exif_transpose(image)
                return to_rgb_array(image)
    except BadImageError:
        raise
    except FileNotFoundError:
        raise BadImageError(f"{path}: no such file") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise BadImageError(f"{path}: cannot be read as an image ({error})") from None


def bicubic_upscale(images, scale: int) -> np.ndarray:
    """``(N, H, W, 3)`` (or one ``(H, W, 3)``) images in [0, 1] -> ``scale`` times larger:
    each rounded to 8 bits and resized with PIL's bicubic filter, as an ``sr:`` source makes
    its inputs (:class:`mobile_enhance.data.sources.SRSource`); the baseline a
    super-resolution model has to beat (export's fidelity, evaluate's row)."""
    images = np.asarray(images, np.float32)
    if images.ndim == 3:
        return bicubic_upscale(images[None], scale)[0]
    out = []
    for image in images:
        h, w = image.shape[:2]
        pixels = Image.fromarray(np.clip(np.round(image * 255), 0, 255).astype(np.uint8))
        out.append(np.asarray(pixels.resize((w * scale, h * scale), Image.BICUBIC), np.float32) / 255.0)
    return np.stack(out)
