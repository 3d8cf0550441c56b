"""``mobile-enhance enhance``: enhance photos and folders of photos with a ``.tflite`` model."""

from __future__ import annotations

import os
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
    from mobile_enhance.enhance.pipeline import TFLiteModel, default_model_path, enhance_files, prepare_output_dir
    from mobile_enhance.errors import UserError

    prog = f"mobile-enhance {NAME}"
    if not args:
        raise UserError("give one or more photos or folders to enhance (mobile-enhance enhance PHOTO... --output=DIR)")
    if not fv["output"].value:
        raise UserError("--output=DIR is required (the folder the enhanced photos go to)")
    if not 1 <= fv["quality"].value <= 100:
        raise UserError(f"--quality must be in 1..100, got {fv['quality'].value}")
    threads = fv["threads"].value
    if threads is not None and threads < 1:
        raise UserError(f"--threads must be >= 1, got {threads}")
    if threads is None:
        threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    prepare_output_dir(fv["output"].value)  # before loading the model: fail fast
    model_path = fv["model"].value or default_model_path()
    model = TFLiteModel(model_path, num_threads=threads, tile=fv["tile"].value, overlap=fv["overlap"].value)
    quiet = fv["quiet"].value
    progress = Progress("enhance", enabled=not quiet)
    if not quiet:
        progress.message(f"model: {model.describe()}, {threads} thread{'s' if threads != 1 else ''}")
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

    t0 = time.monotonic()
    try:
        results = enhance_files(model, args, fv["output"].value, fmt=fv["format"].value, quality=fv["quality"].value, on_result=on_result)
    finally:
        progress.close()
    seconds = time.monotonic() - t0
    failed = [r for r in results if r.error]
    written = len(results) - len(failed)
    print(f"enhanced {written} photo{'s' if written != 1 else ''} into {fv['output'].value} in {seconds:.1f}s")
    if failed:
        print(f"{prog}: {len(failed)} of {len(results)} inputs failed (listed above)", file=sys.stderr)
        return 1
    return 0
