"""What the non-reference families share: bound fields and checks, and a law truncated to [min, max] by inverse CDF."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import Field

from tracedsl.families.base import Issue, Law, fmt
from tracedsl.limits import MAX_VALUE

# The upper tail of the uniforms is integrated on a geometric grid of 1 - u, so a heavy tail
# (pareto) still has a mean near its own: decades 1e-3 .. 1e-16, this many nodes each.
_BODY_NODES = 20000
_TAIL_DECADES = range(3, 16)
_TAIL_NODES = 200


def bound(description: str) -> Any:
    """A ``min``/``max`` field: inclusive, in the slot's unit, absent when unbounded."""
    return Field(default=None, ge=0.0, le=MAX_VALUE, description=description)


def finite_issues(model: Any, names: tuple[str, ...]) -> list[Issue]:
    return [
        Issue(f"{name} must be finite", (name,))
        for name in names
        if getattr(model, name) is not None and not math.isfinite(getattr(model, name))
    ]


def order_issues(model: Any) -> list[Issue]:
    if model.min is not None and model.max is not None and model.min > model.max:
        return [Issue(f"min ({fmt(model.min)}) must be <= max ({fmt(model.max)})", ("min", "max"))]
    return []


def no_mass_issue(model: Any, law_name: str) -> Issue:
    """The bounds hold none of the law (an interval of zero width, or beyond where it lives)."""
    low = fmt(model.min if model.min is not None else 0)
    shown = f"the bounds [{low}, {fmt(model.max)}]" if model.max is not None else f"the bound min={low}"
    return Issue(
        f"{shown} leave{'s' if model.max is None else ''} no mass of this {law_name}",
        tuple(name for name in ("min", "max") if getattr(model, name) is not None),
        hint="widen the bounds, or move the law inside them (for one value, use constant(...))",
    )


def interval(model: Any, scale: float = 1.0) -> tuple[float, float]:
    """The bounds on the unscaled variable: every slot holds counts or durations, so 0 at least."""
    low = float(model.min) if model.min is not None else 0.0
    high = float(model.max) if model.max is not None else math.inf
    return low / scale, high / scale


class Truncated(Law):
    """A continuous law restricted to [low, high], drawn by its inverse CDF from one uniform.

    A subclass (a frozen dataclass with ``low`` and ``high`` last) gives the unbounded law's
    scalar ``cdf_of``/``sf_of`` and vectorized ``ppf``/``isf``. An interval in the upper half
    of the law is drawn through the survival function, so a far-right interval keeps its
    precision. ``sample`` increases with ``u``, so it is the quantile function.
    """

    # ``low`` and ``high`` are the subclass's dataclass fields (declared there, after its own).
    low: float
    high: float

    def cdf_of(self, x: float) -> float:
        raise NotImplementedError

    def sf_of(self, x: float) -> float:
        return 1.0 - self.cdf_of(x)

    def ppf(self, p: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def isf(self, s: np.ndarray) -> np.ndarray:
        return self.ppf(1.0 - s)

    def _window(self) -> tuple[bool, float, float]:
        """(through the survival function?, start, width) of the interval in probability."""
        p_low = self.cdf_of(self.low)
        if p_low > 0.5:
            s_low, s_high = self.sf_of(self.low), self.sf_of(self.high)
            return True, s_low, s_low - s_high
        return False, p_low, self.cdf_of(self.high) - p_low

    @property
    def mass(self) -> float:
        return max(self._window()[2], 0.0)

    def sample(self, u: np.ndarray) -> np.ndarray:
        u = np.asarray(u, dtype=np.float64)
        upper, start, width = self._window()
        if width <= 0.0:  # no representable mass (a scale moved the law off its bounds)
            return np.full(u.shape, self.low if upper else self.high)
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            value = self.isf(start - u * width) if upper else self.ppf(start + u * width)
        return np.clip(value, self.low, self.high)

    def cdf(self, x: float) -> float:
        if x < self.low:
            return 0.0
        if x >= self.high:
            return 1.0
        upper, start, width = self._window()
        if width <= 0.0:
            return 1.0 if x >= (self.low if upper else self.high) else 0.0
        inside = start - self.sf_of(x) if upper else self.cdf_of(x) - start
        return min(max(inside / width, 0.0), 1.0)

    def expect(self, transform: Callable[[np.ndarray], np.ndarray]) -> float:
        return tail_expect(self.sample, transform)


def tail_expect(quantile: Callable[[np.ndarray], np.ndarray], transform: Callable) -> float:
    """E[transform(X)] from X's quantile function: midpoints up to 1 - 1e-3, then decades of 1 - u."""
    edge = 10.0 ** -_TAIL_DECADES[0]
    u = (np.arange(_BODY_NODES, dtype=np.float64) + 0.5) / _BODY_NODES * (1.0 - edge)
    weights = np.full(_BODY_NODES, (1.0 - edge) / _BODY_NODES)
    tails, tail_weights = [], []
    for decade in _TAIL_DECADES:
        upper, lower = 10.0**-decade, 10.0 ** -(decade + 1)  # 1 - u runs from upper down to lower
        step = (upper - lower) / _TAIL_NODES
        tails.append(1.0 - (upper - (np.arange(_TAIL_NODES) + 0.5) * step))
        tail_weights.append(np.full(_TAIL_NODES, step))
    u = np.concatenate([u, *tails])
    weights = np.concatenate([weights, *tail_weights])
    return float(np.sum(transform(quantile(u)) * weights) / np.sum(weights))


@dataclass(frozen=True)
class Scaled(Law):
    """``scale`` times a law (new tokens' bias): the law was bounded by min/scale, max/scale."""

    inner: Law
    scale: float

    def sample(self, u: np.ndarray) -> np.ndarray:
        return self.scale * self.inner.sample(u)

    def cdf(self, x: float) -> float:
        return self.inner.cdf(x / self.scale)

    def expect(self, transform: Callable[[np.ndarray], np.ndarray]) -> float:
        return self.inner.expect(lambda x: transform(self.scale * x))

    def quantile(self, q: float) -> float:
        return self.scale * self.inner.quantile(q)

    def quantiles(self, u: np.ndarray) -> np.ndarray:
        return self.scale * self.inner.quantiles(u)

    def cdf_before(self, x: float) -> float:
        return self.inner.cdf_before(x / self.scale)

    def restrict(self, low: float, high: float) -> Law:
        return Scaled(restrict(self.inner, low / self.scale, high / self.scale), self.scale)

    @property
    def mass(self) -> float:
        return self.inner.mass


@dataclass(frozen=True, eq=False)
class Restricted(Law):
    """Any law restricted to [low, high] by its quantile function: u runs over P(X < low) to P(X <= high)."""

    inner: Law
    low: float
    high: float

    @property
    def _window(self) -> tuple[float, float]:
        start = self.inner.cdf_before(self.low)
        return start, max(self.inner.cdf(self.high) - start, 0.0)

    @property
    def mass(self) -> float:
        return self._window[1] * self.inner.mass

    def sample(self, u: np.ndarray) -> np.ndarray:
        start, width = self._window
        value = self.inner.quantiles(start + np.asarray(u, dtype=np.float64) * width)
        return np.clip(value, self.low, self.high)

    def cdf(self, x: float) -> float:
        start, width = self._window
        if x < self.low:
            return 0.0
        if x >= self.high or width <= 0.0:
            return 1.0
        return min(max((self.inner.cdf(x) - start) / width, 0.0), 1.0)

    def cdf_before(self, x: float) -> float:
        start, width = self._window
        if x <= self.low:
            return 0.0
        if x > self.high or width <= 0.0:
            return 1.0
        return min(max((self.inner.cdf_before(x) - start) / width, 0.0), 1.0)

    def expect(self, transform: Callable[[np.ndarray], np.ndarray]) -> float:
        return tail_expect(self.sample, transform)


def restrict(law: Law, low: float, high: float) -> Law:
    """``law`` restricted to [low, high]: by its own ``restrict`` where it has one (a mix
    restricts each component), else through its quantile function."""
    own = getattr(law, "restrict", None)
    return own(low, high) if own is not None else Restricted(law, low, high)


def scaled(law: Law, scale: float) -> Law:
    return law if scale == 1.0 else Scaled(law, scale)


def present(values: dict[str, float | None]) -> list[tuple[str, float]]:
    """The (keyword, value) pairs decompile prints: the given ones, in order."""
    return [(name, value) for name, value in values.items() if value is not None]
