"""The mix family: weighted laws (``mix { 70%: lognormal(...), 30%: pareto(...) }``), a component picked by one uniform and drawn from a second.

The second uniform is the pick's own 53 bits mixed again under this module's stream key, a
counter-based stream keyed by the first draw: a mix costs one more mix64 per draw, in any
slot, with no stream of its own in the engine. Components may be named
(``tool 80%: ...``) and may be any family, a mix included. ``min``/``max`` restrict the whole
mix exactly: each component is restricted to them and reweighted by the mass it keeps there.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from tracedsl.families.base import SLOT, Family, IRModel, Issue, Law, ParamsError, fmt
from tracedsl.families.empirical import WEIGHT_TOLERANCE
from tracedsl.families.truncated import bound, finite_issues, order_issues, restrict

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_VALUE_KEY = np.uint64(int.from_bytes(hashlib.sha256(b"mix.value").digest()[:8], "little"))
_UNIT = 2.0**-53
_BISECTIONS = 100


class MixComponent(IRModel):
    """One weighted law of a mix; ``name`` as written (``tool 80%: ...``), or None."""

    name: str | None = Field(default=None, min_length=1)
    weight: float = Field(gt=0.0, le=1.0, description="the probability of this component")
    law: Distribution  # noqa: F821 - the registry's union, bound by tracedsl.ir (see MixFamily.bind)


class Mix(IRModel):
    """Weighted laws, weights adding up to 1, optionally bounded as a whole."""

    kind: Literal["mix"] = "mix"
    components: list[MixComponent] = Field(min_length=1)
    min: float | None = bound("lower bound (inclusive) on the whole mix")
    max: float | None = bound("upper bound (inclusive) on the whole mix")

    @model_validator(mode="after")
    def _check(self) -> Mix:
        issues = finite_issues(self, ("min", "max")) + order_issues(self)
        total = math.fsum(c.weight for c in self.components)
        if abs(total - 1.0) > WEIGHT_TOLERANCE:
            issues.append(Issue(f"the components' weights add up to {fmt(total * 100)}%, not 100%", ("components",)))
        names = [c.name for c in self.components if c.name is not None]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            issues.append(Issue(f"component '{repeated[0]}' is named twice", ("components",)))
        if not issues and FAMILY.exact(self).mass <= 0.0:
            issues.append(
                Issue(
                    f"the bounds [{fmt(self.min or 0)}, {fmt(self.max)}] leave no mass of this mix",
                    tuple(name for name in ("min", "max") if getattr(self, name) is not None),
                )
            )
        if issues:
            raise ParamsError(issues)
        return self


def value_uniforms(u: np.ndarray) -> np.ndarray:
    """A second uniform per draw, from the 53 bits of ``u`` mixed under the mix's own key."""
    bits = (np.asarray(u, dtype=np.float64) / _UNIT - 0.5).astype(np.uint64)
    with np.errstate(over="ignore"):
        x = bits * _GOLDEN + _VALUE_KEY
        x = x ^ (x >> np.uint64(30))
        x = x * _MIX1
        x = x ^ (x >> np.uint64(27))
        x = x * _MIX2
        x = x ^ (x >> np.uint64(31))
    return ((x >> np.uint64(11)).astype(np.float64) + 0.5) * _UNIT


@dataclass(frozen=True, eq=False)
class MixLaw(Law):
    """Component laws and their cumulative weights; ``kept`` is the mass inside the bounds."""

    laws: tuple[Law, ...]
    cumulative: np.ndarray
    kept: float = 1.0

    @classmethod
    def of(cls, laws: list[Law], weights: list[float], kept: float = 1.0) -> MixLaw:
        cumulative = np.cumsum(np.asarray(weights, dtype=np.float64))
        cumulative /= cumulative[-1]
        cumulative[-1] = 1.0
        return cls(tuple(laws), cumulative, kept)

    @property
    def weights(self) -> np.ndarray:
        return np.diff(self.cumulative, prepend=0.0)

    @property
    def mass(self) -> float:
        return self.kept

    def sample(self, u: np.ndarray) -> np.ndarray:
        u = np.asarray(u, dtype=np.float64)
        pick = np.minimum(np.searchsorted(self.cumulative, u, side="left"), len(self.laws) - 1)
        second = value_uniforms(u)
        out = np.empty(u.shape, dtype=np.float64)
        for index, law in enumerate(self.laws):
            chosen = pick == index
            if chosen.any():
                out[chosen] = law.sample(second[chosen])
        return out

    def cdf(self, x: float) -> float:
        return float(sum(w * law.cdf(x) for w, law in zip(self.weights, self.laws, strict=True)))

    def cdf_before(self, x: float) -> float:
        return float(sum(w * law.cdf_before(x) for w, law in zip(self.weights, self.laws, strict=True)))

    def expect(self, transform: Callable[[np.ndarray], np.ndarray]) -> float:
        return float(sum(w * law.expect(transform) for w, law in zip(self.weights, self.laws, strict=True)))

    def quantile(self, q: float) -> float:
        # The mix's q-quantile lies between its components' q-quantiles: bisect on its CDF there.
        low = min(law.quantile(q) for law in self.laws)
        high = max(law.quantile(q) for law in self.laws)
        for _ in range(_BISECTIONS):
            if high - low <= 1e-12 * max(abs(high), 1.0):
                break
            middle = 0.5 * (low + high)
            low, high = (middle, high) if self.cdf(middle) < q else (low, middle)
        return high

    def quantiles(self, u: np.ndarray) -> np.ndarray:
        return np.array([self.quantile(float(q)) for q in np.ravel(u)]).reshape(np.shape(u))

    def restrict(self, low: float, high: float) -> MixLaw:
        parts = [(w, restrict(law, low, high)) for w, law in zip(self.weights, self.laws, strict=True)]
        kept = [(w * law.mass, law) for w, law in parts]
        total = sum(share for share, _ in kept)
        if total <= 0.0:
            return MixLaw.of([parts[0][1]], [1.0], 0.0)
        inside = [(share, law) for share, law in kept if share > 0.0]
        return MixLaw.of([law for _, law in inside], [share for share, _ in inside], self.kept * total)


class MixFamily(Family):
    name = "mix"
    model = Mix
    parameters = {"min": SLOT, "max": SLOT}
    table = "laws"

    def bind(self, distribution: Any) -> None:
        """Resolve the components' law type to the registry's union (the IR calls this once)."""
        MixComponent.model_rebuild(_types_namespace={"Distribution": distribution})
        Mix.model_rebuild(force=True)

    def exact(self, dist: Mix, scale: float = 1.0) -> MixLaw:
        from tracedsl import families  # the registry imports this module

        laws = [families.law(c.law, "fast", scale) for c in dist.components]
        mix = MixLaw.of(laws, [c.weight for c in dist.components])
        if dist.min is None and dist.max is None:
            return mix
        low = float(dist.min) if dist.min is not None else 0.0
        high = float(dist.max) if dist.max is not None else math.inf
        return mix.restrict(low, high)

    def arguments(self, dist: Mix) -> list[tuple[str, float]]:
        return [(name, value) for name, value in (("min", dist.min), ("max", dist.max)) if value is not None]

    def entries(self, dist: Mix) -> list[tuple[str, float, Any]]:
        return [(c.name or "", c.weight, c.law) for c in dist.components]


FAMILY = MixFamily()
