"""The uniform family: ``uniform(min=1k, max=4k)``, every value between its bounds equally likely."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from tracedsl.families.base import SLOT, Family, IRModel, Issue, ParamsError, fmt
from tracedsl.families.truncated import Truncated, finite_issues, present
from tracedsl.limits import MAX_VALUE


class Uniform(IRModel):
    """Uniform on [min, max]; its bounds are its parameters."""

    kind: Literal["uniform"] = "uniform"
    min: float = Field(ge=0.0, le=MAX_VALUE, description="lower end (inclusive)")
    max: float = Field(ge=0.0, le=MAX_VALUE, description="upper end (inclusive)")

    @model_validator(mode="after")
    def _check(self) -> Uniform:
        issues = finite_issues(self, ("min", "max"))
        if not issues and self.min >= self.max:
            issues.append(
                Issue(
                    f"min ({fmt(self.min)}) must be below max ({fmt(self.max)})",
                    ("min", "max"),
                    hint="for one value, use constant(...)" if self.min == self.max else None,
                )
            )
        if issues:
            raise ParamsError(issues)
        return self


@dataclass(frozen=True)
class UniformLaw(Truncated):
    low: float
    high: float

    def cdf_of(self, x: float) -> float:
        return min(max((x - self.low) / (self.high - self.low), 0.0), 1.0)

    def ppf(self, p: np.ndarray) -> np.ndarray:
        return self.low + p * (self.high - self.low)

    def _window(self) -> tuple[bool, float, float]:
        return False, 0.0, 1.0


class UniformFamily(Family):
    name = "uniform"
    model = Uniform
    parameters = {"min": SLOT, "max": SLOT}

    def exact(self, dist: Uniform, scale: float = 1.0) -> UniformLaw:
        # min and max are the law's own parameters here, so a scale (bias) moves both.
        return UniformLaw(dist.min * scale, dist.max * scale)

    def arguments(self, dist: Uniform) -> list[tuple[str, float]]:
        return present({"min": dist.min, "max": dist.max})


FAMILY = UniformFamily()
