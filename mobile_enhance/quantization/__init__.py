"""Quantization: what a float model goes through before a full-integer conversion.

* :mod:`~mobile_enhance.quantization.equalize`: exact rewrites of the float function that
  int8 files hold better (instance norms' channels and concatenations' inputs on one scale,
  integer-friendly norm statistics), applied by the ``int8`` and ``qat_int8`` exports.
* :mod:`~mobile_enhance.quantization.qat`: quantization-aware training with
  tensorflow-model-optimization (fake-quant graph, calibrated and frozen activation
  ranges) and :func:`qat_finetune`, the ``qat_int8`` export's fine-tune.

The export stage (:mod:`mobile_enhance.export`) chooses what to apply per mode.
"""

from mobile_enhance.quantization.equalize import (
    equalize_concatenations,
    equalize_for_int8,
    equalize_instance_norms,
    integer_means,
    reconfigured,
)
from mobile_enhance.quantization.qat import (
    QAT_RANGES,
    QAT_TARGETS,
    activation_ranges,
    annotate,
    calibrate_ranges,
    frozen_ranges,
    pin_image_ranges,
    qat_finetune,
    quantize_model,
    quantize_scope,
    without_training_noise,
)

__all__ = [
    "QAT_RANGES",
    "QAT_TARGETS",
    "activation_ranges",
    "annotate",
    "calibrate_ranges",
    "equalize_concatenations",
    "equalize_for_int8",
    "equalize_instance_norms",
    "frozen_ranges",
    "integer_means",
    "pin_image_ranges",
    "qat_finetune",
    "quantize_model",
    "quantize_scope",
    "reconfigured",
    "without_training_noise",
]
