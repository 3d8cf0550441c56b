"""``mobile-enhance evaluate``: PSNR / SSIM / MS-SSIM of models against targets, beside the
input's (for super-resolution models, beside a bicubic upsampling of the input)."""

from __future__ import annotations

import sys

from absl import flags

NAME = "evaluate"
HELP = (
    "Score models on held-out pairs: --model=A.tflite[,B.tflite] and/or --run_dir=DIR[,DIR], "
    "--data=dped:PATH [--phone=iphone] or --data=pairs:IN,TARGET [--limit=N] [--output=FILE.json]. "
    "Super-resolution models (all of one upscale S) take --data=pairs:LR_DIR,HR_DIR, targets S times "
    "their inputs, and are compared with a bicubic xS upsampling of the input."
)


def define_flags(fv: flags.FlagValues) -> None:
    flags.DEFINE_list("model", [], "Comma-separated .tflite files (float and quantized side by side).", flag_values=fv)
    flags.DEFINE_list("run_dir", [], "Comma-separated training run folders (their Keras generator).", flag_values=fv)
    flags.DEFINE_string("data", None, "dped:ROOT (its test_data/patches) or pairs:IN_DIR,TARGET_DIR "
                        "(for xS super-resolution models: pairs:LR_DIR,HR_DIR, HR S times LR).", flag_values=fv)
    flags.DEFINE_enum("phone", "iphone", ["iphone", "blackberry", "sony"], "DPED phone.", flag_values=fv)
    flags.DEFINE_integer("limit", None, "Score only the first N pairs (natural name order).", flag_values=fv)
    flags.DEFINE_string("output", None, "Also write the report as JSON to this file.", flag_values=fv)
    flags.DEFINE_integer("tile", None, "Tile dynamic-size models at NxN instead of running each image whole.", flag_values=fv)
    flags.DEFINE_integer("threads", None, "LiteRT interpreter threads (default: LiteRT's).", flag_values=fv)
    flags.DEFINE_boolean("quiet", False, "No progress lines.", flag_values=fv)


def main(fv: flags.FlagValues, args: list[str]) -> int:
    from pathlib import Path

    from mobile_enhance import api
    from mobile_enhance.cli.enhance_cmd import Progress
    from mobile_enhance.errors import UserError
    from mobile_enhance.evaluate import format_table

    prog = f"mobile-enhance {NAME}"
    if args:
        raise UserError(f"unexpected arguments: {' '.join(args)}")
    progress = Progress("evaluate", enabled=not fv["quiet"].value)

    def on_pair(done, total, error):
        if error:
            progress.message(f"{prog}: skipped: {error}")
        if done == total or done % 25 == 0 or progress.tty:
            progress.update(done, total)

    try:
        report = api.evaluate(
            fv["model"].value,
            fv["run_dir"].value,
            data=fv["data"].value,
            phone=fv["phone"].value,
            limit=fv["limit"].value,
            output=fv["output"].value,
            tile=fv["tile"].value,
            threads=fv["threads"].value,
            on_pair=on_pair,
        )
    finally:
        progress.close()
    for row in report["results"]:
        if row.get("warning"):
            print(f"{prog}: warning: {row['warning']}", file=sys.stderr)
    print(format_table(report))
    if fv["output"].value:
        print(f"report: {Path(fv['output'].value)}")
    if report["pairs_skipped"]:
        total = report["pairs_evaluated"] + report["pairs_skipped"]
        print(f"{prog}: {report['pairs_skipped']} of {total} pairs skipped (listed above)", file=sys.stderr)
        return 1
    return 0
