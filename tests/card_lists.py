"""Which registered cards a parametrized test runs over."""

from mobile_enhance.models import MODELS


def one_card_per_builder() -> list[str]:
    """The registry's names, less those whose card reuses an earlier card's builder (srgan's
    generator is srresnet's): the same graph is checked once."""
    first = {}
    for name, card in MODELS.items():
        first.setdefault(card.builder, name)
    return sorted(first.values())
