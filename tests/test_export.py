"""Export: every model in every mode, the fidelity guard, sidecars, sizes, CLI."""

import json
import re
import time

import numpy as np
import pytest
from card_lists import one_card_per_builder
from dped_tree import make_dped_tree, make_photo_folder

from mobile_enhance.cli import main as cli
from mobile_enhance.compat import keras
from mobile_enhance.data import make_source
from mobile_enhance.export import (
    DEFAULT_TUNE_SWEEPS,
    EXPORT_MODES,
    ExportError,
    FidelityError,
    convert,
    export_model,
    export_saved_model,
    run_tflite,
    verify_sidecar,
)
from mobile_enhance.export.exporter import _check_dynamic
from mobile_enhance.models import MODELS, build_model


@pytest.fixture(scope="module")
def dped_root(tmp_path_factory):
    return make_dped_tree(tmp_path_factory.mktemp("dped"), train=8, test=4, size=64)


@pytest.fixture(scope="module")
def source(dped_root):
    return make_source(f"dped:{dped_root}", 32, augment=False)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return make_photo_folder(tmp_path_factory.mktemp("photos"), count=6, size=(64, 80))


# The card x mode matrix took over half of the default suite on the 2-core machine. By
# default every card exports in the two modes users ship (float32, int8) and one card,
# fast_dped (the shipped default, with instance norms), in every mode; the other cards'
# float16, dynamic and qat_int8 files, and srresnet's whole row (its float32 and int8 exports
# are checked by default in tests/test_srresnet.py), run under the slow marker, each with a
# float32 file to compare sizes against.
FULL_ROW = "fast_dped"
SLOW_ROWS = {"srresnet"}
SHIPPED_MODES = ("float32", "int8")
OTHER_MODES = ("float32",) + tuple(m for m in EXPORT_MODES if m not in SHIPPED_MODES)
#: the largest fraction of the float32 file's bytes each smaller mode's file may take
SIZE_FRACTIONS = {"int8": 0.35, "float16": 0.6}
# int8 range tuning quantizes the file a few hundred times, over half of a large card's int8
# export: at its default for srcnn's files (few activations), one pass for muxdemux's qat_int8
# file (the most kinds of ops; most of the time of its int8 export), none for the others (the
# unit test of tune_ranges is in test_models)
TUNE_SWEEPS = {("srcnn", "int8"): DEFAULT_TUNE_SWEEPS, ("srcnn", "qat_int8"): DEFAULT_TUNE_SWEEPS, ("muxdemux", "qat_int8"): 1}


def _matrix():
    for name in one_card_per_builder():
        if name == FULL_ROW:
            yield pytest.param(name, EXPORT_MODES, id=f"{name}-all")
            continue
        marks = [pytest.mark.slow] if name in SLOW_ROWS else []
        yield pytest.param(name, SHIPPED_MODES, marks=marks, id=f"{name}-shipped")
        yield pytest.param(name, OTHER_MODES, marks=[pytest.mark.slow], id=f"{name}-rest")


@pytest.mark.parametrize("name,modes", list(_matrix()))
def test_every_model_exports_in_every_mode(name, modes, source, photos, tmp_path):
    keras.utils.set_random_seed(0)
    model = build_model(name)
    s = MODELS[name].upscale
    # the 32x32 targets: DPED pairs for a same-size card, sr pairs at its upscale for the others
    data = source if s == 1 else make_source(f"sr:{photos}", 32, augment=False, upscale=s)
    h = w = 32 // s
    sizes = {}
    for mode in modes:
        sweeps = TUNE_SWEEPS.get((name, mode), 0)
        (result,) = export_model(model, tmp_path / f"{name}_{mode}.tflite", mode, [(h, w)], data, model_name=name, min_psnr=0, qat_steps=2,
                                 calibration_count=8, fidelity_count=4, tune_sweeps=sweeps)
        sidecar = json.loads(result.path.with_suffix(".json").read_text())
        assert sidecar == result.sidecar and verify_sidecar(result.path) == []
        assert sidecar["quantization"]["mode"] == mode and sidecar["input"]["shape"] == [1, h, w, 3]
        assert sidecar["upscale"] == s and sidecar["output"]["shape"] == [1, s * h, s * w, 3]
        fid = sidecar["fidelity"]
        baseline = "input_vs_target" if s == 1 else "bicubic_vs_target"
        assert fid["images"] == 4 and {"tflite_vs_float", "tflite_vs_target", "float_vs_target", baseline} <= set(fid)
        x = data.validation()[0][0][None][:, :h, :w]
        out = run_tflite(str(result.path), x)
        assert out.shape == (1, s * h, s * w, 3) and np.isfinite(out).all()
        sizes[mode] = sidecar["file"]["bytes"]
        if mode in ("int8", "qat_int8"):
            assert -0.01 <= out.min() and out.max() <= 1.01  # an integer output still decodes to the image range
            assert sidecar["input"]["dtype"] == "uint8" and sidecar["input"]["quantization"]["scale"] > 0
            norms = sum(type(layer).__name__ == "InstanceNormalization" for layer in model.layers)
            assert sidecar["quantization"]["instance_norms_equalized"] == norms
            assert sidecar["quantization"]["concat_inputs_rescaled"] >= 0  # random weights: rarely a 4x mismatch
            assert sidecar["quantization"]["calibration_percentile"] in (99.9, 100.0)
            tuning = sidecar["quantization"]["range_tuning"]  # qat_int8 too: the converter calibrates inside its norms
            if sweeps:
                assert 1 <= tuning["sweeps"] <= sweeps and tuning["images"] == 8 and tuning["ranges"] > 0
                assert tuning["psnr_vs_float_after"] >= tuning["psnr_vs_float_before"]
            else:
                assert tuning is None
        if mode == "float32":  # the file computes the Keras graph (rewrites and folding included)
            np.testing.assert_allclose(out, model(x, training=False).numpy(), atol=1e-4, rtol=0)
            assert fid["tflite_vs_float"]["psnr"] > 60
    for mode, fraction in SIZE_FRACTIONS.items():
        if mode in sizes:
            assert sizes[mode] < fraction * sizes["float32"], mode


def test_export_modes_are_one_table_the_sidecar_and_the_cli_share():
    from absl import flags

    from mobile_enhance.cli import export_cmd
    from mobile_enhance.export.modes import DEFAULT_MIN_PSNR, MODES, ExportOptions, get_mode
    from mobile_enhance.runtime.sidecar import MODES as SIDECAR_MODES

    assert tuple(MODES) == EXPORT_MODES == SIDECAR_MODES
    assert all(MODES[name].name == name for name in MODES)
    fv = flags.FlagValues()
    export_cmd.define_flags(fv)
    assert fv["quant"].parser.enum_values == list(MODES)
    assert DEFAULT_MIN_PSNR == {"float32": 60.0, "float16": 40.0, "dynamic": 30.0, "int8": 28.0, "qat_int8": 28.0}
    assert {name: m.converter for name, m in MODES.items()} == {
        "float32": "float32", "float16": "float16", "dynamic": "dynamic", "int8": "int8", "qat_int8": "int8"}
    options = ExportOptions(io_dtype="int8", calibration_count=5, qat_steps=7, qat_target="float", qat_ranges="minmax")
    floats = {"io_dtype": "float32", "calibration_images": 0, "qat_steps": 0, "qat_target": None, "qat_ranges": None}
    assert {name: m.settings(options) for name, m in MODES.items()} == {
        "float32": floats, "float16": floats, "dynamic": floats,
        "int8": {**floats, "io_dtype": "int8", "calibration_images": 5},
        "qat_int8": {"io_dtype": "int8", "calibration_images": 5, "qat_steps": 7, "qat_target": "float", "qat_ranges": "minmax"}}
    assert all(list(m.settings(options)) == list(floats) for m in MODES.values())  # one key order in every sidecar
    from mobile_enhance.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="unknown quantization mode 'int4'; known quantization modes: dynamic, float16"):
        get_mode("int4")
    with pytest.raises(UnknownNameError, match="int4"):
        export_model(build_model("srcnn"), "unused.tflite", "int4")


def test_the_table_and_the_export_help_import_no_tensorflow():
    import subprocess
    import sys

    code = ("import sys, io, contextlib; from mobile_enhance.export.modes import MODES; from mobile_enhance.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out: main(['mobile-enhance', 'export', '--help'])\n"
            "assert 'qat_int8: full integer' in out.getvalue(), out.getvalue()\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tf_keras', 'keras')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_guard_refuses_a_bad_calibration_and_writes_nothing(tmp_path):
    root = make_dped_tree(tmp_path, train=6, test=4, size=64)
    for p in (root / "iphone" / "training_data" / "iphone").glob("*.jpg"):
        from PIL import Image

        Image.new("RGB", (64, 64)).save(p)  # calibration sees only black images
    bad = make_source(f"dped:{root}", 32, augment=False)
    keras.utils.set_random_seed(0)
    model = build_model("srcnn")
    # a model with a real response to its input, so a collapsed range shows
    model.get_layer("conv3").set_weights([w * 50 for w in model.get_layer("conv3").get_weights()])
    out = tmp_path / "srcnn_int8.tflite"
    with pytest.raises(FidelityError, match=r"srcnn_int8.tflite: not written: int8 output is .* below the floor"):
        export_model(model, out, "int8", [(32, 32)], bad, model_name="srcnn", min_psnr=30)
    assert not out.exists() and not out.with_suffix(".json").exists() and not list(tmp_path.glob(".*tmp*"))
    (forced,) = export_model(model, out, "int8", [(32, 32)], bad, model_name="srcnn", min_psnr=30, force=True)
    assert forced.sidecar["forced"] and out.exists()


def test_several_sizes_and_dynamic(source, tmp_path):
    model = build_model("fast_dped")
    results = export_model(model, tmp_path / "fd.tflite", "float32", [(32, 32), (64, 96), None], source, model_name="fast_dped")
    assert [r.path.name for r in results] == ["fd_32x32.tflite", "fd_64x96.tflite", "fd_dynamic.tflite"]
    assert results[1].sidecar["input"]["shape"] == [1, 64, 96, 3]
    assert results[2].sidecar["dynamic_size"] and results[2].sidecar["input"]["shape"] == [1, None, None, 3]
    x = np.random.default_rng(0).random((1, 48, 40, 3), dtype=np.float32)
    np.testing.assert_allclose(run_tflite(str(results[2].path), x), model(x).numpy(), atol=1e-4)


def test_fixed_size_graph_is_reported_as_not_dynamic():
    # A file converted at a fixed size has RSGUNet's global-feature BROADCAST_TO folded to
    # that size; the check runs the file at two other sizes and names the culprit.
    blob = convert(build_model("rsgunet"), "float32", input_size=(32, 32))
    with pytest.raises(ExportError, match="cannot be exported with a dynamic size.*BROADCAST_TO.*--size=HxW"):
        _check_dynamic(blob, 32, "rsgunet")


def test_sidecar_mismatch_is_found(source, tmp_path):
    (r,) = export_model(build_model("srcnn"), tmp_path / "s.tflite", "float16", [(32, 32)], source, model_name="srcnn")
    side = r.path.with_suffix(".json")
    good = json.loads(side.read_text())
    size = r.path.stat().st_size

    def problems_with(change):
        data = json.loads(json.dumps(good))
        change(data)
        side.write_text(json.dumps(data))
        return verify_sidecar(r.path)

    assert problems_with(lambda d: None) == []
    assert problems_with(lambda d: d["file"].update(bytes=size + 1)) == [
        f"{side}: file.bytes is {size + 1} but the file has {size}: it belongs to another export (re-export the pair or remove the sidecar)"]
    assert problems_with(lambda d: d["input"].update(dtype="int8")) == [f"{side}: input.quantization is missing (required for int8)"]
    assert problems_with(lambda d: d["input"].update(dtype="uint8", quantization={"scale": 1 / 255, "zero_point": 0})) == [
        f"{side}: input.dtype is \"uint8\" but the file has \"float32\""]
    assert problems_with(lambda d: d.update(ops=["CONV_2D"])) == [f"{side}: ops differ from the file's operators"]


def test_saved_model(tmp_path):
    from mobile_enhance.compat import tf

    model = build_model("srcnn")
    path = export_saved_model(model, tmp_path / "sm")
    loaded = tf.saved_model.load(str(path))
    x = np.random.default_rng(1).random((1, 20, 24, 3), dtype=np.float32)
    np.testing.assert_allclose(loaded.signatures["serving_default"](phone=x)["enhanced"].numpy(), model(x).numpy(), atol=1e-6)


def test_cli_export_from_a_run_and_from_weights(dped_root, tmp_path, capsys):
    run = tmp_path / "run"
    assert cli(["mobile-enhance", "train", "--model=fast_dped", f"--data=dped:{dped_root}", f"--run_dir={run}",
                "--steps=2", "--batch_size=2", "--patch_size=32", "--losses=pixel", "--quiet"]) == 0
    out = tmp_path / "fd_int8.tflite"
    assert cli(["mobile-enhance", "export", f"--run_dir={run}", "--quant=int8", "--size=32x32", f"--output={out}", "--min_psnr=0",
                "--fidelity_images=3", "--calibration=8", "--tune_ranges=1"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "vs targets" in printed
    assert re.search(r"int8 ranges tuned: \d+ of \d+ changed, [\d.]+ -> [\d.]+ dB vs float on 8 calibration images", printed)
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["model"] == "fast_dped" and sidecar["source"]["sha256"] and sidecar["fidelity"]["images"] == 3
    f = sidecar["fidelity"]  # a two-step model: said plainly when it is worse than doing nothing
    assert f["float_vs_target"]["psnr"] < f["input_vs_target"]["psnr"] and "warning: at 32x32 the float model itself is" in printed
    weights = tmp_path / "w.weights.h5"
    build_model("srcnn").save_weights(str(weights))
    assert cli(["mobile-enhance", "export", f"--weights={weights}", "--model=srcnn", "--size=24x24", f"--output={tmp_path / 's.tflite'}"]) == 0
    # mistakes: one line, exit 2
    assert cli(["mobile-enhance", "export", f"--weights={weights}", f"--output={tmp_path / 'x.tflite'}"]) == 2
    assert cli(["mobile-enhance", "export", f"--run_dir={tmp_path / 'nope'}", f"--output={tmp_path / 'x.tflite'}"]) == 2
    assert cli(["mobile-enhance", "export", f"--weights={weights}", "--model=srcnn", "--quant=int8", f"--output={tmp_path / 'x.tflite'}"]) == 2
    assert cli(["mobile-enhance", "export", f"--weights={weights}", "--model=rsgunet", f"--output={tmp_path / 'x.tflite'}"]) == 2
    err = capsys.readouterr().err
    assert "needs --model" in err and "not a run folder" in err and "needs a representative set" in err
    assert "not weights of a rsgunet model" in err or "multiples of 32" in err
    assert "Traceback" not in err and not (tmp_path / "x.tflite").exists()


def test_shipped_models_match_their_sidecars():
    from pathlib import Path

    shipped = sorted((Path(__file__).resolve().parents[1] / "tflite_models").glob("*.tflite"))
    assert shipped, "tflite_models/ ships no model"
    for path in shipped:
        assert verify_sidecar(path) == [], path
        sidecar = json.loads(path.with_suffix(".json").read_text())
        h, w = sidecar["input"]["shape"][1:3]
        out = run_tflite(str(path), np.full((1, h, w, 3), 0.5, np.float32))
        s = sidecar["upscale"]
        assert out.shape == tuple(sidecar["output"]["shape"]) == (1, s * h, s * w, 3) and np.isfinite(out).all()


def _benchmark_script(name: str):
    """benchmarks/NAME.py as a module (the benchmarks are scripts, not part of the package)."""
    import importlib.util

    from mobile_enhance.benchmark import REPO_ROOT

    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "benchmarks" / f"{name}.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_quantization_fidelity_script(dped_root, tmp_path):
    from mobile_enhance.training import resolve, train

    config = resolve("srcnn", {"data.spec": f"dped:{dped_root}", "data.patch_size": 32, "data.batch_size": 2, "steps": 2,
                               "eval_every": 2, "checkpoint_every": 2})
    train(config, tmp_path / "run", progress=False)
    script = _benchmark_script("quantization_fidelity")
    out = tmp_path / "out"
    assert script.main([str(tmp_path / "run"), "--qat_steps=1", "--calibration=2,4", "--fidelity_count=4", f"--out={out}"]) == 0
    rows = json.loads((out / "quantization.json").read_text())["rows"]
    assert [(r["mode"], r["calibration_images"]) for r in rows] == [
        ("float32", 0), ("int8", 2), ("int8", 4), ("qat_int8", 2), ("qat_int8", 4), ("int8_untuned", 2), ("int8_untuned", 4),
        ("int8_minmax", 2), ("int8_minmax", 4)]
    base = rows[0]
    for r in rows:
        assert r["psnr_loss_vs_float32"] == pytest.approx(base["psnr_vs_target"] - r["psnr_vs_target"], abs=1e-3)
        assert r["meets_targets"] == (r["mode"] == "float32" or (r["psnr_loss_vs_float32"] <= 0.3 and r["size_ratio_vs_float32"] <= 0.3)
                                      or (r["mode"] == "qat_int8" and r["psnr_loss_vs_float32"] <= 0.3))
    assert all(r["measured"] == time.strftime("%Y-%m-%d") and r["model_kwargs"] == {} for r in rows)
    assert "| run | srcnn | int8 | 2 |" in (out / "quantization.md").read_text()


def test_quantization_fidelity_keeps_rows_of_runs_not_measured_again(tmp_path):
    script = _benchmark_script("quantization_fidelity")
    path = tmp_path / "quantization.json"
    with pytest.raises(SystemExit, match="no earlier results"):
        script._kept_rows(path, ["runs/a"], ["runs/b"])
    rows = [{"run": "runs/a", "mode": "float32"}, {"run": "runs/b", "mode": "float32"}, {"run": "runs/a", "mode": "int8"}]
    path.write_text(json.dumps({"rows": rows}))
    assert script._kept_rows(path, ["runs/a"], ["runs/b"]) == [rows[0], rows[2]]
    assert script._kept_rows(path, [], ["runs/b"]) == []
    with pytest.raises(SystemExit, match="has no rows of runs/c"):
        script._kept_rows(path, ["runs/a", "runs/c"], ["runs/b"])
    with pytest.raises(SystemExit, match="overlap: runs/b"):
        script._kept_rows(path, ["runs/b"], ["runs/b"])
    path.write_text("[1, 2]")
    with pytest.raises(SystemExit, match="not a quantization results file"):
        script._kept_rows(path, ["runs/a"], ["runs/b"])


def test_quantization_debug_script_ranks_tensors_by_error(dped_root, tmp_path):
    from mobile_enhance.training import resolve, train

    config = resolve("fast_dped", {"data.spec": f"dped:{dped_root}", "data.patch_size": 32, "data.batch_size": 2, "steps": 2, "losses": "pixel",
                                   "eval_every": 2, "checkpoint_every": 2, "losses": "pixel"})
    train(config, tmp_path / "run", progress=False)
    script = _benchmark_script("quantization_debug")
    name, rows = script.layer_errors(tmp_path / "run", calibration=4, debug_images=2)
    assert name == "fast_dped" and rows
    ratios = [r["rmse_over_scale"] for r in rows]
    assert ratios == sorted(ratios, reverse=True) and ratios[0] > 0
    assert {"CONV_2D", "MEAN"} <= {r["op"] for r in rows}
    assert script.main([str(tmp_path / "run"), "--calibration=4", "--debug_images=2", "--top=3", f"--out={tmp_path}"]) == 0
    table = (tmp_path / "quantization_debug_fast_dped.md").read_text()
    assert table.count("\n| ") == 4  # header + 3 rows


def test_qat_finetune_is_reproducible(source):
    # muxdemux draws noise in training: the fine-tune must still give the same weights twice
    from mobile_enhance.quantization import qat_finetune

    keras.utils.set_random_seed(0)
    model = build_model("muxdemux")
    first, second = (qat_finetune(model, source, steps=3, batch_size=2).get_weights() for _ in range(2))
    assert all(np.array_equal(a, b) for a, b in zip(first, second))


def test_qat_target_float_keeps_the_float_model_and_data_follows_the_targets(source):
    # an untrained model is far from the targets: fine-tuned to its own float output it
    # must stay near it, fine-tuned to the data it must move towards the targets
    from mobile_enhance.errors import UnknownNameError
    from mobile_enhance.quantization import qat_finetune

    keras.utils.set_random_seed(0)
    model = build_model("srcnn")
    x, y = (np.stack(a) for a in zip(*source.validation()[:4]))
    reference = model(x).numpy()

    def distances(target):
        qat = qat_finetune(model, source, steps=40, learning_rate=1e-3, batch_size=4, target=target)
        out = qat(x, training=False).numpy()
        return float(np.mean(np.abs(out - reference))), float(np.mean(np.abs(out - y)))

    to_float, to_data = distances("float"), distances("data")
    assert to_float[0] < to_data[0] and to_data[1] < to_float[1], (to_float, to_data)
    with pytest.raises(UnknownNameError, match="data, float"):
        qat_finetune(model, source, steps=1, target="teacher")
    with pytest.raises(UnknownNameError, match="median, minmax"):
        qat_finetune(model, source, steps=1, ranges="mean")


def test_int8_keeps_min_max_ranges_where_the_percentile_does_worse(source, tmp_path):
    # clipping half of every activation's values ruins the file: the calibration images
    # must show it, and the exporter must keep the min/max file instead
    keras.utils.set_random_seed(0)
    model = build_model("srcnn")
    (clipped,) = export_model(model, tmp_path / "a.tflite", "int8", [(32, 32)], source, model_name="srcnn", calibration_percentile=50)
    (plain,) = export_model(model, tmp_path / "b.tflite", "int8", [(32, 32)], source, model_name="srcnn", calibration_percentile=100)
    assert clipped.sidecar["quantization"]["calibration_percentile"] == 100.0
    assert clipped.path.read_bytes() == plain.path.read_bytes()


def test_norm_statistics_stay_exact_at_full_frame_sizes():
    """An instance norm over 720x1280 in float32: row means keep the file within 1e-4 of a
    float64 norm (one MEAN over the frame was 4e-4 off); int8 files take one MEAN for the mean
    and the variance as a BATCH_MATMUL (products summed in int32)."""
    from mobile_enhance.export.analysis import operator_names
    from mobile_enhance.models.layers import InstanceNormalization

    h, w = 720, 1280
    inputs = keras.Input((h, w, 4))
    model = keras.Model(inputs, InstanceNormalization(name="norm")(inputs))
    x = np.random.default_rng(0).random((1, h, w, 4), np.float32) * 2 + 5
    x64 = x.astype(np.float64)
    centered = x64 - x64.mean(axis=(1, 2), keepdims=True)
    exact = centered / np.sqrt((centered**2).mean(axis=(1, 2), keepdims=True) + 1e-3)
    blob = convert(model, "float32", input_size=(h, w))
    assert np.abs(run_tflite(blob, x) - exact).max() < 1e-4
    assert np.abs(model.predict(x, verbose=0) - exact).max() < 1e-4
    assert operator_names(blob).count("MEAN") == 4
    small = keras.Input((16, 16, 4))
    model = keras.Model(small, InstanceNormalization(name="norm")(small))
    calibration = [np.random.default_rng(i).random((1, 16, 16, 4), np.float32) for i in range(4)]
    blob = convert(model, "int8", input_size=(16, 16), representative=lambda: iter(calibration))
    assert operator_names(blob).count("MEAN") == 1 and operator_names(blob).count("BATCH_MATMUL") == 1


def test_frame_sizes_script_compares_whole_frames_with_tiles(dped_root, tmp_path):
    from mobile_enhance.training import resolve, train

    config = resolve("fast_dped", {"data.spec": f"dped:{dped_root}", "data.patch_size": 32, "data.batch_size": 2, "steps": 2, "losses": "pixel",
                                   "eval_every": 2, "checkpoint_every": 2})
    train(config, tmp_path / "run", progress=False)
    script = _benchmark_script("frame_sizes")
    name, patch, rows = script.rows_for(tmp_path / "run", [(32, 32), (64, 96)], pairs=2)
    assert (name, patch) == ("fast_dped", 32) and [r[:2] for r in rows] == [(32, 32), (64, 96)] and rows[0][2] == 2 <= rows[1][2] + 1
    assert rows[0][4] == pytest.approx(rows[0][5], abs=1e-3)  # one window at the patch size: the whole frame
    assert rows[1][4] != pytest.approx(rows[1][5], abs=1e-3)  # per-frame norms: tiles differ from the whole frame
    assert script.main([str(tmp_path / "run"), "--sizes=32x32", "--pairs=2", f"--out={tmp_path}"]) == 0
    assert "| fast_dped | 32x32 | 32x32 | 2 |" in (tmp_path / "frame_sizes.md").read_text()
