"""Model cards: everything the rest of the package needs to know about one paper's model.

A card sits at the end of its ``models/<paper>.py`` and says what the model is (builder,
paper, size multiple, upscale), what it trains on, its default loss recipe with the
paper's weights, its training preset, and its adversarial setup: each discriminator's
builder, what it sees and its GAN loss. The registry in :mod:`mobile_enhance.models`
lists the cards by hand; training, export and the CLI read a model's facts from its card
only, so adding a paper is one new model file and its test.

A card checks itself when it is made: a recipe term that needs a discriminator the card
does not declare, an inverse generator it does not have, or a data kind no source
yields, is refused then, naming the term.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from mobile_enhance.errors import UserError

#: What a card can train on, and the ``--data`` kinds that yield it (see
#: :data:`mobile_enhance.data.DATA_KINDS`): ``paired`` (input, target) photos of one scene,
#: ``unpaired`` crops of two unrelated photo sets, ``sr`` (low-resolution, high-resolution)
#: at the card's upscale.
TRAINS_ON = ("paired", "unpaired", "sr")


class CardError(UserError):
    """A card, or a configuration of it, that cannot be trained as asked; names the term."""


@dataclasses.dataclass(frozen=True)
class Discriminator:
    """One discriminator (or WGAN critic) of a card's adversarial setup.

    Attributes:
      name: what recipe terms call it: ``{"type": "gan", "disc": name}`` (the DPED
        ``texture`` term means the discriminator named ``texture``).
      builder: ``(input_shape=(P, P, C)) -> keras.Model``; ``P`` is the output patch side
        (``data.patch_size``), ``C`` the channels of what it sees.
      sees: its input transform, a key of :data:`mobile_enhance.losses.gan.VIEWS`
        (``rgb``, ``gray``, ``blur_rgb``).
      gan_loss: a key of :data:`mobile_enhance.losses.gan.GAN_LOSSES` (``dped_softmax``,
        ``bce``, ``lsgan``, ``wgan_gp``).
      judges: ``output`` (real targets against the generator's output) or ``inverse``
        (real inputs against the inverse generator's output on targets: DPE's second critic).
      loss_kwargs: extra arguments of the GAN loss (``gp_weight``, label ranges, ...).
      adaptive: for ``wgan_gp``, DPE's adaptive penalty weight: ``{"bound": 0.05,
        "grow": 2.0, "decay": 0.99, "cooldown": 50}`` (the weight grows by ``grow`` while
        the moving average of penalty / weight exceeds ``bound``, checked at most once per
        ``cooldown`` discriminator steps); ``None`` keeps it fixed.
    """

    name: str
    builder: Callable
    sees: str = "rgb"
    gan_loss: str = "bce"
    judges: str = "output"
    loss_kwargs: dict = dataclasses.field(default_factory=dict)
    adaptive: dict | None = None

    def __post_init__(self):
        from mobile_enhance.losses.gan import GAN_LOSSES, VIEWS

        if self.sees not in VIEWS:
            raise CardError(f"discriminator {self.name!r}: sees {self.sees!r}; known views: {', '.join(VIEWS)}")
        if self.gan_loss not in GAN_LOSSES:
            raise CardError(f"discriminator {self.name!r}: GAN loss {self.gan_loss!r}; known: {', '.join(GAN_LOSSES)}")
        if self.judges not in ("output", "inverse"):
            raise CardError(f"discriminator {self.name!r}: judges {self.judges!r}; known: output, inverse")
        if self.adaptive is not None and self.gan_loss != "wgan_gp":
            raise CardError(f"discriminator {self.name!r}: an adaptive penalty weight needs gan_loss 'wgan_gp'")
        if self.adaptive is not None:
            unknown = sorted(set(self.adaptive) - {"bound", "grow", "decay", "cooldown"})
            if unknown:
                raise CardError(f"discriminator {self.name!r}: unknown adaptive setting(s) {', '.join(unknown)}; known: bound, grow, decay, cooldown")
        GAN_LOSSES[self.gan_loss].check_kwargs("discriminator", self.loss_kwargs, f"discriminator {self.name!r} ({self.gan_loss})")

    def describe(self) -> dict:
        return {"name": self.name, "builder": self.builder.__name__, "sees": self.sees, "gan_loss": self.gan_loss,
                "judges": self.judges, **({"adaptive": dict(self.adaptive)} if self.adaptive else {})}


@dataclasses.dataclass(frozen=True)
class Preset:
    """A card's training preset: the paper's batch, patch, optimiser and cadence.

    Attributes:
      batch_size: global batch.
      patch_size: side of the target patches (the output side; the input is
        ``patch_size / upscale``).
      learning_rate: the generators' Adam rate.
      disc_learning_rate: the discriminators' (0: the generators').
      beta_1, beta_2: Adam's.
      schedule: ``constant`` or ``cosine``.
      steps: generator steps (1000 where the paper's number is not known to us).
      disc_steps: discriminator steps per generator step (each on its own batch).
      disc_warmup: steps at the start that train only the discriminators.
      ema_decay: decay of an EMA copy of the generator used for validation and export
        (0: none).
    """

    batch_size: int = 32
    patch_size: int = 100
    learning_rate: float = 5e-4
    disc_learning_rate: float = 0.0
    beta_1: float = 0.9
    beta_2: float = 0.999
    schedule: str = "constant"
    steps: int = 1000
    disc_steps: int = 1
    disc_warmup: int = 0
    ema_decay: float = 0.0

    def overrides(self) -> dict:
        """The preset as :class:`mobile_enhance.training.TrainConfig` key paths."""
        return {
            "data.batch_size": self.batch_size,
            "data.patch_size": self.patch_size,
            "optim.learning_rate": self.learning_rate,
            "optim.disc_learning_rate": self.disc_learning_rate,
            "optim.beta_1": self.beta_1,
            "optim.beta_2": self.beta_2,
            "optim.schedule": self.schedule,
            "steps": self.steps,
            "gan.disc_steps": self.disc_steps,
            "gan.disc_warmup": self.disc_warmup,
            "ema_decay": self.ema_decay,
        }


@dataclasses.dataclass(frozen=True)
class Stage:
    """One training stage of a card (most cards have one; DRBN has two).

    Attributes:
      name: ``config.stage`` selects it (the card's first stage is ``main``).
      trains_on: data kinds, from :data:`TRAINS_ON`.
      losses: the default recipe, a tuple of :class:`mobile_enhance.losses.LossTerm`.
      preset: see :class:`Preset`.
      discriminators: see :class:`Discriminator`.
      after: the stage whose run this one starts from (``--init_from=RUN``); "" for none.
      trainable: layer-name prefixes trained in this stage (the rest frozen); empty: all.
    """

    name: str
    trains_on: tuple
    losses: tuple
    preset: Preset = Preset()
    discriminators: tuple = ()
    after: str = ""
    trainable: tuple = ()

    def discriminator(self, name: str) -> Discriminator | None:
        return next((d for d in self.discriminators if d.name == name), None)


@dataclasses.dataclass(frozen=True)
class ModelCard:
    """A model's card: see the module docstring.

    Attributes:
      name: registry name, as typed on the command line.
      paper: short citation of the paper the architecture follows.
      builder: ``(input_shape=(None, None, 3), **kwargs) -> keras.Model``, the generator.
      size_multiple: input H and W must be multiples of this (product of the strides).
      upscale: output side / input side (1, or 4 for x4 super-resolution).
      trains_on, losses, preset, discriminators, trainable: the first stage (``main``),
        see :class:`Stage`.
      inverse: builder of an inverse generator F (target domain back to input domain;
        WESPE's content consistency, DPE's second generator), trained with the generator;
        ``None`` for none.
      recipes: other named recipes of this card (``--losses=NAME``), besides ``paper``.
      stages: later stages (see :class:`Stage`).
      float_in_int8: Keras layers an int8 export keeps in float by default (see
        :func:`mobile_enhance.export.tflite.float_nodes`): a skip path that carries the
        whole image, where one int8 step is about the error budget of the output.
    """

    name: str
    paper: str
    builder: Callable
    size_multiple: int
    trains_on: tuple
    losses: tuple
    preset: Preset = Preset()
    discriminators: tuple = ()
    upscale: int = 1
    inverse: Callable | None = None
    recipes: dict = dataclasses.field(default_factory=dict)
    stages: tuple = ()
    trainable: tuple = ()
    float_in_int8: tuple = ()

    def __post_init__(self):
        if self.upscale < 1:
            raise CardError(f"model {self.name!r}: upscale must be >= 1, got {self.upscale}")
        if self.inverse is not None and self.upscale > 1:
            raise CardError(f"model {self.name!r}: an inverse generator maps outputs back to inputs of the same size; "
                            f"the card upscales {self.upscale}x")
        names = [s.name for s in self.all_stages()]
        if len(set(names)) != len(names):
            raise CardError(f"model {self.name!r}: stage names repeat: {names}")
        for stage in self.all_stages():
            if stage.after and stage.after not in names:
                raise CardError(f"model {self.name!r}: stage {stage.name!r} starts after unknown stage {stage.after!r}")
            for disc in stage.discriminators:
                if disc.judges == "inverse" and self.inverse is None:
                    raise CardError(f"model {self.name!r}: discriminator {disc.name!r} judges an inverse generator, "
                                    "which the card does not have")
            for kind in stage.trains_on:
                if kind not in TRAINS_ON:
                    raise CardError(f"model {self.name!r}: trains on {kind!r}; known kinds: {', '.join(TRAINS_ON)}")
            self.check_recipe(stage.losses, stage)
        for recipe in self.recipes.values():
            self.check_recipe(recipe, self.stage())

    def all_stages(self) -> tuple:
        main = Stage("main", tuple(self.trains_on), tuple(self.losses), self.preset, tuple(self.discriminators),
                     trainable=tuple(self.trainable))
        return (main, *self.stages)

    def stage(self, name: str = "") -> Stage:
        """Stage ``name`` ("" or ``main``: the first); an unknown name lists the known ones."""
        stages = {s.name: s for s in self.all_stages()}
        if (name or "main") not in stages:
            raise CardError(f"model {self.name!r} has no stage {name!r}; its stages: {', '.join(stages)}")
        return stages[name or "main"]

    def recipe(self, name: str, stage: str = ""):
        """Named recipe ``name`` of this card (``paper``: the recipe of stage ``stage``, by
        default the first), or ``None``."""
        if name == "paper":
            return tuple(self.stage(stage).losses)
        return self.recipes.get(name)

    def check_recipe(self, terms, stage: Stage, data_kind: str | None = None) -> None:
        """Refuse a recipe this card's ``stage`` cannot compute (on ``data_kind``), naming the term."""
        declared = ", ".join(d.name for d in stage.discriminators) or "none"
        for term in terms:
            where = f"model {self.name!r}" + (f" stage {stage.name!r}" if stage.name != "main" else "")
            if term.needs == "adversarial" and stage.discriminator(term.disc) is None:
                raise CardError(f"loss term {term.label!r} needs discriminator {term.disc!r}, which {where} does not "
                                f"declare (its discriminators: {declared})")
            if term.needs == "adversarial":
                from mobile_enhance.losses.gan import GAN_LOSSES

                spec = stage.discriminator(term.disc)
                GAN_LOSSES[spec.gan_loss].check_kwargs("generator", term.fn_kwargs, f"loss term {term.label!r} ({spec.gan_loss})")
            if term.type == "identity" and self.upscale > 1:
                raise CardError(f"loss term {term.label!r} compares the output with the input, which {where} upscales "
                                f"{self.upscale}x")
            if term.needs_inverse and self.inverse is None:
                raise CardError(f"loss term {term.label!r} needs an inverse generator, which {where} does not have")
            if data_kind == "unpaired" and term.uses_target:
                raise CardError(f"loss term {term.label!r} compares the output with its target, and unpaired data has "
                                "none (use terms without a target: gan, tv, consistency, cycle, identity)")

    def describe(self) -> dict:
        """The card's facts as plain JSON values (what ``mobile-enhance models --format=json`` adds)."""
        from mobile_enhance.losses import recipe_to_json

        return {
            "name": self.name,
            "paper": self.paper,
            "size_multiple": self.size_multiple,
            "upscale": self.upscale,
            "trains_on": list(self.trains_on),
            "discriminators": [d.describe() for d in self.discriminators],
            "inverse": self.inverse.__name__ if self.inverse else None,
            "losses": recipe_to_json(self.losses),
            "preset": dataclasses.asdict(self.preset),
            "stages": [
                {"name": s.name, "trains_on": list(s.trains_on), "after": s.after, "trainable": list(s.trainable),
                 "discriminators": [d.describe() for d in s.discriminators]}
                for s in self.all_stages()
            ],
        }
