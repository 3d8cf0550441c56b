"""``mobile-enhance train``: flags over :func:`mobile_enhance.api.train`."""

from __future__ import annotations

from absl import flags

NAME = "train"
HELP = "Train a model: --model=NAME --data=KIND:PATH --run_dir=DIR [--resume]."


def define_flags(fv: flags.FlagValues) -> None:
    flags.DEFINE_string("model", None, "Model name (see `mobile-enhance models`).", flag_values=fv)
    flags.DEFINE_string(
        "data", None, "dped:PATH, pairs:IN_DIR,TARGET_DIR, synthetic:PHOTO_DIR, blur:PHOTO_DIR, sr:PHOTO_DIR or "
        "unpaired:A_DIR,B_DIR.", flag_values=fv
    )
    flags.DEFINE_string("run_dir", None, "Run folder: config, checkpoints, logs, metrics.", flag_values=fv)
    flags.DEFINE_boolean("resume", False, "Continue the run in --run_dir from its latest checkpoint.", flag_values=fv)
    flags.DEFINE_enum("phone", "iphone", ["iphone", "blackberry", "sony"], "DPED phone.", flag_values=fv)
    flags.DEFINE_integer("steps", None, "Total training steps (preset: the card's).", flag_values=fv)
    flags.DEFINE_integer("batch_size", None, "Global batch size (preset: the card's).", flag_values=fv)
    flags.DEFINE_integer("patch_size", None, "Target patch side (preset: the card's; the input is patch / upscale).", flag_values=fv)
    flags.DEFINE_string(
        "losses", None, "Loss recipe: paper (the card's, default), pixel, dped_novgg, or type:weight,... (gan@DISC:weight "
        "for a term through the card's discriminator DISC).", flag_values=fv)
    flags.DEFINE_float("lr", None, "Generator learning rate (preset: the card's).", flag_values=fv)
    flags.DEFINE_enum("schedule", None, ["constant", "cosine"], "Learning-rate schedule (preset: the card's).", flag_values=fv)
    flags.DEFINE_string("vgg_weights", None, "VGG-19 weights: keras .h5 or MatConvNet .mat.", flag_values=fv)
    flags.DEFINE_enum("distribute", None, ["default", "mirrored", "multiworker"], "tf.distribute strategy.", flag_values=fv)
    flags.DEFINE_integer("checkpoint_every", None, "Steps between checkpoints.", flag_values=fv)
    flags.DEFINE_integer("eval_every", None, "Steps between validation passes.", flag_values=fv)
    flags.DEFINE_string(
        "init_from", None, "Fine-tune: start the generator from this run folder or .weights.h5 (new run, step 0).", flag_values=fv
    )
    flags.DEFINE_string("stage", None, "Training stage of a multi-stage model (see its card; default: the first).", flag_values=fv)
    flags.DEFINE_integer("seed", None, "Seed of data order, crops and initialisation.", flag_values=fv)
    flags.DEFINE_multi_string("set", [], "Any config key: --set=optim.beta_1=0.5 (repeatable).", flag_values=fv)
    flags.DEFINE_boolean("quiet", False, "No progress bar.", flag_values=fv)
    flags.DEFINE_string(
        "config", None, "A resolved config (a run folder's config.json) to start from instead of the preset; "
        "flags and --set override it.", flag_values=fv)


def main(fv: flags.FlagValues, args: list[str]) -> int:
    from mobile_enhance import api
    from mobile_enhance.errors import UserError

    if args:
        raise UserError(f"unexpected arguments: {' '.join(args)}")
    if not fv["run_dir"].value:
        raise UserError("--run_dir is required")
    options = {name: fv[name].value for name in api.TRAIN_OPTIONS if name != "phone"}
    if fv["phone"].present:
        options["phone"] = fv["phone"].value
    result = api.train(
        fv["run_dir"].value,
        fv["model"].value,
        resume=fv["resume"].value,
        config=fv["config"].value,
        seed=fv["seed"].value,
        sets=fv["set"].value,
        progress=not fv["quiet"].value,
        **options,
    )
    config, m = result["config"], result["metrics"]
    line = f"trained {config.model} to step {result['step']} in {result['seconds']:.1f}s ({result['patches_per_s']:.1f} patches/s)"
    if m:
        line += f"; validation PSNR {m['psnr']:.2f} dB (input {m['identity_psnr']:.2f}), SSIM {m['ssim']:.4f} (input {m['identity_ssim']:.4f})"
    print(line)
    print(f"run folder: {result['run_dir']}")
    return 0
