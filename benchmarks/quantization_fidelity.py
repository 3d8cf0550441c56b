"""Does quantization keep the enhancement? float32 vs int8 vs qat_int8 on held-out data.

For each trained run folder: export float32, int8 and qat_int8 at the run's patch size
(and int8 as it was before range tuning, percentile ranges and instance-norm equalization, for comparison),
with calibration and QAT on the run's own training data and fidelity on its held-out
pairs (``mobile_enhance.export.export_model``), then tabulate PSNR/SSIM against the targets,
the loss against float32, and file sizes. Writes ``benchmarks/results/quantization.{json,md}``.

Targets (issue 4): int8 and qat_int8 lose at most 0.3 dB PSNR against the targets compared
with float32; int8 files at most 0.3x the float32 size.

Quantized modes are exported once per ``--calibration`` count (images for the activation
ranges): the spread between those rows shows how much of a loss is the draw of calibration
images rather than the mode.

``--keep=RUN,...`` carries those runs' rows over from the existing ``quantization.json`` in
``--out`` (each row says when it was measured), so one retrained run can be measured again
without rerunning the others.

usage: python benchmarks/quantization_fidelity.py RUN_DIR [RUN_DIR ...] [--qat_steps=200]
       [--calibration=32,64,128] [--keep=RUN,...] [--out=DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from mobile_enhance.export.exporter import DEFAULT_TUNE_SWEEPS

#: Row label -> (export mode, instance-norm equalization, calibration percentile, range-tuning
#: passes). The last three rows are the int8 export as it was before each change:
#: ``int8_untuned`` without output-driven range tuning, ``int8_minmax`` with TFLite's min/max
#: ranges as calibrated, ``int8_unequalized`` with none of the three (only run for models
#: with instance norms).
VARIANTS = {"float32": ("float32", False, 100.0, 0), "int8": ("int8", True, 99.9, DEFAULT_TUNE_SWEEPS),
            "qat_int8": ("qat_int8", True, 99.9, DEFAULT_TUNE_SWEEPS), "int8_untuned": ("int8", True, 99.9, 0),
            "int8_minmax": ("int8", True, 100.0, 0), "int8_unequalized": ("int8", False, 100.0, 0)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--qat_steps", type=int, default=200)
    parser.add_argument("--fidelity_count", type=int, default=64)
    parser.add_argument("--calibration", default="32,64,128", help="calibration image counts, comma-separated")
    parser.add_argument("--keep", default="", help="runs whose rows are kept from --out's quantization.json, comma-separated")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    kept = _kept_rows(Path(args.out) / "quantization.json", [k for k in args.keep.split(",") if k], args.runs)

    from mobile_enhance.export import export_model, load_trained

    counts = [int(c) for c in args.calibration.split(",")]
    rows = []
    today = time.strftime("%Y-%m-%d")
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for run in args.runs:
            model, source, files, name, kwargs = load_trained(run_dir=run)
            size = (source.patch_size, source.patch_size)
            has_norms = any(type(layer).__name__ == "InstanceNormalization" for layer in model.layers)
            labels = [label for label in VARIANTS if label != "float32" and (has_norms or label != "int8_unequalized")]
            for label, count in [("float32", 0)] + [(m, c) for m in labels for c in counts]:
                mode, equalize, percentile, sweeps = VARIANTS[label]
                (result,) = export_model(
                    model, Path(tmp) / f"{name}_{label}.tflite", mode, [size], source, model_name=name, model_kwargs=kwargs,
                    checkpoint_files=files, fidelity_count=args.fidelity_count, qat_steps=args.qat_steps, min_psnr=0,
                    equalize=equalize, calibration_percentile=percentile, tune_sweeps=sweeps, **({"calibration_count": count} if count else {}),
                )
                f = result.sidecar["fidelity"]
                rows.append({
                    "run": str(run), "model": name, "model_kwargs": dict(kwargs or {}), "mode": label, "calibration_images": count, "size": list(size), "images": f["images"],
                    "psnr_vs_target": f["tflite_vs_target"]["psnr"], "ssim_vs_target": f["tflite_vs_target"]["ssim"],
                    "float_psnr_vs_target": f["float_vs_target"]["psnr"], "input_psnr_vs_target": f["input_vs_target"]["psnr"],
                    "input_ssim_vs_target": f["input_vs_target"]["ssim"],
                    "psnr_vs_float": f["tflite_vs_float"]["psnr"], "bytes": result.sidecar["file"]["bytes"], "measured": today,
                })
                print(f"{name} {label} ({count} calibration images): {rows[-1]['psnr_vs_target']:.3f} dB vs targets, {rows[-1]['bytes']} bytes",
                      file=sys.stderr)
    seconds = round(time.time() - t0, 1)
    by = {(r["run"], r["mode"]): r for r in rows}
    for r in rows:
        base = by[(r["run"], "float32")]
        r["psnr_loss_vs_float32"] = round(base["psnr_vs_target"] - r["psnr_vs_target"], 3)
        r["ssim_loss_vs_float32"] = round(base["ssim_vs_target"] - r["ssim_vs_target"], 4)
        r["size_ratio_vs_float32"] = round(r["bytes"] / base["bytes"], 3)
        r["meets_targets"] = r["mode"] == "float32" or (
            r["psnr_loss_vs_float32"] <= 0.3 and (not r["mode"].startswith("int8") or r["size_ratio_vs_float32"] <= 0.3)
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = kept + rows
    meta = {"seconds": seconds, "qat_steps": args.qat_steps, "rows": rows}
    from mobile_enhance.fileio import atomic_write_text

    atomic_write_text(out / "quantization.json", json.dumps(meta, indent=2) + "\n")
    lines = [
        "| run | model | mode | calibration images | PSNR vs target (dB) | loss vs float32 (dB) | SSIM | SSIM loss | PSNR vs float (dB) | input PSNR / SSIM | size (KB) | size / float32 | meets targets | measured |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        model = r["model"] + (f" ({', '.join(f'{k}={v}' for k, v in r['model_kwargs'].items())})" if r.get("model_kwargs") else "")
        lines.append(
            f"| {Path(r['run']).name} | {model} | {r['mode']} | {r['calibration_images'] or '-'} | {r['psnr_vs_target']:.2f} | {r['psnr_loss_vs_float32']:+.2f} | "
            f"{r['ssim_vs_target']:.4f} | {r['ssim_loss_vs_float32']:+.4f} | {r['psnr_vs_float']:.2f} | "
            f"{r['input_psnr_vs_target']:.2f} / {r['input_ssim_vs_target']:.4f} | {r['bytes'] / 1024:.0f} | {r['size_ratio_vs_float32']:.2f} | "
            f"{'yes' if r['meets_targets'] else 'NO'} | {r.get('measured', '-')} |"
        )
    lines += ["", f"{rows[0]['images'] if rows else 0} held-out pairs per run at the run's patch size; QAT: {args.qat_steps} steps; "
              f"took {seconds / 60:.1f} min" + (f" for {', '.join(args.runs)}; the other rows are kept from earlier invocations." if kept else ".")]
    atomic_write_text(out / "quantization.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def _kept_rows(path: Path, keep: list, runs: list) -> list:
    """The rows of runs ``keep`` in results file ``path``, in its order; errors name the file."""
    if not keep:
        return []
    overlap = sorted(set(keep) & set(runs))
    if overlap:
        raise SystemExit(f"--keep and the runs to measure overlap: {', '.join(overlap)}")
    if not path.exists():
        raise SystemExit(f"{path}: no earlier results to keep rows from (--keep={','.join(keep)})")
    try:
        rows = json.loads(path.read_text())["rows"]
    except (ValueError, KeyError, TypeError) as err:
        raise SystemExit(f"{path}: not a quantization results file ({err})")
    missing = [k for k in keep if not any(r["run"] == k for r in rows)]
    if missing:
        raise SystemExit(f"{path}: has no rows of {', '.join(missing)} (it has {', '.join(sorted({r['run'] for r in rows}))})")
    return [r for r in rows if r["run"] in keep]


if __name__ == "__main__":
    sys.exit(main())
