"""NonBN-ResG: the generator at any size, its pinned parameters, its discriminator and card,
a short training run on ``blur:`` data without VGG, and an int8 export."""

import json

import numpy as np
import pytest
from dped_tree import make_photo_folder

from mobile_enhance.compat import keras, tf
from mobile_enhance.data import make_source
from mobile_enhance.errors import UserError
from mobile_enhance.export import export_model, run_tflite
from mobile_enhance.export.analysis import operator_names
from mobile_enhance.losses import LOSS_TYPES
from mobile_enhance.models import build_model, custom_objects, get_card
from mobile_enhance.models.nonbn_resg import nonbn_resg_discriminator, nonbn_resg_generator
from mobile_enhance.training import resolve, train

# 9x9 conv 3->64 + PReLU(64); 5 blocks of two 3x3 convs 64->64 and a PReLU(64); the 3x3
# mid conv; the 9x9 conv 64->3.
HEAD = 9 * 9 * 3 * 64 + 64 + 64
BLOCK = 2 * (3 * 3 * 64 * 64 + 64) + 64
GENERATOR_PARAMS = HEAD + 5 * BLOCK + (3 * 3 * 64 * 64 + 64) + (9 * 9 * 64 * 3 + 3)

# 8 conv -> LeakyReLU -> instance norm (2 per channel), dense 1024 on the last map, dense 1.
CONVS = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 512), (512, 512)]
DISC_BODY = sum(3 * 3 * cin * cout + cout + 2 * cout for cin, cout in CONVS)


def disc_params(side):
    last = -(-side // 16)  # four stride-2 convs, SAME padding
    return DISC_BODY + (last * last * 512 * 1024 + 1024) + (1024 + 1)


@pytest.fixture(scope="module")
def generator():
    keras.utils.set_random_seed(0)
    return build_model("nonbn_resg")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return make_photo_folder(tmp_path_factory.mktemp("photos"), count=6, size=(64, 80), seed=3)


def test_parameter_counts_are_pinned(generator):
    assert GENERATOR_PARAMS == 437_763
    assert generator.count_params() == 437_763
    assert nonbn_resg_generator(global_skip=False).count_params() == 437_763
    assert (disc_params(96), disc_params(32)) == (23_565_633, 6_788_417)
    assert nonbn_resg_discriminator((96, 96, 3)).count_params() == 23_565_633
    assert nonbn_resg_discriminator((32, 32, 3)).count_params() == 6_788_417


def test_any_size_same_size_out_in_range(generator, rng):
    for h, w in ((16, 16), (17, 29), (40, 24), (1, 5)):
        x = rng.random((2, h, w, 3), dtype=np.float32)
        y = generator(x, training=False).numpy()
        assert y.shape == (2, h, w, 3) and y.dtype == np.float32
        assert y.min() >= 0.0 and y.max() <= 1.0
    tanh = nonbn_resg_generator(global_skip=False)
    y = tanh(rng.random((1, 19, 23, 3), dtype=np.float32)).numpy()
    assert y.shape == (1, 19, 23, 3) and 0.0 <= y.min() and y.max() <= 1.0


def test_graph_is_the_papers(generator, rng):
    kinds = [type(layer).__name__ for layer in generator.layers]
    assert "BatchNormalization" not in kinds and not any("Pooling" in k for k in kinds)
    assert kinds.count("Add") == 5 + 2  # each block's skip, the long skip, the photo's skip
    preluses = [layer for layer in generator.layers if type(layer).__name__ == "ChannelPReLU"]
    assert len(preluses) == 1 + 5 and all(p.alpha.shape == (1, 1, 64) for p in preluses)
    np.testing.assert_allclose(preluses[0].alpha.numpy(), 0.25)
    assert all(layer.padding == "same" and layer.strides == (1, 1) for layer in generator.layers if isinstance(layer, keras.layers.Conv2D))
    # the photo's skip and the small tail: a new generator starts near the identity, closer
    # than a blur: input is to its target (a mean absolute difference of about 1e-2)
    x = rng.random((1, 24, 24, 3), dtype=np.float32)
    assert np.abs(generator(x).numpy() - x).mean() < 0.005
    clone = keras.Model.from_config(generator.get_config(), custom_objects=custom_objects())
    clone.set_weights(generator.get_weights())
    np.testing.assert_allclose(clone(x).numpy(), generator(x).numpy(), atol=1e-6)


def test_discriminator_gives_one_logit_per_image():
    disc = nonbn_resg_discriminator((32, 32, 3))
    names = [type(layer).__name__ for layer in disc.layers]
    convs = [i for i, n in enumerate(names) if n == "Conv2D"]
    assert len(convs) == 8 and all(names[i + 1 : i + 3] == ["LeakyReLU", "InstanceNormalization"] for i in convs)
    assert [layer.strides[0] for layer in disc.layers if isinstance(layer, keras.layers.Conv2D)] == [1, 2] * 4
    assert sum(n == "Dense" for n in names) == 2
    out = disc(tf.random.uniform((3, 32, 32, 3))).numpy()
    assert out.shape == (3, 1) and np.isfinite(out).all()
    assert disc.layers[-1].activation is keras.activations.linear  # logits: the sigmoid is the bce loss's
    with pytest.raises(UserError, match="larger than 16x16"):
        nonbn_resg_discriminator((16, 16, 3))  # one-pixel last maps: a constant after instance norm
    assert nonbn_resg_discriminator((17, 17, 3)).output_shape == (None, 1)


def test_card():
    card = get_card("nonbn_resg")
    assert card.upscale == 1 and card.size_multiple == 1 and "paired" in card.trains_on
    (disc,) = card.discriminators
    assert (disc.name, disc.sees, disc.gan_loss) == ("sharp", "rgb", "bce")
    assert card.preset.disc_steps == 2 and card.preset.steps == 500_000 and card.preset.schedule == "cosine"
    assert card.preset.patch_size == 96
    paper = card.recipe("paper")
    assert [t.type for t in paper] == ["l1", "content", "content", "gram", "gram", "gan"]
    layers = {layer for t in paper if LOSS_TYPES[t.type].uses_vgg for layer in t.vgg_layers()}
    assert {"pool2", "pool5"} <= layers and all(t.kwargs["patch"] == 16 for t in paper if t.type == "gram")
    novgg = card.recipe("novgg")
    assert [t.type for t in novgg] == ["l1", "gan"] and not any(LOSS_TYPES[t.type].uses_vgg for t in novgg)


def test_two_steps_on_blur_data_without_vgg(photos, tmp_path):
    config = resolve("nonbn_resg", {
        "data.spec": f"blur:{photos}", "losses": "novgg", "data.patch_size": 32, "data.batch_size": 2,
        "steps": 2, "eval_every": 2, "checkpoint_every": 2, "summary_every": 1,
    })
    assert config.gan.disc_steps == 2 and config.optim.schedule == "cosine" and config.optim.learning_rate == 1e-4
    result = train(config, tmp_path / "run", progress=False)
    assert result["step"] == 2
    assert {"l1", "gan_sharp"} <= set(result["losses"]) and all(np.isfinite(v) for v in result["losses"].values())
    assert 0 < result["metrics"]["psnr"] < 100
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["data"]["spec"] == f"blur:{photos}" and saved["gan"]["disc_steps"] == 2
    assert (tmp_path / "run" / "generator.weights.h5").exists()


def test_patches_too_small_for_the_discriminator_are_refused_before_the_run_folder(photos, tmp_path):
    config = resolve("nonbn_resg", {"data.spec": f"blur:{photos}", "losses": "novgg", "data.patch_size": 16, "data.batch_size": 2,
                                    "steps": 1})
    with pytest.raises(UserError, match="got 16x16: use a larger --patch_size"):
        train(config, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_int8_export_at_a_small_size(generator, photos, tmp_path):
    source = make_source(f"blur:{photos}", 32, augment=False)
    (result,) = export_model(generator, tmp_path / "nonbn_resg.tflite", "int8", [(32, 32)], source, model_name="nonbn_resg",
                             calibration_count=4, tune_sweeps=1)
    sidecar = json.loads(result.path.with_suffix(".json").read_text())
    assert sidecar["input"]["shape"] == [1, 32, 32, 3] and sidecar["input"]["dtype"] == "uint8"
    assert sidecar["fidelity"]["tflite_vs_float"]["psnr"] > 45  # the photo skip: int8 rounds only the correction
    blob = result.path.read_bytes()
    assert "PRELU" not in operator_names(blob) and "DEPTHWISE_CONV_2D" in operator_names(blob)  # XNNPACK takes no int8 PRELU
    x = source.validation()[0][0][None]
    out = run_tflite(str(result.path), x)
    assert out.shape == (1, 32, 32, 3)
    assert np.abs(out - generator(x).numpy()).max() < 0.02
