"""``mobile-enhance bench``: latency of a ``.tflite`` model on the CPU, a GPU or an Android phone."""

from __future__ import annotations

import sys

from absl import flags

NAME = "bench"
HELP = (
    "Latency of a .tflite model: warm-up, then median/p90/min, init time, peak RSS, end to end on a photo, "
    "GFLOP/s against a matmul ceiling; CPU (XNNPACK thread sweep), GPU, Android over adb. "
    "Exit status 1 when a requested backend is unavailable here (one line says why)."
)


def define_flags(fv: flags.FlagValues) -> None:
    flags.DEFINE_string("model", None, "The .tflite file to benchmark.", flag_values=fv)
    flags.DEFINE_list("backend", ["cpu"], "Comma-separated: cpu, gpu, adb.", flag_values=fv)
    flags.DEFINE_list("threads", ["1", "2", "4"], "CPU thread counts to sweep.", flag_values=fv)
    flags.DEFINE_integer("runs", 50, "Timed runs per configuration.", flag_values=fv)
    flags.DEFINE_integer("warmup", 5, "Untimed runs after the first inference.", flag_values=fv)
    flags.DEFINE_string("size", None, "HxW to run a model whose input size is dynamic.", flag_values=fv)
    flags.DEFINE_string("photo", None, "Photo for the end-to-end latency (decode, preprocess, infer, postprocess, encode).", flag_values=fv)
    flags.DEFINE_string(
        "e2e_frame", None, "HxW or 'photo': fit the photo to this frame and run the model over it in windows, as "
        "`mobile-enhance enhance` does (default: fit the photo to the model's input).", flag_values=fv
    )
    flags.DEFINE_integer("e2e_runs", None, "End-to-end passes (default: min(runs, 20)).", flag_values=fv)
    flags.DEFINE_string("output", None, "Directory for NAME.json, NAME.md and NAME.png (default: print Markdown only).", flag_values=fv)
    flags.DEFINE_string("keras", None, "Registry model name: also time it in TensorFlow at the same size; gives the GMACs.", flag_values=fv)
    flags.DEFINE_string("keras_weights", None, "Weights file to load into the --keras model (default: random init).", flag_values=fv)
    flags.DEFINE_string("gpu_delegate", None, "GPU delegate .so for the gpu backend (default: LiteRT's GPU accelerator).", flag_values=fv)
    flags.DEFINE_string("benchmark_binary", None, "TFLite benchmark_model for the phone (android_aarch64_benchmark_model).", flag_values=fv)
    flags.DEFINE_string("adb_serial", None, "Device serial when several phones are attached.", flag_values=fv)
    flags.DEFINE_string("adb", None, "Path of adb (default: adb on PATH or in $ANDROID_HOME/platform-tools).", flag_values=fv)
    flags.DEFINE_list("adb_modes", ["cpu", "gpu", "nnapi"], "benchmark_model modes on the phone.", flag_values=fv)
    flags.DEFINE_string("quality", None, 'JSON file {"psnr": dB, "ms_ssim": 0..1} for the PIRM 2018 Track B score.', flag_values=fv)
    flags.DEFINE_integer("matmul_size", 2048, "Matrix size of the float32 matmul ceiling.", flag_values=fv)


def main(fv: flags.FlagValues, args: list[str]) -> int:
    from mobile_enhance import api
    from mobile_enhance.benchmark import to_markdown
    from mobile_enhance.benchmark.worker import WorkerError
    from mobile_enhance.errors import UserError

    if args:
        raise UserError(f"unexpected arguments {' '.join(args)!r} (flags only, e.g. --model=FILE.tflite)")
    try:
        report = api.bench(
            fv["model"].value,
            backend=fv["backend"].value,
            threads=fv["threads"].value,
            runs=fv["runs"].value,
            warmup=fv["warmup"].value,
            size=fv["size"].value,
            photo=fv["photo"].value,
            e2e_frame=fv["e2e_frame"].value,
            e2e_runs=fv["e2e_runs"].value,
            output=fv["output"].value,
            keras=fv["keras"].value,
            keras_weights=fv["keras_weights"].value,
            gpu_delegate=fv["gpu_delegate"].value,
            benchmark_binary=fv["benchmark_binary"].value,
            adb_serial=fv["adb_serial"].value,
            adb=fv["adb"].value,
            adb_modes=fv["adb_modes"].value,
            quality=fv["quality"].value,
            matmul_size=fv["matmul_size"].value,
        )
    except WorkerError as error:  # the runtime itself died on this file (an abort in native code)
        lines = str(error).strip().splitlines()
        print(f"mobile-enhance bench: error: {fv['model'].value}: {lines[0]}" + (f" ({lines[-1]})" if len(lines) > 1 else ""),
              file=sys.stderr)
        return 1
    print(to_markdown(report))
    if "written" in report:
        print("\nwrote " + ", ".join(report["written"].values()), file=sys.stderr)
    for gap in report["unavailable"]:
        print(f"mobile-enhance bench: {gap['backend']}: {gap['reason']}", file=sys.stderr)
    return 1 if report["unavailable"] else 0
