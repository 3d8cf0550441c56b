#!/usr/bin/env python
"""Reproduce benchmarks/results/latency.{json,md,png}: every model x {float32, float16, int8}
at 100x100 and 1280x720, LiteRT XNNPACK on this machine's CPU.

    .venv/bin/python benchmarks/run_latency.py            # the committed run (it prints its duration)
    .venv/bin/python benchmarks/run_latency.py --quick    # smoke run: 100x100, few runs, to a temp dir

What it does, per size and model:

* builds the generator with random initial weights (latency does not depend on the
  values, so no checkpoint is needed; the reports say so);
* runs at the smallest size the model's strides take: RSGUNet (stride product 32) runs
  720x1280 as 736x1280, i.e. padded, and the tables show the size each model ran at;
* counts its GMACs on the built graph at that size;
* converts it with ``mobile_enhance.export.convert``; int8 is full-integer with uint8
  input/output, calibrated on centre crops of the photos in ``--photos`` (or uniform noise
  when there are none; the report says which);
* benchmarks each file with ``mobile_enhance.benchmark.run_benchmark`` (CPU, each
  configuration in a fresh process), plus end-to-end latency on one photo: fitted to
  the file's size at 720x1280, and at the small sizes fitted to a 720x1280 frame
  (``--e2e_frame``) and run in the file's half-overlapping windows, as ``mobile-enhance
  enhance`` runs a patch-size file (the way fast_dped and muxdemux must run:
  ``results/frame_sizes.md``).

All figures of one invocation come from the same run: the float32 matmul ceiling per
thread count and SRCNN (float32, PIRM 2018's runtime baseline) at each size and thread
count, so "SRCNN time / time" and "% of matmul" are ratios within one run.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
QUANTS = ("float32", "float16", "int8")
SIZES = ((100, 100), (720, 1280))


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke run: 100x100 only, one thread count, 5 runs, written to a temp dir")
    p.add_argument("--models", default=None, help="comma-separated registry names (default: all)")
    p.add_argument("--quants", default=",".join(QUANTS), help="comma-separated quantization modes")
    p.add_argument("--sizes", default="100x100,720x1280", help="comma-separated HxW")
    p.add_argument("--threads", default="1,2", help="thread counts at sizes up to 256x256")
    p.add_argument("--hd_threads", default=None, help="thread counts above 256x256 (default: the CPUs this process may use)")
    p.add_argument("--runs", type=int, default=30, help="timed runs at sizes up to 256x256")
    p.add_argument("--hd_runs", type=int, default=3, help="timed runs above 256x256")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--hd_warmup", type=int, default=1)
    p.add_argument("--e2e_runs", type=int, default=10)
    p.add_argument("--hd_e2e_runs", type=int, default=2)
    p.add_argument("--e2e_frame", default="720x1280",
                   help="end to end at sizes up to 256x256: the photo fitted to this frame and run in the file's windows, "
                        "as `mobile-enhance enhance` runs a patch-size file ('none': fitted to the file's own size)")
    p.add_argument("--calibration", type=int, default=8, help="int8 calibration images at small sizes (4 above 256x256)")
    p.add_argument("--photos", default=str(REPO.parent / "shared" / "data" / "photos"), help="folder of photos (calibration, end to end)")
    p.add_argument("--out", default=None, help="output folder (default: benchmarks/results; --quick: a temp dir)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random initial weights (the same weights, so the same files, on every run)")
    p.add_argument("--keep_models", default=None, help="keep the converted .tflite files in this folder")
    p.add_argument("--in_process", action="store_true", help="measure in this process instead of a fresh one per configuration (faster; peak RSS then includes earlier work)")
    p.add_argument("--matmul_size", type=int, default=None, help="matrix size of the matmul ceiling (default 2048; --quick 1024)")
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.runs, args.warmup, args.e2e_runs, args.calibration = "100x100", 5, 1, 3, 2
        usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        args.threads = str(usable)
    return args


def photo_files(folder: str) -> list[Path]:
    root = Path(folder)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))


def calibration_images(photos: list[Path], n: int, h: int, w: int):
    """``n`` images ``(1, h, w, 3)`` in [0, 1]: centre crops of different photos, else uniform noise."""
    from PIL import Image, ImageOps

    if photos:
        out = []
        for path in photos[:n]:
            with Image.open(path) as image:
                out.append(np.asarray(ImageOps.fit(image.convert("RGB"), (w, h), Image.BILINEAR), np.float32)[None] / 255.0)
        return out, f"centre crops of {len(out)} photos"
    rng = np.random.default_rng(0)
    return [rng.random((1, h, w, 3), dtype=np.float32) for _ in range(n)], f"{n} uniform-noise images (no photos found)"


def issue_targets(rows: list[dict], names) -> list[dict]:
    """Per model, size and thread count, the ratios the project's targets are stated in:
    LiteRT float32 vs Keras ``model.predict`` float32 (and vs the bare ``tf.function``),
    int8 vs float32, and the float32 fraction of the matmul ceiling; all from this one run.

    ``litert_vs_keras_bound`` is the most LiteRT float32 could gain on Keras predict on
    this machine: the matmul ceiling's speed over predict's achieved GFLOP/s.
    """
    out = []
    keys = sorted({(r["requested_size"], r["threads"]) for r in rows})
    for name in names:
        for size, threads in keys:
            def pick(model, quant, runtime=None):
                return next((r for r in rows if r["model"] == model and r["quant"] == quant and r["requested_size"] == size
                             and r["threads"] == threads and r["backend"] == "cpu"
                             and (runtime in r.get("runtime", "") if runtime else "TensorFlow" not in r.get("runtime", ""))), None)
            f32, i8 = pick(name, "float32"), pick(name, "int8")
            predict, function = pick(f"keras:{name}", "float32", "model.predict"), pick(f"keras:{name}", "float32", "tf.function")
            if not (f32 and i8 and predict):
                continue
            keras_fraction = predict.get("fraction_of_ceiling") or 0.0
            out.append({
                "model": name, "size": size, "threads": threads,
                "litert_vs_keras": predict["median_ms"] / f32["median_ms"],
                "litert_vs_tf_function": function["median_ms"] / f32["median_ms"] if function else None,
                "keras_fraction_of_ceiling": keras_fraction,
                "litert_vs_keras_bound": 1 / keras_fraction if keras_fraction else None,
                "int8_vs_float32": f32["median_ms"] / i8["median_ms"],
                "float32_fraction_of_ceiling": f32.get("fraction_of_ceiling") or 0.0,
            })
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    from mobile_enhance.api import parse_size
    from mobile_enhance.benchmark import apply_roofline, machine_info, measure_ceilings, run_benchmark, write_reports
    from mobile_enhance.benchmark.worker import WorkerError
    from mobile_enhance.compat import keras
    from mobile_enhance.export import convert
    from mobile_enhance.models import MODELS, build_model, get_model_info, padded_size
    from mobile_enhance.models.stats import count_macs
    from mobile_enhance.quantization import equalize_for_int8

    names = args.models.split(",") if args.models else list(MODELS)
    for name in names:
        get_model_info(name)
    notes = []
    if "srcnn" not in names:
        names.append("srcnn")
        notes.append("srcnn added: it is the baseline of the 'SRCNN time / time' column")
    quants = args.quants.split(",")
    if "float32" not in quants:
        quants.insert(0, "float32")
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    small_threads = [int(t) for t in args.threads.split(",")]
    hd_threads = [int(t) for t in args.hd_threads.split(",")] if args.hd_threads else [usable]
    photos = photo_files(args.photos)
    photo = photos[0] if photos else None
    out_dir = Path(args.out) if args.out else (Path(tempfile.mkdtemp(prefix="latency_quick_")) if args.quick else REPO / "benchmarks" / "results")
    keep = Path(args.keep_models) if args.keep_models else None
    if keep:
        keep.mkdir(parents=True, exist_ok=True)

    notes += [
        f"weights: random initialisation, seed {args.seed} (float latency does not depend on the weight values; int8 latency can, "
        "through the scales: XNNPACK refuses some rescale ratios); not trained models",
        "LiteRT Interpreter with XNNPACK on the CPU; "
        + ("all configurations in one process (--in_process)" if args.in_process else "each configuration in a fresh process")
        + "; times are wall-clock per invoke()",
        "int8 = full integer with uint8 input/output; float16 = float16 weights (XNNPACK computes in float32 on CPUs without native fp16)",
        "GFLOP/s = 2 x GMACs / median latency; % of matmul = against the best float32 matmul (numpy or TensorFlow) at the same thread count, same run; "
        "int8 rows count integer operations, so they can pass 100% of the float32 ceiling",
        "SRCNN time / time: SRCNN float32 latency at the same size and thread count divided by the row's (PIRM 2018 speed ratio, before its cap at 4)",
    ]
    if photo is None:
        notes.append(f"no photos in {args.photos}: no end-to-end rows; int8 calibrated on noise")
    machine = machine_info()
    started = time.perf_counter()
    rows, e2e, unavailable, failures = [], [], [], []
    frame = None if args.e2e_frame == "none" else parse_size(args.e2e_frame)
    with tempfile.TemporaryDirectory() as tmp:
        for h, w in sizes:
            hd = h * w > 256 * 256
            threads = hd_threads if hd else small_threads
            runs, warmup, e2e_runs = (args.hd_runs, args.hd_warmup, args.hd_e2e_runs) if hd else (args.runs, args.warmup, args.e2e_runs)
            for name in names:
                # a super-resolution model is timed for an h x w output, as PIRM 2018 Track A did
                up = get_model_info(name).upscale
                if h % up or w % up:
                    notes.append(f"{name} upscales {up}x: no {h}x{w} row (not a multiple of {up})")
                    continue
                rh, rw = padded_size(name, h // up, w // up)
                if (rh, rw) != (h // up, w // up):
                    notes.append(f"{name} needs multiples of {get_model_info(name).size_multiple}: {h // up}x{w // up} ran as {rh}x{rw} (padded)")
                if up > 1:
                    notes.append(f"{name} upscales {up}x: its {h}x{w} rows are for an {h}x{w} output, input {rh}x{rw}")
                keras.utils.set_random_seed(args.seed)  # int8 timings depend on the draw: which ops XNNPACK takes
                model = build_model(name, input_shape=(rh, rw, 3))
                gmacs = count_macs(model, rh, rw) / 1e9
                for quant in quants:
                    t0 = time.perf_counter()
                    rep = None
                    calib_note = ""
                    graph = model
                    if quant == "int8":
                        images, calib_note = calibration_images(photos, args.calibration if not hd else min(args.calibration, 4), rh, rw)
                        rep = lambda images=images: iter(images)  # noqa: E731
                        graph, _ = equalize_for_int8(model, np.concatenate(images))  # as `mobile-enhance export` does
                    data = convert(graph, quant, input_size=(rh, rw), representative=rep)
                    file = (keep or Path(tmp)) / f"{name}_{quant}_{rh}x{rw}.tflite"
                    file.write_bytes(data)
                    _log(f"[{time.perf_counter() - started:6.0f} s] {name} {quant} {rh}x{rw}: converted in {time.perf_counter() - t0:.1f} s"
                         + (f" (int8 calibrated on {calib_note})" if calib_note else ""))
                    if calib_note:
                        notes.append(f"int8 at {rh}x{rw} calibrated on {calib_note}")
                    try:
                        report = run_benchmark(
                            file, threads=threads, runs=runs, warmup=warmup, photo=photo, e2e_runs=e2e_runs,
                            e2e_frame=None if hd or photo is None or up > 1 else frame,
                            gmacs=gmacs, model_name=name, label=name, measure_ceiling=False, isolate=not args.in_process, log=_log,
                            keras=name if quant == "float32" else None,  # the same graph in TensorFlow, beside LiteRT
                        )
                    except WorkerError as error:  # one file's crash (a LiteRT abort in its worker) does not end the run
                        reason = str(error).strip().splitlines()
                        failures.append(f"{name} {quant} {rh}x{rw}: {reason[0]} {reason[-1]}" + (f" (file kept: {file})" if keep else ""))
                        _log(f"  FAILED: {failures[-1]}")
                        continue
                    for r in report["rows"]:
                        r["size_label"] = f"{rh}x{rw}" + (f" -> {up * rh}x{up * rw}" if up > 1 else "")
                        r["requested_size"] = f"{h}x{w}"  # the output size of an upscaling model
                        r["file_bytes"] = len(data)
                    rows += report["rows"]
                    e2e += [dict(r, quant=quant) for r in report["end_to_end"]]
                    unavailable += report["unavailable"]
        ceiling = measure_ceilings(sorted({r["threads"] for r in rows}), n=args.matmul_size or (1024 if args.quick else 2048), log=_log)
    apply_roofline(rows, ceiling)
    for r in rows:
        base = next((b for b in rows if b["model"] == "srcnn" and b["quant"] == "float32" and b["requested_size"] == r["requested_size"]
                     and b["threads"] == r["threads"]), None)
        if base is not None:
            r["speedup_vs_srcnn"] = base["median_ms"] / r["median_ms"]
    targets = issue_targets(rows, names)
    for t in targets:
        vs_function = f" ({t['litert_vs_tf_function']:.2f}x its tf.function)" if t["litert_vs_tf_function"] else ""
        bound = f"; predict at {t['keras_fraction_of_ceiling']:.0%} of the ceiling, so at most {t['litert_vs_keras_bound']:.2f}x is possible" if t["litert_vs_keras_bound"] else ""
        notes.append(
            f"{t['model']} {t['size']} x{t['threads']}: LiteRT float32 {t['litert_vs_keras']:.2f}x Keras predict{vs_function}{bound}; "
            f"int8 {t['int8_vs_float32']:.2f}x float32; float32 at {t['float32_fraction_of_ceiling']:.0%} of the matmul ceiling"
        )
    for r in e2e:
        r["model"] = f"{r['model']} {r['quant']}"
    machine["load_after"] = round(os.getloadavg()[0], 2)
    elapsed = time.perf_counter() - started
    notes += [f"no rows for {f}" for f in failures]
    notes.append(f"whole run took {elapsed / 60:.1f} min" + (" (--quick)" if args.quick else ""))
    report = {
        "schema": "mobile_enhance.benchmark.latency/1",
        "title": "Latency of every model x quantization (LiteRT, CPU)" + (" — quick smoke run" if args.quick else ""),
        "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine,
        "settings": {k: v for k, v in vars(args).items()},
        "rows": rows,
        "targets": targets,
        "end_to_end": e2e,
        "ceiling": ceiling,
        "pirm": None,
        "unavailable": unavailable,
        "notes": list(dict.fromkeys(notes + ["PIRM totals not computed: random-init models have no quality figures"])),
    }
    paths = write_reports(report, out_dir, stem="latency")
    _log("wrote " + ", ".join(paths.values()))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
