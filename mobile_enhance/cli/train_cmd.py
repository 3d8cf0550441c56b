"""``mobile-enhance train``: train a generator on DPED, paired folders or synthetic pairs."""

from __future__ import annotations

import json

from absl import flags

NAME = "train"
HELP = "Train a model: --model=NAME --data=KIND:PATH --run_dir=DIR [--resume]."


def define_flags(fv: flags.FlagValues) -> None:
    flags.DEFINE_string("model", None, "Model name (see `mobile-enhance models`).", flag_values=fv)
    flags.DEFINE_string(
        "data", None, "dped:PATH, pairs:IN_DIR,TARGET_DIR, synthetic:PHOTO_DIR, sr:PHOTO_DIR or unpaired:A_DIR,B_DIR.", flag_values=fv
    )
    flags.DEFINE_string("run_dir", None, "Run folder: config, checkpoints, logs, metrics.", flag_values=fv)
    flags.DEFINE_boolean("resume", False, "Continue the run in --run_dir from its latest checkpoint.", flag_values=fv)
    flags.DEFINE_enum("phone", "iphone", ["iphone", "blackberry", "sony"], "DPED phone.", flag_values=fv)
    flags.DEFINE_integer("steps", None, "Total training steps (preset: 1000).", flag_values=fv)
    flags.DEFINE_integer("batch_size", None, "Global batch size (preset: the paper's).", flag_values=fv)
    flags.DEFINE_integer("patch_size", None, "Training patch side (preset: 100; rsgunet 96).", flag_values=fv)
    flags.DEFINE_string("losses", None, "Loss recipe name (dped, rsgunet, pixel, ...) or type:weight,type:weight.", flag_values=fv)
    flags.DEFINE_float("lr", None, "Generator learning rate (preset: 5e-4).", flag_values=fv)
    flags.DEFINE_enum("schedule", None, ["constant", "cosine"], "Learning-rate schedule (preset: constant).", flag_values=fv)
    flags.DEFINE_string("vgg_weights", None, "VGG-19 weights: keras .h5 or MatConvNet .mat.", flag_values=fv)
    flags.DEFINE_enum("distribute", None, ["default", "mirrored", "multiworker"], "tf.distribute strategy.", flag_values=fv)
    flags.DEFINE_integer("checkpoint_every", None, "Steps between checkpoints.", flag_values=fv)
    flags.DEFINE_integer("eval_every", None, "Steps between validation passes.", flag_values=fv)
    flags.DEFINE_string(
        "init_from", None, "Fine-tune: start the generator from this run folder or .weights.h5 (new run, step 0).", flag_values=fv
    )
    flags.DEFINE_integer("seed", None, "Seed of data order, crops and initialisation.", flag_values=fv)
    flags.DEFINE_multi_string("set", [], "Any config key: --set=optim.beta_1=0.5 (repeatable).", flag_values=fv)
    flags.DEFINE_boolean("quiet", False, "No progress bar.", flag_values=fv)
    flags.DEFINE_string(
        "config", None, "A resolved config (a run folder's config.json) to start from instead of the preset; "
        "flags and --set override it.", flag_values=fv)


FLAG_TO_KEY = {
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
}


def main(fv: flags.FlagValues, args: list[str]) -> int:
    from pathlib import Path

    from mobile_enhance.errors import UserError
    from mobile_enhance.training import TrainConfig, resolve, train

    if args:
        raise UserError(f"unexpected arguments: {' '.join(args)}")
    if not fv["run_dir"].value:
        raise UserError("--run_dir is required")
    run_dir = Path(fv["run_dir"].value)
    if fv["resume"].value and (run_dir / "config.json").exists():
        config = TrainConfig.from_json(json.loads((run_dir / "config.json").read_text()))
        if fv["steps"].value:
            config.steps = fv["steps"].value
    else:
        base = _read_config(Path(fv["config"].value)) if fv["config"].value else None
        model = fv["model"].value or (base or {}).get("model")
        if not model:
            raise UserError("--model is required (see `mobile-enhance models`)")
        overrides = {key: fv[flag].value for flag, key in FLAG_TO_KEY.items() if fv[flag].value is not None}
        if fv["phone"].present:
            overrides["data.phone"] = fv["phone"].value
        if fv["seed"].value is not None:
            overrides["seed"] = overrides["data.seed"] = fv["seed"].value
        try:
            config = resolve(model, overrides, fv["set"].value, base=base)
        except UserError as err:
            raise UserError(f"{fv['config'].value}: {err}" if base is not None else str(err)) from None
    result = train(config, run_dir, resume=fv["resume"].value, progress=not fv["quiet"].value)
    m = result["metrics"]
    line = f"trained {config.model} to step {result['step']} in {result['seconds']:.1f}s ({result['patches_per_s']:.1f} patches/s)"
    if m:
        line += f"; validation PSNR {m['psnr']:.2f} dB (input {m['identity_psnr']:.2f}), SSIM {m['ssim']:.4f} (input {m['identity_ssim']:.4f})"
    print(line)
    print(f"run folder: {run_dir}")
    return 0


def _read_config(path) -> dict:
    """A resolved training config from ``path``; errors name the file."""
    from mobile_enhance.errors import UserError
    from mobile_enhance.fileio import read_json

    data = read_json(path, f"config file {path}")
    if not isinstance(data, dict) or not isinstance(data.get("model"), str):
        raise UserError(f"{path}: not a training config (no 'model' name)")
    return data
