"""Run one measurement in a fresh Python process: ``python -m mobile_enhance.benchmark.worker``.

The task arrives as JSON on stdin (``{"task": NAME, "kwargs": {...}}``) and the result
leaves as one JSON line on stdout. A fresh process per configuration gives each its own
thread pools, its own initialisation cost and its own memory high-water mark: the
runtime's libraries are imported first, then ``VmHWM`` is reset (see :mod:`.memory`) and
the peak read after the runs.

Exit status 0 with ``{"result": ...}``, ``{"unavailable": LINE}`` for a missing backend,
or status 1 with ``{"error": ..., "traceback": ...}`` for anything else.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import traceback

#: Modules each task needs, imported before the memory reset so they are not counted.
_PRELOAD = {
    "interpreter": ("ai_edge_litert.interpreter", "mobile_enhance.runtime"),
    "compiled": ("ai_edge_litert.compiled_model",),
    "end_to_end": ("ai_edge_litert.interpreter", "mobile_enhance.runtime", "PIL.Image"),
    "keras": ("mobile_enhance.compat", "mobile_enhance.models", "mobile_enhance.models.stats"),
    "matmul": ("numpy",),
}
_THREAD_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


class WorkerError(RuntimeError):
    """A measurement crashed in the worker; the message carries the worker's traceback."""


def _functions():
    from mobile_enhance.benchmark import measure

    return {
        "interpreter": measure.measure_interpreter,
        "compiled": measure.measure_compiled_model,
        "end_to_end": measure.measure_end_to_end,
        "keras": measure.measure_keras,
        "matmul": measure.measure_matmul,
    }


def run_task(task: str, kwargs: dict) -> dict:
    """Run ``task`` in this process with the memory high-water mark measured around it.

    Returns ``{"result": {...measure..., memory fields}}`` or ``{"unavailable": reason}``.
    """
    import importlib

    from mobile_enhance.benchmark.measure import BackendUnavailable
    from mobile_enhance.benchmark.memory import PeakMemory

    if task not in _PRELOAD:
        raise ValueError(f"unknown benchmark task {task!r}; known: {', '.join(_PRELOAD)}")
    preload = _PRELOAD[task]
    if task == "matmul" and kwargs.get("tensorflow", True):
        preload += ("mobile_enhance.compat",)
    for module in preload:
        importlib.import_module(module)
    fn = _functions()[task]
    try:
        with PeakMemory() as memory:
            result = fn(**kwargs)
    except BackendUnavailable as error:
        return {"unavailable": str(error)}
    result.update(memory.result)
    return {"result": result}


def run_isolated(task: str, kwargs: dict, threads: int | None = None, timeout: float = 3600) -> dict:
    """Run ``task`` in a fresh ``python -m mobile_enhance.benchmark.worker`` process.

    ``threads`` sets the BLAS thread variables for it (the matmul ceiling). Returns what
    :func:`run_task` returns; a crash raises :class:`WorkerError` with its traceback.
    """
    env = dict(os.environ)
    if threads is not None:
        env.update({k: str(int(threads)) for k in _THREAD_ENV})
    try:
        done = subprocess.run(
            [sys.executable, "-m", "mobile_enhance.benchmark.worker"],
            input=json.dumps({"task": task, "kwargs": kwargs}),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
    except subprocess.TimeoutExpired:
        raise WorkerError(f"benchmark task {task!r} ran past {timeout:.0f} s and was stopped") from None
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        tail = "\n".join(done.stderr.strip().splitlines()[-20:])
        raise WorkerError(f"benchmark worker ({task}) exited with status {done.returncode} and no result:\n{tail}")
    answer = json.loads(lines[-1])
    if "error" in answer:
        raise WorkerError(f"benchmark worker ({task}) failed: {answer['error']}\n{answer.get('traceback', '')}")
    return answer


def main() -> int:
    request = json.loads(sys.stdin.read())
    try:
        answer = run_task(request["task"], request.get("kwargs", {}))
    except Exception as error:  # a bug: hand the traceback to the parent
        print(json.dumps({"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}))
        return 1
    sys.stdout.flush()
    print(json.dumps(answer, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
