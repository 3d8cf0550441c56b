"""In-process measurements: one function per runtime, each timing one configuration.

Every function returns plain numbers (milliseconds) in a dict; :mod:`.worker` runs them
in a fresh process so each configuration gets its own thread pool, initialisation and
memory high-water mark. Times are ``time.perf_counter`` wall-clock around the call that
runs the model, and nothing else:

* LiteRT ``Interpreter`` (XNNPACK, or a delegate ``.so``): ``invoke()``; the input is
  set once before the runs.
* LiteRT ``CompiledModel`` (GPU accelerator): ``run_by_index`` on host-memory buffers,
  a synchronous call that includes the copies to and from the GPU.
* TensorFlow: ``model.predict(x, batch_size=1)`` (what a Keras user calls, with its data
  adapter and callbacks around the compiled predict step), or a ``tf.function`` of
  ``model(x, training=False)`` plus ``.numpy()`` on its result (the graph alone, which
  waits for the device and copies the output to the host).

``init_ms`` is loading up to a model ready to run (interpreter creation and
``allocate_tensors``; model compilation on the GPU; for Keras, building the graph and
tracing the function); ``first_ms`` is the first run, which is kept out of the statistics
as are the ``warmup`` runs after it.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import io
import re
import time
from pathlib import Path

import numpy as np

from mobile_enhance.benchmark.stats import summarize
from mobile_enhance.runtime import make_interpreter


class BackendUnavailable(Exception):
    """A runtime or device that this machine lacks; the message is one line saying what is missing."""


# ----------------------------------------------------------------------------- files


def describe_tflite(path: str | Path) -> dict:
    """Input/output contract and quantization mode of a ``.tflite`` file, from
    :func:`mobile_enhance.runtime.load` (the sidecar where there is one, else the file).

    Keys: ``path, file_bytes, quant, input_dtype, output_dtype, input_shape, dynamic_size,
    fixed_size, upscale, size_multiple, sidecar`` (the validated sidecar or ``None``),
    ``warning`` (one line when there is no sidecar).
    """
    from mobile_enhance.runtime import load

    interpreter, contract = load(path)
    signature = [-1 if d is None else d for d in contract.input.shape]
    return {
        "path": str(path),
        "file_bytes": Path(path).stat().st_size,
        "quant": contract.mode,
        "input_dtype": contract.input.dtype,
        "output_dtype": contract.output.dtype,
        "input_shape": signature,
        "dynamic_size": contract.dynamic,
        "fixed_size": contract.fixed_size,
        "upscale": contract.upscale,
        "size_multiple": contract.size_multiple,
        "sidecar": contract.sidecar,
        "warning": contract.warning,
    }


#: PIRM 2018 Track A (super-resolution on smartphones) times the production of one
#: 1280x720 output image.
TRACK_A_OUTPUT = (720, 1280)


def track_a_input(upscale: int) -> tuple[int, int]:
    """The input size whose output at ``upscale`` is :data:`TRACK_A_OUTPUT` (rounded up)."""
    return tuple(-(-n // upscale) for n in TRACK_A_OUTPUT)


def resolve_size(info: dict, size: tuple[int, int] | None) -> tuple[int, int]:
    """The ``(H, W)`` input to run at: the file's own size, or ``size`` for a dynamic-size
    file (an upscaling one without ``size``: the input of PIRM Track A's 1280x720 output)."""
    from mobile_enhance.errors import UserError

    if info["dynamic_size"]:
        if size is None and info.get("upscale", 1) > 1:  # PIRM 2018 Track A: a 1280x720 output
            return track_a_input(info["upscale"])
        if size is None:
            raise UserError(f"model {info['path']!r} takes any input size: give the size to benchmark with --size=HxW")
        return tuple(size)
    if size is not None and tuple(size) != tuple(info["fixed_size"]):
        h, w = info["fixed_size"]
        raise UserError(f"model {info['path']!r} has a fixed {h}x{w} input; --size={size[0]}x{size[1]} differs (leave --size out)")
    return tuple(info["fixed_size"])


def random_input(detail: dict, shape, seed: int = 0) -> np.ndarray:
    """Uniform [0, 1] image of ``shape``, quantized with the tensor's scale/zero point if integer."""
    from mobile_enhance.runtime import quantize_input as _to_input

    x = np.random.default_rng(seed).random(shape, dtype=np.float32)
    return _to_input(x, detail)


# ----------------------------------------------------------------------------- helpers


def _run_timed(fn, runs: int, warmup: int) -> tuple[float, list[float]]:
    t = time.perf_counter()
    fn()
    first = time.perf_counter() - t
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return first, times


def captured_native_stderr():
    """File descriptor 2 (where C++ runtimes log) kept, not passed on; yields a reader
    (:func:`mobile_enhance.runtime.native_stderr`)."""
    from mobile_enhance.runtime import native_stderr

    return native_stderr(passthrough=False)


def gpu_failure_reason(log: str, error: Exception | None) -> str:
    """One line saying why LiteRT's GPU accelerator could not start, from its native log."""
    reasons = []
    if re.search(r"libvulkan\.so[.\d]*: cannot open shared object file", log) or (
        not log and ctypes.util.find_library("vulkan") is None
    ):
        reasons.append("no Vulkan loader (libvulkan.so.1 not found)")
    if "No adapters found" in log:
        reasons.append("WebGPU found no GPU adapter")
    if not reasons:
        errors = [ln.strip() for ln in log.splitlines() if re.match(r"\s*(ERROR|E\d{4}|F\d{4})", ln)]
        reasons.append(errors[-1][:200] if errors else (str(error).splitlines()[0][:200] if error else "unknown error"))
    return "LiteRT GPU accelerator (WebGPU) unavailable: " + "; ".join(reasons)


# ----------------------------------------------------------------------------- runtimes


def check_delegate_library(path: str) -> None:
    """Raise :class:`BackendUnavailable` unless ``path`` loads and exports the TFLite external-delegate
    entry points that ``load_delegate`` calls (``tflite_plugin_create_delegate`` / ``..._destroy_delegate``)."""
    try:
        library = ctypes.CDLL(path)
    except OSError as error:
        raise BackendUnavailable(f"could not load delegate {path!r}: {str(error).splitlines()[0][:200]}") from None
    missing = [s for s in ("tflite_plugin_create_delegate", "tflite_plugin_destroy_delegate") if not hasattr(library, s)]
    if missing:
        raise BackendUnavailable(f"{path!r} is not a TFLite delegate plugin: it exports no {missing[0]}")


def measure_interpreter(
    model_path: str,
    threads: int,
    runs: int,
    warmup: int,
    size: tuple[int, int] | None = None,
    delegate_path: str | None = None,
    seed: int = 0,
) -> dict:
    """LiteRT ``Interpreter``: XNNPACK on ``threads`` threads, or the delegate at ``delegate_path``."""
    t0 = time.perf_counter()
    if delegate_path:
        from ai_edge_litert.interpreter import load_delegate

        check_delegate_library(delegate_path)
        try:
            delegate = load_delegate(delegate_path)
        except (ValueError, OSError, RuntimeError) as error:
            raise BackendUnavailable(f"could not load delegate {delegate_path!r}: {str(error).splitlines()[0][:200]}") from None
        interpreter = make_interpreter(model_path=model_path, num_threads=threads, delegates=[delegate])
    else:
        interpreter = make_interpreter(model_path=model_path, num_threads=threads)
    inp = interpreter.get_input_details()[0]
    if size is not None and list(inp["shape"][1:3]) != list(size):
        interpreter.resize_tensor_input(inp["index"], [1, size[0], size[1], int(inp["shape"][3])], strict=True)
    interpreter.allocate_tensors()
    init = time.perf_counter() - t0
    inp = interpreter.get_input_details()[0]
    interpreter.set_tensor(inp["index"], random_input(inp, tuple(inp["shape"]), seed))
    first, times = _run_timed(interpreter.invoke, runs, warmup)
    return {"init_ms": init * 1e3, "first_ms": first * 1e3, **summarize(times), "size": list(map(int, inp["shape"][1:3]))}


def measure_compiled_model(
    model_path: str,
    threads: int,
    runs: int,
    warmup: int,
    size: tuple[int, int] | None = None,
    accelerator: str = "gpu",
    seed: int = 0,
) -> dict:
    """LiteRT ``CompiledModel`` on the GPU accelerator (``accelerator="gpu"``, CPU fallback for
    ops the GPU lacks) or the CPU alone (``"cpu"``). Raises :class:`BackendUnavailable`
    with the reason when the GPU accelerator cannot start.
    """
    from ai_edge_litert.compiled_model import CompiledModel
    from ai_edge_litert.hardware_accelerator import HardwareAccelerator
    from ai_edge_litert.options import CpuOptions, Options

    accel = {"gpu": HardwareAccelerator.GPU | HardwareAccelerator.CPU, "cpu": HardwareAccelerator.CPU}[accelerator]
    t0 = time.perf_counter()
    error = None
    with captured_native_stderr() as log:
        try:
            model = CompiledModel.from_file(
                model_path, options=Options(hardware_accelerators=accel, cpu_options=CpuOptions(num_threads=threads))
            )
        except RuntimeError as exc:
            error = exc
    if error is not None:
        if accelerator == "gpu":
            raise BackendUnavailable(gpu_failure_reason(log(), error))
        raise error
    key = next(iter(model.get_signature_list()))
    (name, detail), = model.get_input_tensor_details(key).items()
    shape = list(detail["shape"])
    if size is not None and shape[1:3] != list(size):
        model.resize_input_tensor(0, [1, size[0], size[1], shape[3]])
        shape = [1, size[0], size[1], shape[3]]
    inputs, outputs = model.create_input_buffers(0), model.create_output_buffers(0)
    init = time.perf_counter() - t0
    dtype = np.dtype(detail["dtype"])
    x = np.random.default_rng(seed).random(shape, dtype=np.float32)
    if dtype != np.float32:  # random codes: latency does not depend on the values
        x = (x * np.iinfo(dtype).max).astype(dtype)
    inputs[0].write(x)
    first, times = _run_timed(lambda: model.run_by_index(0, inputs, outputs), runs, warmup)
    return {
        "init_ms": init * 1e3,
        "first_ms": first * 1e3,
        **summarize(times),
        "size": shape[1:3],
        "fully_accelerated": bool(model.is_fully_accelerated()),
    }


def compiled_model_output(model_path: str, image: np.ndarray, accelerator: str = "cpu") -> np.ndarray:
    """Run a float32-I/O model once through ``CompiledModel``; ``image`` is ``(1, H, W, 3)``."""
    from ai_edge_litert.compiled_model import CompiledModel
    from ai_edge_litert.hardware_accelerator import HardwareAccelerator
    from ai_edge_litert.options import CpuOptions, Options

    accel = {"gpu": HardwareAccelerator.GPU | HardwareAccelerator.CPU, "cpu": HardwareAccelerator.CPU}[accelerator]
    with captured_native_stderr():
        model = CompiledModel.from_file(model_path, options=Options(hardware_accelerators=accel, cpu_options=CpuOptions(num_threads=1)))
    inputs, outputs = model.create_input_buffers(0), model.create_output_buffers(0)
    inputs[0].write(np.ascontiguousarray(image, np.float32))
    model.run_by_index(0, inputs, outputs)
    return np.asarray(outputs[0].read(int(np.prod(image.shape)), np.float32)).reshape(image.shape)


#: How :func:`measure_keras` can run the model.
KERAS_CALLS = ("predict", "function")


def measure_keras(
    name: str,
    size: tuple[int, int],
    threads: int,
    runs: int,
    warmup: int,
    weights: str | None = None,
    device: str = "cpu",
    seed: int = 0,
    call: str = "function",
) -> dict:
    """TensorFlow (tf_keras) on ``device`` (``cpu`` or ``gpu``), intra-op pool of ``threads``.

    ``call``: "predict" times ``model.predict``; "function" a traced ``tf.function``.
    """
    if call not in KERAS_CALLS:
        raise ValueError(f"call must be predict or function, got {call!r}")
    from mobile_enhance.compat import GPUS, tf

    notes = []
    if device == "gpu":
        if not GPUS:
            raise BackendUnavailable("TensorFlow lists no GPU (no NVIDIA GPU visible, or CUDA not installed: pip install -e .[gpu])")
        tf_device = "/GPU:0"
    else:
        tf_device = "/CPU:0"
    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        notes.append("TensorFlow was already initialised: its thread pools keep their sizes")
    from mobile_enhance.models import build_model
    from mobile_enhance.models.stats import count_macs

    h, w = size
    t0 = time.perf_counter()
    with tf.device(tf_device):
        model = build_model(name, input_shape=(h, w, 3))
        if weights:
            model.load_weights(weights)
        image = np.random.default_rng(seed).random((1, h, w, 3), dtype=np.float32)
        if call == "function":
            x = tf.constant(image)
            fn = tf.function(lambda t: model(t, training=False), autograph=False)
            fn.get_concrete_function(x)
    init = time.perf_counter() - t0

    def run_once():
        with tf.device(tf_device):
            if call == "predict":
                return model.predict(image, batch_size=1, verbose=0)
            return fn(x).numpy()

    first, times = _run_timed(run_once, runs, warmup)
    return {
        "init_ms": init * 1e3,
        "first_ms": first * 1e3,
        **summarize(times),
        "size": [h, w],
        "gmacs": count_macs(model, h, w) / 1e9,
        "weights": weights or "random init",
        "notes": notes,
    }


def measure_end_to_end(
    model_path: str,
    photo: str,
    threads: int,
    runs: int,
    size: tuple[int, int] | None = None,
    encode_format: str = "JPEG",
    return_output: bool = False,
    frame: tuple[int, int] | None = None,
) -> dict:
    """Per-image latency on a real photo: decode, preprocess, infer, postprocess, encode.

    * decode: PIL decodes the file's bytes (read into memory once) to RGB.
    * preprocess: ``ImageOps.fit`` scales the photo to cover the model's input size and
      crops the centre (bilinear), then float32 in [0, 1], quantized for integer inputs.
    * infer: ``set_tensor`` + ``invoke`` + ``get_tensor``.
    * postprocess: dequantize (integer outputs), clip to [0, 1], round to uint8, PIL image.
    * encode: ``encode_format`` into memory (JPEG quality 95).

    With ``frame`` (``(H, W)``), the photo is fitted to that frame instead and the model
    runs window by window over it as ``mobile-enhance enhance`` runs it
    (:class:`~mobile_enhance.enhance.pipeline.TFLiteModel`: a fixed-size file at its size,
    overlapping windows blended); infer then covers every window, their quantization and
    the blending, and ``windows`` says how many.

    Returns per-stage medians, the total's statistics, and with ``return_output`` the last
    preprocessed input and encoded bytes (for checks).
    """
    from PIL import Image, ImageOps

    from mobile_enhance.runtime import dequantize_output as _from_output, quantize_input as _to_input

    data = Path(photo).read_bytes()
    extra = {}
    if frame is None:
        interpreter = make_interpreter(model_path=model_path, num_threads=threads)
        inp = interpreter.get_input_details()[0]
        if size is not None and list(inp["shape"][1:3]) != list(size):
            interpreter.resize_tensor_input(inp["index"], [1, size[0], size[1], 3], strict=True)
        interpreter.allocate_tensors()
        inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
        h, w = int(inp["shape"][1]), int(inp["shape"][2])
        prepare = lambda fitted: _to_input(np.asarray(fitted, np.float32)[None] / 255.0, inp)  # noqa: E731

        def infer(x):
            interpreter.set_tensor(inp["index"], x)
            interpreter.invoke()
            return interpreter.get_tensor(out["index"])

        finish = lambda y: _from_output(y, out)[0]  # noqa: E731
    else:
        from mobile_enhance.enhance.pipeline import TFLiteModel
        from mobile_enhance.enhance.tiling import plan_tiles

        model = TFLiteModel(model_path, num_threads=threads)
        (h, w), infer, finish = frame, model.enhance, lambda y: y
        prepare = lambda fitted: np.asarray(fitted, np.float32) / 255.0  # noqa: E731
        extra = {"windows": len(plan_tiles(h, w, model.tile, model.overlap, model.multiple)), "window": list(model.tile)}
    stages = {k: [] for k in ("decode", "preprocess", "infer", "postprocess", "encode", "total")}
    last = {}
    with Image.open(io.BytesIO(data)) as probe:
        photo_size = [probe.height, probe.width]
    for i in range(runs + 1):  # the first pass warms up and is not counted
        t0 = time.perf_counter()
        with Image.open(io.BytesIO(data)) as image:
            rgb = image.convert("RGB")
        t1 = time.perf_counter()
        x = prepare(ImageOps.fit(rgb, (w, h), Image.BILINEAR))
        t2 = time.perf_counter()
        y = infer(x)
        t3 = time.perf_counter()
        y = np.clip(finish(y), 0.0, 1.0)
        result = Image.fromarray(np.round(y * 255.0).astype(np.uint8))
        t4 = time.perf_counter()
        buffer = io.BytesIO()
        result.save(buffer, format=encode_format, **({"quality": 95} if encode_format.upper() == "JPEG" else {}))
        t5 = time.perf_counter()
        if i:
            for key, dt in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t5 - t0)):
                stages[key].append(dt)
        last = {"input": x, "encoded": buffer.getvalue()}
    total = summarize(stages.pop("total"))
    report = {
        "photo": str(photo),
        "photo_size": photo_size,
        "size": [h, w],
        **extra,
        "encode_format": encode_format,
        **{f"{k}_median_ms": float(np.median(v) * 1e3) for k, v in stages.items()},
        **{f"total_{k}": v for k, v in total.items()},
    }
    if return_output:
        report["output"] = last
    return report


def measure_matmul(n: int = 2048, repeats: int = 5, threads: int | None = None, tensorflow: bool = True) -> dict:
    """Float32 ``n x n`` matrix product, best of ``repeats``, in numpy (its BLAS) and in TensorFlow.

    The ceiling (``gflops``) is the faster of the two: numpy wheels ship OpenBLAS, whose
    kernels may not use the widest vector units that TensorFlow's do. ``threads`` sets
    TensorFlow's intra-op pool; numpy's BLAS threads come from ``OPENBLAS_NUM_THREADS`` /
    ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` set before numpy is imported (the worker does
    that). ``cpu_per_wall`` (process CPU time / wall time over the timed products) shows
    how many cores each really used.
    """
    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    result = {"n": n, "repeats": repeats, "blas": "unknown", "notes": []}
    with contextlib.suppress(Exception):
        result["blas"] = np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"]
    candidates = {"numpy": lambda: a @ b}
    if tensorflow:
        from mobile_enhance.compat import tf

        if threads is not None:
            try:
                tf.config.threading.set_intra_op_parallelism_threads(int(threads))
                tf.config.threading.set_inter_op_parallelism_threads(1)
            except RuntimeError:
                result["notes"].append("TensorFlow was already initialised: its thread pool keeps its size")
        ta, tb = tf.constant(a), tf.constant(b)
        product = tf.function(tf.linalg.matmul, autograph=False)
        candidates["tensorflow"] = lambda: product(ta, tb).numpy()
    for name, fn in candidates.items():
        fn()  # warm-up: thread pool start, page faults, tracing
        cpu0, wall0 = time.process_time(), time.perf_counter()
        best = min(_time_once(fn) for _ in range(repeats))
        cpu_per_wall = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
        result[f"{name}_gflops"] = 2.0 * n**3 / best / 1e9
        result[f"{name}_cpu_per_wall"] = cpu_per_wall
    source = max(candidates, key=lambda k: result[f"{k}_gflops"])
    result.update(gflops=result[f"{source}_gflops"], source=source)
    return result


def _time_once(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t
