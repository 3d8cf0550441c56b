"""``mobile-enhance import``: flags over :func:`mobile_enhance.api.import_weights`."""

from __future__ import annotations

from absl import flags

NAME = "import"
HELP = "Turn an author's published model into a run folder: --format=FORMAT --checkpoint=PATH --run_dir=DIR."


def define_flags(fv: flags.FlagValues) -> None:
    from mobile_enhance.importers import IMPORTERS, format_names

    format_names()
    known = "; ".join(f"{name}: {row.describe}" for name, row in sorted(IMPORTERS.items()))
    flags.DEFINE_string("format", None, f"The source's format ({known}).", flag_values=fv)
    flags.DEFINE_string("checkpoint", None, "The published weights (a checkpoint prefix or file).", flag_values=fv)
    flags.DEFINE_string("run_dir", None, "The run folder to write (new, or empty).", flag_values=fv)


def main(fv: flags.FlagValues, args: list[str]) -> int:
    from mobile_enhance import api
    from mobile_enhance.errors import UserError

    if args:
        raise UserError(f"unexpected arguments: {' '.join(args)}")
    result = api.import_weights(fv["format"].value, fv["checkpoint"].value, fv["run_dir"].value)
    imported = result["imported"]
    print(f"imported {imported['source']} ({imported['format']}, sha256 {imported['sha256'][:12]}...) as a "
          f"{result['model']} {result['model_kwargs'] or ''} run: {result['run_dir']}")
    print(f"next: mobile-enhance export --run_dir={result['run_dir']} --quant=int8 --data=photos:PHOTOS --output=model.tflite")
    print("  (PHOTOS: any folder of photos, for calibration and the fidelity against the float model; the run has no data source)")
    return 0
