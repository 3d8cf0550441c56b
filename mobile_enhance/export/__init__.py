"""Export: Keras generator -> quantized TFLite file + JSON sidecar, with proven fidelity."""

from mobile_enhance.export.exporter import (
    DEFAULT_MIN_PSNR,
    EXPORT_MODES,
    ExportError,
    ExportResult,
    FidelityError,
    export_model,
    export_saved_model,
    load_trained,
    verify_sidecar,
)
from mobile_enhance.export.tflite import QUANT_MODES, convert, run_tflite

__all__ = [
    "DEFAULT_MIN_PSNR",
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
    "verify_sidecar",
]
