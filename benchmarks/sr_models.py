"""Super-resolution and sharpening models on held-out photos: each trained run against the
row it has to beat (bicubic xS of the input for super-resolution, the blurred input for
sharpening), its float32 and int8 files beside it, and imported models measured the same way.

The config (``benchmarks/configs/measure/sr_models.json``) lists the models::

    {"photos": "../shared/data/photos", "crops_per_photo": 2, "frame": [180, 320],
     "models": [{"name": "...", "run_dir": "runs/...", "files": ["A.tflite", ...],
                 "data": "sr:PHOTOS (only for a run without a data source, an imported one)"}]}

For each model the held-out pairs are those of its training run (its data kind, split and
seed from the run's ``config.json``, augmentation off): ``crops_per_photo`` crops of every
held-out photo, inputs of ``frame`` (``H, W``) pixels and targets ``S`` times that. The Keras
generator runs each input whole; each ``.tflite`` file through
:class:`mobile_enhance.enhance.pipeline.TFLiteModel` (one window where the file is of the
frame's size). PSNR / SSIM / MS-SSIM against the targets; for each file also its distance
from the Keras model (PSNR against the float output) and its loss against float32
(``float32 file dB - file dB``).

Writes ``benchmarks/results/NAME.{json,md}``, NAME the config file's stem (``sr_models`` for
the default config), so that each measure config keeps its own results.

usage: python benchmarks/sr_models.py [--config=benchmarks/configs/measure/sr_models.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def held_out_pairs(spec: str, data: dict, frame, crops: int, upscale: int):
    """``(inputs, targets, held-out photo names)`` of a run's data source at ``frame``."""
    from mobile_enhance.data import make_source

    h, w = frame
    source = make_source(spec, max(h, w) * upscale, seed=data.get("seed", 0), augment=False,
                         val_fraction=data.get("val_fraction", 0.15), upscale=upscale)
    source = source.cropping(h * upscale, w * upscale)
    source.val_crops = crops
    pairs = source.validation()
    if not pairs:
        raise SystemExit(f"{spec}: no held-out crop of {w * upscale}x{h * upscale} (photos too small or none held out)")
    return np.stack([a for a, _ in pairs]), np.stack([b for _, b in pairs]), [f.name for f in source.val_files]


def measure(entry: dict, photos: str, frame, crops: int) -> dict:
    from mobile_enhance.data.images import bicubic_upscale
    from mobile_enhance.enhance.pipeline import TFLiteModel
    from mobile_enhance.metrics import image_metrics, psnr
    from mobile_enhance.models import get_card
    from mobile_enhance.training import load_generator

    run_dir = REPO / entry["run_dir"]
    model, config = load_generator(run_dir)
    card = get_card(config.model)
    s = card.upscale
    spec = entry.get("data") or config.data.spec
    kind, _, path = spec.partition(":")
    if not Path(path).is_absolute():
        spec = f"{kind}:{(REPO / path).resolve()}" if (REPO / path).exists() else f"{kind}:{photos}"
    data = {"seed": config.data.seed, "val_fraction": config.data.val_fraction} if config.data.spec else {}
    x, y, held_out = held_out_pairs(spec, data, frame, crops, s)
    row = {"name": entry["name"], "model": config.model, "model_kwargs": config.model_kwargs, "run_dir": entry["run_dir"],
           "data": spec, "held_out_photos": held_out, "pairs": len(x), "input": list(x.shape[1:3]), "target": list(y.shape[1:3])}
    base = bicubic_upscale(x, s) if s > 1 else x
    row["baseline"] = {"what": f"bicubic x{s} of the input (PIL)" if s > 1 else "the blurred input", **image_metrics(base, y)}
    t0 = time.perf_counter()
    float_out = np.concatenate([model(x[i : i + 1], training=False).numpy() for i in range(len(x))])
    row["keras_float32"] = {**image_metrics(float_out, y), "seconds": round(time.perf_counter() - t0, 1)}
    row["keras_float32"]["gain_db"] = row["keras_float32"]["psnr"] - row["baseline"]["psnr"]
    row["files"] = []
    for file in entry.get("files", []):
        tfl = TFLiteModel(REPO / file)
        t0 = time.perf_counter()
        out = np.stack([tfl.enhance(image) for image in x])
        r = {"file": file, "quant": tfl.quant,
             **image_metrics(out, y), "vs_keras_psnr": float(np.mean(psnr(out, float_out))),
             "seconds": round(time.perf_counter() - t0, 1)}
        r["gain_db"] = r["psnr"] - row["baseline"]["psnr"]
        row["files"].append(r)
    floats = [f for f in row["files"] if f["quant"] == "float32"]
    for f in row["files"]:
        if floats and f["quant"] != "float32":
            f["loss_vs_float32_db"] = floats[0]["psnr"] - f["psnr"]
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(REPO / "benchmarks" / "configs" / "measure" / "sr_models.json"))
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = p.parse_args(argv)
    config = json.loads(Path(args.config).read_text())
    photos = str((REPO / config.get("photos", "../shared/data/photos")).resolve())
    frame = tuple(config.get("frame", (180, 320)))
    rows = [measure(entry, photos, frame, int(config.get("crops_per_photo", 2))) for entry in config["models"]]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = Path(args.config).stem
    (out / f"{stem}.json").write_text(json.dumps({"config": config, "results": rows}, indent=2) + "\n")
    lines = []
    for row in rows:
        b, k = row["baseline"], row["keras_float32"]
        lines += [f"## {row['name']}", "",
                  f"`{row['model']}` {row['model_kwargs'] or ''} from `{row['run_dir']}`; {row['pairs']} held-out crops "
                  f"({row['input'][1]}x{row['input'][0]} -> {row['target'][1]}x{row['target'][0]}) of "
                  f"{', '.join(row['held_out_photos'])} ({row['data'].split(':')[0]}: data).", "",
                  "| | PSNR (dB) | SSIM | MS-SSIM | gain (dB) | from Keras float (dB) | loss vs float32 file (dB) |",
                  "|---|---|---|---|---|---|---|",
                  f"| {b['what']} | {b['psnr']:.2f} | {b['ssim']:.4f} | {b['ms_ssim']:.4f} | | | |",
                  f"| Keras float32 | {k['psnr']:.2f} | {k['ssim']:.4f} | {k['ms_ssim']:.4f} | {k['gain_db']:+.2f} | | |"]
        for f in row["files"]:
            loss = f"{f['loss_vs_float32_db']:.2f}" if "loss_vs_float32_db" in f else ""
            lines.append(f"| `{Path(f['file']).name}` ({f['quant']}) | {f['psnr']:.2f} | {f['ssim']:.4f} | {f['ms_ssim']:.4f} | "
                         f"{f['gain_db']:+.2f} | {f['vs_keras_psnr']:.2f} | {loss} |")
        lines.append("")
    (out / f"{stem}.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
