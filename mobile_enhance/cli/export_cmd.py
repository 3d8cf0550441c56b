"""``mobile-enhance export``: quantize and convert a trained model to TFLite with a sidecar."""

from __future__ import annotations

import json

from absl import flags

NAME = "export"
HELP = "Export a trained model to .tflite (+ JSON sidecar): --run_dir=DIR or --weights=FILE --model=NAME, --quant=MODE --size=HxW."

SIZE_PRESETS = {"patch": (100, 100), "hd": (720, 1280), "iphone": (1536, 2048)}


def define_flags(fv: flags.FlagValues) -> None:
    flags.DEFINE_string("run_dir", None, "Training run folder (config + checkpoints).", flag_values=fv)
    flags.DEFINE_string("weights", None, "A .weights.h5 file (with --model) or a .keras model file.", flag_values=fv)
    flags.DEFINE_string("model", None, "Architecture of --weights (see `mobile-enhance models`).", flag_values=fv)
    flags.DEFINE_string("model_kwargs", "{}", "Architecture arguments of --weights, as JSON.", flag_values=fv)
    flags.DEFINE_enum("quant", "float32", ["float32", "float16", "dynamic", "int8", "qat_int8"], "Quantization mode.", flag_values=fv)
    flags.DEFINE_string(
        "size", "100x100", "HxW[,HxW...], 'dynamic', or presets patch (100x100), hd (720x1280), iphone (1536x2048).", flag_values=fv
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
        "calibration_percentile", 99.9,
        "int8, qat_int8: share (%) of each activation's calibration values its int8 range covers (100: min to max).", flag_values=fv,
    )
    flags.DEFINE_integer(
        "tune_ranges", 2, "int8, qat_int8: passes over the graph choosing each activation's range by how close the quantized output stays to the "
        "float model on the calibration images (0: ranges as calibrated; each pass quantizes and runs the model twice per activation).",
        lower_bound=0, flag_values=fv,
    )
    flags.DEFINE_boolean(
        "equalize", True, "int8 modes: put each instance norm's channels, and each concatenation's inputs, on one scale before converting "
        "(--noequalize: off).", flag_values=fv
    )
    flags.DEFINE_integer(
        "fidelity_images", 16, "Held-out pairs for the fidelity figures (more: steadier figures, more memory at large sizes).", flag_values=fv
    )
    flags.DEFINE_float("min_psnr", None, "Fidelity floor, dB against the float model (default per mode).", flag_values=fv)
    flags.DEFINE_boolean("force", False, "Write the file even below the fidelity floor.", flag_values=fv)
    flags.DEFINE_string("saved_model", None, "Also write a TensorFlow SavedModel to this folder.", flag_values=fv)


def parse_sizes(text: str):
    from mobile_enhance.api import parse_size

    sizes = []
    for part in text.split(","):
        part = part.strip()
        sizes.append(None if part == "dynamic" else SIZE_PRESETS.get(part) or parse_size(part))
    return sizes


def main(fv: flags.FlagValues, args: list[str]) -> int:
    from mobile_enhance.errors import UserError
    from mobile_enhance.export import export_model, export_saved_model, load_trained

    if args:
        raise UserError(f"unexpected arguments: {' '.join(args)}")
    if not fv["output"].value:
        raise UserError("--output=FILE.tflite is required")
    try:
        kwargs = json.loads(fv["model_kwargs"].value)
    except json.JSONDecodeError as error:
        raise UserError(f"--model_kwargs is not JSON: {error}") from None
    model, source, files, name, kwargs = load_trained(
        fv["run_dir"].value, fv["weights"].value, fv["model"].value, kwargs, fv["data"].value, fv["phone"].value
    )
    results = export_model(
        model,
        fv["output"].value,
        fv["quant"].value,
        parse_sizes(fv["size"].value),
        source,
        model_name=name,
        model_kwargs=kwargs,
        checkpoint_files=files,
        preset=fv["run_dir"].value or "",
        io_dtype=fv["io"].value,
        calibration_count=fv["calibration"].value,
        min_psnr=fv["min_psnr"].value,
        force=fv["force"].value,
        qat_steps=fv["qat_steps"].value,
        fidelity_count=fv["fidelity_images"].value,
        equalize=fv["equalize"].value,
        calibration_percentile=fv["calibration_percentile"].value,
        qat_target=fv["qat_target"].value,
        qat_ranges=fv["qat_ranges"].value,
        tune_sweeps=fv["tune_ranges"].value,
    )
    for r in results:
        f = r.sidecar["fidelity"]
        line = f"wrote {r.path} ({r.sidecar['file']['bytes'] / 1e6:.2f} MB, {r.sidecar['quantization']['mode']}): "
        line += f"{f['tflite_vs_float']['psnr']:.2f} dB vs float"
        if "tflite_vs_target" in f:
            line += f"; vs targets {f['tflite_vs_target']['psnr']:.2f} dB (float {f['float_vs_target']['psnr']:.2f}, input {f['input_vs_target']['psnr']:.2f})"
        if r.sidecar["forced"]:
            line += " [FORCED below the floor]"
        print(line)
        tuning = r.sidecar["quantization"].get("range_tuning")
        if tuning:
            print(f"  int8 ranges tuned: {tuning['ranges_changed']} of {tuning['ranges']} changed, "
                  f"{tuning['psnr_vs_float_before']:.2f} -> {tuning['psnr_vs_float_after']:.2f} dB vs float on "
                  f"{tuning['images']} calibration images ({tuning['trials']} trials)")
        if "float_vs_target" in f and f["float_vs_target"]["psnr"] < f["input_vs_target"]["psnr"]:
            (fh, fw), patch = f["size"], getattr(source, "patch_size", None)
            print(f"  warning: at {fh}x{fw} the float model itself is "
                  f"{f['input_vs_target']['psnr'] - f['float_vs_target']['psnr']:.2f} dB below its unprocessed input "
                  f"against the targets" + (f" (trained on {patch}x{patch} patches: export --size={patch}x{patch} and "
                  "let `mobile-enhance enhance` tile, or train on larger patches)" if patch and [fh, fw] != [patch, patch] else ""))
        if r.sidecar["ops_not_in_xnnpack"]:
            print(f"  ops XNNPACK does not take: {', '.join(r.sidecar['ops_not_in_xnnpack'])}")
    if fv["saved_model"].value:
        print(f"wrote SavedModel {export_saved_model(model, fv['saved_model'].value)}")
    return 0
