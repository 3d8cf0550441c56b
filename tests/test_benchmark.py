"""Benchmark package: statistics, parsers, command building, runners on tiny models, reports.

No test checks a timing: only what is derived from timings (ordering of statistics,
arithmetic of GFLOP/s and scores), what the runtimes compute, and what is reported
when something is missing.
"""

import ctypes
import io
import json
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from mobile_enhance.benchmark import android, apply_roofline, run_benchmark
from mobile_enhance.benchmark.measure import (
    BackendUnavailable,
    compiled_model_output,
    describe_tflite,
    gpu_failure_reason,
    measure_compiled_model,
    measure_end_to_end,
    measure_interpreter,
    measure_keras,
    resolve_size,
)
from mobile_enhance.benchmark.memory import PeakMemory, peak_rss_mb, reset_peak
from mobile_enhance.benchmark.pirm import pirm_scores, read_quality
from mobile_enhance.benchmark.report import BAR_COLOR, draw_bars, markdown_table, to_markdown, write_reports
from mobile_enhance.benchmark.stats import summarize
from mobile_enhance.benchmark.worker import WorkerError, run_isolated
from mobile_enhance.cli import main
from mobile_enhance.errors import UserError
from mobile_enhance.runtime import sidecar_for, write_sidecar

SRCNN_MACS_PER_PIXEL = 9 * 9 * 3 * 64 + 5 * 5 * 64 * 32 + 5 * 5 * 32 * 3


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Tiny SRCNN files: float32 16x16, float16 16x16, int8 16x16, float32 dynamic size."""
    from mobile_enhance.export import convert
    from mobile_enhance.models import build_model

    root = tmp_path_factory.mktemp("models")
    model = build_model("srcnn")
    rng = np.random.default_rng(0)
    files = {
        "f32": convert(model, "float32", input_size=(16, 16)),
        "f16": convert(model, "float16", input_size=(16, 16)),
        "int8": convert(model, "int8", input_size=(16, 16), representative=lambda: [rng.random((1, 16, 16, 3), np.float32) for _ in range(4)]),
        "dyn": convert(model, "float32"),
    }
    paths = {}
    for key, data in files.items():
        paths[key] = root / f"srcnn_{key}.tflite"
        paths[key].write_bytes(data)
    return paths


# ----------------------------------------------------------------------------- pure functions


def test_summarize_known_values():
    s = summarize([i / 1e3 for i in range(1, 11)])  # 1..10 ms
    assert s["runs"] == 10
    assert s["median_ms"] == pytest.approx(5.5)
    assert s["p90_ms"] == pytest.approx(9.1)  # linear interpolation: 9 + 0.1 * (10 - 9)
    assert (s["min_ms"], s["max_ms"]) == (pytest.approx(1.0), pytest.approx(10.0))
    assert s["mean_ms"] == pytest.approx(5.5) and s["std_ms"] == pytest.approx(np.std(np.arange(1, 11)))
    with pytest.raises(ValueError):
        summarize([])


def test_pirm_scores_track_b_with_speedup_cap():
    # PSNR 22.5, MS-SSIM 0.92, 5x faster than SRCNN -> speed term capped at 4.
    s = pirm_scores(22.5, 0.92, time_baseline=100.0, time_solution=20.0)
    assert s["speedup"] == pytest.approx(5.0) and s["speed_term"] == 4.0
    assert s["A"] == pytest.approx(4 * 1.5 + 100 * 0.02 + 2 * 4)
    assert s["B"] == pytest.approx(1 * 1.5 + 400 * 0.02 + 2 * 4)
    assert s["C"] == pytest.approx(2 * 1.5 + 200 * 0.02 + 2.9 * 4)
    slow = pirm_scores(21.0, 0.9, time_baseline=10.0, time_solution=40.0)  # below the cap: ratio as is
    assert slow["speed_term"] == pytest.approx(0.25) and slow["C"] == pytest.approx(2.9 * 0.25)
    with pytest.raises(ValueError):
        pirm_scores(22, 0.9, 0.0, 1.0)


def test_read_quality_errors_name_the_file(tmp_path):
    good = tmp_path / "q.json"
    good.write_text(json.dumps({"psnr": 22.1, "ms_ssim": 0.91, "other": 1}))
    assert read_quality(good) == {"psnr": 22.1, "ms_ssim": 0.91}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"psnr": 22.1}))
    with pytest.raises(UserError, match="bad.json.*lacks 'ms_ssim'"):
        read_quality(bad)
    with pytest.raises(UserError, match="does not exist"):
        read_quality(tmp_path / "none.json")


def test_apply_roofline_uses_same_thread_ceiling_on_cpu_only():
    rows = [
        {"backend": "cpu", "threads": 2, "gmacs": 1.0, "median_ms": 10.0},
        {"backend": "gpu", "threads": 2, "gmacs": 1.0, "median_ms": 5.0},
        {"backend": "android Pixel", "threads": 4, "gmacs": 1.0, "median_ms": None, "mean_ms": 20.0},
        {"backend": "cpu", "threads": 1, "gmacs": None, "median_ms": 10.0},
    ]
    apply_roofline(rows, [{"threads": 2, "gflops": 400.0}])
    assert rows[0]["achieved_gflops"] == pytest.approx(200.0) and rows[0]["fraction_of_ceiling"] == pytest.approx(0.5)
    assert rows[1]["achieved_gflops"] == pytest.approx(400.0) and "ceiling_gflops" not in rows[1]
    assert rows[2]["achieved_gflops"] == pytest.approx(100.0)  # from the mean when no median
    assert "achieved_gflops" not in rows[3]


# ----------------------------------------------------------------------------- benchmark_model output

# Lines in the format TFLite's benchmark_model prints (older builds: no p5/median/p95,
# "Memory footprint delta ..."; newer builds: INFO: prefixes, a warm-up count line with
# first=..., percentiles, periodic peak memory).
OLD_OUTPUT = """\
STARTING!
Num threads: [4]
Graph: [/data/local/tmp/mobile_enhance/m.tflite]
Loaded model /data/local/tmp/mobile_enhance/m.tflite
Initialized session in 17.187ms.
Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
count=1 curr=3512391

Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
count=50 first=2990275 curr=2913402 min=2727568 max=3189954 avg=2.95034e+06 std=109798

Inference timings in us: Init: 17187, First inference: 3512391, Warmup (avg): 3.51239e+06, Inference (avg): 2.95034e+06
Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to the actual memory footprint of the model at runtime. Take the information at your discretion.
Memory footprint delta from the start of the tool (MB): init=4.21094 overall=46.0859
"""

NEW_GPU_OUTPUT = """\
INFO: Created TensorFlow Lite delegate for GPU.
INFO: Replacing 49 out of 49 node(s) with delegate (TfLiteGpuDelegateV2) node, yielding 1 partitions for subgraph 0.
INFO: Initialized session in 119.515ms.
INFO: count=9 first=87112 curr=51629 min=51629 max=87112 avg=58147.4 std=11478 p5=51629 median=51962 p95=87112

INFO: count=1000 first=52162 curr=49785 min=49088 max=686105 avg=63743.2 std=60716 p5=49620 median=51891 p95=68628

INFO: Inference timings in us: Init: 119515, First inference: 87112, Warmup (avg): 58147.4, Inference (avg): 63743.2
INFO: Memory footprint delta from the start of the tool (MB): init=55.4961 overall=55.4961
INFO: Overall peak memory footprint (MB) via periodic monitoring: 61.25
"""


def test_parse_old_benchmark_model_output():
    r = android.parse_benchmark_output(OLD_OUTPUT)
    assert r["init_ms"] == pytest.approx(17.187) and r["first_ms"] == pytest.approx(3512.391)
    assert r["mean_ms"] == pytest.approx(2950.34) and r["warmup_mean_ms"] == pytest.approx(3512.39)
    assert r["runs"] == 50 and r["std_ms"] == pytest.approx(109.798)
    assert (r["min_ms"], r["max_ms"]) == (pytest.approx(2727.568), pytest.approx(3189.954))
    assert r["median_ms"] is None  # this build prints no percentiles
    assert (r["memory_init_mb"], r["memory_overall_mb"]) == (pytest.approx(4.21094), pytest.approx(46.0859))
    assert r["delegated_nodes"] is None


def test_parse_new_output_takes_timed_runs_not_warmup():
    r = android.parse_benchmark_output(NEW_GPU_OUTPUT)
    assert r["runs"] == 1000  # the last count= line, not the warm-up's count=9
    assert r["median_ms"] == pytest.approx(51.891) and r["min_ms"] == pytest.approx(49.088)
    assert r["mean_ms"] == pytest.approx(63.7432) and r["std_ms"] == pytest.approx(60.716)
    assert r["memory_peak_mb"] == pytest.approx(61.25)
    assert r["delegated_nodes"] == "49/49 nodes -> TfLiteGpuDelegateV2"
    older = android.parse_benchmark_output(OLD_OUTPUT.replace("Memory footprint delta from the start of the tool", "Peak memory footprint"))
    assert older["memory_overall_mb"] == pytest.approx(46.0859)


def test_parse_failure_reports_last_line():
    with pytest.raises(android.AndroidBenchmarkError, match="no 'Inference timings' line.*Failed to apply GPU delegate"):
        android.parse_benchmark_output("STARTING!\nERROR: Failed to apply GPU delegate.\n")


def test_parse_devices_skips_daemon_lines():
    text = "* daemon not running; starting now at tcp:5037\n* daemon started successfully\nList of devices attached\nR58M12\tdevice\nemulator-5554\tunauthorized\n\n"
    assert android.parse_devices(text) == [("R58M12", "device"), ("emulator-5554", "unauthorized")]


# ----------------------------------------------------------------------------- adb with a fake runner


class FakeAdb:
    """Stands in for the adb executable at the subprocess boundary; records every argv."""

    def __init__(self, devices="List of devices attached\nPHONE1\tdevice\n", outputs=None):
        self.devices, self.outputs, self.calls = devices, outputs or {}, []

    def __call__(self, argv, timeout):
        self.calls.append(list(argv))
        args = argv[3:] if argv[1:2] == ["-s"] else argv[1:]
        if args == ["devices"]:
            return 0, self.devices, ""
        if args[:2] == ["shell", "getprop"]:
            return 0, {"ro.product.model": "Pixel 7\n", "ro.product.cpu.abi": "arm64-v8a\n"}.get(args[2], "\n"), ""
        if args[:1] == ["shell"] and args[1].endswith("/benchmark_model"):
            mode = "gpu" if "--use_gpu=true" in args else "nnapi" if "--use_nnapi=true" in args else "cpu"
            return 0, self.outputs.get(mode, OLD_OUTPUT), ""
        return 0, "", ""


@pytest.fixture
def fake_binary(tmp_path):
    path = tmp_path / "android_aarch64_benchmark_model"
    path.write_bytes(b"\x7fELF" + b"\0" * 60)
    return path


def test_android_commands_and_parsed_rows(models, fake_binary):
    adb = FakeAdb(outputs={"gpu": NEW_GPU_OUTPUT, "nnapi": "ERROR: NNAPI delegate failed\n"})
    phone = android.AndroidBench(adb="adb", runner=adb)
    assert phone.serial == "PHONE1"
    rows = phone.run_benchmarks(models["f32"], fake_binary, threads=(1, 4), runs=20, warmup=3)
    remote = android.REMOTE_DIR
    assert ["adb", "-s", "PHONE1", "push", str(fake_binary), f"{remote}/benchmark_model"] in adb.calls
    assert ["adb", "-s", "PHONE1", "shell", "chmod", "755", f"{remote}/benchmark_model"] in adb.calls
    assert ["adb", "-s", "PHONE1", "push", str(models["f32"]), f"{remote}/srcnn_f32.tflite"] in adb.calls
    runs = [c[3:] for c in adb.calls if c[3:4] == ["shell"] and c[4].endswith("/benchmark_model")]
    base = [f"{remote}/benchmark_model", f"--graph={remote}/srcnn_f32.tflite"]
    assert runs == [
        ["shell", *base, "--num_threads=1", "--num_runs=20", "--warmup_runs=3"],
        ["shell", *base, "--num_threads=4", "--num_runs=20", "--warmup_runs=3"],
        ["shell", *base, "--num_threads=4", "--num_runs=20", "--warmup_runs=3", "--use_gpu=true"],
        ["shell", *base, "--num_threads=4", "--num_runs=20", "--warmup_runs=3", "--use_nnapi=true"],
    ]
    assert [r["mode"] for r in rows] == ["cpu", "cpu", "gpu", "nnapi"]
    assert rows[0]["mean_ms"] == pytest.approx(2950.34) and rows[2]["median_ms"] == pytest.approx(51.891)
    assert "error" in rows[3] and "NNAPI delegate failed" in rows[3]["error"] and "mean_ms" not in rows[3]
    assert adb.calls[-1][3:] == ["shell", "rm", "-f", f"{remote}/srcnn_f32.tflite"]


def test_android_missing_pieces_give_one_line(monkeypatch, fake_binary, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("ANDROID_HOME", raising=False)
    monkeypatch.delenv("ANDROID_SDK_ROOT", raising=False)
    with pytest.raises(android.AndroidUnavailable, match="adb not found"):
        android.find_adb()
    with pytest.raises(android.AndroidUnavailable, match="no Android device"):
        android.AndroidBench(adb="adb", runner=FakeAdb(devices="List of devices attached\n\n"))
    with pytest.raises(android.AndroidUnavailable, match="unauthorized: accept the USB debugging prompt"):
        android.AndroidBench(adb="adb", runner=FakeAdb(devices="List of devices attached\nX1\tunauthorized\n"))
    two = FakeAdb(devices="List of devices attached\nA\tdevice\nB\tdevice\n")
    with pytest.raises(UserError, match="several Android devices.*--adb_serial"):
        android.AndroidBench(adb="adb", runner=two)
    assert android.AndroidBench(adb="adb", serial="B", runner=two).serial == "B"
    with pytest.raises(android.AndroidUnavailable, match="'C' is not attached"):
        android.AndroidBench(adb="adb", serial="C", runner=two)
    with pytest.raises(UserError, match="needs --benchmark_binary.*android_aarch64_benchmark_model"):
        android.check_binary(None)
    with pytest.raises(UserError, match="does not exist"):
        android.check_binary(str(tmp_path / "nope"))
    text = tmp_path / "script.sh"
    text.write_text("#!/bin/sh\n")
    with pytest.raises(UserError, match="not an ELF executable"):
        android.check_binary(str(text))


def test_run_benchmark_adb_backend_report(models, fake_binary):
    report = run_benchmark(
        models["f32"], backends=["adb"], threads=[2], runs=10, warmup=1, benchmark_binary=str(fake_binary), adb_path="adb",
        adb_modes=["cpu", "gpu"], android_runner=FakeAdb(outputs={"gpu": NEW_GPU_OUTPUT}), isolate=False, log=lambda _: None,
    )
    assert report["machine"]["android"]["model"] == "Pixel 7"
    assert [r["runtime"] for r in report["rows"]] == ["benchmark_model (XNNPACK)", "benchmark_model --use_gpu"]
    assert report["rows"][0]["phone_memory"] == "4.2/46.1"
    assert report["unavailable"] == []
    assert report["rows"][0]["gmacs"] is None  # no sidecar, no --keras: no GFLOP/s
    assert "GMACs unknown" in " ".join(report["notes"])


# ----------------------------------------------------------------------------- runtimes on tiny models


def test_describe_tflite_types_and_sizes(models):
    assert describe_tflite(models["f32"])["quant"] == "float32"
    assert describe_tflite(models["f16"])["quant"] == "float16"
    i8 = describe_tflite(models["int8"])
    assert (i8["quant"], i8["input_dtype"], i8["fixed_size"]) == ("int8", "uint8", (16, 16))
    dyn = describe_tflite(models["dyn"])
    assert dyn["dynamic_size"] and resolve_size(dyn, (24, 32)) == (24, 32)
    with pytest.raises(UserError, match="takes any input size.*--size"):
        resolve_size(dyn, None)
    with pytest.raises(UserError, match="fixed 16x16 input"):
        resolve_size(describe_tflite(models["f32"]), (32, 32))


@pytest.mark.parametrize("key,size", [("f32", None), ("int8", None), ("dyn", (24, 40))])
def test_measure_interpreter_statistics(models, key, size):
    r = measure_interpreter(str(models[key]), threads=1, runs=5, warmup=1, size=size)
    assert r["runs"] == 5 and r["size"] == list(size or (16, 16))
    assert 0 < r["min_ms"] <= r["median_ms"] <= r["p90_ms"] <= r["max_ms"]
    assert r["init_ms"] > 0 and r["first_ms"] > 0


def test_compiled_model_cpu_matches_interpreter(models, rng):
    from mobile_enhance.export import run_tflite

    x = rng.random((1, 16, 16, 3), dtype=np.float32)
    np.testing.assert_allclose(compiled_model_output(str(models["f32"]), x, "cpu"), run_tflite(str(models["f32"]), x), atol=1e-5)
    r = measure_compiled_model(str(models["f32"]), threads=1, runs=3, warmup=0, accelerator="cpu")
    assert r["runs"] == 3 and r["fully_accelerated"] is True


def test_gpu_accelerator_measures_or_says_why(models):
    try:
        r = measure_compiled_model(str(models["f32"]), threads=1, runs=2, warmup=0, accelerator="gpu")
    except BackendUnavailable as error:
        assert str(error).startswith("LiteRT GPU accelerator (WebGPU) unavailable: ")
        assert "\n" not in str(error)
    else:
        assert r["runs"] == 2 and isinstance(r["fully_accelerated"], bool)


def test_gpu_failure_reason_lines():
    log = (
        "Warning: Couldn't load Vulkan: libvulkan.so.1: cannot open shared object file: No such file or directory\n"
        "ERROR: [delegate_webgpu.cc:359] Failed to initialize WebGPU environment: INTERNAL: No adapters found\n"
    )
    assert gpu_failure_reason(log, None) == (
        "LiteRT GPU accelerator (WebGPU) unavailable: no Vulkan loader (libvulkan.so.1 not found); WebGPU found no GPU adapter"
    )
    other = gpu_failure_reason("INFO: x\nERROR: [compiled_model.cc:1] unsupported op GATHER_ND\n", RuntimeError("r"))
    assert other.endswith("ERROR: [compiled_model.cc:1] unsupported op GATHER_ND")


NO_DELEGATE_C = r"""
#include <stdint.h>
#include <stdlib.h>
/* Same layout as TfLiteDelegate (tensorflow/lite/core/c/common.h). Prepare claims no node. */
typedef struct TfLiteDelegate {
  void* data_;
  int (*Prepare)(void* context, struct TfLiteDelegate* delegate);
  int (*CopyFromBufferHandle)(void*, struct TfLiteDelegate*, int, void*);
  int (*CopyToBufferHandle)(void*, struct TfLiteDelegate*, int, void*);
  void (*FreeBufferHandle)(void*, struct TfLiteDelegate*, int*);
  int64_t flags;
  void* opaque_delegate_builder;
} TfLiteDelegate;
int prepare_calls = 0;
static int prepare(void* context, TfLiteDelegate* delegate) { (void)context; (void)delegate; ++prepare_calls; return 0; }
TfLiteDelegate* tflite_plugin_create_delegate(char** k, char** v, size_t n, void (*err)(const char*)) {
  TfLiteDelegate* d = calloc(1, sizeof(TfLiteDelegate));
  d->Prepare = prepare;
  return d;
}
void tflite_plugin_destroy_delegate(TfLiteDelegate* d) { free(d); }
"""


def test_delegate_path_applies_a_real_plugin_and_rejects_others(models, tmp_path):
    with pytest.raises(BackendUnavailable, match="could not load delegate"):
        measure_interpreter(str(models["f32"]), 1, 2, 0, delegate_path=str(tmp_path / "missing.so"))
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler to build a test delegate plugin")
    source, library = tmp_path / "nodelegate.c", tmp_path / "libnodelegate.so"
    source.write_text(NO_DELEGATE_C)
    subprocess.run([compiler, "-shared", "-fPIC", "-O1", "-o", str(library), str(source)], check=True)
    calls = ctypes.c_int.in_dll(ctypes.CDLL(str(library)), "prepare_calls")
    before = calls.value
    r = measure_interpreter(str(models["f32"]), 1, 3, 0, delegate_path=str(library))
    assert calls.value > before and r["runs"] == 3  # the interpreter called the plugin's Prepare
    source.write_text("int not_a_delegate(void) { return 0; }\n")
    other = tmp_path / "libother.so"
    subprocess.run([compiler, "-shared", "-fPIC", "-o", str(other), str(source)], check=True)
    with pytest.raises(BackendUnavailable, match="not a TFLite delegate plugin.*tflite_plugin_create_delegate"):
        measure_interpreter(str(models["f32"]), 1, 2, 0, delegate_path=str(other))


def test_end_to_end_output_is_the_model_output(models, tmp_path, rng):
    from mobile_enhance.export import run_tflite

    photo = tmp_path / "photo.jpg"
    Image.fromarray((rng.random((48, 64, 3)) * 255).astype(np.uint8)).save(photo, quality=90)
    r = measure_end_to_end(str(models["f32"]), str(photo), threads=1, runs=3, encode_format="PNG", return_output=True)
    assert r["photo_size"] == [48, 64] and r["size"] == [16, 16] and r["total_runs"] == 3
    stages = sum(r[f"{k}_median_ms"] for k in ("decode", "preprocess", "infer", "postprocess", "encode"))
    assert stages > 0 and r["total_min_ms"] <= r["total_median_ms"]
    out = np.asarray(Image.open(io.BytesIO(r["output"]["encoded"])))
    expected = np.round(np.clip(run_tflite(str(models["f32"]), r["output"]["input"]), 0, 1)[0] * 255)
    assert out.shape == (16, 16, 3) and np.abs(out.astype(int) - expected.astype(int)).max() <= 1


def test_end_to_end_over_a_frame_runs_the_enhance_windows(models, tmp_path, rng):
    from mobile_enhance.enhance.pipeline import TFLiteModel

    photo = tmp_path / "photo.jpg"
    Image.fromarray((rng.random((48, 64, 3)) * 255).astype(np.uint8)).save(photo, quality=90)
    r = measure_end_to_end(str(models["f32"]), str(photo), threads=1, runs=2, encode_format="PNG", return_output=True, frame=(40, 56))
    model = TFLiteModel(models["f32"], num_threads=1)
    assert r["size"] == [40, 56] and r["window"] == [16, 16] and r["windows"] == 24  # 16x16 windows, 8 overlap: 4 x 6
    out = np.asarray(Image.open(io.BytesIO(r["output"]["encoded"])))
    expected = np.round(np.clip(model.enhance(r["output"]["input"]), 0, 1) * 255)
    assert out.shape == (40, 56, 3) and np.abs(out.astype(int) - expected.astype(int)).max() <= 1
    report = run_benchmark(models["f32"], threads=[1], runs=2, warmup=0, photo=photo, e2e_runs=1, e2e_frame="photo", isolate=False,
                           measure_ceiling=False, log=lambda _: None)
    row = report["end_to_end"][0]
    assert row["size_label"] == "48x64 in 16x16 windows" and row["windows"] == 5 * 7
    assert "| 48x64 in 16x16 windows | 35 |" in to_markdown(report)
    with pytest.raises(UserError, match="needs --photo"):
        run_benchmark(models["f32"], threads=[1], runs=1, e2e_frame=(32, 32), isolate=False, measure_ceiling=False, log=lambda _: None)


def test_pirm_quality_from_an_exported_sidecar_or_a_note(models):
    sidecar = models["f16"].with_suffix(".json")
    exported = {"tflite_vs_float": {"psnr": 40.0, "ssim": 0.99}, "tflite_vs_target": {"psnr": 22.5, "ssim": 0.8, "ms_ssim": 0.93}}
    try:
        write_sidecar(models["f16"], sidecar_for(models["f16"], model="srcnn", fidelity=exported))
        report = run_benchmark(models["f16"], threads=[1], runs=2, warmup=0, isolate=False, measure_ceiling=False, log=lambda _: None)
        p = report["pirm"]
        assert (p["psnr"], p["ms_ssim"], p["quality_source"]) == (22.5, 0.93, "sidecar fidelity against the targets")
        del exported["tflite_vs_target"]["ms_ssim"]  # written before the export recorded MS-SSIM
        write_sidecar(models["f16"], sidecar_for(models["f16"], model="srcnn", fidelity=exported))
        report = run_benchmark(models["f16"], threads=[1], runs=2, warmup=0, isolate=False, measure_ceiling=False, log=lambda _: None)
    finally:
        sidecar.unlink()
    assert report["pirm"] is None and report["rows"][0]["median_ms"] > 0
    assert any(n.startswith("no PIRM score: the sidecar of srcnn_f16.tflite has no PSNR and MS-SSIM") for n in report["notes"])


def test_keras_predict_runs_the_same_model():
    r = measure_keras("srcnn", (16, 24), threads=1, runs=2, warmup=0, call="predict")
    assert r["runs"] == 2 and r["median_ms"] > 0 and r["gmacs"] == pytest.approx(16 * 24 * SRCNN_MACS_PER_PIXEL / 1e9)
    with pytest.raises(ValueError, match="predict or function"):
        measure_keras("srcnn", (16, 24), threads=1, runs=1, warmup=0, call="fit")


def test_keras_counts_macs_at_the_benchmarked_size():
    r = measure_keras("srcnn", (16, 24), threads=1, runs=2, warmup=0)
    assert r["gmacs"] == pytest.approx(16 * 24 * SRCNN_MACS_PER_PIXEL / 1e9)
    assert r["runs"] == 2 and r["weights"] == "random init"


def test_tensorflow_gpu_absent_is_one_line():
    from mobile_enhance.compat import GPUS

    if GPUS:
        pytest.skip("this machine has a GPU visible to TensorFlow")
    with pytest.raises(BackendUnavailable, match="TensorFlow lists no GPU"):
        measure_keras("srcnn", (16, 16), threads=1, runs=1, warmup=0, device="gpu")


# ----------------------------------------------------------------------------- memory and worker


def test_peak_memory_sees_an_allocation():
    if not reset_peak():
        pytest.skip("this kernel refuses /proc/self/clear_refs: peak RSS is not resettable")
    with PeakMemory() as m:
        block = np.ones(64 * 2**20 // 8)  # 64 MiB touched
        del block
    assert "clear_refs" in m.result["memory_method"]
    assert m.result["rss_delta_mb"] >= 60
    reset_peak()
    assert peak_rss_mb()[0] < m.result["peak_rss_mb"] - 40  # the reset dropped the freed block's peak


def test_worker_subprocess_result_and_crash():
    answer = run_isolated("matmul", {"n": 128, "repeats": 2, "tensorflow": False}, threads=1)
    r = answer["result"]
    assert r["source"] == "numpy" and r["gflops"] == r["numpy_gflops"] > 0 and r["n"] == 128
    with pytest.raises(WorkerError, match="unknown benchmark task 'nope'"):
        run_isolated("nope", {})
    with pytest.raises(WorkerError, match="(?s)ValueError.*Traceback"):
        run_isolated("matmul", {"n": -1, "repeats": 1, "tensorflow": False})


# ----------------------------------------------------------------------------- reports


def test_markdown_table_drops_empty_columns_and_marks_missing():
    table = markdown_table([{"model": "a", "median_ms": 1.234, "p90_ms": None}, {"model": "b", "median_ms": None, "p90_ms": 2.0}])
    lines = table.splitlines()
    assert lines[0] == "| model | median ms | p90 ms |"
    assert lines[2] == "| a | 1.23 | — |" and lines[3] == "| b | — | 2.00 |"


def test_bars_are_proportional():
    image = draw_bars([("t", [{"label": "one", "median": 1.0, "low": None, "high": None}, {"label": "two", "median": 2.0, "low": None, "high": None}])])
    pixels = np.asarray(image)
    is_bar = np.all(pixels == np.array(BAR_COLOR, np.uint8), axis=-1)
    lengths = sorted(int(n) for n in {row.sum() for row in is_bar} if n > 0)
    assert len(lengths) == 2 and abs(lengths[1] - 2 * lengths[0]) <= 2


def test_chart_labels_tell_the_tensorflow_timings_apart():
    from mobile_enhance.benchmark.report import rows_to_panels

    base = {"model": "keras:m", "quant": "float32", "backend": "cpu", "threads": 2, "size_label": "8x8", "median_ms": 1.0}
    rows = [{**base, "runtime": "TensorFlow (tf_keras, model.predict)"}, {**base, "runtime": "TensorFlow (tf_keras, tf.function)"},
            {**base, "model": "m", "runtime": "LiteRT Interpreter (XNNPACK)"}]
    (_, bars), = rows_to_panels(rows)
    assert [b["label"] for b in bars] == ["keras:m float32 cpu predict x2", "keras:m float32 cpu tf.function x2", "m float32 cpu x2"]


def test_cli_bench_writes_reports(models, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["mobile-enhance", "bench", f"--model={models['f32']}", "--threads=1", "--runs=3", "--warmup=0",
                 "--backend=cpu,gpu", "--matmul_size=128", f"--output={out}"])
    report = json.loads((out / "srcnn_f32.json").read_text())
    assert code == (1 if report["unavailable"] else 0)
    cpu = [r for r in report["rows"] if r["backend"] == "cpu"]
    assert len(cpu) == 1 and cpu[0]["threads"] == 1 and cpu[0]["runs"] == 3 and cpu[0]["peak_rss_mb"] > 0
    assert report["ceiling"][0]["threads"] == 1 and report["ceiling"][0]["gflops"] > 0
    gpu = [r for r in report["rows"] if r["backend"] == "gpu"]
    assert len(gpu) + len(report["unavailable"]) == 1  # measured, or one line saying why not
    md = (out / "srcnn_f32.md").read_text()
    assert "## Inference latency" in md and "LiteRT Interpreter (XNNPACK)" in md
    assert Image.open(out / "srcnn_f32.png").format == "PNG"
    captured = capsys.readouterr()
    assert "## Inference latency" in captured.out
    for gap in report["unavailable"]:
        assert f"{gap['backend']}: {gap['reason']}" in captured.err


def test_cli_user_errors_are_one_line(models, capsys):
    assert main(["mobile-enhance", "bench", "--model=/nonexistent.tflite"]) == 2
    assert main(["mobile-enhance", "bench", f"--model={models['f32']}", "--backend=tpu"]) == 2
    assert main(["mobile-enhance", "bench", f"--model={models['f32']}", "--backend=adb"]) == 2
    assert main(["mobile-enhance", "bench", f"--model={models['dyn']}"]) == 2
    assert main(["mobile-enhance", "bench"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 5 and "Traceback" not in "".join(err)
    assert "does not exist" in err[0] and "unknown backend 'tpu'" in err[1]
    assert "--benchmark_binary" in err[2] and "--size=HxW" in err[3] and "--model=FILE.tflite is required" in err[4]


def test_cli_runtime_crash_is_one_line(models, capsys, monkeypatch):
    import mobile_enhance.benchmark as bench

    def crash(path, **kw):
        raise WorkerError("benchmark worker (interpreter) exited with status -6 and no result:\nsome log\nfree(): double free detected")

    monkeypatch.setattr(bench, "run_benchmark", crash)
    assert main(["mobile-enhance", "bench", f"--model={models['f32']}", "--threads=1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"mobile-enhance bench: error: {models['f32']}: benchmark worker (interpreter) exited with status -6 and no result: "
                   "(free(): double free detected)"]


def test_pirm_score_uses_srcnn_timed_in_the_same_run(models, tmp_path):
    sidecar = models["f16"].with_suffix(".json")
    write_sidecar(models["f16"], sidecar_for(models["f16"], model="srcnn", fidelity={"psnr": 21.5, "ms_ssim": 0.91}))
    try:
        report = run_benchmark(models["f16"], threads=[1], runs=3, warmup=0, isolate=False, measure_ceiling=False, log=lambda _: None)
    finally:
        sidecar.unlink()
    p, row = report["pirm"], report["rows"][0]
    assert p["quality_source"] == "sidecar fidelity" and p["time_solution_ms"] == row["median_ms"]
    assert p["time_baseline_ms"] > 0
    assert p["C"] == pytest.approx(2 * 0.5 + 200 * 0.01 + 2.9 * min(4.0, p["time_baseline_ms"] / row["median_ms"]))
    assert row["gmacs"] == pytest.approx(16 * 16 * SRCNN_MACS_PER_PIXEL / 1e9)  # from the sidecar's model name
    assert "PIRM 2018 Track B score" in to_markdown(report)
    paths = write_reports(report, tmp_path / "r", stem="x")
    assert json.loads(open(paths["json"]).read())["pirm"]["C"] == pytest.approx(p["C"])


def _run_latency_script():
    """benchmarks/run_latency.py as a module (it is a script, not part of the package)."""
    import importlib.util

    from mobile_enhance.benchmark import REPO_ROOT

    spec = importlib.util.spec_from_file_location("run_latency", REPO_ROOT / "benchmarks" / "run_latency.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_run_latency_goes_on_past_a_crashing_file(tmp_path, rng, monkeypatch):
    import mobile_enhance.benchmark as bench

    script = _run_latency_script()
    real = bench.run_benchmark

    def crashing(path, **kw):
        if "float16" in str(path):
            raise WorkerError("benchmark worker (interpreter) exited with status -6 and no result:\nfree(): double free detected")
        return real(path, **kw)

    monkeypatch.setattr(bench, "run_benchmark", crashing)
    out = tmp_path / "out"
    args = ["--models=srcnn", "--quants=float32,float16", "--sizes=16x24", "--threads=1", "--runs=2", "--warmup=0",
            "--e2e_runs=1", f"--photos={tmp_path}", f"--out={out}", "--matmul_size=128", "--in_process"]
    assert script.main(args) == 1  # the report is written, and the exit says something is missing
    report = json.loads((out / "latency.json").read_text())
    assert {r["quant"] for r in report["rows"]} == {"float32"}
    assert any(n.startswith("no rows for srcnn float16 16x24: benchmark worker (interpreter) exited with status -6") and
               n.endswith("double free detected") for n in report["notes"])


def test_run_latency_weights_are_seeded(tmp_path):
    # the same seed gives the same files (int8 timings depend on the weights), another seed others
    script = _run_latency_script()
    files = {}
    for label, seed in (("a", 0), ("b", 0), ("c", 1)):
        keep = tmp_path / label
        args = ["--models=srcnn", "--quants=float32", "--sizes=16x24", "--threads=1", "--runs=1", "--warmup=0", "--e2e_runs=1",
                f"--photos={tmp_path / 'none'}", f"--out={tmp_path / ('out' + label)}", "--matmul_size=64", "--in_process",
                f"--keep_models={keep}", f"--seed={seed}"]
        assert script.main(args) == 0
        files[label] = (keep / "srcnn_float32_16x24.tflite").read_bytes()
        report = json.loads((tmp_path / ("out" + label) / "latency.json").read_text())
        assert any(n.startswith(f"weights: random initialisation, seed {seed} ") for n in report["notes"])
    assert files["a"] == files["b"] and files["a"] != files["c"]


def test_run_latency_script_small_run(tmp_path, rng):
    script = _run_latency_script()
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray((rng.random((40, 56, 3)) * 255).astype(np.uint8)).save(photos / "a.jpg")
    out = tmp_path / "out"
    args = ["--models=fast_dped", "--quants=int8", "--sizes=16x24", "--threads=1", "--runs=2", "--warmup=0",
            "--e2e_runs=1", "--calibration=1", f"--photos={photos}", f"--out={out}", "--matmul_size=128", "--in_process",
            "--e2e_frame=32x48"]
    assert script.main(args) == 0
    report = json.loads((out / "latency.json").read_text())
    got = sorted((r["model"], r["quant"], r["runtime"].split(",")[-1].strip(" )")) for r in report["rows"])
    assert got == sorted([("fast_dped", "float32", "LiteRT Interpreter (XNNPACK"), ("fast_dped", "int8", "LiteRT Interpreter (XNNPACK"),
                          ("srcnn", "float32", "LiteRT Interpreter (XNNPACK"), ("srcnn", "int8", "LiteRT Interpreter (XNNPACK"),
                          ("keras:fast_dped", "float32", "model.predict"), ("keras:fast_dped", "float32", "tf.function"),
                          ("keras:srcnn", "float32", "model.predict"), ("keras:srcnn", "float32", "tf.function")])
    targets = {t["model"]: t for t in report["targets"]}
    assert set(targets) == {"fast_dped", "srcnn"}
    lite = next(r for r in report["rows"] if r["model"] == "srcnn" and r["quant"] == "float32")
    predict = next(r for r in report["rows"] if r["model"] == "keras:srcnn" and "model.predict" in r["runtime"])
    function = next(r for r in report["rows"] if r["model"] == "keras:srcnn" and "tf.function" in r["runtime"])
    t = targets["srcnn"]
    assert t["litert_vs_keras"] == pytest.approx(predict["median_ms"] / lite["median_ms"])  # the target: Keras predict
    assert t["litert_vs_tf_function"] == pytest.approx(function["median_ms"] / lite["median_ms"])
    assert t["litert_vs_keras_bound"] == pytest.approx(1 / predict["fraction_of_ceiling"])
    assert all(r["size_label"] == "16x24" and r["threads"] == 1 for r in report["rows"])
    fast = next(r for r in report["rows"] if r["model"] == "fast_dped" and r["quant"] == "float32")
    srcnn = next(r for r in report["rows"] if r["model"] == "srcnn" and r["quant"] == "float32")
    assert fast["speedup_vs_srcnn"] == pytest.approx(srcnn["median_ms"] / fast["median_ms"])
    assert srcnn["gmacs"] == pytest.approx(16 * 24 * SRCNN_MACS_PER_PIXEL / 1e9)
    assert len(report["end_to_end"]) == 4 and report["ceiling"][0]["n"] == 128
    assert {r["size_label"] for r in report["end_to_end"]} == {"32x48 in 16x24 windows"}
    assert "int8 at 16x24 calibrated on centre crops of 1 photos" in report["notes"]
    assert (out / "latency.md").is_file() and (out / "latency.png").is_file()


def test_an_upscaling_file_is_timed_by_pirm_track_a(tmp_path):
    # PIRM 2018 Track A times the production of a 1280x720 output: an x4 file without a
    # --size runs at 180x320; at another size the time is scaled by output pixels
    from mobile_enhance.compat import keras
    from mobile_enhance.export import convert

    inp = keras.Input((None, None, 3))
    out = keras.layers.Conv2D(3, 3, padding="same")(keras.layers.UpSampling2D(4)(inp))
    path = tmp_path / "x4.tflite"
    path.write_bytes(convert(keras.Model(inp, out), "float32"))
    quiet = dict(threads=[1], runs=2, warmup=0, isolate=False, measure_ceiling=False, log=lambda _: None)
    report = run_benchmark(path, **quiet)
    t, row = report["pirm_track_a"], report["rows"][0]
    assert report["model"]["size"] == [180, 320] and row["size_label"] == "180x320 -> 720x1280"
    assert t["ms"] == row["median_ms"] and t["how"] == "measured at input 180x320" and t["input_size"] == [180, 320]
    assert any(n.startswith(f"{path}: no sidecar x4.json; size multiple 1 and upscale 4 probed") for n in report["notes"])
    report = run_benchmark(path, size=(36, 64), quality={"psnr": 25.0, "ms_ssim": 0.9}, **quiet)
    t, row = report["pirm_track_a"], report["rows"][0]
    assert t["ms"] == pytest.approx(row["median_ms"] * (720 * 1280) / (144 * 256))
    assert t["how"] == "scaled by output pixels from input 36x64 (output 144x256)" and report["pirm"] is None
    assert any("Track B score not computed" in n for n in report["notes"])
    assert "## PIRM 2018 Track A time (super-resolution)" in to_markdown(report)
