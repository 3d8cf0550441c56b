"""Keras -> TFLite conversion and running a converted model in the LiteRT interpreter."""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np

from mobile_enhance.compat import tf
from mobile_enhance.errors import UnknownNameError, UserError

#: Conversion modes. ``int8`` is full integer (activations and weights) and needs a
#: representative dataset; ``dynamic`` quantizes weights only; ``float16`` stores
#: weights as float16.
QUANT_MODES = ("float32", "float16", "dynamic", "int8")


def _concrete_function(model, input_size):
    height, width = (None, None) if input_size is None else input_size
    spec = tf.TensorSpec([1, height, width, model.input_shape[-1]], tf.float32, name="phone")
    return tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)


def convert(
    model,
    quant: str = "float32",
    input_size: tuple[int, int] | None = None,
    representative: Callable[[], Iterable[np.ndarray]] | None = None,
    io_dtype: str = "uint8",
) -> bytes:
    """Convert a Keras generator to a TFLite flatbuffer.

    Args:
      model: Keras model, ``(N, H, W, 3)`` float32 in [0, 1] in and out.
      quant: one of :data:`QUANT_MODES`.
      input_size: ``(H, W)`` baked into the file, or ``None`` for a dynamic size.
      representative: for ``int8``, a callable returning an iterable of
        ``(1, H, W, 3)`` float32 arrays in [0, 1] used to calibrate activation ranges.
      io_dtype: for ``int8``, the input/output type: ``uint8``, ``int8`` or ``float32``.

    Returns:
      The ``.tflite`` file's bytes.
    """
    if quant not in QUANT_MODES:
        raise UnknownNameError("quantization mode", quant, QUANT_MODES)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([_concrete_function(model, input_size)], model)
    if quant == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quant == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quant == "int8":
        if representative is None:
            raise UserError("int8 conversion needs a representative dataset to calibrate activation ranges")
        io_types = {"uint8": tf.uint8, "int8": tf.int8, "float32": tf.float32}
        if io_dtype not in io_types:
            raise UnknownNameError("int8 input/output type", io_dtype, io_types)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([np.asarray(x, np.float32)] for x in representative())
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = io_types[io_dtype]
        converter.inference_output_type = io_types[io_dtype]
    return converter.convert()


def make_interpreter(model_content: bytes | None = None, model_path: str | None = None, num_threads: int | None = None):
    """A LiteRT interpreter (``ai_edge_litert``; ``tf.lite.Interpreter`` is deprecated)."""
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_content=model_content, model_path=model_path, num_threads=num_threads)


def _to_input(x: np.ndarray, detail) -> np.ndarray:
    dtype = detail["dtype"]
    if dtype == np.float32:
        return x.astype(np.float32)
    scale, zero = detail["quantization"]
    if scale == 0:
        raise ValueError("quantized input tensor without a scale")
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)


def _from_output(y: np.ndarray, detail) -> np.ndarray:
    if detail["dtype"] == np.float32:
        return y
    scale, zero = detail["quantization"]
    return (y.astype(np.float32) - zero) * scale


def run_tflite(model: bytes | str, images: np.ndarray, num_threads: int | None = None) -> np.ndarray:
    """Run a converted model on ``(N, H, W, 3)`` float32 images in [0, 1], one at a time.

    Quantized inputs and outputs are mapped through the tensors' scale and zero point,
    so the result is always float32 in the model's output range. A file whose input
    size is dynamic is resized to each image.
    """
    interpreter = (
        make_interpreter(model_content=model, num_threads=num_threads)
        if isinstance(model, (bytes, bytearray))
        else make_interpreter(model_path=str(model), num_threads=num_threads)
    )
    inp = interpreter.get_input_details()[0]
    outputs = []
    for image in np.asarray(images, np.float32):
        wanted = [1, *image.shape]
        if list(inp["shape"]) != wanted:
            interpreter.resize_tensor_input(inp["index"], wanted, strict=True)
            interpreter.allocate_tensors()
            inp = interpreter.get_input_details()[0]
        elif not outputs:
            interpreter.allocate_tensors()
        interpreter.set_tensor(inp["index"], _to_input(image[None], inp))
        interpreter.invoke()
        out = interpreter.get_output_details()[0]
        outputs.append(_from_output(interpreter.get_tensor(out["index"]), out)[0])
    return np.stack(outputs)
