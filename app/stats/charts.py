"""Charts drawn on the server as SVG with matplotlib (Agg, text as paths: no font is fetched).

The SVG is cleaned for a strict Content-Security-Policy: no <style> element, no style=""
attribute (each becomes presentation attributes), no metadata. Drawing takes tens of milliseconds:
routes call these functions in a worker thread.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
matplotlib.rcParams["svg.hashsalt"] = "appeals"  # stable ids: the same data, the same bytes
matplotlib.rcParams["svg.fonttype"] = "path"

from matplotlib.figure import Figure  # noqa: E402  (after choosing the backend)

from app.stats.figures import Counts  # noqa: E402

COLOURS = {
    "queued": "#9e9e9e",
    "sending": "#5c6bc0",
    "sent": "#2e7d32",
    "deferred": "#f9a825",
    "failed": "#c62828",
    "cancelled": "#6d4c41",
    "held": "#8e24aa",
}
WIDTH, HEIGHT = 8.0, 3.6  # inches; 576 x 259 pt
_STYLE = re.compile(r'\sstyle="([^"]*)"')
_DROP = re.compile(r"<metadata>.*?</metadata>|<style[^>]*>.*?</style>|<!--.*?-->", re.S)


def _presentation(match: re.Match[str]) -> str:
    attributes = []
    for declaration in match.group(1).split(";"):
        name, _, value = declaration.partition(":")
        if name.strip() and value.strip():
            attributes.append(f'{name.strip()}="{value.strip()}"')
    return " " + " ".join(attributes) if attributes else ""


def clean_svg(svg: str) -> str:
    """matplotlib's SVG without <style>, style="", comments or metadata."""
    svg = _DROP.sub("", svg)
    svg = _STYLE.sub(_presentation, svg)
    # The dropped stylesheet set these for every element; attributes on the root inherit.
    return svg.replace("<svg ", '<svg stroke-linejoin="round" stroke-linecap="butt" ', 1)


def _render(figure: Figure) -> bytes:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    return clean_svg(buffer.getvalue()).encode()


def _empty(ax: object, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", color="#555555")  # type: ignore[attr-defined]
    ax.set_axis_off()  # type: ignore[attr-defined]


def letters_per_day(
    rows: Sequence[Counts], *, title: str, labels: dict[str, str], empty: str
) -> bytes:
    """Stacked bars: letters created each UTC day, by status."""
    figure = Figure(figsize=(WIDTH, HEIGHT), layout="constrained")
    ax = figure.add_subplot()
    ax.set_title(title, loc="left")
    if not rows:
        _empty(ax, empty)
        return _render(figure)
    days = [r.key for r in rows]
    positions = list(range(len(days)))
    bottom = [0] * len(days)
    for status, colour in COLOURS.items():
        values = [r.counts.get(status, 0) for r in rows]
        if any(values):
            ax.bar(positions, values, bottom=bottom, color=colour, label=labels[status], width=0.8)
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    step = max(1, len(days) // 10)
    ax.set_xticks(positions[::step], [d[5:] for d in days[::step]])
    ax.set_xlabel("UTC")
    figure.legend(loc="outside lower center", fontsize="small", ncols=7, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return _render(figure)


def letters_per_region(
    rows: Sequence[Counts], *, title: str, labels: dict[str, str], empty: str, limit: int = 20
) -> bytes:
    """Horizontal bars: the regions with most letters, sent and the rest."""
    top = sorted(rows, key=lambda r: (-r.total, r.key))[:limit]
    figure = Figure(figsize=(WIDTH, max(HEIGHT, 0.9 + 0.28 * len(top))), layout="constrained")
    ax = figure.add_subplot()
    ax.set_title(title, loc="left")
    if not top:
        _empty(ax, empty)
        return _render(figure)
    names = [r.label for r in reversed(top)]
    sent = [r.counts.get("sent", 0) for r in reversed(top)]
    other = [r.total - r.counts.get("sent", 0) for r in reversed(top)]
    ax.barh(names, sent, color=COLOURS["sent"], label=labels["sent"])
    ax.barh(names, other, left=sent, color=COLOURS["queued"], label=labels["other"])
    figure.legend(loc="outside lower center", fontsize="small", ncols=2, frameon=False)
    ax.tick_params(axis="y", labelsize="small")
    ax.spines[["top", "right"]].set_visible(False)
    return _render(figure)


def delivery_health(
    rows: Sequence[Counts], *, title: str, labels: dict[str, str], empty: str, limit: int = 15
) -> bytes:
    """Stacked 100 % bars per recipient domain: shares of sent, deferred and failed letters."""
    top = [r for r in rows if r.total][:limit]
    figure = Figure(figsize=(WIDTH, max(HEIGHT, 0.9 + 0.28 * len(top))), layout="constrained")
    ax = figure.add_subplot()
    ax.set_title(title, loc="left")
    if not top:
        _empty(ax, empty)
        return _render(figure)
    names = [r.key for r in reversed(top)]
    left = [0.0] * len(top)
    for status in ("sent", "deferred", "failed"):
        shares = [100 * r.rate(status) for r in reversed(top)]
        ax.barh(names, shares, left=left, color=COLOURS[status], label=labels[status])
        left = [a + b for a, b in zip(left, shares, strict=True)]
    ax.set_xlim(0, 100)
    ax.set_xlabel("%")
    figure.legend(loc="outside lower center", fontsize="small", ncols=3, frameon=False)
    ax.tick_params(axis="y", labelsize="small")
    ax.spines[["top", "right"]].set_visible(False)
    return _render(figure)
