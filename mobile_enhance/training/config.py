"""Typed training configuration, per-model presets, strict overrides.

Order of application (fixed): the model's preset, then the command-line flags, then
``--set key.path=value`` overrides. Every run writes the resolved configuration to
``RUN_DIR/config.json``, from which the run can be reproduced.
"""

from __future__ import annotations

import dataclasses
import json
import typing

from mobile_enhance.errors import UserError
from mobile_enhance.losses import RECIPES, parse_losses, recipe_from_json, recipe_to_json
from mobile_enhance.models import get_model_info


@dataclasses.dataclass
class DataConfig:
    """Where the training pairs come from.

    Attributes:
      spec: ``dped:PATH``, ``pairs:IN,TARGET``, ``synthetic:PATH``, ``sr:PATH`` or ``unpaired:A,B``.
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
class TrainConfig:
    """One training run.

    Attributes:
      model: registry name of the generator.
      model_kwargs: architecture arguments passed to its builder.
      data: see :class:`DataConfig`.
      losses: the loss recipe, ``[{type, weight, **kwargs}, ...]``.
      optim: see :class:`OptimConfig`.
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
      init_from: start the generator from another run folder's latest checkpoint or a
        ``.weights.h5`` file (fine-tuning: step 0, fresh optimizer); "" starts from scratch.
    """

    model: str = "fast_dped"
    model_kwargs: dict = dataclasses.field(default_factory=dict)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    losses: list = dataclasses.field(default_factory=list)
    optim: OptimConfig = dataclasses.field(default_factory=OptimConfig)
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

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "TrainConfig":
        config = cls()
        for key, value in _flatten(data):
            set_field(config, key, value)
        return config


#: Batch sizes of the papers' code; RSGUNet needs multiples of 32 (96x96 crops).
PRESETS = {
    "dped": {"data.batch_size": 50, "data.patch_size": 100},
    "fast_dped": {"data.batch_size": 50, "data.patch_size": 100},
    "rsgunet": {"data.batch_size": 32, "data.patch_size": 96},
    "muxdemux": {"data.batch_size": 32, "data.patch_size": 100},
    "srcnn": {"data.batch_size": 50, "data.patch_size": 100},
}


def _flatten(data, prefix=""):
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and key not in ("model_kwargs",):
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


def resolve(model: str, overrides: dict | None = None, sets: list[str] = (), base: dict | None = None) -> TrainConfig:
    """Preset of ``model`` (or the resolved config ``base``), then ``overrides`` (flags), then
    ``key=value`` strings."""
    get_model_info(model)
    if base is not None:
        config = TrainConfig.from_json(base)
        if config.model != model:
            raise UserError(f"the config is for model {config.model!r}, not {model!r}")
    else:
        config = TrainConfig(model=model)
        config.losses = recipe_to_json(RECIPES.get(model, RECIPES["pixel"]))
        for key, value in PRESETS.get(model, {}).items():
            set_field(config, key, value)
    for key, value in (overrides or {}).items():
        if key == "losses":
            config.losses = recipe_to_json(parse_losses(value))
        else:
            set_field(config, key, value)
    for item in sets:
        key, eq, value = item.partition("=")
        if not eq:
            raise UserError(f"--set {item!r}: expected key.path=value")
        set_field(config, key.strip(), value.strip())
    validate(config)
    return config


def validate(config: TrainConfig) -> None:
    from mobile_enhance.models import check_input_size

    recipe_from_json(config.losses)
    check_input_size(config.model, config.data.patch_size, config.data.patch_size)
    for key in ("steps", "checkpoint_every", "eval_every", "summary_every", "keep_checkpoints"):
        if getattr(config, key) <= 0:
            raise UserError(f"config key {key!r} must be positive, got {getattr(config, key)}")
    if config.data.batch_size <= 0:
        raise UserError(f"batch size must be positive, got {config.data.batch_size}")
    if config.optim.schedule not in ("constant", "cosine"):
        raise UserError(f"optim.schedule must be constant or cosine, got {config.optim.schedule!r}")
    if config.distribute not in ("default", "mirrored", "multiworker"):
        raise UserError(f"distribute must be default, mirrored or multiworker, got {config.distribute!r}")
    if not config.data.spec:
        raise UserError("no training data: pass --data=KIND:PATH (dped, pairs, synthetic, sr, unpaired)")
