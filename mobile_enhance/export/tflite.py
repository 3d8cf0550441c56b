"""Keras -> TFLite conversion. Running a converted file: :mod:`mobile_enhance.runtime`."""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np

from mobile_enhance.compat import tf
from mobile_enhance.errors import UnknownNameError, UserError
from mobile_enhance.runtime import make_interpreter, run_tflite  # noqa: F401 - re-exported

#: Conversion modes. ``int8`` is full integer (activations and weights) and needs a
#: representative dataset; ``dynamic`` quantizes weights only; ``float16`` stores
#: weights as float16.
QUANT_MODES = ("float32", "float16", "dynamic", "int8")


def _concrete_function(model, input_size):
    height, width = (None, None) if input_size is None else input_size
    spec = tf.TensorSpec([1, height, width, model.input_shape[-1]], tf.float32, name="phone")
    return tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)


def convert(
    model,
    quant: str = "float32",
    input_size: tuple[int, int] | None = None,
    representative: Callable[[], Iterable[np.ndarray]] | None = None,
    io_dtype: str = "uint8",
    percentile: float = 100.0,
    rewrite: bool = True,
) -> bytes:
    """Convert a Keras generator to a TFLite flatbuffer.

    Args:
      model: Keras model, ``(N, H, W, 3)`` float32 in [0, 1] in and out.
      quant: one of :data:`QUANT_MODES`.
      input_size: ``(H, W)`` baked into the file, or ``None`` for a dynamic size.
      representative: for ``int8``, a callable returning an iterable of
        ``(1, H, W, 3)`` float32 arrays in [0, 1] used to calibrate activation ranges.
      io_dtype: for ``int8``, the input/output type: ``uint8``, ``int8`` or ``float32``.
      percentile: for ``int8``, the share (%) of each activation's calibration values its
        int8 range covers: 100 takes the minimum and maximum (TFLite's calibration); below
        100 the rarest extremes are clipped (:func:`percentile_ranges`).
      rewrite: convert the same function with the layers XNNPACK runs slowly (thin
        convolutions, stride-2 transposed convolutions, and in ``int8`` files channel
        PReLUs) rewritten exactly (:mod:`mobile_enhance.export.rewrite`).

    Returns:
      The ``.tflite`` file's bytes.
    """
    if quant not in QUANT_MODES:
        raise UnknownNameError("quantization mode", quant, QUANT_MODES)
    if quant == "int8":
        if representative is None:
            raise UserError("int8 conversion needs a representative dataset to calibrate activation ranges")
        if io_dtype not in IO_TYPES:
            raise UnknownNameError("int8 input/output type", io_dtype, IO_TYPES)
        if not 0 < percentile <= 100:
            raise UserError(f"the calibration percentile must be in (0, 100], got {percentile}")
        if not _is_qat(model):  # a QAT model's ranges are its fake-quant ranges (see qat_finetune)
            return quantize_calibrated(calibrated_int8(model, input_size, representative, percentile, rewrite), io_dtype)
        from mobile_enhance.quantization import integer_means

        model = integer_means(model)  # int8 MEAN adds in int32: one per statistic
    if rewrite:
        from mobile_enhance.export.rewrite import rewrite_for_xnnpack

        model, _ = rewrite_for_xnnpack(model, input_size, integer=quant == "int8")
    converter = tf.lite.TFLiteConverter.from_concrete_functions([_concrete_function(model, input_size)], model)
    if quant == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quant == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quant == "int8":
        _int8_converter(converter, representative)
        converter.inference_input_type = converter.inference_output_type = IO_TYPES[io_dtype]
    return converter.convert()


#: int8 files: the input/output types offered.
IO_TYPES = {"uint8": tf.uint8, "int8": tf.int8, "float32": tf.float32}


def _int8_converter(converter, representative) -> None:
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([np.asarray(x, np.float32)] for x in representative())
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]


def _is_qat(model) -> bool:
    return any(type(layer).__name__ in ("QuantizeLayer", "QuantizeWrapper", "QuantizeWrapperV2") for layer in model.layers)


# The calibrate / edit ranges / quantize split below is the route TensorFlow's own
# QuantizationDebugger takes (tf.lite.experimental.QuantizationDebugger): the converter
# stops after calibration, leaving a float model whose tensors carry their calibrated
# min and max, and ``mlir_quantize`` turns that into the int8 file.


def _unpack(blob: bytes):
    """A ``.tflite`` file as an editable object tree (``schema.ModelT``)."""
    from ai_edge_litert import schema_py_generated as schema

    return schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(blob, 0))


def _pack(model, size_hint: int) -> bytes:
    import flatbuffers

    builder = flatbuffers.Builder(size_hint + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _calibrate_only(converter) -> bytes:
    converter._experimental_calibrate_only = True  # noqa: SLF001 - as QuantizationDebugger does
    return converter.convert()


def calibrated_int8(model, input_size, representative, percentile: float = 100.0, rewrite: bool = True) -> bytes:
    """The int8 conversion stopped after calibration: a float ``.tflite`` whose activations
    carry their calibrated ranges (input and output at least [0, 1], the rest narrowed to
    ``percentile`` % when below 100), for :func:`tune_ranges` and :func:`quantize_calibrated`;
    :func:`convert` quantizes it. Instance norms take one MEAN per statistic, and with
    ``rewrite`` the layers are rewritten for XNNPACK; a QAT model, which had both done
    before its fine-tune, is converted as it is (its fake-quant ranges are calibrated
    ranges here, the tensors between them calibrated from ``representative``)."""
    from mobile_enhance.quantization import integer_means

    if not _is_qat(model):
        model = integer_means(model)
        if rewrite:
            from mobile_enhance.export.rewrite import rewrite_for_xnnpack

            model, _ = rewrite_for_xnnpack(model, input_size, integer=True)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([_concrete_function(model, input_size)], model)
    _int8_converter(converter, representative)
    calibrated = pin_image_ranges(_calibrate_only(converter))
    return calibrated if percentile >= 100 else percentile_ranges(calibrated, representative, percentile)


#: The range of the images every generator takes and gives, ``(N, H, W, 3)`` in [0, 1].
IMAGE_RANGE = (0.0, 1.0)


def pin_image_ranges(calibrated: bytes) -> bytes:
    """Widen the model's input and output ranges to at least [0, 1] in a calibrated file.

    Calibration would give the input the range the calibration photos happened to span:
    with none brighter than 0.93, a uint8 input took a scale of 0.93/255, so every pixel
    above 0.93 was clipped there (highlights lost) and raw pixel bytes were not the input.
    With [0, 1] a uint8 input or output is the pixel value itself (scale 1/255, zero point 0).
    A tensor calibrated beyond [0, 1] (not an image) keeps its wider range.
    """
    from ai_edge_litert import schema_py_generated as schema

    model = _unpack(calibrated)
    for graph in model.subgraphs:
        for i in list(graph.inputs) + list(graph.outputs):
            quantization = graph.tensors[i].quantization
            if quantization is None:
                quantization = graph.tensors[i].quantization = schema.QuantizationParametersT()
            low = min([IMAGE_RANGE[0]] + [float(v) for v in (quantization.min if quantization.min is not None else [])])
            high = max([IMAGE_RANGE[1]] + [float(v) for v in (quantization.max if quantization.max is not None else [])])
            quantization.min, quantization.max = [low], [high]
    return _pack(model, len(calibrated))


def quantize_calibrated(calibrated: bytes, io_dtype: str = "uint8", keep_float=()) -> bytes:
    """The integer file of a calibrated float ``.tflite``, inputs and outputs ``io_dtype``;
    the ops whose output tensors are named in ``keep_float`` (:func:`float_nodes`) stay
    float, with QUANTIZE / DEQUANTIZE where they meet the integer ones."""
    from tensorflow.lite.python import convert as lite_convert

    if io_dtype not in IO_TYPES:
        raise UnknownNameError("int8 input/output type", io_dtype, IO_TYPES)
    io_type = IO_TYPES[io_dtype]
    return lite_convert.mlir_quantize(calibrated, input_data_type=io_type, output_data_type=io_type,  # as TFLiteConverter calls it
                                      denylisted_nodes=list(keep_float) or None)


def float_nodes(calibrated: bytes, model_name: str, layers) -> list[str]:
    """Output tensor names of the ops of a calibrated file that compute Keras ``layers`` of
    model ``model_name`` (``quant_<layer>`` too: tfmot's QAT wrappers), for
    :func:`quantize_calibrated` to keep float.

    Why: an int8 tensor that carries the whole image (a bicubic skip, the sum that adds a
    residual to it) is rounded to about 1/255 of its range at every op, which is as much
    error as a super-resolution model gains at ~45 dB; its ops are a few cheap ones
    (a fixed convolution to ``s*s*3`` channels, additions), so they cost no measurable time
    as float (``benchmarks/README.md``). Fused ops carry all their parts' names, ``;``-joined.
    """
    graph = _unpack(calibrated).subgraphs[0]
    prefixes = tuple(f"{model_name}/{pre}{layer}/" for layer in layers for pre in ("", "quant_"))
    names = []
    for op in graph.operators:
        name = graph.tensors[op.outputs[0]].name.decode()
        if prefixes and any(part.startswith(prefixes) for part in name.split(";")):
            names.append(name)
    return names


#: :func:`tune_ranges`: the factors each activation range is tried at, in turn.
TUNE_FACTORS = (0.8, 1.25)


def _mean_psnr(images: np.ndarray, reference: np.ndarray) -> float:
    mse = np.mean((np.clip(images, 0.0, 1.0) - reference) ** 2, axis=(1, 2, 3))
    return float(np.mean(10.0 * np.log10(1.0 / np.maximum(mse, 1e-20))))


def tune_ranges(calibrated: bytes, images, reference, io_dtype: str = "uint8", sweeps: int = 2, factors=TUNE_FACTORS,
                min_gain_db: float = 0.02, keep_float=()) -> tuple[bytes, dict]:
    """Choose each activation's int8 range by what the quantized model's output does.

    Calibration sets every range from that tensor's own values (min/max or a percentile),
    blind to how its rounding and clipping travel to the output. Here, one activation at a
    time in graph order, the range is scaled by each of ``factors`` (zero stays inside); the
    file is quantized and run on ``images``, and the first scaling that brings the output at
    least ``min_gain_db`` closer to ``reference`` (the float model's output on ``images``,
    mean PSNR) is kept. ``sweeps`` passes over the graph, stopping early when a pass keeps
    nothing. No labels are used: the target is the float model itself.

    Args:
      calibrated: a calibrated float ``.tflite`` (:func:`calibrated_int8`).
      images: ``(N, H, W, 3)`` float32 in [0, 1], the input size baked into the file.
      reference: the float model's output on ``images``.
      keep_float: output names of ops the file keeps float (:func:`float_nodes`): not
        tuned, and quantized float in every trial as in the file.

    Returns:
      ``(calibrated file with the chosen ranges, report)``; the report gives the PSNR
      against the float model on ``images`` before and after, the ranges changed and the
      quantize-and-run trials taken.
    """
    images, reference = np.asarray(images, np.float32), np.asarray(reference, np.float32)
    if not len(images) or images.shape[0] != reference.shape[0]:
        raise ValueError(f"tune_ranges needs images and their reference outputs, got {images.shape} and {reference.shape}")
    model = _unpack(calibrated)
    graph = model.subgraphs[0]
    ends = set(graph.inputs) | set(graph.outputs)
    order = []
    for op in graph.operators:
        for i in op.outputs:
            t = graph.tensors[i]
            if i not in ends and i not in order and t.name.decode() not in keep_float \
                    and t.quantization is not None and t.quantization.min is not None \
                    and len(t.quantization.min) == 1 and t.quantization.max[0] > t.quantization.min[0]:
                order.append(i)
    start = {i: (float(graph.tensors[i].quantization.min[0]), float(graph.tensors[i].quantization.max[0])) for i in order}

    def build(ranges) -> bytes:
        for i, (low, high) in ranges.items():
            graph.tensors[i].quantization.min, graph.tensors[i].quantization.max = [low], [high]
        return _pack(model, len(calibrated))

    def score(ranges) -> float:
        return _mean_psnr(run_tflite(quantize_calibrated(build(ranges), io_dtype, keep_float), images), reference)

    current, trials = dict(start), 1
    before = best = score(current)
    done = 0
    for _ in range(sweeps):
        kept = 0
        for i in order:
            low, high = current[i]
            for factor in factors:
                trial = {**current, i: (low * factor, high * factor)}
                value, trials = score(trial), trials + 1
                if value >= best + min_gain_db:
                    best, current, kept = value, trial, kept + 1
                    break
        done += 1
        if not kept:
            break
    report = {
        "sweeps": done, "images": int(len(images)), "factors": [float(f) for f in factors], "trials": trials,
        "ranges_changed": sum(current[i] != start[i] for i in order), "ranges": len(order),
        "psnr_vs_float_before": round(before, 3), "psnr_vs_float_after": round(best, 3),
    }
    return build(current), report


#: Bytes of activations :func:`percentile_ranges` keeps alive at once: the tensors it reads
#: are made graph outputs a group at a time, so a large frame never holds every activation
#: (DPED at 720x1280 kept 24 GB when the interpreter preserved all tensors).
PERCENTILE_BUDGET = 1 << 30


def _tensor_groups(graph, indices, budget: int) -> list[list[int]]:
    """``indices`` in order, cut into groups whose float32 tensors add up to at most
    ``budget`` bytes (a larger tensor alone)."""
    groups, size = [[]], 0
    for i in indices:
        shape = graph.tensors[i].shape
        n = 4 * int(np.prod([max(int(d), 1) for d in (shape if shape is not None else ())]))
        if groups[-1] and size + n > budget:
            groups.append([])
            size = 0
        groups[-1].append(i)
        size += n
    return [g for g in groups if g]


def percentile_ranges(calibrated: bytes, representative, percentile: float, bins: int = 4096, budget: int = PERCENTILE_BUDGET) -> bytes:
    """Narrow every calibrated activation range to the central ``percentile`` % of its values.

    TFLite's calibration gives each activation the minimum and maximum it took over the
    representative images, so one rare extreme sets the int8 step for every value of the
    tensor, and more calibration images only widen the ranges. Here each internal
    activation (the model's input and output keep theirs) is histogrammed over the same
    images (``bins`` bins across its calibrated range) and its range cut where
    ``(100 - percentile) / 2`` % of the values lie beyond each end; zero stays inside.

    The activations are read as extra graph outputs, one group of at most ``budget``
    bytes per pass over the images, so memory stays bounded at any frame size.

    Args:
      calibrated: a calibrated float ``.tflite`` (tensors carry min/max).
      representative: callable returning the calibration inputs, ``(1, H, W, 3)`` float32
        (called once per group).

    Returns:
      The same model with the narrowed ranges, ready for ``mlir_quantize``.
    """
    from ai_edge_litert.interpreter import Interpreter

    model = _unpack(calibrated)
    graph = model.subgraphs[0]
    ends = set(graph.inputs) | set(graph.outputs)
    ranged = {
        i: (float(t.quantization.min[0]), float(t.quantization.max[0]))
        for i, t in enumerate(graph.tensors)
        if i not in ends and t.quantization is not None and t.quantization.min is not None and len(t.quantization.min) == 1
    }
    counts = {i: np.zeros(bins) for i in ranged}
    for group in _tensor_groups(graph, [i for i, (low, high) in ranged.items() if high > low], budget):
        probe = _unpack(calibrated)
        probe.subgraphs[0].outputs = list(probe.subgraphs[0].outputs) + group
        interpreter = Interpreter(model_content=_pack(probe, len(calibrated)))
        interpreter.allocate_tensors()
        index = interpreter.get_input_details()[0]["index"]
        for x in representative():
            interpreter.set_tensor(index, np.asarray(x, np.float32))
            interpreter.invoke()
            for i in group:
                counts[i] += np.histogram(interpreter.get_tensor(i), bins=bins, range=ranged[i])[0]
        del interpreter
    tail = (100.0 - percentile) / 200.0
    for i, (low, high) in ranged.items():
        if high <= low or not counts[i].sum():
            continue
        cdf = np.cumsum(counts[i]) / counts[i].sum()
        edges = np.linspace(low, high, bins + 1)
        new_low = edges[min(int(np.searchsorted(cdf, tail)), bins)]
        new_high = edges[min(int(np.searchsorted(cdf, 1.0 - tail)) + 1, bins)]
        quantization = graph.tensors[i].quantization
        quantization.min, quantization.max = [min(float(new_low), 0.0)], [max(float(new_high), 0.0)]
    return _pack(model, len(calibrated))
