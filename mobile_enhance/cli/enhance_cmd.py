"""``mobile-enhance enhance``: enhance photos and folders of photos with a ``.tflite`` model."""

from __future__ import annotations

import sys
import time

from absl import flags

NAME = "enhance"
HELP = (
    "Enhance photos: mobile-enhance enhance PHOTO_OR_FOLDER... --output=DIR [--model=FILE.tflite] "
    "[--tile=N] [--overlap=N] [--threads=N] [--format=jpg|png|same] [--quality=95]."
)


def define_flags(fv: flags.FlagValues) -> None:
    flags.DEFINE_string("output", None, "Output folder (created if missing); outputs keep the photos' names.", flag_values=fv)
    flags.DEFINE_string(
        "model", None, "The .tflite model (default: tflite_models/default.tflite, else tflite_models/default_int8.tflite).", flag_values=fv
    )
    flags.DEFINE_integer("tile", None, "Window side for a dynamic-size model (default 256; memory grows with it); a fixed-size model uses its size.", flag_values=fv)
    flags.DEFINE_integer("overlap", None, "Pixels shared by neighbouring windows (default: half the window of a fixed-size model; 32, at most a quarter of the window, for a dynamic one).", flag_values=fv)
    flags.DEFINE_integer("threads", None, "Interpreter threads (default: the CPUs this process may use).", flag_values=fv)
    flags.DEFINE_enum("format", "jpg", ["jpg", "png", "same"], "Output format; `same` keeps each photo's format.", flag_values=fv)
    flags.DEFINE_integer("quality", 95, "JPEG (and WebP) quality, 1-100.", flag_values=fv)
    flags.DEFINE_boolean("quiet", False, "No progress lines.", flag_values=fv)


class Progress:
    """Progress on stderr: one redrawn bar on a terminal, else one line per item."""

    def __init__(self, label: str, enabled: bool = True, stream=None):
        self.stream = stream or sys.stderr
        self.label = label
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self._drawn = False
        self.t0 = time.monotonic()

    def _clear(self):
        if self._drawn:
            self.stream.write("\r\033[K")
            self._drawn = False

    def message(self, line: str):
        """Print ``line`` (an error or a note) without mangling the bar."""
        self._clear()
        print(line, file=self.stream, flush=True)

    def update(self, done: int, total: int, item: str = ""):
        if not self.enabled:
            return
        if self.tty:
            width = 30
            filled = width * done // max(total, 1)
            rate = done / max(time.monotonic() - self.t0, 1e-9)
            self.stream.write(f"\r\033[K{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} ({rate:.2f}/s) {item}")
            self.stream.flush()
            self._drawn = True
        else:
            print(f"{self.label} [{done}/{total}] {item}", file=self.stream, flush=True)

    def close(self):
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


def main(fv: flags.FlagValues, args: list[str]) -> int:
    from mobile_enhance import api

    prog = f"mobile-enhance {NAME}"
    quiet = fv["quiet"].value
    progress = Progress("enhance", enabled=not quiet)

    def on_model(model, threads):
        progress.t0 = time.monotonic()  # the rate counts photos, not loading the model
        if not quiet:
            progress.message(f"model: {model.describe()}, {threads} thread{'s' if threads != 1 else ''}")
        if model.contract.warning:  # no sidecar: the contract was read from the file
            print(f"{prog}: warning: {model.contract.warning}", file=sys.stderr)
        warning = model.quality_warning()
        if warning:
            print(f"{prog}: {warning}", file=sys.stderr)

    def on_result(done, total, result):
        if result.error:
            progress.message(f"{prog}: error: {result.error}")
        elif result.notes and not quiet:
            progress.message(f"{result.source}: {'; '.join(result.notes)}")
        if total > 1:
            progress.update(done, total, f"{result.source.name}" + (" (failed)" if result.error else f" -> {result.output}"))

    try:
        report = api.enhance(
            args,
            fv["output"].value,
            model=fv["model"].value,
            tile=fv["tile"].value,
            overlap=fv["overlap"].value,
            threads=fv["threads"].value,
            format=fv["format"].value,
            quality=fv["quality"].value,
            on_model=on_model,
            on_result=on_result,
        )
    finally:
        progress.close()
    failed, written = report.failed, report.written
    print(f"enhanced {written} photo{'s' if written != 1 else ''} into {fv['output'].value} in {report.seconds:.1f}s")
    if failed:
        print(f"{prog}: {len(failed)} of {len(report.results)} inputs failed (listed above)", file=sys.stderr)
        return 1
    return 0
