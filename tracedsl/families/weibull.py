"""The weibull family: ``weibull(shape=1.5, scale=3k)``, S(x) = exp(-(x/scale)^shape), optionally bounded."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from tracedsl.families.base import PLAIN, SLOT, Family, IRModel, ParamsError
from tracedsl.families.truncated import (
    Truncated,
    bound,
    finite_issues,
    interval,
    no_mass_issue,
    order_issues,
    present,
    scaled,
)
from tracedsl.limits import MAX_VALUE


class Weibull(IRModel):
    """A Weibull law of the given shape and scale."""

    kind: Literal["weibull"] = "weibull"
    shape: float = Field(gt=0.0, le=1e6, description="shape k (k < 1: heavier tail than exponential)")
    scale: float = Field(gt=0.0, le=MAX_VALUE, description="scale lambda (the 63rd percentile)")
    min: float | None = bound("lower bound (inclusive)")
    max: float | None = bound("upper bound (inclusive)")

    @model_validator(mode="after")
    def _check(self) -> Weibull:
        issues = finite_issues(self, ("shape", "scale", "min", "max")) + order_issues(self)
        if not issues and FAMILY.exact(self).mass <= 0.0:
            issues.append(no_mass_issue(self, "weibull"))
        if issues:
            raise ParamsError(issues)
        return self


@dataclass(frozen=True)
class WeibullLaw(Truncated):
    """Drawn through the cumulative hazard H(x) = (x/scale)^shape, which keeps far tails exact."""

    shape: float
    scale: float
    low: float
    high: float

    def _hazard(self, x: float) -> float:
        return (x / self.scale) ** self.shape if math.isfinite(x) else math.inf

    def cdf_of(self, x: float) -> float:
        return -math.expm1(-self._hazard(x))

    def sf_of(self, x: float) -> float:
        return math.exp(-self._hazard(x))

    def ppf(self, p: np.ndarray) -> np.ndarray:
        return self.scale * (-np.log1p(-p)) ** (1.0 / self.shape)

    def isf(self, s: np.ndarray) -> np.ndarray:
        return self.scale * (-np.log(s)) ** (1.0 / self.shape)

    def sample(self, u: np.ndarray) -> np.ndarray:
        # Memoryless in hazard space: H(x) = H(low) - log(1 - u (1 - exp(-(H(high) - H(low))))).
        u = np.asarray(u, dtype=np.float64)
        h_low, h_high = self._hazard(self.low), self._hazard(self.high)
        if not h_high > h_low:
            return np.full(u.shape, self.low)
        kept = -math.expm1(-(h_high - h_low))
        hazard = h_low - np.log1p(-u * kept)
        return np.clip(self.scale * hazard ** (1.0 / self.shape), self.low, self.high)

    @property
    def mass(self) -> float:
        h_low, h_high = self._hazard(self.low), self._hazard(self.high)
        return math.exp(-h_low) * -math.expm1(-(h_high - h_low)) if h_high > h_low else 0.0

    def cdf(self, x: float) -> float:
        if x < self.low:
            return 0.0
        if x >= self.high:
            return 1.0
        h_low, h_high = self._hazard(self.low), self._hazard(self.high)
        if not h_high > h_low:
            return 1.0
        return min(-math.expm1(-(self._hazard(x) - h_low)) / -math.expm1(-(h_high - h_low)), 1.0)


def hazard_law(shape: float, scale: float, dist, factor: float) -> object:
    """A Weibull (or, at shape 1, exponential) law bounded by ``dist``'s min/max, times ``factor``."""
    low, high = interval(dist, factor)
    return scaled(WeibullLaw(shape, scale, low, high), factor)


class WeibullFamily(Family):
    name = "weibull"
    model = Weibull
    parameters = {"shape": PLAIN, "scale": SLOT, "min": SLOT, "max": SLOT}

    def exact(self, dist: Weibull, scale: float = 1.0):
        return hazard_law(dist.shape, dist.scale, dist, scale)

    def arguments(self, dist: Weibull) -> list[tuple[str, float]]:
        return present({"shape": dist.shape, "scale": dist.scale, "min": dist.min, "max": dist.max})


FAMILY = WeibullFamily()
