"""Training throughput (patches/s) of every model, measured in one run.

Each model trains for ``--steps`` steps (after ``--warmup`` steps that build and trace the
graph) on synthetic pairs from a folder of photos, at its preset patch size, with a loss
recipe that needs no VGG weights (``--losses``, default ``dped_novgg``: the DPED recipe's
colour, texture with its discriminator, and TV terms plus L1, so the generator *and* the
discriminator steps are timed). Writes ``benchmarks/results/training_throughput.{json,md}``.

usage: python benchmarks/training_throughput.py [--photos=DIR] [--steps=30] [--batch_size=16]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--photos", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "photos"))
    p.add_argument("--models", default="")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5, help="untimed first steps (at least 1)")
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--losses", default="dped_novgg")
    p.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = p.parse_args(argv)

    from mobile_enhance.compat import GPUS
    from mobile_enhance.models import MODELS
    from mobile_enhance.training import Trainer, resolve

    names = [n for n in args.models.split(",") if n] or list(MODELS)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            def config(steps):
                return resolve(name, {"data.spec": f"synthetic:{args.photos}", "data.batch_size": args.batch_size,
                                      "losses": args.losses, "steps": steps, "eval_every": 10**9, "checkpoint_every": 10**9,
                                      "summary_every": 10**9})
            trainer = Trainer(config(args.warmup + args.steps), Path(tmp) / name, progress=False)
            times = trainer.train()["step_times"]
            seconds = times[-1] - times[args.warmup - 1]  # after warm-up: traced, photo cache filled
            patches = args.steps * args.batch_size
            rows.append({"model": name, "patch": trainer.config.data.patch_size, "batch": args.batch_size,
                         "steps": args.steps, "seconds": round(seconds, 2), "patches_per_s": round(patches / seconds, 1),
                         "discriminator": bool(trainer.task.disc_specs)})
            print(f"{name}: {rows[-1]['patches_per_s']} patches/s", file=sys.stderr)
    device = f"GPU: {GPUS[0].name}" if GPUS else f"CPU: {os.cpu_count()} cores ({platform.processor() or platform.machine()})"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"device": device, "losses": args.losses, "load_avg_after": round(os.getloadavg()[0], 2), "rows": rows}
    (out / "training_throughput.json").write_text(json.dumps(meta, indent=2) + "\n")
    lines = [f"Training throughput on {device}, recipe `{args.losses}`, batch {args.batch_size}, one run "
             f"(load average after: {meta['load_avg_after']}; includes data loading and synthetic degradation).", "",
             "| model | patch | patches/s | seconds for steps |", "|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['patch']}x{r['patch']} | {r['patches_per_s']} | {r['seconds']} for {r['steps']} |" for r in rows]
    (out / "training_throughput.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
