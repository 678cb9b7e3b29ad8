"""The exponential family: ``exponential(mean=500ms)``, optionally bounded (a Weibull of shape 1)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tracedsl.families.base import SLOT, Family, IRModel, ParamsError
from tracedsl.families.truncated import bound, finite_issues, no_mass_issue, order_issues, present
from tracedsl.families.weibull import hazard_law
from tracedsl.limits import MAX_VALUE


class Exponential(IRModel):
    """An exponential law of the given (unbounded) mean."""

    kind: Literal["exponential"] = "exponential"
    mean: float = Field(gt=0.0, le=MAX_VALUE, description="the unbounded law's mean")
    min: float | None = bound("lower bound (inclusive)")
    max: float | None = bound("upper bound (inclusive)")

    @model_validator(mode="after")
    def _check(self) -> Exponential:
        issues = finite_issues(self, ("mean", "min", "max")) + order_issues(self)
        if not issues and FAMILY.exact(self).mass <= 0.0:
            issues.append(no_mass_issue(self, "exponential"))
        if issues:
            raise ParamsError(issues)
        return self


class ExponentialFamily(Family):
    name = "exponential"
    model = Exponential
    parameters = {"mean": SLOT, "min": SLOT, "max": SLOT}

    def exact(self, dist: Exponential, scale: float = 1.0):
        return hazard_law(1.0, dist.mean, dist, scale)

    def arguments(self, dist: Exponential) -> list[tuple[str, float]]:
        return present({"mean": dist.mean, "min": dist.min, "max": dist.max})


FAMILY = ExponentialFamily()
