"""Latency benchmarks of exported ``.tflite`` models: desktop CPU, desktop GPU, Android phones.

``run_benchmark(model_path, ...)`` is the Python API behind ``mobile-enhance bench``; it
returns a report dict, and :func:`write_reports` writes it as JSON, Markdown and a PNG.

What is measured, per configuration, each in a fresh process (see :mod:`.worker`):

* ``cpu``: the LiteRT ``Interpreter`` (XNNPACK) for each thread count; optionally the same
  architecture in TensorFlow (``keras=NAME``) beside it.
* ``gpu``: a GPU delegate ``.so`` (``gpu_delegate=PATH``) in the ``Interpreter``, else
  LiteRT's ``CompiledModel`` with the GPU accelerator (WebGPU, Vulkan on Linux); and
  TensorFlow on the GPU when ``tf.config`` lists one and ``keras`` is given. Where none
  works, one line in ``unavailable`` says what is missing, and no number is reported.
* ``adb``: ``benchmark_model`` on an Android phone (:mod:`.android`).

Also: end-to-end per-image latency on a photo (decode to encode, PIL), initialisation
time, peak RSS (:mod:`.memory` says how), achieved GFLOP/s against the float32 matmul
ceiling measured in the same run, and the PIRM 2018 Track B score (:mod:`.pirm`) when
quality figures are given, with SRCNN timed in the same run as the baseline.

The file's contract and its sidecar come from :func:`mobile_enhance.runtime.load` (a bad
sidecar is refused in one line; a missing one is a note). From the sidecar: ``gmacs``
(counted at export at ``gmacs_size``; used when that is the benchmarked size), else
``model`` (registry name: GMACs counted on the built graph at the benchmarked size), and
``fidelity`` (its ``tflite_vs_target``, for the PIRM score).
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Callable, Sequence

from mobile_enhance.benchmark.android import MODES as ADB_MODES
from mobile_enhance.benchmark.report import to_markdown, write_reports
from mobile_enhance.errors import UserError

BACKENDS = ("cpu", "gpu", "adb")
#: The checkout's root (benchmarks/ lives there).
REPO_ROOT = Path(__file__).resolve().parents[2]

__all__ = ["ADB_MODES", "BACKENDS", "machine_info", "run_benchmark", "to_markdown", "write_reports"]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def machine_info() -> dict:
    """CPU model, CPU counts, load average, platform and runtime versions of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()

    def version(dist):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return None

    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "load_before": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "litert": version("ai-edge-litert"),
        "tensorflow": version("tensorflow"),
        "numpy": version("numpy"),
        "pillow": version("pillow"),
    }


def _measure(task: str, kwargs: dict, isolate: bool, threads_env: int | None = None) -> dict:
    from mobile_enhance.benchmark.worker import run_isolated, run_task

    if isolate or threads_env is not None:
        return run_isolated(task, kwargs, threads=threads_env)
    return run_task(task, kwargs)


#: The runtime name of the --keras rows, per way TensorFlow runs the model (measure.KERAS_CALLS).
KERAS_RUNTIMES = {"predict": "TensorFlow (tf_keras, model.predict)", "function": "TensorFlow (tf_keras, tf.function)"}


def _gmacs_for(name: str, height: int, width: int) -> float:
    from mobile_enhance.models import build_model, check_input_size
    from mobile_enhance.models.stats import count_macs

    check_input_size(name, height, width)
    return count_macs(build_model(name), height, width) / 1e9


def _sidecar_quality(fidelity: dict, name: str) -> tuple[dict | None, str | None]:
    """PSNR and MS-SSIM for the PIRM score from a sidecar's ``fidelity``: the file's output
    against the targets as ``mobile-enhance export`` records it (``tflite_vs_target``), or
    ``psnr``/``ms_ssim`` at the top (a hand-written sidecar). Returns ``(quality, None)``,
    or ``(None, why not)`` where neither is there."""
    from mobile_enhance.benchmark.pirm import quality_from_dict

    measured = fidelity.get("tflite_vs_target")
    if isinstance(measured, dict) and {"psnr", "ms_ssim"} <= measured.keys():
        return dict(quality_from_dict(measured, f"sidecar of {name} (tflite_vs_target)"), source="sidecar fidelity against the targets"), None
    if "tflite_vs_float" not in fidelity and ("psnr" in fidelity or "ms_ssim" in fidelity):
        return dict(quality_from_dict(fidelity, f"sidecar of {name}"), source="sidecar fidelity"), None
    return None, (f"no PIRM score: the sidecar of {name} has no PSNR and MS-SSIM against targets "
                  "(export with held-out data, from this version on, or pass --quality=FILE)")


def _photo_size(photo) -> tuple[int, int]:
    from PIL import Image

    try:
        with Image.open(photo) as image:
            return image.height, image.width
    except OSError as error:
        raise UserError(f"{photo}: not an image PIL can read ({error})") from None


def run_benchmark(
    model_path: str | Path,
    *,
    backends: Sequence[str] = ("cpu",),
    threads: Sequence[int] = (1, 2, 4),
    runs: int = 50,
    warmup: int = 5,
    size: tuple[int, int] | None = None,
    photo: str | Path | None = None,
    e2e_runs: int | None = None,
    e2e_frame=None,
    keras: str | None = None,
    keras_weights: str | None = None,
    keras_calls: Sequence[str] = ("predict", "function"),
    gpu_delegate: str | None = None,
    benchmark_binary: str | None = None,
    adb_serial: str | None = None,
    adb_path: str | None = None,
    adb_modes: Sequence[str] = ADB_MODES,
    quality: dict | str | Path | None = None,
    pirm_baseline: bool = True,
    gmacs: float | None = None,
    model_name: str | None = None,
    label: str | None = None,
    matmul_size: int = 2048,
    matmul_repeats: int = 5,
    measure_ceiling: bool = True,
    isolate: bool = True,
    android_runner: Callable | None = None,
    log: Callable[[str], None] = _stderr,
) -> dict:
    """Benchmark one ``.tflite`` file; return the report (see :func:`write_reports`).

    Args:
      model_path: the ``.tflite`` file.
      backends: any of :data:`BACKENDS`.
      threads: CPU thread counts to sweep (XNNPACK / TensorFlow intra-op / benchmark_model).
      runs, warmup: timed runs and untimed warm-up runs after the first inference.
      size: ``(H, W)`` for a file with a dynamic input size (a fixed-size file runs at its size).
      photo: image file for the end-to-end latency (at the largest thread count, on the CPU).
      e2e_runs: end-to-end passes (default ``min(runs, 20)``).
      e2e_frame: ``(H, W)``, or ``"photo"`` for the photo's own size: the end-to-end pass
        fits the photo to that frame and runs the model window by window over it, as
        ``mobile-enhance enhance`` does (a 100x100 file over a 720x1280 frame); without it,
        the photo is fitted to the model's input.
      keras: registry model name; times the same architecture in TensorFlow beside LiteRT
        and gives the GMACs. ``keras_weights``: weights file to load into it.
        ``keras_calls``: how TensorFlow runs it, any of "predict" (``model.predict``) and
        "function" (a traced ``tf.function``, the graph without predict's overhead).
      gpu_delegate: path of a GPU delegate ``.so`` for the ``gpu`` backend.
      benchmark_binary, adb_serial, adb_path, adb_modes: the ``adb`` backend (:mod:`.android`);
        ``adb_path`` defaults to ``adb`` on ``PATH`` or in ``$ANDROID_HOME/platform-tools``.
      quality: ``{"psnr", "ms_ssim"}`` or a JSON file holding them, for the PIRM score.
      pirm_baseline: time SRCNN (float32, same size, same threads) as the PIRM baseline.
      gmacs, model_name: GMACs per image and registry name when known to the caller.
      label: the model's name in the tables (default: the file's stem).
      matmul_size, matmul_repeats: the float32 matmul ceiling's matrix size and repeats.
      measure_ceiling: measure that ceiling (each thread count in its own process).
      isolate: measure each configuration in a fresh process (memory, thread pools).
      android_runner: replaces the subprocess call to ``adb`` (tests).
      log: progress lines go here.
    """
    from mobile_enhance.benchmark.measure import describe_tflite, resolve_size
    from mobile_enhance.benchmark.pirm import pirm_scores, quality_from_dict, read_quality

    path = Path(model_path)
    if not path.is_file():
        raise UserError(f"model file {str(path)!r} does not exist")
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown or not backends:
        raise UserError(f"unknown backend {', '.join(map(repr, unknown)) or '(none)'}; known backends: {', '.join(BACKENDS)}")
    threads = [int(t) for t in threads]
    if not threads or min(threads) < 1:
        raise UserError(f"thread counts must be positive integers, got {threads}")
    if runs < 1 or warmup < 0:
        raise UserError(f"--runs must be >= 1 and --warmup >= 0, got runs={runs}, warmup={warmup}")
    if photo is not None and not Path(photo).is_file():
        raise UserError(f"photo {str(photo)!r} does not exist")
    if e2e_frame is not None:
        if photo is None:
            raise UserError("an end-to-end frame needs --photo")
        e2e_frame = _photo_size(photo) if e2e_frame == "photo" else tuple(int(v) for v in e2e_frame)
    if "adb" in backends:
        from mobile_enhance.benchmark.android import check_binary

        check_binary(benchmark_binary)
        bad = [m for m in adb_modes if m not in ADB_MODES]
        if bad:
            raise UserError(f"unknown Android mode {bad[0]!r}; known: {', '.join(ADB_MODES)}")
    bad_calls = [c for c in keras_calls if c not in KERAS_RUNTIMES]
    if bad_calls or (keras is not None and not keras_calls):
        raise UserError(f"unknown Keras call {', '.join(map(repr, bad_calls)) or '(none)'}; known: {', '.join(KERAS_RUNTIMES)}")
    if keras is not None:
        from mobile_enhance.models import get_model_info

        get_model_info(keras)  # unknown names list the known ones
    if isinstance(quality, (str, Path)):
        quality = dict(read_quality(quality), source=str(quality))
    elif quality is not None:
        quality = dict(quality_from_dict(quality, "quality"), source="given")

    machine = machine_info()
    info = describe_tflite(path)
    h, w = resolve_size(info, size)
    size_label = f"{h}x{w}" + (f" -> {h * info['upscale']}x{w * info['upscale']}" if info["upscale"] > 1 else "")
    sidecar = info["sidecar"] or {}
    notes: list[str] = [info["warning"]] if info["warning"] else []
    model_name = model_name or sidecar.get("model") or keras
    gmacs_source = "given" if gmacs is not None else None
    if gmacs is None and sidecar.get("gmacs") is not None and sidecar.get("gmacs_size") == [h, w]:
        gmacs, gmacs_source = float(sidecar["gmacs"]), f"sidecar (counted at export, {size_label})"
    elif gmacs is None and model_name:
        gmacs, gmacs_source = _gmacs_for(model_name, h, w), f"counted on {model_name} at {size_label}"
    if gmacs is None:
        notes.append("GMACs unknown (no sidecar 'model'/'gmacs', no --keras): no GFLOP/s column")
    no_quality = "no quality figures (--quality or sidecar 'fidelity'): PIRM score not computed"
    if quality is None and isinstance(sidecar.get("fidelity"), dict):
        quality, why_not = _sidecar_quality(sidecar["fidelity"], path.name)
        no_quality = why_not or no_quality
    usable = machine["usable_cpus"] or 1
    if max(threads) > usable:
        notes.append(f"thread counts above {usable} (the CPUs this process may use) oversubscribe the cores")

    label = label or path.stem
    base = {"model": label, "quant": info["quant"], "size_label": size_label, "gmacs": gmacs}
    rows: list[dict] = []
    unavailable: list[dict] = []
    e2e: list[dict] = []

    def add(row_base: dict, answer: dict, backend: str) -> None:
        if "unavailable" in answer:
            unavailable.append({"backend": backend, "reason": answer["unavailable"]})
            log(f"  {backend}: {answer['unavailable']}")
            return
        result = answer["result"]
        row = {**base, **row_base, **{k: v for k, v in result.items() if k not in ("size",)}}
        rows.append(row)
        log(f"  {row['backend']} {row['runtime']} x{row['threads']}: median {row['median_ms']:.2f} ms (min {row['min_ms']:.2f}, p90 {row['p90_ms']:.2f})")

    def add_keras(device: str, t: int, call: str) -> None:
        kw = {"name": keras, "size": [h, w], "threads": t, "runs": runs, "warmup": warmup, "weights": keras_weights, "device": device, "call": call}
        add({"backend": device, "runtime": KERAS_RUNTIMES[call], "threads": t, "model": f"keras:{keras}", "quant": "float32"},
            _measure("keras", kw, isolate), f"{device} (TensorFlow)")

    common = {"model_path": str(path), "runs": runs, "warmup": warmup, "size": [h, w]}
    if "cpu" in backends:
        for t in threads:
            add({"backend": "cpu", "runtime": "LiteRT Interpreter (XNNPACK)", "threads": t}, _measure("interpreter", {**common, "threads": t}, isolate), "cpu")
        if keras:
            for t in threads:
                for call in keras_calls:
                    add_keras("cpu", t, call)
    if "gpu" in backends:
        t = max(threads)
        if gpu_delegate:
            add({"backend": "gpu", "runtime": f"LiteRT Interpreter + {Path(gpu_delegate).name}", "threads": t},
                _measure("interpreter", {**common, "threads": t, "delegate_path": str(gpu_delegate)}, isolate), "gpu (delegate)")
        else:
            add({"backend": "gpu", "runtime": "LiteRT CompiledModel (GPU accelerator)", "threads": t},
                _measure("compiled", {**common, "threads": t, "accelerator": "gpu"}, isolate), "gpu (LiteRT)")
        if keras:
            for call in keras_calls:
                add_keras("gpu", t, call)
    if "adb" in backends:
        from mobile_enhance.benchmark.android import AndroidBench, AndroidUnavailable, subprocess_runner

        try:
            phone = AndroidBench(adb=adb_path, serial=adb_serial, runner=android_runner or subprocess_runner)
            device = phone.device_info()
            machine["android"] = device
            runtime = {"cpu": "benchmark_model (XNNPACK)", "gpu": "benchmark_model --use_gpu", "nnapi": "benchmark_model --use_nnapi"}
            for r in phone.run_benchmarks(path, benchmark_binary, threads=threads, modes=adb_modes, runs=runs, warmup=warmup):
                backend = f"android {device.get('model') or phone.serial}"
                if "error" in r:
                    unavailable.append({"backend": f"{backend} ({r['mode']})", "reason": r["error"]})
                    log(f"  {backend} {r['mode']}: {r['error']}")
                    continue
                mem = None
                if r.get("memory_init_mb") is not None:
                    mem = f"{r['memory_init_mb']:.1f}/{r['memory_overall_mb']:.1f}"
                rows.append({**base, "backend": backend, "runtime": runtime[r["mode"]], "phone_memory": mem,
                             **{k: v for k, v in r.items() if k not in ("mode",)}})
                log(f"  {backend} {r['mode']} x{r['threads']}: mean {r['mean_ms']:.2f} ms")
        except AndroidUnavailable as error:
            unavailable.append({"backend": "adb", "reason": str(error)})
            log(f"  adb: {error}")

    if photo is not None and "cpu" in backends:
        t = max(threads)
        kw = {"model_path": str(path), "photo": str(photo), "threads": t, "runs": e2e_runs or min(runs, 20), "size": [h, w]}
        if e2e_frame is not None:
            kw["frame"] = list(e2e_frame)
        answer = _measure("end_to_end", kw, isolate)
        r = answer["result"]
        run_at = size_label if e2e_frame is None else f"{r['size'][0]}x{r['size'][1]} in {r['window'][0]}x{r['window'][1]} windows"
        e2e.append({"model": label, "threads": t, "photo_name": Path(photo).name, "photo_size_label": "x".join(map(str, r["photo_size"])),
                    **r, "size_label": run_at})
        log(f"  end to end x{t} on {Path(photo).name}: median {r['total_median_ms']:.2f} ms")

    ceiling = []
    if measure_ceiling:
        ceiling = measure_ceilings(sorted({r["threads"] for r in rows if r["backend"] == "cpu"}), matmul_size, matmul_repeats, log)
    apply_roofline(rows, ceiling)

    track_a = None
    if info["upscale"] > 1:
        track_a = _track_a(rows, info["upscale"], h, w, max(threads))
        if track_a is None:
            notes.append("PIRM Track A time not given: it needs the cpu backend")
    pirm = None
    if quality is not None and info["upscale"] > 1:
        notes.append(f"PIRM Track B score not computed: it scores same-size enhancement, and this file upscales {info['upscale']}x")
    elif quality is not None:
        if not pirm_baseline:
            notes.append("PIRM score not computed: SRCNN baseline timing switched off")
        else:
            t = max(threads)
            mine = next((r for r in rows if r["backend"] == "cpu" and r["threads"] == t and r["runtime"].startswith("LiteRT")), None)
            if mine is None:
                notes.append("PIRM score not computed: it needs the cpu backend (SRCNN baseline on the same runtime)")
            else:
                baseline = time_srcnn_baseline(h, w, t, runs, warmup, isolate)
                scores = pirm_scores(quality["psnr"], quality["ms_ssim"], baseline["median_ms"], mine["median_ms"])
                from mobile_enhance.benchmark.pirm import WEIGHTS

                pirm = {"psnr": quality["psnr"], "ms_ssim": quality["ms_ssim"], "quality_source": quality["source"],
                        "time_baseline_ms": baseline["median_ms"], "time_solution_ms": mine["median_ms"],
                        "config": f"LiteRT XNNPACK x{t} at {size_label}, medians", "weights": WEIGHTS, **scores}
    elif "cpu" in backends:
        notes.append(no_quality)

    machine["load_after"] = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    methods = sorted({r["memory_method"] for r in rows if r.get("memory_method")})
    if methods:
        where = "each configuration in a fresh process" if isolate else "measured inside this process"
        notes.append(f"peak RSS: {'; '.join(methods)}, {where}")
    return {
        "schema": "mobile_enhance.benchmark/1",
        "title": f"Latency: {label} ({info['quant']}, {size_label})",
        "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine,
        "model": {**info, "name": model_name, "gmacs": gmacs, "gmacs_source": gmacs_source, "size": [h, w]},
        "settings": {"backends": list(backends), "threads": threads, "runs": runs, "warmup": warmup, "isolate": isolate},
        "rows": rows,
        "end_to_end": e2e,
        "ceiling": ceiling,
        "pirm": pirm,
        "pirm_track_a": track_a,
        "unavailable": unavailable,
        "notes": notes,
    }


def _track_a(rows: list[dict], upscale: int, h: int, w: int, threads: int) -> dict | None:
    """PIRM 2018 Track A's convention for an upscaling file: the time to produce a 1280x720
    output, from the LiteRT CPU row at ``threads``: measured when the benchmarked input gives
    that output, else scaled by output pixels (and said so)."""
    from mobile_enhance.benchmark.measure import TRACK_A_OUTPUT, track_a_input

    mine = next((r for r in rows if r["backend"] == "cpu" and r["threads"] == threads and r["runtime"].startswith("LiteRT")), None)
    if mine is None:
        return None
    out_h, out_w = TRACK_A_OUTPUT
    at = track_a_input(upscale)
    if (h, w) == at:
        ms, how = mine["median_ms"], f"measured at input {h}x{w}"
    else:
        ms = mine["median_ms"] * (out_h * out_w) / (upscale * h * upscale * w)
        how = f"scaled by output pixels from input {h}x{w} (output {upscale * h}x{upscale * w})"
    return {"output_size": [out_h, out_w], "input_size": list(at), "upscale": upscale, "ms": ms, "how": how,
            "config": f"LiteRT XNNPACK x{threads}, median"}


def measure_ceilings(threads: Sequence[int], n: int = 2048, repeats: int = 5, log: Callable[[str], None] = _stderr) -> list[dict]:
    """Float32 matmul GFLOP/s at each thread count, each in a fresh process with the BLAS threads set."""
    out = []
    for t in threads:
        r = _measure("matmul", {"n": n, "repeats": repeats, "threads": t}, True, threads_env=t)["result"]
        keep = ("gflops", "source", "blas", "numpy_gflops", "numpy_cpu_per_wall", "tensorflow_gflops", "tensorflow_cpu_per_wall", "notes")
        out.append({"threads": t, "n": n, "repeats": repeats, **{k: r.get(k) for k in keep}})
        log(f"  matmul ceiling x{t}: {r['gflops']:.1f} GFLOP/s ({r['source']})")
    return out


def apply_roofline(rows: list[dict], ceiling: Sequence[dict]) -> None:
    """Add achieved GFLOP/s (2 FLOPs per MAC, over the median, else the mean) and, on the CPU,
    the matmul ceiling at the same thread count and the fraction of it reached."""
    by_threads = {c["threads"]: c["gflops"] for c in ceiling}
    for r in rows:
        ms = r.get("median_ms") if r.get("median_ms") is not None else r.get("mean_ms")
        if r.get("gmacs") and ms:
            r["achieved_gflops"] = 2.0 * r["gmacs"] / (ms / 1e3)
            if r["backend"] == "cpu" and r["threads"] in by_threads:
                r["ceiling_gflops"] = by_threads[r["threads"]]
                r["fraction_of_ceiling"] = r["achieved_gflops"] / r["ceiling_gflops"]


def time_srcnn_baseline(h: int, w: int, threads: int, runs: int, warmup: int, isolate: bool = True) -> dict:
    """SRCNN (PIRM's runtime baseline), float32, converted at ``h x w``, LiteRT XNNPACK on ``threads``."""
    from mobile_enhance.export import convert
    from mobile_enhance.models import build_model

    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp, f"srcnn_{h}x{w}.tflite")
        file.write_bytes(convert(build_model("srcnn"), "float32", input_size=(h, w)))
        answer = _measure("interpreter", {"model_path": str(file), "threads": threads, "runs": runs, "warmup": warmup, "size": [h, w]}, isolate)
    return answer["result"]
