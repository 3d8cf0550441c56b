"""What an exported ``.tflite`` takes and gives: its contract, read from the file and its
sidecar.

:func:`load` opens the file in the LiteRT interpreter and returns the interpreter with a
:class:`Contract`: input and output dtypes, scales and zero points, fixed or dynamic size,
size multiple, upscale and quantization mode. With a sidecar (checked against the file)
those come from it; without one the contract is read from the file alone and
``Contract.warning`` says so in one line: the mode from the tensors, and for a
dynamic-size file the size multiple and upscale from running it once at each of a few
small sizes (1, 2, 4, ... 128 times an odd number), taking the first it runs at.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from mobile_enhance.runtime.interpreter import make_interpreter, native_stderr, quantization_mode, quantize_input
from mobile_enhance.runtime.sidecar import ModelError, read_sidecar, sidecar_path

#: Candidate size multiples tried on a dynamic model without a sidecar.
PROBE_MULTIPLES = (1, 2, 4, 8, 16, 32, 64, 128)


@dataclasses.dataclass(frozen=True)
class TensorContract:
    """One image tensor: ``shape`` ``(1, H, W, 3)`` (``None`` where dynamic), ``dtype``, and
    for integer tensors ``real = scale * (q - zero_point)``."""

    shape: tuple
    dtype: str
    scale: float | None
    zero_point: int | None

    @classmethod
    def of(cls, detail: dict) -> "TensorContract":
        scale, zero = detail["quantization"]
        shape = tuple(None if int(d) < 0 else int(d) for d in detail.get("shape_signature", detail["shape"]))
        return cls(shape, np.dtype(detail["dtype"]).name, float(scale) if scale else None, int(zero) if scale else None)


@dataclasses.dataclass(frozen=True)
class Contract:
    """An exported file's contract.

    Attributes:
      path: the ``.tflite`` file.
      input, output: see :class:`TensorContract`.
      dynamic: whether it takes any input size (else ``input.shape``'s).
      size_multiple: input sides must be multiples of it (the architecture's; 1 for a
        fixed-size file without a sidecar, which only takes its own size).
      upscale: output side / input side.
      mode: quantization mode (the sidecar's, else :func:`quantization_mode`'s).
      from_sidecar: whether a sidecar gave the contract.
      sidecar: the validated sidecar (``None`` without one).
      warning: one line for the user when there was no sidecar, else ``None``.
    """

    path: Path
    input: TensorContract
    output: TensorContract
    dynamic: bool
    size_multiple: int
    upscale: int
    mode: str
    from_sidecar: bool
    sidecar: dict | None
    warning: str | None

    @property
    def fixed_size(self) -> tuple[int, int] | None:
        return None if self.dynamic else (self.input.shape[1], self.input.shape[2])

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        return height * self.upscale, width * self.upscale


def open_interpreter(path, num_threads: int | None = None):
    """The file in the LiteRT interpreter; a file LiteRT cannot load is one line naming it."""
    try:
        return make_interpreter(model_path=str(path), num_threads=num_threads)
    except (ValueError, RuntimeError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelError(f"{path}: not a TFLite model LiteRT can load ({first})") from None


def _odd_multiple(m: int, at_least: int = 64) -> int:
    q = max(1, -(-at_least // m))
    return m * (q if q % 2 else q + 1) if m < at_least else m


def probe(path) -> tuple[int, int]:
    """``(size multiple, upscale)`` of a dynamic-size file: the smallest multiple it runs at,
    and the ratio of its output side to its input side there."""
    interpreter = open_interpreter(path, 1)
    detail = interpreter.get_input_details()[0]
    for m in PROBE_MULTIPLES:
        size = _odd_multiple(m)
        try:
            with native_stderr(passthrough=False):  # failures here are expected
                interpreter.resize_tensor_input(detail["index"], [1, size, size, 3], strict=True)
                interpreter.allocate_tensors()
                d = interpreter.get_input_details()[0]
                interpreter.set_tensor(d["index"], quantize_input(np.full((1, size, size, 3), 0.5, np.float32), d))
                interpreter.invoke()
                out = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
        except (RuntimeError, ValueError):
            continue
        if out.ndim == 4 and out.shape[0] == 1 and out.shape[3] == 3 and out.shape[1] == out.shape[2] and out.shape[1] % size == 0:
            return m, out.shape[1] // size
    raise ModelError(
        f"{path}: dynamic-size model that ran at none of the probe sizes; export it with `mobile-enhance export` "
        f"(its sidecar {sidecar_path(path).name} gives the size multiple)"
    )


def load(path, num_threads: int | None = None):
    """``(interpreter, contract)`` of the ``.tflite`` at ``path``.

    Raises:
      ModelError: no such file, not a model LiteRT loads, not one image in and one out.
      SidecarError: a sidecar that is malformed, of another format, or contradicts the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such model file")
    interpreter = open_interpreter(path, num_threads)
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    if len(inputs) != 1 or len(outputs) != 1:
        raise ModelError(f"{path}: an enhancement model has one input and one output")
    signature = [int(d) for d in inputs[0].get("shape_signature", inputs[0]["shape"])]
    if len(signature) != 4 or signature[3] != 3 or signature[0] not in (1, -1):
        raise ModelError(f"{path}: input shape {signature} is not (1, H, W, 3)")
    dynamic = any(d < 0 for d in signature[1:3])
    if dynamic and not all(d < 0 for d in signature[1:3]):
        raise ModelError(f"{path}: input shape {signature} is dynamic along one axis only; export it fixed or fully dynamic")
    sidecar = read_sidecar(path, path.read_bytes(), inputs[0], outputs[0])
    inp, out = TensorContract.of(inputs[0]), TensorContract.of(outputs[0])
    if sidecar is not None:
        multiple, upscale, mode, warning = sidecar["size_multiple"], sidecar["upscale"], sidecar["quantization"]["mode"], None
    else:
        mode = quantization_mode(interpreter)
        if dynamic:
            multiple, upscale = probe(path)
            how = f"size multiple {multiple} and upscale {upscale} probed"
        else:
            multiple = 1
            if out.shape[1] is None or out.shape[1] % signature[1] or out.shape[2] % signature[2]:
                raise ModelError(f"{path}: output shape {list(out.shape)} is not a whole multiple of input shape {signature}")
            upscale = out.shape[1] // signature[1]
            how = "contract read from its tensors"
        warning = f"{path}: no sidecar {sidecar_path(path).name}; {how}, mode {mode} from its tensor types"
    contract = Contract(path, inp, out, dynamic, int(multiple), int(upscale), mode, sidecar is not None, sidecar, warning)
    return interpreter, contract


__all__ = ["PROBE_MULTIPLES", "Contract", "ModelError", "TensorContract", "load", "open_interpreter", "probe"]
