"""Charts as inline SVG strings, drawn in Python: no chart library, nothing fetched."""

from __future__ import annotations

import math

import numpy as np
from markupsafe import Markup, escape

WIDTH, HEIGHT = 420, 240
WIDE, LEGEND = 880, 170  # wide cards span two columns; line charts keep a legend column
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 42
GREEN = "#76b900"
PALETTE = ("#76b900", "#00a3e0", "#f97316", "#a855f7", "#ef4444", "#14b8a6", "#eab308", "#6366f1",
           "#ec4899", "#84cc16", "#0ea5e9", "#f59e0b", "#8b5cf6", "#10b981", "#d946ef", "#64748b")


def fmt(value: float) -> str:
    """Short axis labels: 1.5k, 32k, 1.2M, 0.25."""
    magnitude = abs(value)
    if magnitude >= 1e9:
        return f"{value / 1e9:.3g}G"
    if magnitude >= 1e6:
        return f"{value / 1e6:.3g}M"
    if magnitude >= 1e4:
        return f"{value / 1e3:.3g}k"
    if magnitude >= 100 or value == int(value):
        return f"{value:.0f}"
    return f"{value:.3g}"


def _frame(x_lo, x_hi, y_lo, y_hi, x_label, y_label, log_x=False, x_ticks=True, width=WIDTH) -> tuple[list[str], callable, callable]:
    plot_w, plot_h = width - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    tx = (lambda v: math.log10(max(v, 1e-12))) if log_x else (lambda v: v)
    a, b = tx(x_lo), tx(x_hi)
    if b <= a:
        b = a + 1
    if y_hi <= y_lo:
        y_hi = y_lo + 1

    def sx(v: float) -> float:
        return LEFT + (tx(v) - a) / (b - a) * plot_w

    def sy(v: float) -> float:
        return TOP + plot_h - (v - y_lo) / (y_hi - y_lo) * plot_h

    parts = [f'<rect class="plot" x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}"/>']
    for i in range(5):
        yv = y_lo + (y_hi - y_lo) * i / 4
        y = sy(yv)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}"/>'
                     f'<text class="tick" x="{LEFT - 4}" y="{y + 3:.1f}" text-anchor="end">{fmt(yv)}</text>')
    ticks = ([10 ** k for k in range(math.floor(a), math.ceil(b) + 1) if a <= k <= b] if log_x
             else [x_lo + (x_hi - x_lo) * i / 4 for i in range(5)])
    for xv in ticks if x_ticks else ():
        x = sx(xv)
        parts.append(f'<text class="tick" x="{x:.1f}" y="{HEIGHT - BOTTOM + 14}" text-anchor="middle">{fmt(xv)}</text>')
    parts.append(f'<text class="axis" x="{LEFT + plot_w / 2}" y="{HEIGHT - 8}" text-anchor="middle">{escape(x_label)}</text>'
                 f'<text class="axis" transform="translate(12 {TOP + plot_h / 2}) rotate(-90)" text-anchor="middle">{escape(y_label)}</text>')
    return parts, sx, sy


def _svg(parts: list[str], label: str, width: int = WIDTH) -> Markup:
    return Markup(f'<svg viewBox="0 0 {width} {HEIGHT}" role="img" aria-label="{escape(label)}">'
                  + "".join(parts) + "</svg>")


def histogram(edges: np.ndarray, counts: np.ndarray, x_label: str, label: str) -> Markup:
    """Bars over equal-width bins, each with a hover title."""
    top = max(int(counts.max()) if counts.size else 0, 1)
    parts, sx, sy = _frame(float(edges[0]), float(edges[-1]), 0, top * 1.05, x_label, "count")
    for lo, hi, n in zip(edges[:-1], edges[1:], counts, strict=False):
        if n <= 0:
            continue
        x0, x1, y = sx(lo), sx(hi), sy(n)
        parts.append(f'<rect class="bar" x="{x0:.1f}" y="{y:.1f}" width="{max(x1 - x0 - 0.5, 0.8):.1f}" '
                     f'height="{sy(0) - y:.1f}"><title>{fmt(lo)} – {fmt(hi)}: {int(n):,}</title></rect>')
    return _svg(parts, label)


def lines(series: list[tuple[str, list[float], list[float]]], x_label: str, y_label: str,
          label: str, y_range: tuple[float, float] | None = None, log_x: bool = False,
          width: int = WIDE, legend: bool = True) -> Markup:
    """One polyline per named series, with a legend of distinct names and hover titles."""
    xs = [x for _, sx_, _ in series for x in sx_] or [0, 1]
    ys = [y for _, _, sy_ in series for y in sy_] or [0, 1]
    lo, hi = y_range if y_range else (min(0.0, min(ys)), max(ys) * 1.05 or 1)
    plot_width = width - LEGEND if legend else width
    parts, sx, sy = _frame(min(xs), max(xs), lo, hi, x_label, y_label, log_x, width=plot_width)
    for i, (name, x_values, y_values) in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        if legend:
            y = TOP + 4 + i * 12
            parts.append(f'<rect x="{plot_width + 4}" y="{y}" width="10" height="8" fill="{color}"/>'
                         f'<text class="tick" x="{plot_width + 18}" y="{y + 8}">{escape(name[:26])}</text>')
        points = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(x_values, y_values, strict=False))
        parts.append(f'<polyline class="line" stroke="{color}" points="{points}"><title>{escape(name)}</title></polyline>')
        for x, y in zip(x_values, y_values, strict=False):
            parts.append(f'<circle class="dot" fill="{color}" cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2">'
                         f'<title>{escape(name)}: {fmt(x)}, {fmt(y)}</title></circle>')
    return _svg(parts, label, width)


def heatmap(counts: np.ndarray, y_edges: np.ndarray, x_edges: np.ndarray, x_label: str,
            y_label: str, label: str, width: int = WIDE) -> Markup:
    """A 2-D histogram (rows: y bins, columns: x bins, log x) shaded by log count."""
    parts, sx, sy = _frame(float(x_edges[0]), float(x_edges[-1]), float(y_edges[0]), float(y_edges[-1]),
                           x_label, y_label, log_x=True, width=width)
    peak = math.log1p(max(int(counts.max()) if counts.size else 0, 1))
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            n = int(counts[i, j])
            if n == 0:
                continue
            x0, x1 = sx(x_edges[j]), sx(x_edges[j + 1])
            y0, y1 = sy(y_edges[i + 1]), sy(y_edges[i])
            shade = 0.15 + 0.85 * math.log1p(n) / peak
            parts.append(f'<rect class="cell" x="{x0:.1f}" y="{y0:.1f}" width="{x1 - x0:.1f}" height="{y1 - y0:.1f}" '
                         f'fill="{GREEN}" fill-opacity="{shade:.2f}"><title>{fmt(x_edges[j])}–{fmt(x_edges[j + 1])} tokens, '
                         f'hit {y_edges[i]:.2f}–{y_edges[i + 1]:.2f}: {n:,}</title></rect>')
    return _svg(parts, label, width)


def bars(named: list[tuple[str, float]], y_label: str, label: str, percent: bool = False) -> Markup:
    """Vertical bars for a few named values."""
    top = max([v for _, v in named] + [1e-9])
    parts, sx, sy = _frame(0, len(named), 0, top * 1.1, "", y_label, x_ticks=False)
    slot = (WIDTH - LEFT - RIGHT) / max(len(named), 1)
    for i, (name, value) in enumerate(named):
        x = LEFT + i * slot + slot * 0.15
        y = sy(value)
        shown = f"{value * 100:.1f}%" if percent else f"{value:,.0f}"
        parts.append(f'<rect class="bar" style="fill:{PALETTE[i % len(PALETTE)]}" x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" '
                     f'height="{sy(0) - y:.1f}"><title>{escape(name)}: {shown}</title></rect>'
                     f'<text class="tick" x="{x + slot * 0.35:.1f}" y="{HEIGHT - BOTTOM + 14}" text-anchor="middle">{escape(name)}</text>'
                     f'<text class="value" x="{x + slot * 0.35:.1f}" y="{y - 3:.1f}" text-anchor="middle">{shown}</text>')
    return _svg(parts, label)
