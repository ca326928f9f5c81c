"""Tiny inline SVG charts for the report: lines and bars, no scripts, no external references.

Inline ``<svg>`` in HTML5 needs no namespace attribute, so the report holds no URL at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
W, H = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 36

Series = Sequence[Sequence[float]]


def _nice(value: float) -> str:
    if abs(value) >= 1e6:
        return f"{value / 1e6:.1f}M"
    if abs(value) >= 1e4:
        return f"{value / 1e3:.0f}k"
    if float(value).is_integer():
        return f"{int(value)}"
    return f"{value:.2f}"


def _frame(x0: float, x1: float, y0: float, y1: float, x_label: str, y_label: str) -> list[str]:
    parts = [
        f'<rect x="{LEFT}" y="{TOP}" width="{W - LEFT - RIGHT}" height="{H - TOP - BOTTOM}" '
        'fill="#fff" stroke="#ccc"/>'
    ]
    for i in range(5):
        frac = i / 4
        y = TOP + (H - TOP - BOTTOM) * (1 - frac)
        x = LEFT + (W - LEFT - RIGHT) * frac
        parts.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">'
            f"{_nice(y0 + (y1 - y0) * frac)}</text>"
        )
        parts.append(
            f'<text x="{x:.1f}" y="{H - BOTTOM + 16}" text-anchor="middle" font-size="11">'
            f"{_nice(x0 + (x1 - x0) * frac)}</text>"
        )
    parts.append(
        f'<text x="{(LEFT + W - RIGHT) / 2}" y="{H - 4}" text-anchor="middle" font-size="11">'
        f"{escape(x_label)}</text>"
    )
    parts.append(
        f'<text x="12" y="{TOP + (H - TOP - BOTTOM) / 2}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 12 {TOP + (H - TOP - BOTTOM) / 2})">{escape(y_label)}</text>'
    )
    return parts


def _bounds(all_series: Sequence[Series], zero: bool) -> tuple[float, float, float, float]:
    xs = [p[0] for s in all_series for p in s]
    ys = [p[1] for s in all_series for p in s]
    if not xs:
        return 0.0, 1.0, 0.0, 1.0
    x0, x1 = min(xs), max(xs)
    y0, y1 = (min(0.0, min(ys)) if zero else min(ys)), max(ys)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y1 = y0 + 1
    return x0, x1, y0, y1


def _legend(names: Sequence[str]) -> str:
    items = "".join(
        f'<span style="color:{PALETTE[i % len(PALETTE)]}">&#9632;</span> {escape(n)} &nbsp; '
        for i, n in enumerate(names)
    )
    return f'<div class="legend">{items}</div>'


def line_chart(
    series: dict[str, Series], x_label: str = "hour", y_label: str = "", zero: bool = True, step: bool = False
) -> str:
    """One polyline per named series of ``[x, y]`` points."""
    x0, x1, y0, y1 = _bounds(list(series.values()), zero)
    sx = (W - LEFT - RIGHT) / (x1 - x0)
    sy = (H - TOP - BOTTOM) / (y1 - y0)
    parts = _frame(x0, x1, y0, y1, x_label, y_label)
    for i, (_, points) in enumerate(series.items()):
        coords: list[str] = []
        for x, y in points:
            px, py = LEFT + (x - x0) * sx, TOP + (y1 - y) * sy
            if step and coords:
                coords.append(f"{px:.1f},{coords[-1].split(',')[1]}")
            coords.append(f"{px:.1f},{py:.1f}")
        parts.append(
            f'<polyline fill="none" stroke="{PALETTE[i % len(PALETTE)]}" stroke-width="1.6" '
            f'points="{" ".join(coords)}"/>'
        )
    svg = f'<svg viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img">{"".join(parts)}</svg>'
    return svg + _legend(list(series))


def bar_chart(values: dict[str, float], y_label: str = "") -> str:
    """Vertical bars, one per label (refusals by code, decisions by policy...)."""
    if not values:
        return '<p class="empty">none</p>'
    names = list(values)
    top = max(max(values.values()), 1)
    x0, x1, y0, y1 = 0.0, float(len(names)), 0.0, float(top)
    parts = _frame(x0, x1, y0, y1, "", y_label)[:1]
    width = (W - LEFT - RIGHT) / len(names)
    for i, name in enumerate(names):
        height = (H - TOP - BOTTOM) * values[name] / top
        x = LEFT + i * width
        parts.append(
            f'<rect x="{x + width * 0.15:.1f}" y="{H - BOTTOM - height:.1f}" width="{width * 0.7:.1f}" '
            f'height="{height:.1f}" fill="{PALETTE[i % len(PALETTE)]}"><title>{escape(name)}: '
            f"{_nice(values[name])}</title></rect>"
        )
        parts.append(
            f'<text x="{x + width / 2:.1f}" y="{H - BOTTOM - height - 4:.1f}" font-size="11" '
            f'text-anchor="middle">{_nice(values[name])}</text>'
        )
        parts.append(
            f'<text x="{x + width / 2:.1f}" y="{H - BOTTOM + 14}" font-size="10" text-anchor="middle">'
            f"{escape(name[:28])}</text>"
        )
    return f'<svg viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img">{"".join(parts)}</svg>'
