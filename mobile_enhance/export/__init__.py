"""Export: Keras generator -> quantized TFLite file + JSON sidecar, with proven fidelity."""

from mobile_enhance.export.exporter import (
    DEFAULT_MIN_PSNR,
    DEFAULT_TUNE_SWEEPS,
    EXPORT_MODES,
    ExportError,
    ExportResult,
    FidelityError,
    export_model,
    export_saved_model,
    load_trained,
    verify_sidecar,
)
from mobile_enhance.export.tflite import QUANT_MODES, calibrated_int8, convert, quantize_calibrated, run_tflite, tune_ranges

__all__ = [
    "DEFAULT_MIN_PSNR",
    "DEFAULT_TUNE_SWEEPS",
    "EXPORT_MODES",
    "QUANT_MODES",
    "ExportError",
    "ExportResult",
    "FidelityError",
    "convert",
    "export_model",
    "export_saved_model",
    "load_trained",
    "run_tflite",
    "calibrated_int8",
    "quantize_calibrated",
    "tune_ranges",
    "verify_sidecar",
]
