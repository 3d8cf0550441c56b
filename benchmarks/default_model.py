"""The shipped default model: its gain on held-out photos, and its memory on a 12 MP photo.

1. Gain: held-out synthetic pairs (the photos the training run held out: same split and
   seed, read from ``tflite_models/default.train.json``, cut into ``--crop``-sized crops and degraded as in training) enhanced whole-image
   by ``tflite_models/default.tflite`` and ``default_int8.tflite`` through
   ``mobile_enhance.enhance.pipeline.TFLiteModel``; PSNR/SSIM of the unprocessed input and of
   each model against the originals. Target: +1.5 dB over the input.
2. Memory: ``mobile-enhance enhance`` on a 4000x3000 (12 MP) JPEG made from one of the
   photos, in a child process; its peak RSS (VmHWM, which the child reports). Target:
   at most 600 MB with the int8 model.

Writes ``benchmarks/results/default_model.{json,md}``.

usage: python benchmarks/default_model.py [--photos=DIR] [--crop=256]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--photos", default=str(REPO.parent / "shared" / "data" / "photos"))
    p.add_argument("--models_dir", default=str(REPO / "tflite_models"))
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = p.parse_args(argv)

    from PIL import Image

    from mobile_enhance.data import make_source
    from mobile_enhance.enhance.pipeline import TFLiteModel
    from mobile_enhance.metrics import image_metrics

    models = {q: Path(args.models_dir) / f"default{'' if q == 'float32' else '_int8'}.tflite" for q in ("float32", "int8")}
    # the training run's resolved config ships beside the model: same held-out split and seed
    run_config = json.loads((Path(args.models_dir) / "default.train.json").read_text())
    data = run_config["data"]
    source = make_source(f"synthetic:{args.photos}", args.crop, seed=data.get("seed", 0), augment=False,
                         val_fraction=data.get("val_fraction", 0.15))
    pairs = source.validation()
    x = np.stack([a for a, _ in pairs])
    y = np.stack([b for _, b in pairs])
    result = {"held_out_photos": [f.name for f in source.val_files], "pairs": len(pairs), "crop": args.crop,
              "input": image_metrics(x, y)}
    for quant, path in models.items():
        model = TFLiteModel(path)
        out = np.stack([model.enhance(image) for image in x])
        result[quant] = image_metrics(out, y)
        result[quant]["gain_db"] = result[quant]["psnr"] - result["input"]["psnr"]

    with tempfile.TemporaryDirectory() as tmp:
        photo = sorted(Path(args.photos).glob("*.jpg"))[0]
        big = Path(tmp) / "twelve_mp.jpg"
        Image.open(photo).convert("RGB").resize((4000, 3000), Image.BICUBIC).save(big, quality=92)
        t0 = time.perf_counter()
        # the child reports its own high-water mark (VmHWM): getrusage(RUSAGE_CHILDREN) would
        # count the parent's pages a forked child holds before it execs
        code = ("import sys; from mobile_enhance.cli import main; rc = main(sys.argv); "
                "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]); sys.exit(rc)")
        proc = subprocess.run([sys.executable, "-c", code, "enhance", str(big), f"--output={tmp}/out",
                               f"--model={models['int8']}", "--quiet"], capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"enhance failed: {proc.stderr.strip()}")
        peak_kb = int(proc.stdout.strip().splitlines()[-1])
        result["twelve_mp"] = {"photo": f"{photo.name} resized to 4000x3000", "model": models["int8"].name,
                               "peak_rss_mb": round(peak_kb / 1024, 1), "seconds": round(time.perf_counter() - t0, 1),
                               "note": "VmHWM of the mobile-enhance process, reported by itself"}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "default_model.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"Held-out synthetic pairs: {result['pairs']} crops of {args.crop}x{args.crop} from "
             f"{len(result['held_out_photos'])} photos the training never saw ({', '.join(result['held_out_photos'])}).", "",
             "| | PSNR (dB) | SSIM | MS-SSIM | gain over input (dB) |", "|---|---|---|---|---|",
             f"| unprocessed input | {result['input']['psnr']:.2f} | {result['input']['ssim']:.4f} | {result['input']['ms_ssim']:.4f} | |"]
    for quant in ("float32", "int8"):
        r = result[quant]
        lines.append(f"| default {quant} | {r['psnr']:.2f} | {r['ssim']:.4f} | {r['ms_ssim']:.4f} | {r['gain_db']:+.2f} |")
    t = result["twelve_mp"]
    lines += ["", f"12 MP photo ({t['photo']}) with `{t['model']}`: peak RSS {t['peak_rss_mb']} MB, {t['seconds']} s."]
    (out / "default_model.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
