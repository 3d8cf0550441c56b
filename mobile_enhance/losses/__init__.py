"""Losses, declared as recipes of ``{type, weight, **kwargs}`` terms.

A paper's recipe reads like the paper: ``RECIPES["dped"]`` is content 10, colour 0.5,
texture 1, total variation 2000. ``parse_losses`` is the user boundary: a recipe name,
or ``type:weight[,type:weight...]`` to build one, unknown types listed.
"""

from __future__ import annotations

import dataclasses

from mobile_enhance.errors import UnknownNameError, UserError
from mobile_enhance.losses import functions as F


@dataclasses.dataclass(frozen=True)
class LossType:
    """How a loss type is computed.

    Attributes:
      fn: the function in :mod:`mobile_enhance.losses.functions`.
      needs: ``"pixels"`` (enhanced, target), ``"vgg"`` (VGG feature dicts) or
        ``"adversarial"`` (discriminator probabilities of the enhanced images).
      vgg_layers: for ``"vgg"`` losses, the default ``layers``.
    """

    fn: object
    needs: str = "pixels"
    vgg_layers: tuple = ()


LOSS_TYPES = {
    "l1": LossType(F.l1),
    "l2": LossType(F.l2),
    "color": LossType(F.color),
    "l1_sum": LossType(F.l1_sum),
    "tv": LossType(F.total_variation),
    "yuv_l1": LossType(F.yuv_l1),
    "ssim": LossType(F.ssim),
    "ms_ssim": LossType(F.ms_ssim),
    "ms_ssim_gray": LossType(F.ms_ssim_gray),
    "content": LossType(F.content, "vgg", ("relu5_4",)),
    "vgg_multi": LossType(F.content, "vgg", ("relu1_2", "relu3_4", "relu5_4")),
    "gram": LossType(F.gram_texture, "vgg", ("relu1_2", "relu2_2", "relu3_4")),
    "contextual": LossType(F.contextual, "vgg", ("relu4_2",)),
    "texture": LossType(F.texture_generator, "adversarial"),
}


@dataclasses.dataclass(frozen=True)
class LossTerm:
    """One weighted term of a recipe.

    Attributes:
      type: a key of :data:`LOSS_TYPES`.
      weight: its weight in the total.
      kwargs: extra arguments of the loss function (e.g. ``layers`` for VGG terms).
    """

    type: str
    weight: float
    kwargs: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.type not in LOSS_TYPES:
            raise UnknownNameError("loss", self.type, LOSS_TYPES)

    @property
    def needs(self) -> str:
        return LOSS_TYPES[self.type].needs

    def vgg_layers(self) -> tuple:
        return tuple(self.kwargs.get("layers", LOSS_TYPES[self.type].vgg_layers))


def T(type_, weight, **kwargs) -> LossTerm:  # noqa: N802 - reads like a table row
    return LossTerm(type_, float(weight), kwargs)


#: Each model's paper recipe (weights as published in the authors' code), plus
#: recipes that need no VGG weights.
RECIPES = {
    # DPED (aiff22/DPED defaults): content 10, colour 0.5, texture 1, TV 2000.
    "dped": (T("content", 10), T("color", 0.5), T("texture", 1), T("tv", 2000)),
    # Fast Perceptual Image Enhancement trains with the DPED losses and weights.
    "fast_dped": (T("content", 10), T("color", 0.5), T("texture", 1), T("tv", 2000)),
    # RSGUNet (MTlab code): VGG relu1_2/3_4/5_4 0.001, texture 17.5, L1 colour 0.5,
    # TV 100, grayscale MS-SSIM 0.5 (the term is 1000 * (1 - MS-SSIM)).
    "rsgunet": (T("vgg_multi", 0.001), T("texture", 17.5), T("l1_sum", 0.5), T("tv", 100), T("ms_ssim_gray", 0.5)),
    # Mux/Demux: weighted L1 (YUV), contextual, adversarial. The paper's weights are not
    # public; these are ours, chosen so the terms start at comparable magnitudes.
    "muxdemux": (T("yuv_l1", 1.0), T("contextual", 0.1), T("texture", 0.01)),
    # SRCNN baseline: plain MSE, as in the SRCNN paper.
    "srcnn": (T("l2", 1.0),),
    # No VGG, no discriminator: trains anywhere, quickly.
    "pixel": (T("l1", 1.0), T("ms_ssim", 0.2), T("tv", 0.1)),
    # DPED without the VGG content term (when no VGG weights are available).
    "dped_novgg": (T("l1_sum", 0.5, scale=0.1), T("color", 0.5), T("texture", 1), T("tv", 2000)),
}


def parse_losses(spec: str) -> tuple[LossTerm, ...]:
    """A recipe name, or ``type:weight[,type:weight...]``; zero weights are dropped."""
    spec = str(spec).strip()
    if ":" not in spec:
        if spec not in RECIPES:
            raise UnknownNameError("loss recipe", spec, RECIPES)
        return RECIPES[spec]
    terms = []
    for part in spec.split(","):
        name, _, weight = part.strip().partition(":")
        try:
            value = float(weight)
        except ValueError:
            raise UserError(f"loss term {part!r}: weight {weight!r} is not a number (form: type:weight)") from None
        if value:
            terms.append(LossTerm(name, value))
    if not terms:
        raise UserError(f"loss recipe {spec!r} has no term with a non-zero weight")
    return tuple(terms)


def recipe_to_json(terms) -> list[dict]:
    return [{"type": t.type, "weight": t.weight, **t.kwargs} for t in terms]


def recipe_from_json(rows) -> tuple[LossTerm, ...]:
    return tuple(LossTerm(r["type"], float(r["weight"]), {k: v for k, v in r.items() if k not in ("type", "weight")}) for r in rows)


__all__ = ["LOSS_TYPES", "RECIPES", "LossTerm", "parse_losses", "recipe_from_json", "recipe_to_json"]
