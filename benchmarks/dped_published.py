#!/usr/bin/env python
"""DPED's published generators, from the authors' checkpoints to int8 files, measured.

The authors of DPED (Ignatov et al., ICCV 2017) published one generator per phone (iPhone
3GS, BlackBerry Passport, Sony Xperia Z, each trained towards a Canon 70D) as TF1
checkpoints. This script takes each the way a user would: ``mobile-enhance import``
(through :func:`mobile_enhance.api.import_weights`), then ``export`` at each size and mode
of the config, with ``photos:PHOTOS`` as calibration and fidelity data (the models were
trained on DPED's pairs, which are not here; our photos have no targets of their domain, so
every figure is against the float model). Then, in one run:

1. **int8 against float32 on held-out photos**: the photos the ``photos:`` source holds out
   (its split), cut into crops at each export size; each crop through the float32 and the
   int8 file of that size; PSNR/SSIM of int8 against float32, both clipped to [0, 1] (what
   an 8-bit output keeps). Target: at least 40 dB at 100x100.
2. **Latency** of every file, LiteRT XNNPACK on this CPU at each thread count, each
   configuration in a fresh process, beside the float32 matmul ceiling of the same run
   (:func:`mobile_enhance.benchmark.run_benchmark`).
3. **A 12 MP photo** (one held-out photo resized to 4000x3000, JPEG) through
   ``mobile-enhance enhance`` in a child process with the config's files and window
   overlap: wall time and peak RSS (VmHWM, reported by the child itself).
4. **A contact sheet** (input | float32 | int8): the centre of each held-out crop at the
   config's size, at full resolution, from the iPhone model.

The checkpoints, the run folders and the .tflite files stay outside the repository (their
licence is unknown): they are written under ``--work``; only figures and the contact sheet
go to ``--out``.

usage: .venv/bin/python benchmarks/dped_published.py [--config=benchmarks/configs/measure/dped_published.json]
           [--work=runs/dped_published] [--out=benchmarks/results] [--phones=iphone,...] [--reuse]
           [--skip=latency,twelve_mp]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PHASES = ("fidelity", "latency", "twelve_mp", "contact_sheet")


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _path(text: str) -> Path:
    p = Path(text)
    return p if p.is_absolute() else (REPO / p).resolve()


def _key(export: dict) -> str:
    return f"{export['quant']}_{export['size']}"


def import_and_export(config: dict, phone: str, work: Path, reuse: bool) -> dict:
    """Import ``phone``'s checkpoint and export every file of the config; returns
    ``{key: {"path", "sidecar", "seconds"}}`` (``seconds`` None for a reused file)."""
    from mobile_enhance import api

    prefix = _path(config["pretrained"]) / f"{phone}_orig"
    run_dir = work / phone
    if not (reuse and (run_dir / "config.json").is_file()):
        if run_dir.exists():
            import shutil

            shutil.rmtree(run_dir)
        api.import_weights("dped_tf1", prefix, run_dir)
    files = {}
    for export in config["exports"]:
        if phone not in export.get("phones", [phone]):
            continue
        key = _key(export)
        out = work / f"dped_{phone}_{key}.tflite"
        seconds = None
        if not (reuse and out.is_file() and out.with_suffix(".json").is_file()):
            _log(f"{phone}: export {key}")
            t0 = time.perf_counter()
            extra = {k: v for k, v in export.items() if k not in ("quant", "size", "phones")}
            (result,) = api.export(out, run_dir=run_dir, quant=export["quant"], size=export["size"],
                                   data=f"photos:{_path(config['photos'])}", **extra)
            seconds = round(time.perf_counter() - t0, 1)
            for line in result.warnings:
                _log(f"  warning: {line}")
        files[key] = {"path": out, "sidecar": json.loads(out.with_suffix(".json").read_text()), "seconds": seconds}
    return files


def held_out(config: dict, size: str):
    """``(crops (N, H, W, 3) float32, photo names)``: the ``photos:`` source's held-out
    photos (as export splits them) cut into ``held_out_crops[size]`` crops each."""
    from mobile_enhance.data import make_source

    h, w = (int(v) for v in size.split("x"))
    source = make_source(f"photos:{_path(config['photos'])}", max(h, w), augment=False)
    source = source.cropping(h, w) if h != w else source
    source.val_crops = int(config["held_out_crops"][size])
    crops = [x for x, _ in source.validation()]
    return np.stack(crops), [p.name for p in source.val_files]


def run_file(path: Path, crops: np.ndarray) -> np.ndarray:
    from mobile_enhance.enhance.pipeline import TFLiteModel

    model = TFLiteModel(path, num_threads=2)
    return np.concatenate([model.run(c[None]) for c in crops])


def fidelity(config: dict, files: dict, crops: dict) -> dict:
    """int8 against float32 (both clipped to [0, 1]) per size, and the float32 output's
    overshoot of [0, 1] (DPED's ``0.58 tanh + 0.5`` reaches [-0.08, 1.08])."""
    from mobile_enhance.metrics import image_metrics

    out = {}
    for size, (x, _) in crops.items():
        if f"float32_{size}" not in files:
            continue
        f = run_file(files[f"float32_{size}"]["path"], x)
        row = {"crops": len(x), "float32_outside_0_1": float(np.mean((f < 0) | (f > 1))),
               "float32_vs_input": image_metrics(np.clip(f, 0, 1), x)}
        for key in files:
            quant, at = key.rsplit("_", 1)
            if at == size and quant != "float32":
                q = run_file(files[key]["path"], x)
                row[f"{quant}_vs_float32"] = image_metrics(np.clip(q, 0, 1), np.clip(f, 0, 1))
                row[f"{quant}_mean_shift"] = [float(v) for v in np.mean(np.clip(q, 0, 1) - np.clip(f, 0, 1), axis=(0, 1, 2))]
        out[size] = row
    return out


def latency(config: dict, files: dict) -> dict:
    from mobile_enhance.benchmark import run_benchmark

    bench = config["bench"]
    out = {}
    for key, f in files.items():
        size = key.rsplit("_", 1)[1]
        _log(f"latency {f['path'].name}")
        report = run_benchmark(f["path"], threads=tuple(bench["threads"]), runs=int(bench["runs"][size]), warmup=1,
                               pirm_baseline=False, measure_ceiling=True, log=_log)
        out[key] = [{k: r.get(k) for k in ("threads", "median_ms", "min_ms", "p90_ms", "gmacs", "achieved_gflops",
                                           "ceiling_gflops", "fraction_of_ceiling", "peak_rss_mb")}
                    for r in report["rows"] if r["backend"] == "cpu" and r["runtime"].startswith("LiteRT")]
    return out


def twelve_mp(config: dict, files: dict, photo: Path, work: Path) -> dict:
    """``mobile-enhance enhance`` on a 4000x3000 JPEG in a child process reporting its
    own VmHWM (``getrusage(RUSAGE_CHILDREN)`` would count pages the child shares with this
    process before it execs)."""
    from PIL import Image

    spec = config["twelve_mp"]
    big = work / "twelve_mp.jpg"
    Image.open(photo).convert("RGB").resize((4000, 3000), Image.BICUBIC).save(big, quality=92)
    code = ("import sys; from mobile_enhance.cli import main; rc = main(sys.argv); "
            "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]); sys.exit(rc)")
    out = {}
    for key in spec["files"]:
        model = files[key]["path"]
        _log(f"12 MP photo with {model.name}")
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", code, "enhance", str(big), f"--output={work}/twelve_mp_out",
                               f"--model={model}", f"--overlap={spec['overlap']}", f"--threads={spec['threads']}", "--quiet"],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"enhance with {model} failed: {proc.stderr.strip()}")
        out[key] = {"seconds": round(time.perf_counter() - t0, 1),
                    "peak_rss_mb": round(int(proc.stdout.strip().splitlines()[-1]) / 1024, 1)}
    return {"photo": f"{photo.name} resized to 4000x3000 (JPEG quality 92)", "overlap": spec["overlap"],
            "threads": spec["threads"], "files": out}


def contact_sheet(config: dict, files: dict, crops: np.ndarray, names: list, path: Path) -> Path:
    """Rows of (input | float32 | int8), the centre ``cell x cell`` of each crop at full
    resolution; written atomically."""
    from PIL import Image, ImageDraw

    from mobile_enhance.fileio import atomic_path

    spec = config["contact_sheet"]
    c, gap = int(spec["cell"]), 4
    f = run_file(files[f"float32_{spec['size']}"]["path"], crops)
    q = run_file(files[f"int8_{spec['size']}"]["path"], crops)
    h, w = crops.shape[1:3]
    y0, x0 = (h - c) // 2, (w - c) // 2
    label = 18
    sheet = Image.new("RGB", (3 * c + 2 * gap, label + len(crops) * (c + gap) - gap), "white")
    draw = ImageDraw.Draw(sheet)
    for j, title in enumerate(("input", "float32", "int8")):
        draw.text((j * (c + gap) + 4, 3), title, fill="black")
    for i, row in enumerate(zip(crops, f, q)):
        for j, image in enumerate(row):
            cell = np.clip(image[y0 : y0 + c, x0 : x0 + c], 0, 1)
            sheet.paste(Image.fromarray((cell * 255 + 0.5).astype(np.uint8)), (j * (c + gap), label + i * (c + gap)))
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")
    return path


def _mb(value) -> str:
    return "" if value is None else f"{value:.0f}"


def markdown(result: dict) -> str:
    lines = ["# DPED's published generators (the authors' checkpoints), imported and exported", "",
             f"Measured {result['date']} on {result['machine']}. Calibration and fidelity data: `photos:` "
             f"({result['photos']}); held-out photos: {', '.join(result['held_out_photos'])}. "
             "All figures are against the float model: our photos have no targets of DPED's domain.", ""]
    if result.get("exports"):
        lines += ["## Exports", "", "| phone | file | size (KB) | sidecar: against float (dB) |", "|---|---|---|---|"]
        for phone, files in result["exports"].items():
            for key, f in files.items():
                fid = f.get("tflite_vs_float_psnr")
                lines.append(f"| {phone} | {key} | {f['kb']:.0f} | {'' if fid is None else f'{fid:.2f}'} |")
        lines += ["", "(The sidecar's figure: the export's own held-out crops of the same photos, against the Keras model.)", ""]
    if result.get("fidelity"):
        lines += ["## Quantized files against float32 on the held-out photos", "",
                  "Both outputs clipped to [0, 1]; mean shift: the quantized output's mean minus the float one's, per channel (R, G, B).", "",
                  "| phone | size | file | crops | PSNR (dB) | SSIM | mean shift | float32 outside [0, 1] |", "|---|---|---|---|---|---|---|---|"]
        for phone, sizes in result["fidelity"].items():
            for size, r in sizes.items():
                for key in [k for k in r if k.endswith("_vs_float32")]:
                    m, quant = r[key], key[: -len("_vs_float32")]
                    shift = ", ".join(f"{v:+.3f}" for v in r[f"{quant}_mean_shift"])
                    lines.append(f"| {phone} | {size} | {quant} | {r['crops']} | {m['psnr']:.2f} | {m['ssim']:.4f} | {shift} | "
                                 f"{100 * r['float32_outside_0_1']:.2f}% |")
        lines.append("")
    if result.get("latency"):
        lines += ["## Latency (LiteRT XNNPACK, this CPU, medians)", "",
                  "| phone | file | threads | median (ms) | GFLOP/s | of the matmul ceiling | peak RSS (MB) |", "|---|---|---|---|---|---|---|"]
        for phone, files in result["latency"].items():
            for key, rows in files.items():
                for r in rows:
                    frac, gf = r.get("fraction_of_ceiling"), r.get("achieved_gflops")
                    lines.append(f"| {phone} | {key} | {r['threads']} | {r['median_ms']:.1f} | {'' if gf is None else f'{gf:.1f}'} | "
                                 f"{'' if frac is None else f'{100 * frac:.0f}%'} | {_mb(r.get('peak_rss_mb'))} |")
        lines.append("")
    if result.get("twelve_mp"):
        t = result["twelve_mp"]
        lines += [f"## A 12 MP photo through `mobile-enhance enhance` ({t['phone']})", "",
                  f"{t['photo']}, windows overlapping by {t['overlap']} pixels, {t['threads']} threads.", "",
                  "| file | seconds | peak RSS (MB) |", "|---|---|---|"]
        for key, r in t["files"].items():
            lines.append(f"| {key} | {r['seconds']} | {r['peak_rss_mb']} |")
        lines.append("")
    if result.get("contact_sheet"):
        lines += [f"Contact sheet: `{result['contact_sheet']}` (input | float32 | int8, centres of the held-out crops; "
                  "the photos are Debian desktop wallpapers, GPL-2+ / LGPL, listed with their packages in "
                  "../shared/data/photos/SOURCES.tsv).", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(REPO / "benchmarks" / "configs" / "measure" / "dped_published.json"))
    p.add_argument("--work", default=str(REPO / "runs" / "dped_published"), help="run folders and .tflite files (never committed)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    p.add_argument("--phones", default=None, help="comma-separated (default: the config's)")
    p.add_argument("--reuse", action="store_true", help="keep run folders and files already in --work")
    p.add_argument("--skip", default="", help=f"comma-separated phases to leave out: {', '.join(PHASES)}")
    args = p.parse_args(argv)

    import datetime
    import platform

    from mobile_enhance.fileio import atomic_write_text

    config = json.loads(Path(args.config).read_text())
    phones = args.phones.split(",") if args.phones else config["phones"]
    skip = {s for s in args.skip.split(",") if s}
    missing = [ph for ph in phones if not (_path(config["pretrained"]) / f"{ph}_orig.index").is_file()]
    if missing or not _path(config["photos"]).is_dir():
        what = f"the checkpoints {', '.join(f'{ph}_orig' for ph in missing)} in {_path(config['pretrained'])}" if missing else f"the photos {_path(config['photos'])}"
        raise SystemExit(f"dped_published: {what} not found (the authors' models_orig/ from github.com/aiff22/DPED; any folder of photos)")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    result = {"date": datetime.date.today().isoformat(), "machine": f"{platform.processor() or platform.machine()}, {len(__import__('os').sched_getaffinity(0))} CPUs",
              "photos": config["photos"], "config": str(Path(args.config).resolve().relative_to(REPO)) if Path(args.config).resolve().is_relative_to(REPO) else args.config,
              "exports": {}, "fidelity": {}, "latency": {}}
    sizes = sorted({e["size"] for e in config["exports"]}, key=lambda s: int(s.split("x")[0]))
    crops = {size: held_out(config, size) for size in sizes}
    result["held_out_photos"] = crops[sizes[0]][1]
    all_files = {}
    for phone in phones:
        files = import_and_export(config, phone, work, args.reuse)
        all_files[phone] = files
        result["exports"][phone] = {k: {"kb": f["path"].stat().st_size / 1024, "seconds": f["seconds"],
                                        "tflite_vs_float_psnr": f["sidecar"].get("fidelity", {}).get("tflite_vs_float", {}).get("psnr")}
                                    for k, f in files.items()}
        if "fidelity" not in skip:
            result["fidelity"][phone] = fidelity(config, files, crops)
            for size, r in result["fidelity"][phone].items():
                for key in [k for k in r if k.endswith("_vs_float32")]:
                    _log(f"{phone} {size}: {key[:-11]} {r[key]['psnr']:.2f} dB from float32 on {r['crops']} held-out crops")
    if "latency" not in skip:
        for phone in [ph for ph in phones if ph in config["bench"].get("phones", phones)]:
            result["latency"][phone] = latency(config, all_files[phone])
    names = crops[sizes[0]][1]
    if "twelve_mp" not in skip and config["twelve_mp"]["phone"] in all_files:
        photo = _path(config["photos"]) / names[0]
        result["twelve_mp"] = {"phone": config["twelve_mp"]["phone"],
                               **twelve_mp(config, all_files[config["twelve_mp"]["phone"]], photo, work)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sheet_phone = config["contact_sheet"]["phone"]
    if "contact_sheet" not in skip and sheet_phone in all_files:
        x, _ = crops[config["contact_sheet"]["size"]]
        sheet = contact_sheet(config, all_files[sheet_phone], x, names, out / f"dped_published_{sheet_phone}.png")
        result["contact_sheet"] = sheet.name
    result["seconds"] = round(time.perf_counter() - t_start, 1)
    atomic_write_text(out / "dped_published.json", json.dumps(result, indent=2, default=str) + "\n")
    text = markdown(result) + f"\nWhole run: {result['seconds']} s.\n"
    atomic_write_text(out / "dped_published.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
