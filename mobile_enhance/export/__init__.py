"""Export: Keras model -> TFLite flatbuffer (and, later, sidecar JSON)."""

from mobile_enhance.export.tflite import QUANT_MODES, convert, run_tflite

__all__ = ["QUANT_MODES", "convert", "run_tflite"]
