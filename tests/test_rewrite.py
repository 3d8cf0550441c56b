"""Exact rewrites for XNNPACK: the same function with other layers."""

import numpy as np
import pytest
from card_lists import one_card_per_builder

from mobile_enhance.compat import keras
from mobile_enhance.export import convert, run_tflite
from mobile_enhance.export.analysis import operator_names
from mobile_enhance.export.rewrite import rewritable, rewrite_for_xnnpack
from mobile_enhance.models import MODELS, build_model

L = keras.layers


def _single(layer, channels, size=(24, 20)):
    inputs = keras.Input((None, None, channels))
    model = keras.Model(inputs, layer(inputs))
    keras.utils.set_random_seed(0)
    weights = [np.random.default_rng(1).normal(size=w.shape).astype(np.float32) for w in model.get_weights()]
    model.set_weights(weights)
    return model, np.random.default_rng(2).random((2, *size, channels), dtype=np.float32)


@pytest.mark.parametrize("kernel,cin,cout", [(5, 3, 8), (7, 8, 3), (9, 16, 3), (9, 3, 16)])
def test_thin_convolution_becomes_blocks_with_the_same_output(kernel, cin, cout):
    model, x = _single(L.Conv2D(cout, kernel, padding="same", activation="relu", name="thin"), cin)
    rewritten, names = rewrite_for_xnnpack(model, (24, 20))
    assert names == ["thin"] and [type(layer).__name__ for layer in rewritten.layers[1:]] == ["Demux", "Conv2D", "Mux"]
    np.testing.assert_allclose(rewritten(x).numpy(), model(x).numpy(), atol=1e-4 * kernel * kernel * cin)


@pytest.mark.parametrize("kernel", [2, 3, 4, 5])
def test_stride2_transposed_convolution_becomes_phases_with_the_same_output(kernel):
    model, x = _single(L.Conv2DTranspose(6, kernel, strides=2, padding="same", name="up"), 5)
    rewritten, names = rewrite_for_xnnpack(model, None)
    assert names == ["up"]
    np.testing.assert_allclose(rewritten(x).numpy(), model(x).numpy(), atol=1e-4)
    assert "TRANSPOSE_CONV" not in operator_names(convert(model, "float32", input_size=None))


def _upsampled(kernel, cin, cout, tail=None):
    inputs = keras.Input((None, None, cin))
    up = L.UpSampling2D(2, interpolation="nearest", name="up")(inputs)
    y = L.Conv2D(cout, kernel, padding="same", activation="relu", name="conv")(up)
    model = keras.Model(inputs, tail(up, y) if tail else y)
    model.set_weights([np.random.default_rng(1).normal(size=w.shape).astype(np.float32) for w in model.get_weights()])
    return model, np.random.default_rng(2).random((2, 7, 9, cin), dtype=np.float32)


@pytest.mark.parametrize("kernel,cin,cout", [(1, 4, 5), (3, 6, 6), (5, 3, 8), (7, 4, 2)])
def test_nearest_upsampling_and_its_convolution_become_phases_with_the_same_output(kernel, cin, cout):
    model, x = _upsampled(kernel, cin, cout)
    rewritten, names = rewrite_for_xnnpack(model, None)  # any size, odd ones included
    assert names == ["conv"] == rewritable(model, None)
    assert [type(layer).__name__ for layer in rewritten.layers[1:]] == ["Conv2D", "Mux"]
    np.testing.assert_allclose(rewritten(x).numpy(), model(x).numpy(), atol=1e-5 * kernel * kernel * cin)
    ops = operator_names(convert(model, "float32", input_size=(7, 9)))
    assert "RESIZE_NEAREST_NEIGHBOR" not in ops and "DEPTH_TO_SPACE" in ops


def test_an_upsampling_used_twice_or_as_output_is_left_alone():
    used_twice, _ = _upsampled(3, 4, 4, tail=lambda up, y: L.Add()([up, y]))
    assert rewritable(used_twice, None) == []
    as_output, _ = _upsampled(3, 4, 4, tail=lambda up, y: [up, y])
    assert rewrite_for_xnnpack(as_output, None) == (as_output, [])
    inputs = keras.Input((None, None, 4))
    strided = keras.Model(inputs, L.Conv2D(4, 3, strides=2, padding="same")(L.UpSampling2D(2)(inputs)))
    assert rewritable(strided, None) == []


def test_what_is_left_alone():
    # odd sizes (no space_to_depth), wide convolutions, strides other than 2
    thin, _ = _single(L.Conv2D(3, 9, padding="same"), 16)
    assert rewritable(thin, (25, 20)) == [] and rewritable(thin, None) == [] and rewritable(thin, (24, 20)) == [thin.layers[1].name]
    wide, _ = _single(L.Conv2D(32, 9, padding="same"), 16)
    assert rewrite_for_xnnpack(wide, (24, 20)) == (wide, [])
    up3, _ = _single(L.Conv2DTranspose(4, 3, strides=3, padding="same"), 4)
    assert rewritable(up3, (24, 20)) == []


@pytest.mark.parametrize("name", one_card_per_builder())
def test_every_model_keeps_its_output(name, rng):
    keras.utils.set_random_seed(0)
    model = build_model(name)
    m, s = MODELS[name].size_multiple, MODELS[name].upscale
    x = rng.random((2, 8 * m, 12 * m, 3), dtype=np.float32)
    rewritten, names = rewrite_for_xnnpack(model, x.shape[1:3])
    assert names == rewritable(model, x.shape[1:3])
    out = rewritten(x).numpy()
    assert out.shape == (2, s * x.shape[1], s * x.shape[2], 3)
    np.testing.assert_allclose(out, model(x).numpy(), atol=1e-5)
    blob = convert(model, "float32", input_size=x.shape[1:3])  # rewritten inside convert
    np.testing.assert_allclose(run_tflite(blob, x[:1]), model(x[:1]).numpy(), atol=1e-4)
    if names:
        assert not {"TRANSPOSE_CONV", "RESIZE_NEAREST_NEIGHBOR"} & set(operator_names(blob))


def _prelu_model(alpha):
    inputs = keras.Input((None, None, alpha.size))
    conv = L.Conv2D(alpha.size, 3, padding="same", name="conv")
    prelu = L.PReLU(shared_axes=[1, 2], name="prelu")
    model = keras.Model(inputs, L.Conv2D(3, 3, padding="same", name="tail")(prelu(conv(inputs))))
    keras.utils.set_random_seed(0)
    prelu.set_weights([alpha.reshape(1, 1, -1)])
    return model


@pytest.mark.parametrize("alpha,layers", [
    (np.array([0.25, -0.3, 1.0, 0.0, 0.9, -1.5], np.float32), ["DepthwiseConv2D", "Add"]),  # every slope <= 1
    (np.array([0.25, 1.7, -0.2, 3.0, 0.5, 1.01], np.float32), ["DepthwiseConv2D", "DepthwiseConv2D", "Add"]),
])
def test_channel_prelu_becomes_depthwise_convolutions_in_integer_files(alpha, layers, rng):
    model = _prelu_model(alpha)
    x = rng.normal(size=(2, 9, 7, alpha.size)).astype(np.float32)  # odd sizes: the rewrite takes any
    assert rewritable(model, None) == [] and rewrite_for_xnnpack(model, None) == (model, [])  # float files keep PRELU
    rewritten, names = rewrite_for_xnnpack(model, None, integer=True)
    assert names == ["prelu"] == rewritable(model, None, integer=True)
    assert [type(layer).__name__ for layer in rewritten.layers[2:-1]] == layers
    np.testing.assert_allclose(rewritten(x).numpy(), model(x).numpy(), atol=1e-5)


def test_per_pixel_prelu_is_left_alone():
    inputs = keras.Input((8, 8, 4))
    model = keras.Model(inputs, L.PReLU(name="prelu")(inputs))  # a slope per pixel: not a channel PReLU
    assert rewritable(model, (8, 8), integer=True) == []


def test_int8_file_of_a_prelu_model_stays_in_xnnpack(rng):
    from ai_edge_litert.interpreter import Interpreter

    from mobile_enhance.export.analysis import xnnpack_leftovers

    model = _prelu_model(np.array([0.25, -0.1, 0.6, 1.4], np.float32))
    calibration = [rng.random((1, 16, 16, 4), dtype=np.float32) for _ in range(4)]
    float_ops = operator_names(convert(model, "float32", input_size=(16, 16)))
    blob = convert(model, "int8", input_size=(16, 16), representative=lambda: iter(calibration), io_dtype="float32")
    assert "PRELU" in float_ops and "PRELU" not in operator_names(blob)
    interpreter = Interpreter(model_content=blob)
    interpreter.allocate_tensors()
    assert xnnpack_leftovers(interpreter) == []
    x = calibration[0]
    np.testing.assert_allclose(run_tflite(blob, x), model(x).numpy(), atol=0.05)
