"""Typed training configuration, strict overrides, checked against the model's card.

Order of application (fixed): the model card's preset and recipe (or a resolved config
given as the base), then the command-line flags, then ``--set key.path=value``
overrides. The result is checked against the card before anything is written: a recipe
term the card cannot compute, a data kind it does not train on, a later stage started
from a run of another model or stage, each refused in one line. Every run writes the
resolved configuration to ``RUN_DIR/config.json``, from which the run can be reproduced.
"""

from __future__ import annotations

import dataclasses
import json
import typing

from mobile_enhance.errors import UserError
from mobile_enhance.losses import parse_losses, recipe_from_json, recipe_to_json
from mobile_enhance.models import get_card

#: Version of the run-folder layout ``config.json`` records (``format``); runs without it are
#: from before model cards (their checkpoints are recognised by their variable names).
RUN_FORMAT = 2


@dataclasses.dataclass
class DataConfig:
    """Where the training pairs come from.

    Attributes:
      spec: ``dped:PATH``, ``pairs:IN,TARGET``, ``synthetic:PATH``, ``sr:PATH``, ``blur:PATH`` or ``unpaired:A,B``.
      phone: DPED phone (iphone, blackberry, sony).
      patch_size: side of the square training patches.
      batch_size: global batch size (split across replicas when distributed).
      val_fraction: share of files held out for validation (folders without a test split).
      augment: random flip/rot90.
      seed: seed of shuffling, crops, augmentation and synthetic degradations.
    """

    spec: str = ""
    phone: str = "iphone"
    patch_size: int = 100
    batch_size: int = 32
    val_fraction: float = 0.15
    augment: bool = True
    seed: int = 0


@dataclasses.dataclass
class OptimConfig:
    """Adam settings of the generator and the discriminator.

    Attributes:
      learning_rate: generator learning rate.
      disc_learning_rate: discriminator learning rate (0: same as the generator).
      beta_1, beta_2, epsilon: Adam's (TensorFlow defaults, as the papers used).
      schedule: "constant" (the papers') or "cosine" (decay to 5% of the rate over
        ``steps``, for short runs that must settle).
    """

    learning_rate: float = 5e-4
    schedule: str = "constant"
    disc_learning_rate: float = 0.0
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-7


@dataclasses.dataclass
class GanConfig:
    """How discriminator and generator steps alternate.

    Attributes:
      disc_steps: discriminator steps per generator step, each on its own batch (one
        training step then reads ``disc_steps`` batches).
      disc_warmup: steps at the start in which only the discriminators train.
    """

    disc_steps: int = 1
    disc_warmup: int = 0


@dataclasses.dataclass
class TrainConfig:
    """One training run.

    Attributes:
      model: registry name of the generator.
      model_kwargs: architecture arguments passed to its builder (``start``, where a
        builder has it, picks a new model's weights and nothing else).
      data: see :class:`DataConfig`.
      losses: the loss recipe, ``[{type, weight, **kwargs}, ...]``.
      optim: see :class:`OptimConfig`.
      gan: see :class:`GanConfig`.
      ema_decay: decay of an EMA copy of the generator (BasicSR), used for validation and
        written as the run's generator (export); 0 keeps none.
      stage: the card's training stage ("" for its first, ``main``).
      steps: total generator steps.
      checkpoint_every: steps between checkpoints (one is also written at exit).
      eval_every: steps between validation passes (PSNR, SSIM, MS-SSIM).
      summary_every: steps between TensorBoard scalars.
      keep_checkpoints: checkpoints kept on disk.
      val_max: validation pairs used at most.
      vgg_weights: VGG-19 weights file for VGG losses ("" searches; see losses.vgg).
      distribute: "default" (one device), "mirrored" (all local devices) or
        "multiworker" (``TF_CONFIG`` cluster).
      seed: seed of weight initialisation.
      init_from: start the generator (and an inverse generator) from another run
        folder's latest checkpoint or a ``.weights.h5`` file (fine-tuning: step 0, fresh
        optimizer); "" starts from scratch. A later stage starts from a run of the stage
        before it.
      imported: for a run made by ``mobile-enhance import``: ``{format, source, files,
        sha256}`` of the published weights it holds (such a run has no data source).
    """

    model: str = "fast_dped"
    model_kwargs: dict = dataclasses.field(default_factory=dict)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    losses: list = dataclasses.field(default_factory=list)
    optim: OptimConfig = dataclasses.field(default_factory=OptimConfig)
    gan: GanConfig = dataclasses.field(default_factory=GanConfig)
    ema_decay: float = 0.0
    stage: str = ""
    steps: int = 1000
    checkpoint_every: int = 500
    eval_every: int = 250
    summary_every: int = 50
    keep_checkpoints: int = 3
    val_max: int = 64
    vgg_weights: str = ""
    distribute: str = "default"
    seed: int = 0
    init_from: str = ""
    imported: dict = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict:
        return {"format": RUN_FORMAT, **dataclasses.asdict(self)}

    @classmethod
    def from_json(cls, data: dict) -> "TrainConfig":
        """The config ``data`` holds (its ``format``, the layout version, is not a setting)."""
        config = cls()
        for key, value in _flatten({k: v for k, v in data.items() if k != "format"}):
            set_field(config, key, value)
        return config


def _flatten(data, prefix=""):
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and key not in ("model_kwargs", "imported"):
            yield from _flatten(value, path + ".")
        else:
            yield path, value


def _fields(obj) -> dict:
    return {f.name: f for f in dataclasses.fields(obj)}


def set_field(config, path: str, value):
    """Set ``config.<path>`` with type checking; unknown keys list the known ones."""
    *parents, leaf = path.split(".")
    obj = config
    for part in parents:
        fields = _fields(obj)
        if part not in fields or not dataclasses.is_dataclass(getattr(obj, part)):
            raise UserError(f"unknown config key {path!r}; known: {', '.join(sorted(known_keys(config)))}")
        obj = getattr(obj, part)
    fields = _fields(obj)
    if leaf not in fields or dataclasses.is_dataclass(getattr(obj, leaf)):
        raise UserError(f"unknown config key {path!r}; known: {', '.join(sorted(known_keys(config)))}")
    setattr(obj, leaf, _coerce(path, value, typing.get_type_hints(type(obj))[leaf]))


def _coerce(path, value, kind):
    origin = typing.get_origin(kind) or kind
    try:
        if origin is bool:
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(value)
                return value.lower() in ("true", "1")
            return bool(value)
        if origin in (int, float, str):
            if origin is int and isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return origin(value)
        if origin in (dict, list):
            if isinstance(value, str):
                value = json.loads(value)
            if not isinstance(value, origin):
                raise ValueError(value)
            return value
    except (TypeError, ValueError):
        raise UserError(f"config key {path!r}: {value!r} is not a valid {getattr(origin, '__name__', origin)}") from None
    return value


def known_keys(config) -> list[str]:
    keys = []
    for name, f in _fields(config).items():
        value = getattr(config, name)
        keys += [f"{name}.{k}" for k in known_keys(value)] if dataclasses.is_dataclass(value) else [name]
    return keys


def resolve(model: str, overrides: dict | None = None, sets: list[str] = (), base: dict | None = None, card=None) -> TrainConfig:
    """The card's preset and recipe for ``model`` (or the resolved config ``base``), then
    ``overrides`` (flags), then ``key=value`` strings; checked by :func:`validate`.

    ``card`` replaces the registry's card of ``model`` (a card made in a notebook or test).
    """
    card = card or get_card(model)
    if base is not None:
        config = TrainConfig.from_json(base)
        if config.model != model:
            raise UserError(f"the config is for model {config.model!r}, not {model!r}")
    else:
        config = TrainConfig(model=model)
        stage_name = str((overrides or {}).get("stage", ""))
        stage = card.stage(stage_name)
        config.stage = stage_name
        config.losses = recipe_to_json(stage.losses)
        for key, value in stage.preset.overrides().items():
            set_field(config, key, value)
    for key, value in (overrides or {}).items():
        if key == "losses":
            config.losses = recipe_to_json(parse_losses(value, card, str((overrides or {}).get("stage", config.stage))))
        else:
            set_field(config, key, value)
    for item in sets:
        key, eq, value = item.partition("=")
        if not eq:
            raise UserError(f"--set {item!r}: expected key.path=value")
        set_field(config, key.strip(), value.strip())
    validate(config, card)
    return config


def validate(config: TrainConfig, card=None) -> None:
    """Refuse a config its model's card cannot train, in one line naming the key, term,
    data kind or run; reads nothing but ``init_from``'s ``config.json``."""
    from mobile_enhance.data import data_kind

    card = card or get_card(config.model)
    stage = card.stage(config.stage)
    terms = recipe_from_json(config.losses)
    if not terms:
        raise UserError("the loss recipe is empty")
    for key in ("steps", "checkpoint_every", "eval_every", "summary_every", "keep_checkpoints"):
        if getattr(config, key) <= 0:
            raise UserError(f"config key {key!r} must be positive, got {getattr(config, key)}")
    if config.data.batch_size <= 0:
        raise UserError(f"batch size must be positive, got {config.data.batch_size}")
    if config.gan.disc_steps < 1 or config.gan.disc_warmup < 0:
        raise UserError(f"gan.disc_steps must be >= 1 and gan.disc_warmup >= 0, got {config.gan.disc_steps}, {config.gan.disc_warmup}")
    if not 0.0 <= config.ema_decay < 1.0:
        raise UserError(f"ema_decay must be in [0, 1), got {config.ema_decay}")
    if config.optim.schedule not in ("constant", "cosine"):
        raise UserError(f"optim.schedule must be constant or cosine, got {config.optim.schedule!r}")
    if config.distribute not in ("default", "mirrored", "multiworker"):
        raise UserError(f"distribute must be default, mirrored or multiworker, got {config.distribute!r}")
    if not config.data.spec:
        raise UserError("no training data: pass --data=KIND:PATH (dped, pairs, synthetic, sr, blur, unpaired)")
    kind = data_kind(config.data.spec)
    if kind not in stage.trains_on:
        where = f"model {card.name!r}" + (f" stage {stage.name!r}" if stage.name != "main" else "")
        raise UserError(f"--data={config.data.spec}: {where} trains on {', '.join(stage.trains_on)} data, not {kind}")
    card.check_recipe(terms, stage, kind)
    if config.data.patch_size % card.upscale:
        raise UserError(f"patch size {config.data.patch_size} is not a multiple of model {card.name!r}'s upscale {card.upscale}")
    side = config.data.patch_size // card.upscale
    if side <= 0 or side % card.size_multiple:
        raise UserError(f"patch size {config.data.patch_size}: model {card.name!r} takes input sides that are multiples "
                        f"of {card.size_multiple}" + (f" (the input is patch / {card.upscale})" if card.upscale > 1 else ""))
    _check_stage_start(config, card, stage)


def _check_stage_start(config: TrainConfig, card, stage) -> None:
    """A later stage starts from a run of the same model at the stage before it."""
    from pathlib import Path

    if not stage.after:
        return
    if not config.init_from:
        raise UserError(f"stage {stage.name!r} of model {card.name!r} trains from a run of stage {stage.after!r}: "
                        "pass --init_from=RUN_DIR")
    path = Path(config.init_from)
    if not (path / "config.json").is_file():
        raise UserError(f"{path}: stage {stage.name!r} needs a run folder of stage {stage.after!r} (no {path / 'config.json'})")
    from mobile_enhance.fileio import read_json

    other = TrainConfig.from_json(read_json(path / "config.json", f"run config {path / 'config.json'}"))
    if other.model != config.model or (other.stage or "main") != stage.after:
        raise UserError(f"{path}: a run of model {other.model!r} stage {other.stage or 'main'!r}; stage {stage.name!r} "
                        f"trains from a run of model {config.model!r} stage {stage.after!r}")
