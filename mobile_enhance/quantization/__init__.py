"""Quantization-aware training with tensorflow-model-optimization.

tfmot's ``quantize_model`` only knows Keras' own layers. Our custom layers (and Keras
``Multiply``-like products) carry a ``quantize_config()``; :func:`quantize_model`
annotates each such layer with its config and then hands the model to tfmot.
"""

from __future__ import annotations

import contextlib

import numpy as np

from mobile_enhance.compat import keras, tf, tfmot
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


def equalize_instance_norms(model, inputs, batch_size: int = 8):
    """A copy of ``model`` whose instance norms hold every channel's statistics on one scale.

    Full-integer TFLite stores each activation tensor with one scale for all its channels.
    An instance norm's variance is the mean of its centered input squared: a channel whose
    spread is 10x below the tensor's largest has its squares 100x below that tensor's
    range, they round to zero, and the norm then multiplies the channel by
    ``1/sqrt(epsilon)`` instead of ``1/std``. (Measured on the 2500-step muxdemux: its
    int8 file lost 6.0 dB against the targets.) Here each
    :class:`~mobile_enhance.models.layers.InstanceNormalization` gets ``prescale = 1 /
    typical std`` per channel (the median over ``inputs`` of each image's spatial std),
    so that its input, statistics and ``1/std`` are about 1 for every channel. The float
    output is unchanged (the epsilon is scaled with them); where a norm follows a
    convolution, the converter folds the extra multiply into that convolution's weights.

    Args:
      model: float Keras model, ``(N, H, W, 3)`` float32.
      inputs: ``(N, H, W, 3)`` calibration images (the int8 representative set).

    Returns:
      ``(model copy, number of norms equalized)``; ``model`` itself if it has none.
      A norm whose input is constant on every image is left as it is.
    """
    from mobile_enhance.models.layers import InstanceNormalization

    norms = [layer for layer in model.layers if isinstance(layer, InstanceNormalization)]
    if not norms:
        return model, 0
    probe = keras.Model(model.inputs, [layer.input for layer in norms])
    stds = [[] for _ in norms]  # per norm: (images, channels), one batch at a time (full-size inputs are large)
    for start in range(0, len(inputs), batch_size):
        batch = np.asarray(inputs[start : start + batch_size], np.float32)
        features = probe(batch, training=False)
        for i, feature in enumerate(features if len(norms) > 1 else [features]):
            stds[i].append(tf.math.reduce_std(feature, axis=[1, 2]).numpy())
    if not stds[0]:
        raise ValueError("equalize_instance_norms needs at least one input image")
    prescale = {}
    for layer, per_image in zip(norms, stds):
        std = np.median(np.concatenate(per_image), axis=0)
        if std.max() <= 0:
            continue  # constant on every image: nothing to put on one scale
        floor = float(std.max()) * 1e-3  # dead channels: keep them near the others' scale
        prescale[layer.name] = (1.0 / np.maximum(std, floor)).tolist()

    if not prescale:
        return model, 0

    def clone(layer):
        config = layer.get_config()
        if layer.name in prescale:
            config["prescale"] = prescale[layer.name]
        return layer.__class__.from_config(config)

    equalized = keras.models.clone_model(model, clone_function=clone)
    equalized.set_weights(model.get_weights())
    return equalized, len(prescale)
