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
* What the model takes is read from the interpreter's tensor details (shape, dtype,
  quantization scale and zero point). A sidecar ``NAME.json`` beside ``NAME.tflite`` is
  read when present; its ``size_multiple`` gives a dynamic model's size multiple, and its
  ``dynamic_size`` and ``input`` (``shape``, ``dtype``, ``quantization``) are checked
  against the file (a mismatch is an error naming the sidecar). Without a sidecar, a
  dynamic model's size multiple is found by running it once at each of a few small sizes
  (65, 66, 68, 72, 80, 96, 64, 128: 1, 2, 4, ... 128 times an odd number) and taking
  the first whose output has the input's shape. That is the smallest multiple the graph
  runs at, which can be below the architecture's own (rsgunet's graph runs at multiples
  of 16, its global feature is meant for multiples of 32): a sidecar says better.
* TensorFlow is not imported here (it costs ~550 MB of RSS); only ``ai_edge_litert``.

Memory for an ``H x W`` photo: the float32 input and the float32 accumulator (12 bytes
per pixel each), one window at a time, then the uint8 output, plus the interpreter's
memory for one window. Measured peak RSS for a 4000x3000 JPEG (``tests/test_enhance.py``
checks the first under 600 MB): 330 MB with a minimal int8 model, 461 MB with an int8
fast_dped at the default 256 windows (869 MB at 512).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from mobile_enhance.data.images import IMAGE_SUFFIXES, natural_key
from mobile_enhance.enhance.io import ALPHA_FORMATS, PhotoError, output_format, read_photo, to_uint8, write_photo
from mobile_enhance.enhance.tiling import enhance_tiled, plan_tiles
from mobile_enhance.errors import UserError
from mobile_enhance.runtime import dequantize_output, make_interpreter, quantize_input

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
#: Candidate size multiples tried on a dynamic model without a sidecar.
PROBE_MULTIPLES = (1, 2, 4, 8, 16, 32, 64, 128)


class ModelError(UserError):
    """A model file (or its sidecar) that cannot be used; the message names the file."""


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


def read_sidecar(model_path: str | os.PathLike) -> tuple[dict, Path | None]:
    """``(sidecar dict, its path)`` for ``NAME.tflite`` (``NAME.json``), ``({}, None)`` if absent."""
    path = Path(model_path).with_suffix(".json")
    if not path.is_file():
        return {}, None
    try:
        data = json.loads(path.read_text())
    except (ValueError, OSError) as error:
        raise ModelError(f"{path}: sidecar is not readable JSON ({error})") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path}: sidecar must hold a JSON object, got {type(data).__name__}")
    return data, path


def _quant_kind(interpreter, inp) -> str:
    """``int8`` (integer I/O), ``float16`` / ``dynamic`` (float I/O, float16 / int8 weights) or ``float32``."""
    dtypes = {np.dtype(t["dtype"]) for t in interpreter.get_tensor_details()}
    if np.dtype(inp["dtype"]) in (np.dtype(np.uint8), np.dtype(np.int8)):
        return "int8"
    if np.dtype(np.float16) in dtypes:
        return "float16"
    if np.dtype(np.int8) in dtypes:
        return "dynamic"
    return "float32"


def _interpreter(path: Path, num_threads: int | None):
    try:
        return make_interpreter(model_path=str(path), num_threads=num_threads)
    except (ValueError, RuntimeError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelError(f"{path}: not a TFLite model LiteRT can load ({first})") from None


_NATIVE_NOISE = ("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",)


@contextlib.contextmanager
def _native_info_filtered(drop_all: bool = False):
    """Run a LiteRT call with fd 2 captured, then pass on what it printed except the
    "Created ... XNNPACK delegate" notice it prints at every first ``allocate_tensors``
    (``drop_all``: pass nothing on, for probes expected to fail)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            lines = [] if drop_all else tmp.read().decode("utf-8", "replace").splitlines()
            kept = [ln for ln in lines if ln.strip() not in _NATIVE_NOISE]
            if kept:
                print("\n".join(kept), file=sys.stderr, flush=True)


def _odd_multiple(m: int, at_least: int = 64) -> int:
    q = max(1, -(-at_least // m))
    return m * (q if q % 2 else q + 1) if m < at_least else m


class TFLiteModel:
    """A ``.tflite`` enhancement model in the LiteRT interpreter, for images of any size.

    Args:
      path: the ``.tflite`` file; input and output ``(1, H, W, 3)``, float32 in [0, 1]
        or integer with a scale and zero point.
      num_threads: interpreter threads (``None``: LiteRT's default).
      tile: window side for a dynamic-size model (int or ``(h, w)``), a multiple of its
        size multiple; must be left out for a fixed-size model (it is tiled at its size).
      overlap: pixels shared by neighbouring windows (default: dynamic-size models 32,
        at most a quarter of the window; fixed-size models half their window side).

    Attributes:
      dynamic: whether the file takes any input size.
      multiple: ``(h, w)`` every window's size is a multiple of.
      multiple_from: where ``multiple`` comes from: ``input shape``, ``sidecar``, ``probe``.
      tile, overlap: the windows used by :meth:`enhance`.
      quant: ``float32``, ``float16``, ``dynamic`` or ``int8`` from the tensors, or the
        sidecar's ``quantization.mode`` (e.g. ``qat_int8``).
      sidecar: the sidecar's contents (``{}`` without one).
    """

    def __init__(self, path, num_threads: int | None = None, tile=None, overlap: int | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"{self.path}: no such model file")
        self.num_threads = num_threads
        self.interpreter = _interpreter(self.path, num_threads)
        self.input = self.interpreter.get_input_details()[0]
        output = self.interpreter.get_output_details()
        if len(self.interpreter.get_input_details()) != 1 or len(output) != 1:
            raise ModelError(f"{self.path}: an enhancement model has one input and one output")
        signature = [int(d) for d in self.input.get("shape_signature", self.input["shape"])]
        if len(signature) != 4 or signature[3] != 3 or signature[0] not in (1, -1):
            raise ModelError(f"{self.path}: input shape {signature} is not (1, H, W, 3)")
        self.dynamic = any(d < 0 for d in signature[1:3])
        if self.dynamic and not all(d < 0 for d in signature[1:3]):
            raise ModelError(f"{self.path}: input shape {signature} is dynamic along one axis only; export it fixed or fully dynamic")
        self.quant = _quant_kind(self.interpreter, self.input)
        self.sidecar, self.sidecar_path = read_sidecar(self.path)
        self._check_sidecar(signature)
        mode = (self.sidecar.get("quantization") or {}).get("mode") if isinstance(self.sidecar.get("quantization"), dict) else None
        if isinstance(mode, str) and mode:  # the exporter knows (int8 with float I/O looks like "dynamic")
            self.quant = mode
        if self.dynamic:
            multiple = self.sidecar.get("size_multiple")
            if multiple is not None:
                self.multiple, self.multiple_from = (int(multiple),) * 2, "sidecar"
            else:
                self.multiple, self.multiple_from = (self._probe_multiple(),) * 2, "probe"
            self.tile = (tile, tile) if isinstance(tile, int) else tuple(tile) if tile is not None else (DEFAULT_TILE,) * 2
            for t, m in zip(self.tile, self.multiple):
                if t % m:
                    lo = max(m, t // m * m)
                    raise ModelError(f"tile {t} is not a multiple of {self.path.name}'s size multiple {m} (use {lo} or {lo + m})")
        else:
            fixed = (signature[1], signature[2])
            if tile is not None and tuple((tile, tile) if isinstance(tile, int) else tile) != fixed:
                raise ModelError(
                    f"{self.path} has a fixed {fixed[0]}x{fixed[1]} input and is tiled at that size; leave --tile out"
                )
            self.tile = self.multiple = fixed
            self.multiple_from = "input shape"
            with _native_info_filtered():
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

    def _mismatch(self, what: str, sidecar_value, file_value):
        raise ModelError(
            f"{self.sidecar_path}: sidecar says {what} {sidecar_value!r} but {self.path.name} has {file_value!r}; "
            "it belongs to another export (re-export the pair or remove the sidecar)"
        )

    def _check_sidecar(self, signature):
        s = self.sidecar
        if not s:
            return
        if "dynamic_size" in s and bool(s["dynamic_size"]) != self.dynamic:
            self._mismatch("dynamic_size", s["dynamic_size"], self.dynamic)
        m = s.get("size_multiple")
        if m is not None and (isinstance(m, bool) or not isinstance(m, int) or m < 1):
            raise ModelError(f"{self.sidecar_path}: size_multiple must be a positive integer, got {m!r}")
        spec = s.get("input")
        if spec is None:
            return
        if not isinstance(spec, dict):
            raise ModelError(f"{self.sidecar_path}: 'input' must be an object with shape, dtype, quantization")
        if "shape" in spec:
            shape = [-1 if d is None else d for d in spec["shape"]] if isinstance(spec["shape"], list) else spec["shape"]
            if shape != signature:
                self._mismatch("input shape", spec["shape"], signature)
        if "dtype" in spec and str(spec["dtype"]) != np.dtype(self.input["dtype"]).name:
            self._mismatch("input dtype", spec["dtype"], np.dtype(self.input["dtype"]).name)
        q = spec.get("quantization")
        if isinstance(q, dict) and np.dtype(self.input["dtype"]) != np.float32:
            scale, zero = self.input["quantization"]
            if "scale" in q and not math.isclose(float(q["scale"]), float(scale), rel_tol=1e-6):
                self._mismatch("input scale", q["scale"], float(scale))
            if "zero_point" in q and int(q["zero_point"]) != int(zero):
                self._mismatch("input zero point", q["zero_point"], int(zero))

    def _probe_multiple(self) -> int:
        """Smallest size multiple the model runs at (output shape == input shape)."""
        probe = _interpreter(self.path, 1)
        detail = probe.get_input_details()[0]
        for m in PROBE_MULTIPLES:
            size = _odd_multiple(m)
            try:
                with _native_info_filtered(drop_all=True):  # failures here are expected
                    probe.resize_tensor_input(detail["index"], [1, size, size, 3], strict=True)
                    probe.allocate_tensors()
                    d = probe.get_input_details()[0]
                    probe.set_tensor(d["index"], quantize_input(np.full((1, size, size, 3), 0.5, np.float32), d))
                    probe.invoke()
                    out = probe.get_tensor(probe.get_output_details()[0]["index"])
            except (RuntimeError, ValueError):
                continue
            if out.shape == (1, size, size, 3):
                return m
        raise ModelError(
            f"{self.path}: dynamic-size model that ran at none of the probe sizes; put its size multiple in a "
            f"sidecar {self.path.with_suffix('.json').name} ({{\"size_multiple\": N}})"
        )

    def describe(self) -> str:
        size = "dynamic size" if self.dynamic else f"fixed {self.tile[0]}x{self.tile[1]}"
        m = self.multiple[0] if self.multiple[0] == self.multiple[1] else f"{self.multiple[0]}x{self.multiple[1]}"
        extra = f", size multiple {m} (from {self.multiple_from})" if self.dynamic else ""
        return f"{self.path} ({self.quant}, {size}{extra}; tiles {self.tile[0]}x{self.tile[1]}, overlap {self.overlap})"

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
        """``(1, h, w, 3)`` float32 in [0, 1] -> ``(1, h, w, 3)`` float32: one invocation."""
        shape = list(batch.shape)
        try:
            if shape != self._shape:
                if not self.dynamic:
                    raise ModelError(f"{self.path} takes {self._shape}, got a window of shape {shape}")
                self.interpreter.resize_tensor_input(self.input["index"], shape, strict=True)
                with _native_info_filtered():
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
        """``(H, W, 3)`` float32 in [0, 1] -> enhanced ``(H, W, 3)`` float32, tiled.

        ``tile``/``overlap`` override the model's windows for this call (dynamic models
        only; see :meth:`whole_image_tile`).
        """
        return enhance_tiled(
            self.run,
            image,
            tile=self.tile if tile is None else tile,
            overlap=self.overlap if overlap is None else overlap,
            multiple=self.multiple,
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
    write_photo(output, pixels, pil_format, alpha=photo.alpha, exif=photo.exif, icc=photo.icc, quality=quality)
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
    "read_sidecar",
]
