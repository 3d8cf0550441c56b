"""Enhancing photo files with an exported ``.tflite`` model: the Python API behind
``mobile-enhance enhance``.

::

    from mobile_enhance.enhance.pipeline import TFLiteModel, enhance_files

    model = TFLiteModel("tflite_models/default_int8.tflite", num_threads=4)
    enhanced = model.enhance(image)                  # (H, W, 3) float32 in [0, 1], any H, W
    results = enhance_files(model, ["photo.jpg"], "out/", fmt="jpg")

How a model is run (:class:`TFLiteModel`):

* In the LiteRT interpreter, one window at a time, through
  :func:`mobile_enhance.enhance.tiling.enhance_tiled`: a model with a fixed input size is
  tiled at that size; a dynamic-size one at ``tile`` (default 256), windows reflect-padded
  up to its size multiple where the photo is smaller than a tile. Overlapping windows are
  blended with weights that fall to ~0 at window edges, so no seam shows.
* What the model takes and gives comes from :func:`mobile_enhance.runtime.load`: the
  file's tensors and its sidecar ``NAME.json`` (checked against the file), or, without a
  sidecar, the file alone (one warning line; a dynamic model's size multiple and upscale
  probed). A model with an upscale ``s`` is tiled in input pixels and writes photos ``s``
  times larger; alpha is resized with it and the EXIF size fields are updated.
* TensorFlow is not imported here (it costs ~550 MB of RSS); only ``ai_edge_litert``.

Memory for an ``H x W`` photo: the float32 input and the float32 accumulator (12 bytes
per pixel each), one window at a time, then the uint8 output, plus the interpreter's
memory for one window. Measured peak RSS for a 4000x3000 JPEG (``tests/test_enhance.py``
checks the first under 600 MB): 330 MB with a minimal int8 model, 461 MB with an int8
fast_dped at the default 256 windows (869 MB at 512).
"""

from __future__ import annotations

import dataclasses
import os
import struct
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from PIL import Image

from mobile_enhance.data.images import IMAGE_SUFFIXES, natural_key
from mobile_enhance.enhance.io import ALPHA_FORMATS, PhotoError, output_format, read_photo, set_exif_size, to_uint8, write_photo
from mobile_enhance.enhance.tiling import enhance_tiled, plan_tiles
from mobile_enhance.errors import UserError
from mobile_enhance.runtime import ModelError, dequantize_output, load, native_stderr, quantize_input, sidecar_path

#: The checkout's ``tflite_models/`` folder, where the shipped models live.
MODELS_DIR = Path(__file__).resolve().parents[2] / "tflite_models"
#: Tried in order when no model is given. float32 first: the shipped int8 model keeps
#: only part of the float model's gain (benchmarks/results/default_model.md).
DEFAULT_MODELS = ("default.tflite", "default_int8.tflite")
#: Default window side of dynamic-size models. LiteRT's memory grows with the window:
#: fast_dped int8 (XNNPACK) peaks at 177 MB RSS for 256x256 windows but 584 MB for 512x512
#: (measured), so 256 keeps a 12 MP photo under 600 MB in all.
DEFAULT_TILE = 256
DEFAULT_OVERLAP = 32
def default_model_path(models_dir: str | os.PathLike | None = None) -> Path:
    """The first of :data:`DEFAULT_MODELS` present in ``models_dir`` (``tflite_models/``).

    Raises:
      ModelError: in one line, what is missing and how to get a model.
    """
    folder = Path(models_dir) if models_dir is not None else MODELS_DIR
    for name in DEFAULT_MODELS:
        if (folder / name).is_file():
            return folder / name
    missing = " and ".join(str(folder / n) for n in DEFAULT_MODELS)
    raise ModelError(
        f"no model given and no default model: {missing} are missing; pass --model=FILE.tflite, or export one: "
        f"mobile-enhance export --run_dir=RUN --quant=float32 --size=patch --output={folder / DEFAULT_MODELS[0]}"
    )


class TFLiteModel:
    """A ``.tflite`` enhancement model in the LiteRT interpreter, for images of any size.

    The file and its contract come from :func:`mobile_enhance.runtime.load`; this class
    adds the windows photos are tiled in.

    Args:
      path: the ``.tflite`` file; input ``(1, H, W, 3)`` and output ``(1, sH, sW, 3)``
        (``s`` its upscale), float32 in [0, 1] or integer with a scale and zero point.
      num_threads: interpreter threads (``None``: LiteRT's default).
      tile: window side for a dynamic-size model (int or ``(h, w)``), a multiple of its
        size multiple, in input pixels; must be left out for a fixed-size model (it is
        tiled at its size).
      overlap: input pixels shared by neighbouring windows (default: dynamic-size models
        32, at most a quarter of the window; fixed-size models half their window side).

    Attributes:
      contract: the file's :class:`mobile_enhance.runtime.Contract`.
      dynamic: whether the file takes any input size.
      upscale: output side / input side.
      multiple: ``(h, w)`` every window's size is a multiple of.
      multiple_from: where ``multiple`` comes from: ``input shape``, ``sidecar``, ``probe``.
      tile, overlap: the windows used by :meth:`enhance`.
      quant: the quantization mode (the sidecar's, else from the tensors).
      sidecar: the sidecar's contents (``{}`` without one).
    """

    def __init__(self, path, num_threads: int | None = None, tile=None, overlap: int | None = None):
        self.path = Path(path)
        self.num_threads = num_threads
        self.interpreter, self.contract = load(self.path, num_threads)
        c = self.contract
        self.input = self.interpreter.get_input_details()[0]
        self.dynamic, self.upscale, self.quant = c.dynamic, c.upscale, c.mode
        self.sidecar = c.sidecar or {}
        self.sidecar_path = sidecar_path(self.path) if c.from_sidecar else None
        if self.dynamic:
            self.multiple, self.multiple_from = (c.size_multiple,) * 2, "sidecar" if c.from_sidecar else "probe"
            self.tile = (tile, tile) if isinstance(tile, int) else tuple(tile) if tile is not None else (DEFAULT_TILE,) * 2
            for t, m in zip(self.tile, self.multiple):
                if t % m:
                    lo = max(m, t // m * m)
                    raise ModelError(f"tile {t} is not a multiple of {self.path.name}'s size multiple {m} (use {lo} or {lo + m})")
        else:
            fixed = c.fixed_size
            if tile is not None and tuple((tile, tile) if isinstance(tile, int) else tile) != fixed:
                raise ModelError(
                    f"{self.path} has a fixed {fixed[0]}x{fixed[1]} input and is tiled at that size; leave --tile out"
                )
            self.tile = self.multiple = fixed
            self.multiple_from = "input shape"
            with native_stderr():
                self.interpreter.allocate_tensors()
        if overlap is not None:
            self.overlap = overlap
        elif self.dynamic:
            self.overlap = min(DEFAULT_OVERLAP, min(self.tile) // 4)
        else:
            # A fixed-size model's windows are small, and a model that normalises per
            # window (instance norm) gives each its own colour balance: with a quarter
            # overlap the shipped 100x100 fast_dped showed block edges, with half none.
            self.overlap = min(self.tile) // 2
        plan_tiles(1, 1, self.tile, self.overlap, self.multiple)  # TilingError now, not at the first photo
        self._shape = None if self.dynamic else [1, *self.tile, 3]

    # -- what the file says ------------------------------------------------------------

    def describe(self) -> str:
        size = "dynamic size" if self.dynamic else f"fixed {self.tile[0]}x{self.tile[1]}"
        m = self.multiple[0] if self.multiple[0] == self.multiple[1] else f"{self.multiple[0]}x{self.multiple[1]}"
        extra = f", size multiple {m} (from {self.multiple_from})" if self.dynamic else ""
        up = f", x{self.upscale}" if self.upscale > 1 else ""
        return f"{self.path} ({self.quant}, {size}{extra}{up}; tiles {self.tile[0]}x{self.tile[1]}, overlap {self.overlap})"

    def quality_warning(self) -> str | None:
        """One line when the sidecar's fidelity figures (``mobile-enhance export``) say the
        file's output was below the unprocessed input against held-out targets, e.g. a
        model with instance norms exported at a frame far larger than its training patches."""
        fidelity = self.sidecar.get("fidelity") if isinstance(self.sidecar.get("fidelity"), dict) else {}
        mine, plain = fidelity.get("tflite_vs_target"), fidelity.get("input_vs_target")
        try:
            gap = float(plain["psnr"]) - float(mine["psnr"])
        except (TypeError, KeyError, ValueError):
            return None
        if gap <= 0:
            return None
        size = fidelity.get("size") or []
        at = f" at {size[0]}x{size[1]}" if len(size) == 2 else ""
        return (f"warning: {self.path.name}'s export measured its output {gap:.2f} dB below the unprocessed input against "
                f"held-out targets{at} ({self.sidecar_path.name}); a model with instance norms trained on small patches "
                "enhances when exported at its patch size and tiled")

    # -- running -----------------------------------------------------------------------

    def run(self, batch: np.ndarray) -> np.ndarray:
        """``(1, h, w, 3)`` float32 in [0, 1] -> ``(1, s*h, s*w, 3)`` float32: one invocation."""
        shape = list(batch.shape)
        try:
            if shape != self._shape:
                if not self.dynamic:
                    raise ModelError(f"{self.path} takes {self._shape}, got a window of shape {shape}")
                self.interpreter.resize_tensor_input(self.input["index"], shape, strict=True)
                with native_stderr():
                    self.interpreter.allocate_tensors()
                self.input = self.interpreter.get_input_details()[0]
                self._shape = shape
            self.interpreter.set_tensor(self.input["index"], quantize_input(batch, self.input))
            self.interpreter.invoke()
            out = self.interpreter.get_output_details()[0]
            return dequantize_output(self.interpreter.get_tensor(out["index"]), out)
        except (RuntimeError, ValueError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ModelError(f"{self.path}: failed on a {shape[1]}x{shape[2]} window ({first})") from None

    def enhance(self, image: np.ndarray, tile=None, overlap: int | None = None) -> np.ndarray:
        """``(H, W, 3)`` float32 in [0, 1] -> enhanced ``(sH, sW, 3)`` float32, tiled.

        ``tile``/``overlap`` override the model's windows for this call (dynamic models
        only; see :meth:`whole_image_tile`).
        """
        return enhance_tiled(
            self.run,
            image,
            tile=self.tile if tile is None else tile,
            overlap=self.overlap if overlap is None else overlap,
            multiple=self.multiple,
            upscale=self.upscale,
        )

    def whole_image_tile(self, height: int, width: int):
        """The one window covering ``height x width`` (rounded up to the size multiple);
        for a fixed-size model, its own size."""
        if not self.dynamic:
            return self.tile
        return tuple(-(-n // m) * m for n, m in zip((height, width), self.multiple))


# ----------------------------------------------------------------------------- files


@dataclasses.dataclass
class FileResult:
    """What became of one input: ``output`` written, or ``error`` (one line naming the file)."""

    source: Path
    output: Path | None = None
    error: str | None = None
    notes: list = dataclasses.field(default_factory=list)


def collect_inputs(paths: Iterable) -> tuple[list[Path], list[FileResult]]:
    """Photos named on the command line: files as given, folders' image files (by suffix,
    not recursive, natural order). Returns ``(photos, failures)``; missing paths and
    folders without images are failures."""
    photos, failures = [], []
    for arg in paths:
        path = Path(arg)
        if path.is_dir():
            found = sorted((p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES), key=natural_key)
            if not found:
                failures.append(FileResult(path, error=f"{path}: folder holds no image files ({', '.join(IMAGE_SUFFIXES)})"))
            photos += found
        elif path.exists():
            photos.append(path)
        else:
            failures.append(FileResult(path, error=f"{path}: no such file or folder"))
    return photos, failures


def plan_outputs(photos: list[Path], output_dir: Path, fmt: str) -> list[tuple[Path, Path | None, str | None, str | None]]:
    """``(source, output, Pillow format, error)`` per photo: same stem, chosen format.

    A photo whose output would overwrite its own file, or the output of an earlier photo
    (``a.png`` and ``a.jpg`` with ``--format=jpg``), gets an error instead.
    """
    taken: dict = {}
    plan = []
    for src in photos:
        pil_format, suffix = output_format(src, fmt)
        dst = output_dir / (src.stem + suffix)
        key = os.path.normcase(os.path.abspath(dst))
        if os.path.exists(dst) and os.path.exists(src) and os.path.samefile(src, dst):
            plan.append((src, None, None, f"{src}: output {dst} would overwrite the photo itself; choose another --output"))
        elif key in taken:
            plan.append((src, None, None, f"{src}: output {dst} is also the output of {taken[key]}; rename one of them"))
        else:
            taken[key] = src
            plan.append((src, dst, pil_format, None))
    return plan


def prepare_output_dir(output_dir) -> Path:
    """Create ``output_dir`` if missing; raise :class:`UserError` (one line) if it cannot be
    created or written to."""
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise UserError(f"{output_dir}: cannot create the output folder (a file of that name exists)")
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"{output_dir}: cannot create the output folder ({error.strerror or error})") from None
    if not os.access(output_dir, os.W_OK | os.X_OK):
        raise UserError(f"{output_dir}: output folder is not writable")
    return output_dir


def enhance_file(model: TFLiteModel, source, output, pil_format: str, quality: int = 95) -> list:
    """Read ``source``, enhance it, write ``output`` atomically as ``pil_format``; returns notes.

    Raises:
      PhotoError: the photo cannot be read or the output cannot be written.
      ModelError: the model failed (it will fail on every photo).
    """
    photo = read_photo(source, keep_alpha=pil_format in ALPHA_FORMATS)
    rgb, photo.rgb = photo.rgb, None  # the Photo must not keep the input alive
    try:
        enhanced = model.enhance(rgb)
    except MemoryError:
        raise PhotoError(f"{source}: out of memory at {rgb.shape[1]}x{rgb.shape[0]}") from None
    del rgb
    pixels = to_uint8(enhanced)
    del enhanced
    alpha, exif = photo.alpha, photo.exif
    if model.upscale > 1:  # the output has upscale times the pixels: alpha and EXIF sizes follow
        h, w = pixels.shape[:2]
        if alpha is not None:
            alpha = np.asarray(Image.fromarray(alpha, "L").resize((w, h), Image.BICUBIC))
        if exif:
            try:
                exif = set_exif_size(exif, w, h)
            except (ValueError, struct.error):
                exif = None
                photo.notes.append("EXIF size fields could not be updated; EXIF dropped")
    write_photo(output, pixels, pil_format, alpha=alpha, exif=exif, icc=photo.icc, quality=quality)
    return photo.notes


def enhance_files(
    model: TFLiteModel,
    inputs: Iterable,
    output_dir,
    fmt: str = "jpg",
    quality: int = 95,
    on_result: Callable[[int, int, FileResult], None] | None = None,
) -> list[FileResult]:
    """Enhance photos and folders of photos into ``output_dir`` (created if missing).

    Every input gets a :class:`FileResult`; a bad photo does not stop the others.
    ``on_result(done, total, result)`` is called after each (for a progress bar).

    Raises:
      UserError: ``output_dir`` cannot be created or written to.
      ModelError: the model fails (no point going on).
    """
    output_dir = prepare_output_dir(output_dir)
    photos, results = collect_inputs(inputs)
    total = len(photos) + len(results)
    for i, r in enumerate(results):
        if on_result:
            on_result(i + 1, total, r)
    for src, dst, pil_format, error in plan_outputs(photos, output_dir, fmt):
        result = FileResult(src, error=error)
        if error is None:
            try:
                result.notes = enhance_file(model, src, dst, pil_format, quality)
                result.output = dst
            except PhotoError as failure:
                result.error = str(failure)
        results.append(result)
        if on_result:
            on_result(len(results), total, result)
    return results


__all__ = [
    "DEFAULT_MODELS",
    "FileResult",
    "ModelError",
    "TFLiteModel",
    "collect_inputs",
    "default_model_path",
    "enhance_file",
    "enhance_files",
    "plan_outputs",
    "prepare_output_dir",
]
