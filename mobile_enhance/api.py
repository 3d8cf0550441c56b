"""The Python API behind the CLI: each subcommand calls one function here.

A notebook user calls the same functions with the same arguments.
"""

from __future__ import annotations

import re

from mobile_enhance.errors import UserError


def parse_size(text: str) -> tuple[int, int]:
    """``"720x1280"`` -> ``(720, 1280)`` (height x width)."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(text))
    if not match or 0 in (int(match[1]), int(match[2])):
        raise UserError(f"size {text!r} is not HxW with positive integers, e.g. 720x1280")
    return int(match[1]), int(match[2])


def describe_models(height: int = 720, width: int = 1280) -> list[dict]:
    """One dict per registered model: name, paper, parameters, GMACs at ``height x width``.

    Counts come from the built graphs (see :mod:`mobile_enhance.models.stats`). A model
    whose strides do not divide the size is counted at the padded size it would run at
    (``counted_at``), e.g. RSGUNet runs a 720x1280 image as 736x1280.
    """
    from mobile_enhance.models import MODELS, build_model, padded_size
    from mobile_enhance.models.stats import count_macs, count_params

    rows = []
    for name, info in MODELS.items():
        model = build_model(name)
        run_h, run_w = padded_size(name, height, width)
        rows.append(
            {
                "name": name,
                "paper": info.paper,
                "parameters": count_params(model),
                f"gmacs_{height}x{width}": count_macs(model, run_h, run_w) / 1e9,
                "counted_at": f"{run_h}x{run_w}",
                "size_multiple": info.size_multiple,
            }
        )
    return rows
