"""Export of an x4 super-resolution model: the file takes the low-resolution input size and
gives 4 times it, and its fidelity is measured against high-resolution targets beside a
bicubic upscale of the input."""

import json

import numpy as np
import pytest
from dped_tree import make_photo_folder
from PIL import Image

from mobile_enhance.cli import main as cli
from mobile_enhance.compat import keras
from mobile_enhance.data import make_source
from mobile_enhance.export import EXPORT_MODES, ExportError, export_model, run_tflite, verify_sidecar
from mobile_enhance.export.exporter import _check_dynamic
from mobile_enhance.export.samples import heldout_pairs, representative_inputs
from mobile_enhance.export.tflite import make_interpreter
from mobile_enhance.metrics import image_metrics
from mobile_enhance.models import MODELS, build_model
from mobile_enhance.models.layers import ScaledTanh

S = 4  # the upscale
LR = (16, 16)  # the export's input size; the source's 64x64 patches are its targets


def tiny_x4(name: str = "tiny_x4"):
    """``(N, H, W, 3) -> (N, 4H, 4W, 3)`` in [0, 1]: conv, nearest x4, conv, tanh to [0, 1]."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 3), name="lr")
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.UpSampling2D(S, name="up")(x)
    x = keras.layers.Conv2D(3, 3, padding="same", name="conv2")(x)
    return keras.Model(inputs, ScaledTanh(scale=0.5, offset=0.5, name="hr")(x), name=name)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return make_photo_folder(tmp_path_factory.mktemp("photos"), count=6, size=(120, 160))


@pytest.fixture(scope="module")
def source(photos):
    return make_source(f"sr:{photos}", 64, augment=False, upscale=S)


@pytest.fixture(scope="module")
def model():
    net = tiny_x4()
    assert net.name not in MODELS  # the upscale must come from the model itself
    return net


def _bicubic(images, scale):
    """What the sidecar's bicubic_vs_target compares: each input rounded to 8 bits, PIL bicubic."""
    out = []
    for image in images:
        h, w = image.shape[:2]
        pil = Image.fromarray(np.round(image * 255).astype(np.uint8)).resize((w * scale, h * scale), Image.BICUBIC)
        out.append(np.asarray(pil, np.float32) / 255)
    return np.stack(out)


def _rounded(m):
    return {"psnr": round(m["psnr"], 3), "ssim": round(m["ssim"], 5), "ms_ssim": round(m["ms_ssim"], 5)}


@pytest.mark.parametrize("mode", ["float32", "int8"])
def test_x4_export_at_a_fixed_input_size(mode, model, source, tmp_path):
    from mobile_enhance.runtime import load

    (result,) = export_model(model, tmp_path / f"x4_{mode}.tflite", mode, [LR], source, model_name="tiny_x4", calibration_count=8,
                             tune_sweeps=1)
    h, w = LR
    interpreter = make_interpreter(model_path=str(result.path))
    assert list(interpreter.get_input_details()[0]["shape"]) == [1, h, w, 3]
    assert list(interpreter.get_output_details()[0]["shape"]) == [1, S * h, S * w, 3]
    sidecar = json.loads(result.path.with_suffix(".json").read_text())
    assert sidecar == result.sidecar and verify_sidecar(result.path) == []
    assert sidecar["upscale"] == S and sidecar["input"]["shape"] == [1, h, w, 3] and sidecar["output"]["shape"] == [1, S * h, S * w, 3]
    # counted at the input size: conv1 at 16x16, conv2 after the x4 upsampling at 64x64
    assert sidecar["gmacs_size"] == [h, w] and sidecar["gmacs"] == round((h * w * 9 * 3 * 8 + S * h * S * w * 9 * 8 * 3) / 1e9, 6)
    assert sidecar["quantization"]["mode"] == mode

    f = sidecar["fidelity"]
    assert f["size"] == [h, w] and "input_vs_target" not in f
    x, y = heldout_pairs(source, h, w, 16, upscale=S)
    assert x.shape == (f["images"], h, w, 3) and y.shape == (f["images"], S * h, S * w, 3) and f["images"] >= 4
    assert f["bicubic_vs_target"] == _rounded(image_metrics(_bicubic(x, S), y))
    assert f["bicubic_vs_target"]["psnr"] > 30  # the inputs are the targets bicubic-downscaled, from the same place
    float_out = model.predict(x, verbose=0)
    assert f["float_vs_target"] == _rounded(image_metrics(float_out, y))
    lite = run_tflite(str(result.path), x)
    assert lite.shape == y.shape
    assert f["tflite_vs_target"] == _rounded(image_metrics(lite, y))
    assert f["tflite_vs_float"]["psnr"] > (60 if mode == "float32" else 35)
    if mode == "int8":
        assert sidecar["input"]["dtype"] == "uint8" and sidecar["quantization"]["calibration_images"] == 8

    _, contract = load(result.path)
    assert contract.upscale == S and not contract.dynamic and contract.output_size(h, w) == (S * h, S * w)


def test_x4_export_in_the_other_modes(model, source, tmp_path):
    for mode in sorted(set(EXPORT_MODES) - {"float32", "int8"}):
        (r,) = export_model(model, tmp_path / f"x4_{mode}.tflite", mode, [(8, 12)], source, model_name="tiny_x4", min_psnr=0,
                            calibration_count=8, tune_sweeps=1, qat_steps=2)
        assert verify_sidecar(r.path) == [] and r.sidecar["upscale"] == S and r.sidecar["output"]["shape"] == [1, 32, 48, 3]
        assert "bicubic_vs_target" in r.sidecar["fidelity"] and r.sidecar["quantization"]["mode"] == mode
        out = run_tflite(str(r.path), np.full((1, 8, 12, 3), 0.5, np.float32))
        assert out.shape == (1, 32, 48, 3) and np.isfinite(out).all()


def test_x4_heldout_pairs_are_cut_from_the_same_place(source):
    # 11x11 inputs from 16x16 ones: offset 2 on the input grid, so 8 (not (64 - 44) // 2 = 10) on the target's
    x, y = heldout_pairs(source, 11, 11, 4, upscale=S)
    pairs = source.validation()[:4]
    assert len(x) == len(pairs) == 4
    for (a, b), xi, yi in zip(pairs, x, y):
        np.testing.assert_array_equal(xi, a[2:13, 2:13])
        np.testing.assert_array_equal(yi, b[8:52, 8:52])
    # a frame larger than the patches: the source cuts crops of 4x the input, and makes their inputs
    x, y = heldout_pairs(source, 24, 20, 3, upscale=S)
    assert x.shape == (3, 24, 20, 3) and y.shape == (3, 96, 80, 3)
    assert image_metrics(_bicubic(x, S), y)["psnr"] > 30
    assert all(i.shape == (24, 20, 3) for i in representative_inputs(source, 24, 20, 3, upscale=S))


def test_x4_dynamic_size_export(model, source, tmp_path):
    from mobile_enhance.runtime import load

    (r,) = export_model(model, tmp_path / "x4_dynamic.tflite", "float32", [None], source, model_name="tiny_x4")
    s = r.sidecar
    assert s["dynamic_size"] and s["upscale"] == S
    assert s["input"]["shape"] == [1, None, None, 3] and s["output"]["shape"] == [1, None, None, 3]
    assert s["fidelity"]["size"] == [16, 16] and s["gmacs_size"] == [16, 16]  # the source's input patches
    x = np.random.default_rng(0).random((1, 20, 24, 3), dtype=np.float32)
    out = run_tflite(str(r.path), x)
    assert out.shape == (1, 80, 96, 3)
    np.testing.assert_allclose(out, model(x).numpy(), atol=1e-5)
    blob = r.path.read_bytes()
    _check_dynamic(blob, 1, "tiny_x4", upscale=S)  # output 4x the input at both sizes: accepted
    with pytest.raises(ExportError, match=r"tiny_x4 cannot be exported with a dynamic size.*output is 64x68 for a 16x17 input"):
        _check_dynamic(blob, 1, "tiny_x4")
    _, contract = load(r.path)
    assert contract.dynamic and contract.upscale == S


def test_upscale_must_agree_with_the_model_and_the_data(model, source, photos, tmp_path):
    out = tmp_path / "x.tflite"
    with pytest.raises(ExportError, match="exported with upscale 2, but the model's output is 4x its input"):
        export_model(model, out, "float32", [LR], source, model_name="tiny_x4", upscale=2)
    same_size = make_source(f"sr:{photos}", 64, augment=False)  # x4 down and bicubic back up: for same-size models
    with pytest.raises(ExportError, match=r"tiny_x4 upscales 4x but .* gives inputs 1x smaller .*sr:PHOTOS with upscale=4"):
        export_model(model, out, "float32", [LR], same_size, model_name="tiny_x4")
    with pytest.raises(ExportError, match=r"srcnn upscales 1x but .* gives inputs 4x smaller"):
        export_model(build_model("srcnn"), out, "float32", [LR], source, model_name="srcnn")
    assert not out.exists()


def test_cli_exports_an_x4_keras_model_and_compares_with_bicubic(model, photos, tmp_path, capsys):
    path = tmp_path / "x4.keras"
    model.save(path)
    out = tmp_path / "x4.tflite"
    assert cli(["mobile-enhance", "export", f"--weights={path}", f"--data=sr:{photos}", "--size=16x16", f"--output={out}",
                "--fidelity_images=4"]) == 0
    printed = capsys.readouterr().out
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["upscale"] == S and sidecar["output"]["shape"] == [1, 64, 64, 3] and sidecar["model"] == "tiny_x4"
    f = sidecar["fidelity"]
    assert f"(float {f['float_vs_target']['psnr']:.2f}, bicubic {f['bicubic_vs_target']['psnr']:.2f})" in printed
    # an untrained model is far below bicubic; the export's patches are 100x100 targets, 25x25 inputs
    assert "warning: at 16x16 the float model itself is" in printed and "below its bicubic upscale of its input" in printed
    assert "trained on 25x25 patches: export --size=25x25" in printed


def test_int8_keeps_the_cards_skip_path_float(source, tmp_path):
    # enhancenet with a small residual, as a trained one has: its int8 file keeps the
    # bicubic skip and the sum float (the card's float_in_int8) and stays closer to the
    # float model than the all-integer file
    keras.utils.set_random_seed(0)
    net = build_model("enhancenet", bicubic="centred")
    out = net.get_layer("conv_out")
    out.set_weights([w * 0.02 for w in out.get_weights()])
    common = dict(model_name="enhancenet", min_psnr=0, calibration_count=4, fidelity_count=4, tune_sweeps=0)
    (kept,) = export_model(net, tmp_path / "kept.tflite", "int8", [LR], source, **common)
    (whole,) = export_model(net, tmp_path / "whole.tflite", "int8", [LR], source, float_layers=(), **common)
    q = kept.sidecar["quantization"]
    assert q["float_layers"]["layers"] == list(MODELS["enhancenet"].float_in_int8) and q["float_layers"]["ops"] >= 5
    assert "float_layers" not in whole.sidecar["quantization"]
    assert "DEQUANTIZE" in kept.sidecar["ops"] and "DEQUANTIZE" not in whole.sidecar["ops"]
    assert kept.sidecar["input"]["dtype"] == "uint8" and verify_sidecar(kept.path) == []
    gain = kept.sidecar["fidelity"]["tflite_vs_float"]["psnr"] - whole.sidecar["fidelity"]["tflite_vs_float"]["psnr"]
    assert gain > 2, gain
    with pytest.raises(ExportError, match="enhancenet has no layer 'skip'"):
        export_model(net, tmp_path / "x.tflite", "int8", [LR], source, float_layers=("skip",), **common)


def test_sr_models_benchmark_script(photos, tmp_path):
    # benchmarks/sr_models.py on a 1-step run and two of its files: the baseline row, the
    # Keras row, each file's distance from Keras and the loss against the float32 file
    import importlib.util

    from mobile_enhance import api
    from mobile_enhance.benchmark import REPO_ROOT

    run = tmp_path / "run"
    api.train(run, "enhancenet", f"sr:{photos}", steps=1, batch_size=2, patch_size=32, losses="E",
              eval_every=1, progress=False)
    for quant in ("float32", "float16"):
        api.export(tmp_path / f"x4_{quant}.tflite", run_dir=run, quant=quant, size="8x12", fidelity_images=2)
    config = {"photos": str(photos), "crops_per_photo": 1, "frame": [8, 12],
              "models": [{"name": "tiny", "run_dir": str(run), "files": [str(tmp_path / f"x4_{q}.tflite") for q in ("float32", "float16")]}]}
    (tmp_path / "c.json").write_text(json.dumps(config))  # results named after the config: out/c.{json,md}
    spec = importlib.util.spec_from_file_location("sr_models", REPO_ROOT / "benchmarks" / "sr_models.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main([f"--config={tmp_path / 'c.json'}", f"--out={tmp_path / 'out'}"]) == 0
    (row,) = json.loads((tmp_path / "out" / "c.json").read_text())["results"]
    assert row["input"] == [8, 12] and row["target"] == [32, 48] and row["pairs"] == len(row["held_out_photos"]) >= 1
    f32, f16 = row["files"]
    assert f32["quant"] == "float32" and abs(f32["psnr"] - row["keras_float32"]["psnr"]) < 1e-3 and f32["vs_keras_psnr"] > 60
    assert f16["loss_vs_float32_db"] == pytest.approx(f32["psnr"] - f16["psnr"])
    assert row["keras_float32"]["gain_db"] == pytest.approx(row["keras_float32"]["psnr"] - row["baseline"]["psnr"])
    md = (tmp_path / "out" / "c.md").read_text()
    assert "| bicubic x4 of the input (PIL) |" in md and "`x4_float16.tflite` (float16)" in md
