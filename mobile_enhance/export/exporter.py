"""Export a trained generator: quantize, convert, prove fidelity, write file + sidecar.

``export_model`` is the Python API behind ``mobile-enhance export``. For each size (the
file's input size; a model that upscales ``s`` times gives ``s`` times that) it

1. prepares the model as its mode says (:mod:`mobile_enhance.export.modes`: ``float32``,
   ``float16``, ``dynamic``, ``int8`` calibrated on a representative set drawn from the
   training data source after equalization, or ``qat_int8``: quantization-aware
   fine-tuning with tensorflow-model-optimization from the float weights,
   :func:`mobile_enhance.quantization.qat_finetune`);
2. converts to TFLite at a fixed size, or with a dynamic size where the graph allows it
   (checked by running the file at two sizes);
3. measures fidelity on held-out pairs: PSNR/SSIM of the TFLite output against the float
   Keras output, and of both (and the unprocessed input, or for ``s > 1`` the input
   bicubic-upscaled) against the targets;
4. refuses, writing nothing, when the TFLite output falls below the floor
   (``min_psnr`` dB against the float model, by default the mode's) unless ``force``;
5. writes ``NAME.tflite`` and the sidecar ``NAME.json`` atomically.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

import numpy as np

from mobile_enhance.compat import keras, tf
from mobile_enhance.data.images import bicubic_upscale
from mobile_enhance.export.analysis import operator_names, xnnpack_leftovers
from mobile_enhance.export.errors import ExportError, FidelityError
from mobile_enhance.export.modes import (  # noqa: F401 - DEFAULT_PERCENTILE, TUNE_PIXELS: re-exported
    DEFAULT_MIN_PSNR,
    DEFAULT_PERCENTILE,
    DEFAULT_TUNE_SWEEPS,
    EXPORT_MODES,
    TUNE_PIXELS,
    ExportOptions,
    get_mode,
)
from mobile_enhance.export.samples import (  # noqa: F401 - mosaic, representative_inputs: re-exported
    heldout_pairs,
    input_side,
    mosaic,
    representative_inputs,
    source_upscale,
)
from mobile_enhance.export.tflite import make_interpreter, run_tflite
from mobile_enhance.fileio import atomic_path, atomic_write_bytes
from mobile_enhance.quantization.qat import QAT_RANGES, QAT_TARGETS, qat_finetune  # noqa: F401 - re-exported
from mobile_enhance.quantization.qat import without_training_noise as _without_training_noise  # noqa: F401 - re-exported
from mobile_enhance.runtime.sidecar import file_entry, make_sidecar, read_sidecar, tensor_entry, write_sidecar


@dataclasses.dataclass
class ExportResult:
    """One written file: its path, its sidecar, and ``warnings``, lines for the user about it
    (:func:`mobile_enhance.api.export` adds what the sidecar alone cannot say)."""

    path: Path
    sidecar: dict
    warnings: list[str] = dataclasses.field(default_factory=list)


# -- fidelity ----------------------------------------------------------------------------


def _image_quality(a, b) -> dict:
    from mobile_enhance.metrics import image_metrics

    m = image_metrics(a, b)
    return {"psnr": round(m["psnr"], 3), "ssim": round(m["ssim"], 5), "ms_ssim": round(m["ms_ssim"], 5)}


# -- conversion ------------------------------------------------------------------------


def _check_dynamic(blob: bytes, multiple: int, model_name: str, upscale: int = 1):
    """Run a dynamic-size file at two sizes; say clearly when the graph baked one in (or
    when its output is not ``upscale`` times its input)."""
    interpreter = make_interpreter(model_content=blob)
    index = interpreter.get_input_details()[0]["index"]
    base = multiple * max(2, -(-16 // multiple))
    for h, w in ((base, base + multiple), (base + multiple, base)):
        try:
            interpreter.resize_tensor_input(index, [1, h, w, 3], strict=False)
            interpreter.allocate_tensors()
            detail = interpreter.get_input_details()[0]
            interpreter.set_tensor(index, np.zeros([1, h, w, 3], detail["dtype"]))
            interpreter.invoke()
            out = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
            if tuple(out.shape[1:3]) != (upscale * h, upscale * w):
                want = "" if upscale == 1 else f" (x{upscale}: {upscale * h}x{upscale * w})"
                raise RuntimeError(f"output is {out.shape[1]}x{out.shape[2]} for a {h}x{w} input{want}")
        except (RuntimeError, ValueError) as error:
            ops = sorted(set(operator_names(blob)) & {"TRANSPOSE_CONV", "RESHAPE", "BROADCAST_TO"})
            raise ExportError(
                f"{model_name} cannot be exported with a dynamic size: the converted graph fixes its size "
                f"({str(error).splitlines()[0][:160]}; size-bound ops: {', '.join(ops) or 'unknown'}); "
                "export fixed sizes with --size=HxW[,HxW...]"
            ) from None


def model_upscale(model, size=None, multiple: int = 1) -> int:
    """Output side over input side of the Keras ``model`` at ``size`` (``(H, W)``; ``None``:
    the model's own input size, or a small one that is a multiple of ``multiple``).

    Raises:
      ExportError: the output is not the same whole multiple of the input along both sides.
    """
    fixed = tuple(model.input_shape[1:3])
    if size is None and None not in fixed:
        size = fixed
    h, w = size if size is not None else (multiple * max(2, -(-16 // multiple)),) * 2
    shape = (1, h, w, model.input_shape[-1])
    try:
        out = tuple(model.compute_output_shape(shape))
    except Exception:  # noqa: BLE001 - a layer without a static shape rule: run it once
        out = tuple(model(np.zeros(shape, np.float32), training=False).shape)
    oh, ow = int(out[1]), int(out[2])
    if oh % h or ow % w or oh // h != ow // w or oh < h:
        raise ExportError(f"{model.name}: output {oh}x{ow} for a {h}x{w} input is not the input upscaled by a whole factor")
    return oh // h


def _convert(model, mode, size, source, io_dtype, calibration_count, qat_steps, equalize=True, percentile=100.0, qat_target="data",
             qat_ranges="median", tune_sweeps=0, upscale=1):
    """``(tflite bytes, equalization counts, layers rewritten for XNNPACK, percentile used,
    range tuning report or None)``: the steps of ``mode`` (:mod:`mobile_enhance.export.modes`)."""
    options = ExportOptions(io_dtype, calibration_count, qat_steps, equalize, percentile, qat_target, qat_ranges, tune_sweeps)
    how = get_mode(mode)
    prepared = how.prepare(model, size, source, options, upscale)
    converted = how.convert(prepared, size, options)
    return converted.blob, prepared.equalized, prepared.rewritten, converted.percentile, converted.tuning


def _sha256(paths) -> str:
    digest = hashlib.sha256()
    for path in sorted(Path(p) for p in paths):
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def _resolve_upscale(model, name: str, upscale, size, multiple: int, source) -> int:
    """The export's upscale: ``upscale``, else the card's, else the model's own; checked
    against the model and the data source."""
    from mobile_enhance.models import MODELS

    own = model_upscale(model, size, multiple)
    if upscale is None:
        upscale = MODELS[name].upscale if name in MODELS else own
    upscale = int(upscale)
    if upscale != own:
        raise ExportError(f"{name}: exported with upscale {upscale}, but the model's output is {own}x its input")
    if source is not None and source_upscale(source) != upscale:
        raise ExportError(
            f"{name} upscales {upscale}x but {source.describe()} gives inputs {source_upscale(source)}x smaller than their targets: "
            f"calibrate and measure on a source made for it (sr:PHOTOS with upscale={upscale})"
        )
    return upscale


def sized_output(output: Path, size, several: bool) -> Path:
    if not several:
        return output
    tag = "dynamic" if size is None else f"{size[0]}x{size[1]}"
    return output.with_name(f"{output.stem}_{tag}{output.suffix}")


def export_model(
    model,
    output,
    mode: str = "float32",
    sizes=((100, 100),),
    source=None,
    model_name: str = "",
    model_kwargs: dict | None = None,
    checkpoint_files=(),
    run_dir: str = "",
    io_dtype: str = "uint8",
    calibration_count: int = 32,
    fidelity_count: int = 16,
    min_psnr: float | None = None,
    force: bool = False,
    qat_steps: int = 200,
    equalize: bool = True,
    calibration_percentile: float = DEFAULT_PERCENTILE,
    qat_target: str = "data",
    qat_ranges: str = "median",
    tune_sweeps: int = DEFAULT_TUNE_SWEEPS,
    upscale: int | None = None,
    float_layers=None,
) -> list[ExportResult]:
    """Export ``model`` once per size in ``sizes`` (``None`` = dynamic). See the module docstring.

    Args:
      model: float Keras generator, ``(N, H, W, 3) -> (N, sH, sW, 3)`` float32 in [0, 1]
        (``s``: ``upscale``).
      output: ``.tflite`` path; with several sizes, ``_HxW`` is added to the stem.
      mode: one of :data:`EXPORT_MODES` (the table :data:`mobile_enhance.export.modes.MODES`).
      sizes: the file's *input* sizes ``(H, W)``; its output is ``s`` times each.
      source: data source (:mod:`mobile_enhance.data`) for calibration, QAT and held-out
        pairs; for ``s > 1`` one whose inputs are ``s`` times smaller than its targets
        (``make_source("sr:PHOTOS", patch, upscale=s)``).
      checkpoint_files: files the weights came from (hashed into the sidecar).
      run_dir: the training run the model came from (the sidecar's ``run_dir``).
      io_dtype: int8 modes: input/output type ``uint8``, ``int8`` or ``float32``.
      min_psnr: fidelity floor in dB against the float model (default per mode:
        :data:`DEFAULT_MIN_PSNR`); ``force`` writes the file anyway.
      equalize: int8 modes: put each instance norm's channels, and the inputs of each
        concatenation, on one scale first
        (:func:`mobile_enhance.quantization.equalize_instance_norms`,
        :func:`~mobile_enhance.quantization.equalize_concatenations`; the float function
        is unchanged).
      calibration_percentile: ``int8``: the share (%) of each activation's calibration
        values its int8 range covers (100: minimum to maximum; see
        :func:`mobile_enhance.export.tflite.percentile_ranges`). Below 100, min/max ranges
        are converted too and the file closer to the float model on the calibration images
        is kept (the sidecar says which). ``qat_int8``: the same, for the fine-tuned model
        (the tensors inside its instance norms have no fake-quant range of their own).
      tune_sweeps: ``int8`` and ``qat_int8``: passes over the graph choosing each activation range by the
        quantized output's PSNR against the float model on the calibration images (at most
        :data:`TUNE_PIXELS` pixels of them); 0: ranges as calibrated. See
        :func:`mobile_enhance.export.tflite.tune_ranges`.
      qat_target: ``qat_int8``: what the fine-tune matches, ``float`` (the float model's
        output) or ``data`` (the training targets); see :func:`qat_finetune`.
      qat_ranges: ``qat_int8``: ``median`` or ``minmax`` of the per-batch activation
        extremes over the calibration images; see :func:`qat_finetune`.
      float_layers: ``int8`` and ``qat_int8``: Keras layers whose ops stay float in the file
        (``None``: the card's ``float_in_int8``; ``()``: every op integer). See
        :func:`mobile_enhance.export.tflite.float_nodes`.
      upscale: output side over input side (x4 super-resolution: 4); default the card's
        when ``model_name`` is registered, else the model's own at the export size
        (:func:`model_upscale`). Fidelity is then measured against targets ``s`` times the
        input, and with ``bicubic_vs_target`` (the inputs bicubic-upscaled,
        :func:`~mobile_enhance.data.images.bicubic_upscale`) in place of ``input_vs_target``.

    Returns:
      One :class:`ExportResult` per size.

    Raises:
      FidelityError: below the floor (no file written).
      ExportError: a dynamic size the graph cannot take, missing data for int8, an
        upscale that is not the model's or not the data source's.
    """
    from mobile_enhance.models import MODELS, check_input_size

    how = get_mode(mode)
    output = Path(output)
    if output.suffix != ".tflite":
        raise ExportError(f"{output}: the output must be a .tflite file")
    if not output.parent.exists():
        raise ExportError(f"{output.parent}: output folder does not exist")
    if not os.access(output.parent, os.W_OK):
        raise ExportError(f"{output.parent}: output folder is not writable")
    name = model_name or model.name
    multiple = MODELS[name].size_multiple if name in MODELS else 1
    floor = how.min_psnr if min_psnr is None else float(min_psnr)
    sizes = list(sizes)
    for size in sizes:
        if size is not None and name in MODELS:
            check_input_size(name, *size)
    upscale = _resolve_upscale(model, name, upscale, next((s for s in sizes if s is not None), None), multiple, source)
    card_float = MODELS[name].float_in_int8 if name in MODELS else ()
    float_layers = card_float if float_layers is None else float_layers
    present = {layer.name for layer in model.layers}
    missing = [layer for layer in float_layers if layer not in present]
    if missing and float_layers != card_float:
        raise ExportError(f"--float_layers: {name} has no layer {', '.join(map(repr, missing))}")
    float_layers = tuple(layer for layer in float_layers if layer in present)  # a card's list may name optional layers
    options = ExportOptions(io_dtype, calibration_count, qat_steps, equalize, calibration_percentile, qat_target, qat_ranges, tune_sweeps,
                            float_layers if how.name in ("int8", "qat_int8") else ())
    results = []
    for size in sizes:
        prepared = how.prepare(model, size, source, options, upscale)
        converted = how.convert(prepared, size, options)
        blob = converted.blob
        if size is None:
            _check_dynamic(blob, multiple, name, upscale)
        fh, fw = size if size is not None else ((input_side(source),) * 2 if source is not None else (4 * multiple,) * 2)
        x, y = heldout_pairs(source, fh, fw, fidelity_count, upscale)
        held_out = x is not None
        targets = held_out and getattr(source, "has_targets", True)
        if not held_out:
            rng = np.random.default_rng(0)
            x = rng.random((4, fh, fw, 3), dtype=np.float32)
        float_out = model.predict(x, batch_size=4, verbose=0)
        lite_out = run_tflite(blob, x)
        fidelity = {
            "images": int(len(x)),
            "images_from": ("held-out pairs of the training data source" if targets else
                            f"held-out crops of {source.describe()} (no targets: fidelity against the float model only)"
                            if held_out else "uniform random inputs (no data source)"),
            "size": [fh, fw],
            # both clipped to the image range, as the pixels a user gets (DPED's 0.58 tanh overshoots it)
            "tflite_vs_float": _image_quality(lite_out, np.clip(float_out, 0.0, 1.0)),
            "max_abs_diff_vs_float": float(np.abs(np.clip(lite_out, 0, 1) - np.clip(float_out, 0, 1)).max()),
        }
        if targets:
            fidelity.update(float_vs_target=_image_quality(float_out, y), tflite_vs_target=_image_quality(lite_out, y))
            if upscale == 1:
                fidelity["input_vs_target"] = _image_quality(x, y)
            else:  # the inputs are smaller than the targets: the baseline is their bicubic upscale
                fidelity["bicubic_vs_target"] = _image_quality(bicubic_upscale(x, upscale), y)
        fidelity["min_psnr"] = floor
        path = sized_output(output, size, len(sizes) > 1)
        if fidelity["tflite_vs_float"]["psnr"] < floor and not force:
            raise FidelityError(
                f"{path}: not written: {mode} output is {fidelity['tflite_vs_float']['psnr']:.2f} dB PSNR against the float "
                f"model, below the floor of {floor:.1f} dB (check the calibration data, try qat_int8, lower --min_psnr, or --force)"
            )
        interpreter = make_interpreter(model_content=blob)
        interpreter.allocate_tensors()
        from mobile_enhance.models.stats import count_macs

        sidecar = make_sidecar(
            model=name,
            model_kwargs=model_kwargs or {},
            run_dir=run_dir,
            upscale=upscale,
            size_multiple=multiple,
            dynamic_size=size is None,
            gmacs=round(count_macs(model, fh, fw) / 1e9, 6),
            gmacs_size=[fh, fw],
            source={"files": [str(p) for p in checkpoint_files], "sha256": _sha256(checkpoint_files) if checkpoint_files else None},
            quantization=how.quantization(options, prepared, converted),
            input=tensor_entry(interpreter.get_input_details()[0]),
            output=tensor_entry(interpreter.get_output_details()[0]),
            rewritten_layers=prepared.rewritten,  # exact rewrites for XNNPACK (export.rewrite)
            ops=sorted(set(operator_names(blob))),
            ops_not_in_xnnpack=xnnpack_leftovers(interpreter),
            file=file_entry(path, blob),
            fidelity=fidelity,
            forced=bool(force and fidelity["tflite_vs_float"]["psnr"] < floor),
        )
        atomic_write_bytes(path, blob)
        write_sidecar(path, sidecar)
        results.append(ExportResult(path, sidecar))
    return results


def export_saved_model(model, directory) -> Path:
    """Write a TensorFlow SavedModel (serving signature ``phone -> enhanced``) atomically."""
    directory = Path(directory)
    spec = tf.TensorSpec([None, None, None, 3], tf.float32, name="phone")
    fn = tf.function(lambda x: {"enhanced": model(x, training=False)}, input_signature=[spec])
    with atomic_path(directory, is_dir=True) as tmp:
        tf.saved_model.save(model, str(tmp), signatures={"serving_default": fn})
    return directory


def verify_sidecar(tflite_path) -> list[str]:
    """What is wrong between a .tflite file and its sidecar (empty list: they match, the
    operator list included); the reader's checks are :func:`mobile_enhance.runtime.read_sidecar`'s."""
    from mobile_enhance.runtime.sidecar import SidecarError, sidecar_path

    path = Path(tflite_path)
    blob = path.read_bytes()
    interpreter = make_interpreter(model_content=blob)
    try:
        sidecar = read_sidecar(path, blob, interpreter.get_input_details()[0], interpreter.get_output_details()[0])
    except SidecarError as error:
        return [str(error)]
    if sidecar is None:
        return [f"{sidecar_path(path)}: no sidecar"]
    if sorted(set(operator_names(blob))) != sidecar.get("ops"):
        return [f"{sidecar_path(path)}: ops differ from the file's operators"]
    return []


def load_trained(run_dir=None, weights=None, model_name=None, model_kwargs=None, data=None, phone="iphone", patch_size=None):
    """The float model to export and the data source for calibration and fidelity.

    From ``run_dir`` (config + latest checkpoint; its data source unless ``data`` is
    given), or from a ``weights`` file (``.weights.h5``, or a full ``.keras`` model) with
    ``model_name``. Returns ``(model, source, checkpoint_files, model_name, model_kwargs)``.
    """
    from mobile_enhance.data import make_source
    from mobile_enhance.models import build_model, custom_objects, get_model_info

    if bool(run_dir) == bool(weights):
        raise ExportError("give exactly one of --run_dir (a training run) or --weights (a weights file)")
    spec, patch = data, patch_size
    if run_dir:
        from mobile_enhance.training import load_generator
        from mobile_enhance.training.trainer import latest_checkpoint

        model, config = load_generator(run_dir)
        model_name, model_kwargs = config.model, config.model_kwargs
        files = sorted(latest_checkpoint(Path(run_dir) / "checkpoints").glob("ckpt.*"))
        spec = spec or config.data.spec
        phone = config.data.phone if not data else phone
        patch = patch or config.data.patch_size
    else:
        weights = Path(weights)
        if not weights.is_file():
            raise ExportError(f"{weights}: no such weights file")
        files = [weights]
        if weights.suffix == ".keras":
            try:
                model = keras.models.load_model(weights, custom_objects=custom_objects())
            except Exception as error:  # noqa: BLE001
                raise ExportError(f"{weights}: cannot be loaded as a Keras model ({str(error).splitlines()[0][:160]})") from None
            model_name = model_name or model.name
        else:
            if not model_name:
                raise ExportError("--weights needs --model to know the architecture")
            get_model_info(model_name)
            model = build_model(model_name, **(model_kwargs or {}))
            try:
                model.load_weights(str(weights))
            except Exception as error:  # noqa: BLE001
                raise ExportError(f"{weights}: not weights of a {model_name} model ({str(error).splitlines()[0][:160]})") from None
    source = None
    if spec:
        from mobile_enhance.models import CARDS

        card = CARDS.get(model_name)
        patch = patch or (card.preset.patch_size if card else 100)
        upscale = card.upscale if card else model_upscale(model)  # a model from elsewhere: its own
        source = make_source(spec, patch, seed=0, phone=phone, augment=False, upscale=upscale)
    return model, source, files, model_name, model_kwargs or {}
