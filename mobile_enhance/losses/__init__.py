"""Losses, declared as recipes of ``{type, weight, **kwargs}`` terms.

A paper's recipe reads like the paper and lives on its model card (the DPED card's is
content 10, colour 0.5, texture 1, total variation 2000). Here are the loss types, the
GAN losses (:mod:`.gan`) and the recipes that belong to no paper (:data:`RECIPES`).
``parse_losses`` is the user boundary: a recipe name (the card's, then these), or
``type:weight[,type:weight...]`` to build one (``gan@NAME:weight`` for a term through the
card's discriminator NAME), unknown types listed.
"""

from __future__ import annotations

import dataclasses

from mobile_enhance.errors import UnknownNameError, UserError
from mobile_enhance.losses import functions as F


@dataclasses.dataclass(frozen=True)
class LossType:
    """How a loss type is computed.

    Attributes:
      fn: the function in :mod:`mobile_enhance.losses.functions` (none for adversarial
        terms: the discriminator's GAN loss decides).
      needs: what the task passes ``fn``: ``"pixels"`` (enhanced, target), ``"vgg"`` (VGG
        feature dicts of enhanced and target), ``"adversarial"`` (the generator side of a
        discriminator's GAN loss), ``"consistency"`` (F(G(x)), x), ``"consistency_vgg"``
        (their VGG features), ``"cycle"`` (x, F(G(x)), y, G(F(y))) or ``"identity"``
        (x, G(x), y, F(y) or None).
      vgg_layers: for VGG losses, the default ``layers``.
      target: whether it compares with the paired target (not on unpaired data).
      disc: for adversarial types, the discriminator a term means unless it names one.
    """

    fn: object
    needs: str = "pixels"
    vgg_layers: tuple = ()
    target: bool = True
    disc: str = ""

    @property
    def uses_vgg(self) -> bool:
        return self.needs in ("vgg", "consistency_vgg")


LOSS_TYPES = {
    "l1": LossType(F.l1),
    "l2": LossType(F.l2),
    "color": LossType(F.color),
    "l1_sum": LossType(F.l1_sum),
    "tv": LossType(F.total_variation, target=False),
    "yuv_l1": LossType(F.yuv_l1),
    "ssim": LossType(F.ssim),
    "ms_ssim": LossType(F.ms_ssim),
    "ms_ssim_gray": LossType(F.ms_ssim_gray),
    "content": LossType(F.content, "vgg", ("relu5_4",)),
    "vgg_multi": LossType(F.content, "vgg", ("relu1_2", "relu3_4", "relu5_4")),
    "gram": LossType(F.gram_texture, "vgg", ("relu1_2", "relu2_2", "relu3_4")),
    "contextual": LossType(F.contextual, "vgg", ("relu4_2",)),
    # DPED's texture term: adversarial through the discriminator named "texture"
    "texture": LossType(None, "adversarial", target=False, disc="texture"),
    # any discriminator of the card: {"type": "gan", "weight": w, "disc": NAME}
    "gan": LossType(None, "adversarial", target=False),
    # WESPE's content consistency between x and F(G(x)): VGG features, or plain L1
    "consistency": LossType(F.content, "consistency_vgg", ("relu5_4",), target=False),
    "consistency_l1": LossType(F.l1, "consistency", target=False),
    # DPE's cycle (constant) and identity (source data) terms, MSE both ways
    "cycle": LossType(F.cycle_mse, "cycle", target=False),
    "identity": LossType(F.identity_mse, "identity", target=False),
}


@dataclasses.dataclass(frozen=True)
class LossTerm:
    """One weighted term of a recipe.

    Attributes:
      type: a key of :data:`LOSS_TYPES`.
      weight: its weight in the total.
      kwargs: extra arguments of the loss function (e.g. ``layers`` for VGG terms, kept as
        a list, the form the run's ``config.json`` gives back).
    """

    type: str
    weight: float
    kwargs: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        # tuples as lists: the recipe equals itself after a round trip through config.json
        object.__setattr__(self, "kwargs", {k: list(v) if isinstance(v, tuple) else v for k, v in self.kwargs.items()})
        if self.type not in LOSS_TYPES:
            raise UnknownNameError("loss", self.type, LOSS_TYPES)
        if self.needs == "adversarial" and not self.disc:
            raise UserError(f"loss term {self.type!r} needs the discriminator it goes through: {{'type': 'gan', 'disc': NAME}}")
        fn = LOSS_TYPES[self.type].fn
        if fn is not None:  # adversarial terms' arguments are checked against their GAN loss by the card
            import inspect

            taken = [p.name for p in inspect.signature(fn).parameters.values() if p.default is not p.empty]
            unknown = sorted(set(self.fn_kwargs) - set(taken))
            if unknown:
                raise UserError(f"loss term {self.type!r}: unknown argument(s) {', '.join(unknown)}; it takes: {', '.join(taken) or 'none'}")
        if LOSS_TYPES[self.type].uses_vgg and "layers" in self.kwargs:
            from mobile_enhance.losses.vgg import LAYERS

            layers = self.kwargs["layers"]
            if isinstance(layers, str) or not layers or any(name not in LAYERS for name in layers):
                raise UserError(f"loss term {self.type!r}: VGG-19 layers must be a non-empty list of {', '.join(LAYERS)}; got {layers!r}")
        patch = self.kwargs.get("patch")
        if patch is not None and (isinstance(patch, bool) or not isinstance(patch, int) or patch < 1):
            raise UserError(f"loss term {self.type!r}: patch must be a positive whole number of feature pixels (or None), got {patch!r}")

    @property
    def needs(self) -> str:
        return LOSS_TYPES[self.type].needs

    @property
    def disc(self) -> str:
        """The discriminator an adversarial term goes through ("" for other terms)."""
        return str(self.kwargs.get("disc", LOSS_TYPES[self.type].disc)) if self.needs == "adversarial" else ""

    @property
    def label(self) -> str:
        """Its name in logs and summaries: the type, or ``gan_<disc>`` for generic GAN terms."""
        return f"gan_{self.disc}" if self.type == "gan" else self.type

    @property
    def needs_inverse(self) -> bool:
        return self.needs in ("consistency", "consistency_vgg", "cycle")

    @property
    def uses_target(self) -> bool:
        return LOSS_TYPES[self.type].target

    @property
    def fn_kwargs(self) -> dict:
        """Arguments of the loss function: the term's kwargs less ``disc``."""
        return {k: v for k, v in self.kwargs.items() if k != "disc"}

    def vgg_layers(self) -> tuple:
        return tuple(self.kwargs.get("layers", LOSS_TYPES[self.type].vgg_layers))


def T(type_, weight, **kwargs) -> LossTerm:  # noqa: N802 - reads like a table row
    """One recipe term: ``T("content", 10)``, ``T("gan", 5e-3, disc="color")``."""
    return LossTerm(type_, float(weight), kwargs)


#: Recipes that belong to no paper: ``--losses=NAME`` for any model whose card can compute
#: them. A paper's own recipe is on its card (``--losses=paper``, the default).
RECIPES = {
    # No VGG, no discriminator: trains anywhere, quickly.
    "pixel": (T("l1", 1.0), T("ms_ssim", 0.2), T("tv", 0.1)),
    # DPED's recipe without the VGG content term (when no VGG weights are available):
    # needs a card with DPED's "texture" discriminator.
    "dped_novgg": (T("l1_sum", 0.5, scale=0.1), T("color", 0.5), T("texture", 1), T("tv", 2000)),
}


def parse_losses(spec: str, card=None, stage: str = "") -> tuple[LossTerm, ...]:
    """A recipe name (``card``'s own first, then :data:`RECIPES`; ``paper`` is the recipe of
    the card's stage ``stage``), or ``type:weight[,type:weight...]``; zero weights are dropped."""
    spec = str(spec).strip()
    if ":" not in spec:
        if card is not None and spec == card.name:  # the model's own name: its paper's recipe
            spec = "paper"
        own = card.recipe(spec, stage) if card is not None else None
        if own is not None:
            return own
        if spec not in RECIPES:
            known = {**RECIPES, **({"paper": 1, **card.recipes} if card is not None else {})}
            raise UnknownNameError("loss recipe", spec, known)
        return RECIPES[spec]
    terms = []
    for part in spec.split(","):
        name, _, weight = part.strip().partition(":")
        name, at, disc = name.partition("@")
        try:
            value = float(weight)
        except ValueError:
            raise UserError(f"loss term {part!r}: weight {weight!r} is not a number (form: type:weight or gan@DISC:weight)") from None
        if value:
            terms.append(LossTerm(name, value, {"disc": disc} if at else {}))
    if not terms:
        raise UserError(f"loss recipe {spec!r} has no term with a non-zero weight")
    return tuple(terms)


def recipe_to_json(terms) -> list[dict]:
    return [{"type": t.type, "weight": t.weight, **t.kwargs} for t in terms]


def recipe_from_json(rows) -> tuple[LossTerm, ...]:
    return tuple(LossTerm(r["type"], float(r["weight"]), {k: v for k, v in r.items() if k not in ("type", "weight")}) for r in rows)


__all__ = ["LOSS_TYPES", "RECIPES", "LossTerm", "T", "parse_losses", "recipe_from_json", "recipe_to_json"]
