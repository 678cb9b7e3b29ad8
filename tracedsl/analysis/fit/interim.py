"""A plain law chooser for fit's own use while no better one is wired in: an equal-mass table.

Same call shapes as :mod:`tracedsl.analysis.fit.laws` (``fit_law``, ``fit_delay``,
``fit_count``), returning :class:`FittedLaw`. Every law is an ``empirical`` table of the means of
equal-count bins of the sorted values, so its mean is the data's mean exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BINS = 20


@dataclass(frozen=True)
class FittedLaw:
    text: str
    family: str
    ks: float
    comment: str


def fit_law(values, *, unit: str, name: str) -> FittedLaw:
    data = np.sort(np.asarray(values, dtype=np.float64))
    data = data[np.isfinite(data)]
    if not data.size:
        return FittedLaw(_constant(0.0, unit), "constant", 0.0, f"{name}: no values, a constant 0")
    if data[0] == data[-1]:
        return FittedLaw(_constant(data[0], unit), "constant", 0.0,
                         f"{name}: every one of {data.size:,} values is {_number(data[0], unit)}")
    if unit == "count":
        values_, counts = np.unique(np.rint(data).astype(np.int64), return_counts=True)
        if values_.size <= BINS:
            weights = _percentages(counts)
            body = ", ".join(f"{v}: {_weight(w)}" for v, w in zip(values_.tolist(), weights, strict=True) if w)
            return FittedLaw(f"empirical {{ {body} }}", "empirical", 0.0,
                             f"{name}: the {values_.size} values seen, n={data.size:,}")
    parts = np.array_split(data, min(BINS, data.size))
    means = [float(p.mean()) for p in parts if p.size]
    counts = np.array([p.size for p in parts if p.size])
    if unit == "count":
        means = [float(round(m)) for m in means]
    cells: dict[str, int] = {}
    weights = _percentages(counts)
    for mean, weight in zip(means, weights, strict=True):
        key = _number(mean, unit)
        cells[key] = cells.get(key, 0) + weight
    body = ", ".join(f"{k}: {_weight(w)}" for k, w in cells.items() if w)
    ks = 1.0 / len(means)
    return FittedLaw(f"empirical {{ {body} }}", "empirical", ks,
                     f"{name}: {len(means)} equal-mass bins of n={data.size:,} (KS <= {ks:.2f}, mean kept)")


def fit_delay(values_ms, opens_request=None) -> FittedLaw:
    return fit_law(values_ms, unit="ms", name="delay")


def fit_count(values, *, name: str) -> FittedLaw:
    return fit_law(values, unit="count", name=name)


def _percentages(counts: np.ndarray) -> list[int]:
    """Weights in hundredths of a percent adding up to 100% (largest remainders)."""
    share = counts / counts.sum() * 10_000
    whole = np.floor(share).astype(np.int64)
    for i in np.argsort(-(share - whole), kind="stable")[: 10_000 - int(whole.sum())]:
        whole[i] += 1
    return whole.tolist()


def _weight(hundredths: int) -> str:
    return f"{hundredths / 100:g}%"


def _number(value: float, unit: str) -> str:
    if unit == "ms":
        return f"{round(value)}ms"
    return str(int(round(value)))


def _constant(value: float, unit: str) -> str:
    return f"constant({_number(value, unit)})"
