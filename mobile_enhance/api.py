"""The Python API behind the CLI: each subcommand calls one function here.

A notebook user calls the same functions with the same arguments.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Callable

from mobile_enhance.errors import UserError


def parse_size(text: str) -> tuple[int, int]:
    """``"720x1280"`` -> ``(720, 1280)`` (height x width)."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(text))
    if not match or 0 in (int(match[1]), int(match[2])):
        raise UserError(f"size {text!r} is not HxW with positive integers, e.g. 720x1280")
    return int(match[1]), int(match[2])


def describe_models(height: int = 720, width: int = 1280) -> list[dict]:
    """One dict per registered model: its card's facts, parameters and GMACs at ``height x width``.

    Keys: ``name, paper, parameters, gmacs, size_multiple, upscale, trains_on,
    discriminators`` (each ``{name, builder, sees, gan_loss, judges}``), plus
    ``gmacs_at`` (the size asked), ``counted_at`` (the size counted) and the card's
    ``inverse``, ``losses``, ``preset`` and ``stages``. Counts come from the built graphs
    (see :mod:`mobile_enhance.models.stats`). ``height x width`` is the output size, as
    PIRM 2018 timed super-resolution (Track A) for a given output: the input of a model
    that upscales ``s`` times is ``height/s x width/s`` (``counted_at`` is the input size
    counted). A model whose strides do not divide it is counted at the padded size it
    would run at, e.g. RSGUNet runs a 720x1280 image as 736x1280.
    """
    from mobile_enhance.models import CARDS, build_model, padded_size
    from mobile_enhance.models.stats import count_macs, count_params

    rows = []
    for name, card in CARDS.items():
        model = build_model(name)
        run_h, run_w = padded_size(name, max(1, height // card.upscale), max(1, width // card.upscale))
        facts = card.describe()
        rows.append(
            {
                "name": name,
                "paper": card.paper,
                "parameters": count_params(model),
                "gmacs": count_macs(model, run_h, run_w) / 1e9,
                "size_multiple": card.size_multiple,
                "upscale": card.upscale,
                "trains_on": facts["trains_on"],
                "discriminators": facts["discriminators"],
                "gmacs_at": f"{height}x{width}",
                "counted_at": f"{run_h}x{run_w}",
                **{k: facts[k] for k in ("inverse", "losses", "preset", "stages")},
            }
        )
    return rows


# -- arguments as the CLI gives them, or as Python values ------------------------------------

#: Named export sizes (``size="hd"``).
SIZE_PRESETS = {"patch": (100, 100), "hd": (720, 1280), "iphone": (1536, 2048)}


def parse_sizes(sizes) -> list[tuple[int, int] | None]:
    """Export sizes: ``"HxW[,HxW...]"`` (also ``dynamic`` and the :data:`SIZE_PRESETS`), or a
    list of such strings, ``(H, W)`` pairs and ``None`` (dynamic) -> ``[(H, W) or None, ...]``."""
    parts = [p.strip() for p in sizes.split(",")] if isinstance(sizes, str) else list(sizes)
    out = []
    for part in parts:
        if part is None or part == "dynamic":
            out.append(None)
        elif isinstance(part, str):
            out.append(SIZE_PRESETS.get(part) or parse_size(part))
        else:
            out.append(parse_size("x".join(map(str, part))))
    return out


def _size_or_none(size) -> tuple[int, int] | None:
    """``None``, ``"HxW"`` or ``(H, W)`` -> ``(H, W)`` or ``None``."""
    if not size:
        return None
    return parse_size(size if isinstance(size, str) else "x".join(map(str, size)))


def _listed(value) -> list:
    """A list argument: a list as it is, a comma-separated string split as the CLI's list
    flags split it, one other value as a list of one, ``None`` as empty."""
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, (list, tuple)):
        return list(value)
    if hasattr(value, "__fspath__"):
        return [value]
    try:
        return list(value)
    except TypeError:
        return [value]


# -- export ---------------------------------------------------------------------------------


def _float_layers(value):
    """``export``'s ``float_layers`` as a tuple of names, or ``None`` for the card's."""
    if value is None:
        return None
    if isinstance(value, str):
        return () if value.strip().lower() in ("", "none") else tuple(v.strip() for v in value.split(",") if v.strip())
    return tuple(value)


def export(
    output=None,
    *,
    run_dir=None,
    weights=None,
    model: str | None = None,
    model_kwargs: dict | str | None = None,
    quant: str = "float32",
    size="100x100",
    data: str | None = None,
    phone: str = "iphone",
    io: str = "uint8",
    calibration: int = 32,
    qat_steps: int = 200,
    qat_target: str = "data",
    qat_ranges: str = "median",
    calibration_percentile: float = 99.9,
    tune_ranges: int = 2,
    float_layers=None,
    equalize: bool = True,
    fidelity_images: int = 16,
    min_psnr: float | None = None,
    force: bool = False,
    saved_model=None,
) -> list:
    """Quantize and convert a trained model to ``.tflite`` + JSON sidecar, as ``mobile-enhance export``.

    Arguments are the command's flags, with the same defaults (errors name the flags):

    Args:
      output: the ``.tflite`` path (required); the sidecar goes beside it as ``.json``.
        With several sizes, ``_HxW`` is added to the stem.
      run_dir: a training run folder (config + checkpoints); or
      weights: a ``.weights.h5`` file (with ``model``) or a ``.keras`` model file.
      model: the architecture of ``weights`` (a registry name).
      model_kwargs: the architecture's arguments for ``weights``: a dict, or JSON text.
      quant: an export mode, ``float32``, ``float16``, ``dynamic``, ``int8`` or ``qat_int8``
        (:data:`mobile_enhance.export.modes.MODES`).
      size: the file's input size: ``"HxW[,HxW...]"``, ``"dynamic"``, a preset of
        :data:`SIZE_PRESETS`, or a list of ``(H, W)`` / ``None``; see :func:`parse_sizes`.
        A super-resolution model (a card's ``upscale`` s > 1) writes ``sH x sW``.
      data: data for calibration and fidelity (default: the run's own), e.g. ``dped:PATH``.
      phone: DPED phone for ``data="dped:PATH"``.
      io: int8 modes: input/output type ``uint8``, ``int8`` or ``float32``.
      calibration: representative images for int8 calibration.
      qat_steps, qat_target, qat_ranges: ``qat_int8`` fine-tuning steps, what it matches
        (``data`` targets or the ``float`` model) and how activation ranges are taken
        (``median`` or ``minmax``).
      calibration_percentile: int8 modes: share (%) of each activation's calibration values
        its range covers (100: min to max).
      tune_ranges: int8 modes: passes of output-driven range tuning (0: none).
      float_layers: int8 modes: Keras layer names kept float in the file (a list, or a
        comma-separated string; ``None``: the card's ``float_in_int8``; ``"none"`` or ``()``:
        every op integer).
      equalize: int8 modes: put instance-norm channels and concatenation inputs on one scale first.
      fidelity_images: held-out pairs for the fidelity figures.
      min_psnr: fidelity floor in dB against the float model (default per mode).
      force: write the file even below the floor.
      saved_model: also write a TensorFlow SavedModel to this folder.

    Returns:
      One :class:`mobile_enhance.export.ExportResult` per size (path, sidecar, and
      ``warnings``: lines the user should read, e.g. a float model worse than its input, or
      for super-resolution than bicubic upscaling).

    Raises:
      UserError: a missing or contradictory argument; ``ExportError`` (a bad run folder or
        weights file, an output folder that is missing); ``FidelityError`` (below the
        floor, nothing written).
    """
    import json
    from pathlib import Path

    from mobile_enhance.export import export_model, export_saved_model, load_trained

    if not output:
        raise UserError("--output=FILE.tflite is required")
    if isinstance(model_kwargs, str):
        try:
            model_kwargs = json.loads(model_kwargs)
        except json.JSONDecodeError as error:
            raise UserError(f"--model_kwargs is not JSON: {error}") from None
    net, source, files, name, kwargs = load_trained(run_dir, weights, model, model_kwargs or {}, data, phone)
    results = export_model(
        net,
        output,
        quant,
        parse_sizes(size),
        source,
        model_name=name,
        model_kwargs=kwargs,
        checkpoint_files=files,
        run_dir=str(run_dir or ""),
        io_dtype=io,
        calibration_count=calibration,
        min_psnr=min_psnr,
        force=force,
        qat_steps=qat_steps,
        fidelity_count=fidelity_images,
        equalize=equalize,
        calibration_percentile=calibration_percentile,
        qat_target=qat_target,
        qat_ranges=qat_ranges,
        tune_sweeps=tune_ranges,
        float_layers=_float_layers(float_layers),
    )
    for r in results:
        r.warnings.extend(_export_warnings(r.sidecar, getattr(source, "patch_size", None)))
    if saved_model:
        export_saved_model(net, Path(saved_model))
    return results


def _export_warnings(sidecar: dict, patch: int | None) -> list[str]:
    """Say so when the float model itself scores below its baseline at the export size: the
    unprocessed input, or for super-resolution (``upscale`` > 1) the input bicubic-upscaled.
    ``patch``: the data source's target patch side (the model was trained on inputs of
    ``patch / upscale``)."""
    f, s = sidecar["fidelity"], sidecar.get("upscale", 1)
    key, baseline = ("bicubic_vs_target", "bicubic upscale of its input") if s > 1 else ("input_vs_target", "unprocessed input")
    if "float_vs_target" not in f or key not in f or f["float_vs_target"]["psnr"] >= f[key]["psnr"]:
        return []
    (fh, fw) = f["size"]
    line = (f"at {fh}x{fw} the float model itself is {f[key]['psnr'] - f['float_vs_target']['psnr']:.2f} dB below "
            f"its {baseline} against the targets")
    trained = patch // s if patch else None
    if trained and [fh, fw] != [trained, trained]:
        line += (f" (trained on {trained}x{trained} patches: export --size={trained}x{trained} and let `mobile-enhance enhance` tile, "
                 "or train on larger patches)")
    return [line]


# -- bench ----------------------------------------------------------------------------------


def bench(
    model=None,
    *,
    backend=("cpu",),
    threads=(1, 2, 4),
    runs: int = 50,
    warmup: int = 5,
    size=None,
    photo=None,
    e2e_frame=None,
    e2e_runs: int | None = None,
    output=None,
    keras: str | None = None,
    keras_weights=None,
    gpu_delegate=None,
    benchmark_binary=None,
    adb_serial: str | None = None,
    adb=None,
    adb_modes=("cpu", "gpu", "nnapi"),
    quality=None,
    matmul_size: int = 2048,
    progress: bool = True,
) -> dict:
    """Latency of a ``.tflite`` file, as ``mobile-enhance bench``.

    Arguments are the command's flags, with the same defaults (errors name the flags);
    list arguments take a list or a comma-separated string.

    Args:
      model: the ``.tflite`` file (required).
      backend: any of ``cpu``, ``gpu``, ``adb``.
      threads: CPU thread counts to sweep (integers, or strings of them).
      runs, warmup: timed runs per configuration, and untimed runs after the first inference.
      size: ``"HxW"`` or ``(H, W)`` to run a file whose input size is dynamic.
      photo: photo for the end-to-end latency (decode, preprocess, infer, postprocess, encode).
      e2e_frame: ``"HxW"``, ``(H, W)`` or ``"photo"``: fit the photo to this frame and run
        the model over it in windows, as :func:`enhance` does (default: fit the photo to
        the model's input).
      e2e_runs: end-to-end passes (default ``min(runs, 20)``).
      output: folder for ``STEM.json``, ``STEM.md`` and ``STEM.png`` (``STEM``: the model
        file's stem); default: write nothing.
      keras, keras_weights: a registry model name to time in TensorFlow at the same size
        (gives the GMACs), and a weights file for it (default: random init).
      gpu_delegate: GPU delegate ``.so`` for ``gpu`` (default: LiteRT's GPU accelerator).
      benchmark_binary, adb_serial, adb, adb_modes: the ``adb`` backend: TFLite's
        ``benchmark_model`` for the phone, the device serial, the ``adb`` path, and the
        modes to run on the phone.
      quality: JSON file (or dict) ``{"psnr": dB, "ms_ssim": 0..1}`` for the PIRM 2018 Track B score.
      matmul_size: matrix size of the float32 matmul ceiling.
      progress: one line per measurement on stderr.

    Returns:
      The report of :func:`mobile_enhance.benchmark.run_benchmark` (``rows``: one latency
      row per configuration; ``unavailable``: one entry per requested backend that could
      not run here, with the reason), plus ``written`` (the report files by kind) when
      ``output`` is given.

    Raises:
      UserError: a missing file, an unknown backend, a bad size or thread count.
      mobile_enhance.benchmark.worker.WorkerError: the runtime itself died on the file.
    """
    from pathlib import Path

    from mobile_enhance.benchmark import run_benchmark, write_reports

    if not model:
        raise UserError("--model=FILE.tflite is required")
    threads = _listed(threads)
    try:
        threads = [int(t) for t in threads]
    except (TypeError, ValueError):
        raise UserError(f"--threads must be integers, got {','.join(map(str, threads))!r}") from None
    frame = None if not e2e_frame else "photo" if e2e_frame == "photo" else _size_or_none(e2e_frame)
    kwargs = {} if progress else {"log": lambda line: None}
    report = run_benchmark(
        model,
        backends=_listed(backend),
        threads=threads,
        runs=runs,
        warmup=warmup,
        size=_size_or_none(size),
        photo=photo,
        e2e_runs=e2e_runs,
        e2e_frame=frame,
        keras=keras,
        keras_weights=keras_weights,
        gpu_delegate=gpu_delegate,
        benchmark_binary=benchmark_binary,
        adb_serial=adb_serial,
        adb_path=adb,
        adb_modes=_listed(adb_modes),
        quality=quality,
        matmul_size=matmul_size,
        **kwargs,
    )
    if output:
        report = {**report, "written": write_reports(report, output, stem=Path(model).stem)}
    return report


# -- enhance --------------------------------------------------------------------------------


@dataclasses.dataclass
class EnhanceReport:
    """What :func:`enhance` did: one result per input (written, or an error naming the file)."""

    model: str  #: the model as :meth:`TFLiteModel.describe` puts it (path, quantization, tiles)
    threads: int
    results: list  #: :class:`mobile_enhance.enhance.pipeline.FileResult` per input photo
    seconds: float  #: wall time of the photos, after the model was loaded
    warning: str | None = None  #: the model's sidecar says its output was below its input

    @property
    def failed(self) -> list:
        return [r for r in self.results if r.error]

    @property
    def written(self) -> int:
        return len(self.results) - len(self.failed)


def enhance(
    inputs,
    output=None,
    *,
    model=None,
    tile: int | None = None,
    overlap: int | None = None,
    threads: int | None = None,
    format: str = "jpg",
    quality: int = 95,
    on_model: Callable | None = None,
    on_result: Callable | None = None,
) -> EnhanceReport:
    """Enhance photos and folders of photos with a ``.tflite`` model, as ``mobile-enhance enhance``.

    A bad photo does not stop the others: its result carries the error.

    Args:
      inputs: photos and folders of photos (a path, or a list of them).
      output: the output folder (required; created if missing); outputs keep the photos' names.
      model: the ``.tflite`` file (default: ``tflite_models/default.tflite``, else
        ``tflite_models/default_int8.tflite``).
      tile: window side for a dynamic-size model (default 256); a fixed-size model uses its size.
      overlap: pixels shared by neighbouring windows (default: half the window of a fixed-size
        model; 32, at most a quarter of the window, for a dynamic one).
      threads: interpreter threads (default: the CPUs this process may use).
      format: ``jpg``, ``png``, or ``same`` (each photo's own format).
      quality: JPEG (and WebP) quality, 1-100.
      on_model: ``on_model(model, threads)`` once the model is loaded, before any photo
        (``model``: a :class:`mobile_enhance.enhance.pipeline.TFLiteModel`).
      on_result: ``on_result(done, total, result)`` after each input (for a progress bar).

    Returns:
      An :class:`EnhanceReport`; ``failed`` lists the inputs that could not be enhanced.

    Raises:
      UserError: no inputs, no output folder or one that cannot be written, a quality or
        thread count out of range; ``ModelError``: no model, or one that cannot be loaded
        or cannot take these tiles.
    """
    import os
    import time

    from mobile_enhance.enhance.pipeline import TFLiteModel, default_model_path, enhance_files, prepare_output_dir

    inputs = _listed(inputs) if not isinstance(inputs, str) else [inputs]
    if not inputs:
        raise UserError("give one or more photos or folders to enhance (mobile-enhance enhance PHOTO... --output=DIR)")
    if not output:
        raise UserError("--output=DIR is required (the folder the enhanced photos go to)")
    if not 1 <= quality <= 100:
        raise UserError(f"--quality must be in 1..100, got {quality}")
    if threads is not None and threads < 1:
        raise UserError(f"--threads must be >= 1, got {threads}")
    if threads is None:
        threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    prepare_output_dir(output)  # before loading the model: fail fast
    net = TFLiteModel(model or default_model_path(), num_threads=threads, tile=tile, overlap=overlap)
    if on_model:
        on_model(net, threads)
    t0 = time.monotonic()
    results = enhance_files(net, inputs, output, fmt=format, quality=quality, on_result=on_result)
    return EnhanceReport(net.describe(), threads, results, time.monotonic() - t0, net.quality_warning())


# -- evaluate -------------------------------------------------------------------------------


def evaluate(
    model=(),
    run_dir=(),
    *,
    data: str | None = None,
    phone: str = "iphone",
    limit: int | None = None,
    output=None,
    tile: int | None = None,
    threads: int | None = None,
    on_pair: Callable | None = None,
) -> dict:
    """PSNR / SSIM / MS-SSIM of models on held-out pairs, beside the unprocessed input's
    (for super-resolution models, beside a bicubic upsampling of the input), as
    ``mobile-enhance evaluate`` (see :mod:`mobile_enhance.evaluate`). Scoring ``.tflite``
    files imports no TensorFlow; a run folder's generator does.

    Args:
      model: ``.tflite`` files (a path, a list, or a comma-separated string); float and
        quantized files are listed side by side.
      run_dir: training run folders (their Keras generator), likewise. All models must
        share one upscale ``s`` (the file's, the run's model card's).
      data: ``dped:ROOT`` (its ``test_data/patches``) or ``pairs:IN_DIR,TARGET_DIR`` (required);
        for ``s > 1``, ``pairs:LR_DIR,HR_DIR`` with each target ``s`` times its input.
      phone: the DPED phone.
      limit: score only the first ``limit`` pairs (natural name order).
      output: also write the report as JSON to this file (its folder must exist).
      tile: tile dynamic-size models at ``tile x tile`` instead of running each image whole.
      threads: LiteRT interpreter threads (default: LiteRT's).
      on_pair: ``on_pair(done, total, error)`` after each pair; ``error`` is one line
        naming the files of a skipped pair, else ``None``.

    Returns:
      The report dict: ``data``, ``phone`` (``None`` unless DPED), ``upscale``,
      ``pairs_evaluated``, ``pairs_skipped``, ``skipped`` (one line each), ``image_sizes``,
      and ``results``: one row per system, the row to beat first (``input``, or
      ``bicubic xS`` when ``s > 1``), with its ``psnr``, ``ssim`` and ``ms_ssim`` means.

    Raises:
      UserError: nothing to evaluate, no or bad data, a bad tile or output path, a model
        that cannot be loaded, models of different upscales, or no pair that could be scored.
    """
    from pathlib import Path

    from mobile_enhance.evaluate import evaluate as score
    from mobile_enhance.evaluate import keras_system, load_pairs, tflite_system, write_json

    models, run_dirs = _listed(model), _listed(run_dir)
    if not models and not run_dirs:
        raise UserError("give --model=A.tflite[,B.tflite] and/or --run_dir=DIR to evaluate")
    if not data:
        raise UserError("--data=dped:PATH or --data=pairs:IN_DIR,TARGET_DIR is required")
    if tile is not None and tile < 1:
        raise UserError(f"--tile must be >= 1, got {tile}")
    output = Path(output) if output else None
    if output is not None and not output.parent.is_dir():
        raise UserError(f"{output}: folder {output.parent} does not exist")
    pairs, where = load_pairs(data, phone, limit)
    systems = [tflite_system(p, num_threads=threads, tile=tile) for p in models]
    systems += [keras_system(d, tile=tile) for d in run_dirs]
    report = score(systems, pairs, on_pair=on_pair)
    report = {"data": where, "phone": phone if str(data).startswith("dped:") else None, **report}
    if report["pairs_evaluated"] == 0:
        why = "see the lines above" if on_pair else f"first: {report['skipped'][0]}" if report["skipped"] else "none given"
        raise UserError(f"{where}: none of the {len(pairs)} pairs could be scored ({why})")
    if output is not None:
        write_json(report, output)
    return report


#: ``train``'s keyword options and the config keys they set (the CLI's flags).
TRAIN_OPTIONS = {
    "data": "data.spec",
    "phone": "data.phone",
    "steps": "steps",
    "batch_size": "data.batch_size",
    "patch_size": "data.patch_size",
    "losses": "losses",
    "lr": "optim.learning_rate",
    "schedule": "optim.schedule",
    "vgg_weights": "vgg_weights",
    "distribute": "distribute",
    "checkpoint_every": "checkpoint_every",
    "eval_every": "eval_every",
    "init_from": "init_from",
    "stage": "stage",
}


def train(
    run_dir,
    model: str | None = None,
    data: str | None = None,
    *,
    resume: bool = False,
    config=None,
    seed: int | None = None,
    sets=(),
    overrides: dict | None = None,
    progress: bool = True,
    card=None,
    **options,
) -> dict:
    """Train a model in ``run_dir``, or resume the run there (``mobile-enhance train``).

    Args:
      run_dir: the run folder (config, checkpoints, logs, metrics).
      model: registry name; may be omitted with ``config`` (its model) or ``resume``.
      data: ``dped:PATH``, ``pairs:IN,TARGET``, ``synthetic:PATH``, ``blur:PATH``, ``sr:PATH``
        or ``unpaired:A,B``.
      resume: continue the run in ``run_dir`` from its latest checkpoint, with the run's own
        config (only ``steps`` may be given).
      config: a resolved config to start from instead of the card's preset: a path to a
        ``config.json`` or the dict itself.
      seed: seed of the data stream and of the initial weights.
      sets: ``"key.path=value"`` strings applied last (as ``--set``).
      overrides: config key paths to values (``{"optim.beta_1": 0.5}``), before ``sets``.
      progress: print a progress line on stderr.
      card: a :class:`mobile_enhance.models.ModelCard` to train instead of the registry's
        card of ``model`` (a card made in a notebook).
      **options: the CLI's flags by name (see :data:`TRAIN_OPTIONS`): ``steps``,
        ``batch_size``, ``patch_size``, ``losses``, ``lr``, ``schedule``, ``phone``,
        ``vgg_weights``, ``distribute``, ``checkpoint_every``, ``eval_every``, ``init_from``,
        ``stage``.

    Returns:
      The loop's result (``step``, ``seconds``, ``patches_per_s``, ``losses``, last
      validation ``metrics``), with ``config`` (the resolved :class:`TrainConfig`) and
      ``run_dir``.

    Raises:
      UserError: a bad option, config or data, a card that cannot train what is asked;
        nothing is written to ``run_dir`` then.
    """
    from pathlib import Path

    from mobile_enhance.fileio import read_json
    from mobile_enhance.training import TrainConfig, resolve
    from mobile_enhance.training.trainer import train as run_training

    unknown = sorted(set(options) - set(TRAIN_OPTIONS))
    if unknown:
        raise UserError(f"unknown training option(s) {', '.join(unknown)}; known: {', '.join(sorted(TRAIN_OPTIONS))}")
    if data is not None:
        options["data"] = data
    options = {k: v for k, v in options.items() if v is not None}
    run_dir = Path(run_dir)
    if resume and (run_dir / "config.json").exists():
        extra = sorted(set(options) - {"steps"}) + (["config"] if config is not None else []) + (["sets"] if sets else [])
        if extra or overrides or seed is not None:
            raise UserError(f"{run_dir}: a resumed run keeps its own config; only steps may change (got {', '.join(extra) or 'overrides'})")
        resolved = TrainConfig.from_json(read_json(run_dir / "config.json", f"run config {run_dir / 'config.json'}"))
        if "steps" in options:
            resolved.steps = int(options["steps"])
    else:
        base = config
        if isinstance(config, (str, Path)):
            base = read_json(config, f"config file {config}")
            if not isinstance(base, dict) or not isinstance(base.get("model"), str):
                raise UserError(f"{config}: not a training config (no 'model' name)")
        model = model or (base or {}).get("model") or (card.name if card is not None else None)
        if not model:
            raise UserError("--model is required (see `mobile-enhance models`)")
        keyed = {TRAIN_OPTIONS[k]: v for k, v in options.items()}
        keyed.update(overrides or {})
        if seed is not None:
            keyed["seed"] = keyed["data.seed"] = seed
        try:
            resolved = resolve(model, keyed, list(sets), base=base, card=card)
        except UserError as err:
            raise UserError(f"{config}: {err}" if isinstance(config, (str, Path)) else str(err)) from None
    result = run_training(resolved, run_dir, resume=resume, progress=progress, card=card)
    return {**result, "config": resolved, "run_dir": run_dir}


def import_weights(format: str | None, checkpoint, run_dir) -> dict:  # noqa: A002 - the CLI's flag name
    """Turn an author's published model into a run folder (``mobile-enhance import``).

    Args:
      format: a format of :data:`mobile_enhance.importers.IMPORTERS` (``dped_tf1``: DPED's
        published TF1 generators).
      checkpoint: the published weights: a checkpoint prefix (``models_orig/iphone_orig``) or file.
      run_dir: the run folder to write (must not exist, or be empty).

    Returns:
      ``{"run_dir", "model", "model_kwargs", "imported"}``; the run folder takes export,
      bench, enhance, evaluate and ``train --init_from`` like a training run.

    Raises:
      UserError: a missing argument, an unknown format, a source that is missing, of
        another network or damaged (named, with its variable); nothing is written then.
    """
    from mobile_enhance.importers import format_names, import_weights as run_import

    if not format:
        raise UserError(f"--format is required; known formats: {', '.join(format_names())}")
    if not checkpoint:
        raise UserError("--checkpoint=PATH is required (the published weights)")
    if not run_dir:
        raise UserError("--run_dir is required (the run folder to write)")
    return run_import(format, checkpoint, run_dir)
