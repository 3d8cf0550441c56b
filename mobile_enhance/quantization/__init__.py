"""Quantization-aware training with tensorflow-model-optimization.

tfmot's ``quantize_model`` only knows Keras' own layers. Our custom layers (and Keras
``Multiply``-like products) carry a ``quantize_config()``; :func:`quantize_model`
annotates each such layer with its config and then hands the model to tfmot.
"""

from __future__ import annotations

import contextlib

import numpy as np

from mobile_enhance.compat import keras, tfmot
from mobile_enhance.models.layers import custom_objects, quantize_config_objects


def annotate(model):
    """Clone ``model`` with every layer that has a ``quantize_config()`` annotated with it."""
    qk = tfmot().quantization.keras

    def clone(layer):
        if hasattr(layer, "quantize_config"):
            return qk.quantize_annotate_layer(layer.__class__.from_config(layer.get_config()), layer.quantize_config())
        return layer.__class__.from_config(layer.get_config())

    annotated = keras.models.clone_model(model, clone_function=clone)
    annotated.set_weights(model.get_weights())
    return annotated


def quantize_scope():
    """Context in which QAT models of this package can be built, saved and loaded."""
    return tfmot().quantization.keras.quantize_scope({**custom_objects(), **quantize_config_objects()})


def quantize_model(model):
    """Return the fake-quantized (QAT) version of a float model, weights carried over.

    Input and output contracts are those of ``model``; the result trains with
    ``fit`` like any Keras model and converts to a full-int8 TFLite file.
    """
    annotated = annotate(model)
    with quantize_scope():
        return tfmot().quantization.keras.quantize_model(annotated)


@contextlib.contextmanager
def _range_decay(decay: float):
    """Within the block, tfmot's moving-average range quantizers use ``decay`` as EMA decay.

    tfmot hard-codes 0.999 in ``MovingAverageQuantizer``; the quantizer looks the op up in
    its module at every (eager) call, so replacing the module attribute is enough.
    """
    from tensorflow_model_optimization.python.core.quantization.keras import quant_ops

    original = quant_ops.MovingAvgQuantize

    def moving_avg_quantize(*args, ema_decay=0.999, **kwargs):
        return original(*args, ema_decay=decay, **kwargs)

    quant_ops.MovingAvgQuantize = moving_avg_quantize
    try:
        yield
    finally:
        quant_ops.MovingAvgQuantize = original


def calibrate_ranges(qat_model, batches) -> int:
    """Set a QAT model's activation ranges from data, before fine-tuning it.

    tfmot starts every activation range at [-6, 6] and moves it towards each batch's
    range with an EMA of 0.999 per training step: after 200 fine-tuning steps a [0, 1]
    activation still has a range of about [-5, 5] (20x too coarse). Here each batch
    sets every range to its own (each layer seeing its inputs quantized with the ranges
    set upstream), and the result is the minimum and maximum over all batches: the
    ranges the TFLite converter's post-training calibration would take from the same
    images. Returns the batch count.
    """
    variables = [v for v in qat_model.non_trainable_variables if _is_range(v)]
    low, high = {}, {}
    count = 0
    with _range_decay(0.0):
        for x in batches:
            qat_model(x, training=True)
            for v in variables:
                value = v.numpy()
                if v.name.split(":")[0].endswith("_min"):
                    low[v.ref()] = np.minimum(low.get(v.ref(), value), value)
                else:
                    high[v.ref()] = np.maximum(high.get(v.ref(), value), value)
            count += 1
    if not count:
        raise ValueError("calibrate_ranges needs at least one batch")
    for v in variables:
        v.assign(low[v.ref()] if v.ref() in low else high[v.ref()])
    return count


def frozen_ranges():
    """Within the block, training leaves the activation ranges where they are
    (EMA decay 1): fine-tuning after :func:`calibrate_ranges` adapts the weights only."""
    return _range_decay(1.0)


def _is_range(variable) -> bool:
    leaf = variable.name.split("/")[-1].split(":")[0]
    return leaf.endswith(("_min", "_max")) and "kernel" not in variable.name


def activation_ranges(qat_model) -> dict:
    """``{variable name: value}`` of the QAT model's activation range variables."""
    return {v.name: v.numpy() for v in qat_model.non_trainable_variables if _is_range(v)}
