"""What the generator should produce, computed from the IR: its own mechanics included.

The reference's targets are the configured lognormal mean and median. Those are not what the
sampler draws: bounds are enforced by rejection (then a clip after 100 failed rounds), token
counts are truncated toward zero and floored, new tokens are drawn from a median raised by
``bias``, and delays are a clipped two-component mixture. Here each target is the expectation
(or quantile) of exactly that transformed draw, found numerically: quadrature over the bounded
lognormal's density for means, the inverse CDF for quantiles (the transforms are monotone, so
they commute with quantiles). No number here is hard-coded.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from tracedsl.ir import GenerationParams, Lognormal

_NORMAL = NormalDist()
_REJECTION_ROUNDS = 101  # one draw plus up to 100 redraws before the clip
_GRID = 8001  # quadrature nodes in z-space; error well below 0.01% for these smooth densities


@dataclass(frozen=True)
class BoundedLognormal:
    """A lognormal (mu, sigma) drawn with the reference's reject-then-clip rule on [lo, hi]."""

    mu: float
    sigma: float
    lo: float | None = None
    hi: float | None = None

    @classmethod
    def of(cls, dist: Lognormal, bias: float = 1.0) -> BoundedLognormal:
        return cls(dist.mu + math.log(bias), dist.sigma, dist.min, dist.max)

    def _z_bounds(self) -> tuple[float, float]:
        if self.sigma == 0:
            return -math.inf, math.inf
        zlo = (math.log(self.lo) - self.mu) / self.sigma if self.lo else -math.inf
        zhi = (math.log(self.hi) - self.mu) / self.sigma if self.hi else math.inf
        return zlo, zhi

    def _stuck(self) -> tuple[float, float, float]:
        """P(all rounds fail) split into (below lo, above hi), and the in-range mass."""
        zlo, zhi = self._z_bounds()
        below = _NORMAL.cdf(zlo) if math.isfinite(zlo) else 0.0
        above = 1.0 - _NORMAL.cdf(zhi) if math.isfinite(zhi) else 0.0
        inside = max(1.0 - below - above, 0.0)
        stuck = (1.0 - inside) ** _REJECTION_ROUNDS
        outside = below + above
        if outside <= 0:
            return 0.0, 0.0, inside
        return stuck * below / outside, stuck * above / outside, inside

    def expect(self, transform: Callable[[np.ndarray], np.ndarray]) -> float:
        """E[transform(X)] for one draw X of this bounded lognormal."""
        if self.sigma == 0:
            value = math.exp(self.mu)
            if self.lo is not None and value < self.lo or self.hi is not None and value > self.hi:
                value = min(max(value, self.lo or value), self.hi or value)
            return float(transform(np.array([value]))[0])
        stuck_lo, stuck_hi, inside = self._stuck()
        zlo, zhi = self._z_bounds()
        zlo, zhi = max(zlo, -12.0), min(zhi, 12.0)
        z = np.linspace(zlo, zhi, _GRID)
        weights = np.exp(-0.5 * z * z)
        weights[0] *= 0.5
        weights[-1] *= 0.5
        values = transform(np.exp(self.mu + self.sigma * z))
        body = float((values * weights).sum() / weights.sum())
        total = (1.0 - stuck_lo - stuck_hi) * body
        if stuck_lo:
            total += stuck_lo * float(transform(np.array([self.lo]))[0])
        if stuck_hi:
            total += stuck_hi * float(transform(np.array([self.hi]))[0])
        return total

    def quantile(self, q: float) -> float:
        """The q-quantile of one draw (rejection sampling gives the truncated distribution)."""
        if self.sigma == 0:
            return self.expect(lambda x: x)
        zlo, zhi = self._z_bounds()
        flo = _NORMAL.cdf(zlo) if math.isfinite(zlo) else 0.0
        fhi = _NORMAL.cdf(zhi) if math.isfinite(zhi) else 1.0
        u = min(max(flo + q * (fhi - flo), 1e-300), 1 - 1e-16)
        return math.exp(self.mu + self.sigma * _NORMAL.inv_cdf(u))

    def cdf(self, x: float) -> float:
        """P(X <= x) of the truncated distribution."""
        if self.sigma == 0:
            return 1.0 if x >= self.expect(lambda v: v) else 0.0
        zlo, zhi = self._z_bounds()
        flo = _NORMAL.cdf(zlo) if math.isfinite(zlo) else 0.0
        fhi = _NORMAL.cdf(zhi) if math.isfinite(zhi) else 1.0
        if x <= 0:
            return 0.0
        fx = _NORMAL.cdf((math.log(x) - self.mu) / self.sigma)
        return min(max((fx - flo) / max(fhi - flo, 1e-300), 0.0), 1.0)


@dataclass(frozen=True)
class Expected:
    """A target that accounts for the generator's mechanics, and how it was derived."""

    mean: float | None
    median: float | None
    basis: str
    quantiles: dict | None = None

    def to_dict(self) -> dict:
        out = {"mean": _round(self.mean), "median": _round(self.median), "basis": self.basis}
        if self.quantiles:
            out["quantiles"] = {k: _round(v) for k, v in self.quantiles.items()}
        return out


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def initial_context(params: GenerationParams) -> Expected:
    """Turn 0 of a primary session: whole-block L1 + L1.5, then int(L2) >= 1, capped below the limit."""
    layer2 = BoundedLognormal.of(params.cache.layer2)
    prefix = params.fixed_prefix_tokens
    cap = params.max_prompt_tokens - 1

    def tokens(x: np.ndarray) -> np.ndarray:
        return np.minimum(prefix + np.maximum(np.trunc(x), 1), cap)

    return Expected(
        layer2.expect(tokens),
        float(tokens(np.array([layer2.quantile(0.5)]))[0]),
        "primary sessions' turn 0: (ceil(L1/bs)+ceil(L1.5/bs))*bs + max(int(L2),1), capped at "
        "max_prompt_tokens-1, L2 drawn within its bounds",
    )


def generation_length(params: GenerationParams) -> Expected:
    """Every turn's output: int(max(draw, floor)) with the draw inside its bounds."""
    dist = BoundedLognormal.of(params.generation_length)
    floor = params.output_floor

    def tokens(x: np.ndarray) -> np.ndarray:
        return np.trunc(np.maximum(x, floor))

    quantiles = {f"p{p:02d}": float(tokens(np.array([dist.quantile(p / 100)]))[0]) for p in (5, 99)}
    return Expected(
        dist.expect(tokens),
        float(tokens(np.array([dist.quantile(0.5)]))[0]),
        f"int(max(draw, {floor})) with the draw inside its bounds",
        quantiles,
    )


def new_tokens(params: GenerationParams) -> Expected:
    """What the sampler draws for a later turn: biased median, unscaled bounds, int, floor 1."""
    spec = params.new_tokens_per_turn
    dist = BoundedLognormal.of(spec, spec.bias)

    def tokens(x: np.ndarray) -> np.ndarray:
        return np.maximum(np.trunc(x), 1)

    return Expected(
        dist.expect(tokens),
        float(tokens(np.array([dist.quantile(0.5)]))[0]),
        f"the sampler's draw: median x bias ({spec.bias:g}), bounds not scaled, max(int(x),1); "
        "accepted turns are fewer large draws (a draw that reaches the context ends the session)",
    )


def delay_mixture(params: GenerationParams) -> Expected:
    """The inter-turn delay before context scaling: the clipped agentic/human mixture."""
    mix = params.inter_turn_delay
    agentic = BoundedLognormal.of(mix.agentic_delay)
    human = BoundedLognormal.of(mix.human_delay)
    cap = mix.max

    def clipped(x: np.ndarray) -> np.ndarray:
        return np.minimum(x, cap) if cap is not None else x

    frac = mix.agentic_fraction
    mean = frac * agentic.expect(clipped) + (1 - frac) * human.expect(clipped)

    def cdf(x: float) -> float:
        if cap is not None and x >= cap:
            return 1.0
        return frac * agentic.cdf(x) + (1 - frac) * human.cdf(x)

    lo, hi = 0.0, max(agentic.quantile(0.9999), human.quantile(0.9999))
    for _ in range(200):  # bisection on the mixture CDF
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if cdf(mid) < 0.5 else (lo, mid)
    median = min(hi, cap) if cap is not None else hi
    return Expected(
        mean,
        median,
        "the delay before context scaling (observed delay / max(0.2, 1-0.8*previous context/"
        "max_prompt_tokens)): agentic/human mixture, each drawn within its bounds, clipped to max",
    )


def delay_scale(previous_context: np.ndarray, limit: int) -> np.ndarray:
    """The generator's context scaling of a delay: long contexts make the agent reply faster."""
    return np.maximum(0.2, 1.0 - 0.8 * previous_context / limit)


def turns(params: GenerationParams) -> Expected | None:
    """Turns mode: the drawn target, round-half-even and clamped to [min, max]."""
    if params.turns is None:
        return None
    spec = params.turns
    dist = BoundedLognormal.of(spec.as_lognormal())

    def count(x: np.ndarray) -> np.ndarray:
        return np.clip(np.round(x), spec.min, spec.max)

    return Expected(
        dist.expect(count),
        float(count(np.array([dist.quantile(0.5)]))[0]),
        "the drawn target turn count: round-half-even of a draw within [min, max]; sessions "
        "truncated at the context limit end short of it",
    )


def expected_restart_injections(params: GenerationParams, primaries: int) -> float:
    """Expected number of sessions chosen to split (each still has to live to its split turn)."""
    r0 = params.restart_initial_probability
    if r0 == 0 or primaries == 0:
        return 0.0
    progress = np.arange(primaries) / max(1, primaries - 1)
    return float(np.where(progress >= 0.75, 0.0, r0 * (1 - progress / 0.75)).sum())
