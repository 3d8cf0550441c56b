"""Keras -> TFLite conversion. Running a converted file: :mod:`mobile_enhance.runtime`."""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np

from mobile_enhance.compat import tf
from mobile_enhance.errors import UnknownNameError, UserError
from mobile_enhance.runtime import make_interpreter, run_tflite  # noqa: F401 - re-exported

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
