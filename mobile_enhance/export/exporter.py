"""Export a trained generator: quantize, convert, prove fidelity, write file + sidecar.

``export_model`` is the Python API behind ``mobile-enhance export``. For each size it

1. quantizes as asked (``float32``, ``float16``, ``dynamic``, ``int8`` calibrated on a
   representative set drawn from the training data source, or ``qat_int8``:
   quantization-aware fine-tuning with tensorflow-model-optimization from the float
   weights, then conversion);
2. converts to TFLite at a fixed size, or with a dynamic size where the graph allows it
   (checked by running the file at two sizes);
3. measures fidelity on held-out pairs: PSNR/SSIM of the TFLite output against the float
   Keras output, and of both (and the unprocessed input) against the targets;
4. refuses, writing nothing, when the TFLite output falls below the floor
   (``min_psnr`` dB against the float model) unless ``force``;
5. writes ``NAME.tflite`` and the sidecar ``NAME.json`` atomically.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from mobile_enhance.compat import keras, tf
from mobile_enhance.errors import UnknownNameError, UserError
from mobile_enhance.export.analysis import operator_names, xnnpack_leftovers
from mobile_enhance.export.rewrite import rewritable, rewrite_for_xnnpack
from mobile_enhance.export.tflite import convert, make_interpreter, run_tflite
from mobile_enhance.fileio import atomic_path, atomic_write_bytes
from mobile_enhance.runtime.sidecar import file_entry, make_sidecar, read_sidecar, tensor_entry, write_sidecar

EXPORT_MODES = ("float32", "float16", "dynamic", "int8", "qat_int8")

#: Default share (%) of each activation's calibration values an int8 range covers.
DEFAULT_PERCENTILE = 99.9

#: int8: passes of output-driven range tuning (:func:`mobile_enhance.export.tflite.tune_ranges`)
#: by default, and the pixels of calibration images it runs each trial on (at least 2 images).
DEFAULT_TUNE_SWEEPS = 2
TUNE_PIXELS = 32 * 100 * 100

#: Default fidelity floors: PSNR (dB) of the TFLite output against the float Keras output.
DEFAULT_MIN_PSNR = {"float32": 60.0, "float16": 40.0, "dynamic": 30.0, "int8": 28.0, "qat_int8": 28.0}


class ExportError(UserError):
    pass


class FidelityError(ExportError):
    pass


@dataclasses.dataclass
class ExportResult:
    """One written file: its path, its sidecar, and ``warnings``, lines for the user about it
    (:func:`mobile_enhance.api.export` adds what the sidecar alone cannot say)."""

    path: Path
    sidecar: dict
    warnings: list[str] = dataclasses.field(default_factory=list)


# -- data for calibration and fidelity --------------------------------------------------


def mosaic(patches, height: int, width: int) -> np.ndarray:
    """Fill ``height x width`` with square patches in row order (cropping the last ones)."""
    p = patches[0].shape[0]
    out = np.zeros((height, width, 3), np.float32)
    k = 0
    for y in range(0, height, p):
        for x in range(0, width, p):
            patch = patches[k % len(patches)]
            out[y : y + p, x : x + p] = patch[: height - y, : width - x]
            k += 1
    return out


def _per_image(patch: int, height: int, width: int) -> int:
    return 1 if height <= patch and width <= patch else -(-height // patch) * -(-width // patch)


def _fit(images, height: int, width: int, count: int) -> list[np.ndarray]:
    """``count`` images of ``height x width`` made from square patches: centre crops when
    the size fits in a patch, else mosaics of consecutive patches (cycling)."""
    p = images[0].shape[0]
    per = _per_image(p, height, width)
    if per == 1:
        y, x = (p - height) // 2, (p - width) // 2
        return [images[i % len(images)][y : y + height, x : x + width] for i in range(min(count, len(images)))]
    n = len(images)
    return [mosaic([images[(i * per + j) % n] for j in range(per)], height, width) for i in range(max(1, min(count, n // per)))]


def _at_size(source, height: int, width: int):
    """The source cutting crops big enough for ``height x width`` where it can (sources of
    whole photos: crops of exactly that shape, so that a 1536x2048 frame comes from a
    2560x1600 photo), else ``None`` (sources of fixed patches, such as DPED's 100x100)."""
    if source.patch_size >= max(height, width):
        return source
    return source.cropping(height, width) if hasattr(source, "cropping") else None


def _center(image, height, width):
    y, x = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
    return image[y : y + height, x : x + width]


def representative_inputs(source, height: int, width: int, count: int = 32) -> list[np.ndarray]:
    """``count`` inputs of ``height x width`` from the training stream (for int8 calibration):
    crops of that size where the source cuts its own, else mosaics of its patches."""
    sized = _at_size(source, height, width)
    if sized is not None:
        return [_center(sized.example(i)[0], height, width) for i in range(count)]
    per = _per_image(source.patch_size, height, width)
    return _fit([source.example(i)[0] for i in range(count * per)], height, width, count)


def heldout_pairs(source, height: int, width: int, count: int = 16):
    """Held-out ``(inputs, targets)`` of ``height x width`` from the source's validation split:
    crops of that size where the source cuts its own, else mosaics of its patches."""
    if source is None:
        return None, None
    sized = _at_size(source, height, width)
    if sized is not None:
        pairs = sized.validation()[:count]
        if pairs:
            return np.stack([_center(a, height, width) for a, _ in pairs]), np.stack([_center(b, height, width) for _, b in pairs])
    pairs = source.validation()
    if not pairs:
        return None, None
    xs = _fit([a for a, _ in pairs], height, width, count)
    ys = _fit([b for _, b in pairs], height, width, count)
    return np.stack(xs), np.stack(ys)


def _image_quality(a, b) -> dict:
    from mobile_enhance.metrics import image_metrics

    m = image_metrics(a, b)
    return {"psnr": round(m["psnr"], 3), "ssim": round(m["ssim"], 5), "ms_ssim": round(m["ms_ssim"], 5)}


# -- QAT ------------------------------------------------------------------------------


QAT_TARGETS = ("data", "float")


def _without_training_noise(model):
    """``model`` with its noise channels (muxdemux) off in training too: QAT must train
    the graph the file will run, which has zeros there."""
    from mobile_enhance.quantization import reconfigured

    noisy = {layer.name: {"stddev": 0.0} for layer in model.layers if type(layer).__name__ == "NoiseChannels" and layer.stddev}
    return reconfigured(model, noisy) if noisy else model


QAT_RANGES = ("median", "minmax")


def qat_finetune(model, source, steps: int = 200, learning_rate: float = 1e-5, batch_size: int = 8, calibration=None, seed: int = 0,
                 target: str = "data", ranges: str = "median"):
    """Quantization-aware fine-tuning: tfmot fake-quant graph, trained with L1 to ``target``:
    ``data``, the training targets, or ``float``, the float model's own output on the
    training inputs (the quantized model learns to match the model it replaces: closer to
    it, 36.7 against 35.2 dB for fast_dped, but 0.35 dB further from the targets).

    Starts from the float weights. The activation ranges are first set from
    ``calibration`` (a list of input batches; default 4 training batches) as the
    post-training calibration would set them (tfmot would start them all at [-6, 6] and
    need thousands of steps to forget that, see :func:`calibrate_ranges`); the short
    fine-tune at a low learning rate then adapts the weights to the 8-bit grid with the
    ranges held fixed (moving ranges, averaged over small batches, end up narrower than
    the calibrated ones). ``ranges``: each activation's range is the ``median`` of its
    per-batch minima and maxima (the calibration images in batches of 4; as tfmot's moving
    averages would settle, and robust to one extreme batch), or their ``minmax``, which
    widens with every calibration image (fast_dped at 128 images, 200 steps: 0.49 dB
    above the float model against the targets with median ranges, 0.41 below with
    minmax). Noise channels are off (:func:`_without_training_noise`). ``seed`` seeds
    TensorFlow's random ops, so that the same inputs give the same file.
    """
    from mobile_enhance.quantization import calibrate_ranges, frozen_ranges, pin_image_ranges, quantize_model, quantize_scope

    if source is None:
        raise ExportError("qat_int8 needs training data (--data, or a --run_dir whose config names it)")
    if target not in QAT_TARGETS:
        raise UnknownNameError("QAT target", target, QAT_TARGETS)
    if ranges not in QAT_RANGES:
        raise UnknownNameError("QAT range estimate", ranges, QAT_RANGES)
    model = _without_training_noise(model)

    def to_float():
        for x, _ in source.dataset(batch_size):
            yield x, model(x, training=False)

    with quantize_scope():
        qat = quantize_model(model)
        if calibration is None:
            batches = iter(source.dataset(batch_size))
            calibration = [next(batches)[0] for _ in range(4)]
        calibrate_ranges(qat, calibration, reduce=ranges)
        pin_image_ranges(qat)
        if steps:
            keras.utils.set_random_seed(seed)
            qat.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mae")
            with frozen_ranges():
                data = to_float() if target == "float" else source.dataset(batch_size)
                qat.fit(data, steps_per_epoch=int(steps), epochs=1, verbose=0)
    return qat


# -- conversion ------------------------------------------------------------------------


def _check_dynamic(blob: bytes, multiple: int, model_name: str):
    """Run a dynamic-size file at two sizes; say clearly when the graph baked one in."""
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
            if tuple(out.shape[1:3]) != (h, w):
                raise RuntimeError(f"output is {out.shape[1]}x{out.shape[2]} for a {h}x{w} input")
        except (RuntimeError, ValueError) as error:
            ops = sorted(set(operator_names(blob)) & {"TRANSPOSE_CONV", "RESHAPE", "BROADCAST_TO"})
            raise ExportError(
                f"{model_name} cannot be exported with a dynamic size: the converted graph fixes its size "
                f"({str(error).splitlines()[0][:160]}; size-bound ops: {', '.join(ops) or 'unknown'}); "
                "export fixed sizes with --size=HxW[,HxW...]"
            ) from None


def _convert(model, mode, size, source, io_dtype, calibration_count, qat_steps, equalize=True, percentile=100.0, qat_target="data",
             qat_ranges="median", tune_sweeps=0):
    """``(tflite bytes, equalization counts, layers rewritten for XNNPACK, percentile used,
    range tuning report or None)``."""
    representative, equalized = None, {"instance_norms_equalized": 0, "concat_inputs_rescaled": 0}
    if mode in ("int8", "qat_int8"):
        if source is None:
            raise ExportError(f"{mode} needs a representative set: pass --data (or a --run_dir whose config names it)")
        h, w = size if size is not None else (source.patch_size, source.patch_size)
        inputs = representative_inputs(source, h, w, calibration_count)
        representative = lambda: (x[None] for x in inputs)  # noqa: E731
        from mobile_enhance.quantization import integer_means

        model = integer_means(model)  # before QAT too: the graph it fine-tunes is the one converted
        if equalize:
            from mobile_enhance.quantization import equalize_for_int8

            model, equalized = equalize_for_int8(model, inputs)
    converted = model
    if mode == "qat_int8":
        # rewritten before QAT (the fake-quantized layers are not rewritable), at a size the
        # training patches share (space_to_depth needs even sizes)
        model, rewritten = rewrite_for_xnnpack(model, size if source.patch_size % 2 == 0 else None)
        calibration = [np.stack(inputs[i : i + 4]) for i in range(0, len(inputs), 4)]  # the int8 mode's images
        # converted like an int8 model below: the fake-quantized layers hold only their
        # outputs' ranges, and the tensors inside an instance norm (mean, variance, rsqrt)
        # gain as much from percentile ranges and tuning (fast_dped, 200 steps: 32.9 ->
        # 38.9 dB from the float model); the reference stays the float model
        converted = qat_finetune(model, source, qat_steps, calibration=calibration, target=qat_target, ranges=qat_ranges)
    else:
        rewritten = rewritable(model, size)
    if mode not in ("int8", "qat_int8") or (percentile >= 100 and not tune_sweeps):
        blob = convert(converted, "int8" if mode == "qat_int8" else mode, input_size=size, representative=representative, io_dtype=io_dtype)
        return blob, equalized, rewritten, (100.0 if representative is not None else None), None
    # percentile ranges help at the size a model was trained for (2-5 dB closer to float on our
    # runs) but can cost where it runs out of its regime (fast_dped at 720x1280: 26.6 dB
    # against 30.4 with min/max), so both are calibrated and the calibration images decide
    from mobile_enhance.export.tflite import _mean_psnr, calibrated_int8, quantize_calibrated, tune_ranges

    x = np.stack(inputs)
    reference = model.predict(x, batch_size=4, verbose=0)
    calibrated, chosen, best = None, None, -np.inf
    for p in dict.fromkeys((percentile, 100.0)):
        candidate = calibrated_int8(converted, size, representative, p)
        score = _mean_psnr(run_tflite(quantize_calibrated(candidate, io_dtype), x), reference)
        if score > best:
            calibrated, chosen, best = candidate, p, score
    tuning = None
    if tune_sweeps:
        count = int(np.clip(TUNE_PIXELS // (h * w), 2, len(x)))
        calibrated, tuning = tune_ranges(calibrated, x[:count], reference[:count], io_dtype, sweeps=tune_sweeps)
    return quantize_calibrated(calibrated, io_dtype), equalized, rewritten, chosen, tuning


def _sha256(paths) -> str:
    digest = hashlib.sha256()
    for path in sorted(Path(p) for p in paths):
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


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
) -> list[ExportResult]:
    """Export ``model`` once per size in ``sizes`` (``None`` = dynamic). See the module docstring.

    Args:
      model: float Keras generator, ``(N, H, W, 3)`` float32 in [0, 1].
      output: ``.tflite`` path; with several sizes, ``_HxW`` is added to the stem.
      mode: one of :data:`EXPORT_MODES`.
      source: data source (:mod:`mobile_enhance.data`) for calibration, QAT and held-out pairs.
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

    Returns:
      One :class:`ExportResult` per size.

    Raises:
      FidelityError: below the floor (no file written).
      ExportError: a dynamic size the graph cannot take, missing data for int8.
    """
    from mobile_enhance.models import MODELS, check_input_size

    if mode not in EXPORT_MODES:
        raise UnknownNameError("quantization mode", mode, EXPORT_MODES)
    output = Path(output)
    if output.suffix != ".tflite":
        raise ExportError(f"{output}: the output must be a .tflite file")
    if not output.parent.exists():
        raise ExportError(f"{output.parent}: output folder does not exist")
    if not os.access(output.parent, os.W_OK):
        raise ExportError(f"{output.parent}: output folder is not writable")
    name = model_name or model.name
    multiple = MODELS[name].size_multiple if name in MODELS else 1
    upscale = MODELS[name].upscale if name in MODELS else 1
    floor = DEFAULT_MIN_PSNR[mode] if min_psnr is None else float(min_psnr)
    sizes = list(sizes)
    for size in sizes:
        if size is not None and name in MODELS:
            check_input_size(name, *size)
    results = []
    for size in sizes:
        blob, equalized, rewritten, used_percentile, tuning = _convert(
            model, mode, size, source, io_dtype, calibration_count, qat_steps, equalize, calibration_percentile, qat_target, qat_ranges,
            tune_sweeps,
        )
        if size is None:
            _check_dynamic(blob, multiple, name)
        fh, fw = size if size is not None else ((source.patch_size,) * 2 if source is not None else (4 * multiple,) * 2)
        x, y = heldout_pairs(source, fh, fw, fidelity_count)
        held_out = x is not None
        if not held_out:
            rng = np.random.default_rng(0)
            x = rng.random((4, fh, fw, 3), dtype=np.float32)
        float_out = model.predict(x, batch_size=4, verbose=0)
        lite_out = run_tflite(blob, x)
        fidelity = {
            "images": int(len(x)),
            "images_from": "held-out pairs of the training data source" if held_out else "uniform random inputs (no data source)",
            "size": [fh, fw],
            "tflite_vs_float": _image_quality(lite_out, float_out),
            "max_abs_diff_vs_float": float(np.abs(np.clip(lite_out, 0, 1) - np.clip(float_out, 0, 1)).max()),
        }
        if held_out:
            fidelity.update(
                float_vs_target=_image_quality(float_out, y), tflite_vs_target=_image_quality(lite_out, y), input_vs_target=_image_quality(x, y)
            )
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
            quantization={"mode": mode, "io_dtype": io_dtype if mode in ("int8", "qat_int8") else "float32",
                          "calibration_images": calibration_count if mode in ("int8", "qat_int8") else 0,
                          "qat_steps": qat_steps if mode == "qat_int8" else 0,
                          "qat_target": qat_target if mode == "qat_int8" else None,
                          "qat_ranges": qat_ranges if mode == "qat_int8" else None,
                          **equalized,
                          "calibration_percentile": used_percentile,
                          "range_tuning": tuning},
            input=tensor_entry(interpreter.get_input_details()[0]),
            output=tensor_entry(interpreter.get_output_details()[0]),
            rewritten_layers=rewritten,  # exact rewrites for XNNPACK (export.rewrite)
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
        source = make_source(spec, patch, seed=0, phone=phone, augment=False, upscale=card.upscale if card else 1)
    return model, source, files, model_name, model_kwargs or {}
