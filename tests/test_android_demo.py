"""The Android demo without the Android SDK: android_demo/check.sh (resources linked with
aapt, Kotlin compiled against stand-ins of the Android and LiteRT APIs), and the app's
Kotlin tiling, sidecar parser and benchmark JSON run on the JVM against the Python package.

kotlinc runs once per session (the ``android_build`` fixture, about 20 s); every other
check runs the compiled harness (android_demo/jvmcheck/Harness.kt) in a JVM.
"""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from mobile_enhance.enhance.tiling import TilingError, blend_weights, enhance_tiled, padding_needed, plan_tiles, ramp, reflect_index

DEMO = Path(__file__).resolve().parents[1] / "android_demo"
CHECK = DEMO / "check.sh"


@pytest.fixture(scope="session")
def android_build(tmp_path_factory):
    if shutil.which("kotlinc") is None:
        pytest.skip("kotlinc not found: run .ci/android_deps.sh to check the Android demo")
    out = tmp_path_factory.mktemp("android_check")
    result = subprocess.run(["bash", str(CHECK), str(out)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"android_demo/check.sh failed:\n{result.stdout}\n{result.stderr}"
    return out, result.stdout


@pytest.fixture(scope="session")
def harness(android_build, tmp_path_factory):
    out, _ = android_build
    classpath = (out / "harness-classpath.txt").read_text().strip()
    requests = tmp_path_factory.mktemp("harness")

    def run(cases):
        path = requests / f"request{len(list(requests.iterdir()))}.json"
        path.write_text(json.dumps(cases))
        result = subprocess.run(
            ["java", "-cp", classpath, "org.mobileenhance.demo.check.HarnessKt", str(path)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr
        answers = json.loads(result.stdout)
        assert len(answers) == len(cases)
        return answers

    return run


def test_check_script_builds_everything(android_build):
    out, stdout = android_build
    assert "check.sh: OK" in stdout
    assert (out / "resources.ap_").stat().st_size > 0
    classes = {p.name for p in (out / "classes" / "org" / "mobileenhance" / "demo").glob("*.class")}
    for name in ("MainActivity", "BenchmarkActivity", "Enhancer", "Tiling", "ModelSidecar", "BenchResult", "BitmapSource"):
        assert f"{name}.class" in classes
    assert (out / "stubs" / "org" / "mobileenhance" / "demo" / "R.class").exists()


def test_resource_check_catches_a_broken_reference(tmp_path):
    if shutil.which("aapt") is None:
        pytest.skip("aapt not found: run .ci/android_deps.sh to check the Android demo")
    copy = tmp_path / "android_demo"
    shutil.copytree(DEMO / "app" / "src" / "main" / "res", copy / "app" / "src" / "main" / "res")
    shutil.copy(DEMO / "app" / "src" / "main" / "AndroidManifest.xml", copy / "app" / "src" / "main")
    shutil.copy(CHECK, copy / "check.sh")
    ok = subprocess.run(["bash", str(copy / "check.sh"), "--resources-only", str(tmp_path / "ok")], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    layout = copy / "app" / "src" / "main" / "res" / "layout" / "activity_main.xml"
    layout.write_text(layout.read_text().replace("@string/enhance", "@string/enhancee"))
    bad = subprocess.run(["bash", str(copy / "check.sh"), "--resources-only", str(tmp_path / "bad")], capture_output=True, text=True)
    assert bad.returncode != 0 and "@string/enhancee" in bad.stderr


# ---------------------------------------------------------------------------- tiling

PLAN_INPUTS = [
    (h, w, t, o, m)
    for h, w in [(1, 1), (37, 45), (100, 150), (203, 513), (4000, 3000), (64, 64), (65, 63)]
    for t, o, m in [(64, 16, 1), (64, 24, 4), (64, 0, 32), (96, 95, 32), (512, 32, 4), (256, 64, 32)]
    if h * w < 10**6 or t >= 256  # keep the 12 MP photo to a few dozen windows
]


def test_plans_match_python(harness):
    cases = [
        {"op": "plan", "height": h, "width": w, "tile_h": t, "tile_w": t, "overlap": o, "multiple_h": m, "multiple_w": m}
        for h, w, t, o, m in PLAN_INPUTS
    ]
    cases += [
        {"op": "plan", "height": 250, "width": 61, "tile_h": 100, "tile_w": 60, "overlap": 10, "multiple_h": 100, "multiple_w": 60},
        {"op": "plan", "height": 2, "width": 97, "tile_h": 32, "tile_w": 48, "overlap": 16, "multiple_h": 32, "multiple_w": 16},
    ]
    answers = harness(cases)
    for case, answer in zip(cases, answers):
        args = (case["height"], case["width"], (case["tile_h"], case["tile_w"]), case["overlap"], (case["multiple_h"], case["multiple_w"]))
        tiles = plan_tiles(*args)
        assert answer["tiles"] == [list(t) for t in tiles], case
        assert answer["padding"] == list(padding_needed(tiles, case["height"], case["width"])), case
    assert len(answers[PLAN_INPUTS.index((4000, 3000, 512, 32, 4))]["tiles"]) == 9 * 7  # a 12 MP photo


@pytest.mark.parametrize(
    "height,width,tile,overlap,multiple",
    [(100, 100, 64, 64, 1), (100, 100, 60, 8, 32), (0, 100, 64, 8, 1), (100, -3, 64, 8, 1), (100, 100, 64, -1, 1), (100, 100, 64, 8, 0)],
)
def test_plan_errors_match_python(harness, height, width, tile, overlap, multiple):
    [answer] = harness(
        [{"op": "plan", "height": height, "width": width, "tile_h": tile, "tile_w": tile, "overlap": overlap, "multiple_h": multiple, "multiple_w": multiple}]
    )
    with pytest.raises(TilingError) as info:
        plan_tiles(height, width, tile, overlap, multiple)
    assert answer == {"error": str(info.value)}


def test_weights_match_python(harness):
    ramps = [(n, o) for n in (1, 2, 7, 64, 100, 512) for o in (0, 1, 3, 16, 24, 32, 100)] + [(4001, 2000)]
    windows = [(64, 48, 16), (37, 45, 24), (1, 1, 8), (100, 100, 0), (40, 48, 32)]
    answers = harness([{"op": "ramp", "n": n, "overlap": o} for n, o in ramps] + [{"op": "weights", "h": h, "w": w, "overlap": o} for h, w, o in windows])
    worst = 0.0
    for (n, o), answer in zip(ramps, answers):
        kotlin = np.asarray(answer["weights"], np.float32)
        python = ramp(n, o)
        assert kotlin.shape == python.shape
        worst = max(worst, float(np.abs(kotlin - python).max()))
    for (h, w, o), answer in zip(windows, answers[len(ramps) :]):
        kotlin = np.asarray(answer["weights"], np.float32).reshape(h, w)
        worst = max(worst, float(np.abs(kotlin - blend_weights(h, w, o)).max()))
    assert worst <= 1e-6


def test_reflection_matches_python(harness):
    cases = [(n, list(range(-3 * n - 2, 4 * n + 3))) for n in (1, 2, 3, 7, 64)]
    answers = harness([{"op": "reflect", "n": n, "indices": idx} for n, idx in cases])
    for (n, idx), answer in zip(cases, answers):
        assert answer["indices"] == [int(i) for i in reflect_index(np.asarray(idx), n)]


class CountingFn:
    """Python twin of the harness's CountingModel: x * 0.5 + 0.1 * (call number % 7), each
    pixel repeated ``upscale`` times along both axes."""

    def __init__(self, upscale=1):
        self.calls, self.upscale = 0, upscale

    def __call__(self, x):
        self.calls += 1
        y = x * np.float32(0.5) + np.float32(0.1) * np.float32(self.calls % 7)
        return np.repeat(np.repeat(y, self.upscale, axis=1), self.upscale, axis=2)


@pytest.mark.parametrize(
    "size,tile,overlap,multiple,upscale",
    [((150, 203), (64, 64), 24, (1, 1), 1), ((150, 203), (64, 64), 24, (32, 32), 1), ((37, 45), (64, 64), 24, (4, 4), 1),
     ((37, 203), (64, 64), 16, (32, 32), 1), ((2, 97), (32, 48), 16, (32, 16), 1), ((1, 1), (32, 32), 8, (4, 4), 1),
     ((130, 90), (40, 40), 39, (8, 8), 1), ((37, 53), (16, 24), 6, (4, 4), 4), ((23, 31), (8, 8), 3, (1, 1), 2)],
)
def test_tiled_enhancement_matches_python(harness, rng, size, tile, overlap, multiple, upscale):
    image = rng.random((*size, 3), dtype=np.float32)
    [answer] = harness(
        [{"op": "enhance", "height": size[0], "width": size[1], "tile_h": tile[0], "tile_w": tile[1], "overlap": overlap,
          "multiple_h": multiple[0], "multiple_w": multiple[1], "upscale": upscale, "image": image.ravel().tolist()}]
    )
    python = enhance_tiled(CountingFn(upscale), image, tile=tile, overlap=overlap, multiple=multiple, upscale=upscale)
    assert python.shape == (upscale * size[0], upscale * size[1], 3)
    kotlin = np.asarray(answer["image"], np.float32).reshape(python.shape)
    np.testing.assert_allclose(kotlin, python, atol=1e-6, rtol=0)
    assert answer["window_shapes"] == [[t.h, t.w] for t in plan_tiles(*size, tile, overlap, multiple)]


# ---------------------------------------------------------------------------- sidecar

UINT8_FIXED = {
    "format": "mobile_enhance.tflite_sidecar/2",
    "model": "fast_dped",
    "input": {"shape": [1, 100, 100, 3], "dtype": "uint8", "range": [0, 1], "quantization": {"scale": 0.00392156862745098, "zero_point": 0}},
    "output": {"shape": [1, 100, 100, 3], "dtype": "uint8", "range": [0, 1], "quantization": {"scale": 0.00390625, "zero_point": 0}},
    "size_multiple": 4,
    "dynamic_size": False,
    "upscale": 1,
    "fidelity": {"psnr": 21.5},
}
FLOAT_DYNAMIC = {"format": "mobile_enhance.tflite_sidecar/2", "input": {"shape": [1, -1, None, 3], "dtype": "float32"},
                 "size_multiple": 32, "dynamic_size": True, "upscale": 4}


def sidecar_case(data, source="models/m.json"):
    return {"op": "sidecar", "text": data if isinstance(data, str) else json.dumps(data), "source": source}


def test_sidecar_parsing(harness):
    int8 = {"format": "mobile_enhance.tflite_sidecar/2", "upscale": 1,
            "input": {"shape": [1, 96, 128, 3], "dtype": "int8", "range": [-1, 1], "quantization": {"scale": 0.0078125, "zero_point": -1}},
            "size_multiple": 32}
    fixed, dynamic, signed = harness([sidecar_case(UINT8_FIXED), sidecar_case(FLOAT_DYNAMIC), sidecar_case(int8)])
    assert fixed == {
        "format": "mobile_enhance.tflite_sidecar/2", "upscale": 1,
        "shape": [1, 100, 100, 3], "dtype": "uint8", "range": [0.0, 1.0],
        "quantization": {"scale": pytest.approx(0.00392156862745098, rel=1e-7), "zero_point": 0},
        "has_output": True, "size_multiple": 4, "dynamic_size": False, "model": "fast_dped",
        "tile_config": [100, 100, 25, 100, 100, 1],  # windows of exactly the model's input size
    }
    assert dynamic["shape"] == [1, None, None, 3] and dynamic["dynamic_size"] is True and dynamic["quantization"] is None
    # x4: 512-pixel output tiles are 128-pixel input windows
    assert dynamic["tile_config"] == [128, 128, 32, 32, 32, 4] and dynamic["has_output"] is False and dynamic["model"] is None
    # no "dynamic_size" key: fixed, because the shape is
    assert signed["dynamic_size"] is False and signed["range"] == [-1.0, 1.0] and signed["quantization"]["zero_point"] == -1
    assert signed["tile_config"] == [96, 128, 24, 96, 128, 1]


def test_kotlin_and_python_readers_take_the_same_fields_from_the_shipped_sidecars(harness):
    from mobile_enhance.runtime import app_fields, read_sidecar

    shipped = sorted((DEMO.parent / "tflite_models").glob("*.json"))
    shipped = [p for p in shipped if p.with_suffix(".tflite").exists()]
    assert len(shipped) >= 2, shipped
    answers = harness([sidecar_case(p.read_text(), p.name) for p in shipped])
    for path, kotlin in zip(shipped, answers):
        python = app_fields(read_sidecar(path.with_suffix(".tflite")))
        assert {k: v for k, v in kotlin.items() if k != "tile_config"} == python, path


def broken(path, value):
    data = json.loads(json.dumps(UINT8_FIXED))
    *parents, key = path
    target = data
    for p in parents:
        target = target[p]
    if value is KeyError:
        del target[key]
    else:
        target[key] = value
    return data


@pytest.mark.parametrize(
    "data,message",
    [
        ("[1, 2]", "models/m.json: not a JSON object"),
        ("{", "models/m.json: not a JSON object"),
        (broken(["input"], KeyError), "models/m.json: input is missing"),
        (broken(["size_multiple"], KeyError), "models/m.json: size_multiple is missing"),
        (broken(["size_multiple"], 2.5), "models/m.json: size_multiple must be an integer, got 2.5"),
        (broken(["size_multiple"], 0), "models/m.json: size_multiple must be >= 1, got 0"),
        (broken(["size_multiple"], 8), "models/m.json: input height 100 is not a multiple of size_multiple 8"),
        (broken(["input", "dtype"], "float16"), 'models/m.json: input.dtype must be one of float32, uint8, int8, got "float16"'),
        (broken(["input", "shape"], [1, 100, 100]), "models/m.json: input.shape must be [1, H, W, 3], got [1,100,100]"),
        (broken(["input", "shape"], [1, 100, 100, 4]), "models/m.json: input.shape must end in 3 channels"),
        (broken(["input", "shape"], [2, 100, 100, 3]), "models/m.json: input.shape must have batch 1"),
        (broken(["input", "shape"], [1, "100", 100, 3]), "models/m.json: input.shape[1] must be a number"),
        (broken(["input", "shape"], [1, -1, 100, 3]), "models/m.json: dynamic_size is false but input.shape"),
        (broken(["input", "quantization"], KeyError), "models/m.json: input.quantization is missing (required for uint8)"),
        (broken(["input", "quantization", "scale"], 0), "models/m.json: input.quantization.scale must be > 0"),
        (broken(["input", "quantization", "zero_point"], 300), "models/m.json: input.quantization.zero_point must be in [0, 255] for uint8, got 300"),
        (broken(["input", "range"], [1, 0]), "models/m.json: input.range must have high > low"),
        (broken(["dynamic_size"], "yes"), "models/m.json: dynamic_size must be true or false"),
        (broken(["output", "dtype"], KeyError), "models/m.json: output.dtype is missing"),
        (broken(["format"], "mobile_enhance.tflite_sidecar/1"), "models/m.json: format \"mobile_enhance.tflite_sidecar/1\" is from an earlier"),
        (broken(["format"], KeyError), 'models/m.json: format must be "mobile_enhance.tflite_sidecar/2", got ""'),
        (broken(["upscale"], KeyError), "models/m.json: upscale is missing"),
        (broken(["upscale"], 0), "models/m.json: upscale must be >= 1, got 0"),
        (broken(["upscale"], 2), "models/m.json: output.shape must be input.shape x upscale 2 = [1, 200, 200, 3]"),
    ],
)
def test_sidecar_errors_name_the_file_and_field(harness, data, message):
    [answer] = harness([sidecar_case(data)])
    assert set(answer) == {"error"} and answer["error"].startswith(message), answer


# ---------------------------------------------------------------------------- benchmark JSON


def test_latency_summary_matches_numpy(harness, rng):
    samples = [rng.gamma(2.0, 10.0, size=n).tolist() for n in (1, 2, 3, 10, 21, 100)]
    answers = harness([{"op": "summary", "values": s} for s in samples])
    for s, answer in zip(samples, answers):
        assert answer["median"] == pytest.approx(np.median(s), rel=1e-12)
        assert answer["p90"] == pytest.approx(np.percentile(s, 90), rel=1e-12)
        assert answer["min"] == min(s)


def test_benchmark_json_schema(harness):
    good = {"op": "bench_json", "model": "fast_dped_int8", "backend": "gpu", "threads": 4, "runs": 3, "init_ms": 812.5,
            "inference": [10.0, 12.0, 11.0], "end_to_end": [15.0, 17.5, 16.0], "device": "Google Pixel 8 (Android 14, API 34)"}
    answers = harness([good, {**good, "backend": "nnapi"}, {**good, "runs": 0}])
    data = json.loads(answers[0]["json"])
    assert data == {
        "model": "fast_dped_int8", "backend": "gpu", "threads": 4, "runs": 3, "init_ms": 812.5,
        "inference_ms": {"median": 11.0, "p90": pytest.approx(11.8), "min": 10.0},
        "end_to_end_ms": {"median": 16.0, "p90": pytest.approx(17.2), "min": 15.0},
        "device": "Google Pixel 8 (Android 14, API 34)",
    }
    assert answers[1] == {"error": 'backend must be "gpu" or "cpu", got "nnapi"'}
    assert answers[2] == {"error": "runs must be >= 1, got 0"}
