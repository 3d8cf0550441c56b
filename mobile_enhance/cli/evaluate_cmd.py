"""``mobile-enhance evaluate``: PSNR / SSIM / MS-SSIM of models against targets, beside the input's."""

from __future__ import annotations

import sys

from absl import flags

NAME = "evaluate"
HELP = (
    "Score models on held-out pairs: --model=A.tflite[,B.tflite] and/or --run_dir=DIR[,DIR], "
    "--data=dped:PATH [--phone=iphone] or --data=pairs:IN,TARGET [--limit=N] [--output=FILE.json]."
)


def define_flags(fv: flags.FlagValues) -> None:
    flags.DEFINE_list("model", [], "Comma-separated .tflite files (float and quantized side by side).", flag_values=fv)
    flags.DEFINE_list("run_dir", [], "Comma-separated training run folders (their Keras generator).", flag_values=fv)
    flags.DEFINE_string("data", None, "dped:ROOT (its test_data/patches) or pairs:IN_DIR,TARGET_DIR.", flag_values=fv)
    flags.DEFINE_enum("phone", "iphone", ["iphone", "blackberry", "sony"], "DPED phone.", flag_values=fv)
    flags.DEFINE_integer("limit", None, "Score only the first N pairs (natural name order).", flag_values=fv)
    flags.DEFINE_string("output", None, "Also write the report as JSON to this file.", flag_values=fv)
    flags.DEFINE_integer("tile", None, "Tile dynamic-size models at NxN instead of running each image whole.", flag_values=fv)
    flags.DEFINE_integer("threads", None, "LiteRT interpreter threads (default: LiteRT's).", flag_values=fv)
    flags.DEFINE_boolean("quiet", False, "No progress lines.", flag_values=fv)


def main(fv: flags.FlagValues, args: list[str]) -> int:
    from pathlib import Path

    from mobile_enhance.cli.enhance_cmd import Progress
    from mobile_enhance.errors import UserError
    from mobile_enhance.evaluate import evaluate, format_table, keras_system, load_pairs, tflite_system, write_json

    prog = f"mobile-enhance {NAME}"
    if args:
        raise UserError(f"unexpected arguments: {' '.join(args)}")
    if not fv["model"].value and not fv["run_dir"].value:
        raise UserError("give --model=A.tflite[,B.tflite] and/or --run_dir=DIR to evaluate")
    if not fv["data"].value:
        raise UserError("--data=dped:PATH or --data=pairs:IN_DIR,TARGET_DIR is required")
    if fv["tile"].value is not None and fv["tile"].value < 1:
        raise UserError(f"--tile must be >= 1, got {fv['tile'].value}")
    output = Path(fv["output"].value) if fv["output"].value else None
    if output is not None and not output.parent.is_dir():
        raise UserError(f"{output}: folder {output.parent} does not exist")
    pairs, where = load_pairs(fv["data"].value, fv["phone"].value, fv["limit"].value)
    systems = [tflite_system(p, num_threads=fv["threads"].value, tile=fv["tile"].value) for p in fv["model"].value]
    systems += [keras_system(d, tile=fv["tile"].value) for d in fv["run_dir"].value]
    progress = Progress("evaluate", enabled=not fv["quiet"].value)

    def on_pair(done, total, error):
        if error:
            progress.message(f"{prog}: skipped: {error}")
        if done == total or done % 25 == 0 or progress.tty:
            progress.update(done, total)

    try:
        report = evaluate(systems, pairs, on_pair=on_pair)
    finally:
        progress.close()
    report = {"data": where, "phone": fv["phone"].value if fv["data"].value.startswith("dped:") else None, **report}
    if report["pairs_evaluated"] == 0:
        raise UserError(f"{where}: none of the {len(pairs)} pairs could be scored (see the lines above)")
    print(format_table(report))
    if output is not None:
        write_json(report, output)
        print(f"report: {output}")
    if report["pairs_skipped"]:
        print(f"{prog}: {report['pairs_skipped']} of {len(pairs)} pairs skipped (listed above)", file=sys.stderr)
        return 1
    return 0
