"""The training task on tiny cards made here: every kind of paper a card can describe
(two discriminators with their own views and GAN losses, an inverse generator, two
generators with cycle and identity terms, WGAN-GP with DPE's adaptive weight, warm-up,
several discriminator steps, EMA, x4 upscale, a second stage), resumed equal to
uninterrupted, and the configurations a card refuses."""

import dataclasses
import json

import numpy as np
import pytest
from dped_tree import make_dped_tree, make_photo_folder

from mobile_enhance.cli import main as cli
from mobile_enhance.compat import keras, tf
from mobile_enhance.errors import UserError
from mobile_enhance.losses import T
from mobile_enhance.models import CardError, Discriminator, ModelCard, Preset, Stage
from mobile_enhance.training import Trainer, resolve

L = keras.layers


def tiny_generator(input_shape=(None, None, 3), name="tiny"):
    inputs = keras.Input(input_shape)
    x = L.Conv2D(4, 3, padding="same", activation="relu", name="head")(inputs)
    x = L.Conv2D(3, 3, padding="same", name="tail")(x)
    return keras.Model(inputs, L.Activation("sigmoid", name="out")(x), name=name)


def tiny_inverse(input_shape=(None, None, 3)):
    return tiny_generator(input_shape, name="tiny_inverse")


def tiny_x4(input_shape=(None, None, 3)):
    inputs = keras.Input(input_shape)
    x = L.Conv2D(4, 3, padding="same", activation="relu", name="head")(inputs)
    x = L.UpSampling2D(4, name="up")(x)
    x = L.Conv2D(3, 3, padding="same", name="tail")(x)
    return keras.Model(inputs, L.Activation("sigmoid", name="out")(x), name="tiny_x4")


def tiny_critic(input_shape=(16, 16, 3)):
    inputs = keras.Input(input_shape)
    x = L.Conv2D(4, 3, strides=2, padding="same")(inputs)
    x = L.LeakyReLU(0.2)(x)
    return keras.Model(inputs, L.Conv2D(1, 3, padding="same")(x))  # a patch map of scores


def tiny_softmax(input_shape=(16, 16, 1)):
    inputs = keras.Input(input_shape)
    x = L.Conv2D(4, 3, strides=4, activation="relu")(inputs)
    return keras.Model(inputs, L.Dense(2, activation="softmax")(L.Flatten()(x)))


# WESPE-like: an inverse generator for content consistency, two discriminators (colour on
# blurred RGB with BCE, texture on grayscale with noisy-label LSGAN), warm-up, two
# discriminator steps per generator step, an EMA generator.
WESPE_LIKE = ModelCard(
    name="wespe_like", paper="test", builder=tiny_generator, size_multiple=1, trains_on=("unpaired", "paired"),
    losses=(T("consistency_l1", 1), T("gan", 0.5, disc="color"), T("gan", 0.5, disc="texture"), T("tv", 10)),
    preset=Preset(batch_size=2, patch_size=16, disc_steps=2, disc_warmup=1, ema_decay=0.5),
    discriminators=(
        Discriminator("color", tiny_critic, sees="blur_rgb", gan_loss="bce"),
        Discriminator("texture", tiny_critic, sees="gray", gan_loss="lsgan", loss_kwargs={"real_range": (0.7, 1.2), "fake_range": (0.0, 0.3)}),
    ),
    inverse=tiny_inverse,
)

# DPE-like: two generators, cycle and identity terms, two WGAN-GP critics (one on F(y)),
# the forward one with the adaptive weight (a bound it always exceeds: the weight doubles
# every second critic step).
DPE_LIKE = ModelCard(
    name="dpe_like", paper="test", builder=tiny_generator, size_multiple=1, trains_on=("unpaired",),
    losses=(T("gan", 1, disc="forward"), T("gan", 1, disc="backward"), T("identity", 10), T("cycle", 100)),
    preset=Preset(batch_size=2, patch_size=16),
    discriminators=(
        Discriminator("forward", tiny_critic, gan_loss="wgan_gp", adaptive={"bound": -1.0, "cooldown": 2}),
        Discriminator("backward", tiny_critic, gan_loss="wgan_gp", judges="inverse", loss_kwargs={"one_sided": True}),
    ),
    inverse=tiny_inverse,
)

# DRBN-like two stages on x4 super-resolution: stage 1 a generator alone, stage 2 from a
# stage-1 run, training only its tail against a softmax discriminator.
TWO_STAGE_X4 = ModelCard(
    name="two_stage_x4", paper="test", builder=tiny_x4, size_multiple=1, upscale=4, trains_on=("sr",),
    losses=(T("l1", 1),), preset=Preset(batch_size=2, patch_size=16),
    stages=(Stage("refine", ("sr",), (T("l1", 1), T("gan", 0.1, disc="judge")), Preset(batch_size=2, patch_size=16),
                  (Discriminator("judge", tiny_softmax, sees="gray", gan_loss="dped_softmax"),), after="main", trainable=("tail",)),),
)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    return make_photo_folder(root / "a", count=3, size=(40, 48), seed=1), make_photo_folder(root / "b", count=3, size=(40, 48), seed=2)


def config_for(card, data, **extra):
    overrides = {"data.spec": data, "steps": 4, "eval_every": 2, "checkpoint_every": 100, "summary_every": 1}
    overrides.update(extra)
    return resolve(card.name, overrides, card=card)


def state(trainer):
    """Every weight and state variable the resume must restore, by checkpoint name."""
    out = {}
    for name, part in trainer.task.checkpoint_parts().items():
        if isinstance(part, tf.Variable):
            out[name] = [part.numpy()]
        else:
            values = part.variables() if callable(part.variables) else part.variables
            out[name] = [v.numpy() for v in values]
    return out


def run_in_stops(card, config, run_dir, stops):
    for steps in stops:
        config.steps = steps
        trainer = Trainer(config, run_dir, resume=(run_dir / "checkpoints" / "latest").exists(), progress=False, card=card)
        result = trainer.train()
    return trainer, result


def assert_resume_equals_straight(card, config_fn, tmp_path):
    straight, result = run_in_stops(card, config_fn(), tmp_path / "straight", [4])
    resumed, _ = run_in_stops(card, config_fn(), tmp_path / "resumed", [2, 4])
    a, b = state(straight), state(resumed)
    assert a.keys() == b.keys()
    for name in a:
        for x, y in zip(a[name], b[name]):
            np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6, err_msg=name)
    fresh = Trainer(config_fn(), tmp_path / "fresh", progress=False, card=card)
    moved = [n for n in ("generator", "inverse") if n in a and any(not np.allclose(x, y) for x, y in zip(a[n], state(fresh)[n]))]
    return straight, result, moved


def test_two_discriminators_inverse_generator_warmup_and_ema(photos, tmp_path):
    data = f"unpaired:{photos[0]},{photos[1]}"
    trainer, result, moved = assert_resume_equals_straight(WESPE_LIKE, lambda: config_for(WESPE_LIKE, data), tmp_path)
    assert moved == ["generator", "inverse"]
    assert {"loss", "consistency_l1", "gan_color", "gan_texture", "tv", "disc_color", "disc_texture"} <= set(result["losses"])
    task = trainer.task
    assert task.batches_per_step == 2 and sorted(task.discriminators) == ["color", "texture"]
    assert task.discriminators["texture"].input_shape == (None, 16, 16, 1)
    # 4 steps, the first a warm-up: 3 generator updates, 8 discriminator updates each
    assert int(task.g_opt.iterations.numpy()) == 3
    assert [int(o.iterations.numpy()) for o in task.d_opts.values()] == [8, 8]
    # the EMA copy lags the generator and is what the run writes and exports
    ema, gen = task.ema.get_weights(), task.generator.get_weights()
    assert any(not np.allclose(e, g) for e, g in zip(ema, gen))
    saved = tiny_generator()
    saved.load_weights(str(tmp_path / "straight" / "generator.weights.h5"))
    for e, s in zip(ema, saved.get_weights()):
        np.testing.assert_array_equal(e, s)


def test_two_generators_cycle_identity_and_adaptive_wgan_gp(photos, tmp_path):
    data = f"unpaired:{photos[0]},{photos[1]}"
    trainer, result, moved = assert_resume_equals_straight(DPE_LIKE, lambda: config_for(DPE_LIKE, data), tmp_path)
    assert moved == ["generator", "inverse"]
    assert {"gan_forward", "gan_backward", "identity", "cycle", "disc_forward", "gp_forward", "gp_backward"} <= set(result["losses"])
    _, weight, average, cooldown = trainer.task.adaptive["forward"]
    # critic steps 1..4, cooldown 2: the weight doubled at steps 1 and 3
    assert float(weight.numpy()) == pytest.approx(40.0) and int(cooldown.numpy()) == 1
    assert float(average.numpy()) > 0
    assert "backward" not in trainer.task.adaptive


def test_second_stage_x4_trains_only_its_layers_from_a_first_stage_run(photos, tmp_path):
    data = f"sr:{photos[0]}"
    held = {"data.val_fraction": 0.34}
    # stage 1, a generator alone, resumes as well
    _, _, moved = assert_resume_equals_straight(TWO_STAGE_X4, lambda: config_for(TWO_STAGE_X4, data, **held), tmp_path / "alone")
    assert moved == ["generator"]
    first, _ = run_in_stops(TWO_STAGE_X4, config_for(TWO_STAGE_X4, data, steps=2, checkpoint_every=2, **held), tmp_path / "s1", [2])
    assert first.task.generator.output_shape == (None, None, None, 3)
    assert first.validation[0][0].shape == (4, 4, 3) and first.validation[0][1].shape == (16, 16, 3)

    def stage2():
        return config_for(TWO_STAGE_X4, data, stage="refine", init_from=str(tmp_path / "s1"), **held)

    trainer, result, _ = assert_resume_equals_straight(TWO_STAGE_X4, stage2, tmp_path)
    assert {"l1", "gan_judge", "disc_judge"} <= set(result["losses"])
    s1, s2 = first.task.generator, trainer.task.generator
    np.testing.assert_array_equal(s1.get_layer("head").get_weights()[0], s2.get_layer("head").get_weights()[0])
    assert not np.allclose(s1.get_layer("tail").get_weights()[0], s2.get_layer("tail").get_weights()[0])
    assert 0 < result["metrics"]["psnr"] < 100 and 0 < result["metrics"]["identity_psnr"] < 100


def test_adaptive_penalty_weight_follows_dpe(photos, tmp_path):
    # DPE: moving average (decay 0.99) of the penalty; while it exceeds the bound (0.05)
    # the weight doubles, then the average restarts at 0 and 50 critic steps pass unchecked
    card = dataclasses.replace(DPE_LIKE, discriminators=(
        Discriminator("forward", tiny_critic, gan_loss="wgan_gp", adaptive={}), DPE_LIKE.discriminators[1]))
    trainer = Trainer(config_for(card, f"unpaired:{photos[0]},{photos[1]}"), tmp_path / "r", progress=False, card=card)
    _, weight, average, cooldown = trainer.task.adaptive["forward"]
    penalties = [0.0] * 3 + [9.0] * 2 + [0.3] * 60 + [0.0] * 400
    w, avg, cool, grew = 10.0, 0.0, 0, []
    for i, gp in enumerate(penalties):
        trainer.task.after_step({"forward/0": tf.constant(gp)})
        avg, cool = 0.99 * avg + 0.01 * gp, max(cool - 1, 0)
        if avg > 0.05 and cool <= 0:
            w, avg, cool = 2 * w, 0.0, 50
            grew.append(i)
        assert float(weight.numpy()) == pytest.approx(w) and float(average.numpy()) == pytest.approx(avg, rel=1e-5, abs=1e-7)
        assert int(cooldown.numpy()) == cool
    assert grew == [3, 53] and float(weight.numpy()) == 40.0  # it grew, waited, grew, and stopped once the penalty fell


def test_a_card_refuses_what_it_cannot_compute(photos, tmp_path):
    # a recipe asking for a discriminator the card does not declare: refused when made
    with pytest.raises(CardError, match="loss term 'gan_colour' needs discriminator 'colour'.*discriminators: color, texture"):
        ModelCard("bad", "test", tiny_generator, 1, ("unpaired",), (T("gan", 1, disc="colour"),),
                  discriminators=WESPE_LIKE.discriminators, inverse=tiny_inverse)
    with pytest.raises(CardError, match="loss term 'cycle' needs an inverse generator"):
        ModelCard("bad", "test", tiny_generator, 1, ("unpaired",), (T("cycle", 1),))
    unpaired = f"unpaired:{photos[0]},{photos[1]}"
    # ... and at configuration time, for a recipe given on top of the card
    with pytest.raises(UserError, match="loss term 'gan_nope' needs discriminator 'nope'"):
        config_for(WESPE_LIKE, unpaired, losses="tv:1,gan@nope:1")
    with pytest.raises(UserError, match="loss term 'l1' compares the output with its target"):
        config_for(WESPE_LIKE, unpaired, losses="l1:1")
    with pytest.raises(UserError, match="trains on unpaired data, not sr"):
        config_for(DPE_LIKE, f"sr:{photos[0]}")
    with pytest.raises(UserError, match="stage 'refine' of model 'two_stage_x4' trains from a run of stage 'main'"):
        config_for(TWO_STAGE_X4, f"sr:{photos[0]}", stage="refine")
    with pytest.raises(UserError, match="has no stage 'nope'; its stages: main, refine"):
        config_for(TWO_STAGE_X4, f"sr:{photos[0]}", stage="nope")
    with pytest.raises(UserError, match="not a multiple of model 'two_stage_x4'.s upscale 4"):
        config_for(TWO_STAGE_X4, f"sr:{photos[0]}", **{"data.patch_size": 18})


def test_second_stage_from_a_run_of_another_model_or_stage(photos, tmp_path):
    dped = make_dped_tree(tmp_path / "d", train=2, test=1, size=32)
    assert cli(["mobile-enhance", "train", "--model=srcnn", f"--data=dped:{dped}", f"--run_dir={tmp_path / 'srcnn'}",
                "--steps=1", "--batch_size=2", "--patch_size=16", "--quiet"]) == 0
    with pytest.raises(UserError, match=r"srcnn: a run of model 'srcnn' stage 'main'; stage 'refine' trains from a run of model 'two_stage_x4'"):
        config_for(TWO_STAGE_X4, f"sr:{photos[0]}", stage="refine", init_from=str(tmp_path / "srcnn"))


def test_cli_refuses_in_one_line_and_writes_nothing(photos, tmp_path, capsys):
    dped = make_dped_tree(tmp_path / "d", train=2, test=1, size=32)
    cases = [
        (["--model=srcnn", f"--data=unpaired:{photos[0]},{photos[1]}"], "model 'srcnn' trains on paired, sr data, not unpaired"),
        (["--model=srcnn", f"--data=dped:{dped}", "--losses=consistency_l1:1"], "loss term 'consistency_l1' needs an inverse generator"),
        (["--model=srcnn", f"--data=dped:{dped}", "--losses=l1:1,gan@color:1"], "loss term 'gan_color' needs discriminator 'color'"),
        (["--model=srcnn", f"--data=dped:{dped}", "--stage=refine"], "model 'srcnn' has no stage 'refine'"),
        (["--model=srcnn", f"--data=dped:{tmp_path / 'nowhere'}"], "nowhere"),
    ]
    for i, (args, message) in enumerate(cases):
        run_dir = tmp_path / f"run{i}"
        assert cli(["mobile-enhance", "train", *args, f"--run_dir={run_dir}", "--quiet"]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        assert not run_dir.exists()


def test_a_run_from_before_model_cards_resumes(tmp_path):
    # such a run's config.json has no "format", "gan", "ema_decay" or "stage", and its
    # checkpoint holds generator, g_opt, step, discriminator, d_opt (the old trainer's
    # names); it resumes, also after a first resumed attempt died before checkpointing,
    # and goes on under today's names
    dped = make_dped_tree(tmp_path / "d", train=4, test=1, size=32)
    config = resolve("srcnn", {"data.spec": f"dped:{dped}", "data.patch_size": 32, "data.batch_size": 2, "steps": 2,
                               "eval_every": 2, "checkpoint_every": 2, "losses": "dped_novgg"})
    trainer = Trainer(config, tmp_path / "old", progress=False)
    trainer.train()
    task, run = trainer.task, tmp_path / "old"
    old = run / "checkpoints" / "ckpt-00000002"
    for f in old.glob("ckpt.*"):
        f.unlink()
    disc, d_opt = task.discriminators["texture"], task.d_opts["texture"]
    tf.train.Checkpoint(generator=task.generator, g_opt=task.g_opt, step=trainer.step, discriminator=disc, d_opt=d_opt).write(str(old / "ckpt"))
    data = json.loads((run / "config.json").read_text())
    for key in ("format", "gan", "ema_decay", "stage"):
        data.pop(key)
    (run / "config.json").write_text(json.dumps(data))
    config.steps = 3
    interrupted = Trainer(config, run, resume=True, progress=False)
    interrupted.write_config()  # what train() does first; then it dies before a checkpoint
    assert json.loads((run / "config.json").read_text())["format"] == 2
    resumed = Trainer(config, run, resume=True, progress=False)
    assert int(resumed.step.numpy()) == 2
    for a, b in zip(disc.get_weights(), resumed.task.discriminators["texture"].get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(task.generator.get_weights(), resumed.generator.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert int(resumed.task.d_opts["texture"].iterations.numpy()) == 2
    resumed.train()
    names = [n for n, _ in tf.train.list_variables(str(run / "checkpoints" / "ckpt-00000003" / "ckpt"))]
    assert any(n.startswith("discriminator_texture/") for n in names) and not any(n.startswith("discriminator/") for n in names)
    config.steps = 4
    Trainer(config, run, resume=True, progress=False).train()  # and the new layout resumes too
