"""Enhancement models: one file per architecture, each ending in its card.

The registry lists the cards by hand (no folder scanning): adding a paper means one new
model file, its card, its test, and one line here. ``build_model(name, ...)`` and
``get_card(name)`` are where a model name from the user arrives; everything inside the
package calls the builder functions directly.

Every generator maps ``(N, H, W, 3)`` float32 in [0, 1] to ``(N, sH, sW, 3)`` float32 in
[0, 1] with ``s = card.upscale``; H and W must be multiples of ``card.size_multiple``.
"""

from __future__ import annotations

from mobile_enhance.errors import InputSizeError, UnknownNameError
from mobile_enhance.models import dped, enhancenet, fast_dped, muxdemux, nonbn_resg, rsgunet, srcnn, srresnet
from mobile_enhance.models.card import CardError, Discriminator, ModelCard, Preset, Stage
from mobile_enhance.models.layers import custom_objects

#: Every model's card, by registry name.
CARDS: dict[str, ModelCard] = {card.name: card for card in (dped.CARD, fast_dped.CARD, rsgunet.CARD, muxdemux.CARD, srcnn.CARD,
                                                             srresnet.CARD, srresnet.SRGAN_CARD, enhancenet.CARD,
                                                             nonbn_resg.CARD)}

#: The same mapping under its older name.
MODELS = CARDS


def get_card(name: str) -> ModelCard:
    """The card of model ``name``; an unknown name raises an error listing the known ones."""
    try:
        return CARDS[name]
    except KeyError:
        raise UnknownNameError("model", name, CARDS) from None


get_model_info = get_card


def check_input_size(name: str, height, width) -> None:
    """Raise :class:`InputSizeError` unless ``height x width`` fits model ``name``'s strides."""
    multiple = get_card(name).size_multiple
    bad = [d for d in (height, width) if d is not None and (int(d) <= 0 or int(d) % multiple)]
    if bad:
        def near(d):
            lo = max(multiple, int(d) // multiple * multiple)
            return f"{lo} or {lo + multiple}" if lo != d else str(lo)

        raise InputSizeError(
            f"model {name!r} needs height and width that are multiples of {multiple}; "
            f"got {height}x{width} (use {near(height)} x {near(width)}, or pad/crop the image)"
        )


def padded_size(name: str, height: int, width: int) -> tuple[int, int]:
    """The smallest size >= ``height x width`` that model ``name`` takes (pad to it)."""
    m = get_card(name).size_multiple
    return -(-int(height) // m) * m, -(-int(width) // m) * m


def build_model(name: str, input_shape=(None, None, 3), **kwargs):
    """Build generator ``name`` as a functional tf_keras model.

    Args:
      name: one of :data:`CARDS`.
      input_shape: ``(H, W, 3)``; ``None`` dimensions accept any multiple of the stride.
      **kwargs: the architecture's own arguments (see its builder).
    """
    card = get_card(name)
    check_input_size(name, input_shape[0], input_shape[1])
    return card.builder(input_shape=tuple(input_shape), **kwargs)


__all__ = [
    "CARDS", "CardError", "Discriminator", "MODELS", "ModelCard", "Preset", "Stage", "build_model", "check_input_size",
    "custom_objects", "get_card", "get_model_info", "padded_size",
]
