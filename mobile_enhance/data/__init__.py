"""Data sources for training, named at the user boundary by ``KIND:PATH``.

``--data=dped:PATH`` (with ``phone``), ``pairs:IN,TARGET``, ``synthetic:PATH``,
``blur:PATH`` (blurred, noisy crops of sharp photos: :mod:`mobile_enhance.data.blur`),
``sr:PATH``, ``unpaired:A,B``, and for export only ``photos:PATH`` (crops without targets).
See :mod:`mobile_enhance.data.sources`.
"""

from __future__ import annotations

from mobile_enhance.data.sources import (
    PHONES,
    BlurSource,
    DataError,
    PhotoOnlySource,
    Source,
    SRSource,
    SyntheticSource,
    UnpairedSource,
    dped_source,
    pairs_source,
)
from mobile_enhance.errors import UnknownNameError

SOURCE_KINDS = ("dped", "pairs", "synthetic", "blur", "sr", "unpaired", "photos")

#: What each source yields, in the terms of a model card's ``trains_on``.
DATA_KINDS = {"dped": "paired", "pairs": "paired", "synthetic": "paired", "blur": "paired", "sr": "sr", "unpaired": "unpaired", "photos": "photos"}


def parse_data_spec(spec: str) -> tuple[str, list[str]]:
    """``"pairs:IN,TARGET"`` -> ``("pairs", ["IN", "TARGET"])``."""
    kind, sep, rest = str(spec).partition(":")
    if kind not in SOURCE_KINDS:
        raise UnknownNameError("data source", kind, SOURCE_KINDS)
    paths = [p for p in rest.split(",") if p] if sep else []
    wanted = 2 if kind in ("pairs", "unpaired") else 1
    if len(paths) != wanted:
        form = {"pairs": "pairs:INPUT_DIR,TARGET_DIR", "unpaired": "unpaired:DIR_A,DIR_B"}.get(kind, f"{kind}:PATH")
        raise DataError(f"data {spec!r}: expected {form}")
    return kind, paths


def data_kind(spec: str) -> str:
    """The kind of data ``spec`` yields: ``paired``, ``unpaired`` or ``sr``."""
    return DATA_KINDS[parse_data_spec(spec)[0]]


def make_source(
    spec: str, patch_size: int, seed: int = 0, phone: str = "iphone", augment: bool = True, val_fraction: float = 0.15, upscale: int = 1
) -> Source:
    """Build the source named by ``spec`` (see the module docstring).

    ``patch_size`` is the target patch side. ``upscale`` is the model's: an ``sr`` source
    yields inputs ``upscale`` times smaller than their targets, or, for a same-size model
    (1), inputs x4 down and bicubic back up.
    """
    kind, paths = parse_data_spec(spec)
    if kind == "dped":
        return dped_source(paths[0], phone, patch_size, seed, augment)
    if kind == "pairs":
        return pairs_source(paths[0], paths[1], patch_size, seed, augment, val_fraction)
    if kind == "synthetic":
        return SyntheticSource(paths[0], patch_size, seed, augment, val_fraction)
    if kind == "blur":
        return BlurSource(paths[0], patch_size, seed, augment, val_fraction)
    if kind == "sr":
        return SRSource(paths[0], patch_size, seed, augment, val_fraction, scale=upscale if upscale > 1 else 4, upsample=upscale == 1)
    if kind == "photos":
        return PhotoOnlySource(paths[0], patch_size, seed, augment, val_fraction)
    return UnpairedSource(paths[0], paths[1], patch_size, seed, augment)


__all__ = ["DATA_KINDS", "PHONES", "SOURCE_KINDS", "DataError", "Source", "data_kind", "make_source", "parse_data_spec"]
