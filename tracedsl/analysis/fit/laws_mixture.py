"""Whether gaps are two populations: a two-component Gaussian mixture on their logarithms, against one Gaussian."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Two populations when all four hold: the two Gaussians' means lie apart by more than their
# spread (Ashman's D > 2, the usual mark of a clean separation), the mixture's BIC beats one
# Gaussian's by more than 10 ("very strong" evidence on Kass and Raftery's scale), the
# smaller population holds at least 5% of the gaps (a smaller one moves no figure of a run),
# and their medians differ by a factor of 2 at least (gaps of 3.000 s and 3.002 s are
# separated by D but are one population to any run).
SEPARATION = 2.0
MEDIAN_RATIO = 2.0
# Fewer gaps than this are one population: too few to tell a second one from a few outliers.
SMALLEST_SAMPLE = 100
BIC_MARGIN = 10.0
SMALLEST_SHARE = 0.05
_ITERATIONS = 300
_TOLERANCE = 1e-7
# EM runs on at most this many values: evenly spaced order statistics of the sorted ones.
_EM_VALUES = 10_000


@dataclass(frozen=True)
class Split:
    """The two-component fit on log values: (weight, mean, sd) of the lower and upper one."""

    weights: tuple[float, float]
    means: tuple[float, float]
    sds: tuple[float, float]
    separation: float  # Ashman's D
    bic_gain: float  # BIC of one Gaussian minus BIC of the mixture
    threshold: float  # the log value where both components are equally likely

    @property
    def median_ratio(self) -> float:
        return math.exp(self.means[1] - self.means[0])

    @property
    def two(self) -> bool:
        return (self.separation > SEPARATION and self.bic_gain > BIC_MARGIN
                and min(self.weights) >= SMALLEST_SHARE
                and self.median_ratio >= MEDIAN_RATIO)


def _log_density(x: np.ndarray, mean: float, sd: float) -> np.ndarray:
    return -0.5 * ((x - mean) / sd) ** 2 - math.log(sd) - 0.5 * math.log(2 * math.pi)


# EM starts with its two means at each of these pairs of quantiles, and the likeliest end wins:
# a skewed population (the log of an exponential) traps a single start in a split of itself.
_STARTS = ((0.25, 0.75), (0.1, 0.9), (0.05, 0.95), (0.05, 0.5), (0.5, 0.95), (0.02, 0.7), (0.3, 0.98))


def split(logs: np.ndarray) -> Split | None:
    """EM from several starts (deterministic); None when there is too little spread to split."""
    if logs.size > _EM_VALUES:
        logs = np.sort(logs)[np.linspace(0, logs.size - 1, _EM_VALUES).round().astype(np.int64)]
    n = logs.size
    overall_sd = float(np.std(logs))
    if n < SMALLEST_SAMPLE or not overall_sd > 0:
        return None
    ends = [end for end in (_em(logs, start, overall_sd) for start in _STARTS) if end is not None]
    if not ends:
        return None
    likelihood, weights, means, sds = max(ends, key=lambda end: end[0])
    one = float(np.sum(_log_density(logs, float(np.mean(logs)), overall_sd)))
    bic_gain = (-2 * one + 2 * math.log(n)) - (-2 * likelihood + 5 * math.log(n))
    order = np.argsort(means)
    weights, means, sds = weights[order], means[order], sds[order]
    separation = math.sqrt(2.0) * abs(means[1] - means[0]) / math.sqrt(sds[0] ** 2 + sds[1] ** 2)
    return Split((float(weights[0]), float(weights[1])), (float(means[0]), float(means[1])),
                 (float(sds[0]), float(sds[1])), separation, bic_gain, _crossing(weights, means, sds))


def _em(logs: np.ndarray, start: tuple[float, float], overall_sd: float):
    """(log-likelihood, weights, means, sds) where EM from ``start`` settles, or None when a
    component empties."""
    n = logs.size
    floor_sd = overall_sd * 1e-3
    weights = np.array([0.5, 0.5])
    means = np.quantile(logs, start)
    sds = np.array([overall_sd / 2, overall_sd / 2])
    previous = -math.inf
    for _ in range(_ITERATIONS):
        parts = np.stack([np.log(weights[j]) + _log_density(logs, means[j], sds[j]) for j in range(2)])
        top = parts.max(axis=0)
        total = top + np.log(np.exp(parts[0] - top) + np.exp(parts[1] - top))
        likelihood = float(np.sum(total))
        responsibility = np.exp(parts - total)
        mass = responsibility.sum(axis=1)
        if mass.min() <= 1e-9 * n:
            return None
        weights = mass / n
        means = (responsibility @ logs) / mass
        sds = np.maximum(np.sqrt((responsibility * (logs - means[:, None]) ** 2).sum(axis=1) / mass), floor_sd)
        if likelihood - previous < _TOLERANCE * n:
            break
        previous = likelihood
    return likelihood, weights, means, sds


def _crossing(weights: np.ndarray, means: np.ndarray, sds: np.ndarray) -> float:
    """Between the two means, the log value where both weighted densities are equal (bisection)."""
    low, high = float(means[0]), float(means[1])

    def lower_wins(x: float) -> bool:
        return (math.log(weights[0]) + float(_log_density(np.array([x]), means[0], sds[0])[0])
                > math.log(weights[1]) + float(_log_density(np.array([x]), means[1], sds[1])[0]))

    for _ in range(80):
        middle = 0.5 * (low + high)
        low, high = (middle, high) if lower_wins(middle) else (low, middle)
    return 0.5 * (low + high)
