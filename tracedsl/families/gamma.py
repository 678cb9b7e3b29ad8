"""The gamma family: ``gamma(shape=0.8, mean=2k)`` or ``gamma(shape=2, scale=300)``, optionally bounded.

Its inverse CDF is the inverse regularized incomplete gamma function, which numpy lacks; it
comes from scipy.special (gammaincinv / gammainccinv), imported only when a gamma law is
built or drawn, so specs without one start as fast as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from tracedsl.families.base import PLAIN, SLOT, Family, IRModel, Issue, ParamsError
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


def _special() -> Any:
    import scipy.special  # heavy: only for gamma laws

    return scipy.special


class Gamma(IRModel):
    """A gamma law of the given shape, with either its mean or its scale (mean = shape x scale)."""

    kind: Literal["gamma"] = "gamma"
    shape: float = Field(gt=0.0, le=1e6, description="shape k (k < 1: most draws near 0, a long tail)")
    mean: float | None = Field(default=None, gt=0.0, le=MAX_VALUE, description="the unbounded law's mean")
    scale: float | None = Field(default=None, gt=0.0, le=MAX_VALUE, description="scale theta")
    min: float | None = bound("lower bound (inclusive)")
    max: float | None = bound("upper bound (inclusive)")

    @model_validator(mode="after")
    def _check(self) -> Gamma:
        issues = finite_issues(self, ("shape", "mean", "scale", "min", "max")) + order_issues(self)
        if (self.mean is None) == (self.scale is None):
            given = tuple(name for name in ("mean", "scale") if getattr(self, name) is not None)
            issues.append(
                Issue(
                    "a gamma takes its shape and one of mean or scale"
                    + (", not both" if given else ""),
                    given or ("shape",),
                    hint="mean = shape x scale",
                )
            )
        if not issues and FAMILY.exact(self).mass <= 0.0:
            issues.append(no_mass_issue(self, "gamma"))
        if issues:
            raise ParamsError(issues)
        return self

    @property
    def theta(self) -> float:
        return self.scale if self.scale is not None else self.mean / self.shape


@dataclass(frozen=True)
class GammaLaw(Truncated):
    shape: float
    theta: float
    low: float
    high: float

    def cdf_of(self, x: float) -> float:
        return float(_special().gammainc(self.shape, x / self.theta))

    def sf_of(self, x: float) -> float:
        return float(_special().gammaincc(self.shape, x / self.theta))

    def ppf(self, p: np.ndarray) -> np.ndarray:
        return self.theta * _special().gammaincinv(self.shape, p)

    def isf(self, s: np.ndarray) -> np.ndarray:
        return self.theta * _special().gammainccinv(self.shape, s)


class GammaFamily(Family):
    name = "gamma"
    model = Gamma
    parameters = {"shape": PLAIN, "mean": SLOT, "scale": SLOT, "min": SLOT, "max": SLOT}

    def exact(self, dist: Gamma, scale: float = 1.0):
        low, high = interval(dist, scale)
        return scaled(GammaLaw(dist.shape, dist.theta, low, high), scale)

    def arguments(self, dist: Gamma) -> list[tuple[str, float]]:
        return present(
            {"shape": dist.shape, "mean": dist.mean, "scale": dist.scale, "min": dist.min, "max": dist.max}
        )


FAMILY = GammaFamily()
