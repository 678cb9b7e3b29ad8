"""A throwaway distribution family defined outside tracedsl, to prove a family needs no other file.

``flat(low=, high=)``: uniform on [low, high], scaled by ``scale``, then bounded by min/max.
tests/test_families.py registers it in a fresh interpreter before tracedsl.ir is imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field

from tracedsl.families.base import SLOT, Family, IRModel, Law


class Flat(IRModel):
    kind: Literal["flat"] = "flat"
    low: float = Field(ge=0.0)
    high: float = Field(gt=0.0)
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class FlatLaw(Law):
    low: float
    high: float

    def sample(self, u: np.ndarray) -> np.ndarray:
        return self.low + np.asarray(u) * (self.high - self.low)

    def cdf(self, x: float) -> float:
        return min(max((x - self.low) / (self.high - self.low), 0.0), 1.0)


class FlatFamily(Family):
    name = "flat"
    model = Flat
    parameters = {"low": SLOT, "high": SLOT, "min": SLOT, "max": SLOT}

    def exact(self, dist: Flat, scale: float = 1.0) -> FlatLaw:
        low, high = dist.low * scale, dist.high * scale
        if dist.min is not None:
            low = max(low, dist.min)
        if dist.max is not None:
            high = min(high, dist.max)
        return FlatLaw(low, high)

    def arguments(self, dist: Flat) -> list[tuple[str, float]]:
        values = {"low": dist.low, "high": dist.high, "min": dist.min, "max": dist.max}
        return [(name, value) for name, value in values.items() if value is not None]


FAMILY = FlatFamily()
