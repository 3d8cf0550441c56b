"""`mobile-enhance import`: checkpoints in DPED's published layout, written here with the
TF1 Saver under the authors' variable names, become run folders that compute the authors'
graph; broken sources are refused naming the file and the variable."""

import json

import numpy as np
import pytest

from mobile_enhance import api
from mobile_enhance.cli import main as cli
from mobile_enhance.compat import tf
from mobile_enhance.errors import UserError
from mobile_enhance.importers.dped_tf1 import SHAPES


def write_tf1_checkpoint(prefix, values: dict):
    """A name-based TF1 checkpoint holding ``values`` under their names (the authors' Saver)."""
    graph = tf.Graph()
    with graph.as_default():
        variables = {name: tf.compat.v1.Variable(value, name=name.replace("/", "_")) for name, value in values.items()}
        saver = tf.compat.v1.train.Saver(var_list=variables)
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saver.save(session, str(prefix), write_meta_graph=False)
    return str(prefix)


def authors_values(seed=0):
    rng = np.random.default_rng(seed)
    values = {}
    for name, shape in SHAPES.items():
        if "/W" in name:
            values[name] = rng.normal(0, 0.05, shape).astype(np.float32)
        elif "/b" in name:
            values[name] = rng.normal(0, 0.01, shape).astype(np.float32)
        else:  # instance norm shift (even) and scale (odd)
            j = int(name.rsplit("_", 1)[1]) if "_" in name.rsplit("/", 1)[1] else 0
            values[name] = (rng.normal(1.0, 0.1, shape) if j % 2 else rng.normal(0.0, 0.1, shape)).astype(np.float32)
    return values


def authors_graph(values, image):
    """DPED's generator as its paper's code computes it (aiff22/DPED models.py), in plain TF ops."""
    def conv(x, k):
        return tf.nn.conv2d(x, values[f"generator/W{k}"], 1, "SAME") + values[f"generator/b{k}"]

    norms = iter(range(8))

    def inorm(x):
        i = next(norms)
        shift = values["generator/Variable" + (f"_{2 * i}" if i else "")]
        scale = values[f"generator/Variable_{2 * i + 1}"]
        mu, var = tf.nn.moments(x, [1, 2], keepdims=True)
        return scale * (x - mu) / (var + 1e-3) ** 0.5 + shift

    c = tf.nn.relu(conv(image, 1))
    for b in range(4):
        skip = c
        c = tf.nn.relu(inorm(conv(c, 2 + 2 * b)))
        c = tf.nn.relu(inorm(conv(c, 3 + 2 * b))) + skip
    c = tf.nn.relu(conv(tf.nn.relu(conv(c, 10)), 11))
    return (tf.nn.tanh(conv(c, 12)) * 0.58 + 0.5).numpy()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("published")
    values = authors_values()
    return write_tf1_checkpoint(root / "iphone_orig", values), values


def test_an_imported_checkpoint_computes_the_authors_graph(checkpoint, tmp_path):
    prefix, values = checkpoint
    result = api.import_weights("dped_tf1", prefix, tmp_path / "run")
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["model"] == "dped" and config["model_kwargs"] == {"output_scale": 0.58} and config["data"]["spec"] == ""
    imported = config["imported"]
    assert imported["format"] == "dped_tf1" and imported["source"] == prefix and len(imported["sha256"]) == 64
    assert [p.rsplit("/", 1)[1] for p in imported["files"]] == ["iphone_orig.index", "iphone_orig.data-00000-of-00001"]
    from mobile_enhance.training import load_generator

    model, _ = load_generator(tmp_path / "run")
    image = np.random.default_rng(1).random((2, 40, 48, 3), dtype=np.float32)
    np.testing.assert_allclose(model(image).numpy(), authors_graph(values, image), atol=1e-4, rtol=0)  # the bound
    assert result["run_dir"] == tmp_path / "run"
    # the run folder is a run: a float32 export without data, and a fine-tune start
    (r,) = api.export(tmp_path / "d.tflite", run_dir=tmp_path / "run", size="40x48")
    from mobile_enhance.runtime import run_tflite

    np.testing.assert_allclose(run_tflite(str(r.path), image), authors_graph(values, image), atol=1e-4, rtol=0)
    assert r.sidecar["run_dir"] == str(tmp_path / "run") and r.sidecar["model_kwargs"] == {"output_scale": 0.58}
    from dped_tree import make_dped_tree

    from mobile_enhance.training import Trainer, resolve

    dped = make_dped_tree(tmp_path / "d", train=2, test=1, size=32)
    ft = resolve("dped", {"data.spec": f"dped:{dped}", "data.patch_size": 32, "data.batch_size": 2, "losses": "pixel",
                          "init_from": str(tmp_path / "run"), "model_kwargs": {"output_scale": 0.58}})
    trainer = Trainer(ft, tmp_path / "ft", progress=False)
    for a, b in zip(model.get_weights(), trainer.generator.get_weights()):
        np.testing.assert_array_equal(a, b)


def broken_sources(tmp_path, values):
    wrong = dict(values, **{"generator/W1": np.zeros((9, 9, 3, 32), np.float32)})
    missing = {k: v for k, v in values.items() if k != "generator/Variable_15"}
    other = {"discriminator/W1": np.zeros((11, 11, 1, 48), np.float32)}
    yield write_tf1_checkpoint(tmp_path / "wrong", wrong), "variable generator/W1 has shape [9, 9, 3, 32], DPED's generator has [9, 9, 3, 64]"
    yield write_tf1_checkpoint(tmp_path / "missing", missing), "variable generator/Variable_15 is missing"
    yield write_tf1_checkpoint(tmp_path / "other", other), "variable generator/W1 is missing (40 of DPED's 40 generator variables absent, 0"
    yield str(tmp_path / "nowhere"), "no TF1 checkpoint there (no nowhere.index)"
    (tmp_path / "junk.index").write_bytes(b"not a checkpoint at all")
    (tmp_path / "junk.data-00000-of-00001").write_bytes(b"\0" * 64)
    yield str(tmp_path / "junk"), "junk.index: not a TF checkpoint"
    good = write_tf1_checkpoint(tmp_path / "cut", values)
    data = tmp_path / "cut.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    yield good, "cannot be read"


def test_broken_sources_are_refused_naming_file_and_variable(checkpoint, tmp_path, capsys):
    _, values = checkpoint
    for i, (source, message) in enumerate(broken_sources(tmp_path, values)):
        run_dir = tmp_path / f"run{i}"
        with pytest.raises(UserError) as info:
            api.import_weights("dped_tf1", source, run_dir)
        assert message in str(info.value) and str(info.value).startswith(source), info.value
        assert not run_dir.exists()
        assert cli(["mobile-enhance", "import", "--format=dped_tf1", f"--checkpoint={source}", f"--run_dir={run_dir}"]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert not run_dir.exists()
    assert cli(["mobile-enhance", "import", "--format=dped", "--checkpoint=x", f"--run_dir={tmp_path / 'y'}"]) == 2
    assert "unknown import format 'dped'; known import formats: dped_tf1" in capsys.readouterr().err


def test_an_existing_run_folder_is_not_overwritten(checkpoint, tmp_path):
    prefix, _ = checkpoint
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="already exists and is not empty"):
        api.import_weights("dped_tf1", prefix, tmp_path / "run")
    assert (tmp_path / "run" / "keep.txt").read_text() == "mine"


def test_an_imported_run_exports_int8_from_any_photos(checkpoint, tmp_path):
    # no data source of its own: calibration and fidelity from photos:FOLDER, and since those
    # have no targets of the model's domain, fidelity against the float model only
    from dped_tree import make_photo_folder

    prefix, _ = checkpoint
    api.import_weights("dped_tf1", prefix, tmp_path / "run")
    photos = make_photo_folder(tmp_path / "photos", count=6)
    (r,) = api.export(tmp_path / "d8.tflite", run_dir=tmp_path / "run", quant="int8", size="32x32", data=f"photos:{photos}",
                      calibration=8, tune_ranges=0, fidelity_images=4, min_psnr=0)  # random weights: no floor
    f = r.sidecar["fidelity"]
    assert not [k for k in f if k.endswith("_vs_target")] and r.warnings == []
    assert "no targets: fidelity against the float model only" in f["images_from"] and f["tflite_vs_float"]["psnr"] > 10
    assert r.sidecar["quantization"]["mode"] == "int8" and r.sidecar["input"]["dtype"] == "uint8"
    # and such data trains nothing
    from mobile_enhance.training import resolve

    with pytest.raises(UserError, match="model 'dped' trains on paired data, not photos"):
        resolve("dped", {"data.spec": f"photos:{photos}"})
