"""Exported models at run time, without TensorFlow: the one owner of an exported file.

* :mod:`.sidecar`: the sidecar's schema, its writer (export) and its reader and validator
  (enhance, bench, evaluate, export's check);
* :mod:`.contract`: a ``.tflite`` loaded with its contract (dtypes, scales, fixed or
  dynamic size, size multiple, upscale, quantization mode);
* :mod:`.interpreter`: the LiteRT interpreter, image I/O through scales and zero points,
  the quantization mode from a file's tensors, the capture of LiteRT's native stderr.

Enhance, bench and evaluate sit beside each other over this package; none of it imports
TensorFlow.
"""

from mobile_enhance.runtime.contract import Contract, ModelError, TensorContract, load, open_interpreter, probe
from mobile_enhance.runtime.interpreter import (
    NATIVE_NOISE,
    dequantize_output,
    make_interpreter,
    native_stderr,
    quantization_mode,
    quantize_input,
    run_tflite,
)
from mobile_enhance.runtime.sidecar import (
    FORMAT,
    SidecarError,
    app_fields,
    make_sidecar,
    read_sidecar,
    sidecar_for,
    sidecar_path,
    write_sidecar,
)

__all__ = [
    "FORMAT", "NATIVE_NOISE", "Contract", "ModelError", "SidecarError", "TensorContract", "app_fields", "dequantize_output", "load",
    "make_interpreter", "make_sidecar", "native_stderr", "open_interpreter", "probe", "quantization_mode", "quantize_input",
    "read_sidecar", "run_tflite", "sidecar_for", "sidecar_path", "write_sidecar",
]
