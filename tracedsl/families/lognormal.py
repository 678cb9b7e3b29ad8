"""The lognormal family: its IR model, its exact truncated law, the reference's reject-then-clip law, and its text."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from tracedsl.families.base import (
    PLAIN,
    SLOT,
    Family,
    IRModel,
    Issue,
    Law,
    ParamsError,
    fmt,
    is_number,
)
from tracedsl.families.special import normal_cdf, normal_quantile, normal_sf
from tracedsl.limits import MAX_VALUE

# Relative tolerance when checking given mu/sigma against mean/median. Manifests store the
# derived values as printed doubles, which round-trip exactly, so this only forgives noise.
_MU_SIGMA_TOLERANCE = 1e-9
_REJECTION_ROUNDS = 100  # the reference redraws an out-of-range value up to 100 times, then clips
_GRID = 8001  # quadrature nodes in z-space; error well below 0.01% for these smooth densities
_Z_SPAN = 12.0  # the quadrature covers this many standard deviations from the likeliest point
_LARGEST = f"{MAX_VALUE:.0e}".replace("+", "")  # 1e12


class Lognormal(IRModel):
    """A lognormal given by its real-space mean and median (or by mu and sigma), optionally bounded.

    Bounds are enforced by the engines: the fast engine draws the truncated law exactly, the
    aiperf engine rejects and redraws as the reference does, then clips.
    After validation all four of mu, sigma, mean and median are present.
    """

    kind: Literal["lognormal"] = Field(default="lognormal", exclude=True)
    mu: float | None = Field(default=None, description="log-space mean (derived from median)")
    sigma: float | None = Field(
        default=None, ge=0.0, description="log-space standard deviation (derived from mean/median)"
    )
    mean: float = Field(gt=0.0, le=MAX_VALUE, description="real-space mean")
    median: float = Field(gt=0.0, le=MAX_VALUE, description="real-space median")
    min: float | None = Field(default=None, gt=0.0, le=MAX_VALUE, description="lower bound (inclusive)")
    max: float | None = Field(default=None, gt=0.0, le=MAX_VALUE, description="upper bound (inclusive)")

    @model_validator(mode="before")
    @classmethod
    def _fill_from_mu_sigma(cls, data: Any) -> Any:
        # mu + sigma alone determine mean and median; fill them so the IR is fully resolved.
        if not isinstance(data, dict):
            return data
        given = {name for name in ("mean", "median", "mu", "sigma") if data.get(name) is not None}
        if {"mean", "median"} <= given:
            return data
        if not {"mu", "sigma"} <= given:
            raise ParamsError([_missing(given)])
        mu, sigma = data["mu"], data["sigma"]
        if not (is_number(mu) and is_number(sigma) and math.isfinite(mu) and math.isfinite(sigma)):
            return data  # the field validators say what is wrong with them
        if sigma < 0:
            raise ParamsError([Issue(f"sigma ({fmt(sigma)}) must be >= 0", ("sigma",))])
        filled = dict(data)
        for name, log_value in (("median", mu), ("mean", mu + sigma * sigma / 2.0)):
            if name in given:
                continue
            paths = ("mu",) if name == "median" else ("mu", "sigma")
            try:
                value = math.exp(log_value)
            except OverflowError:
                value = math.inf
            if value > MAX_VALUE:
                shown = f"e^{log_value:.6g}" if math.isinf(value) else f"{value:.4g}"
                overflow = " (overflows a double)" if math.isinf(value) else ""
                raise ParamsError(
                    [
                        Issue(
                            f"mu={fmt(mu)}, sigma={fmt(sigma)} give a {name} of {shown}{overflow}, "
                            f"above the largest allowed ({_LARGEST})",
                            paths,
                            hint="mu and sigma are log-space: the median is exp(mu), "
                            "the mean exp(mu + sigma^2/2)",
                        )
                    ]
                )
            filled[name] = value
        return filled

    @model_validator(mode="after")
    def _resolve(self) -> Lognormal:
        issues: list[Issue] = []
        if self.mean < self.median:
            issues.append(
                Issue(
                    f"mean ({fmt(self.mean)}) must be >= median ({fmt(self.median)}) for a lognormal",
                    ("mean", "median"),
                )
            )
        if self.min is not None and self.max is not None and self.min > self.max:
            issues.append(Issue(f"min ({fmt(self.min)}) must be <= max ({fmt(self.max)})", ("min", "max")))
        if (self.mu is None) != (self.sigma is None):
            given, missing = ("mu", "sigma") if self.mu is not None else ("sigma", "mu")
            issues.append(Issue(f"{missing} is missing: mu and sigma must be given together", (given,)))
        for name in ("mu", "sigma", "mean", "median", "min", "max"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                issues.append(Issue(f"{name} must be finite", (name,)))
        if issues:
            raise ParamsError(issues)
        derived_mu, derived_sigma = lognormal_mu_sigma(self.mean, self.median)
        if self.mu is None:
            object.__setattr__(self, "mu", derived_mu)
            object.__setattr__(self, "sigma", derived_sigma)
        elif not _agrees(self.mu, self.sigma, self.mean, self.median):
            raise ParamsError(
                [
                    Issue(
                        f"mu={fmt(self.mu)}, sigma={fmt(self.sigma)} disagree with "
                        f"mean={fmt(self.mean)}, median={fmt(self.median)} (which give "
                        f"mu={fmt(derived_mu)}, sigma={fmt(derived_sigma)})",
                        ("mu", "sigma", "mean", "median"),
                        hint="give either mean and median, or mu and sigma, not both "
                        "(an edited manifest keeps stale mu/sigma: delete them)",
                    )
                ]
            )
        return self

    @property
    def is_constant(self) -> bool:
        """mean == median: sigma is 0 and every draw is the same value."""
        return self.sigma == 0.0


def _missing(given: set[str]) -> Issue:
    """What a lognormal lacks: the other half of the pair the user started, or both pairs."""
    pairs = (("mean", "median"), ("mu", "sigma"))
    started = [pair for pair in pairs if given & set(pair)]
    if not started:
        return Issue("a lognormal needs mean and median, or mu and sigma")
    missing = [name for pair in started for name in pair if name not in given]
    verb = "is" if len(missing) == 1 else "are"
    return Issue(
        f"{' and '.join(missing)} {verb} missing: a lognormal takes mean and median, or mu and sigma",
        tuple(sorted(given, key=("mean", "median", "mu", "sigma").index)),
    )


def lognormal_mu_sigma(mean: float, median: float) -> tuple[float, float]:
    """The reference's derivation: mu = ln(median), sigma = sqrt(2 ln(mean/median))."""
    mu = math.log(median)
    ratio = mean / median
    sigma = math.sqrt(2.0 * math.log(ratio)) if ratio > 1.0 else 0.0
    return mu, sigma


def _agrees(mu: float, sigma: float, mean: float, median: float) -> bool:
    """Do mu and sigma give this mean and median? Compared in real space, where a tiny sigma
    (whose mean rounds to the median) is not a disagreement."""
    try:
        implied_median = math.exp(mu)
        implied_mean = math.exp(mu + sigma * sigma / 2.0)
    except OverflowError:
        return False
    return math.isclose(implied_median, median, rel_tol=_MU_SIGMA_TOLERANCE) and math.isclose(
        implied_mean, mean, rel_tol=_MU_SIGMA_TOLERANCE
    )


def _shifted_mu(dist: Lognormal, scale: float) -> float:
    # Scaling a lognormal by c moves mu by ln c; exactly mu when c is 1.
    return float(dist.mu) + math.log(scale) if scale != 1.0 else float(dist.mu)


# --------------------------------------------------------------------------------------------
# The exact truncated law (the fast engine's)


@dataclass(frozen=True)
class TruncatedLognormal(Law):
    """A lognormal restricted to [low, high], sampled by inverse CDF from a uniform.

    For an interval in the upper tail the survival function is inverted instead of the CDF,
    so a far-right interval keeps its precision (Φ(z) rounds to 1 there). An interval with
    no representable mass puts everything at its bound (sigma 0).
    """

    mu: float
    sigma: float
    low: float  # 0.0 when unbounded below
    high: float  # inf when unbounded above
    upper_tail: bool = False
    p_start: float = 0.0
    p_width: float = 1.0

    @classmethod
    def of(cls, dist: Lognormal, scale: float = 1.0) -> TruncatedLognormal:
        """From an IR lognormal; ``scale`` multiplies the variable (bias), not the bounds."""
        mu = _shifted_mu(dist, scale)
        sigma = float(dist.sigma)
        low = float(dist.min) if dist.min is not None else 0.0
        high = float(dist.max) if dist.max is not None else math.inf
        if sigma == 0.0:
            inside = 1.0 if low <= math.exp(mu + 0.0) <= high else 0.0
            return cls(mu, sigma, low, high, p_width=inside)
        z_low = (math.log(low) - mu) / sigma if low > 0.0 else -math.inf
        z_high = (math.log(high) - mu) / sigma if math.isfinite(high) else math.inf
        if z_low > 0.0:
            sf_low, sf_high = normal_sf(z_low), normal_sf(z_high)
            if sf_low - sf_high <= 0.0:  # no representable mass: all of it sits at the bound
                return cls(math.log(low), 0.0, low, high, p_width=0.0)
            return cls(mu, sigma, low, high, True, sf_high, sf_low - sf_high)
        cdf_low, cdf_high = normal_cdf(z_low), normal_cdf(z_high)
        if cdf_high - cdf_low <= 0.0:
            return cls(math.log(high), 0.0, low, high, p_width=0.0)
        return cls(mu, sigma, low, high, False, cdf_low, cdf_high - cdf_low)

    def sample(self, u: np.ndarray) -> np.ndarray:
        if self.sigma == 0.0:
            # Computed as the reference does, exp(mu + 0), so mean == median == 1000 gives
            # 999.99..., which token counts truncate to 999 as the reference's do.
            value = np.full(np.shape(u), math.exp(self.mu + 0.0))
        else:
            z = normal_quantile(self.p_start + u * self.p_width)
            if self.upper_tail:
                z = -z
            with np.errstate(over="ignore"):
                value = np.exp(self.mu + self.sigma * z)
        return np.clip(value, self.low, self.high)

    def increasing(self, u: np.ndarray) -> np.ndarray:
        """The quantile function: like :meth:`sample`, but increasing in ``u`` (an upper-tail
        interval samples by the survival function, so ``sample`` runs from high to low there)."""
        u = np.asarray(u, dtype=np.float64)
        return self.sample(1.0 - u if self.upper_tail else u)

    def quantile(self, q: float) -> float:
        return float(self.increasing(np.array([q]))[0])

    def quantiles(self, u: np.ndarray) -> np.ndarray:
        return self.increasing(u)

    @property
    def mass(self) -> float:
        return self.p_width

    @property
    def constant(self) -> float | None:
        """The one value every draw takes, when sigma is 0 (or the bounds leave no mass)."""
        if self.sigma != 0.0:
            return None
        return min(max(math.exp(self.mu + 0.0), self.low), self.high)

    def cdf(self, x: float) -> float:
        constant = self.constant
        if constant is not None:
            return 1.0 if x >= constant else 0.0
        if x < self.low:
            return 0.0
        if x >= self.high:
            return 1.0
        z = (math.log(x) - self.mu) / self.sigma if x > 0 else -math.inf
        if self.upper_tail:  # p_start is sf(high), p_start + p_width is sf(low)
            inside = self.p_start + self.p_width - normal_sf(z)
        else:
            inside = normal_cdf(z) - self.p_start
        return min(max(inside / self.p_width, 0.0), 1.0)

    def expect(self, transform: Callable[[np.ndarray], np.ndarray]) -> float:
        constant = self.constant
        if constant is not None:
            return float(transform(np.array([constant]))[0])
        z_low = (math.log(self.low) - self.mu) / self.sigma if self.low > 0.0 else -math.inf
        z_high = (math.log(self.high) - self.mu) / self.sigma if math.isfinite(self.high) else math.inf
        likeliest = min(max(0.0, z_low), z_high)
        z = np.linspace(max(z_low, likeliest - _Z_SPAN), min(z_high, likeliest + _Z_SPAN), _GRID)
        # weights relative to the likeliest point, so a far-out interval does not underflow
        weights = np.exp(-0.5 * (z - likeliest) * (z + likeliest))
        weights[0] *= 0.5
        weights[-1] *= 0.5
        with np.errstate(over="ignore"):
            values = transform(np.clip(np.exp(self.mu + self.sigma * z), self.low, self.high))
        return float((values * weights).sum() / weights.sum())


# --------------------------------------------------------------------------------------------
# The reference's law (the aiperf engine's): reject and redraw up to 100 times, then clip


@dataclass(frozen=True)
class ReferenceLognormal(Law):
    """A lognormal drawn on [low, high] as AIPerf 0.13.0 does: redraw an out-of-range value up
    to 100 times, then clip the last redraw. The result is the truncated law, except for the
    mass that fails every round, which sits on the bounds: P(outside)^101, nil unless the
    interval holds a few percent of the mass or less."""

    mu: float
    sigma: float
    low: float | None
    high: float | None
    body: TruncatedLognormal
    stuck_low: float = 0.0
    stuck_high: float = 0.0

    @classmethod
    def of(cls, dist: Lognormal, scale: float = 1.0) -> ReferenceLognormal:
        mu = _shifted_mu(dist, scale)
        sigma = float(dist.sigma)
        low = None if dist.min is None else float(dist.min)
        high = None if dist.max is None else float(dist.max)
        body = TruncatedLognormal.of(dist, scale)
        if sigma == 0.0:
            return cls(mu, sigma, low, high, body)
        below = normal_cdf((math.log(low) - mu) / sigma) if low is not None else 0.0
        above = normal_sf((math.log(high) - mu) / sigma) if high is not None else 0.0
        outside = below + above
        if outside <= 0.0:
            return cls(mu, sigma, low, high, body)
        stuck = min(outside, 1.0) ** (_REJECTION_ROUNDS + 1)
        return cls(mu, sigma, low, high, body, stuck * below / outside, stuck * above / outside)

    @property
    def _stuck(self) -> float:
        return self.stuck_low + self.stuck_high

    @property
    def mass(self) -> float:
        return self.body.mass

    def sample(self, u: np.ndarray) -> np.ndarray:
        """The quantile function of the reference's law (increasing in ``u``)."""
        u = np.asarray(u, dtype=np.float64)
        inner = (u - self.stuck_low) / (1.0 - self._stuck) if self._stuck < 1.0 else u
        value = self.body.increasing(np.clip(inner, 0.0, 1.0))
        if self.stuck_low:
            value = np.where(u < self.stuck_low, self.low, value)
        if self.stuck_high:
            value = np.where(u > 1.0 - self.stuck_high, self.high, value)
        return value

    def quantile(self, q: float) -> float:
        return float(self.sample(np.array([q], dtype=np.float64))[0])

    def cdf(self, x: float) -> float:
        total = (1.0 - self._stuck) * self.body.cdf(x)
        if self.stuck_low and x >= self.low:
            total += self.stuck_low
        if self.stuck_high and x >= self.high:
            total += self.stuck_high
        return min(total, 1.0)

    def expect(self, transform: Callable[[np.ndarray], np.ndarray]) -> float:
        total = (1.0 - self._stuck) * self.body.expect(transform) if self._stuck < 1.0 else 0.0
        if self.stuck_low:
            total += self.stuck_low * float(transform(np.array([self.low]))[0])
        if self.stuck_high:
            total += self.stuck_high * float(transform(np.array([self.high]))[0])
        return total

    def drawer(self, normal: Callable[[], float]) -> Callable[[], float]:
        """One draw per call, in the reference's order, from ``normal`` (a standard normal stream)."""
        mu, sigma, exp = self.mu, self.sigma, math.exp
        low_bound = -math.inf if self.low is None else self.low
        high_bound = math.inf if self.high is None else self.high

        def lognormal() -> float:
            try:
                return exp(mu + sigma * normal())
            except OverflowError:
                return math.inf  # numpy's exp gives inf; the bounds then reject or clip it

        if self.low is None and self.high is None:
            return lognormal

        def draw() -> float:
            value = lognormal()
            if low_bound <= value <= high_bound:
                return value  # the common case, without setting up the rejection loop
            for _ in range(_REJECTION_ROUNDS):
                if low_bound <= value <= high_bound:
                    break
                value = lognormal()
            # After 100 failed rounds the last redraw is clipped unchecked, as in the reference.
            return min(max(value, low_bound), high_bound)

        return draw


# --------------------------------------------------------------------------------------------
# The family


class LognormalFamily(Family):
    name = "lognormal"
    model = Lognormal
    parameters = {"mean": SLOT, "median": SLOT, "mu": PLAIN, "sigma": PLAIN, "min": SLOT, "max": SLOT}

    def exact(self, dist: Lognormal, scale: float = 1.0) -> TruncatedLognormal:
        return TruncatedLognormal.of(dist, scale)

    def reference(self, dist: Lognormal, scale: float = 1.0) -> ReferenceLognormal:
        return ReferenceLognormal.of(dist, scale)

    def arguments(self, dist: Lognormal) -> list[tuple[str, float]]:
        values: dict[str, float | None] = {"mean": dist.mean, "median": dist.median}
        # mu/sigma are printed only when they are not exactly what mean/median give.
        if (dist.mu, dist.sigma) != lognormal_mu_sigma(dist.mean, dist.median):
            values.update(mu=dist.mu, sigma=dist.sigma)
        values.update(min=dist.min, max=dist.max)
        return [(name, value) for name, value in values.items() if value is not None]

    def warnings(self, dist: Lognormal, scale: float = 1.0) -> list[Issue]:
        if dist.mean != dist.median:
            return []
        shift = f" and the bias {fmt(scale)}" if scale != 1.0 else ""
        return [
            Issue(
                f"mean == median ({fmt(dist.mean)}) makes this lognormal a constant "
                f"(sigma 0): every draw is exp(mu){shift}, which token counts truncate to "
                f"{int(math.exp(dist.mu + math.log(scale)))}",
                ("mean", "median"),
            )
        ]


FAMILY = LognormalFamily()
