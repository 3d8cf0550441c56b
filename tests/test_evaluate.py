"""``mobile-enhance evaluate``: models scored against targets, beside the unprocessed input
(for super-resolution, beside a bicubic upsampling of it).

Expected figures are computed here independently: ``run_tflite`` on ``np.pad``-ed
images (not the tiling code the command uses), then the project's ``image_metrics``.
"""

import json
import shutil

import numpy as np
import pytest
from dped_tree import make_dped_tree, pairs_folder, smooth_image
from PIL import Image
from test_enhance import identity4

from mobile_enhance import api
from mobile_enhance.cli import main
from mobile_enhance.compat import keras, tf
from mobile_enhance.data.images import read_image
from mobile_enhance.errors import UserError
from mobile_enhance.export import convert, run_tflite
from mobile_enhance.metrics import image_metrics
from mobile_enhance.models import build_model
from mobile_enhance.training import TrainConfig

TINY = {"depth": 4, "blocks": 1}  # fast_dped, size multiple 4


def upsample4():
    """``(N, H, W, 3) -> (N, 4H, 4W, 3)``, bilinear: a stand-in x4 super-resolution model."""
    inp = keras.Input((None, None, 3))
    return keras.Model(inp, keras.layers.UpSampling2D(4, interpolation="bilinear")(inp))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    keras.utils.set_random_seed(0)
    model = build_model("fast_dped", **TINY)
    rng = np.random.default_rng(0)
    files = {
        "fd_float": convert(model, "float32"),
        "fd_int8": convert(model, "int8", representative=lambda: [rng.random((1, 64, 64, 3), np.float32) for _ in range(4)]),
        "id4": convert(identity4(), "float32"),
        "id4_fixed": convert(identity4(), "float32", input_size=(32, 32)),
        "up4": convert(upsample4(), "float32"),
    }
    paths = {}
    for name, blob in files.items():
        paths[name] = root / f"{name}.tflite"
        paths[name].write_bytes(blob)
    # A run folder holding the same weights as fd_float.
    run = root / "run"
    (run / "checkpoints" / "ckpt-00000001").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(TrainConfig(model="fast_dped", model_kwargs=TINY).to_json()))
    tf.train.Checkpoint(generator=model).write(str(run / "checkpoints" / "ckpt-00000001" / "ckpt"))
    (run / "checkpoints" / "latest").write_text("ckpt-00000001\n")
    paths["run"] = run
    paths["dped"] = make_dped_tree(root, test=5, size=100)
    return paths


def evaluate(capsys, *args):
    rc = main(["mobile-enhance", "evaluate", *map(str, args)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def expected(model_path, pairs, multiple):
    """Metrics of ``model_path`` on ``pairs``: reflect-pad to ``multiple``, run, crop."""
    model_rows, input_rows = [], []
    for a, b in pairs:
        x, y = read_image(a), read_image(b)
        h, w = x.shape[:2]
        padded = np.pad(x, ((0, -h % multiple), (0, -w % multiple), (0, 0)), mode="reflect")
        out = run_tflite(str(model_path), padded[None])[:, :h, :w]
        model_rows.append(image_metrics(out, y[None]))
        input_rows.append(image_metrics(x[None], y[None]))
    return ({k: float(np.mean([r[k] for r in rows])) for k in ("psnr", "ssim", "ms_ssim")} for rows in (model_rows, input_rows))


def dped_pairs(root, n):
    base = root / "iphone" / "test_data" / "patches"
    return [(base / "iphone" / f"{i}.jpg", base / "canon" / f"{i}.jpg") for i in range(n)]


def rows(report):
    return {r["name"]: r for r in report["results"]}


def close(row, metrics, tol=1e-4):
    return all(abs(row[k] - metrics[k]) <= tol * max(1.0, abs(metrics[k])) for k in ("psnr", "ssim", "ms_ssim"))


def test_dped_float_and_int8_side_by_side(setup, tmp_path, capsys):
    out_json = tmp_path / "report.json"
    rc, out, err = evaluate(capsys, f"--model={setup['fd_float']},{setup['fd_int8']}", f"--data=dped:{setup['dped']}",
                            "--phone=iphone", f"--output={out_json}")
    assert rc == 0, err
    report = json.loads(out_json.read_text())
    assert report["pairs_evaluated"] == 5 and report["pairs_skipped"] == 0 and report["image_sizes"] == {"100x100": 5}
    r = rows(report)
    assert list(r) == ["input", "fd_float.tflite", "fd_int8.tflite"]
    assert (r["fd_float.tflite"]["quant"], r["fd_int8.tflite"]["quant"]) == ("float32", "int8")
    pairs = dped_pairs(setup["dped"], 5)
    for name in ("fd_float", "fd_int8"):
        model_metrics, input_metrics = expected(setup[name], pairs, 4)
        assert close(r[f"{name}.tflite"], model_metrics), (r[f"{name}.tflite"], model_metrics)
        assert close(r["input"], input_metrics)
        assert "padding" not in r[f"{name}.tflite"]  # 100 is a multiple of 4
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["system", "kind", "quant", "PSNR"]
    assert lines[2].startswith("fd_float.tflite") and "float32" in lines[2]
    assert lines[3].startswith("fd_int8.tflite") and "int8" in lines[3]
    assert f"{r['fd_int8.tflite']['psnr']:.2f}" in lines[3]
    assert "5 pairs from dped:" in out


def test_padding_to_the_multiple_and_cropping_back(setup, tmp_path, capsys):
    spec = pairs_folder(tmp_path, [(90, 94), (90, 94), (61, 75)])
    out_json = tmp_path / "r.json"
    rc, out, err = evaluate(capsys, f"--model={setup['id4']},{setup['fd_float']},{setup['id4_fixed']}", f"--data={spec}",
                            f"--output={out_json}")
    assert rc == 0, err
    report = json.loads(out_json.read_text())
    r = rows(report)
    # The identity model, padded and cropped back, scores exactly as the input does.
    for k in ("psnr", "ssim", "ms_ssim"):
        assert abs(r["id4.tflite"][k] - r["input"][k]) < 1e-5
        assert abs(r["id4_fixed.tflite"][k] - r["input"][k]) < 1e-5
    assert r["id4.tflite"]["padding"] == {"90x94 -> 92x96": 2, "61x75 -> 64x76": 1}
    assert r["id4_fixed.tflite"]["padding"] == {"90x94 -> tiles of 32x32": 2, "61x75 -> tiles of 32x32": 1}
    assert "id4.tflite: 2 images 90x94 -> 92x96 (reflect-padded and cropped back; size multiple 4)" in out
    assert "id4_fixed.tflite: 1 image 61x75 -> tiles of 32x32 (tiled; fixed 32x32 input)" in out
    pairs = [(tmp_path / "in" / f"{i}.png", tmp_path / "target" / f"{i}.png") for i in range(3)]
    model_metrics, _ = expected(setup["fd_float"], pairs, 4)  # np.pad reflect, independently
    assert close(r["fd_float.tflite"], model_metrics), (r["fd_float.tflite"], model_metrics)


def test_run_dir_generator_matches_its_float_export(setup, tmp_path, capsys):
    out_json = tmp_path / "r.json"
    rc, out, err = evaluate(capsys, f"--run_dir={setup['run']}", f"--model={setup['fd_float']}", f"--data=dped:{setup['dped']}",
                            "--limit=3", f"--output={out_json}")
    assert rc == 0, err
    report = json.loads(out_json.read_text())
    assert report["pairs_evaluated"] == 3
    r = rows(report)
    keras_row, tflite_row = r["run"], r["fd_float.tflite"]
    assert keras_row["kind"] == "keras" and keras_row["model"] == "fast_dped" and keras_row["size_multiple"] == 4
    assert abs(keras_row["psnr"] - tflite_row["psnr"]) < 1e-3 and abs(keras_row["ssim"] - tflite_row["ssim"]) < 1e-5
    assert abs(keras_row["psnr"] - r["input"]["psnr"]) > 1  # a random generator is far from the identity


def test_bad_pairs_are_skipped_and_named(setup, tmp_path, capsys):
    spec = pairs_folder(tmp_path, [(40, 40)] * 4)
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(tmp_path / "target" / "1.png")  # misaligned
    (tmp_path / "in" / "2.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")  # unreadable
    out_json = tmp_path / "r.json"
    rc, out, err = evaluate(capsys, f"--model={setup['id4']}", f"--data={spec}", f"--output={out_json}", "--quiet")
    assert rc == 1
    skipped = [ln for ln in err.splitlines() if ": skipped: " in ln]
    assert len(skipped) == 2
    assert str(tmp_path / "in" / "1.png") in skipped[0] and "40x40 but target is 40x30" in skipped[0]
    assert str(tmp_path / "in" / "2.png") in skipped[1] and "cannot be read as an image" in skipped[1]
    assert "2 of 4 pairs skipped" in err
    report = json.loads(out_json.read_text())
    assert report["pairs_evaluated"] == 2 and report["pairs_skipped"] == 2 and len(report["skipped"]) == 2
    assert "2 pairs from pairs:" in out and "2 skipped" in out


def test_bad_arguments_are_one_line(setup, tmp_path, capsys):
    partial = tmp_path / "partial"
    shutil.copytree(setup["dped"] / "iphone" / "training_data", partial / "iphone" / "training_data")
    cases = [
        ([f"--model={setup['id4']}", f"--data=dped:{tmp_path / 'nowhere'}"], f"{tmp_path / 'nowhere'}: no such folder"),
        ([f"--model={setup['id4']}", f"--data=dped:{partial}"], str(partial / "iphone" / "test_data" / "patches" / "iphone")),
        ([f"--model={setup['id4']}", f"--data=dped:{setup['dped']}", "--phone=sony"], "test_data/patches/sony: missing"),
        ([f"--model={setup['id4']}", "--data=flickr:x"], "unknown evaluation data kind 'flickr'"),
        ([f"--data=dped:{setup['dped']}"], "give --model=A.tflite"),
        ([f"--model={tmp_path / 'none.tflite'}", f"--data=dped:{setup['dped']}"], "no such model file"),
        ([f"--model={setup['id4']}", f"--data=dped:{setup['dped']}", f"--output={tmp_path / 'no' / 'r.json'}"], "does not exist"),
        ([f"--model={setup['id4']}", f"--data=dped:{setup['dped']}", "--limit=0"], "--limit must be >= 1"),
    ]
    for args, words in cases:
        rc, _, err = evaluate(capsys, *args)
        assert rc == 2 and words in err and len(err.strip().splitlines()) == 1, (args, err)


# ----------------------------------------------------------------------------- super-resolution


def sr_pairs(root, hr_sizes, seed=0):
    """``root/lr`` and ``root/hr``: smooth random HR images and their bicubic quarter-size
    LR images (PIL), paired by name; returns the ``pairs:LR,HR`` spec and the pairs."""
    rng = np.random.default_rng(seed)
    for sub in ("lr", "hr"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    pairs = []
    for i, (h, w) in enumerate(hr_sizes):
        hr = Image.fromarray(smooth_image(rng, (h, w)))
        hr.save(root / "hr" / f"{i}.png")
        hr.resize((w // 4, h // 4), Image.BICUBIC).save(root / "lr" / f"{i}.png")
        pairs.append((root / "lr" / f"{i}.png", root / "hr" / f"{i}.png"))
    return f"pairs:{root / 'lr'},{root / 'hr'}", pairs


def mean_metrics(scores):
    return {k: float(np.mean([s[k] for s in scores])) for k in ("psnr", "ssim", "ms_ssim")}


def test_super_resolution_is_scored_against_hr_beside_bicubic(setup, tmp_path):
    spec, pairs = sr_pairs(tmp_path, [(96, 128), (96, 128), (64, 80), (100, 100)])  # the last LR is 25x25
    Image.fromarray(np.zeros((24, 30, 3), np.uint8)).save(tmp_path / "lr" / "1.png")  # HR 128x96 is not 4x 30x24
    lines = []
    report = api.evaluate(setup["up4"], data=spec, on_pair=lambda done, total, error: error and lines.append(error))
    assert report["upscale"] == 4 and report["pairs_evaluated"] == 3 and report["pairs_skipped"] == 1
    assert report["image_sizes"] == {"24x32 -> 96x128": 1, "16x20 -> 64x80": 1, "25x25 -> 100x100": 1}
    bad_lr, bad_hr = tmp_path / "lr" / "1.png", tmp_path / "hr" / "1.png"
    assert lines == report["skipped"] == [
        f"{bad_lr} / {bad_hr}: input is 30x24 and target 128x96, but the models upscale x4 (target should be 120x96)"]
    rows = {r["name"]: r for r in report["results"]}
    assert list(rows) == ["bicubic x4", "up4.tflite"]
    assert rows["bicubic x4"]["kind"] == "bicubic" and rows["up4.tflite"]["upscale"] == 4
    good = [pairs[i] for i in (0, 2, 3)]
    bicubic, model = [], []
    for a, b in good:
        lr, hr = Image.open(a).convert("RGB"), read_image(b)
        up = np.asarray(lr.resize((hr.shape[1], hr.shape[0]), Image.BICUBIC), np.float32)[None] / 255
        bicubic.append(image_metrics(up, hr[None]))
        out = run_tflite(str(setup["up4"]), read_image(a)[None])
        assert out.shape == (1, *hr.shape)
        model.append(image_metrics(out, hr[None]))
    assert close(rows["bicubic x4"], mean_metrics(bicubic), 1e-6), (rows["bicubic x4"], mean_metrics(bicubic))
    assert close(rows["up4.tflite"], mean_metrics(model), 1e-5), (rows["up4.tflite"], mean_metrics(model))
    assert rows["bicubic x4"]["psnr"] != rows["up4.tflite"]["psnr"]


def test_super_resolution_through_the_cli(setup, tmp_path, capsys):
    spec, _ = sr_pairs(tmp_path, [(64, 64), (48, 80)])
    out_json = tmp_path / "r.json"
    rc, out, err = evaluate(capsys, f"--model={setup['up4']}", f"--data={spec}", f"--output={out_json}", "--quiet")
    assert rc == 0, err
    report = json.loads(out_json.read_text())
    rows = {r["name"]: r for r in report["results"]}
    lines = out.splitlines()
    assert lines[0].split() == ["system", "kind", "quant", "PSNR", "dB", "vs", "bicubic", "SSIM", "MS-SSIM"]
    assert lines[1].startswith("bicubic x4") and f"{rows['bicubic x4']['psnr']:.2f}" in lines[1]
    gain = rows["up4.tflite"]["psnr"] - rows["bicubic x4"]["psnr"]
    assert lines[2].startswith("up4.tflite") and f"{gain:+.2f}" in lines[2]
    assert "2 pairs from pairs:" in out


def test_models_of_different_upscales_are_refused(setup, tmp_path, capsys):
    spec, _ = sr_pairs(tmp_path, [(64, 64)])
    with pytest.raises(UserError, match=r"the models upscale differently \(id4.tflite x1, up4.tflite x4\)"):
        api.evaluate([setup["id4"], setup["up4"]], data=spec)
    rc, _, err = evaluate(capsys, f"--model={setup['id4']},{setup['up4']}", f"--data={spec}")
    assert rc == 2 and "upscale differently" in err and len(err.strip().splitlines()) == 1, err
    # A set of the other kind, either way round: one line at the first pair, exit 2
    lr, hr = tmp_path / "lr" / "0.png", tmp_path / "hr" / "0.png"
    with pytest.raises(UserError, match=r"x4 pairs \(16x16 -> 64x64\), but id4.tflite upscales x1: give same-size pairs"):
        api.evaluate(setup["id4"], data=spec)
    rc, _, err = evaluate(capsys, f"--model={setup['up4']}", f"--data=dped:{setup['dped']}")
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert "same-size pairs (100x100 -> 100x100), but up4.tflite upscales x4: give pairs whose targets are 4x their inputs" in err
    assert f"{lr} / {hr}" not in err and "test_data/patches/iphone/" in err
