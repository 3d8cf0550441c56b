"""SRResNet and SRGAN (Ledig et al., CVPR 2017): parameter counts, the [0, 1] mapping, the
discriminator, the cards and their stages, BN folded in the TFLite file, an int8 export."""

import json

import numpy as np
import pytest
from dped_tree import make_photo_folder

from mobile_enhance.compat import keras
from mobile_enhance.data import make_source
from mobile_enhance.errors import UserError
from mobile_enhance.export import convert, export_model, run_tflite, verify_sidecar
from mobile_enhance.export.analysis import operator_names
from mobile_enhance.losses import parse_losses, recipe_from_json
from mobile_enhance.models import build_model, get_card
from mobile_enhance.models.layers import ChannelPReLU
from mobile_enhance.models.srresnet import SRGAN_CARD, srgan_discriminator, srresnet_generator
from mobile_enhance.training import Trainer, load_generator, resolve, train

L = keras.layers


def trainable(model) -> int:
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return make_photo_folder(tmp_path_factory.mktemp("photos"), count=6, size=(64, 80))


@pytest.fixture(scope="module")
def generator():
    """The x4 generator with BN statistics and scales away from the identity, so that a
    test of BN folding would see a BN left out."""
    keras.utils.set_random_seed(0)
    model = build_model("srresnet")
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.0, c), rng.normal(0, 0.1, c), rng.normal(0, 0.1, c), rng.uniform(0.5, 2.0, c)])
    return model


def test_generator_has_the_papers_parameters_and_takes_any_size(generator):
    assert trainable(generator) == 1_550_659  # the paper's Fig. 4 with one PReLU slope per channel
    assert generator.count_params() - trainable(generator) == 4_224  # BN moving means and variances
    assert get_card("srgan").builder is get_card("srresnet").builder is srresnet_generator
    prelus = [layer for layer in generator.layers if isinstance(layer, ChannelPReLU)]
    assert len(prelus) == 1 + 16 + 2 and all(p.alpha.shape == (1, 1, 64) for p in prelus)
    block = [type(generator.get_layer(f"block7_{n}")).__name__ for n in ("conv1", "bn1", "prelu", "conv2", "bn2", "add")]
    assert block == ["Conv2D", "BatchNormalization", "ChannelPReLU", "Conv2D", "BatchNormalization", "Add"]
    for h, w in ((7, 9), (16, 12)):
        x = np.random.default_rng(h).random((2, h, w, 3), dtype=np.float32)
        y = generator(x, training=False).numpy()
        assert y.shape == (2, 4 * h, 4 * w, 3) and y.min() >= 0.0 and y.max() <= 1.0


def test_generator_saves_and_loads(generator, tmp_path):
    from mobile_enhance.models import custom_objects

    generator.save(tmp_path / "srresnet.keras")
    loaded = keras.models.load_model(tmp_path / "srresnet.keras", custom_objects=custom_objects())
    x = np.random.default_rng(3).random((1, 5, 7, 3), dtype=np.float32)
    np.testing.assert_allclose(loaded(x, training=False).numpy(), generator(x, training=False).numpy(), atol=1e-6)
    assert isinstance(loaded.get_layer("block1_prelu"), ChannelPReLU) and loaded.get_layer("block1_prelu").shared_axes == [1, 2]


def test_the_linear_tail_is_the_papers_minus_one_to_one_image_mapped_to_zero_one(generator):
    # conv3 of a model trained in the paper's range [-1, 1] (kernel W, bias b) loads as
    # 0.5 W, 0.5 b + 0.5: the output is then clip(0.5 t + 0.5) of the paper's output t
    rng = np.random.default_rng(1)
    body = keras.Model(generator.input, generator.get_layer("conv3").input)
    x = rng.random((2, 6, 5, 3), dtype=np.float32)
    features = body(x, training=False).numpy()
    kernel = rng.normal(0, 0.02, (9, 9, 64, 3)).astype(np.float32)
    bias = rng.normal(0, 0.1, 3).astype(np.float32)
    paper = keras.Sequential([keras.Input((None, None, 64)), L.Conv2D(3, 9, padding="same")])
    paper.set_weights([kernel, bias])
    t = paper(features).numpy()
    assert t.min() < -0.2 and t.max() > 0.2  # a real spread around 0, not a trivially clipped one
    ours = build_model("srresnet")
    ours.set_weights(generator.get_weights())
    ours.get_layer("conv3").set_weights([0.5 * kernel, 0.5 * bias + 0.5])
    np.testing.assert_allclose(ours(x, training=False).numpy(), np.clip(0.5 * t + 0.5, 0, 1), atol=1e-5)
    # a new model's tail starts with the map folded in: half the Glorot limit, bias 0.5
    k, b = build_model("srresnet").get_layer("conv3").get_weights()
    limit = np.sqrt(6.0 / (9 * 9 * 64 + 9 * 9 * 3))
    assert 0.45 * limit < np.abs(k).max() <= 0.5 * limit and np.all(b == 0.5)


def test_interpolating_start_is_a_bicubic_like_upscaler_of_the_same_architecture(photos):
    from mobile_enhance.data.images import bicubic_upscale, read_image
    from mobile_enhance.models.srresnet import nearest_to_bicubic_taps

    taps = nearest_to_bicubic_taps(4, 9)
    assert taps.sum() == pytest.approx(1.0, abs=1e-6) and np.allclose(taps, taps[::-1])
    keras.utils.set_random_seed(0)
    random = build_model("srresnet")
    keras.utils.set_random_seed(0)
    model = build_model("srresnet", start="interpolate")
    assert trainable(model) == trainable(random) and [w.shape for w in model.weights] == [w.shape for w in random.weights]
    # the body is silent (conv2_bn's gamma 0) but still trains: its blocks keep the draw
    assert not np.any(model.get_layer("conv2_bn").gamma.numpy())
    np.testing.assert_array_equal(model.get_layer("block5_conv1").get_weights()[0], random.get_layer("block5_conv1").get_weights()[0])
    photo = read_image(sorted(photos.iterdir())[0])
    lr = photo[None, :16, :20]
    want = bicubic_upscale(lr, 4)
    got = model(lr, training=False).numpy()
    inner = (slice(None), slice(8, -8), slice(8, -8))  # away from the zero padding of the 9x9 tail
    def psnr(a, b):
        return 10 * np.log10(1.0 / np.mean((a[inner] - b[inner]) ** 2))
    assert psnr(got, want) > 40.0  # nearest x4 + the fitted filter is near bicubic itself
    assert psnr(random(lr, training=False).numpy(), want) < 20.0  # where the default draw starts
    with pytest.raises(ValueError, match="start must be one of random, interpolate"):
        build_model("srresnet", start="bicubic")


def test_discriminator_is_the_papers_and_gives_a_logit():
    keras.utils.set_random_seed(0)
    disc = srgan_discriminator((96, 96, 3))
    assert trainable(disc) == 23_565_505 and disc.count_params() - trainable(disc) == 3_712
    assert disc.get_layer("flatten").output_shape == (None, 6 * 6 * 512)
    assert [disc.get_layer(f"conv{i}").strides[0] for i in range(1, 9)] == [1, 2, 1, 2, 1, 2, 1, 2]
    assert trainable(srgan_discriminator((24, 24, 3))) == 6_788_289  # the dense layer follows the patch
    # logits for the bce GAN loss: no sigmoid at the end
    assert disc.get_layer("logit").activation is keras.activations.linear
    out = disc(np.random.default_rng(0).random((3, 96, 96, 3), dtype=np.float32)).numpy()
    assert out.shape == (3, 1)


def test_cards_carry_the_papers_recipes_presets_and_stages():
    sr, gan = get_card("srresnet"), get_card("srgan")
    for card in (sr, gan):
        assert card.upscale == 4 and card.trains_on == ("sr",) and card.size_multiple == 1
        assert [(t.type, t.weight) for t in card.losses] == [("l2", 1.0)]
        p = card.preset
        assert (p.batch_size, p.patch_size, p.learning_rate, p.beta_1, p.steps) == (16, 96, 1e-4, 0.9, 1_000_000)
    assert sr.discriminators == () and [s.name for s in sr.all_stages()] == ["main"]
    assert [(s.name, s.after) for s in gan.all_stages()] == [("main", ""), ("gan", "main"), ("gan_low_rate", "gan")]
    (disc,) = gan.discriminators
    assert (disc.name, disc.sees, disc.gan_loss, disc.builder) == ("srgan", "rgb", "bce", srgan_discriminator)
    for name, rate in (("gan", 1e-4), ("gan_low_rate", 1e-5)):
        stage = gan.stage(name)
        content, adversarial = stage.losses
        # the paper's VGG maps / 12.75 inside the squared difference = weight 1 / 12.75**2 outside
        assert content.type == "content" and content.vgg_layers() == ("relu5_4",)
        np.testing.assert_allclose(content.weight, 1 / 162.5625)
        assert (adversarial.type, adversarial.weight, adversarial.disc) == ("gan", 1e-3, "srgan")
        assert stage.discriminators == (disc,) and (stage.preset.learning_rate, stage.preset.steps) == (rate, 100_000)
    assert [(t.label, t.weight) for t in parse_losses("novgg", gan)] == [("l2", 4.0), ("gan_srgan", 1e-3)]
    assert parse_losses("vgg54", gan) == gan.stage("gan").losses
    # "paper" is the recipe of the stage being trained
    assert parse_losses("paper", gan) == gan.losses and parse_losses("paper", gan, "gan") == gan.stage("gan").losses
    describe = gan.describe()
    assert describe["upscale"] == 4 and [s["name"] for s in describe["stages"]] == ["main", "gan", "gan_low_rate"]


def test_float_file_has_bn_folded_into_its_convolutions(generator):
    x = np.random.default_rng(2).random((1, 8, 12, 3), dtype=np.float32)
    want = generator(x, training=False).numpy()
    assert ((want > 0) & (want < 1)).mean() > 0.9  # compared where the clip does not hide a difference
    plain = convert(generator, "float32", input_size=(8, 12), rewrite=False)
    ops = operator_names(plain)
    # BN folded: 37 convolutions (head, 32 in the blocks, conv2, two upsamplers, tail) and
    # no MUL; the [0, 1] map is folded into conv3 and the clip is RELU + MINIMUM
    assert set(ops) == {"CONV_2D", "ADD", "DEPTH_TO_SPACE", "PRELU", "RELU", "MINIMUM"}
    assert ops.count("CONV_2D") == 37 and ops.count("ADD") == 17 and ops.count("PRELU") == 19
    np.testing.assert_allclose(run_tflite(plain, x), want, atol=1e-4)
    # the default conversion rewrites the thin 9x9 head and tail for XNNPACK, nothing else
    rewritten = operator_names(convert(generator, "float32", input_size=(8, 12)))
    assert set(rewritten) == set(ops) | {"SPACE_TO_DEPTH"} and rewritten.count("SPACE_TO_DEPTH") == 2


def test_int8_export_at_a_small_size(generator, photos, tmp_path):
    source = make_source(f"sr:{photos}", 32, augment=False, upscale=4)
    # the default fidelity floor for int8 applies (no min_psnr given)
    (result,) = export_model(generator, tmp_path / "srresnet_int8.tflite", "int8", [(8, 8)], source, model_name="srresnet",
                             calibration_count=4, fidelity_count=4, tune_sweeps=0)
    sidecar = json.loads(result.path.with_suffix(".json").read_text())
    assert verify_sidecar(result.path) == [] and sidecar["model"] == "srresnet" and sidecar["upscale"] == 4
    assert sidecar["input"]["shape"] == [1, 8, 8, 3] and sidecar["output"]["shape"] == [1, 32, 32, 3]
    assert sidecar["input"]["dtype"] == "uint8" and "bicubic_vs_target" in sidecar["fidelity"]
    # the PReLUs are depthwise convolutions and ADDs in int8 (XNNPACK takes no int8 PRELU)
    ops = operator_names(result.path.read_bytes())
    assert set(ops) <= {"CONV_2D", "ADD", "DEPTH_TO_SPACE", "SPACE_TO_DEPTH", "DEPTHWISE_CONV_2D", "RELU", "MINIMUM", "QUANTIZE",
                        "DEQUANTIZE"}
    assert ops.count("DEPTHWISE_CONV_2D") == 19 and not any("PRELU" in op for op in sidecar["ops_not_in_xnnpack"])
    x = source.validation()[0][0][None]
    out = run_tflite(str(result.path), x)
    assert out.shape == (1, 32, 32, 3)
    assert np.abs(out - generator(x, training=False).numpy()).mean() < 0.02


def small(stage, photos, **extra):
    overrides = {"data.spec": f"sr:{photos}", "data.patch_size": 32, "data.batch_size": 2, "steps": 1, "eval_every": 1,
                 "checkpoint_every": 1, "summary_every": 1, "val_max": 2, "stage": stage, **extra}
    return resolve("srgan", overrides)


@pytest.fixture(scope="module")
def mse_run(photos, tmp_path_factory):
    """One step of srgan's first stage, the MSE pre-training."""
    run = tmp_path_factory.mktemp("srgan") / "mse"
    train(small("", photos), run, progress=False)
    return run


def test_srgan_gan_stages_start_from_the_stage_before(photos, mse_run, tmp_path):
    with pytest.raises(UserError, match="stage 'gan_low_rate' trains from a run of model 'srgan' stage 'gan'"):
        small("gan_low_rate", photos, init_from=str(mse_run))
    # no VGG weights here: the paper's SRGAN-MSE variant, through the discriminator
    config = small("gan", photos, init_from=str(mse_run), losses="novgg")
    assert config.optim.learning_rate == 1e-4 and recipe_from_json(config.losses) == SRGAN_CARD.recipes["novgg"]
    trainer = Trainer(config, tmp_path / "gan", progress=False)
    pretrained, _ = load_generator(mse_run)
    for a, b in zip(pretrained.get_weights(), trainer.generator.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert list(trainer.task.discriminators) == ["srgan"]
    assert trainer.task.discriminators["srgan"].input_shape == (None, 32, 32, 3)
    result = trainer.train()
    assert {"l2", "gan_srgan", "disc_srgan"} <= set(result["losses"]) and all(np.isfinite(v) for v in result["losses"].values())
    assert any(not np.allclose(a, b) for a, b in zip(pretrained.get_weights(), trainer.generator.get_weights()))
    # the paper's second phase, from the first GAN phase's run
    low = small("gan_low_rate", photos, init_from=str(tmp_path / "gan"), losses="novgg")
    assert low.optim.learning_rate == 1e-5 and low.stage == "gan_low_rate"


def test_srgan_gan_stage_with_the_papers_vgg54_recipe(photos, mse_run, tmp_path):
    vgg = tmp_path / "vgg19_notop.h5"  # random weights: the loss is computed, not meaningful
    keras.applications.VGG19(include_top=False, weights=None).save_weights(str(vgg))
    config = small("gan", photos, init_from=str(mse_run), vgg_weights=str(vgg))
    assert recipe_from_json(config.losses) == SRGAN_CARD.stage("gan").losses  # the stage's default: VGG54 + 1e-3 GAN
    result = train(config, tmp_path / "gan", progress=False)
    assert {"content", "gan_srgan", "disc_srgan"} <= set(result["losses"]) and all(np.isfinite(v) for v in result["losses"].values())
