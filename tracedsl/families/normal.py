"""The normal family: ``normal(mean=2k, sd=500, min=0)``, truncated to its bounds (and at 0: every slot is a count or a duration)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from tracedsl.families.base import SLOT, Family, IRModel, Issue, ParamsError, fmt
from tracedsl.families.special import normal_cdf, normal_quantile, normal_sf
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


class Normal(IRModel):
    """A normal law of the given mean and standard deviation, restricted to [min (or 0), max]."""

    kind: Literal["normal"] = "normal"
    mean: float = Field(ge=-MAX_VALUE, le=MAX_VALUE, description="the unbounded law's mean")
    sd: float = Field(ge=-MAX_VALUE, le=MAX_VALUE, description="the unbounded law's standard deviation (> 0)")
    min: float | None = bound("lower bound (inclusive); 0 when absent")
    max: float | None = bound("upper bound (inclusive)")

    @model_validator(mode="after")
    def _check(self) -> Normal:
        issues = finite_issues(self, ("mean", "sd", "min", "max")) + order_issues(self)
        if not issues and self.sd <= 0.0:
            issues.append(
                Issue(f"sd ({fmt(self.sd)}) must be > 0", ("sd",), hint="for one value, use constant(...)")
            )
        if not issues and FAMILY.exact(self).mass <= 0.0:
            issues.append(no_mass_issue(self, "normal"))
        if issues:
            raise ParamsError(issues)
        return self


@dataclass(frozen=True)
class NormalLaw(Truncated):
    center: float  # not ``mean``: that is the bounded law's own (Law.mean)
    sd: float
    low: float
    high: float

    def cdf_of(self, x: float) -> float:
        return normal_cdf((x - self.center) / self.sd)

    def sf_of(self, x: float) -> float:
        return normal_sf((x - self.center) / self.sd)

    def ppf(self, p: np.ndarray) -> np.ndarray:
        return self.center + self.sd * normal_quantile(p)

    def isf(self, s: np.ndarray) -> np.ndarray:
        return self.center - self.sd * normal_quantile(s)


class NormalFamily(Family):
    name = "normal"
    model = Normal
    parameters = {"mean": SLOT, "sd": SLOT, "min": SLOT, "max": SLOT}

    def exact(self, dist: Normal, scale: float = 1.0):
        low, high = interval(dist, scale)
        return scaled(NormalLaw(dist.mean, dist.sd, low, high), scale)

    def arguments(self, dist: Normal) -> list[tuple[str, float]]:
        return present({"mean": dist.mean, "sd": dist.sd, "min": dist.min, "max": dist.max})


FAMILY = NormalFamily()
