"""``mobile_enhance.api``: each CLI subcommand as one Python call, same results, same errors.

Tiny files only: SRCNN at 16x16 / 24x24, the exact identity model and the small conv
model of ``test_enhance``, a handful of generated photos and pairs.
"""

import json
import re

import numpy as np
import pytest
from dped_tree import make_dped_tree, pairs_folder, smooth_image
from PIL import Image
from test_enhance import identity4, small_conv

from mobile_enhance import api
from mobile_enhance.cli import main as cli
from mobile_enhance.data.images import read_image
from mobile_enhance.errors import UserError
from mobile_enhance.export import convert, run_tflite
from mobile_enhance.metrics import image_metrics
from mobile_enhance.models import build_model


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """``.tflite`` files: SRCNN 16x16 float32, identity (size multiple 4), small conv."""
    root = tmp_path_factory.mktemp("api_models")
    blobs = {
        "srcnn16": convert(build_model("srcnn"), "float32", input_size=(16, 16)),
        "id4": convert(identity4(), "float32"),
        "conv": convert(small_conv(), "float32"),
    }
    paths = {}
    for name, blob in blobs.items():
        paths[name] = root / f"{name}.tflite"
        paths[name].write_bytes(blob)
    return paths


# ----------------------------------------------------------------------------- arguments


def test_sizes_from_text_or_python_values():
    assert api.parse_sizes("patch, dynamic,24x32") == [(100, 100), None, (24, 32)]
    assert api.parse_sizes([(24, 32), None, "hd"]) == [(24, 32), None, (720, 1280)]
    with pytest.raises(UserError, match="'0x8' is not HxW"):
        api.parse_sizes([(0, 8)])


# ----------------------------------------------------------------------------- export


def test_export_from_weights_writes_the_file_and_its_sidecar(tmp_path):
    model = build_model("srcnn")
    weights = tmp_path / "s.weights.h5"
    model.save_weights(str(weights))
    results = api.export(tmp_path / "s.tflite", weights=weights, model="srcnn", size=[(24, 24), "16x20"])
    assert [r.path for r in results] == [tmp_path / "s_24x24.tflite", tmp_path / "s_16x20.tflite"]
    for r, size in zip(results, ([24, 24], [16, 20])):
        assert json.loads(r.path.with_suffix(".json").read_text()) == r.sidecar
        assert r.sidecar["model"] == "srcnn" and r.sidecar["dynamic_size"] is False and r.sidecar["run_dir"] == ""
        assert r.sidecar["input"]["shape"] == [1, *size, 3] and r.sidecar["fidelity"]["size"] == size
        assert r.sidecar["source"]["files"] == [str(weights)] and r.sidecar["file"]["bytes"] == r.path.stat().st_size
        assert r.sidecar["fidelity"]["tflite_vs_float"]["psnr"] >= 60 and r.warnings == []
    x = np.random.default_rng(1).random((2, 24, 24, 3), dtype=np.float32)
    np.testing.assert_allclose(run_tflite(str(results[0].path), x), model(x).numpy(), atol=1e-4)


def test_export_warns_when_the_float_model_is_worse_than_its_input(tmp_path):
    dped = make_dped_tree(tmp_path, train=4, test=4)
    weights = tmp_path / "s.weights.h5"
    build_model("srcnn").save_weights(str(weights))  # untrained: far below its input
    (r,) = api.export(tmp_path / "s.tflite", weights=weights, model="srcnn", size="32x32", data=f"dped:{dped}", fidelity_images=2)
    f = r.sidecar["fidelity"]
    assert f["images"] == 2 and f["float_vs_target"]["psnr"] < f["input_vs_target"]["psnr"]
    gap = f["input_vs_target"]["psnr"] - f["float_vs_target"]["psnr"]
    (warning,) = r.warnings
    assert re.fullmatch(rf"at 32x32 the float model itself is {gap:.2f} dB below its unprocessed input against the targets"
                        r" \(trained on (\d+)x\1 patches: export --size=\1x\1 and let `mobile-enhance enhance` tile, "
                        r"or train on larger patches\)", warning), warning


def test_export_bad_inputs_name_the_problem(tmp_path):
    missing = tmp_path / "none.weights.h5"
    with pytest.raises(UserError, match=f"{missing}: no such weights file"):
        api.export(tmp_path / "x.tflite", weights=missing, model="srcnn")
    with pytest.raises(UserError, match="--output=FILE.tflite is required"):
        api.export(weights=missing, model="srcnn")
    with pytest.raises(UserError, match="--model_kwargs is not JSON"):
        api.export(tmp_path / "x.tflite", weights=missing, model="srcnn", model_kwargs="{depth: 2")
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- bench


def test_bench_gives_a_latency_row_and_writes_reports(files, tmp_path, capsys):
    report = api.bench(files["srcnn16"], threads="1", runs=3, warmup=0, matmul_size=64, output=tmp_path, progress=False)
    assert report["unavailable"] == []
    (row,) = report["rows"]
    assert (row["backend"], row["threads"], row["runs"]) == ("cpu", 1, 3)
    assert 0 < row["min_ms"] <= row["median_ms"] <= row["p90_ms"] and row["peak_rss_mb"] > 0
    assert report["written"] == {k: str(tmp_path / f"srcnn16.{k}") for k in ("json", "md", "png")}
    saved = json.loads((tmp_path / "srcnn16.json").read_text())
    assert saved["rows"][0]["median_ms"] == row["median_ms"] and "written" not in saved
    assert capsys.readouterr().err == ""  # progress=False: no lines


def test_bench_bad_inputs_name_the_problem(files, tmp_path):
    missing = tmp_path / "none.tflite"
    with pytest.raises(UserError, match=f"model file '{missing}' does not exist"):
        api.bench(missing, threads=[1], progress=False)
    with pytest.raises(UserError, match="--threads must be integers, got '1,two'"):
        api.bench(files["srcnn16"], threads=["1", "two"], progress=False)
    with pytest.raises(UserError, match="--model=FILE.tflite is required"):
        api.bench()


# ----------------------------------------------------------------------------- enhance


def test_enhance_writes_the_photos_and_reports_each(files, tmp_path):
    image = smooth_image(np.random.default_rng(2), (20, 28))
    Image.fromarray(image).save(tmp_path / "a.png")
    (tmp_path / "b.jpg").write_bytes(b"")
    seen = []
    report = api.enhance([tmp_path / "a.png", tmp_path / "b.jpg"], tmp_path / "out", model=files["id4"], format="png",
                         threads=1, on_model=lambda model, threads: seen.append(("model", threads)),
                         on_result=lambda done, total, result: seen.append((done, total)))
    assert seen == [("model", 1), (1, 2), (2, 2)]
    assert report.threads == 1 and str(files["id4"]) in report.model and report.warning is None
    assert report.written == 1 and [r.source for r in report.failed] == [tmp_path / "b.jpg"]
    assert str(tmp_path / "b.jpg") in report.failed[0].error and "empty file" in report.failed[0].error
    assert report.results[0].output == tmp_path / "out" / "a.png"
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out" / "a.png")), image)  # the identity model
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png"]


def test_enhance_bad_inputs_name_the_problem(files, tmp_path):
    Image.fromarray(smooth_image(np.random.default_rng(3), (16, 16))).save(tmp_path / "a.png")
    missing = tmp_path / "none.tflite"
    with pytest.raises(UserError, match=f"{missing}.*no such model file|no such model file.*{missing}"):
        api.enhance(tmp_path / "a.png", tmp_path / "out", model=missing)
    with pytest.raises(UserError, match="--quality must be in 1..100, got 0"):
        api.enhance(tmp_path / "a.png", tmp_path / "out", model=files["id4"], quality=0)
    with pytest.raises(UserError, match="give one or more photos"):
        api.enhance([], tmp_path / "out", model=files["id4"])
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match=f"{tmp_path / 'file'}: cannot create the output folder"):
        api.enhance(tmp_path / "a.png", tmp_path / "file", model=files["id4"])
    assert not (tmp_path / "out" / "a.jpg").exists()


# ----------------------------------------------------------------------------- evaluate


def test_evaluate_report_matches_direct_metrics_and_the_cli(files, tmp_path, capsys):
    spec = pairs_folder(tmp_path / "data", [(32, 40), (32, 40), (24, 24)])
    report = api.evaluate([files["id4"], files["conv"]], data=spec, output=tmp_path / "r.json")
    assert report["pairs_evaluated"] == 3 and report["pairs_skipped"] == 0 and report["phone"] is None
    assert report == json.loads((tmp_path / "r.json").read_text())
    rows = {r["name"]: r for r in report["results"]}
    assert list(rows) == ["input", "id4.tflite", "conv.tflite"]
    pairs = [(tmp_path / "data" / "in" / f"{i}.png", tmp_path / "data" / "target" / f"{i}.png") for i in range(3)]
    for name, run in (("input", lambda x: x), ("conv.tflite", lambda x: run_tflite(str(files["conv"]), x))):
        scores = [image_metrics(run(read_image(a)[None]), read_image(b)[None]) for a, b in pairs]
        for k in ("psnr", "ssim", "ms_ssim"):
            assert abs(rows[name][k] - np.mean([s[k] for s in scores])) <= 1e-4 * max(1, abs(rows[name][k])), (name, k)
            assert abs(rows["id4.tflite"][k] - rows["input"][k]) < 1e-5  # the identity scores as its input
    assert rows["conv.tflite"]["psnr"] < rows["input"]["psnr"] - 1  # a random conv is far from the identity
    # The CLI prints the same report.
    assert cli(["mobile-enhance", "evaluate", f"--model={files['id4']},{files['conv']}", f"--data={spec}",
                f"--output={tmp_path / 'cli.json'}", "--quiet"]) == 0
    assert json.loads((tmp_path / "cli.json").read_text()) == report
    assert f"{rows['conv.tflite']['psnr']:.2f}" in capsys.readouterr().out


def test_evaluate_bad_inputs_name_the_problem(files, tmp_path):
    with pytest.raises(UserError, match=f"{tmp_path / 'nowhere'}: no such folder"):
        api.evaluate(files["id4"], data=f"pairs:{tmp_path / 'nowhere'},{tmp_path}")
    with pytest.raises(UserError, match="give --model=A.tflite"):
        api.evaluate(data=f"pairs:{tmp_path},{tmp_path}")
    spec = pairs_folder(tmp_path / "data", [(24, 24)])
    Image.fromarray(np.zeros((20, 24, 3), np.uint8)).save(tmp_path / "data" / "target" / "0.png")  # misaligned
    with pytest.raises(UserError, match=f"none of the 1 pairs could be scored \\(first: {tmp_path / 'data' / 'in' / '0.png'} / "):
        api.evaluate(str(files["id4"]), data=spec)
