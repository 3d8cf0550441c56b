"""The export modes, one entry each: how the mode prepares the model, how it converts it,
what it writes into the sidecar's ``quantization`` block, and its default fidelity floor.

=========  ============================================  =====================================  =====
mode       prepares                                      converts                               floor
=========  ============================================  =====================================  =====
float32    nothing (layers rewritten for XNNPACK)        float                                  60 dB
float16    nothing                                       float16 weights                        40 dB
dynamic    nothing                                       int8 weights, float activations        30 dB
int8       integer-friendly norms, equalization          calibrated on the representative set,  28 dB
                                                         percentile ranges, range tuning
qat_int8   as int8, then rewrite + QAT fine-tune         as int8, from the fine-tuned model     28 dB
=========  ============================================  =====================================  =====

:data:`MODES` is the table (:data:`EXPORT_MODES` its names, the export CLI's ``--quant``
choices); :func:`mobile_enhance.export.export_model` asks the entry for each step. A new
mode is a new entry, a subclass where one of its steps differs. This module imports no
TensorFlow (the CLI reads the table); the steps import what they use.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mobile_enhance.errors import UnknownNameError
from mobile_enhance.export.errors import ExportError
from mobile_enhance.export.samples import input_side, representative_inputs

#: Default share (%) of each activation's calibration values an int8 range covers.
DEFAULT_PERCENTILE = 99.9

#: int8: passes of output-driven range tuning (:func:`mobile_enhance.export.tflite.tune_ranges`)
#: by default, and the pixels of calibration images it runs each trial on (at least 2 images).
DEFAULT_TUNE_SWEEPS = 2
TUNE_PIXELS = 32 * 100 * 100

#: The sidecar's equalization counts of a model that was not equalized.
NO_EQUALIZATION = {"instance_norms_equalized": 0, "concat_inputs_rescaled": 0}


@dataclasses.dataclass(frozen=True)
class ExportOptions:
    """The settings of one export that its mode reads (the arguments of
    :func:`mobile_enhance.export.export_model` of the same meaning).

    Attributes:
      io_dtype: integer modes: the file's input/output type, ``uint8``, ``int8`` or ``float32``.
      calibration_count: integer modes: representative images.
      qat_steps, qat_target, qat_ranges: ``qat_int8``: fine-tuning steps, what it matches,
        how its activation ranges are taken (:func:`mobile_enhance.quantization.qat_finetune`).
      equalize: integer modes: equalize instance norms and concatenations first.
      percentile: integer modes: share (%) of each activation's values its range covers.
      tune_sweeps: integer modes: passes of output-driven range tuning (0: none).
      float_layers: integer modes: Keras layers whose ops stay float in the file
        (:func:`mobile_enhance.export.tflite.float_nodes`; the card's ``float_in_int8``).
    """

    io_dtype: str = "uint8"
    calibration_count: int = 32
    qat_steps: int = 200
    equalize: bool = True
    percentile: float = 100.0
    qat_target: str = "data"
    qat_ranges: str = "median"
    tune_sweeps: int = 0
    float_layers: tuple = ()


@dataclasses.dataclass
class Prepared:
    """A model made ready by its mode for conversion at one size.

    Attributes:
      reference: the float model the file is to match (an int8 mode's equalized copy: the
        same function), ``(N, H, W, 3) -> (N, sH, sW, 3)`` float32 in [0, 1].
      converted: what the converter takes: ``reference``, or its QAT fine-tune.
      rewritten: the layers rewritten for XNNPACK (the sidecar's ``rewritten_layers``).
      equalized: the sidecar's equalization counts.
      inputs: integer modes: the representative inputs, ``(H, W, 3)`` float32 at the input size.
      input_size: ``(H, W)`` of ``inputs`` (the export size, or the source's for a dynamic file).
    """

    reference: object
    converted: object
    rewritten: list
    equalized: dict = dataclasses.field(default_factory=lambda: dict(NO_EQUALIZATION))
    inputs: list | None = None
    input_size: tuple[int, int] | None = None


@dataclasses.dataclass
class Converted:
    """A converted file: its bytes, the calibration percentile its ranges came from (integer
    modes; ``None`` else) and the range tuning report (``None``: not tuned)."""

    blob: bytes
    percentile: float | None = None
    tuning: dict | None = None
    float_ops: int = 0


@dataclasses.dataclass(frozen=True)
class ExportMode:
    """A float mode, and the base of the others: the model converted as it is.

    Attributes:
      name: the mode (``--quant``; the sidecar's ``quantization.mode``).
      converter: the :func:`mobile_enhance.export.tflite.convert` mode that makes the file.
      min_psnr: default fidelity floor, dB PSNR of the file's output against the float model.
      summary: one line for ``--help``.
    """

    name: str
    converter: str
    min_psnr: float
    summary: str

    def prepare(self, model, size, source, options: ExportOptions, upscale: int = 1) -> Prepared:
        """The model ready to convert at ``size`` (``(H, W)`` input size, ``None``: dynamic)."""
        from mobile_enhance.export.rewrite import rewritable

        return Prepared(model, model, rewritable(model, size))

    def convert(self, prepared: Prepared, size, options: ExportOptions) -> Converted:
        from mobile_enhance.export.tflite import convert

        return Converted(convert(prepared.converted, self.converter, input_size=size, io_dtype=options.io_dtype))

    def settings(self, options: ExportOptions) -> dict:
        """The mode's settings as the sidecar's ``quantization`` block records them."""
        return {"io_dtype": "float32", "calibration_images": 0, "qat_steps": 0, "qat_target": None, "qat_ranges": None}

    def quantization(self, options: ExportOptions, prepared: Prepared, converted: Converted) -> dict:
        """The sidecar's ``quantization`` block."""
        block = {"mode": self.name, **self.settings(options), **prepared.equalized, "calibration_percentile": converted.percentile,
                 "range_tuning": converted.tuning}
        if options.float_layers and converted.float_ops:
            block["float_layers"] = {"layers": list(options.float_layers), "ops": converted.float_ops}
        return block


@dataclasses.dataclass(frozen=True)
class Int8Mode(ExportMode):
    """Full integer: calibrated on representative inputs from the training source.

    Prepares: instance norms take their statistics as int8 kernels hold them best
    (:func:`mobile_enhance.quantization.integer_means`), then, with ``equalize``, the
    equalizations (:func:`~mobile_enhance.quantization.equalize_for_int8`). Converts: with
    a percentile below 100 or range tuning, percentile and min/max ranges are both
    calibrated and the file closer to the float model on the calibration images is kept,
    then tuned (:func:`mobile_enhance.export.tflite.tune_ranges`); else TFLite's own
    min/max calibration.
    """

    def calibration(self, model, size, source, options: ExportOptions, upscale: int = 1):
        """``(integer-friendly, equalized model, representative inputs, equalization counts, (H, W))``."""
        from mobile_enhance.quantization import equalize_for_int8, integer_means

        if source is None:
            raise ExportError(f"{self.name} needs a representative set: pass --data (or a --run_dir whose config names it)")
        h, w = size if size is not None else (input_side(source), input_side(source))
        inputs = representative_inputs(source, h, w, options.calibration_count, upscale)
        model = integer_means(model)  # before QAT too: the graph it fine-tunes is the one converted
        equalized = dict(NO_EQUALIZATION)
        if options.equalize:
            model, equalized = equalize_for_int8(model, inputs)
        return model, inputs, equalized, (h, w)

    def prepare(self, model, size, source, options: ExportOptions, upscale: int = 1) -> Prepared:
        from mobile_enhance.export.rewrite import rewritable

        model, inputs, equalized, shape = self.calibration(model, size, source, options, upscale)
        return Prepared(model, model, rewritable(model, size, integer=True), equalized, inputs, shape)

    def convert(self, prepared: Prepared, size, options: ExportOptions) -> Converted:
        from mobile_enhance.export.tflite import (_mean_psnr, calibrated_int8, convert, float_nodes, quantize_calibrated, run_tflite,
                                                  tune_ranges)

        inputs, io_dtype = prepared.inputs, options.io_dtype
        representative = lambda: (x[None] for x in inputs)  # noqa: E731
        if options.percentile >= 100 and not options.tune_sweeps and not options.float_layers:
            blob = convert(prepared.converted, self.converter, input_size=size, representative=representative, io_dtype=io_dtype)
            return Converted(blob, 100.0)
        # percentile ranges help at the size a model was trained for (2-5 dB closer to float on our
        # runs) but can cost where it runs out of its regime (fast_dped at 720x1280: 26.6 dB
        # against 30.4 with min/max), so both are calibrated and the calibration images decide
        x = np.stack(inputs)
        reference = prepared.reference.predict(x, batch_size=4, verbose=0)
        calibrated, chosen, best, keep = None, None, -np.inf, []
        for p in dict.fromkeys((options.percentile, 100.0)):
            candidate = calibrated_int8(prepared.converted, size, representative, p)
            floats = float_nodes(candidate, prepared.converted.name, options.float_layers)
            score = _mean_psnr(run_tflite(quantize_calibrated(candidate, io_dtype, floats), x), reference)
            if score > best:
                calibrated, chosen, best, keep = candidate, p, score, floats
        tuning = None
        if options.tune_sweeps:
            h, w = prepared.input_size
            count = int(np.clip(TUNE_PIXELS // (h * w), 2, len(x)))
            calibrated, tuning = tune_ranges(calibrated, x[:count], reference[:count], io_dtype, sweeps=options.tune_sweeps,
                                             keep_float=keep)
        return Converted(quantize_calibrated(calibrated, io_dtype, keep), chosen, tuning, len(keep))

    def settings(self, options: ExportOptions) -> dict:
        return {**super().settings(options), "io_dtype": options.io_dtype, "calibration_images": options.calibration_count}


@dataclasses.dataclass(frozen=True)
class QatInt8Mode(Int8Mode):
    """Full integer after quantization-aware fine-tuning from the float weights
    (:func:`mobile_enhance.quantization.qat_finetune`), then converted as ``int8``.

    Prepares as ``int8`` (the graph it fine-tunes is the one converted), rewrites the
    layers for XNNPACK before the fine-tune (fake-quantized layers are not rewritable) at a
    size the training inputs share (space_to_depth needs even sizes), and fine-tunes with
    the int8 mode's images as calibration batches. Converts like ``int8``: the
    fake-quantized layers hold only their outputs' ranges, and the tensors inside an
    instance norm (mean, variance, rsqrt) gain as much from percentile ranges and tuning
    (fast_dped, 200 steps: 32.9 -> 38.9 dB from the float model); the reference stays the
    float model.
    """

    def prepare(self, model, size, source, options: ExportOptions, upscale: int = 1) -> Prepared:
        from mobile_enhance.export.rewrite import rewrite_for_xnnpack
        from mobile_enhance.quantization import qat_finetune

        model, inputs, equalized, shape = self.calibration(model, size, source, options, upscale)
        model, rewritten = rewrite_for_xnnpack(model, size if input_side(source) % 2 == 0 else None, integer=True)
        calibration = [np.stack(inputs[i : i + 4]) for i in range(0, len(inputs), 4)]  # the int8 mode's images
        qat = qat_finetune(model, source, options.qat_steps, calibration=calibration, target=options.qat_target, ranges=options.qat_ranges)
        return Prepared(model, qat, rewritten, equalized, inputs, shape)

    def settings(self, options: ExportOptions) -> dict:
        return {**super().settings(options), "qat_steps": options.qat_steps, "qat_target": options.qat_target,
                "qat_ranges": options.qat_ranges}


#: The export modes by name, in the order the CLI lists them.
MODES: dict[str, ExportMode] = {mode.name: mode for mode in (
    ExportMode("float32", "float32", 60.0, "float weights and activations"),
    ExportMode("float16", "float16", 40.0, "float16 weights"),
    ExportMode("dynamic", "dynamic", 30.0, "int8 weights, float activations"),
    Int8Mode("int8", "int8", 28.0, "full integer, calibrated on training images"),
    QatInt8Mode("qat_int8", "int8", 28.0, "full integer after quantization-aware fine-tuning"),
)}

#: The export modes' names.
EXPORT_MODES = tuple(MODES)

#: Default fidelity floors: PSNR (dB) of the TFLite output against the float Keras output.
DEFAULT_MIN_PSNR = {name: mode.min_psnr for name, mode in MODES.items()}


def get_mode(name: str) -> ExportMode:
    """The export mode called ``name``.

    Raises:
      UnknownNameError: listing the known modes.
    """
    if name not in MODES:
        raise UnknownNameError("quantization mode", name, MODES)
    return MODES[name]
