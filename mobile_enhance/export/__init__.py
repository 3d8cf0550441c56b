"""Export: Keras generator -> quantized TFLite file + JSON sidecar, with proven fidelity.

The export modes are one table, :data:`mobile_enhance.export.modes.MODES`. Importing this
package (and :mod:`~mobile_enhance.export.modes`) imports no TensorFlow: the names below
load their modules when first used, so the CLI can take its choices from the table.
"""

import importlib

_WHERE = {
    "exporter": (
        "ExportResult", "export_model", "export_saved_model", "load_trained", "verify_sidecar",
    ),
    "errors": ("ExportError", "FidelityError"),
    "modes": ("DEFAULT_MIN_PSNR", "DEFAULT_PERCENTILE", "DEFAULT_TUNE_SWEEPS", "EXPORT_MODES", "ExportMode", "get_mode"),
    "tflite": ("QUANT_MODES", "calibrated_int8", "convert", "quantize_calibrated", "run_tflite", "tune_ranges"),
}
_MODULE = {name: module for module, names in _WHERE.items() for name in names}

__all__ = sorted(_MODULE)


def __getattr__(name):
    if name not in _MODULE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_MODULE[name]}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
