"""Whether gaps are two populations: a two-component Gaussian mixture on their logarithms, against one Gaussian."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Two populations when all three hold: the two Gaussians' means lie apart by more than their
# spread (Ashman's D > 2, the usual mark of a clean separation), the mixture's BIC beats one
# Gaussian's by more than 10 ("very strong" evidence on Kass and Raftery's scale), and the
# smaller population holds at least 5% of the gaps (a smaller one moves no figure of a run).
SEPARATION = 2.0
BIC_MARGIN = 10.0
SMALLEST_SHARE = 0.05
_ITERATIONS = 500
_TOLERANCE = 1e-9


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
    def two(self) -> bool:
        return (self.separation > SEPARATION and self.bic_gain > BIC_MARGIN
                and min(self.weights) >= SMALLEST_SHARE)


def _log_density(x: np.ndarray, mean: float, sd: float) -> np.ndarray:
    return -0.5 * ((x - mean) / sd) ** 2 - math.log(sd) - 0.5 * math.log(2 * math.pi)


def split(logs: np.ndarray) -> Split | None:
    """EM from the quartiles (deterministic); None when there is too little spread to split."""
    n = logs.size
    overall_sd = float(np.std(logs))
    if n < 20 or not overall_sd > 0:
        return None
    floor_sd = overall_sd * 1e-3
    weights = np.array([0.5, 0.5])
    means = np.quantile(logs, [0.25, 0.75])
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
    one = float(np.sum(_log_density(logs, float(np.mean(logs)), overall_sd)))
    bic_gain = (-2 * one + 2 * math.log(n)) - (-2 * likelihood + 5 * math.log(n))
    order = np.argsort(means)
    weights, means, sds = weights[order], means[order], sds[order]
    separation = math.sqrt(2.0) * abs(means[1] - means[0]) / math.sqrt(sds[0] ** 2 + sds[1] ** 2)
    return Split((float(weights[0]), float(weights[1])), (float(means[0]), float(means[1])),
                 (float(sds[0]), float(sds[1])), separation, bic_gain, _crossing(weights, means, sds))


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
