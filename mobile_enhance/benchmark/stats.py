"""Summary statistics of latency samples."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def summarize(seconds: Sequence[float]) -> dict:
    """Median, p90, min, max, mean and standard deviation, in milliseconds.

    Percentiles use numpy's default linear interpolation between samples.

    Args:
      seconds: one latency per run, in seconds (at least one).

    Returns:
      ``{"runs", "median_ms", "p90_ms", "min_ms", "max_ms", "mean_ms", "std_ms"}``.
    """
    ms = np.asarray(seconds, dtype=np.float64) * 1e3
    if ms.ndim != 1 or ms.size == 0:
        raise ValueError("summarize needs a non-empty 1-D sequence of latencies")
    return {
        "runs": int(ms.size),
        "median_ms": float(np.median(ms)),
        "p90_ms": float(np.percentile(ms, 90)),
        "min_ms": float(ms.min()),
        "max_ms": float(ms.max()),
        "mean_ms": float(ms.mean()),
        "std_ms": float(ms.std()),
    }
