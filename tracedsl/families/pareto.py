"""The pareto family: ``pareto(alpha=1.3, min=2s)``, S(x) = (min/x)^alpha above min, optionally capped by max."""

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
    order_issues,
    present,
    scaled,
)
from tracedsl.limits import MAX_VALUE


class Pareto(IRModel):
    """A Pareto (type I) law: ``min`` is both its scale and its lower bound."""

    kind: Literal["pareto"] = "pareto"
    alpha: float = Field(gt=0.0, le=1e6, description="tail index (the mean is infinite for alpha <= 1 unless max is set)")
    min: float = Field(gt=0.0, le=MAX_VALUE, description="scale and lower bound (inclusive)")
    max: float | None = bound("upper bound (inclusive)")

    @model_validator(mode="after")
    def _check(self) -> Pareto:
        issues = finite_issues(self, ("alpha", "min", "max")) + order_issues(self)
        if issues:
            raise ParamsError(issues)
        return self


@dataclass(frozen=True)
class ParetoLaw(Truncated):
    """Always drawn through the survival function (min/x)^alpha, exact in the far tail."""

    alpha: float
    scale: float
    low: float
    high: float

    def sf_of(self, x: float) -> float:
        return 1.0 if x <= self.scale else (self.scale / x) ** self.alpha if math.isfinite(x) else 0.0

    def cdf_of(self, x: float) -> float:
        return 1.0 - self.sf_of(x)

    def isf(self, s: np.ndarray) -> np.ndarray:
        return self.scale * s ** (-1.0 / self.alpha)

    def _window(self) -> tuple[bool, float, float]:
        s_low, s_high = self.sf_of(self.low), self.sf_of(self.high)
        return True, s_low, s_low - s_high


class ParetoFamily(Family):
    name = "pareto"
    model = Pareto
    parameters = {"alpha": PLAIN, "min": SLOT, "max": SLOT}

    def exact(self, dist: Pareto, scale: float = 1.0):
        low, high = interval(dist, scale)
        return scaled(ParetoLaw(dist.alpha, dist.min, max(low, dist.min), high), scale)

    def arguments(self, dist: Pareto) -> list[tuple[str, float]]:
        return present({"alpha": dist.alpha, "min": dist.min, "max": dist.max})


FAMILY = ParetoFamily()
