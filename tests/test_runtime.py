"""The runtime package: exported files with their contract, without TensorFlow."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mobile_enhance.runtime import FORMAT, SidecarError, load, make_sidecar, read_sidecar, sidecar_for
from mobile_enhance.runtime.sidecar import REQUIRED, validate

SHIPPED = Path(__file__).resolve().parents[1] / "tflite_models"


def test_enhance_and_bench_run_without_tensorflow(tmp_path):
    # the shipped int8 file through the enhance pipeline and the benchmark, in a fresh
    # process: neither TensorFlow nor tf_keras is loaded
    script = f"""
import sys
import numpy as np
from mobile_enhance.enhance.pipeline import TFLiteModel
from mobile_enhance.benchmark import run_benchmark

model = TFLiteModel({str(SHIPPED / 'default_int8.tflite')!r}, num_threads=1)
out = model.enhance(np.full((120, 90, 3), 0.5, np.float32))
assert out.shape == (120, 90, 3), out.shape
report = run_benchmark({str(SHIPPED / 'default_int8.tflite')!r}, threads=[1], runs=1, warmup=0, isolate=False,
                       measure_ceiling=False, pirm_baseline=False, log=lambda _: None)
assert report["rows"][0]["gmacs"] == report["model"]["sidecar"]["gmacs"]
print("tensorflow" in sys.modules, "tf_keras" in sys.modules, report["model"]["gmacs_source"])
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[:2] == ["False", "False"], result.stdout
    assert "sidecar (counted at export" in result.stdout


def test_the_shipped_files_and_their_contract():
    for name in ("default", "default_int8"):
        _, contract = load(SHIPPED / f"{name}.tflite")
        side = read_sidecar(SHIPPED / f"{name}.tflite")
        assert side["format"] == FORMAT and contract.from_sidecar and contract.warning is None
        assert (contract.upscale, contract.size_multiple, contract.fixed_size) == (1, 4, (100, 100))
        assert contract.mode == side["quantization"]["mode"] == ("float32" if name == "default" else "int8")
        assert contract.input.dtype == side["input"]["dtype"]


def test_the_schema_refuses_what_it_does_not_describe(tmp_path):
    side = json.loads((SHIPPED / "default_int8.json").read_text())
    validate(side, "x.json")
    for key in REQUIRED:
        broken = {k: v for k, v in side.items() if k != key}
        with pytest.raises(SidecarError, match=f"x.json: {key} is missing" if key != "format" else "x.json: format must be"):
            validate(broken, "x.json")
    with pytest.raises(SidecarError, match="quantization.mode must be one of"):
        validate({**side, "quantization": {"mode": "int4"}}, "x.json")
    with pytest.raises(SidecarError, match=r"gmacs_size must be \[H, W\]"):
        validate({**side, "gmacs_size": [100]}, "x.json")
    with pytest.raises(ValueError, match="sidecar fields missing: upscale"):
        make_sidecar(**{k: v for k, v in side.items() if k not in ("format", "upscale")})
    # a file from elsewhere gets a sidecar describing it as it is
    (tmp_path / "m.tflite").write_bytes((SHIPPED / "default.tflite").read_bytes())
    made = sidecar_for(tmp_path / "m.tflite", model="fast_dped", size_multiple=4)
    exported = json.loads((SHIPPED / "default.json").read_text())
    assert made["input"] == exported["input"] and made["output"] == exported["output"]
    assert made["file"]["sha256"] == exported["file"]["sha256"] and made["quantization"] == {"mode": "float32"}
    assert np.array_equal(made["output"]["shape"], [1, 100, 100, 3]) and made["upscale"] == 1


def test_a_file_without_sidecar_runs_with_one_warning_line(tmp_path, capsys):
    from PIL import Image

    from mobile_enhance.cli import main

    model = tmp_path / "m.tflite"
    model.write_bytes((SHIPPED / "default_int8.tflite").read_bytes())
    Image.fromarray(np.full((64, 80, 3), 120, np.uint8)).save(tmp_path / "a.png")
    assert main(["mobile-enhance", "enhance", str(tmp_path / "a.png"), f"--output={tmp_path / 'out'}", f"--model={model}", "--quiet"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"mobile-enhance enhance: warning: {model}: no sidecar m.json; contract read from its tensors, mode int8 from its tensor types"]
    assert (tmp_path / "out" / "a.jpg").exists()
    for sub in ("in", "target"):
        (tmp_path / sub).mkdir()
        Image.fromarray(np.full((100, 100, 3), 120, np.uint8)).save(tmp_path / sub / "0.png")
    assert main(["mobile-enhance", "evaluate", f"--model={model}", f"--data=pairs:{tmp_path / 'in'},{tmp_path / 'target'}", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert f"mobile-enhance evaluate: warning: {model}: no sidecar m.json;" in captured.err and "m.tflite" in captured.out
