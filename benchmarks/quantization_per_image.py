"""Where does int8 lose PSNR against the targets? Per held-out patch, for one trained run.

Exports the run's generator to int8 as ``mobile-enhance export --quant=int8`` does (at its
patch size, ``--calibration`` images), runs the float model and the int8 file on the
held-out pairs and lists, per patch sorted by the float model's PSNR against its target:
that PSNR, the int8 file's change against it, and the int8 file's PSNR against the float
model. Then the loss a file would show if its error were independent of the float model's
(per patch ``10 log10(1 + 10^((float PSNR - int8-vs-float PSNR) / 10))``), for the file's
own fidelity and for uniform fidelities of 38 to 46 dB: the mean per-patch PSNR loss is
set by the patches the float model already gets right, where int8's own error is within a
few dB of the float model's. Writes ``OUT/quantization_per_image_<model>.md`` with ``--out``.

usage: python benchmarks/quantization_per_image.py RUN_DIR [--calibration=32] [--out=DIR]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def per_patch(run_dir, calibration: int = 32):
    """``(model name, rows)``: per held-out patch ``(float PSNR, int8 change, int8 vs float)``."""
    from mobile_enhance.export import load_trained
    from mobile_enhance.export.exporter import DEFAULT_PERCENTILE, DEFAULT_TUNE_SWEEPS, _convert, heldout_pairs
    from mobile_enhance.export.tflite import run_tflite
    from mobile_enhance.metrics import image_metrics

    model, source, _, name, _ = load_trained(run_dir=run_dir)
    size = source.patch_size
    x, y = heldout_pairs(source, size, size, 64)
    blob, *_ = _convert(model, "int8", (size, size), source, "uint8", calibration, 0, percentile=DEFAULT_PERCENTILE,
                        tune_sweeps=DEFAULT_TUNE_SWEEPS)
    f, q = model.predict(x, batch_size=8, verbose=0), run_tflite(blob, x)
    psnr = lambda a, b: image_metrics(a, b)["psnr"]  # noqa: E731
    rows = [(psnr(f[i : i + 1], y[i : i + 1]), psnr(q[i : i + 1], y[i : i + 1]) - psnr(f[i : i + 1], y[i : i + 1]),
             psnr(q[i : i + 1], f[i : i + 1])) for i in range(len(x))]
    return name, sorted(rows)


def independent_loss(float_psnr, int8_vs_float) -> float:
    """Mean per-patch PSNR loss if the int8 error were independent of the float model's."""
    return float(np.mean(10 * np.log10(1 + 10 ** ((np.asarray(float_psnr) - np.asarray(int8_vs_float)) / 10))))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--calibration", type=int, default=32)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    name, rows = per_patch(args.run, args.calibration)
    pf, change, pqf = (np.array(c) for c in zip(*rows))
    quarter = pf >= np.quantile(pf, 0.75)
    lines = [f"# int8 PSNR loss per held-out patch: {name} ({args.run})", "",
             f"int8 as exported by default, {args.calibration} calibration images; {len(rows)} held-out patches, "
             "sorted by the float model's PSNR against the target.", "",
             "| float PSNR vs target | int8 change | int8 vs float PSNR |", "|---|---|---|"]
    lines += [f"| {a:.2f} | {b:+.2f} | {c:.2f} |" for a, b, c in rows]
    lines += ["", f"- mean change: {change.mean():+.3f} dB; on the quarter of patches the float model does best "
              f"(float PSNR >= {np.quantile(pf, 0.75):.1f} dB): {change[quarter].mean():+.3f} dB, "
              f"{change[quarter].sum() / change.sum():.0%} of the total",
              f"- expected loss if the int8 error were independent of the float model's: {independent_loss(pf, pqf):.3f} dB "
              f"at this file's fidelity (mean {pqf.mean():.1f} dB vs float)"]
    lines += [f"- at a uniform {level} dB vs float: {independent_loss(pf, level):.3f} dB" for level in (38, 40, 42, 44, 46)]
    text = "\n".join(lines) + "\n"
    from mobile_enhance.fileio import emit_report

    emit_report(text, args.out, f"quantization_per_image_{name}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
