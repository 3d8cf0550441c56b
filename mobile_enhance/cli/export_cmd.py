"""``mobile-enhance export``: quantize and convert a trained model to TFLite with a sidecar."""

from __future__ import annotations

from absl import flags

NAME = "export"
HELP = "Export a trained model to .tflite (+ JSON sidecar): --run_dir=DIR or --weights=FILE --model=NAME, --quant=MODE --size=HxW."


def define_flags(fv: flags.FlagValues) -> None:
    from mobile_enhance.export.modes import DEFAULT_PERCENTILE, DEFAULT_TUNE_SWEEPS, MODES  # the table, without TensorFlow

    flags.DEFINE_string("run_dir", None, "Training run folder (config + checkpoints).", flag_values=fv)
    flags.DEFINE_string("weights", None, "A .weights.h5 file (with --model) or a .keras model file.", flag_values=fv)
    flags.DEFINE_string("model", None, "Architecture of --weights (see `mobile-enhance models`).", flag_values=fv)
    flags.DEFINE_string("model_kwargs", "{}", "Architecture arguments of --weights, as JSON.", flag_values=fv)
    flags.DEFINE_enum(
        "quant", "float32", list(MODES),
        "Quantization mode: " + "; ".join(f"{m.name}: {m.summary}" for m in MODES.values()) + ".",
        flag_values=fv,
    )
    flags.DEFINE_string(
        "size", "100x100", "Input size HxW[,HxW...], 'dynamic', or presets patch (100x100), hd (720x1280), iphone (1536x2048); "
        "an x4 super-resolution model's output is 4 times it.", flag_values=fv
    )
    flags.DEFINE_string("output", None, "Output .tflite path (the sidecar goes beside it as .json).", flag_values=fv)
    flags.DEFINE_string("data", None, "Data for calibration/fidelity (default: the run's own).", flag_values=fv)
    flags.DEFINE_enum("phone", "iphone", ["iphone", "blackberry", "sony"], "DPED phone for --data=dped:PATH.", flag_values=fv)
    flags.DEFINE_enum("io", "uint8", ["uint8", "int8", "float32"], "int8 modes: input/output type.", flag_values=fv)
    flags.DEFINE_integer("calibration", 32, "Representative images for int8 calibration.", flag_values=fv)
    flags.DEFINE_integer("qat_steps", 200, "qat_int8: fine-tuning steps.", flag_values=fv)
    flags.DEFINE_enum(
        "qat_target", "data", ["data", "float"], "qat_int8: fine-tune to the training targets or to the float model's output.", flag_values=fv
    )
    flags.DEFINE_enum(
        "qat_ranges", "median", ["median", "minmax"],
        "qat_int8: each activation range from the median of its per-batch extremes over the calibration images, or their min/max.",
        flag_values=fv,
    )
    flags.DEFINE_float(
        "calibration_percentile", DEFAULT_PERCENTILE,
        "int8, qat_int8: share (%) of each activation's calibration values its int8 range covers (100: min to max).", flag_values=fv,
    )
    flags.DEFINE_integer(
        "tune_ranges", DEFAULT_TUNE_SWEEPS,
        "int8, qat_int8: passes over the graph choosing each activation's range by how close the quantized output stays to the "
        "float model on the calibration images (0: ranges as calibrated; each pass quantizes and runs the model twice per activation).",
        lower_bound=0, flag_values=fv,
    )
    flags.DEFINE_string(
        "float_layers", None,
        "int8, qat_int8: Keras layers whose ops stay float in the file, comma-separated (default: the card's, e.g. enhancenet's "
        "bicubic skip and the sum; 'none': every op integer).", flag_values=fv,
    )
    flags.DEFINE_boolean(
        "equalize", True, "int8 modes: put each instance norm's channels, and each concatenation's inputs, on one scale before converting "
        "(--noequalize: off).", flag_values=fv
    )
    flags.DEFINE_integer(
        "fidelity_images", 16, "Held-out pairs for the fidelity figures (more: steadier figures, more memory at large sizes).", flag_values=fv
    )
    flags.DEFINE_float(
        "min_psnr", None, "Fidelity floor, dB against the float model (default per mode: "
        + ", ".join(f"{m.name} {m.min_psnr:g}" for m in MODES.values()) + ").", flag_values=fv,
    )
    flags.DEFINE_boolean("force", False, "Write the file even below the fidelity floor.", flag_values=fv)
    flags.DEFINE_string("saved_model", None, "Also write a TensorFlow SavedModel to this folder.", flag_values=fv)


def main(fv: flags.FlagValues, args: list[str]) -> int:
    from pathlib import Path

    from mobile_enhance import api
    from mobile_enhance.errors import UserError

    if args:
        raise UserError(f"unexpected arguments: {' '.join(args)}")
    results = api.export(
        fv["output"].value,
        run_dir=fv["run_dir"].value,
        weights=fv["weights"].value,
        model=fv["model"].value,
        model_kwargs=fv["model_kwargs"].value,
        quant=fv["quant"].value,
        size=fv["size"].value,
        data=fv["data"].value,
        phone=fv["phone"].value,
        io=fv["io"].value,
        calibration=fv["calibration"].value,
        qat_steps=fv["qat_steps"].value,
        qat_target=fv["qat_target"].value,
        qat_ranges=fv["qat_ranges"].value,
        calibration_percentile=fv["calibration_percentile"].value,
        tune_ranges=fv["tune_ranges"].value,
        float_layers=fv["float_layers"].value,
        equalize=fv["equalize"].value,
        fidelity_images=fv["fidelity_images"].value,
        min_psnr=fv["min_psnr"].value,
        force=fv["force"].value,
        saved_model=fv["saved_model"].value,
    )
    for r in results:
        f = r.sidecar["fidelity"]
        line = f"wrote {r.path} ({r.sidecar['file']['bytes'] / 1e6:.2f} MB, {r.sidecar['quantization']['mode']}): "
        line += f"{f['tflite_vs_float']['psnr']:.2f} dB vs float"
        if "tflite_vs_target" in f:
            baseline, key = ("bicubic", "bicubic_vs_target") if "bicubic_vs_target" in f else ("input", "input_vs_target")
            line += (f"; vs targets {f['tflite_vs_target']['psnr']:.2f} dB (float {f['float_vs_target']['psnr']:.2f}, "
                     f"{baseline} {f[key]['psnr']:.2f})")
        if r.sidecar["forced"]:
            line += " [FORCED below the floor]"
        print(line)
        tuning = r.sidecar["quantization"].get("range_tuning")
        if tuning:
            print(f"  int8 ranges tuned: {tuning['ranges_changed']} of {tuning['ranges']} changed, "
                  f"{tuning['psnr_vs_float_before']:.2f} -> {tuning['psnr_vs_float_after']:.2f} dB vs float on "
                  f"{tuning['images']} calibration images ({tuning['trials']} trials)")
        kept = r.sidecar["quantization"].get("float_layers")
        if kept:
            print(f"  kept float: {kept['ops']} ops of {', '.join(kept['layers'])}")
        for warning in r.warnings:
            print(f"  warning: {warning}")
        if r.sidecar["ops_not_in_xnnpack"]:
            print(f"  ops XNNPACK does not take: {', '.join(r.sidecar['ops_not_in_xnnpack'])}")
    if fv["saved_model"].value:
        print(f"wrote SavedModel {Path(fv['saved_model'].value)}")
    return 0
