"""Training: a short run of every model with its paper recipe on a generated DPED tree,
resume equality, the NaN guard, bad run folders and checkpoints, and the CLI."""

import json

import numpy as np
import pytest
from dped_tree import make_dped_tree, make_photo_folder

from mobile_enhance.cli import main as cli
from mobile_enhance.errors import UserError
from mobile_enhance.models import MODELS
from mobile_enhance.training import Trainer, load_generator, resolve, train
from mobile_enhance.training.trainer import CheckpointError, DivergedError
from mobile_enhance.training.task import _labels


@pytest.fixture(scope="module")
def dped_root(tmp_path_factory):
    return make_dped_tree(tmp_path_factory.mktemp("dped"), train=8, test=2, size=64)


@pytest.fixture(scope="module")
def vgg_file(vgg_h5):
    return str(vgg_h5[0])


def small(model, root, **extra):
    overrides = {
        "data.spec": f"dped:{root}",
        "data.patch_size": 32,
        "data.batch_size": 2,
        "steps": 2,
        "eval_every": 2,
        "checkpoint_every": 2,
        "summary_every": 1,
    }
    overrides.update(extra)
    return resolve(model, overrides)


@pytest.fixture(scope="module")
def photo_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    return make_photo_folder(root / "a", count=4, size=(64, 80), seed=1), make_photo_folder(root / "b", count=4, size=(64, 80), seed=2)


def data_of_kind(kind, dped_root, photo_root):
    """A --data spec of each kind a card can train on, over generated files."""
    return {"paired": f"dped:{dped_root}", "sr": f"sr:{photo_root[0]}", "unpaired": f"unpaired:{photo_root[0]},{photo_root[1]}"}[kind]


@pytest.mark.parametrize("name,kind", [(n, k) for n in sorted(MODELS) for k in MODELS[n].trains_on])
def test_short_run_of_every_card_on_each_kind_it_trains_on(name, kind, dped_root, photo_root, vgg_file, tmp_path):
    config = small(name, dped_root, vgg_weights=vgg_file, **{"data.spec": data_of_kind(kind, dped_root, photo_root)})
    result = train(config, tmp_path / "run", progress=False)
    assert result["step"] == 2
    assert all(np.isfinite(v) for v in result["losses"].values())
    assert set(_labels(MODELS[name].losses)) <= set(result["losses"])  # a gan term logs as gan_<disc>
    assert config.losses == [{"type": t.type, "weight": t.weight, **t.kwargs} for t in MODELS[name].losses]
    assert 0 < result["metrics"]["psnr"] < 100
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["model"] == name and saved["losses"] == config.losses
    assert (tmp_path / "run" / "checkpoints" / "ckpt-00000002" / "ckpt.index").exists()
    assert (tmp_path / "run" / "generator.weights.h5").exists()
    assert list((tmp_path / "run" / "logs").glob("events.out.tfevents.*"))
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 1


def weights_after(config, run_dir, stops):
    for steps in stops:
        config.steps = steps
        trainer = Trainer(config, run_dir, resume=(run_dir / "checkpoints" / "latest").exists(), progress=False)
        trainer.train()
    return trainer.generator.get_weights(), trainer.task.d_opts["texture"]


def test_resumed_run_equals_uninterrupted_run(dped_root, tmp_path):
    # dped_novgg has a discriminator too: both networks and both optimizers resume
    config = small("fast_dped", dped_root, losses="dped_novgg", checkpoint_every=100)
    straight, _ = weights_after(config, tmp_path / "a", [4])
    config = small("fast_dped", dped_root, losses="dped_novgg", checkpoint_every=100)
    resumed, d_opt = weights_after(config, tmp_path / "b", [2, 4])
    assert int(d_opt.iterations.numpy()) == 4
    for a, b in zip(straight, resumed):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # and the runs really trained: weights moved away from the initialisation
    fresh = Trainer(small("fast_dped", dped_root, losses="dped_novgg"), tmp_path / "c", progress=False).generator.get_weights()
    assert any(not np.allclose(a, b) for a, b in zip(straight, fresh))


def test_run_dir_with_a_run_needs_resume(dped_root, tmp_path):
    config = small("srcnn", dped_root)
    train(config, tmp_path / "r", progress=False)
    with pytest.raises(UserError, match="already holds a run; pass --resume"):
        Trainer(config, tmp_path / "r", progress=False)
    with pytest.raises(CheckpointError, match="no checkpoint to resume"):
        Trainer(config, tmp_path / "empty", resume=True, progress=False)
    other = small("srcnn", dped_root, **{"optim.learning_rate": 0.1})
    with pytest.raises(UserError, match="different configuration"):
        Trainer(other, tmp_path / "r", resume=True, progress=False)


def test_init_from_starts_a_new_run_from_another_runs_generator(dped_root, tmp_path):
    train(small("srcnn", dped_root), tmp_path / "pre", progress=False)
    pretrained, _ = load_generator(tmp_path / "pre")
    # a different recipe and rate: the fine-tuning use
    config = small("srcnn", dped_root, losses="l1:1", init_from=str(tmp_path / "pre"))
    trainer = Trainer(config, tmp_path / "ft", progress=False)
    assert int(trainer.step.numpy()) == 0
    for a, b in zip(pretrained.get_weights(), trainer.generator.get_weights()):
        np.testing.assert_array_equal(a, b)
    # from a weights file as well
    (tmp_path / "w").mkdir()
    pretrained.save_weights(str(tmp_path / "w" / "g.weights.h5"))
    config = small("srcnn", dped_root, init_from=str(tmp_path / "w" / "g.weights.h5"))
    trainer = Trainer(config, tmp_path / "ft2", progress=False)
    for a, b in zip(pretrained.get_weights(), trainer.generator.get_weights()):
        np.testing.assert_array_equal(a, b)
    # another architecture, a missing path, a bad file: named
    with pytest.raises(UserError, match="holds a srcnn"):
        Trainer(small("fast_dped", dped_root, losses="pixel", init_from=str(tmp_path / "pre")), tmp_path / "x", progress=False)
    with pytest.raises(UserError, match="neither a run folder nor a weights file"):
        Trainer(small("srcnn", dped_root, init_from=str(tmp_path / "nope")), tmp_path / "y", progress=False)
    (tmp_path / "w" / "bad.weights.h5").write_bytes(b"not hdf5")
    with pytest.raises(CheckpointError, match="bad.weights.h5: cannot initialise srcnn"):
        Trainer(small("srcnn", dped_root, init_from=str(tmp_path / "w" / "bad.weights.h5")), tmp_path / "z", progress=False)


def test_corrupt_checkpoint_on_resume(dped_root, tmp_path):
    config = small("srcnn", dped_root)
    train(config, tmp_path / "r", progress=False)
    ckpt = tmp_path / "r" / "checkpoints" / "ckpt-00000002"
    data = next(ckpt.glob("ckpt.data-*"))
    data.write_bytes(data.read_bytes()[: len(data.read_bytes()) // 3])
    config.steps = 4
    with pytest.raises(CheckpointError, match="ckpt-00000002.*cannot be restored"):
        Trainer(config, tmp_path / "r", resume=True, progress=False)


def test_half_written_checkpoint_never_replaces_a_good_one(dped_root, tmp_path, monkeypatch):
    config = small("srcnn", dped_root)
    trainer = Trainer(config, tmp_path / "r", progress=False)
    trainer.train()
    good = (tmp_path / "r" / "checkpoints" / "latest").read_text()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(trainer.checkpoint, "write", crash)
    trainer.step.assign(3)
    with pytest.raises(OSError):
        trainer.save_checkpoint()
    assert (tmp_path / "r" / "checkpoints" / "latest").read_text() == good
    model, _ = load_generator(tmp_path / "r")
    np.testing.assert_array_equal(model.get_weights()[0], trainer.generator.get_weights()[0])


def test_nan_guard_stops_without_checkpointing_nan_weights(dped_root, tmp_path):
    config = small("srcnn", dped_root, steps=6, checkpoint_every=2, **{"optim.learning_rate": 1e30})
    with pytest.raises(DivergedError, match=r"diverged at step \d+.*last good checkpoint"):
        train(config, tmp_path / "r", progress=False)
    latest = tmp_path / "r" / "checkpoints" / "latest"
    if latest.exists():
        model, _ = load_generator(tmp_path / "r")
        assert all(np.isfinite(w).all() for w in model.get_weights())


def test_unknown_config_key_lists_known(dped_root):
    with pytest.raises(UserError, match="unknown config key 'optim.lr'.*optim.learning_rate"):
        resolve("srcnn", {"data.spec": f"dped:{dped_root}"}, ["optim.lr=1"])
    with pytest.raises(UserError, match="not a valid int"):
        resolve("srcnn", {"data.spec": f"dped:{dped_root}"}, ["steps=many"])
    with pytest.raises(UserError, match="multiples of 32"):
        resolve("rsgunet", {"data.spec": f"dped:{dped_root}", "data.patch_size": 100})


def test_cli_train_and_resume(dped_root, tmp_path, capsys):
    run = tmp_path / "cli"
    args = ["mobile-enhance", "train", "--model=srcnn", f"--data=dped:{dped_root}", f"--run_dir={run}"]
    assert cli(args + ["--steps=2", "--batch_size=2", "--patch_size=32", "--eval_every=1", "--quiet"]) == 0
    assert "trained srcnn to step 2" in capsys.readouterr().out
    assert cli(["mobile-enhance", "train", f"--run_dir={run}", "--resume", "--steps=3", "--quiet"]) == 0
    assert "to step 3" in capsys.readouterr().out
    assert cli(args + ["--steps=2"]) == 2
    assert cli(["mobile-enhance", "train", "--model=srcnn", f"--data=dped:{tmp_path}", f"--run_dir={tmp_path / 'x'}"]) == 2
    assert cli(["mobile-enhance", "train", "--model=srcnn", f"--data=dped:{dped_root}", "--phone=sony", f"--run_dir={tmp_path / 'y'}"]) == 2
    err = capsys.readouterr().err
    assert "already holds a run" in err and "is not a DPED tree" in err and "no data for phone 'sony'" in err
    assert "Traceback" not in err


def test_cli_train_from_a_saved_config(dped_root, tmp_path, capsys):
    # a committed config.json reproduces a run; flags and --set still override it
    first = tmp_path / "first"
    assert cli(["mobile-enhance", "train", "--model=srcnn", f"--data=dped:{dped_root}", f"--run_dir={first}", "--steps=2",
                "--batch_size=2", "--patch_size=32", "--eval_every=1", "--losses=l1:1,tv:0.5", "--lr=3e-4", "--quiet"]) == 0
    saved = json.loads((first / "config.json").read_text())
    again = tmp_path / "again"
    assert cli(["mobile-enhance", "train", f"--config={first / 'config.json'}", f"--run_dir={again}", "--steps=3",
                "--set=optim.beta_1=0.5", "--quiet"]) == 0
    assert "trained srcnn to step 3" in capsys.readouterr().out
    got = json.loads((again / "config.json").read_text())
    assert got["steps"] == 3 and got["optim"]["beta_1"] == 0.5
    assert {k: v for k, v in got.items() if k not in ("steps", "optim")} == {k: v for k, v in saved.items() if k not in ("steps", "optim")}
    assert got["losses"] == [{"type": "l1", "weight": 1.0}, {"type": "tv", "weight": 0.5}] and got["optim"]["learning_rate"] == 3e-4
    capsys.readouterr()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**saved, "stepz": 3}))
    missing = tmp_path / "none.json"
    for config, extra in ((bad, []), (missing, []), (first / "config.json", ["--model=fast_dped"])):
        assert cli(["mobile-enhance", "train", f"--config={config}", f"--run_dir={tmp_path / 'x'}", *extra]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: unknown config key 'stepz'" in err and f"config file {missing} does not exist" in err
    assert "is for model 'srcnn', not 'fast_dped'" in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_committed_training_configs_resolve():
    # the configs that reproduce committed results stay loadable as the config grows
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    paths = sorted((root / "benchmarks" / "configs").glob("*.json")) + sorted((root / "tflite_models").glob("*train.json"))
    assert len(paths) >= 3, paths
    for path in paths:
        data = json.loads(path.read_text())
        config = resolve(data["model"], base=data)
        assert config.to_json() == {**config.to_json(), **data}, path


def test_api_train_resume_and_config(dped_root, tmp_path):
    # the notebook's call: the same as the CLI's, without flags or a hand-built config.json
    from mobile_enhance import api

    run = tmp_path / "r"
    result = api.train(run, "srcnn", f"dped:{dped_root}", steps=2, batch_size=2, patch_size=32, eval_every=2, progress=False)
    assert result["step"] == 2 and result["config"].model == "srcnn" and result["run_dir"] == run
    assert api.train(run, resume=True, steps=3, progress=False)["step"] == 3
    with pytest.raises(UserError, match="only steps may change"):
        api.train(run, resume=True, steps=4, lr=1.0)
    with pytest.raises(UserError, match="unknown training option.*step\\b"):
        api.train(tmp_path / "s", "srcnn", f"dped:{dped_root}", step=2)
    saved = json.loads((run / "config.json").read_text())
    again = api.train(tmp_path / "t", config=saved, steps=1, overrides={"optim.beta_1": 0.5}, progress=False)
    assert again["config"].optim.beta_1 == 0.5 and again["config"].data.patch_size == 32
    assert not (tmp_path / "s").exists()


def test_ema_generator_is_validated_and_exported(dped_root, tmp_path):
    config = small("srcnn", dped_root, steps=3, ema_decay=0.5)
    trainer = Trainer(config, tmp_path / "r", progress=False)
    trainer.train()
    ema, raw = trainer.task.ema.get_weights(), trainer.generator.get_weights()
    assert any(not np.allclose(a, b) for a, b in zip(ema, raw))
    exported, _ = load_generator(tmp_path / "r")  # what `mobile-enhance export --run_dir` loads
    for a, b in zip(ema, exported.get_weights()):
        np.testing.assert_array_equal(a, b)
    x = np.stack([a for a, _ in trainer.validation])
    np.testing.assert_allclose(trainer.task.eval_generator(x).numpy(), exported(x).numpy(), rtol=1e-6)
