"""``mobile-enhance models``: every model with its paper, parameters and cost."""

from __future__ import annotations

import json

from absl import flags

NAME = "models"
HELP = "List the models' cards: paper, parameters and GMACs (from the built graphs), upscale, data, discriminators."


def define_flags(fv: flags.FlagValues) -> None:
    flags.DEFINE_string("size", "720x1280", "Image size HxW at which GMACs are counted.", flag_values=fv)
    flags.DEFINE_enum("format", "table", ["table", "json", "markdown"], "Output format.", flag_values=fv)


def main(fv: flags.FlagValues, args: list[str]) -> int:
    from mobile_enhance.api import describe_models, parse_size

    height, width = parse_size(fv["size"].value)
    rows = describe_models(height, width)
    if fv["format"].value == "json":
        print(json.dumps(rows, indent=2))
        return 0
    header = ["model", "paper", "parameters", f"GMACs @ {width}x{height}", "size multiple", "upscale", "trains on", "discriminators"]
    padded = f"{height}x{width}"
    table = [
        [
            r["name"],
            r["paper"],
            f"{r['parameters']:,}",
            f"{r['gmacs']:.2f}" + ("†" if r["upscale"] > 1 else "" if r["counted_at"] == padded else "*"),
            str(r["size_multiple"]),
            str(r["upscale"]),
            ", ".join(r["trains_on"]),
            ", ".join(f"{d['name']} ({d['sees']}, {d['gan_loss']})" for d in r["discriminators"]) or "-",
        ]
        for r in rows
    ]
    notes = [f"* counted at the padded size the model runs at ({r['counted_at']})" for r in rows
             if r["upscale"] == 1 and r["counted_at"] != padded]
    ups = sorted({(r["upscale"], r["counted_at"]) for r in rows if r["upscale"] > 1})
    notes += [f"† x{s}: counted for a {width}x{height} output, from a {at.split('x')[1]}x{at.split('x')[0]} input" for s, at in ups]
    if fv["format"].value == "markdown":
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join("---" for _ in header) + "|")
        for row in table:
            print("| " + " | ".join(row) + " |")
        for note in notes:
            print(f"\n{note}")
        return 0
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
    for row in table:
        print("  ".join(c.ljust(w) if i < 2 or i > 5 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip())
    for note in notes:
        print(note)
    return 0
