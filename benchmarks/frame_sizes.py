"""Does a trained model still enhance at the frame size it is exported for?

Models are trained on small patches (100x100, rsgunet 96x96) and exported at 720x1280 or
1536x2048. Models with instance norms compute their statistics over the whole frame, so
their output can drift with the frame size. For each run and size: PSNR against the
targets of the unprocessed input, of the float Keras model on the whole frame, and of the
same model run window by window at its training patch size (``enhance_tiled``, as
``mobile-enhance enhance`` runs a fixed-size file; 16-pixel overlap), on the run's
held-out pairs cut at that size; and the mean of (whole-frame output - target), the
drift in brightness. Writes ``OUT/frame_sizes.md`` with ``--out``.

usage: python benchmarks/frame_sizes.py RUN_DIR [RUN_DIR ...] [--sizes=96x96,256x256,512x512,720x1280] [--pairs=8] [--out=DIR]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def rows_for(run_dir, sizes, pairs: int):
    """``(model name, patch, rows)``; a row per size: ``(h, w, n, input, whole, tiled, shift)``."""
    from mobile_enhance.enhance.tiling import enhance_tiled
    from mobile_enhance.export import load_trained
    from mobile_enhance.export.exporter import heldout_pairs
    from mobile_enhance.metrics import image_metrics
    from mobile_enhance.models import get_model_info

    model, source, _, name, _ = load_trained(run_dir=run_dir)
    patch, multiple = source.patch_size, get_model_info(name).size_multiple
    psnr = lambda a, b: image_metrics(a, b)["psnr"]  # noqa: E731
    rows = []
    for h, w in sizes:
        x, y = heldout_pairs(source, h, w, pairs)
        whole = np.concatenate([model.predict(x[i : i + 1], verbose=0) for i in range(len(x))])
        tiled = np.stack([enhance_tiled(lambda t: model(t, training=False), image, tile=patch, overlap=16, multiple=multiple)
                          for image in x])
        rows.append((h, w, len(x), psnr(x, y), psnr(whole, y), psnr(tiled, y), float(np.mean(whole - y))))
    return name, patch, rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--sizes", default="96x96,256x256,512x512,720x1280")
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]

    from mobile_enhance.fileio import emit_report

    start = time.time()
    lines = ["# Quality against the frame size", "",
             "PSNR (dB) against the targets on held-out pairs cut at each size: the unprocessed input, the float model "
             "on the whole frame, and the float model window by window at its training patch size (16-pixel overlap). "
             "Shift: mean of (whole-frame output - target), in [0, 1] units.", "",
             "| run | model | trained on | size | pairs | input | whole frame | gain | tiled | gain | shift |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for run in args.runs:
        name, patch, rows = rows_for(run, sizes, args.pairs)
        for h, w, n, inp, whole, tiled, shift in rows:
            lines.append(f"| {run} | {name} | {patch}x{patch} | {h}x{w} | {n} | {inp:.2f} | {whole:.2f} | {whole - inp:+.2f} | "
                         f"{tiled:.2f} | {tiled - inp:+.2f} | {shift:+.3f} |")
    lines += ["", f"Took {(time.time() - start) / 60:.1f} min (CPU)."]
    emit_report("\n".join(lines) + "\n", args.out, "frame_sizes.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
