"""EnhanceNet: the in-graph legacy bicubic against TensorFlow's, builtin-only TFLite files,
the pinned parameter counts, the recipes and their VGG/Gram terms, and
``import --format=enhancenet_tf`` from a checkpoint written here in the authors' layout
(TF1 Saver, their variable names, random values) against their graph in plain TF ops."""

import json

import numpy as np
import pytest

from mobile_enhance import api
from mobile_enhance.cli import main as cli
from mobile_enhance.compat import keras, tf
from mobile_enhance.errors import UserError
from mobile_enhance.export import convert, run_tflite
from mobile_enhance.export.analysis import operator_names
from mobile_enhance.importers.enhancenet_tf import SHAPES
from mobile_enhance.losses import LOSS_TYPES, T, parse_losses
from mobile_enhance.losses import functions as F
from mobile_enhance.models import build_model, custom_objects, get_card
from mobile_enhance.models.enhancenet import PER_CHANNEL_MEANS, enhancenet_discriminator
from mobile_enhance.data.images import bicubic_upscale
from mobile_enhance.models.layers import CentredBicubicUpsample, LegacyBicubicUpsample, centred_bicubic_taps, legacy_bicubic_taps


def legacy_bicubic(x, scale=4):
    h, w = x.shape[1:3]
    return tf.compat.v1.image.resize_bicubic(x, [scale * h, scale * w], align_corners=False, half_pixel_centers=False).numpy()


# -- the bicubic layer ---------------------------------------------------------------------


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_layer_equals_tensorflows_legacy_bicubic(scale, rng):
    layer = LegacyBicubicUpsample(scale)
    for h, w in [(1, 1), (1, 9), (6, 1), (5, 7), (16, 12)]:
        x = rng.random((2, h, w, 3), dtype=np.float32)
        out = layer(x).numpy()
        assert out.shape == (2, scale * h, scale * w, 3)
        np.testing.assert_allclose(out, legacy_bicubic(x, scale), atol=1e-5, rtol=0)
    # values outside [0, 1] (the authors' mean-subtracted input) and another channel count
    x = rng.normal(0, 2, (1, 5, 6, 2)).astype(np.float32)
    np.testing.assert_allclose(layer(x).numpy(), legacy_bicubic(x, scale), atol=1e-5, rtol=0)


def test_bicubic_taps_are_the_x4_table_of_the_sheet():
    taps = legacy_bicubic_taps(4)
    np.testing.assert_allclose(taps[0], [0, 1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(taps[1], [-0.10546875, 0.87890625, 0.26171875, -0.03515625], atol=1e-12)
    np.testing.assert_allclose(taps[2], [-0.09375, 0.59375, 0.59375, -0.09375], atol=1e-12)
    np.testing.assert_allclose(taps[3], taps[1][::-1], atol=1e-12)
    np.testing.assert_allclose(taps.sum(axis=1), 1.0, atol=1e-12)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_centred_bicubic_equals_tensorflows_resize_inside_the_border(scale, rng):
    layer = CentredBicubicUpsample(scale)
    x = rng.normal(0.5, 0.3, (2, 9, 11, 3)).astype(np.float32)
    out = layer(x).numpy()
    assert out.shape == (2, scale * 9, scale * 11, 3)
    want = tf.image.resize(x, [scale * 9, scale * 11], method="bicubic").numpy()
    b = 2 * scale  # the outermost pixels: edge replication, where TF renormalises
    # TF looks the cubic up in a table of 1024 steps per pixel, exact for the phases of x2
    # and x4 (eighths), not for x3's thirds; the layer computes the cubic exactly
    atol = 1e-5 if scale in (2, 4) else 2e-3
    np.testing.assert_allclose(out[:, b:-b, b:-b], want[:, b:-b, b:-b], atol=atol, rtol=0)
    assert np.abs(out - want).max() > 1e-2  # and the border differs, as documented
    np.testing.assert_allclose(centred_bicubic_taps(scale).sum(axis=1), 1.0, atol=1e-12)
    one = CentredBicubicUpsample(scale)(np.full((1, 1, 1, 3), 0.25, np.float32)).numpy()
    np.testing.assert_allclose(one, 0.25, atol=1e-6)  # a 1-pixel input: constant


def test_centred_bicubic_is_the_sr_sources_baseline_on_a_photo(rng):
    # bicubic_upscale is PIL's, as an sr: source makes its baseline: on an 8-bit smooth
    # image the layer is within PIL's own rounding to 8 bits of it away from the border
    # (PIL's fixed-point taps add a little: TF's resize is as far from PIL as the layer)
    yy, xx = np.mgrid[0:24, 0:32] / 8.0
    image = np.stack([0.5 + 0.3 * np.sin(xx + c) * np.cos(yy - c) for c in range(3)], -1)
    image = (np.round(image * 255) / 255).astype(np.float32)
    out = CentredBicubicUpsample(4)(image[None]).numpy()[0]
    want = bicubic_upscale(image, 4)
    inside = np.abs(out - want)[8:-8, 8:-8]
    assert inside.max() < 1.1 / 255 and inside.mean() < 0.4 / 255


def _builtin_only(blob):
    names = operator_names(blob)
    assert not [n for n in names if n.startswith("CUSTOM") or "FLEX" in n.upper()], names
    return set(names)


@pytest.mark.parametrize("layer", [LegacyBicubicUpsample, CentredBicubicUpsample])
def test_bicubic_converts_to_builtin_ops_float32_and_int8(layer, rng):
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, layer(4)(inputs))
    x = rng.random((1, 6, 10, 3), dtype=np.float32)
    blob = convert(model, "float32", input_size=(6, 10))
    assert _builtin_only(blob) <= {"CONV_2D", "DEPTH_TO_SPACE", "STRIDED_SLICE", "CONCATENATION"}
    reference = model(x).numpy()
    if layer is LegacyBicubicUpsample:
        np.testing.assert_allclose(reference, legacy_bicubic(x), atol=1e-5, rtol=0)
    np.testing.assert_allclose(run_tflite(blob, x), reference, atol=1e-5, rtol=0)
    calibration = [x] + [rng.random((1, 6, 10, 3), dtype=np.float32) for _ in range(3)]
    blob = convert(model, "int8", input_size=(6, 10), representative=lambda: iter(calibration))
    ops = _builtin_only(blob)
    assert {"CONV_2D", "DEPTH_TO_SPACE"} <= ops <= {"CONV_2D", "DEPTH_TO_SPACE", "STRIDED_SLICE", "CONCATENATION", "QUANTIZE", "DEQUANTIZE"}
    # uint8 in and out (the output's range is the calibrated one, bicubic's overshoot
    # included): within a few steps of the exact bicubic
    assert np.abs(run_tflite(blob, x) - reference).max() < 3 / 255


# -- the generator and its card --------------------------------------------------------------


@pytest.fixture(scope="module")
def generator():
    keras.utils.set_random_seed(3)
    return build_model("enhancenet")


def test_parameter_counts_are_the_released_ones(generator):
    assert generator.count_params() == 852_867  # the released checkpoint's 50 tensors
    assert len(generator.weights) == len(SHAPES) == 50
    assert enhancenet_discriminator((128, 128, 3)).count_params() == 13_102_881
    centred = build_model("enhancenet", bicubic="centred")
    assert centred.count_params() == 852_867  # the upsampler has no weights either way
    assert isinstance(centred.get_layer("bicubic"), CentredBicubicUpsample)
    with pytest.raises(ValueError, match="bicubic must be one of"):
        build_model("enhancenet", bicubic="lanczos")


def test_generator_shapes_range_config_and_files(generator, rng):
    x = rng.random((2, 7, 9, 3), dtype=np.float32)
    y = generator(x).numpy()
    assert y.shape == (2, 28, 36, 3) and 0 <= y.min() and y.max() <= 1
    clone = keras.Model.from_config(generator.get_config(), custom_objects=custom_objects())
    assert clone.get_config() == generator.get_config()
    clone.set_weights(generator.get_weights())
    np.testing.assert_allclose(clone(x).numpy(), y, atol=1e-6)
    x1 = x[:1, :6, :6]
    blob = convert(generator, "float32", input_size=(6, 6))
    assert "RESIZE_BICUBIC" not in _builtin_only(blob)
    np.testing.assert_allclose(run_tflite(blob, x1), generator(x1).numpy(), atol=1e-4, rtol=0)
    blob = convert(generator, "int8", input_size=(6, 6), representative=lambda: (rng.random((1, 6, 6, 3), dtype=np.float32) for _ in range(2)))
    ops = _builtin_only(blob)  # the nearest upsamplings folded into their convolutions (export.rewrite)
    assert {"CONV_2D", "DEPTH_TO_SPACE", "ADD"} <= ops and "RESIZE_NEAREST_NEIGHBOR" not in ops
    assert run_tflite(blob, x1).shape == (1, 24, 24, 3)


def test_card_recipes_and_preset():
    card = get_card("enhancenet")
    assert card.upscale == 4 and card.trains_on == ("sr",) and card.size_multiple == 1
    assert set(card.recipes) == {"E", "P", "EA", "EAT", "PAT"} and card.recipe("paper") == card.recipes["PAT"]
    p = card.preset
    assert (p.batch_size, p.patch_size, p.learning_rate) == (16, 128, 1e-4)
    weights = {(t.type, tuple(t.kwargs.get("layers", ()))): t.weight for t in card.losses}
    assert weights == {("content", ("pool2",)): 0.2, ("content", ("pool5",)): 0.02, ("gan", ()): 2.0,
                       ("gram", ("relu1_1",)): 3e-7, ("gram", ("relu2_1",)): 1e-6, ("gram", ("relu3_1",)): 1e-6}
    assert all(t.kwargs["patch"] == 16 and t.kwargs["mean_one"] for t in card.losses if t.type == "gram")
    no_vgg = [name for name, terms in card.recipes.items() if not any(LOSS_TYPES[t.type].uses_vgg for t in terms)]
    assert no_vgg == ["E", "EA"]
    assert [t.type for t in parse_losses("EA", card)] == ["l2", "gan"] and parse_losses("EA", card)[1].disc == "image"
    assert card.discriminators[0].gan_loss == "bce" and card.discriminators[0].sees == "rgb"


def test_short_run_with_the_recipe_without_vgg(tmp_path):
    from dped_tree import make_photo_folder

    from mobile_enhance.training import resolve, train

    photos = make_photo_folder(tmp_path / "photos", count=4, size=(64, 80), seed=1)
    config = resolve("enhancenet", {"data.spec": f"sr:{photos}", "data.patch_size": 32, "data.batch_size": 2, "steps": 2,
                                    "eval_every": 2, "checkpoint_every": 2, "summary_every": 1, "losses": "EA"})
    result = train(config, tmp_path / "run", progress=False)
    assert result["step"] == 2 and set(result["losses"]) >= {"l2", "gan_image"}
    assert all(np.isfinite(v) for v in result["losses"].values())


# -- losses: VGG pools, patch Gram, mean of one ----------------------------------------------


def test_vgg_pools_are_keras_block_pools(vgg_h5, rng):
    from mobile_enhance.losses.vgg import VGGFeatures

    path, reference = vgg_h5
    features = VGGFeatures(("pool2", "relu1_1", "pool5"), weights=str(path), allow_download=False)
    x = rng.random((1, 64, 64, 3), dtype=np.float32)
    ours = features(x)
    caffe = keras.applications.vgg19.preprocess_input(x * 255.0)
    for name, keras_name in (("pool2", "block2_pool"), ("pool5", "block5_pool"), ("relu1_1", "block1_conv1")):
        expected = keras.Model(reference.input, reference.get_layer(keras_name).output)(caffe).numpy()
        assert ours[name].shape == expected.shape
        np.testing.assert_allclose(ours[name].numpy(), expected, rtol=1e-4, atol=1e-4)
    assert ours["pool5"].shape == (1, 2, 2, 512)


def _numpy_patch_gram_loss(a, b, p, mean_one):
    if mean_one:
        scale = b.mean(axis=(1, 2, 3), keepdims=True)
        a, b = a / scale, b / scale
    n, h, w, c = a.shape
    ph, pw = min(p, h), min(p, w)
    out = np.zeros(n)
    for i in range(n):
        diffs = []
        for r in range(h // ph):
            for s in range(w // pw):
                fa = a[i, r * ph:(r + 1) * ph, s * pw:(s + 1) * pw].reshape(-1, c).astype(np.float64)
                fb = b[i, r * ph:(r + 1) * ph, s * pw:(s + 1) * pw].reshape(-1, c).astype(np.float64)
                diffs.append((fa.T @ fa - fb.T @ fb) ** 2)
        out[i] = np.mean(diffs)
    return out


def test_patch_gram_and_mean_one(rng):
    a = rng.random((2, 20, 36, 4), dtype=np.float32)
    b = rng.random((2, 20, 36, 4), dtype=np.float32) * 3
    fa, fb = {"relu1_1": tf.constant(a)}, {"relu1_1": tf.constant(b)}
    for patch, mean_one in [(8, False), (8, True), (16, True), (64, False)]:  # 64 > the map: one tile of the whole map
        got = F.gram_texture(fa, fb, layers=("relu1_1",), patch=patch, mean_one=mean_one).numpy()
        np.testing.assert_allclose(got, _numpy_patch_gram_loss(a, b, patch, mean_one), rtol=1e-4)
    # patch=None keeps the whole-image Gram normalised by H*W*C
    g = lambda f: np.einsum("nhwc,nhwd->ncd", f, f) / (20 * 36 * 4)  # noqa: E731
    np.testing.assert_allclose(F.gram_texture(fa, fb, layers=("relu1_1",)).numpy(), ((g(a) - g(b)) ** 2).mean(axis=(1, 2)), rtol=1e-4)
    # mean of one: the target's mean, for both: a common scale drops out, the estimate's own does not
    pa, pb = {"pool2": tf.constant(a)}, {"pool2": tf.constant(b)}
    scaled_a, scaled_b = {"pool2": tf.constant(5 * a)}, {"pool2": tf.constant(5 * b)}
    one = F.content(pa, pb, layers=("pool2",), mean_one=True).numpy()
    np.testing.assert_allclose(F.content(scaled_a, scaled_b, layers=("pool2",), mean_one=True).numpy(), one, rtol=1e-5)
    expected = (((a - b) / b.mean(axis=(1, 2, 3), keepdims=True)) ** 2).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(one, expected, rtol=1e-5)
    np.testing.assert_allclose(F.content(pa, pb, layers=("pool2",)).numpy(), ((a - b) ** 2).mean(axis=(1, 2, 3)), rtol=1e-5)
    assert (F.content({"pool2": tf.constant(2 * b)}, pb, layers=("pool2",), mean_one=True).numpy() > 0.5).all()
    # the divisor is the target's: the estimate's gradient is that of a plain scaled MSE
    x = tf.Variable(a)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(F.content({"pool2": x}, pb, layers=("pool2",), mean_one=True))
    scale = b.mean(axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(tape.gradient(loss, x).numpy(), 2 * (a - b) / scale**2 / a[0].size, rtol=1e-4, atol=1e-9)


def test_bad_vgg_terms_are_refused():
    with pytest.raises(UserError, match="VGG-19 layers must be a non-empty list of relu1_1, relu1_2, pool1"):
        T("content", 1, layers=("pool6",))
    with pytest.raises(UserError, match="VGG-19 layers"):
        T("gram", 1, layers="relu1_1")
    with pytest.raises(UserError, match="patch must be a positive whole number"):
        T("gram", 1, layers=("relu1_1",), patch=0)
    with pytest.raises(UserError, match="unknown argument"):
        T("content", 1, patch=16)
    assert T("content", 1, layers=("pool2",)).kwargs == {"layers": ["pool2"]}  # as config.json gives it back


# -- import --format=enhancenet_tf -------------------------------------------------------------


def write_tf1_checkpoint(path, values: dict, v1: bool = True):
    """``values`` under their names with the TF1 Saver: a single-file V1 checkpoint, as the
    authors' ``weights`` is (or a V2 prefix)."""
    graph = tf.Graph()
    with graph.as_default():
        variables = {name: tf.compat.v1.Variable(value, name=name.replace("/", "_")) for name, value in values.items()}
        version = tf.compat.v1.train.SaverDef.V1 if v1 else tf.compat.v1.train.SaverDef.V2
        saver = tf.compat.v1.train.Saver(var_list=variables, write_version=version)
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saver.save(session, str(path), write_meta_graph=False)
    return str(path)


def authors_values(seed=0):
    rng = np.random.default_rng(seed)
    return {name: rng.normal(0, 0.05 if name.endswith("weights") else 0.01, shape).astype(np.float32) for name, shape in SHAPES.items()}


def authors_graph(values, image):
    """EnhanceNet's generator as the released enhancenet.py / nnlib.py compute it, in plain TF ops:
    the mean-subtracted input, convs named Conv .. Conv_24, legacy nearest x2 and bicubic x4."""
    means = np.array(PER_CHANNEL_MEANS, np.float32)
    x = image - means

    def conv(h, k):
        scope = "generator/Conv" + (f"_{k}" if k else "")
        return tf.nn.conv2d(h, values[scope + "/weights"], 1, "SAME") + values[scope + "/biases"]

    def nearest2(h):
        return tf.compat.v1.image.resize_nearest_neighbor(h, [2 * h.shape[1], 2 * h.shape[2]], align_corners=False,
                                                          half_pixel_centers=False)

    h = tf.nn.relu(conv(x, 0))
    for b in range(10):
        h = h + conv(tf.nn.relu(conv(h, 1 + 2 * b)), 2 + 2 * b)
    h = tf.nn.relu(conv(nearest2(h), 21))
    h = tf.nn.relu(conv(nearest2(h), 22))
    h = tf.nn.relu(conv(h, 23))
    residual = conv(h, 24)
    return (residual + legacy_bicubic(x) + means).numpy()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    values = authors_values()
    return write_tf1_checkpoint(tmp_path_factory.mktemp("published") / "weights", values), values


def test_an_imported_checkpoint_computes_the_authors_graph(checkpoint, tmp_path):
    path, values = checkpoint
    api.import_weights("enhancenet_tf", path, tmp_path / "run")
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["model"] == "enhancenet" and config["model_kwargs"] == {"clip": False, "bicubic": "legacy"}
    imported = config["imported"]
    assert imported["format"] == "enhancenet_tf" and imported["files"] == [path] and len(imported["sha256"]) == 64
    from mobile_enhance.training import load_generator

    model, _ = load_generator(tmp_path / "run")
    image = np.random.default_rng(1).random((2, 12, 10, 3), dtype=np.float32)
    expected = authors_graph(values, image)
    assert expected.shape == (2, 48, 40, 3)
    np.testing.assert_allclose(model(image).numpy(), expected, atol=1e-4, rtol=0)
    (r,) = api.export(tmp_path / "e.tflite", run_dir=tmp_path / "run", size="12x10")
    assert _builtin_only(r.path.read_bytes())
    np.testing.assert_allclose(run_tflite(str(r.path), image[:1]), expected[:1], atol=1e-4, rtol=0)
    # a V2 prefix with the same variables reads the same
    v2 = write_tf1_checkpoint(tmp_path / "v2" / "enet", values, v1=False)
    api.import_weights("enhancenet_tf", v2, tmp_path / "run2")
    model2, _ = load_generator(tmp_path / "run2")
    for a, b in zip(model.get_weights(), model2.get_weights()):
        np.testing.assert_array_equal(a, b)


def broken_sources(tmp_path, values):
    wrong = dict(values, **{"generator/Conv_24/weights": np.zeros((3, 3, 64, 4), np.float32)})
    missing = {k: v for k, v in values.items() if k != "generator/Conv_23/biases"}
    other = {"generator/W1": np.zeros((9, 9, 3, 64), np.float32)}
    yield write_tf1_checkpoint(tmp_path / "wrong", wrong), \
        "variable generator/Conv_24/weights has shape [3, 3, 64, 4], EnhanceNet's generator has [3, 3, 64, 3]"
    yield write_tf1_checkpoint(tmp_path / "missing", missing), "variable generator/Conv_23/biases is missing"
    yield write_tf1_checkpoint(tmp_path / "other", other), \
        "variable generator/Conv/weights is missing (50 of EnhanceNet's 50 generator variables absent, 1 generator"
    yield str(tmp_path / "nowhere"), "no such file"
    (tmp_path / "folder").mkdir()
    yield str(tmp_path / "folder"), "a folder; pass the checkpoint file itself"
    (tmp_path / "junk").write_bytes(b"not a checkpoint at all" * 4)
    yield str(tmp_path / "junk"), "not a TF checkpoint"
    good = write_tf1_checkpoint(tmp_path / "cut", values)
    data = (tmp_path / "cut").read_bytes()
    (tmp_path / "cut").write_bytes(data[: len(data) // 2])
    yield good, "not a TF checkpoint"


def test_broken_sources_are_refused_naming_file_and_variable(checkpoint, tmp_path, capsys):
    _, values = checkpoint
    for i, (source, message) in enumerate(broken_sources(tmp_path, values)):
        run_dir = tmp_path / f"run{i}"
        with pytest.raises(UserError) as info:
            api.import_weights("enhancenet_tf", source, run_dir)
        assert message in str(info.value) and str(info.value).startswith(source), info.value
        assert not run_dir.exists()
        assert cli(["mobile-enhance", "import", "--format=enhancenet_tf", f"--checkpoint={source}", f"--run_dir={run_dir}"]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert not run_dir.exists()
