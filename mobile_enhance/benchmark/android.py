"""Latency on an Android phone over adb, with TensorFlow Lite's ``benchmark_model``.

The binary is not shipped here; the user gives its path (``--benchmark_binary``). Two
ways to get it:

* TensorFlow's prebuilt nightly, ``android_aarch64_benchmark_model``:
  https://storage.googleapis.com/tensorflow-nightly-public/prod/tensorflow/release/lite/tools/nightly/latest/android_aarch64_benchmark_model
* a build from TensorFlow's source:
  ``bazel build -c opt --config=android_arm64 //tensorflow/lite/tools/benchmark:benchmark_model``

The model and the binary are pushed to ``/data/local/tmp/mobile_enhance/``, the binary is
run once per mode (CPU with ``--num_threads`` per thread count, ``--use_gpu=true``,
``--use_nnapi=true``) and its printed summary is parsed: init time, first and warm-up
inference, the average and standard deviation of the timed runs (plus min, max and,
in newer builds, the median), and the memory footprint lines.

Every call to ``adb`` goes through one ``runner`` (``runner(argv, timeout) ->
(returncode, stdout, stderr)``), so command building and parsing are tested without a
phone by passing a fake runner.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Callable, Sequence

from mobile_enhance.errors import UserError

REMOTE_DIR = "/data/local/tmp/mobile_enhance"
MODES = ("cpu", "gpu", "nnapi")
BINARY_HELP = (
    "download TensorFlow's prebuilt android_aarch64_benchmark_model (tensorflow-nightly-public/.../lite/tools/nightly/latest/) "
    "or build //tensorflow/lite/tools/benchmark:benchmark_model with bazel --config=android_arm64"
)

Runner = Callable[[Sequence[str], float], "tuple[int, str, str]"]


class AndroidUnavailable(Exception):
    """No phone can be reached (no adb, no device, device not authorised); message is one line."""


class AndroidBenchmarkError(Exception):
    """``benchmark_model`` ran but failed or printed no summary; message is one line."""


def subprocess_runner(argv: Sequence[str], timeout: float) -> tuple[int, str, str]:
    """The real runner: ``subprocess.run`` with captured text output."""
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    return done.returncode, done.stdout, done.stderr


def find_adb() -> str:
    """Path to ``adb`` from ``PATH`` or ``$ANDROID_HOME``/``$ANDROID_SDK_ROOT``/platform-tools."""
    found = shutil.which("adb")
    if found:
        return found
    for var in ("ANDROID_HOME", "ANDROID_SDK_ROOT"):
        root = os.environ.get(var)
        if root and os.access(Path(root, "platform-tools", "adb"), os.X_OK):
            return str(Path(root, "platform-tools", "adb"))
    raise AndroidUnavailable(
        "adb not found on PATH or in $ANDROID_HOME/platform-tools: install Android SDK platform-tools to benchmark on a phone"
    )


def check_binary(path: str | None) -> Path:
    """The user's ``benchmark_model`` binary; a missing flag or file is a user error."""
    if not path:
        raise UserError(f"--backend=adb needs --benchmark_binary=PATH to TFLite's benchmark_model: {BINARY_HELP}")
    binary = Path(path)
    if not binary.is_file():
        raise UserError(f"benchmark binary {path!r} does not exist or is not a file: {BINARY_HELP}")
    with open(binary, "rb") as f:
        if f.read(4) != b"\x7fELF":
            raise UserError(f"benchmark binary {path!r} is not an ELF executable (expected android_aarch64_benchmark_model)")
    return binary


def parse_devices(text: str) -> list[tuple[str, str]]:
    """``[(serial, state), ...]`` from ``adb devices`` output (daemon notices skipped)."""
    devices = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("*") or line.startswith("List of devices"):
            continue
        parts = line.split()
        if len(parts) >= 2:
            devices.append((parts[0], parts[1]))
    return devices


_NUM = r"([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)"
_SUMMARY = re.compile(
    rf"Inference timings in us: Init: {_NUM}, First inference: {_NUM}, Warmup \(avg\): {_NUM}, Inference \(avg\): {_NUM}"
)
_COUNT = re.compile(
    rf"count=(\d+) first={_NUM} curr={_NUM} min={_NUM} max={_NUM} avg={_NUM} std={_NUM}"
    rf"(?: p5={_NUM} median={_NUM} p95={_NUM})?"
)
_MEMORY = re.compile(rf"(?:Memory footprint delta from the start of the tool|Peak memory footprint) \(MB\): init={_NUM} overall={_NUM}")
_PEAK = re.compile(rf"Overall peak memory footprint \(MB\) via periodic monitoring: {_NUM}")
_SESSION = re.compile(rf"Initialized session in {_NUM}\s*ms")
_DELEGATE = re.compile(r"Replacing (\d+)(?: out of (\d+))? node\(s\) with delegate \((\w+)\)")


def parse_benchmark_output(text: str) -> dict:
    """Parse ``benchmark_model``'s printed summary (log prefixes such as ``INFO:`` allowed).

    Reads the lines

    * ``Inference timings in us: Init: I, First inference: F, Warmup (avg): W, Inference (avg): A``
    * ``count=N first=.. curr=.. min=.. max=.. avg=.. std=..`` (the last such line, i.e. the
      timed runs after the warm-up; newer builds append ``p5=.. median=.. p95=..``)
    * ``Memory footprint delta from the start of the tool (MB): init=.. overall=..`` (older
      builds: ``Peak memory footprint (MB): init=.. overall=..``) and
      ``Overall peak memory footprint (MB) via periodic monitoring: ..``
    * ``Replacing K out of N node(s) with delegate (NAME)``

    Returns:
      Times in milliseconds, memory in MB; keys absent from the output are ``None``.

    Raises:
      AndroidBenchmarkError: no ``Inference timings`` line (the run failed).
    """
    summary = _SUMMARY.search(text)
    if not summary:
        lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
        last = lines[-1] if lines else "(no output)"
        raise AndroidBenchmarkError(f"benchmark_model printed no 'Inference timings' line; its last line: {last[:200]}")
    us = [float(v) for v in summary.groups()]
    out = {
        "init_ms": us[0] / 1e3,
        "first_ms": us[1] / 1e3,
        "warmup_mean_ms": us[2] / 1e3,
        "mean_ms": us[3] / 1e3,
        "runs": None,
        "std_ms": None,
        "min_ms": None,
        "max_ms": None,
        "median_ms": None,
        "p90_ms": None,
        "memory_init_mb": None,
        "memory_overall_mb": None,
        "memory_peak_mb": None,
        "delegated_nodes": None,
        "notes": [],
    }
    counts = _COUNT.findall(text)
    if counts:
        c = counts[-1]
        out.update(runs=int(c[0]), min_ms=float(c[3]) / 1e3, max_ms=float(c[4]) / 1e3, std_ms=float(c[6]) / 1e3)
        if c[8]:
            out["median_ms"] = float(c[8]) / 1e3
    memory = _MEMORY.findall(text)
    if memory:
        out["memory_init_mb"], out["memory_overall_mb"] = float(memory[-1][0]), float(memory[-1][1])
    peak = _PEAK.search(text)
    if peak:
        out["memory_peak_mb"] = float(peak.group(1))
    delegated = _DELEGATE.findall(text)
    if delegated:
        out["delegated_nodes"] = "; ".join(f"{k}{'/' + n if n else ''} nodes -> {name}" for k, n, name in delegated)
    if "will not be executed by the delegate" in text or "will not be completely executed by the delegate" in text:
        out["notes"].append("delegate did not take the whole graph: part of it ran on the CPU")
    return out


def build_benchmark_command(remote_binary: str, remote_model: str, mode: str, threads: int, runs: int, warmup: int) -> list[str]:
    """``benchmark_model`` arguments for one mode, to run after ``adb shell``."""
    if mode not in MODES:
        raise ValueError(f"unknown Android mode {mode!r}; known: {', '.join(MODES)}")
    cmd = [
        remote_binary,
        f"--graph={remote_model}",
        f"--num_threads={int(threads)}",
        f"--num_runs={int(runs)}",
        f"--warmup_runs={int(warmup)}",
    ]
    if mode == "gpu":
        cmd.append("--use_gpu=true")
    elif mode == "nnapi":
        cmd.append("--use_nnapi=true")
    return cmd


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


class AndroidBench:
    """One phone over adb.

    Args:
      adb: path to ``adb``; found with :func:`find_adb` when ``None``.
      serial: device serial (``adb -s``); needed when several devices are attached.
      runner: executes an argv list (see :data:`Runner`); the real one by default.
      timeout: seconds allowed for one ``benchmark_model`` run.
    """

    def __init__(self, adb: str | None = None, serial: str | None = None, runner: Runner = subprocess_runner, timeout: float = 900):
        self.runner = runner
        self.adb = adb or find_adb()
        self.timeout = timeout
        self.serial = self._pick_device(serial)

    def _run(self, args: Sequence[str], timeout: float = 120, what: str = "adb") -> str:
        argv = [self.adb, *(["-s", self.serial] if getattr(self, "serial", None) else []), *args]
        try:
            code, out, err = self.runner(argv, timeout)
        except FileNotFoundError:
            raise AndroidUnavailable(f"adb at {self.adb!r} cannot be executed") from None
        except subprocess.TimeoutExpired:
            raise AndroidBenchmarkError(f"{what} took longer than {timeout:.0f} s: {' '.join(argv)}") from None
        if code != 0:
            text = (err.strip() or out.strip() or f"exit status {code}").splitlines()[-1]
            raise AndroidBenchmarkError(f"{what} failed (exit status {code}): {text[:200]}")
        return out + ("\n" + err if err else "")

    def _pick_device(self, serial: str | None) -> str:
        devices = parse_devices(self._run(["devices"], what="adb devices"))
        if serial:
            state = dict(devices).get(serial)
            if state is None:
                listed = ", ".join(s for s, _ in devices) or "none"
                raise AndroidUnavailable(f"device {serial!r} is not attached (adb devices lists: {listed})")
        else:
            if not devices:
                raise AndroidUnavailable("no Android device: `adb devices` lists none (connect a phone with USB debugging on)")
            ready = [s for s, st in devices if st == "device"]
            if len(ready) > 1:
                raise UserError(f"several Android devices attached ({', '.join(ready)}): choose one with --adb_serial")
            serial, state = (ready[0], "device") if ready else devices[0]
        if state == "unauthorized":
            raise AndroidUnavailable(f"device {serial} is unauthorized: accept the USB debugging prompt on the phone")
        if state != "device":
            raise AndroidUnavailable(f"device {serial} is {state!r}, not ready (expected state 'device')")
        return serial

    def device_info(self) -> dict:
        """Model, SoC and ABI from ``getprop`` (empty strings where the phone does not say)."""
        props = {}
        for key, prop in (("model", "ro.product.model"), ("soc", "ro.soc.model"), ("board", "ro.board.platform"), ("abi", "ro.product.cpu.abi")):
            try:
                props[key] = self._run(["shell", "getprop", prop], what="adb shell getprop").strip()
            except AndroidBenchmarkError:
                props[key] = ""
        props["serial"] = self.serial
        return props

    def push(self, local: str | Path, remote: str) -> None:
        self._run(["push", str(local), remote], timeout=300, what=f"adb push {Path(local).name}")

    def run_benchmarks(
        self,
        model: str | Path,
        binary: str | Path,
        threads: Sequence[int] = (1, 2, 4),
        modes: Sequence[str] = MODES,
        runs: int = 50,
        warmup: int = 5,
    ) -> list[dict]:
        """Push ``model`` and ``binary``, run each mode, parse; one dict per run.

        CPU runs once per thread count; GPU and NNAPI once each, with the largest
        thread count for the ops that fall back to the CPU. A mode that fails (e.g. no
        GPU delegate on this phone) gives a dict with ``"error"`` and no numbers.
        """
        binary = check_binary(str(binary))
        remote_bin = f"{REMOTE_DIR}/benchmark_model"
        remote_model = f"{REMOTE_DIR}/{_safe_name(Path(model).name)}"
        self._run(["shell", "mkdir", "-p", REMOTE_DIR], what="adb shell mkdir")
        self.push(binary, remote_bin)
        self._run(["shell", "chmod", "755", remote_bin], what="adb shell chmod")
        self.push(model, remote_model)
        plan = [("cpu", t) for t in threads] if "cpu" in modes else []
        plan += [(m, max(threads)) for m in modes if m != "cpu"]
        results = []
        try:
            for mode, t in plan:
                cmd = build_benchmark_command(remote_bin, remote_model, mode, t, runs, warmup)
                row = {"mode": mode, "threads": t, "command": "adb shell " + " ".join(cmd)}
                try:
                    log = self._run(["shell", *cmd], timeout=self.timeout, what=f"benchmark_model ({mode})")
                    row.update(parse_benchmark_output(log))
                    row["log"] = log[-4000:]
                except AndroidBenchmarkError as error:
                    row["error"] = str(error)
                results.append(row)
        finally:
            try:
                self._run(["shell", "rm", "-f", remote_model], what="adb shell rm")
            except (AndroidBenchmarkError, AndroidUnavailable):
                pass
        return results
