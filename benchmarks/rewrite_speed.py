"""What the exact XNNPACK rewrites buy: each model converted with and without them.

For every model (random weights; latency does not depend on them) at ``--size``: float32
and int8 (calibrated on 2 noise images) files with ``convert(..., rewrite=False)`` and
with the default rewrites (:mod:`mobile_enhance.export.rewrite`), all loaded at once and
timed in turns (``--runs`` rounds, median), so the ratio compares files timed side by side
in one run. Writes ``OUT/rewrite_speed.md`` when ``--out`` is given.

usage: python benchmarks/rewrite_speed.py [--models=fast_dped,dped,srcnn,rsgunet] [--size=720x1280] [--threads=2] [--runs=5] [--out=DIR]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="fast_dped,dped,srcnn,rsgunet")
    parser.add_argument("--size", default="720x1280")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    from mobile_enhance.api import parse_size
    from mobile_enhance.export import convert
    from mobile_enhance.export.rewrite import rewritable
    from mobile_enhance.models import build_model, padded_size
    from mobile_enhance.runtime import make_interpreter

    rng = np.random.default_rng(0)
    lines = [f"# Exact XNNPACK rewrites: LiteRT latency without / with ({args.size}, {args.threads} threads, "
             f"median of {args.runs} interleaved rounds)", "",
             "| model | rewritten layers | quant | without (ms) | with (ms) | speed-up | file KB without / with |", "|---|---|---|---|---|---|---|"]
    t0 = time.time()
    for name in args.models.split(","):
        h, w = padded_size(name, *parse_size(args.size))
        model = build_model(name, input_shape=(h, w, 3))
        calibration = [rng.random((1, h, w, 3), dtype=np.float32) for _ in range(2)]
        files, interpreters = {}, {}
        for quant in ("float32", "int8"):
            for rewrite in (False, True):
                blob = convert(model, quant, (h, w), (lambda: iter(calibration)) if quant == "int8" else None, rewrite=rewrite)
                interpreter = make_interpreter(model_content=blob, num_threads=args.threads)
                interpreter.allocate_tensors()
                detail = interpreter.get_input_details()[0]
                interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
                interpreter.invoke()  # warm-up
                files[(quant, rewrite)], interpreters[(quant, rewrite)] = blob, interpreter
        times = {key: [] for key in interpreters}
        for _ in range(args.runs):
            for key, interpreter in interpreters.items():
                start = time.perf_counter()
                interpreter.invoke()
                times[key].append(time.perf_counter() - start)
        for quant in ("float32", "int8"):
            off, on = (1000 * float(np.median(times[(quant, r)])) for r in (False, True))
            lines.append(f"| {name} | {', '.join(rewritable(model, (h, w), integer=quant == 'int8')) or '-'} | {quant} | {off:.1f} | {on:.1f} | {off / on:.2f}x | "
                         f"{len(files[(quant, False)]) / 1024:.0f} / {len(files[(quant, True)]) / 1024:.0f} |")
        print(lines[-2], lines[-1], sep="\n", file=sys.stderr)
    lines += ["", f"Random weights; int8 calibrated on 2 noise images; took {(time.time() - t0) / 60:.1f} min."]
    text = "\n".join(lines) + "\n"
    from mobile_enhance.fileio import emit_report

    emit_report(text, args.out, "rewrite_speed.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
