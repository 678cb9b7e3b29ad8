"""Two trace profiles side by side: each figure's two values, their distance and a verdict at a
stated tolerance (docs/compare.md gives every figure, its distance and why its default is what
it is).

Distances are symmetric, so comparing B with A gives the verdicts of comparing A with B:

- a distribution's **KS** statistic (sup |F_A - F_B|, on the kept samples; the asymptotic
  p-value is shown, not judged: at thousands of values any real difference is "significant"),
  its **Wasserstein** distance W1 over the mean of the two means, and the **relative gap** of
  its mean and of its p50 / p90 / p99: |a - b| / max(|a|, |b|);
- a hit rate's **absolute gap** |a - b|.

A figure that one side cannot give (no timestamps, no request kinds, no hash ids) is listed as
not comparable and does not fail the gate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from tracedsl.analysis.profile import TraceProfile
from tracedsl.analysis.tolerances import TOLERANCE_HELP, Tolerances
from tracedsl.reports.reuse import CAPACITIES

# (key, title, unit) of the distributions compared, in the order shown
DISTRIBUTIONS = (
    ("input", "input (tokens)", "rows"),
    ("new_tokens", "new tokens (tokens)", "rows"),
    ("output", "output (tokens)", "rows"),
    ("delay_ms", "delay (ms)", "rows"),
    ("calls", "calls per session", "sessions"),
    ("requests", "requests per session", "sessions"),
    ("duration_s", "session duration (s)", "sessions"),
    ("logical_calls", "calls per logical session", "sessions"),
    ("interarrival_s", "inter-arrival (s)", "arrivals"),
)
COUNTS = ("calls", "requests", "logical_calls")  # whole counts: a percentile may differ by one
LRU_SHOWN = CAPACITIES[::2]  # LRU capacities judged, in blocks of A: every 4x, 64 .. 4M
__all__ = ["TOLERANCE_HELP", "Comparison", "Figure", "Tolerances", "compare", "distances"]
KIND_TITLES = {"request_opening": "hit rate: request-opening calls", "tool_result": "hit rate: tool-result calls"}


@dataclass
class Figure:
    """One row of the comparison: a figure of both traces, their distance and the verdict."""

    group: str  # "rows", "sessions", "arrivals" or "cache"
    name: str
    a: float | None
    b: float | None
    distance: float | None
    measure: str  # "KS", "W1/mean", "relative gap", "absolute gap"
    tolerance: float | None
    within: bool | None  # None: not comparable (one side lacks it)
    note: str = ""

    @property
    def verdict(self) -> str:
        return "n/c" if self.within is None else ("ok" if self.within else "FAIL")

    def to_json(self) -> dict:
        out = asdict(self)
        for key in ("a", "b", "distance"):  # JSON has no infinity: a distance past any scale is null
            if out[key] is not None and not np.isfinite(out[key]):
                out[key] = None
        out["verdict"] = {"n/c": "not comparable", "ok": "within", "FAIL": "outside"}[self.verdict]
        return out


@dataclass
class Comparison:
    """Every figure of A against B, and whether all of them pass."""

    a_name: str
    b_name: str
    figures: list[Figure]
    tolerances: Tolerances
    a_profile: dict | None = None  # TraceProfile.to_json() of each side
    b_profile: dict | None = None

    @property
    def passed(self) -> bool:
        return all(figure.within is not False for figure in self.figures)

    @property
    def failed(self) -> list[Figure]:
        return [figure for figure in self.figures if figure.within is False]

    def to_json(self) -> dict:
        counts = {"within": 0, "outside": 0, "not_comparable": 0}
        for figure in self.figures:
            counts["not_comparable" if figure.within is None else "within" if figure.within else "outside"] += 1
        return {"a": self.a_name, "b": self.b_name, "passed": self.passed, "counts": counts,
                "tolerances": asdict(self.tolerances),
                "failed": [f"{figure.name}: {figure.measure}" for figure in self.failed],
                "figures": [figure.to_json() for figure in self.figures],
                "profiles": {"a": self.a_profile, "b": self.b_profile}}

    def text(self) -> str:
        """One table: figure | A | B | distance | tolerance | verdict, then the verdict."""
        header = ("figure", "A", "B", "distance", "tolerance", "verdict")
        body = [(f"{figure.name} {figure.measure}" if figure.measure else figure.name,
                 _value(figure.a), _value(figure.b), _value(figure.distance),
                 "-" if figure.tolerance is None else f"{figure.tolerance:g}",
                 figure.verdict + (f" ({figure.note})" if figure.within is None and figure.note else ""))
                for figure in self.figures]
        widths = [max(len(row[i]) for row in (header, *body)) for i in range(len(header) - 1)]
        lines = [f"A: {self.a_name}", f"B: {self.b_name}", ""]
        for row in (header, *body):
            cells = [row[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(row[1:-1], widths[1:], strict=True)]
            lines.append("  ".join([*cells, row[-1]]).rstrip())
        counts = self.to_json()["counts"]
        lines.append("")
        verdict = "PASS" if self.passed else "FAIL"
        lines.append(f"{verdict}: {counts['within']} within tolerance, {counts['outside']} outside, "
                     f"{counts['not_comparable']} not comparable")
        if self.failed:
            lines.append("outside: " + "; ".join(f"{figure.name} {figure.measure}" for figure in self.failed))
        return "\n".join(lines)


def _value(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def compare(a: TraceProfile, b: TraceProfile, tolerances: Tolerances | None = None) -> Comparison:
    """Every figure of A and B, their distances and verdicts at ``tolerances`` (the defaults when None)."""
    tol = tolerances or Tolerances()
    figures: list[Figure] = []
    for key, title, group in DISTRIBUTIONS:
        if key == "logical_calls" and not (a.has_continuations or b.has_continuations):
            continue  # the same figure as calls per session on both sides
        figures.extend(_distribution(a, b, key, title, group, tol))
    figures.extend(_cache(a, b, tol))
    return Comparison(a.name, b.name, figures, tol, a.to_json(), b.to_json())


def _lacking(a: TraceProfile, b: TraceProfile, key: str) -> str | None:
    for side, trace in (("A", a), ("B", b)):
        if key in trace.missing:
            return f"{side}: {trace.missing[key]}"
        if key in trace.samples and trace.samples[key].count == 0:
            return f"{side}: no values"
    return None


def _distribution(a: TraceProfile, b: TraceProfile, key: str, title: str, group: str, tol: Tolerances) -> list[Figure]:
    sa, sb = a.samples[key], b.samples[key]
    lacking = _lacking(a, b, key)
    if lacking is not None:
        return [Figure(group, title, sa.mean, sb.mean, None, "", None, None, lacking)]
    ks, p_value, w1 = distances(sa.values(), sb.values())
    scale = (abs(sa.mean) + abs(sb.mean)) / 2
    thinned = " (on samples)" if sa.thinned or sb.thinned else ""
    out = [
        Figure(group, title, sa.count, sb.count, ks, "KS", tol.ks, ks <= tol.ks,
               f"p={p_value:.3g}, n = sample sizes{thinned}"),
        Figure(group, title, None, None, _ratio(w1, scale), "W1/mean", tol.wasserstein,
               _ratio(w1, scale) <= tol.wasserstein, f"W1={w1:.4g}"),
        _relative(group, title, "mean", sa.mean, sb.mean, tol.mean),
    ]
    slack = 1.0 if key in COUNTS else 0.0
    for name, q, limit in (("p50", 0.5, tol.percentile), ("p90", 0.9, tol.percentile), ("p99", 0.99, tol.tail)):
        out.append(_relative(group, title, name, sa.quantile(q), sb.quantile(q), limit, slack))
    return out


def _relative(group: str, title: str, measure: str, a: float, b: float, limit: float, slack: float = 0.0) -> Figure:
    gap = relative_gap(a, b, slack)
    note = "relative gap |a-b|/max(|a|,|b|)" if not slack else "relative gap (|a-b|-1)+/max(|a|,|b|): one count of slack"
    return Figure(group, title, a, b, gap, measure, limit, gap <= limit, note)


def relative_gap(a: float, b: float, slack: float = 0.0) -> float:
    """|a - b| / max(|a|, |b|), 0 when both are 0; ``slack`` is taken off the gap first."""
    top = max(abs(a), abs(b))
    return 0.0 if top == 0 else max(abs(a - b) - slack, 0.0) / top


def _ratio(value: float, scale: float) -> float:
    if scale == 0:
        return 0.0 if value == 0 else float("inf")
    return value / scale


def distances(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """KS statistic, its asymptotic p-value, and the Wasserstein-1 distance of two samples."""
    a = np.sort(np.asarray(a, dtype=np.float64))
    b = np.sort(np.asarray(b, dtype=np.float64))
    grid = np.unique(np.concatenate([a, b]))
    cdf_a = np.searchsorted(a, grid, side="right") / a.size
    cdf_b = np.searchsorted(b, grid, side="right") / b.size
    gap = np.abs(cdf_a - cdf_b)
    ks = float(gap.max()) if gap.size else 0.0
    w1 = float(np.sum(gap[:-1] * np.diff(grid))) if grid.size > 1 else 0.0
    return ks, ks_p_value(ks, a.size, b.size), w1


def ks_p_value(statistic: float, n: int, m: int) -> float:
    """The two-sample KS asymptotic p-value (Kolmogorov's series at the effective size n*m/(n+m))."""
    if statistic <= 0:
        return 1.0
    effective = n * m / (n + m)
    root = np.sqrt(effective)
    lam = (root + 0.12 + 0.11 / root) * statistic
    if lam < 0.2:
        return 1.0
    k = np.arange(1, 101)
    return float(np.clip(2 * np.sum((-1.0) ** (k - 1) * np.exp(-2 * k * k * lam * lam)), 0.0, 1.0))


def _cache(a: TraceProfile, b: TraceProfile, tol: Tolerances) -> list[Figure]:
    out = []
    lacking = _lacking(a, b, "reuse")
    if lacking is None and (a.reuse is None or b.reuse is None):
        lacking = f"{'A' if a.reuse is None else 'B'}: no cache figures"
    if lacking is not None:
        return [Figure("cache", "prefix hit rate (unbounded)", None, None, None, "", None, None, lacking),
                Figure("cache", "LRU hit rate", None, None, None, "", None, None, lacking)]
    out.append(_absolute("prefix hit rate (unbounded)", a.unbounded_hit_rate, b.unbounded_hit_rate, tol.hit_rate, ""))
    caps_a, rates_a = a.lru_curve()
    caps_b, rates_b = b.lru_curve()
    for blocks in LRU_SHOWN:
        tokens = blocks * a.block_size
        name = f"LRU hit rate at {_tokens(tokens)} tokens"
        ra, rb = lru_at(caps_a, rates_a, tokens), lru_at(caps_b, rates_b, tokens)
        if ra is None or rb is None:
            out.append(Figure("cache", name, ra, rb, None, "", None, None, "outside B's capacity grid"))
            continue
        note = "" if a.block_size == b.block_size else "B interpolated in log capacity (block sizes differ)"
        out.append(_absolute(name, ra, rb, tol.lru, note))
    for kind, title in KIND_TITLES.items():
        lacking = _lacking(a, b, "kind")
        if lacking is None:
            ra, rb = a.kind_hit_rate(kind), b.kind_hit_rate(kind)
            if ra is None or rb is None:
                lacking = f"{'A' if ra is None else 'B'}: no such calls"
            else:
                out.append(_absolute(title, ra, rb, tol.hit_rate, "unbounded cache, calls after turn 0"))
                continue
        out.append(Figure("cache", title, None, None, None, "", None, None, lacking))
    return out


def _absolute(name: str, a: float, b: float, limit: float, note: str) -> Figure:
    gap = abs(a - b)
    return Figure("cache", name, a, b, gap, "absolute gap", limit, gap <= limit + 1e-12, note)


def lru_at(capacities: np.ndarray, rates: np.ndarray, tokens: float) -> float | None:
    """The LRU hit rate at ``tokens`` of capacity: exact on the grid, else linear in log capacity;
    None outside the grid."""
    if capacities.size == 0 or tokens < capacities[0] or tokens > capacities[-1]:
        return None
    return float(np.interp(np.log2(tokens), np.log2(capacities), rates))


def _tokens(value: float) -> str:
    for unit, size in (("M", 1 << 20), ("k", 1 << 10)):
        if value >= size and value % size == 0:
            return f"{int(value // size)}{unit.upper()}i"
    return f"{int(value):,}"
