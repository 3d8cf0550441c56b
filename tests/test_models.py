"""Every generator: parameters, config, shapes, training, saving and QAT.

Its float32 and int8 files are checked in tests/test_export.py's export matrix.

The keras-hub pattern: one parametrized battery of checks over all registered models,
on tiny inputs.
"""

import numpy as np
import pytest
from card_lists import one_card_per_builder

from mobile_enhance.compat import keras, tf
from mobile_enhance.errors import InputSizeError, UnknownNameError
from mobile_enhance.export import convert, run_tflite
from mobile_enhance.models import MODELS, build_model, check_input_size, custom_objects, padded_size
from mobile_enhance.models.dped import dped_discriminator
from mobile_enhance.quantization import activation_ranges, calibrate_ranges, frozen_ranges, quantize_model, quantize_scope

# Exact parameter counts (with batch-norm statistics). dped, fast_dped, rsgunet, srcnn and
# enhancenet are the counts of the authors' released graphs (srcnn: +2 for a per-channel
# last bias); srresnet's is the paper's 1,550,659 trainable + 4,224 BN statistics (srgan
# shares its generator); muxdemux and nonbn_resg are ours.
PARAMS = {"dped": 401_475, "fast_dped": 243_011, "rsgunet": 1_451_268, "muxdemux": 269_772, "srcnn": 69_251,
          "srresnet": 1_554_883, "srgan": 1_554_883, "enhancenet": 852_867, "nonbn_resg": 437_763}
ALL = sorted(MODELS)
GRAPHS = one_card_per_builder()  # srgan's generator is srresnet's: its graph is checked once


def images(rng, n, h, w):
    return rng.random((n, h, w, 3), dtype=np.float32)


def small_size(name):
    m = MODELS[name].size_multiple
    return padded_size(name, 32, 32), padded_size(name, 32 + m, 64)


def upscale(model):
    """Output side over input side of a model built by :func:`model` (named after its card)."""
    return MODELS[model.name].upscale


@pytest.fixture(scope="module", params=GRAPHS)
def model(request):
    keras.utils.set_random_seed(1)
    built = build_model(request.param)
    built._name = request.param  # the card's name (the generator's own may differ)
    return built


def test_registry_is_complete():
    assert set(PARAMS) == set(MODELS)


@pytest.mark.parametrize("name", ALL)
def test_parameter_count(name):
    assert build_model(name).count_params() == PARAMS[name]


def test_output_shape_and_range_at_two_sizes(model, rng):
    s = upscale(model)
    for h, w in small_size(model.name):
        y = model(images(rng, 2, h, w), training=False).numpy()
        assert y.shape == (2, s * h, s * w, 3)
        assert y.dtype == np.float32
        assert 0.0 <= y.min() and y.max() <= 1.0


def test_config_round_trip(model, rng):
    clone = keras.Model.from_config(model.get_config(), custom_objects=custom_objects())
    assert clone.get_config() == model.get_config()
    clone.set_weights(model.get_weights())
    x = images(rng, 1, *small_size(model.name)[0])
    np.testing.assert_allclose(clone(x).numpy(), model(x).numpy(), atol=1e-6)


def test_one_training_step_changes_weights(model, rng):
    trainee = keras.Model.from_config(model.get_config(), custom_objects=custom_objects())
    trainee.set_weights(model.get_weights())
    trainee.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mae")
    (h, w), s = small_size(model.name)[0], upscale(model)
    x, target = images(rng, 2, h, w), images(rng, 2, s * h, s * w)
    before = [w.copy() for w in trainee.get_weights()]
    history = trainee.fit(x, target, epochs=1, batch_size=2, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    changed = sum(not np.array_equal(a, b) for a, b in zip(before, trainee.get_weights()))
    assert changed >= len(before) // 2


def test_save_load_equal_outputs(model, rng, tmp_path):
    path = tmp_path / f"{model.name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path, custom_objects=custom_objects())
    x = images(rng, 2, *small_size(model.name)[1])
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())


def test_quantize_model_accepts_it(model, rng):
    qat = quantize_model(model)
    assert any("quant" in layer.__class__.__name__.lower() for layer in qat.layers)
    x = images(rng, 1, *small_size(model.name)[0])
    y = qat(x, training=False).numpy()
    s = upscale(model)
    assert y.shape == (1, s * x.shape[1], s * x.shape[2], 3) and np.isfinite(y).all()


def test_calibrated_qat_ranges_follow_the_data(model, rng, request):
    if model.name == "srresnet":  # a known defect, noted for planning: strict, so a fix shows
        request.node.add_marker(pytest.mark.xfail(strict=True, reason="srresnet's fake-quantized graph drifts from float "
                                                  "(MSE a fifth of the output's variance, a tenth without residual blocks)"))
    # tfmot starts activation ranges at [-6, 6]; calibration must replace them with the
    # data's (min and max over all batches), and then the fake-quantized model must track
    # the float one closely
    x = images(rng, 4, *small_size(model.name)[0])
    x[:2] *= 0.5  # a dim batch, then a bright one: the range must cover both
    model = _batch_norms_set_from(model, x)
    qat = quantize_model(model)
    start = activation_ranges(qat)
    assert calibrate_ranges(qat, [x[:2], x[2:]]) == 2
    calibrated = activation_ranges(qat)
    maxima = [name for name in start if name.endswith("_max:0") and np.all(start[name] == 6)]
    assert maxima and all(np.all(calibrated[n] != 6) for n in maxima)
    (input_max,) = [v for n, v in calibrated.items() if n.startswith("quantize_layer") and n.endswith("_max:0")]
    assert input_max == pytest.approx(x.max(), abs=1e-3)
    reference = model(x, training=False).numpy()
    quantized = qat(x, training=False).numpy()
    mse = float(np.mean((quantized - reference) ** 2))
    assert mse < 1e-3, f"fake-quantized output drifts from float: mse {mse}"
    # fine-tuning under frozen_ranges moves weights, not ranges
    qat.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mae")
    with frozen_ranges():
        qat.fit(x[:2] * 0.1, reference[:2], epochs=1, batch_size=2, verbose=0)
    after = activation_ranges(qat)
    assert all(np.array_equal(after[n], calibrated[n]) for n in calibrated)


def _batch_norms_set_from(model, x):
    """A copy of ``model`` whose batch norms hold the statistics of ``x``: a new model's (0
    and 1) compound over srresnet's 16 blocks into outputs no photo would give."""
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    if not norms:
        return model
    copy = keras.Model.from_config(model.get_config(), custom_objects=custom_objects())
    copy.set_weights(model.get_weights())
    for layer in copy.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0  # the moving statistics become this batch's
    copy(x, training=True)
    return copy


def test_median_qat_ranges_ignore_one_extreme_batch(rng):
    keras.utils.set_random_seed(0)
    model = build_model("srcnn")
    x = images(rng, 3, 16, 16) * np.array([0.2, 0.5, 1.0], np.float32)[:, None, None, None]  # dim, mid, bright

    def input_max(reduce):
        qat = quantize_model(model)
        assert calibrate_ranges(qat, [x[i : i + 1] for i in range(3)], reduce=reduce) == 3
        (value,) = [v for n, v in activation_ranges(qat).items() if n.startswith("quantize_layer") and n.endswith("_max:0")]
        return float(value)

    assert input_max("median") == pytest.approx(x[1].max(), abs=1e-3)
    assert input_max("minmax") == pytest.approx(x[2].max(), abs=1e-3)
    with pytest.raises(ValueError, match="median"):
        calibrate_ranges(quantize_model(model), [x], reduce="mean")


def test_qat_trains_with_the_noise_channels_off(rng):
    from mobile_enhance.export.exporter import _without_training_noise

    keras.utils.set_random_seed(0)
    model = build_model("muxdemux")
    quiet = _without_training_noise(model)
    x = images(rng, 2, 16, 16)
    assert not np.allclose(model(x, training=True).numpy(), model(x, training=False).numpy(), atol=1e-3)  # noise on
    np.testing.assert_allclose(quiet(x, training=True).numpy(), model(x, training=False).numpy(), atol=1e-5)
    assert _without_training_noise(build_model("srcnn")).name == "srcnn"


def _identity_model():
    inputs = keras.Input((None, None, 3))
    conv = keras.layers.Conv2D(3, 1, use_bias=False, name="same")
    model = keras.Model(inputs, conv(inputs))
    conv.set_weights([np.eye(3, dtype=np.float32)[None, None]])
    return model


@pytest.mark.parametrize("percentile", [100.0, 99.9])
def test_int8_input_and_output_keep_the_whole_image_range(rng, percentile):
    # calibration photos no brighter than 0.5 must not clip a brighter photo: the uint8
    # input and output are the pixel values themselves (scale 1/255, zero point 0)
    from mobile_enhance.export.tflite import make_interpreter

    calibration = images(rng, 4, 8, 8) * 0.5
    blob = convert(_identity_model(), "int8", input_size=(8, 8), representative=lambda: (c[None] for c in calibration),
                   percentile=percentile)
    interpreter = make_interpreter(model_content=blob)
    for details in interpreter.get_input_details() + interpreter.get_output_details():
        scale, zero = details["quantization"]
        assert scale == pytest.approx(1 / 255) and zero == 0
    x = images(rng, 1, 8, 8)
    np.testing.assert_allclose(run_tflite(blob, x), x, atol=1 / 255)


def test_qat_input_and_output_ranges_are_the_image_range(rng):
    from mobile_enhance.quantization import pin_image_ranges

    model = _identity_model()
    with quantize_scope():
        qat = quantize_model(model)
    calibrate_ranges(qat, [images(rng, 2, 8, 8) * 0.5])
    pin_image_ranges(qat)
    ranges = {name.split("/")[-1].split(":")[0]: float(v) for name, v in activation_ranges(qat).items()}
    assert [v for k, v in ranges.items() if k.endswith("_min")] == [0.0, 0.0]
    assert [v for k, v in ranges.items() if k.endswith("_max")] == [1.0, 1.0]
    with quantize_scope():
        blob = convert(qat, "int8", input_size=(8, 8), representative=lambda: (images(rng, 1, 8, 8) for _ in range(2)))
    x = images(rng, 1, 8, 8)
    np.testing.assert_allclose(run_tflite(blob, x), x, atol=1 / 255)


@pytest.mark.parametrize("name", ALL)
def test_wrong_size_names_the_multiple(name):
    m = MODELS[name].size_multiple
    if m == 1:
        check_input_size(name, 7, 13)  # any size
        return
    with pytest.raises(InputSizeError, match=f"multiples of {m}"):
        build_model(name, input_shape=(m * 3 + 1, m * 2, 3))


def test_unknown_model_lists_known_ones():
    with pytest.raises(UnknownNameError) as info:
        build_model("dpde")
    for name in MODELS:
        assert name in str(info.value)


def test_dped_discriminator():
    disc = dped_discriminator((100, 100, 1))
    assert disc.count_params() == 7_361_122
    p = disc(tf.random.uniform((3, 100, 100, 1))).numpy()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    # the same network on RGB: WESPE's colour discriminator (the reference's 7,372,738)
    assert dped_discriminator((100, 100, 3)).count_params() == 7_372_738


def test_noise_channels_train_both_regimes():
    # muxdemux meets zero noise at inference, so training must show it zero noise too
    from mobile_enhance.models.layers import NoiseChannels

    layer = NoiseChannels(channels=2, stddev=1.0, zero_fraction=0.5)
    x = tf.zeros((64, 8, 8, 3))
    tf.random.set_seed(0)
    noise = layer(x, training=True).numpy()[..., 3:]
    per_example = noise.reshape(64, -1).std(axis=1)
    silent = int((per_example == 0).sum())
    assert 16 <= silent <= 48  # about half the examples, drawn per example
    assert np.all(per_example[per_example > 0] > 0.5)
    assert not layer(x, training=False).numpy()[..., 3:].any()
    assert NoiseChannels.from_config(layer.get_config()).zero_fraction == 0.5


def _spread_channels(rng, n=4, size=32, channels=8):
    # a feature map whose channels differ 100x in spread, as the muxdemux norms meet them
    spread = np.geomspace(1.0, 0.01, channels).astype(np.float32)
    return (rng.normal(size=(n, size, size, channels)) * spread + rng.normal(size=(1, 1, 1, channels)) * spread).astype(np.float32)


def test_instance_norm_prescale_keeps_the_float_output(rng):
    from mobile_enhance.models.layers import InstanceNormalization

    x = _spread_channels(rng)
    plain = InstanceNormalization(epsilon=1e-3)
    scaled = InstanceNormalization(epsilon=1e-3, prescale=list(np.geomspace(1.0, 100.0, 8)))
    plain.build(x.shape)
    scaled.build(x.shape)
    np.testing.assert_allclose(scaled(x).numpy(), plain(x).numpy(), atol=2e-5)
    assert InstanceNormalization.from_config(scaled.get_config()).prescale == scaled.prescale
    with pytest.raises(ValueError, match="positive"):
        InstanceNormalization(prescale=[1.0, 0.0])
    with pytest.raises(ValueError, match="2 values for 8 channels"):
        InstanceNormalization(prescale=[1.0, 2.0])(x)


def test_equalized_instance_norms_survive_int8(rng):
    # A conv whose output channels differ 30x in spread (all well above the epsilon),
    # then an instance norm: in int8 the weak channels' squares round to zero and the
    # norm blows them up. Equalization
    # must keep the float function and bring the int8 file close to it.
    from mobile_enhance.models.layers import InstanceNormalization
    from mobile_enhance.quantization import equalize_instance_norms

    keras.utils.set_random_seed(3)
    inputs = keras.Input((None, None, 3))
    features = keras.layers.Conv2D(8, 3, padding="same", name="conv")(inputs)
    normed = InstanceNormalization(name="norm")(features)
    outputs = keras.layers.Conv2D(3, 1, activation="sigmoid", name="out")(keras.layers.ReLU()(normed))
    model = keras.Model(inputs, outputs)
    kernel, bias = model.get_layer("conv").get_weights()
    model.get_layer("conv").set_weights([kernel * np.geomspace(30.0, 1.0, 8), bias * 0])
    calibration = images(rng, 8, 32, 32)
    x = images(rng, 4, 32, 32)
    equalized, count = equalize_instance_norms(model, calibration, batch_size=3)
    assert count == 1 and equalized is not model
    np.testing.assert_allclose(equalized(x).numpy(), model(x).numpy(), atol=1e-5)
    # the conv feeds only the norm: the scale went into its weights, the norm undoes it
    norm = equalized.get_layer("norm")
    assert norm.prescale is None
    spread = np.median(keras.Model(model.input, features)(calibration).numpy().std(axis=(1, 2)), axis=0)
    np.testing.assert_allclose(np.asarray(norm.input_scale) * spread, 1.0, rtol=1e-4)
    now = np.median(keras.Model(equalized.input, equalized.get_layer("conv").output)(calibration).numpy().std(axis=(1, 2)), axis=0)
    np.testing.assert_allclose(now, 1.0, rtol=1e-3)

    def int8_psnr(m):
        out = run_tflite(convert(m, "int8", input_size=(32, 32), representative=lambda: (c[None] for c in calibration)), x)
        return -10 * np.log10(np.mean((out.astype(np.float32) - model(x).numpy()) ** 2))

    plain, better = int8_psnr(model), int8_psnr(equalized)
    assert better > 35 and better > plain + 6, (plain, better)


def test_instance_norm_input_scale_undoes_a_scaled_input(rng):
    from mobile_enhance.models.layers import InstanceNormalization

    x = rng.normal(size=(2, 8, 8, 3)).astype(np.float32) * np.array([1.0, 0.05, 3.0], np.float32)
    scale = np.array([0.1, 7.0, 2.0], np.float32)
    plain = InstanceNormalization(epsilon=1e-2)
    told = InstanceNormalization(epsilon=1e-2, input_scale=scale.tolist(), prescale=[2.0, 0.5, 1.0])
    np.testing.assert_allclose(told(x * scale).numpy(), plain(x).numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="input_scale must be positive"):
        InstanceNormalization(input_scale=[1.0, 0.0])


def _concat_model(add_big_to_output=False):
    from mobile_enhance.models.layers import InstanceNormalization

    inputs = keras.Input((None, None, 3))
    big = keras.layers.Conv2D(8, 3, padding="same", name="big")(inputs)
    big_relu = keras.layers.ReLU(name="big_relu")(big)
    small = keras.layers.Conv2D(8, 3, padding="same", name="small")(inputs)
    joined = keras.layers.Concatenate(name="join")([big_relu, small])
    normed = InstanceNormalization(name="norm")(joined)
    mixed = keras.layers.Conv2D(8, 1, name="mix")(joined)
    merged = keras.layers.Concatenate(name="merge")([keras.layers.ReLU()(normed), mixed])
    if add_big_to_output:
        merged = keras.layers.Add(name="add")([merged, keras.layers.Concatenate()([big, big, big])])
    outputs = keras.layers.Conv2D(3, 1, activation="sigmoid", name="out")(merged)
    model = keras.Model(inputs, outputs)
    kernel, bias = model.get_layer("big").get_weights()
    model.get_layer("big").set_weights([kernel * 40.0, bias])
    return model


def test_equalized_concatenations_survive_int8(rng):
    # One input of a concatenation 40x the other: in int8 the small one keeps a few steps.
    # Scaling the big one down where it is made (its consumers compensating: a conv's input
    # weights, a norm's input_scale) must keep the float function and help the int8 file.
    from mobile_enhance.quantization import equalize_concatenations

    keras.utils.set_random_seed(5)
    model = _concat_model()
    calibration, x = images(rng, 8, 32, 32), images(rng, 4, 32, 32)
    rescaled, count = equalize_concatenations(model, calibration, batch_size=3)
    assert count == 2 and rescaled is not model  # "big", and "mix" (made from it) in the second concatenation
    np.testing.assert_allclose(rescaled(x).numpy(), model(x).numpy(), atol=1e-5)
    assert np.abs(rescaled.get_layer("big").get_weights()[0]).max() < np.abs(model.get_layer("big").get_weights()[0]).max() / 4
    assert rescaled.get_layer("norm").input_scale is not None

    def int8_psnr(m):
        out = run_tflite(convert(m, "int8", input_size=(32, 32), representative=lambda: (c[None] for c in calibration)), x)
        return -10 * np.log10(np.mean((out.astype(np.float32) - model(x).numpy()) ** 2))

    plain, better = int8_psnr(model), int8_psnr(rescaled)
    assert better > plain + 3, (plain, better)


def test_equalize_concatenations_leaves_a_layer_feeding_an_add(rng):
    from mobile_enhance.quantization import equalize_concatenations

    keras.utils.set_random_seed(5)
    model = _concat_model(add_big_to_output=True)
    assert equalize_concatenations(model, images(rng, 4, 16, 16)) == (model, 0)


def test_equalize_concatenations_through_mux_and_demux(rng):
    # muxdemux: the decoder's upsampled path made 20x larger reaches its concatenation
    # through a Mux; trans1 also feeds the next level's Demux. The float output must hold.
    from mobile_enhance.quantization import equalize_concatenations

    keras.utils.set_random_seed(2)
    model = build_model("muxdemux")
    layer = model.get_layer("dec2_expand")
    layer.set_weights([w * 20.0 for w in layer.get_weights()])
    calibration, x = images(rng, 4, 32, 32), images(rng, 2, 32, 32)
    rescaled, count = equalize_concatenations(model, calibration)
    assert count >= 1
    assert np.abs(rescaled.get_layer("dec2_expand").get_weights()[0]).max() < np.abs(layer.get_weights()[0]).max()
    np.testing.assert_allclose(rescaled(x).numpy(), model(x).numpy(), atol=1e-4)


def test_equalize_keeps_a_prescale_where_the_conv_feeds_more_than_the_norm(rng):
    from mobile_enhance.models.layers import InstanceNormalization
    from mobile_enhance.quantization import equalize_instance_norms

    keras.utils.set_random_seed(4)
    inputs = keras.Input((None, None, 3))
    features = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    normed = InstanceNormalization(name="norm")(features)
    outputs = keras.layers.Add()([normed, features])
    model = keras.Model(inputs, outputs)
    kernel, bias = model.get_layer("conv").get_weights()
    model.get_layer("conv").set_weights([kernel * np.geomspace(10.0, 1.0, 4), bias])
    x = images(rng, 3, 16, 16)
    equalized, count = equalize_instance_norms(model, x)
    assert count == 1 and equalized.get_layer("norm").prescale is not None and equalized.get_layer("norm").input_scale is None
    np.testing.assert_allclose(equalized.get_layer("conv").get_weights()[0], model.get_layer("conv").get_weights()[0])
    np.testing.assert_allclose(equalized(x).numpy(), model(x).numpy(), atol=1e-5)


def test_typical_spreads_in_small_batches_are_the_same(rng, monkeypatch):
    # large frames are probed a few images at a time (bounded memory); the medians must not change
    from mobile_enhance.quantization import equalize

    model = build_model("dped")
    tensors = [layer.output for layer in model.layers if type(layer).__name__ == "InstanceNormalization"][:2]
    x = images(rng, 5, 16, 16)
    whole = equalize._typical_spreads(model, tensors, x, batch_size=8)
    monkeypatch.setattr(equalize, "SPREAD_PIXELS", 2 * 16 * 16)
    for a, b in zip(whole, equalize._typical_spreads(model, tensors, x, batch_size=8)):
        np.testing.assert_allclose(a, b, rtol=1e-5)


def test_equalize_leaves_models_without_norms_alone(rng):
    from mobile_enhance.quantization import equalize_instance_norms

    model = build_model("srcnn")
    assert equalize_instance_norms(model, images(rng, 2, 16, 16)) == (model, 0)


def test_percentile_ranges_ignore_a_rare_extreme(rng):
    # One calibration pixel 10x brighter than the rest sets the min/max range of every
    # activation after it; the 99.9% range ignores it, and the int8 file is then closer
    # to the float model on ordinary images.
    from ai_edge_litert import schema_py_generated as schema

    keras.utils.set_random_seed(5)
    inputs = keras.Input((None, None, 3))
    hidden = keras.layers.Conv2D(8, 1, activation="relu", name="hidden")(inputs)
    model = keras.Model(inputs, keras.layers.Conv2D(3, 1, name="out")(hidden))
    calibration = [rng.random((1, 32, 32, 3), dtype=np.float32) * 0.1 for _ in range(8)]
    calibration[3][0, 5, 5] = 1.0
    x = rng.random((4, 32, 32, 3), dtype=np.float32) * 0.1

    def file(percentile):
        return convert(model, "int8", input_size=(32, 32), representative=lambda: iter(calibration), io_dtype="float32",
                       percentile=percentile)

    def hidden_max(blob):
        graph = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(blob, 0)).subgraphs[0]
        (q,) = [t.quantization for t in graph.tensors if b"hidden" in t.name and t.quantization.scale is not None
                and len(t.quantization.scale) == 1 and t.type == schema.TensorType.INT8]
        return (127 - q.zeroPoint[0]) * q.scale[0]

    reference = model(x).numpy()

    def psnr(blob):
        return -10 * np.log10(np.mean((run_tflite(blob, x) - reference) ** 2))

    minmax, clipped = file(100.0), file(99.9)
    assert hidden_max(clipped) < 0.5 * hidden_max(minmax)
    assert psnr(clipped) > psnr(minmax) + 2  # measured: +3.2 dB (the input keeps its [0, 1] range)
    with pytest.raises(Exception, match="percentile must be in"):
        file(0.0)


def test_percentile_ranges_read_in_groups_equal_one_pass(rng):
    # The activations are read as graph outputs a group at a time (bounded memory at large
    # frames): groups of one tensor each must give the very ranges of a single pass.
    from mobile_enhance.export.tflite import _tensor_groups, _unpack, calibrated_int8, percentile_ranges

    keras.utils.set_random_seed(3)
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    model = keras.Model(inputs, keras.layers.Conv2D(3, 1)(x))
    calibration = [rng.random((1, 24, 24, 3), dtype=np.float32) for _ in range(3)]
    calibrated = calibrated_int8(model, (24, 24), lambda: iter(calibration))
    graph = _unpack(calibrated).subgraphs[0]
    internal = [i for i in range(len(graph.tensors)) if i not in set(graph.inputs) | set(graph.outputs)]
    assert [len(g) for g in _tensor_groups(graph, internal, 1)] == [1] * len(internal)
    assert len(_tensor_groups(graph, internal, 1 << 30)) == 1
    whole = percentile_ranges(calibrated, lambda: iter(calibration), 99.0)
    grouped = percentile_ranges(calibrated, lambda: iter(calibration), 99.0, budget=1)
    ranges = [[(t.quantization.min, t.quantization.max) if t.quantization is not None else None for t in _unpack(b).subgraphs[0].tensors]
              for b in (whole, grouped, calibrated)]
    assert ranges[0] == ranges[1] and ranges[0] != ranges[2]


def test_tune_ranges_repairs_a_range_calibration_got_wrong(rng):
    # A hidden activation's calibrated range widened 8x (as one outlier image would) costs
    # the int8 file most of its precision there; tuning on the calibration images, with
    # the float model's output as the only reference, must narrow it back and say so.
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    from mobile_enhance.export.tflite import calibrated_int8, quantize_calibrated, tune_ranges

    keras.utils.set_random_seed(5)
    inputs = keras.Input((None, None, 3))
    hidden = keras.layers.Conv2D(8, 1, activation="relu", name="hidden")(inputs)
    model = keras.Model(inputs, keras.layers.Conv2D(3, 1, name="out")(hidden))
    calibration = [rng.random((1, 32, 32, 3), dtype=np.float32) for _ in range(4)]
    x = np.concatenate(calibration)
    reference = model.predict(x, verbose=0)

    def hidden_range(blob):
        graph = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(blob, 0)).subgraphs[0]
        (t,) = [t for t in graph.tensors if b"hidden" in t.name and t.quantization is not None and t.quantization.min is not None]
        return float(t.quantization.min[0]), float(t.quantization.max[0])

    calibrated = calibrated_int8(model, (32, 32), lambda: iter(calibration))
    low, high = hidden_range(calibrated)
    model_t = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(calibrated, 0))
    for t in model_t.subgraphs[0].tensors:
        if b"hidden" in t.name and t.quantization is not None and t.quantization.min is not None:
            t.quantization.max = [high * 8]
    builder = flatbuffers.Builder(len(calibrated) + 1024)
    builder.Finish(model_t.Pack(builder), file_identifier=b"TFL3")
    widened = bytes(builder.Output())

    def psnr(calibrated_file):
        out = run_tflite(quantize_calibrated(calibrated_file, "float32"), x)
        return float(np.mean(10 * np.log10(1 / np.mean((np.clip(out, 0, 1) - reference) ** 2, axis=(1, 2, 3)))))

    tuned, report = tune_ranges(widened, x, reference, "float32", sweeps=12)
    assert hidden_range(tuned)[1] < 0.5 * high * 8 and hidden_range(tuned)[0] <= 0
    assert report["psnr_vs_float_after"] == pytest.approx(psnr(tuned), abs=1e-3)
    assert report["psnr_vs_float_before"] == pytest.approx(psnr(widened), abs=1e-3)
    assert report["psnr_vs_float_after"] > report["psnr_vs_float_before"] + 3
    assert report["ranges_changed"] >= 1 and report["images"] == 4 and report["trials"] > report["ranges"]
    # nothing to gain: a second tuning from the tuned file keeps it and stops after one pass
    again, second = tune_ranges(tuned, x, reference, "float32", sweeps=3)
    assert second["sweeps"] == 1 and second["ranges_changed"] == 0 and again == tuned
    with pytest.raises(ValueError, match="reference outputs"):
        tune_ranges(tuned, x, reference[:2], "float32")


def test_matmul_variance_is_the_same_norm(rng):
    # The int8 form of the variance: per-channel dot products (summed in int32) instead of
    # the MEAN of int8 squares; the float function is unchanged and the int8 file has it.
    from mobile_enhance.export.analysis import operator_names
    from mobile_enhance.models.layers import InstanceNormalization, matmul_variance
    from mobile_enhance.quantization import integer_means

    x = rng.normal(size=(2, 12, 20, 5)).astype(np.float32)
    centered = x - x.mean(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(matmul_variance(tf.constant(centered)).numpy(), (centered**2).mean(axis=(1, 2), keepdims=True), rtol=1e-5)
    inputs = keras.Input((None, None, 5))
    model = keras.Model(inputs, InstanceNormalization(name="norm")(keras.layers.Conv2D(5, 3, name="c")(inputs)))
    integer = integer_means(model)
    assert integer.get_layer("norm").get_config()["variance_matmul"] and not model.get_layer("norm").variance_matmul
    np.testing.assert_allclose(integer.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
    calibration = [rng.normal(size=(1, 12, 20, 5)).astype(np.float32) for _ in range(4)]
    blob = convert(model, "int8", input_size=(12, 20), representative=lambda: iter(calibration), io_dtype="float32")
    assert "BATCH_MATMUL" in operator_names(blob)
    out, ref = run_tflite(blob, x), model.predict(x, verbose=0)
    assert np.sqrt(np.mean((out - ref) ** 2)) < 0.05 * ref.std()


def test_matmul_variance_in_pieces_is_the_same_mean(rng):
    # pieces of at most 7 pixels: 40 of 6 over 12x20 (a divisor), 21 of 7 over 11x13 (143
    # pixels, the last piece padded), and at an unknown frame size (35 of 7, padded)
    from mobile_enhance.models.layers import _variance_pieces, matmul_variance

    assert (_variance_pieces(240, 7), _variance_pieces(143, 7), _variance_pieces(720 * 1280, 2**15)) == (40, 21, 30)
    for h, w in ((12, 20), (11, 13)):
        x = rng.normal(size=(2, h, w, 5)).astype(np.float32)
        centered = x - x.mean(axis=(1, 2), keepdims=True)
        expected = (centered**2).mean(axis=(1, 2), keepdims=True)
        np.testing.assert_allclose(matmul_variance(tf.constant(centered), chunk=7).numpy(), expected, rtol=1e-5)
        np.testing.assert_allclose(matmul_variance(tf.constant(centered), chunk=h * w).numpy(), expected, rtol=1e-5)
    dynamic = tf.function(lambda t: matmul_variance(t, chunk=7), input_signature=[tf.TensorSpec((None, None, None, 5))])
    np.testing.assert_allclose(dynamic(tf.constant(centered)).numpy(), expected, rtol=1e-5)
    x = rng.normal(size=(2, 12, 20, 5)).astype(np.float32)
    centered = x - x.mean(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(dynamic(tf.constant(centered)).numpy(), (centered**2).mean(axis=(1, 2), keepdims=True), rtol=1e-5)


def test_int8_variance_does_not_overflow_int32_on_a_large_frame():
    # A 512x512 frame of deviations of 127 and 64 steps: one dot product per channel
    # would add 262144 * (127**2 + 64**2) / 2 = 2.6e9 > 2**31 in int32 and wrap; 8 pieces
    # of 2**15 pixels do not.
    from mobile_enhance.models.layers import InstanceNormalization

    h = w = 512
    inputs = keras.Input((h, w, 2))
    model = keras.Model(inputs, InstanceNormalization(name="norm")(inputs))
    rows, cols = np.indices((h, w))
    signs = ((rows + cols) % 2) * 2 - 1
    magnitudes = np.where((rows // 2 + cols // 2) % 2 == 0, 1.0, 0.5)
    x = np.stack([signs * magnitudes, -signs * magnitudes], axis=-1)[None].astype(np.float32)
    # calibrated on fainter copies too, so that a wrapped (negative, clamped to zero)
    # variance does not land on the calibrated end of 1/std by chance
    calibration = [x * np.float32(f) for f in (1, 0.5, 0.25)]
    blob = convert(model, "int8", input_size=(h, w), representative=lambda: iter(calibration), io_dtype="float32")
    out, ref = run_tflite(blob, x), model.predict(x, verbose=0)
    np.testing.assert_allclose(np.unique(np.abs(ref).round(3)), [0.632, 1.265], atol=1e-3)  # 0.5 and 1 over rms 0.79
    np.testing.assert_allclose(out, ref, atol=0.05)


@pytest.mark.parametrize("name, last, default", [("muxdemux", "dec1_expand", True), ("fast_dped", "c12", False)])
def test_global_skip_adds_a_correction_to_the_input(rng, name, last, default):
    keras.utils.set_random_seed(0)
    model = build_model(name, global_skip=True)
    x = images(rng, 2, 16, 16)
    # a new model starts near the identity: its last convolution starts small
    assert np.abs(model(x).numpy() - x).mean() < 0.1
    last = model.get_layer(last)
    last.set_weights([np.zeros_like(w) for w in last.get_weights()])
    np.testing.assert_allclose(model(x).numpy(), x, atol=1e-6)
    # a correction past the range is clipped to [0, 1]
    kernel, bias = last.get_weights()
    last.set_weights([kernel, bias + 2.0])
    np.testing.assert_allclose(model(x).numpy(), 1.0)
    # the graph without it (scaled tanh: fast_dped's released graph, muxdemux's first
    # runs) stays buildable, with the same parameters
    plain = build_model(name, global_skip=False)
    assert plain.count_params() == model.count_params()
    assert type(plain.get_layer("enhanced")).__name__ == "ScaledTanh"
    assert "skip_add" not in [layer.name for layer in plain.layers]
    assert ("skip_add" in [layer.name for layer in build_model(name).layers]) == default
