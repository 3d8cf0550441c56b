"""The sidecar ``NAME.json`` beside an exported ``NAME.tflite``: its schema, one writer, one
reader and validator.

``mobile-enhance export`` writes it with :func:`write_sidecar`; enhance, bench, evaluate
and export's own check read it with :func:`read_sidecar`, which refuses, in one line
naming the file and the field, a sidecar of an unknown or old format, malformed JSON, or
one that contradicts its file (shape, dtype, scale, hash, upscale). The Android demo's
``Sidecar.kt`` reads the fields :func:`app_fields` lists (a test compares the two readers
on the shipped sidecars).

Format ``mobile_enhance.tflite_sidecar/2``, top-level keys:

* ``format``: this string.
* ``model``, ``model_kwargs``: the registry name and builder arguments (``null``, ``{}``
  for a model from elsewhere); ``run_dir``: the training run it came from ("" if none).
* ``upscale``: output side / input side (1, or 4 for x4 super-resolution).
* ``size_multiple``: input sides must be multiples of it; ``dynamic_size``: whether the
  file takes any input size (else the ``input.shape``'s).
* ``gmacs``: multiply-accumulates per image at ``gmacs_size`` (``[H, W]``, the file's
  input size, or the fidelity size of a dynamic file), ``null`` when not counted.
* ``input``, ``output``: ``{name, shape [1, H, W, 3] (null: dynamic), dtype (float32,
  uint8, int8), range [0, 1], quantization {scale, zero_point} or null}``.
* ``quantization``: ``{mode, ...}``: how the file was made (the mode's own settings).
* ``file``: ``{name, bytes, sha256}`` of the ``.tflite``.
* ``source``, ``fidelity``, ``ops``, ``ops_not_in_xnnpack``, ``rewritten_layers``,
  ``forced``: provenance and measured figures, for people and reports.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np

from mobile_enhance.errors import UserError

FORMAT = "mobile_enhance.tflite_sidecar/2"
#: Formats of earlier versions: refused with a line saying how to re-export.
OLD_FORMATS = ("mobile_enhance.tflite_sidecar/1",)
DTYPES = ("float32", "uint8", "int8")
#: The quantization modes a sidecar can name (the export modes).
MODES = ("float32", "float16", "dynamic", "int8", "qat_int8")
#: Keys every sidecar of this format has.
REQUIRED = ("format", "model", "model_kwargs", "run_dir", "upscale", "size_multiple", "dynamic_size", "gmacs", "gmacs_size",
            "input", "output", "quantization", "file")


class ModelError(UserError):
    """An exported model file (or its sidecar) that cannot be used; the message names the file."""


class SidecarError(ModelError):
    """A sidecar that cannot be used; the message names the file and the field."""


def sidecar_path(tflite_path) -> Path:
    """``NAME.json`` beside ``NAME.tflite``."""
    return Path(tflite_path).with_suffix(".json")


def tensor_entry(detail: dict) -> dict:
    """The sidecar's description of an interpreter input or output tensor ``detail``."""
    scale, zero = detail["quantization"]
    shape = [int(d) for d in detail.get("shape_signature", detail["shape"])]
    if len(shape) == 0:
        shape = [int(d) for d in detail["shape"]]
    return {
        "name": detail["name"],
        "shape": [None if d < 0 else d for d in shape],
        "dtype": np.dtype(detail["dtype"]).name,
        "range": [0.0, 1.0],
        "quantization": {"scale": float(scale), "zero_point": int(zero)} if scale else None,
    }


def file_entry(path, blob: bytes) -> dict:
    return {"name": Path(path).name, "bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest()}


# -- validation --------------------------------------------------------------------------


class _Checker:
    def __init__(self, where):
        self.where = where

    def fail(self, field: str, problem: str):
        raise SidecarError(f"{self.where}: {field} {problem}")

    def get(self, obj: dict, key: str, field: str, kinds, allow_none: bool = False):
        if key not in obj:
            self.fail(field, "is missing")
        value = obj[key]
        if value is None and allow_none:
            return None
        if isinstance(value, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
            self.fail(field, f"must be {self.kind_name(kinds)}, got {json.dumps(value)}")
        if not isinstance(value, kinds):
            self.fail(field, f"must be {self.kind_name(kinds)}, got {json.dumps(value)[:60]}")
        return value

    @staticmethod
    def kind_name(kinds) -> str:
        names = {int: "an integer", float: "a number", str: "a string", bool: "true or false", dict: "an object", list: "a list"}
        kinds = kinds if isinstance(kinds, tuple) else (kinds,)
        return " or ".join(names.get(k, k.__name__) for k in kinds if not (k is int and float in kinds))

    def positive_int(self, obj, key, field):
        value = self.get(obj, key, field, int)
        if value < 1:
            self.fail(field, f"must be >= 1, got {value}")
        return value

    def tensor(self, obj, key):
        t = self.get(obj, key, key, dict)
        shape = self.get(t, "shape", f"{key}.shape", list)
        if len(shape) != 4 or shape[3] != 3 or shape[0] not in (1, None):
            self.fail(f"{key}.shape", f"must be [1, H, W, 3], got {json.dumps(shape)}")
        for i in (1, 2):
            if shape[i] is not None and (isinstance(shape[i], bool) or not isinstance(shape[i], int) or shape[i] < 1):
                self.fail(f"{key}.shape", f"has a bad size: {json.dumps(shape)}")
        dtype = self.get(t, "dtype", f"{key}.dtype", str)
        if dtype not in DTYPES:
            self.fail(f"{key}.dtype", f"must be one of {', '.join(DTYPES)}, got {dtype!r}")
        q = self.get(t, "quantization", f"{key}.quantization", dict, allow_none=True)
        if q is None and dtype != "float32":
            self.fail(f"{key}.quantization", f"is missing (required for {dtype})")
        if q is not None:
            scale = self.get(q, "scale", f"{key}.quantization.scale", (int, float))
            if not (math.isfinite(scale) and scale > 0):
                self.fail(f"{key}.quantization.scale", f"must be > 0, got {scale}")
            self.get(q, "zero_point", f"{key}.quantization.zero_point", int)
        if "range" in t:
            r = self.get(t, "range", f"{key}.range", list)
            if len(r) != 2 or not all(isinstance(v, (int, float)) for v in r) or not r[1] > r[0]:
                self.fail(f"{key}.range", f"must be [low, high] with high > low, got {json.dumps(r)}")
        return t


def validate(data, where) -> dict:
    """Check the structure of sidecar ``data`` (read from ``where``); returns it.

    Raises:
      SidecarError: naming ``where`` and the first bad field; an old format says how to
        re-export.
    """
    c = _Checker(where)
    if not isinstance(data, dict):
        raise SidecarError(f"{where}: a sidecar holds a JSON object, got {type(data).__name__}")
    fmt = data.get("format")
    if fmt in OLD_FORMATS:
        raise SidecarError(
            f"{where}: format {fmt!r} is from an earlier mobile_enhance (this one reads {FORMAT!r}); re-export the model: "
            f"mobile-enhance export --run_dir=RUN --quant=MODE --output={Path(str(where)).with_suffix('.tflite').name}"
        )
    if fmt != FORMAT:
        c.fail("format", f"must be {FORMAT!r}, got {json.dumps(fmt)}")
    c.get(data, "model", "model", str, allow_none=True)
    c.get(data, "model_kwargs", "model_kwargs", dict)
    c.get(data, "run_dir", "run_dir", str)
    c.positive_int(data, "upscale", "upscale")
    c.positive_int(data, "size_multiple", "size_multiple")
    dynamic = c.get(data, "dynamic_size", "dynamic_size", bool)
    c.get(data, "gmacs", "gmacs", (int, float), allow_none=True)
    size = c.get(data, "gmacs_size", "gmacs_size", list, allow_none=True)
    if size is not None and (len(size) != 2 or not all(isinstance(v, int) and v > 0 for v in size)):
        c.fail("gmacs_size", f"must be [H, W], got {json.dumps(size)}")
    inp, out = c.tensor(data, "input"), c.tensor(data, "output")
    fixed = inp["shape"][1] is not None and inp["shape"][2] is not None
    if dynamic == fixed:
        c.fail("dynamic_size", f"is {json.dumps(dynamic)} but input.shape is {json.dumps(inp['shape'])}")
    if fixed:
        for axis, n in zip(("height", "width"), inp["shape"][1:3]):
            if n % data["size_multiple"]:
                c.fail("input.shape", f"{axis} {n} is not a multiple of size_multiple {data['size_multiple']}")
        want = [1, inp["shape"][1] * data["upscale"], inp["shape"][2] * data["upscale"], 3]
        if out["shape"][1:3] != want[1:3]:
            c.fail("output.shape", f"must be input.shape x upscale {data['upscale']} = {want}, got {json.dumps(out['shape'])}")
    mode = c.get(c.get(data, "quantization", "quantization", dict), "mode", "quantization.mode", str)
    if mode not in MODES:
        c.fail("quantization.mode", f"must be one of {', '.join(MODES)}, got {mode!r}")
    f = c.get(data, "file", "file", dict)
    c.get(f, "name", "file.name", str)
    c.get(f, "bytes", "file.bytes", int)
    c.get(f, "sha256", "file.sha256", str)
    return data


def check_against_file(data: dict, where, blob: bytes, input_detail: dict, output_detail: dict) -> None:
    """Refuse a sidecar that contradicts its ``.tflite``: bytes, hash, tensor shapes, dtypes,
    scales and zero points (and so the upscale of a fixed-size file)."""
    c = _Checker(where)
    if data["file"]["bytes"] != len(blob):
        c.fail("file.bytes", f"is {data['file']['bytes']} but the file has {len(blob)}: it belongs to another export "
                             "(re-export the pair or remove the sidecar)")
    if data["file"]["sha256"] != hashlib.sha256(blob).hexdigest():
        c.fail("file.sha256", "differs from the file's: it belongs to another export (re-export the pair or remove the sidecar)")
    for key, detail in (("input", input_detail), ("output", output_detail)):
        actual, said = tensor_entry(detail), data[key]
        for field in ("shape", "dtype"):
            if actual[field] != said[field]:
                c.fail(f"{key}.{field}", f"is {json.dumps(said[field])} but the file has {json.dumps(actual[field])}")
        a, s = actual["quantization"], said["quantization"]
        if (a is None) != (s is None) or (a and (not math.isclose(a["scale"], s["scale"], rel_tol=1e-6) or a["zero_point"] != s["zero_point"])):
            c.fail(f"{key}.quantization", f"is {json.dumps(s)} but the file has {json.dumps(a)}")


# -- reading and writing ------------------------------------------------------------------


def read_sidecar(tflite_path, blob: bytes | None = None, input_detail=None, output_detail=None) -> dict | None:
    """The validated sidecar beside ``tflite_path``, or ``None`` when there is none.

    With the file's ``blob`` and tensor details it is also checked against the file.

    Raises:
      SidecarError: malformed JSON, an unknown or old format, a bad field, or a sidecar
        that contradicts its file, in one line naming the sidecar and the field.
    """
    path = sidecar_path(tflite_path)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise SidecarError(f"{path}: not readable JSON ({error})") from None
    validate(data, path)
    if blob is not None:
        check_against_file(data, path, blob, input_detail, output_detail)
    return data


def make_sidecar(**fields) -> dict:
    """A sidecar of this format from its fields (see the module docstring), validated."""
    missing = [k for k in REQUIRED if k != "format" and k not in fields]
    if missing:
        raise ValueError(f"sidecar fields missing: {', '.join(missing)}")
    data = {"format": FORMAT, **fields}
    validate(data, "the new sidecar")
    return data


def sidecar_for(tflite_path, **fields) -> dict:
    """A sidecar describing the ``.tflite`` at ``tflite_path`` as it is (tensors, file hash,
    dynamic size, upscale from fixed shapes), with ``fields`` on top (e.g. ``model``,
    ``size_multiple``, ``quantization``): for a file exported elsewhere, so that enhance,
    bench and evaluate know what its tensors cannot say."""
    from mobile_enhance.runtime.interpreter import make_interpreter, quantization_mode

    blob = Path(tflite_path).read_bytes()
    interpreter = make_interpreter(model_content=blob)
    inp, out = tensor_entry(interpreter.get_input_details()[0]), tensor_entry(interpreter.get_output_details()[0])
    dynamic = inp["shape"][1] is None
    upscale = 1 if dynamic or out["shape"][1] is None else out["shape"][1] // inp["shape"][1]
    data = {
        "model": None, "model_kwargs": {}, "run_dir": "", "upscale": upscale, "size_multiple": 1, "dynamic_size": dynamic,
        "gmacs": None, "gmacs_size": None, "input": inp, "output": out, "quantization": {"mode": quantization_mode(interpreter)},
        "file": file_entry(tflite_path, blob),
    }
    data.update(fields)
    return make_sidecar(**data)


def write_sidecar(tflite_path, data: dict) -> Path:
    """Write ``data`` (validated) as the sidecar of ``tflite_path``, atomically."""
    from mobile_enhance.fileio import atomic_write_bytes

    path = sidecar_path(tflite_path)
    validate(data, path)
    atomic_write_bytes(path, (json.dumps(data, indent=2) + "\n").encode())
    return path


def app_fields(data: dict) -> dict:
    """What the Android demo (``Sidecar.kt``) reads from a sidecar, as it reads it."""
    inp = data["input"]
    return {
        "format": data["format"],
        "shape": inp["shape"],
        "dtype": inp["dtype"],
        "range": [float(v) for v in inp.get("range", [0.0, 1.0])],
        "quantization": inp["quantization"],
        "has_output": data.get("output") is not None,
        "size_multiple": data["size_multiple"],
        "dynamic_size": data["dynamic_size"],
        "upscale": data["upscale"],
        "model": data["model"],
    }


__all__ = [
    "DTYPES", "FORMAT", "MODES", "OLD_FORMATS", "REQUIRED", "ModelError", "SidecarError", "app_fields", "check_against_file", "file_entry",
    "make_sidecar", "read_sidecar", "sidecar_for", "sidecar_path", "tensor_entry", "validate", "write_sidecar",
]
