"""PIRM 2018 "Perceptual Image Enhancement on Smartphones", Track B (enhancement) score.

From the challenge's submission guide (aiff22/ai-challenge, README, "Scoring formulas"):

    Total = α (PSNR − 21) + β (MS-SSIM − 0.9) + γ · min(Time_baseline / Time_solution, 4)

with ``PSNR_baseline = 21``, ``SSIM_baseline = 0.9`` for Track B and three weightings,
score A (fidelity) = (4, 100, 2), score B (perceptual) = (1, 400, 2) and score C
(speed/quality balance) = (2, 200, 2.9). The baseline network is SRCNN; its time and the
solution's must be measured on the same hardware, in the same run. The challenge's
final ranking replaced MS-SSIM with MOS from a user study; with MS-SSIM this is the
validation-phase score.
"""

from __future__ import annotations

import math
from pathlib import Path

from mobile_enhance.errors import UserError

PSNR_BASELINE = 21.0
MS_SSIM_BASELINE = 0.9
SPEEDUP_CAP = 4.0
#: (alpha, beta, gamma) per score of Track B.
WEIGHTS = {"A": (4.0, 100.0, 2.0), "B": (1.0, 400.0, 2.0), "C": (2.0, 200.0, 2.9)}


def pirm_scores(psnr: float, ms_ssim: float, time_baseline: float, time_solution: float) -> dict:
    """Track B scores A, B and C for one solution.

    Args:
      psnr: the solution's PSNR (dB) on the test images.
      ms_ssim: its MS-SSIM, in [0, 1].
      time_baseline: SRCNN's latency, same hardware and run (any unit).
      time_solution: the solution's latency, same unit.

    Returns:
      ``{"speedup", "speed_term", "A", "B", "C"}``; ``speed_term`` is the capped speed-up.
    """
    for name, value in (("time_baseline", time_baseline), ("time_solution", time_solution)):
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"{name} must be a positive latency, got {value!r}")
    speedup = time_baseline / time_solution
    term = min(speedup, SPEEDUP_CAP)
    scores = {
        key: a * (psnr - PSNR_BASELINE) + b * (ms_ssim - MS_SSIM_BASELINE) + g * term
        for key, (a, b, g) in WEIGHTS.items()
    }
    return {"speedup": speedup, "speed_term": term, **scores}


def read_quality(path: str | Path) -> dict:
    """``{"psnr": float, "ms_ssim": float}`` from a JSON file (other keys are ignored)."""
    from mobile_enhance.fileio import read_json

    label = f"quality file {str(Path(path))!r}"
    return quality_from_dict(read_json(path, label), label)


def quality_from_dict(data, where: str) -> dict:
    """Check and return ``psnr`` and ``ms_ssim`` from ``data``; ``where`` names the source in errors."""
    if not isinstance(data, dict):
        raise UserError(f"{where} must hold a JSON object with 'psnr' and 'ms_ssim'")
    missing = [k for k in ("psnr", "ms_ssim") if k not in data]
    if missing:
        raise UserError(f"{where} lacks {', '.join(repr(k) for k in missing)} (expected keys 'psnr' in dB and 'ms_ssim' in [0, 1])")
    try:
        psnr, ms_ssim = float(data["psnr"]), float(data["ms_ssim"])
    except (TypeError, ValueError):
        raise UserError(f"{where}: 'psnr' and 'ms_ssim' must be numbers") from None
    if not 0.0 <= ms_ssim <= 1.0:
        raise UserError(f"{where}: 'ms_ssim' must lie in [0, 1], got {ms_ssim}")
    return {"psnr": psnr, "ms_ssim": ms_ssim}
