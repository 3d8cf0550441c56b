"""Peak resident memory (RSS high-water mark) of the benchmarking process.

Method, in order of preference (the one used is reported as ``memory_method``):

1. Linux ``/proc/self/status`` ``VmHWM``, after resetting it to the current RSS by
   writing ``5`` to ``/proc/self/clear_refs`` (Linux >= 4.0) once the runtime libraries
   are imported. The peak then covers only model loading and the runs; the RSS at the
   reset is reported beside it, and their difference is what the model added.
2. Where the reset is refused: ``VmHWM`` (or ``resource.getrusage(...).ru_maxrss``)
   without reset, which also counts everything the process touched before.
"""

from __future__ import annotations

import resource
import sys

_STATUS = "/proc/self/status"


def _status_kb(field: str) -> int | None:
    try:
        with open(_STATUS) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def current_rss_mb() -> float | None:
    kb = _status_kb("VmRSS")
    return None if kb is None else kb / 1024


def peak_rss_mb() -> tuple[float, str]:
    """The process's RSS high-water mark in MiB and where it was read."""
    kb = _status_kb("VmHWM")
    if kb is not None:
        return kb / 1024, "VmHWM"
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return (maxrss / 1024 / 1024 if sys.platform == "darwin" else maxrss / 1024), "ru_maxrss"


def reset_peak() -> bool:
    """Reset ``VmHWM`` to the current RSS; ``False`` where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class PeakMemory:
    """Measure the RSS high-water mark over a block: ``with PeakMemory() as m: ...; m.result``."""

    def __enter__(self):
        self._reset = reset_peak()
        self._base = current_rss_mb()
        return self

    def __exit__(self, *exc):
        peak, source = peak_rss_mb()
        if self._reset:
            method = f"{source} after /proc/self/clear_refs reset (model load + runs)"
        else:
            method = f"{source} without reset (includes everything before the run)"
        self.result = {
            "peak_rss_mb": peak,
            "rss_before_mb": self._base,
            "rss_delta_mb": None if (self._base is None or not self._reset) else peak - self._base,
            "memory_method": method,
        }
        return False
