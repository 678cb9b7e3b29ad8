"""The empirical family: values with weights (``empirical { 1k: 50%, 4k: 30%, 16k: 20% }``, or one value a line of a file), drawn by the inverse of its step CDF."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from tracedsl.families.base import SLOT, Family, IRModel, Issue, Law, ParamsError, fmt
from tracedsl.families.truncated import bound, finite_issues, order_issues
from tracedsl.limits import MAX_VALUE

# Weights must add up to 1; a decompiled table prints each weight as the double it is, so its
# exact decimal sum may miss 1 by a few ulps per entry.
WEIGHT_TOLERANCE = 1e-9


class Empirical(IRModel):
    """Values and their weights (fractions adding up to 1), optionally bounded (the weights of the
    values inside the bounds are renormalized)."""

    kind: Literal["empirical"] = "empirical"
    values: list[float] = Field(min_length=1, description="the values, in the slot's unit")
    weights: list[float] = Field(min_length=1, description="each value's probability (adding up to 1)")
    min: float | None = bound("lower bound (inclusive)")
    max: float | None = bound("upper bound (inclusive)")

    @model_validator(mode="after")
    def _check(self) -> Empirical:
        issues = finite_issues(self, ("min", "max")) + order_issues(self)
        if len(self.values) != len(self.weights):
            issues.append(
                Issue(f"{len(self.values)} values but {len(self.weights)} weights", ("values", "weights"))
            )
        if not all(math.isfinite(v) and 0.0 <= v <= MAX_VALUE for v in self.values):
            issues.append(Issue("every value must be finite, >= 0 and <= 1e12", ("values",)))
        if not all(math.isfinite(w) and w > 0.0 for w in self.weights):
            issues.append(Issue("every weight must be > 0", ("weights",)))
        elif abs(math.fsum(self.weights) - 1.0) > WEIGHT_TOLERANCE:
            issues.append(
                Issue(f"the weights add up to {fmt(math.fsum(self.weights) * 100)}%, not 100%", ("weights",))
            )
        if not issues and FAMILY.exact(self).mass <= 0.0:
            low, high = fmt(self.min if self.min is not None else 0), fmt(self.max)
            issues.append(
                Issue(
                    f"no value lies within the bounds [{low}, {high}]: they leave no mass",
                    tuple(name for name in ("min", "max") if getattr(self, name) is not None),
                )
            )
        if issues:
            raise ParamsError(issues)
        return self


@dataclass(frozen=True, eq=False)  # arrays: compared and hashed by identity
class EmpiricalLaw(Law):
    """Sorted distinct values and their cumulative probabilities within the bounds."""

    values: np.ndarray
    cumulative: np.ndarray  # P(X <= values[i]); the last is 1
    kept: float  # the share of the weight inside the bounds

    def sample(self, u: np.ndarray) -> np.ndarray:
        index = np.searchsorted(self.cumulative, np.asarray(u, dtype=np.float64), side="left")
        return self.values[np.minimum(index, len(self.values) - 1)]

    def cdf(self, x: float) -> float:
        index = int(np.searchsorted(self.values, x, side="right"))
        return 0.0 if index == 0 else float(self.cumulative[index - 1])

    def cdf_before(self, x: float) -> float:
        index = int(np.searchsorted(self.values, x, side="left"))
        return 0.0 if index == 0 else float(self.cumulative[index - 1])

    def expect(self, transform: Callable[[np.ndarray], np.ndarray]) -> float:
        weights = np.diff(self.cumulative, prepend=0.0)
        return float(np.sum(transform(self.values) * weights))

    @property
    def mass(self) -> float:
        return self.kept


def empirical_law(values: list[float], weights: list[float], low: float, high: float, scale: float = 1.0) -> EmpiricalLaw:
    scaled = np.asarray(values, dtype=np.float64) * scale
    weight = np.asarray(weights, dtype=np.float64)
    inside = (scaled >= low) & (scaled <= high)
    if not inside.any():
        return EmpiricalLaw(np.array([low if math.isfinite(low) else 0.0]), np.array([1.0]), 0.0)
    distinct, where = np.unique(scaled[inside], return_inverse=True)
    merged = np.bincount(where, weights=weight[inside], minlength=len(distinct))
    cumulative = np.cumsum(merged) / merged.sum()
    cumulative[-1] = 1.0
    return EmpiricalLaw(distinct, cumulative, float(merged.sum() / weight.sum()))


class EmpiricalFamily(Family):
    name = "empirical"
    model = Empirical
    parameters = {"min": SLOT, "max": SLOT}
    table = "values"

    def exact(self, dist: Empirical, scale: float = 1.0) -> EmpiricalLaw:
        low = float(dist.min) if dist.min is not None else 0.0
        high = float(dist.max) if dist.max is not None else math.inf
        return empirical_law(dist.values, dist.weights, low, high, scale)

    def arguments(self, dist: Empirical) -> list[tuple[str, float]]:
        return [(name, value) for name, value in (("min", dist.min), ("max", dist.max)) if value is not None]

    def entries(self, dist: Empirical) -> list[tuple[str, float, float]]:
        """(name, value, weight) of each line of the table, as given."""
        return [("", value, weight) for value, weight in zip(dist.values, dist.weights, strict=True)]


FAMILY = EmpiricalFamily()
