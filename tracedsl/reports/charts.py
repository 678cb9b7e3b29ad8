"""Charts as inline SVG strings, drawn in Python: no chart library, nothing fetched."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from markupsafe import Markup, escape

WIDTH, HEIGHT = 420, 240
WIDE, LEGEND = 880, 170  # wide cards span two columns; line charts keep a legend column
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 42
GREEN = "#76b900"
TARGET = "#111827"  # a target drawn over observed bars
PALETTE = ("#76b900", "#00a3e0", "#f97316", "#a855f7", "#ef4444", "#14b8a6", "#eab308", "#6366f1",
           "#ec4899", "#84cc16", "#0ea5e9", "#f59e0b", "#8b5cf6", "#10b981", "#d946ef", "#64748b")
MAX_TICKS = 6  # per axis of a narrow chart; a wide chart's x axis takes twice as many


@dataclass(frozen=True)
class Unit:
    """How a quantity is shown: its axis title, the symbol after a figure, and its scale.

    ``scale`` turns a stored value into the shown one (milliseconds to seconds: 0.001); a
    percent unit shows fractions as percentages; an integer unit never ticks between integers.
    """

    axis: str
    symbol: str = ""
    scale: float = 1.0
    percent: bool = False
    integer: bool = False

    def figure(self, value: float) -> str:
        """A stored value as a caption shows it, with its unit: ``5.86 s``, ``97.6k``, ``92.2%``."""
        if self.percent:
            return f"{value * 100:.3g}%"
        return fmt(value * self.scale) + (f" {self.symbol}" if self.symbol else "")


TOKENS = Unit("tokens")
BLOCKS = Unit("blocks")
TURNS = Unit("turns", integer=True)
TURN_INDEX = Unit("turn", integer=True)
SESSIONS = Unit("sessions", integer=True)
COUNT = Unit("count", integer=True)
RATE = Unit("hit rate", percent=True)
RATIO = Unit("cached / prompt tokens", percent=True)
SHARE = Unit("share of prompt tokens", percent=True)
SECONDS = Unit("seconds", "s")
MINUTES = Unit("minutes", "min")
ARRIVAL_RATE = Unit("sessions started / s")
DURATIONS_MS = (Unit("milliseconds", "ms"), Unit("seconds", "s", 1e-3), Unit("minutes", "min", 1 / 60_000))


def duration_unit(largest_ms: float) -> Unit:
    """The unit a span of milliseconds reads best in: ms below a second, minutes past ten."""
    if largest_ms < 1_000:
        return DURATIONS_MS[0]
    return DURATIONS_MS[1] if largest_ms < 600_000 else DURATIONS_MS[2]


def fmt(value: float) -> str:
    """Short figures: 1.5k, 32k, 1.2M, 0.25."""
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


def nice_step(lo: float, hi: float, max_ticks: int = MAX_TICKS, integer: bool = False) -> float:
    """The smallest step of 1, 2 or 5 × 10^k that puts at most ``max_ticks`` ticks in [lo, hi]."""
    span = hi - lo
    if not span > 0 or not math.isfinite(span):
        return 1.0
    power = 10.0 ** math.floor(math.log10(span / max_ticks))
    for multiple in (1, 2, 5, 10, 20, 50):
        step = multiple * power
        if integer and step < 1:
            continue
        if math.floor(hi / step + 1e-9) - math.ceil(lo / step - 1e-9) + 1 <= max_ticks:
            break
    return step


def nice_ticks(lo: float, hi: float, max_ticks: int = MAX_TICKS, integer: bool = False) -> tuple[list[float], float]:
    """Round ticks inside [lo, hi] and their step: 0, 20k, 40k, ... never 38.1, 76.1, 114."""
    step = nice_step(lo, hi, max_ticks, integer)
    first, last = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
    # k * step, rounded to the step's own precision, so 0.1 * 3 reads 0.3 and not 0.30000000000000004
    digits = max(0, -math.floor(math.log10(step))) + 1
    return [round(k * step, digits) for k in range(first, last + 1)], step


def nice_ceiling(value: float, max_ticks: int = MAX_TICKS, integer: bool = False) -> float:
    """The round top of an axis from 0 that holds value, with at most max_ticks ticks: 119 -> 120."""
    if not value > 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value / max_ticks))
    for multiple in (1, 2, 5, 10, 20, 50):
        step = multiple * power
        if (not integer or step >= 1) and math.ceil(value / step - 1e-9) + 1 <= max_ticks:
            break
    return math.ceil(value / step - 1e-9) * step


def tick_labels(values: list[float], step: float, unit: Unit | None = None) -> list[str]:
    """An axis's tick labels, one suffix for all and as precise as the step needs: 2.5k, 0.25, 40%."""
    suffix = "%" if unit is not None and unit.percent else ""
    scale = 100.0 if suffix else 1.0
    largest = max((abs(v) * scale for v in values), default=0.0)
    for size, letter in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if largest >= 10 * size or (largest >= size and step * scale >= size):
            scale, suffix = scale / size, letter + suffix
            break
    decimals = max(0, -math.floor(math.log10(step * scale) + 1e-9))
    zero = "0%" if suffix.endswith("%") else "0"
    return [zero if v == 0 else f"{v * scale:.{decimals}f}{suffix}" for v in values]


def _log_ticks(a: float, b: float) -> list[float]:
    """Powers of ten inside [10^a, 10^b]; with under two decades, 2 and 5 between them too."""
    ticks = [10.0 ** k for k in range(math.floor(a), math.ceil(b) + 1)]
    if b - a < 2:
        ticks = [m * t for t in ticks for m in (1, 2, 5)]
    return [t for t in ticks if a - 1e-9 <= math.log10(t) <= b + 1e-9]


def _frame(x_lo, x_hi, y_lo, y_hi, x_unit: Unit | None, y_unit: Unit, log_x=False, x_ticks=True,
           width=WIDTH, x_label: str | None = None) -> tuple[list[str], callable, callable]:
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
    y_ticks, y_step = nice_ticks(y_lo, y_hi, MAX_TICKS, y_unit.integer)
    for yv, text in zip(y_ticks, tick_labels(y_ticks, y_step, y_unit), strict=True):
        y = sy(yv)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}"/>'
                     f'<text class="tick y" x="{LEFT - 4}" y="{y + 3:.1f}" text-anchor="end">{text}</text>')
    if x_ticks:
        if log_x:
            labels = [(xv, fmt(xv)) for xv in _log_ticks(a, b)]
        else:
            wide = MAX_TICKS * 2 if width > WIDTH else MAX_TICKS
            values, x_step = nice_ticks(x_lo, x_hi, wide, x_unit is not None and x_unit.integer)
            labels = list(zip(values, tick_labels(values, x_step, x_unit), strict=True))
        for xv, text in labels:
            parts.append(f'<text class="tick x" x="{sx(xv):.1f}" y="{HEIGHT - BOTTOM + 14}" '
                         f'text-anchor="middle">{text}</text>')
    x_title = x_label if x_label is not None else (x_unit.axis if x_unit else "")
    parts.append(f'<text class="axis" x="{LEFT + plot_w / 2}" y="{HEIGHT - 8}" text-anchor="middle">{escape(x_title)}</text>'
                 f'<text class="axis" transform="translate(12 {TOP + plot_h / 2}) rotate(-90)" '
                 f'text-anchor="middle">{escape(y_unit.axis)}</text>')
    return parts, sx, sy


def _svg(parts: list[str], label: str, width: int = WIDTH) -> Markup:
    return Markup(f'<svg viewBox="0 0 {width} {HEIGHT}" role="img" aria-label="{escape(label)}">'
                  + "".join(parts) + "</svg>")


def message(text: str, label: str, width: int = WIDTH) -> Markup:
    """A chart's place holding one sentence, for a series with nothing to draw (all values 0)."""
    return _svg([f'<rect class="plot" x="{LEFT}" y="{TOP}" width="{width - LEFT - RIGHT}" '
                 f'height="{HEIGHT - TOP - BOTTOM}"/>'
                 f'<text class="empty" x="{width / 2:.0f}" y="{HEIGHT / 2:.0f}" text-anchor="middle">'
                 f'{escape(text)}</text>'], label, width)


def constant_text(value: float, unit: Unit) -> str:
    return "all values are 0" if value == 0 else f"all values are {unit.figure(value)}"


def histogram(edges: np.ndarray, counts: np.ndarray, unit: Unit, label: str) -> Markup:
    """Bars over equal-width bins (edges in the unit's shown scale), each with a hover title."""
    top = nice_ceiling(max(int(counts.max()) if counts.size else 0, 1), integer=True)
    parts, sx, sy = _frame(float(edges[0]), float(edges[-1]), 0, top, unit, COUNT)
    for lo, hi, n in zip(edges[:-1], edges[1:], counts, strict=False):
        if n <= 0:
            continue
        x0, x1, y = sx(lo), sx(hi), sy(n)
        parts.append(f'<rect class="bar" x="{x0:.1f}" y="{y:.1f}" width="{max(x1 - x0 - 0.5, 0.8):.1f}" '
                     f'height="{sy(0) - y:.1f}"><title>{fmt(lo)} – {fmt(hi)}: {int(n):,}</title></rect>')
    return _svg(parts, label)


def lines(series: list[tuple[str, list[float], list[float]]], x_unit: Unit, y_unit: Unit,
          label: str, y_range: tuple[float, float] | None = None, log_x: bool = False,
          width: int = WIDE, legend: bool = True, x_label: str | None = None) -> Markup:
    """One polyline per named series, with a legend of distinct names and hover titles."""
    xs = [x for _, sx_, _ in series for x in sx_] or [0, 1]
    ys = [y for _, _, sy_ in series for y in sy_] or [0, 1]
    if not any(ys):
        return message("all values are 0", label, width)
    lo, hi = y_range if y_range else (min(0.0, min(ys)), nice_ceiling(max(ys)))
    plot_width = width - LEGEND if legend else width
    parts, sx, sy = _frame(min(xs), max(xs), lo, hi, x_unit, y_unit, log_x, width=plot_width, x_label=x_label)
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
                         f'<title>{escape(name)}: {fmt(x)}, {y_unit.figure(y)}</title></circle>')
    return _svg(parts, label, width)


def heatmap(counts: np.ndarray, y_edges: np.ndarray, x_edges: np.ndarray, x_unit: Unit,
            y_unit: Unit, label: str, width: int = WIDE, x_label: str | None = None) -> Markup:
    """A 2-D histogram (rows: y bins, columns: x bins, log x) shaded by log count."""
    parts, sx, sy = _frame(float(x_edges[0]), float(x_edges[-1]), float(y_edges[0]), float(y_edges[-1]),
                           x_unit, y_unit, log_x=True, width=width, x_label=x_label)
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
                         f'fill="{GREEN}" fill-opacity="{shade:.2f}"><title>{fmt(x_edges[j])}–{fmt(x_edges[j + 1])} '
                         f'{escape(x_unit.axis)}, {escape(y_unit.axis)} {y_unit.figure(y_edges[i])}–'
                         f'{y_unit.figure(y_edges[i + 1])}: {n:,}</title></rect>')
    return _svg(parts, label, width)


def bars(named: list[tuple[str, float]], unit: Unit, label: str, width: int = WIDTH,
         top: float | None = None) -> Markup:
    """Vertical bars for a few named values (``top``: the value axis's end, else a round number
    above the tallest bar with room for its label)."""
    if not any(value for _, value in named):
        return message("all values are 0", label, width)
    if top is None:
        top = nice_ceiling(max(v for _, v in named) * 1.08, integer=unit.integer)
    parts, sx, sy = _frame(0, len(named), 0, top, None, unit, x_ticks=False, width=width)
    slot = (width - LEFT - RIGHT) / max(len(named), 1)
    for i, (name, value) in enumerate(named):
        x = LEFT + i * slot + slot * 0.15
        y = sy(value)
        shown = f"{value * 100:.1f}%" if unit.percent else f"{value:,.0f}"
        parts.append(f'<rect class="bar" style="fill:{PALETTE[i % len(PALETTE)]}" x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" '
                     f'height="{sy(0) - y:.1f}"><title>{escape(name)}: {shown}</title></rect>'
                     f'<text class="tick" x="{x + slot * 0.35:.1f}" y="{HEIGHT - BOTTOM + 14}" text-anchor="middle">{escape(name)}</text>'
                     f'<text class="value" x="{x + slot * 0.35:.1f}" y="{y - 3:.1f}" text-anchor="middle">{shown}</text>')
    return _svg(parts, label, width)


def timeline(edges_ms: np.ndarray, counts: np.ndarray, target: tuple[list[float], list[float]] | None,
             label: str) -> Markup:
    """Starts per second in each time bin as bars, the target rate as a line over them."""
    origin = float(edges_ms[0])
    time_unit = duration_unit(float(edges_ms[-1]) - origin)
    rates = counts / (np.diff(edges_ms) / 1000.0)
    top = max(float(rates.max()) if rates.size else 0.0, max(target[1]) if target else 0.0)
    top = nice_ceiling(top * 1.05 if top > 0 else 1.0)
    x = (edges_ms - origin) * time_unit.scale
    parts, sx, sy = _frame(float(x[0]), float(x[-1]), 0, top, time_unit, ARRIVAL_RATE, width=WIDE,
                           x_label=f"time since the first start ({time_unit.symbol})")
    for lo, hi, count, rate in zip(x[:-1], x[1:], counts.tolist(), rates.tolist(), strict=True):
        if count <= 0:
            continue
        x0, x1, y = sx(lo), sx(hi), sy(rate)
        parts.append(f'<rect class="bar" x="{x0:.1f}" y="{y:.1f}" width="{max(x1 - x0 - 0.5, 0.8):.1f}" '
                     f'height="{sy(0) - y:.1f}"><title>{fmt(lo)}–{fmt(hi)} {time_unit.symbol}: {count:,} '
                     f'sessions ({rate:.3g}/s)</title></rect>')
    if target is not None:
        points = " ".join(f"{sx((t - origin) * time_unit.scale):.1f},{sy(min(r, top)):.1f}" for t, r in zip(*target, strict=True))
        parts.append(f'<polyline class="line target" stroke="{TARGET}" stroke-dasharray="5 3" points="{points}">'
                     f'<title>target rate</title></polyline>')
    return _svg(parts, label, WIDE)


LANE_H, LANE_GAP, LANE_LABEL = 16, 6, 150  # the agent timeline's rows and its label column
BREAK_MS = 20_000.0  # an idle stretch longer than this is drawn this long, broken (zigzag)
CALL_COLORS = {"opening": "#f97316", "tool": GREEN, "subagent": "#00a3e0"}


def _time_axis(lanes: list[dict]) -> tuple[callable, float, list[tuple[float, float]]]:
    """A broken time axis: linear, except that each stretch in which no sampled call runs and
    that lasts longer than BREAK_MS is drawn BREAK_MS long. (shown time of a real time, the
    shown span, the broken stretches as (real start, real end))."""
    spans = sorted((s, s + max(d, 0.0)) for lane in lanes for s, d in zip(lane["start_ms"], lane["latency_ms"],
                                                                            strict=True))
    breaks: list[tuple[float, float]] = []
    reach = spans[0][1] if spans else 0.0
    for lo, hi in spans[1:]:
        if lo - reach > BREAK_MS:
            breaks.append((reach, lo))
        reach = max(reach, hi)
    end = max(reach, 1.0)

    def shown(t: float) -> float:
        cut = 0.0
        for lo, hi in breaks:
            if t >= hi:
                cut += hi - lo - BREAK_MS
            elif t > lo:
                cut += max(t - lo - BREAK_MS, 0.0)
        return t - cut

    return shown, shown(end), breaks


def agent_timeline(lanes: list[dict], label: str) -> Markup:
    """Sample sessions' calls on a time axis: one row per session (a host, then its subagents),
    each call a bar from its start for its estimated latency; the gaps between are to scale but
    for idle stretches over BREAK_MS, drawn BREAK_MS long with a zigzag and their length.
    Request-opening calls orange, tool calls green, subagents' calls blue; a red triangle ends a
    compacting session; a dashed line joins a spawning call to each child's row."""
    if not lanes:
        return message("no sample sessions", label, WIDE)
    shown, span, breaks = _time_axis(lanes)
    height = TOP + len(lanes) * (LANE_H + LANE_GAP) + BOTTOM
    plot_w = WIDE - LANE_LABEL - RIGHT
    x0 = LANE_LABEL

    def sx(t: float) -> float:
        return x0 + shown(t) / span * plot_w

    parts = [f'<rect class="plot" x="{x0}" y="{TOP}" width="{plot_w}" height="{height - TOP - BOTTOM}"/>']
    labelled = -1e9  # a break's length is written below it when there is room
    for lo, hi in breaks:
        a, b = sx(lo), sx(hi)
        mid = (a + b) / 2
        text = f"{fmt((hi - lo) / 1000)} s"
        room = mid - labelled > 8 * len(text)
        labelled = mid if room else labelled
        zig = " ".join(f"{mid + (3 if k % 2 else -3):.1f},{TOP + k * 6:.1f}"
                       for k in range(int((height - TOP - BOTTOM) / 6) + 1))
        parts.append(f'<g class="break"><rect x="{a:.1f}" y="{TOP}" width="{max(b - a, 1):.1f}" '
                     f'height="{height - TOP - BOTTOM}" fill="#f3f4f6"/>'
                     f'<polyline points="{zig}" fill="none" stroke="#9ca3af"/>'
                     f'<title>idle {fmt((hi - lo) / 1000)} s (broken: drawn as {fmt(BREAK_MS / 1000)} s)</title>'
                     + (f'<text class="tick" x="{mid:.1f}" y="{height - BOTTOM + 26}" text-anchor="middle">'
                        f'{text}</text>' if room else "") + "</g>")
    row_of = {lane["session_id"]: i for i, lane in enumerate(lanes)}
    for i, lane in enumerate(lanes):
        y = TOP + i * (LANE_H + LANE_GAP) + LANE_GAP / 2
        name = ("  " * lane["depth"]) + (lane["link"] if not lane["host"] else "host") + " " + lane["session_id"][-8:]
        parts.append(f'<text class="tick lane" x="{x0 - 4}" y="{y + LANE_H - 4:.1f}" text-anchor="end">'
                     f'{escape(name)}<title>{escape(lane["session_id"])}: {lane["calls"]:,} calls, '
                     f'{escape(lane["end_reason"])}</title></text>')
        for k, (start, length, gap, opens) in enumerate(zip(lane["start_ms"], lane["latency_ms"], lane["gap_ms"],
                                                             lane["opens"], strict=True)):
            kind = "subagent" if not lane["host"] else ("opening" if opens else "tool")
            a, b = sx(start), sx(start + length)
            parts.append(f'<rect class="call {kind}" x="{a:.1f}" y="{y:.1f}" width="{max(b - a, 1.0):.1f}" '
                         f'height="{LANE_H}" fill="{CALL_COLORS[kind]}"><title>call {k} ({kind}): starts '
                         f'{fmt(start / 1000)} s after a {fmt(gap / 1000)} s gap, {fmt(length / 1000)} s'
                         f'</title></rect>')
        if lane["compacts"] and lane["start_ms"]:
            end = sx(lane["start_ms"][-1] + lane["latency_ms"][-1])
            parts.append(f'<path class="compaction" d="M{end:.1f},{y - 1:.1f} l6,{LANE_H / 2 + 1:.1f} l-6,'
                         f'{LANE_H / 2 + 1:.1f} z" fill="#ef4444"><title>compacts: the last call '
                         'summarizes, a compaction continuation goes on</title></path>')
        parent = lane.get("parent_id")
        if lane["link"] == "subagent" and parent in row_of and lane["start_ms"]:
            t = sx(lane["start_ms"][0])
            py = TOP + row_of[parent] * (LANE_H + LANE_GAP) + LANE_GAP / 2 + LANE_H
            parts.append(f'<line class="spawn" x1="{t:.1f}" x2="{t:.1f}" y1="{py:.1f}" y2="{y:.1f}" '
                         f'stroke="#111827" stroke-dasharray="3 2"><title>spawned at call '
                         f'{lane["spawned_at"]} of its parent</title></line>')
    ticks, step = nice_ticks(0.0, span / 1000.0, MAX_TICKS * 2)
    for value in ticks:
        parts.append(f'<text class="tick x" x="{x0 + value * 1000 / span * plot_w:.1f}" y="{height - BOTTOM + 14}" '
                     f'text-anchor="middle">{fmt(value)}</text>')
    parts.append(f'<text class="axis" x="{x0 + plot_w / 2:.0f}" y="{height - 4}" text-anchor="middle">'
                 "time on each host&#39;s clock, s (broken axis: idle stretches over "
                 f'{fmt(BREAK_MS / 1000)} s drawn {fmt(BREAK_MS / 1000)} s long, their length below)</text>')
    return Markup(f'<svg viewBox="0 0 {WIDE} {height}" role="img" aria-label="{escape(label)}">'
                  + "".join(parts) + "</svg>")
