"""Benchmark reports: JSON (everything), Markdown (tables) and a PNG bar chart drawn with PIL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from PIL import Image, ImageDraw, ImageFont

# (header, key, format) of the latency table; a column whose values are all missing is dropped.
LATENCY_COLUMNS = (
    ("model", "model", "{}"),
    ("quant", "quant", "{}"),
    ("size", "size_label", "{}"),
    ("backend", "backend", "{}"),
    ("runtime", "runtime", "{}"),
    ("threads", "threads", "{}"),
    ("init ms", "init_ms", "{:.1f}"),
    ("first ms", "first_ms", "{:.2f}"),
    ("median ms", "median_ms", "{:.2f}"),
    ("p90 ms", "p90_ms", "{:.2f}"),
    ("min ms", "min_ms", "{:.2f}"),
    ("mean ms", "mean_ms", "{:.2f}"),
    ("std ms", "std_ms", "{:.2f}"),
    ("runs", "runs", "{}"),
    ("peak RSS MB", "peak_rss_mb", "{:.0f}"),
    ("RSS added MB", "rss_delta_mb", "{:.1f}"),
    ("phone mem MB (init/overall)", "phone_memory", "{}"),
    ("GMACs", "gmacs", "{:.3f}"),
    ("GFLOP/s", "achieved_gflops", "{:.1f}"),
    ("matmul GFLOP/s", "ceiling_gflops", "{:.1f}"),
    ("% of matmul", "fraction_of_ceiling", "{:.0%}"),
    ("SRCNN time / time", "speedup_vs_srcnn", "{:.2f}"),
)

E2E_COLUMNS = (
    ("model", "model", "{}"),
    ("threads", "threads", "{}"),
    ("photo", "photo_name", "{}"),
    ("photo HxW", "photo_size_label", "{}"),
    ("run at", "size_label", "{}"),
    ("windows", "windows", "{}"),
    ("decode", "decode_median_ms", "{:.2f}"),
    ("preprocess", "preprocess_median_ms", "{:.2f}"),
    ("infer", "infer_median_ms", "{:.2f}"),
    ("postprocess", "postprocess_median_ms", "{:.2f}"),
    ("encode", "encode_median_ms", "{:.2f}"),
    ("total median ms", "total_median_ms", "{:.2f}"),
    ("total p90 ms", "total_p90_ms", "{:.2f}"),
    ("runs", "total_runs", "{}"),
)


def _cell(value, fmt: str) -> str:
    if value is None:
        return "—"
    if isinstance(value, (list, tuple)):
        return "x".join(str(v) for v in value)
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def markdown_table(rows: Sequence[dict], columns=LATENCY_COLUMNS) -> str:
    """A Markdown table of ``rows`` over the ``columns`` that at least one row fills."""
    used = [c for c in columns if any(r.get(c[1]) is not None for r in rows)]
    if not rows or not used:
        return "(none)"
    lines = ["| " + " | ".join(h for h, _, _ in used) + " |", "|" + "|".join("---" for _ in used) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(_cell(r.get(k), f) for _, k, f in used) + " |")
    return "\n".join(lines)


def to_markdown(report: dict) -> str:
    """The whole report as Markdown: context, latency table, end-to-end, ceiling, PIRM, gaps."""
    m = report.get("machine", {})
    out = [f"# {report.get('title', 'Latency benchmark')}", ""]
    out.append(
        f"Measured {report.get('created', '')} on {m.get('cpu', '?')} ({m.get('logical_cpus', '?')} logical CPUs, "
        f"{m.get('usable_cpus', '?')} usable by this process; load average {m.get('load_before', '?')} before, "
        f"{m.get('load_after', '?')} after), {m.get('platform', '')}; ai-edge-litert {m.get('litert', '?')}, "
        f"TensorFlow {m.get('tensorflow', '?')}, numpy {m.get('numpy', '?')}."
    )
    for note in report.get("notes", []):
        out.append(f"- {note}")
    out += ["", "## Inference latency", "", markdown_table(report.get("rows", [])), ""]
    if report.get("end_to_end"):
        out += ["## End to end on a photo (medians per stage, ms)", "", markdown_table(report["end_to_end"], E2E_COLUMNS), ""]
    if report.get("ceiling"):
        out += ["## Float32 matrix-multiply ceiling (same run)", ""]
        for c in report["ceiling"]:
            parts = []
            for lib, name in (("numpy", f"numpy/{c.get('blas') or '?'}"), ("tensorflow", "TensorFlow")):
                if c.get(f"{lib}_gflops") is not None:
                    parts.append(f"{name} {c[f'{lib}_gflops']:.1f} (CPU time/wall {c[f'{lib}_cpu_per_wall']:.2f})")
            out.append(
                f"- {c['threads']} thread(s): {c['gflops']:.1f} GFLOP/s, the best of {'; '.join(parts)}; "
                f"{c['n']}x{c['n']} float32, best of {c['repeats']}"
            )
        out.append("")
    if report.get("pirm"):
        out += ["## PIRM 2018 Track B score", ""]
        p = report["pirm"]
        out.append(
            f"PSNR {p['psnr']:.2f} dB, MS-SSIM {p['ms_ssim']:.4f} ({p['quality_source']}); SRCNN baseline {p['time_baseline_ms']:.2f} ms, "
            f"model {p['time_solution_ms']:.2f} ms ({p['config']}); speed-up {p['speedup']:.2f} (capped at 4: {p['speed_term']:.2f})."
        )
        out.append("")
        out.append("| score | (α, β, γ) | total |")
        out.append("|---|---|---|")
        for key, weights in p["weights"].items():
            out.append(f"| {key} | {tuple(weights)} | {p[key]:.2f} |")
        out.append("")
    if report.get("pirm_track_a"):
        t = report["pirm_track_a"]
        out += ["## PIRM 2018 Track A time (super-resolution)", ""]
        out.append(f"{t['ms']:.2f} ms to produce a {t['output_size'][1]}x{t['output_size'][0]} output from a "
                   f"{t['input_size'][1]}x{t['input_size'][0]} input (x{t['upscale']}; {t['how']}; {t['config']}).")
        out.append("")
    if report.get("unavailable"):
        out += ["## Not measured", ""]
        out += [f"- {u['backend']}: {u['reason']}" for u in report["unavailable"]]
        out.append("")
    return "\n".join(out)


# ----------------------------------------------------------------------------- PNG

BAR_COLOR = (52, 101, 164)
WHISKER_COLOR = (20, 20, 20)
PANEL_WIDTH = 640


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType sizing
        return ImageFont.load_default()


def bar_length(value: float, vmax: float, width: int) -> int:
    """Pixels of a bar for ``value`` on a linear axis whose full ``width`` is ``vmax``."""
    return 0 if vmax <= 0 else int(round(width * max(value, 0.0) / vmax))


def draw_bars(panels: Sequence[tuple[str, Sequence[dict]]], unit: str = "ms") -> Image.Image:
    """Horizontal bars (median) with min–p90 whiskers, one linear-axis panel per group.

    Args:
      panels: ``[(title, [{"label", "median", "low", "high"}, ...]), ...]``; ``low`` and
        ``high`` may be ``None``.
    """
    font, small = _font(14), _font(11)
    label_w, row_h, top, pad = 300, 22, 30, 16
    height = sum(top + row_h * max(1, len(rows)) + 34 for _, rows in panels) + pad
    image = Image.new("RGB", (label_w + PANEL_WIDTH + 90, height), "white")
    draw = ImageDraw.Draw(image)
    y = pad // 2
    for title, rows in panels:
        draw.text((8, y), title, fill="black", font=font)
        y += top
        vmax = max([max(r["median"], r.get("high") or 0.0) for r in rows] or [1.0]) * 1.05
        x0 = label_w
        for r in rows:
            draw.text((8, y + 4), r["label"][:44], fill="black", font=small)
            length = bar_length(r["median"], vmax, PANEL_WIDTH)
            draw.rectangle([x0, y + 3, x0 + max(length, 1), y + row_h - 4], fill=BAR_COLOR)
            if r.get("low") is not None and r.get("high") is not None:
                lo, hi = x0 + bar_length(r["low"], vmax, PANEL_WIDTH), x0 + bar_length(r["high"], vmax, PANEL_WIDTH)
                mid = y + row_h // 2
                draw.line([lo, mid, hi, mid], fill=WHISKER_COLOR, width=1)
                draw.line([lo, mid - 4, lo, mid + 4], fill=WHISKER_COLOR, width=1)
                draw.line([hi, mid - 4, hi, mid + 4], fill=WHISKER_COLOR, width=1)
            right = max(length, bar_length(r.get("high") or 0.0, vmax, PANEL_WIDTH))
            draw.text((x0 + right + 6, y + 4), f"{r['median']:.3g}", fill="black", font=small)
            y += row_h
        draw.line([x0, y + 2, x0 + PANEL_WIDTH, y + 2], fill="black")
        for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
            x = x0 + int(PANEL_WIDTH * frac)
            draw.line([x, y + 2, x, y + 6], fill="black")
            draw.text((x - 10, y + 8), f"{vmax * frac:.3g}", fill="black", font=small)
        draw.text((x0 + PANEL_WIDTH + 12, y + 8), unit, fill="black", font=small)
        y += 34
    return image


def rows_to_panels(rows: Sequence[dict]) -> list[tuple[str, list[dict]]]:
    """Group measured rows by input size into chart panels (median, min and p90 in ms)."""
    panels: dict[str, list[dict]] = {}
    for r in rows:
        if r.get("median_ms") is None and r.get("mean_ms") is None:
            continue
        median = r.get("median_ms") if r.get("median_ms") is not None else r["mean_ms"]
        # the two TensorFlow timings of one model differ only in how it is called
        runtime = str(r.get("runtime") or "")
        call = next((c for c in ("predict", "tf.function") if c in runtime and "TensorFlow" in runtime), None)
        label = " ".join(str(p) for p in (r.get("model"), r.get("quant"), r.get("backend"), call, f"x{r.get('threads')}") if p)
        key = f"inference latency at {r.get('size_label', '?')} (bar: median; whisker: min to p90)"
        panels.setdefault(key, []).append({"label": label, "median": median, "low": r.get("min_ms"), "high": r.get("p90_ms")})
    return list(panels.items())


def write_reports(report: dict, out_dir: str | Path, stem: str = "latency") -> dict:
    """Write ``STEM.json``, ``STEM.md`` and ``STEM.png`` into ``out_dir``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / f"{stem}.json", "md": out / f"{stem}.md", "png": out / f"{stem}.png"}
    paths["json"].write_text(json.dumps(report, indent=2, default=str) + "\n")
    paths["md"].write_text(to_markdown(report) + "\n")
    panels = rows_to_panels(report.get("rows", []))
    if panels:
        draw_bars(panels).save(paths["png"])
    else:
        del paths["png"]
    return {k: str(v) for k, v in paths.items()}
