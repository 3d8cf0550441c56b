"""The LiteRT interpreter: making one, feeding it images, telling a file's quantization
mode, and capturing what its native code prints.

Keeps to numpy and ``ai_edge_litert`` (about 25 MB resident) rather than TensorFlow
(about 570 MB).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile

import numpy as np

#: What LiteRT prints at every first ``allocate_tensors``; not worth a user's line.
NATIVE_NOISE = ("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",)


def make_interpreter(model_content: bytes | None = None, model_path: str | None = None, num_threads: int | None = None, delegates=None):
    """A LiteRT interpreter (``ai_edge_litert``; ``tf.lite.Interpreter`` is deprecated).

    ``num_threads`` sets XNNPACK's threads; ``delegates`` are loaded delegates
    (``ai_edge_litert.interpreter.load_delegate``), e.g. a GPU delegate library.
    """
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(
        model_content=model_content, model_path=model_path, num_threads=num_threads, experimental_delegates=delegates
    )


def quantize_input(x: np.ndarray, detail) -> np.ndarray:
    """Float input in [0, 1] to the input tensor's dtype (through its scale and zero point)."""
    dtype = np.dtype(detail["dtype"])
    if dtype == np.float32:
        return np.asarray(x, np.float32)
    scale, zero = detail["quantization"]
    if scale == 0:
        raise ValueError("quantized input tensor without a scale")
    info = np.iinfo(dtype)
    return np.clip(np.round(x / np.float32(scale) + zero), info.min, info.max).astype(dtype)


def dequantize_output(y: np.ndarray, detail) -> np.ndarray:
    """The output tensor's values as float32 (through its scale and zero point)."""
    if np.dtype(detail["dtype"]) == np.float32:
        return y
    scale, zero = detail["quantization"]
    return (y.astype(np.float32) - np.float32(zero)) * np.float32(scale)


def run_tflite(model: bytes | str, images: np.ndarray, num_threads: int | None = None) -> np.ndarray:
    """Run a converted model on ``(N, H, W, 3)`` float32 images in [0, 1], one at a time.

    Quantized inputs and outputs are mapped through the tensors' scale and zero point,
    so the result is always float32 in the model's output range. A file whose input
    size is dynamic is resized to each image.
    """
    interpreter = (
        make_interpreter(model_content=bytes(model), num_threads=num_threads)
        if isinstance(model, (bytes, bytearray))
        else make_interpreter(model_path=str(model), num_threads=num_threads)
    )
    inp = interpreter.get_input_details()[0]
    outputs = []
    for image in np.asarray(images, np.float32):
        wanted = [1, *image.shape]
        if list(inp["shape"]) != wanted:
            interpreter.resize_tensor_input(inp["index"], wanted, strict=False)
            interpreter.allocate_tensors()
            inp = interpreter.get_input_details()[0]
        elif not outputs:
            interpreter.allocate_tensors()
        interpreter.set_tensor(inp["index"], quantize_input(image[None], inp))
        interpreter.invoke()
        out = interpreter.get_output_details()[0]
        outputs.append(dequantize_output(interpreter.get_tensor(out["index"]), out)[0])
    return np.stack(outputs)


def quantization_mode(interpreter) -> str:
    """A file's quantization mode from its tensors: ``int8`` (integer input: full integer),
    ``float16`` (float16 weights), ``dynamic`` (float I/O with int8 weights) or ``float32``.

    The tensors cannot tell ``qat_int8`` from ``int8`` (nor int8 with float I/O from
    ``dynamic``): a sidecar's ``quantization.mode`` says better, and
    :func:`mobile_enhance.runtime.read_contract` prefers it.
    """
    inp = interpreter.get_input_details()[0]
    if np.dtype(inp["dtype"]) in (np.dtype(np.uint8), np.dtype(np.int8)):
        return "int8"
    dtypes = {np.dtype(t["dtype"]) for t in interpreter.get_tensor_details()}
    if np.dtype(np.float16) in dtypes:
        return "float16"
    if np.dtype(np.int8) in dtypes:
        return "dynamic"
    return "float32"


@contextlib.contextmanager
def native_stderr(passthrough: bool = True, drop=NATIVE_NOISE):
    """Capture file descriptor 2, where LiteRT's C++ code logs, around a LiteRT call.

    Yields a function returning the captured text (complete once the block has ended).
    With ``passthrough`` the captured lines are printed to ``sys.stderr`` afterwards, less
    the ``drop`` lines; without, they are only kept (for probes expected to fail, and for
    reading why a backend would not start).
    """
    sys.stderr.flush()
    saved = os.dup(2)
    text = {"value": ""}
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield lambda: text["value"]
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            text["value"] = tmp.read().decode("utf-8", "replace")
            if passthrough:
                kept = [ln for ln in text["value"].splitlines() if ln.strip() not in drop]
                if kept:
                    print("\n".join(kept), file=sys.stderr, flush=True)
