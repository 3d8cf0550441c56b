"""Quantization-aware training (QAT) with tensorflow-model-optimization.

tfmot's ``quantize_model`` only knows Keras' own layers. Our custom layers (and Keras
``Multiply``-like products) carry a ``quantize_config()``; :func:`quantize_model`
annotates each such layer with its config and then hands the model to tfmot.
:func:`qat_finetune` is the ``qat_int8`` export's fine-tune: calibrated, pinned and
frozen activation ranges (:func:`calibrate_ranges`, :func:`pin_image_ranges`,
:func:`frozen_ranges`), then a short L1 fine-tune of the weights.
"""

from __future__ import annotations

import contextlib

import numpy as np

from mobile_enhance.compat import keras, tfmot
from mobile_enhance.errors import UnknownNameError, UserError
from mobile_enhance.models.layers import custom_objects, quantize_config_objects
from mobile_enhance.quantization.equalize import reconfigured


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


def calibrate_ranges(qat_model, batches, reduce: str = "minmax") -> int:
    """Set a QAT model's activation ranges from data, before fine-tuning it.

    tfmot starts every activation range at [-6, 6] and moves it towards each batch's
    range with an EMA of 0.999 per training step: after 200 fine-tuning steps a [0, 1]
    activation still has a range of about [-5, 5] (20x too coarse). Here each batch
    sets every range to its own (each layer seeing its inputs quantized with the ranges
    set upstream). ``reduce="minmax"`` keeps the minimum and maximum over all batches
    (the ranges the TFLite converter's post-training calibration would take from the same
    images, widening with every batch added); ``"median"`` the median of the per-batch
    minima and maxima (where tfmot's moving averages would settle; one extreme batch does
    not set the range). Returns the batch count.
    """
    if reduce not in ("minmax", "median"):
        raise ValueError(f"reduce must be 'minmax' or 'median', got {reduce!r}")
    variables = [v for v in qat_model.non_trainable_variables if _is_range(v)]
    seen, count = {v.ref(): [] for v in variables}, 0
    with _range_decay(0.0):
        for x in batches:
            qat_model(x, training=True)
            for v in variables:
                seen[v.ref()].append(v.numpy())
            count += 1
    if not count:
        raise ValueError("calibrate_ranges needs at least one batch")
    for v in variables:
        values = np.stack(seen[v.ref()])
        if reduce == "median":
            v.assign(np.median(values, axis=0))
        else:
            v.assign(values.min(axis=0) if v.name.split(":")[0].endswith("_min") else values.max(axis=0))
    return count


def pin_image_ranges(qat_model) -> None:
    """Widen a QAT model's input and output ranges to at least the image range [0, 1] (as
    :func:`mobile_enhance.export.tflite.pin_image_ranges` does for post-training files):
    the converted file's uint8 input and output are then the pixel values themselves."""
    ends = [layer for layer in qat_model.layers if type(layer).__name__ == "QuantizeLayer"][:1] + [qat_model.layers[-1]]
    pinned = 0
    for layer in ends:
        for v in layer.non_trainable_variables:
            leaf = v.name.split("/")[-1].split(":")[0]
            if _is_range(v) and (layer is qat_model.layers[-1]) == leaf.startswith(("output_", "post_activation_")):
                v.assign(np.minimum(v.numpy(), 0.0) if leaf.endswith("_min") else np.maximum(v.numpy(), 1.0))
                pinned += 1
    if pinned != 4:
        raise ValueError(f"expected the input and output ranges of {qat_model.name}, found {pinned} range variables")


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


# -- the qat_int8 export's fine-tune ---------------------------------------------------


#: What the fine-tune matches: the training targets, or the float model's own output.
QAT_TARGETS = ("data", "float")
#: How each activation range is taken from its per-batch extremes (see :func:`calibrate_ranges`).
QAT_RANGES = ("median", "minmax")


def without_training_noise(model):
    """``model`` with its noise channels (muxdemux) off in training too: QAT must train
    the graph the file will run, which has zeros there."""
    noisy = {layer.name: {"stddev": 0.0} for layer in model.layers if type(layer).__name__ == "NoiseChannels" and layer.stddev}
    return reconfigured(model, noisy) if noisy else model


def qat_finetune(model, source, steps: int = 200, learning_rate: float = 1e-5, batch_size: int = 8, calibration=None, seed: int = 0,
                 target: str = "data", ranges: str = "median"):
    """Quantization-aware fine-tuning: tfmot fake-quant graph, trained with L1 to ``target``:
    ``data``, the training targets, or ``float``, the float model's own output on the
    training inputs (the quantized model learns to match the model it replaces: closer to
    it, 36.7 against 35.2 dB for fast_dped, but 0.35 dB further from the targets).

    Starts from the float weights. The activation ranges are first set from
    ``calibration`` (a list of input batches; default 4 training batches) as the
    post-training calibration would set them (tfmot would start them all at [-6, 6] and
    need thousands of steps to forget that, see :func:`calibrate_ranges`); the short
    fine-tune at a low learning rate then adapts the weights to the 8-bit grid with the
    ranges held fixed (moving ranges, averaged over small batches, end up narrower than
    the calibrated ones). ``ranges``: each activation's range is the ``median`` of its
    per-batch minima and maxima (the calibration images in batches of 4; as tfmot's moving
    averages would settle, and robust to one extreme batch), or their ``minmax``, which
    widens with every calibration image (fast_dped at 128 images, 200 steps: 0.49 dB
    above the float model against the targets with median ranges, 0.41 below with
    minmax). Noise channels are off (:func:`without_training_noise`). ``seed`` seeds
    TensorFlow's random ops, so that the same inputs give the same file.
    """
    if source is None:
        raise UserError("qat_int8 needs training data (--data, or a --run_dir whose config names it)")
    if target not in QAT_TARGETS:
        raise UnknownNameError("QAT target", target, QAT_TARGETS)
    if ranges not in QAT_RANGES:
        raise UnknownNameError("QAT range estimate", ranges, QAT_RANGES)
    model = without_training_noise(model)

    def to_float():
        for x, _ in source.dataset(batch_size):
            yield x, model(x, training=False)

    with quantize_scope():
        qat = quantize_model(model)
        if calibration is None:
            batches = iter(source.dataset(batch_size))
            calibration = [next(batches)[0] for _ in range(4)]
        calibrate_ranges(qat, calibration, reduce=ranges)
        pin_image_ranges(qat)
        if steps:
            keras.utils.set_random_seed(seed)
            qat.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mae")
            with frozen_ranges():
                data = to_float() if target == "float" else source.dataset(batch_size)
                qat.fit(data, steps_per_epoch=int(steps), epochs=1, verbose=0)
    return qat
