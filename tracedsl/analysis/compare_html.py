"""compare.html: two traces' figures on one page, offline (inline SVG, no script fetched), every
string from a trace escaped: the verdict table, both hit-rate-vs-capacity curves on one chart,
and each distribution's two CDFs overlaid."""

from __future__ import annotations

from functools import cache

import numpy as np
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from tracedsl.analysis.compare import DISTRIBUTIONS, Comparison, _value
from tracedsl.analysis.profile import TraceProfile
from tracedsl.reports import charts

CDF_POINTS = 101  # quantiles drawn per CDF (every 1%)
LOG_SPAN = 100  # a CDF whose shown values span more than this factor (all positive) gets a log x axis
_UNITS = {"input": charts.TOKENS, "new_tokens": charts.TOKENS, "output": charts.TOKENS,
          "delay_ms": charts.Unit("milliseconds", "ms"), "calls": charts.Unit("calls", integer=True),
          "requests": charts.Unit("requests", integer=True), "duration_s": charts.SECONDS,
          "logical_calls": charts.Unit("calls", integer=True), "interarrival_s": charts.SECONDS}
_SHARE = charts.Unit("fraction at or below", percent=True)


@cache
def _environment() -> Environment:
    return Environment(loader=PackageLoader("tracedsl.reports", "templates"),
                       autoescape=select_autoescape(default=True, default_for_string=True),
                       undefined=StrictUndefined)


def render_comparison(comparison: Comparison, a: TraceProfile, b: TraceProfile) -> str:
    """The page, as text."""
    rows = [{"figure": f"{figure.name} {figure.measure}".strip(), "a": _value(figure.a), "b": _value(figure.b),
             "distance": _value(figure.distance),
             "tolerance": "-" if figure.tolerance is None else f"{figure.tolerance:g}",
             "verdict": figure.verdict, "note": figure.note,
             "kind": {None: "nc", True: "ok", False: "fail"}[figure.within]} for figure in comparison.figures]
    counts = comparison.to_json()["counts"]
    sides = [_side("A", a), _side("B", b)]
    return _environment().get_template("compare.html.j2").render(
        a_name=a.name, b_name=b.name, passed=comparison.passed, counts=counts, rows=rows, sides=sides,
        cards=[card for card in (_lru_card(a, b), *_cdf_cards(a, b)) if card is not None])


def _side(label: str, trace: TraceProfile) -> dict:
    return {"label": label, "name": trace.name, "dataset": trace.dataset, "format": trace.format,
            "rows": f"{trace.rows:,}", "sessions": f"{trace.sessions:,}", "sessions_from": trace.sessions_from,
            "block_size": f"{trace.block_size} (from {trace.block_size_from})",
            "notes": [f"{key}: {text}" for key, text in trace.notes.items()]}


def _lru_card(a: TraceProfile, b: TraceProfile) -> dict | None:
    series = []
    for label, trace in (("A", a), ("B", b)):
        caps, rates = trace.lru_curve()
        if caps.size:
            series.append((f"{label}: {trace.name}", caps.tolist(), rates.tolist()))
    if not series:
        return None
    for label, trace in (("A", a), ("B", b)):
        caps, _ = trace.lru_curve()
        if caps.size:
            rate = trace.unbounded_hit_rate or 0.0
            series.append((f"{label} unbounded", [float(caps[0]), float(caps[-1])], [rate, rate]))
    svg = charts.lines(series, charts.TOKENS, charts.RATE, "LRU hit rate by capacity", (0.0, 1.0), log_x=True,
                       legend=True, x_label="capacity (tokens)")
    samples = "; ".join(f"{label}: {trace.reuse['sample']['sessions']:,} of {trace.reuse['sample']['of_sessions']:,} "
                        "sessions" for label, trace in (("A", a), ("B", b)) if trace.reuse)
    return {"id": "lru", "title": "Hit rate of an LRU block cache by capacity (both traces)", "wide": True,
            "svg": svg, "note": f"serial replay in file order, exact stack distances; {samples}; "
                                "flat lines: each trace's unbounded prefix hit rate"}


def _cdf_cards(a: TraceProfile, b: TraceProfile) -> list[dict]:
    out = []
    probabilities = np.linspace(0.0, 1.0, CDF_POINTS)
    for key, title, _ in DISTRIBUTIONS:
        if key == "logical_calls" and not (a.has_continuations or b.has_continuations):
            continue
        series, tops = [], []
        for label, trace in (("A", a), ("B", b)):
            values = trace.samples[key].values()
            if values.size and key not in trace.missing:
                xs = np.quantile(values, probabilities)
                series.append((f"{label}: {trace.name}", xs, probabilities))
                tops.append(float(np.quantile(values, 0.995)))
        if not series:
            continue
        cut = max(tops)
        shown = [(name, xs[xs <= cut].tolist(), ys[xs <= cut].tolist()) for name, xs, ys in series]
        low = min((xs[0] for _, xs, _ in shown if xs), default=0.0)
        log_x = low > 0 and cut / low > LOG_SPAN  # a long positive tail reads better on a log axis
        svg = charts.lines(shown, _UNITS[key], _SHARE, f"CDF of {title}", (0.0, 1.0), log_x=log_x, legend=True,
                           x_label=_UNITS[key].axis + (" (log scale)" if log_x else ""))
        note = "each trace's quantiles at every 1%; x axis cut at the larger p99.5"
        if len(series) < 2:
            note = "one trace only (the other lacks it) · " + note
        out.append({"id": f"cdf-{key}", "title": f"CDF: {title}", "wide": False, "svg": svg, "note": note})
    return out
