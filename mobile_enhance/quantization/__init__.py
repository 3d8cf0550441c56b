"""Quantization-aware training with tensorflow-model-optimization.

tfmot's ``quantize_model`` only knows Keras' own layers. Our custom layers (and Keras
``Multiply``-like products) carry a ``quantize_config()``; :func:`quantize_model`
annotates each such layer with its config and then hands the model to tfmot.
"""

from __future__ import annotations

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
