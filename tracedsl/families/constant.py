"""The constant family: every draw is one value (``constant(1k)``), which its bounds must hold."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from tracedsl.families.base import SLOT, Family, IRModel, Issue, Law, ParamsError, fmt
from tracedsl.families.truncated import bound, finite_issues, order_issues, present
from tracedsl.limits import MAX_VALUE


class Constant(IRModel):
    """One value, every draw."""

    kind: Literal["constant"] = "constant"
    value: float = Field(ge=0.0, le=MAX_VALUE, description="the value every draw takes")
    min: float | None = bound("lower bound (inclusive); the value must lie within")
    max: float | None = bound("upper bound (inclusive); the value must lie within")

    @model_validator(mode="after")
    def _check(self) -> Constant:
        issues = finite_issues(self, ("value", "min", "max")) + order_issues(self)
        if not issues:
            low = self.min if self.min is not None else 0.0
            high = self.max if self.max is not None else float("inf")
            if not low <= self.value <= high:
                side = "min" if self.value < low else "max"
                issues.append(
                    Issue(
                        f"the constant {fmt(self.value)} lies beyond its {side} "
                        f"({fmt(getattr(self, side))}): the bounds leave no mass",
                        ("value", side),
                    )
                )
        if issues:
            raise ParamsError(issues)
        return self


@dataclass(frozen=True)
class ConstantLaw(Law):
    value: float

    def sample(self, u: np.ndarray) -> np.ndarray:
        return np.full(np.shape(u), self.value)

    def cdf(self, x: float) -> float:
        return 1.0 if x >= self.value else 0.0

    def cdf_before(self, x: float) -> float:
        return 1.0 if x > self.value else 0.0

    def expect(self, transform: Callable[[np.ndarray], np.ndarray]) -> float:
        return float(transform(np.array([self.value]))[0])


class ConstantFamily(Family):
    name = "constant"
    model = Constant
    parameters = {"value": SLOT, "min": SLOT, "max": SLOT}
    positional = "value"

    def exact(self, dist: Constant, scale: float = 1.0) -> ConstantLaw:
        low = dist.min if dist.min is not None else 0.0
        high = dist.max if dist.max is not None else float("inf")
        return ConstantLaw(min(max(dist.value * scale, low), high))

    def arguments(self, dist: Constant) -> list[tuple[str, float]]:
        return present({"value": dist.value, "min": dist.min, "max": dist.max})


FAMILY = ConstantFamily()
