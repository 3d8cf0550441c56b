"""Photo files in and out of the enhancement pipeline, with what must survive the trip.

:func:`read_photo` decodes any Pillow-readable file to ``(H, W, 3)`` float32 in [0, 1]:

* EXIF orientation is applied to the pixels; the EXIF block is kept with its orientation
  tag set to 1 (patched in place, so maker notes and offsets stay byte for byte).
* An ICC profile is kept when it describes RGB data (a grayscale or CMYK profile would be
  wrong on the RGB output). CMYK files with a CMYK profile are converted to sRGB through
  it (LittleCMS), otherwise with Pillow's plain conversion (Adobe-inverted CMYK JPEGs
  included).
* Grayscale becomes three equal channels. 16-bit grayscale (PNG, TIFF) keeps its
  precision on the way in; 16-bit RGB files are decoded by Pillow to 8 bits per channel
  (it has no 48-bit mode). Outputs are 8 bits per channel.
* Alpha: with ``keep_alpha`` it is returned apart (uint8) and the colour channels are
  enhanced as they are; otherwise the image is composited over white.
* Missing, empty, truncated and non-image files and decompression bombs (more pixels
  than Pillow's ``Image.MAX_IMAGE_PIXELS``) raise :class:`PhotoError` naming the file.

:func:`write_photo` encodes into a temporary file in the destination folder and renames
it over the destination (``os.replace``), so a destination is either the complete new
file or untouched; the temporary file is removed on any failure.

Memory: the float32 image is made from the decoded 8/16-bit array without intermediate
float copies (about 12 bytes per pixel, plus Pillow's 4 bytes per pixel while decoding).
"""

from __future__ import annotations

import dataclasses
import io
import os
import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from mobile_enhance.errors import UserError

#: ``--format`` choices: Pillow format and file suffix.
OUTPUT_FORMATS = {"jpg": ("JPEG", ".jpg"), "png": ("PNG", ".png")}
#: Formats ``--format=same`` writes back as themselves; anything else becomes PNG.
SAME_FORMATS = ("JPEG", "PNG", "TIFF", "WEBP", "BMP", "PPM")
#: Formats that hold an alpha channel, an EXIF block, an ICC profile; lossy ones take a quality.
ALPHA_FORMATS = ("PNG", "TIFF", "WEBP")
EXIF_FORMATS = ("JPEG", "PNG", "TIFF", "WEBP")
ICC_FORMATS = ("JPEG", "PNG", "TIFF", "WEBP")
QUALITY_FORMATS = ("JPEG", "WEBP")

EXIF_ORIENTATION = 0x0112
_EXIF_PREFIX = b"Exif\x00\x00"
_ROWS = 256  # rows converted at a time (bounded temporaries)


class PhotoError(UserError):
    """A photo that cannot be read or written; the message names the file and the problem."""


@dataclasses.dataclass
class Photo:
    """A decoded photo and the metadata to write back.

    Attributes:
      path: the file read.
      rgb: ``(H, W, 3)`` float32 in [0, 1], orientation applied (the caller may drop it).
      alpha: ``(H, W)`` uint8 when the file has alpha and it was kept, else ``None``.
      exif: the EXIF block (``Exif\\0\\0`` + TIFF data), orientation set to 1, or ``None``.
      icc: an RGB ICC profile, or ``None``.
      format: Pillow's name of the file's format (``JPEG``, ``PNG``, ...).
      mode: Pillow's mode of the file (``RGB``, ``L``, ``I;16``, ``CMYK``, ...).
      notes: what was done that the user may want to know (one short phrase each).
    """

    path: Path
    rgb: np.ndarray | None
    alpha: np.ndarray | None
    exif: bytes | None
    icc: bytes | None
    format: str | None
    mode: str
    notes: list


def reset_orientation(exif: bytes) -> bytes:
    """``exif`` with its IFD0 orientation tag set to 1 (top-left); other bytes unchanged.

    Accepts the block with or without the ``Exif\\0\\0`` prefix and returns it with the
    prefix. Raises ``ValueError`` on a block that is not TIFF-structured.
    """
    body = exif[len(_EXIF_PREFIX) :] if exif.startswith(_EXIF_PREFIX) else exif
    if body[:4] not in (b"II*\x00", b"MM\x00*"):
        raise ValueError("not a TIFF-structured EXIF block")
    order = "<" if body[:2] == b"II" else ">"
    (ifd,) = struct.unpack_from(order + "I", body, 4)
    (count,) = struct.unpack_from(order + "H", body, ifd)
    if ifd + 2 + 12 * count > len(body):
        raise ValueError("EXIF IFD0 runs past the end of the block")
    patched = bytearray(body)
    for i in range(count):
        entry = ifd + 2 + 12 * i
        tag, kind, n = struct.unpack_from(order + "HHI", body, entry)
        if tag == EXIF_ORIENTATION and kind == 3 and n == 1:  # SHORT, stored in the entry
            struct.pack_into(order + "HH", patched, entry + 8, 1, 0)
    return _EXIF_PREFIX + bytes(patched)


#: EXIF tags that state the image's size: IFD0 ImageWidth/ImageLength, and in the Exif IFD
#: (pointed to by 0x8769) PixelXDimension/PixelYDimension.
_SIZE_TAGS = {0x0100: "w", 0x0101: "h", 0xA002: "w", 0xA003: "h"}
_EXIF_IFD_POINTER = 0x8769


def set_exif_size(exif: bytes, width: int, height: int) -> bytes:
    """``exif`` with the size tags it has (IFD0 ImageWidth/ImageLength, Exif IFD
    PixelXDimension/PixelYDimension) set to ``width x height``; other bytes unchanged.

    For an upscaling model's output, whose pixels are ``upscale`` times the photo's. A tag
    stored as a 16-bit SHORT keeps its value when the size does not fit in one. Raises
    ``ValueError`` on a block that is not TIFF-structured.
    """
    body = exif[len(_EXIF_PREFIX) :] if exif.startswith(_EXIF_PREFIX) else exif
    if body[:4] not in (b"II*\x00", b"MM\x00*"):
        raise ValueError("not a TIFF-structured EXIF block")
    order = "<" if body[:2] == b"II" else ">"
    patched = bytearray(body)
    size = {"w": int(width), "h": int(height)}

    def walk(ifd: int, follow: bool):
        (count,) = struct.unpack_from(order + "H", body, ifd)
        if ifd + 2 + 12 * count > len(body):
            raise ValueError("an EXIF IFD runs past the end of the block")
        for i in range(count):
            entry = ifd + 2 + 12 * i
            tag, kind, n = struct.unpack_from(order + "HHI", body, entry)
            if tag in _SIZE_TAGS and n == 1:
                value = size[_SIZE_TAGS[tag]]
                if kind == 3 and value <= 0xFFFF:  # SHORT
                    struct.pack_into(order + "HH", patched, entry + 8, value, 0)
                elif kind == 4:  # LONG
                    struct.pack_into(order + "I", patched, entry + 8, value)
            elif follow and tag == _EXIF_IFD_POINTER and kind == 4:
                (pointer,) = struct.unpack_from(order + "I", body, entry + 8)
                walk(pointer, False)

    (first,) = struct.unpack_from(order + "I", body, 4)
    walk(first, True)
    return _EXIF_PREFIX + bytes(patched)


def _exif_out(image: Image.Image, notes: list) -> bytes | None:
    raw = image.info.get("exif")
    if not raw:
        return None
    try:
        return reset_orientation(raw)
    except (ValueError, struct.error):
        pass
    try:  # a block our patcher cannot walk: let Pillow rewrite it
        exif = Image.Exif()
        exif.load(raw)
        if EXIF_ORIENTATION in exif:
            exif[EXIF_ORIENTATION] = 1
        out = exif.tobytes()
        return out if out.startswith(_EXIF_PREFIX) else _EXIF_PREFIX + out
    except Exception:  # noqa: BLE001 - malformed metadata is dropped, not fatal
        notes.append("EXIF unreadable, dropped")
        return None


def _icc_colour_space(icc: bytes) -> bytes:
    return icc[16:20] if len(icc) >= 20 else b""


def _cmyk_to_rgb(image: Image.Image, icc: bytes | None, notes: list) -> Image.Image:
    if icc and _icc_colour_space(icc) == b"CMYK":
        try:
            from PIL import ImageCms

            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            return ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
        except Exception as error:  # noqa: BLE001 - fall back to the plain conversion, and say so
            notes.append(f"CMYK profile not usable ({type(error).__name__}), plain CMYK conversion")
    return image.convert("RGB")


def _to_float(array: np.ndarray, peak: float) -> np.ndarray:
    """``array / peak`` as float32, converted a band of rows at a time (no float64 copy)."""
    out = np.empty(array.shape, np.float32)
    scale = np.float32(1.0 / peak)
    for r in range(0, array.shape[0], _ROWS):
        np.multiply(array[r : r + _ROWS], scale, out=out[r : r + _ROWS], dtype=np.float32)
    np.clip(out, 0.0, 1.0, out=out)
    return out


def _decode(image: Image.Image, keep_alpha: bool, icc: bytes | None, notes: list):
    """``(rgb float32, alpha uint8 | None)`` from an opened, oriented Pillow image."""
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        gray = np.asarray(image)
        peak = 255.0 if mode == "I" and gray.size and int(gray.max()) <= 255 else 65535.0
        gray = _to_float(gray, peak)
        return np.repeat(gray[..., None], 3, axis=2), None
    has_alpha = mode in ("RGBA", "RGBa", "LA", "La", "PA") or (mode in ("P", "L", "RGB") and "transparency" in image.info)
    if has_alpha:
        rgba = image.convert("RGBA")
        if keep_alpha:
            array = np.asarray(rgba)
            alpha = np.ascontiguousarray(array[..., 3])
            return _to_float(array[..., :3], 255.0), alpha
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba).convert("RGB")
        notes.append("alpha composited over white")
    elif mode == "CMYK":
        image = _cmyk_to_rgb(image, icc, notes)
    elif mode != "RGB":
        image = image.convert("RGB")
    return _to_float(np.asarray(image), 255.0), None


def read_photo(path: str | os.PathLike, keep_alpha: bool = False) -> Photo:
    """Decode ``path`` (see the module docstring for what is kept and how).

    Raises:
      PhotoError: missing, empty, truncated or non-image file, a decompression bomb.
    """
    path = Path(path)
    try:
        if path.is_dir():
            raise PhotoError(f"{path}: is a folder, not a photo")
        if path.stat().st_size == 0:
            raise PhotoError(f"{path}: empty file")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as opened:
                fmt, mode = opened.format, opened.mode
                opened.load()
                notes: list = []
                if getattr(opened, "n_frames", 1) > 1 and fmt != "MPO":  # MPO: a phone JPEG with a preview frame
                    notes.append(f"first of {opened.n_frames} frames")
                icc = opened.info.get("icc_profile") or None
                exif = _exif_out(opened, notes)
                ImageOps.exif_transpose(opened, in_place=True)  # no second full-size copy
                rgb, alpha = _decode(opened, keep_alpha, icc, notes)
    except PhotoError:
        raise
    except FileNotFoundError:
        raise PhotoError(f"{path}: no such file") from None
    except PermissionError:
        raise PhotoError(f"{path}: permission denied") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise PhotoError(f"{path}: refused as a possible decompression bomb: {error}") from None
    except MemoryError:
        raise PhotoError(f"{path}: out of memory while decoding") from None
    except (OSError, ValueError, SyntaxError, struct.error, EOFError) as error:
        raise PhotoError(f"{path}: cannot be read as an image ({error})") from None
    if icc and _icc_colour_space(icc) != b"RGB ":
        space = _icc_colour_space(icc).decode("ascii", "replace").strip() or "unknown"
        notes.append(f"{space} ICC profile not kept on the RGB output")
        icc = None
    return Photo(path, rgb, alpha, exif, icc, fmt, mode, notes)


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` float in [0, 1] to uint8, rounded, clipped; modifies ``rgb`` in place
    (it is scratch space afterwards) to keep the peak memory at the float array."""
    out = np.empty(rgb.shape, np.uint8)
    for r in range(0, rgb.shape[0], _ROWS):
        band = rgb[r : r + _ROWS]
        np.nan_to_num(band, copy=False, nan=0.0)
        band *= 255.0
        band += 0.5
        np.clip(band, 0.0, 255.0, out=band)
        out[r : r + _ROWS] = band  # truncation after +0.5: round half up
    return out


def output_format(source: Path, choice: str, source_format: str | None = None) -> tuple[str, str]:
    """``(Pillow format, suffix)`` for ``--format=choice`` (``jpg``, ``png`` or ``same``)."""
    if choice in OUTPUT_FORMATS:
        return OUTPUT_FORMATS[choice]
    if choice != "same":
        raise UserError(f"unknown output format {choice!r}; known: jpg, png, same")
    ext = source.suffix
    fmt = source_format or Image.registered_extensions().get(ext.lower())
    if fmt in SAME_FORMATS:
        return fmt, ext
    return "PNG", ".png"


def atomic_save(image: Image.Image, path: Path, fmt: str, **params) -> None:
    """Encode ``image`` as ``fmt`` into a temporary file beside ``path``, then rename it over
    ``path``. On any failure the temporary file is removed and ``path`` is left as it was.

    Raises:
      PhotoError: naming ``path`` and the problem.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "xb") as f:
            image.save(f, format=fmt, **params)
            f.flush()
            os.fsync(f.fileno())
        if path.is_dir():
            raise PhotoError(f"{path}: cannot write the output, a folder of that name is in the way")
        os.replace(tmp, path)
    except PhotoError:
        tmp.unlink(missing_ok=True)
        raise
    except (OSError, ValueError) as error:
        tmp.unlink(missing_ok=True)
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise PhotoError(f"{path}: cannot write the output ({reason})") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_photo(
    path: str | os.PathLike,
    rgb: np.ndarray,
    fmt: str,
    alpha: np.ndarray | None = None,
    exif: bytes | None = None,
    icc: bytes | None = None,
    quality: int = 95,
) -> None:
    """Write ``rgb`` (``(H, W, 3)`` uint8) atomically as ``fmt``, with what ``fmt`` can hold
    of ``alpha`` (``(H, W)`` uint8), ``exif`` and ``icc``."""
    image = Image.fromarray(np.ascontiguousarray(rgb), "RGB")
    if alpha is not None and fmt in ALPHA_FORMATS:
        image.putalpha(Image.fromarray(alpha, "L"))
    params: dict = {}
    if fmt in QUALITY_FORMATS:
        params["quality"] = int(quality)
    if exif and fmt in EXIF_FORMATS:
        params["exif"] = exif
    if icc and fmt in ICC_FORMATS:
        params["icc_profile"] = icc
    atomic_save(image, Path(path), fmt, **params)


__all__ = [
    "set_exif_size",
    "ALPHA_FORMATS",
    "OUTPUT_FORMATS",
    "Photo",
    "PhotoError",
    "SAME_FORMATS",
    "atomic_save",
    "output_format",
    "read_photo",
    "reset_orientation",
    "to_uint8",
    "write_photo",
]
