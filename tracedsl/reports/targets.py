"""What the generator should produce, computed from the IR: its own mechanics included.

The reference's targets are the configured lognormal mean and median. Those are not what the
sampler draws: bounds are enforced (the fast engine draws the exact truncated law, the aiperf
engine the reference's reject-then-clip law), token counts are truncated toward zero and
floored, new tokens are drawn from a law scaled by ``bias``, and delays are a clipped
two-component mixture. Here each target is the expectation (or quantile) of exactly that
transformed draw, from the same law object the run's engine samples (``engine``, default
``fast``; see :mod:`tracedsl.families`). The transforms are monotone, so they commute with
quantiles. No number here is hard-coded.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tracedsl import families
from tracedsl.families import Law
from tracedsl.families.lognormal import ReferenceLognormal
from tracedsl.ir import GenerationParams, Lognormal


def BoundedLognormal(mu: float, sigma: float, lo: float | None = None, hi: float | None = None) -> Law:  # noqa: N802
    """The reference's reject-then-clip lognormal from raw parameters (the old name here)."""
    return ReferenceLognormal.of(Lognormal.model_validate({"mu": mu, "sigma": sigma, "min": lo, "max": hi}))



def law(dist, engine: str = "fast", scale: float = 1.0) -> Law:
    """The bounded law ``engine`` draws ``dist`` from."""
    return families.law(dist, engine, scale)


def stated(dist, figure: str) -> float | None:
    """A distribution's mean or median as a config summary states it: the configured value for
    the reference's family (its summary's own), else the exact bounded law's (None if infinite)."""
    if families.family_of(dist).name == families.REFERENCE_KIND:
        return getattr(dist, figure)
    exact = families.law(dist)
    value = exact.mean if figure == "mean" else exact.median
    return value if np.isfinite(value) else None


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


@dataclass(frozen=True)
class Draw:
    """A quantity as the engine makes it: a draw from ``law`` put through a monotone transform
    (so the transform commutes with quantiles)."""

    law: Law
    transform: Callable[[np.ndarray], np.ndarray]

    def quantile(self, q: float) -> float:
        return float(self.transform(np.array([self.law.quantile(q)]))[0])

    @property
    def mean(self) -> float:
        return self.law.expect(self.transform)


def _levels(draw: Draw, levels: tuple[float, ...]) -> dict:
    return {_level_name(q): draw.quantile(q) for q in levels}


def _level_name(q: float) -> str:
    return f"p{round(q * 100):02d}"


def initial_context_draw(params: GenerationParams, engine: str = "fast") -> Draw:
    """Turn 0 of a primary session: whole-block L1 + L1.5, then int(L2) >= 1, capped below the limit."""
    prefix = params.fixed_prefix_tokens
    cap = params.max_prompt_tokens - 1

    def tokens(x: np.ndarray) -> np.ndarray:
        return np.minimum(prefix + np.maximum(np.trunc(x), 1), cap)

    return Draw(law(params.cache.layer2, engine), tokens)


def initial_context(params: GenerationParams, engine: str = "fast", levels: tuple[float, ...] = ()) -> Expected:
    """Turn 0 of a primary session: whole-block L1 + L1.5, then int(L2) >= 1, capped below the limit."""
    draw = initial_context_draw(params, engine)
    return Expected(
        draw.mean,
        draw.quantile(0.5),
        INITIAL_CONTEXT_BASIS,
        _levels(draw, levels) or None,
    )


INITIAL_CONTEXT_BASIS = ("primary sessions' turn 0: (ceil(L1/bs)+ceil(L1.5/bs))*bs + max(int(L2),1), "
                         "capped at max_prompt_tokens-1, L2 drawn within its bounds")


def generation_length(params: GenerationParams, engine: str = "fast", levels: tuple[float, ...] = ()) -> Expected:
    """Every turn's output: int(max(draw, floor)) with the draw inside its bounds."""
    dist = law(params.generation_length, engine)
    floor = params.output_floor

    def tokens(x: np.ndarray) -> np.ndarray:
        return np.trunc(np.maximum(x, floor))

    quantiles = {f"p{p:02d}": float(tokens(np.array([dist.quantile(p / 100)]))[0]) for p in (5, 99)}
    quantiles.update(_levels(Draw(dist, tokens), levels))
    return Expected(
        dist.expect(tokens),
        float(tokens(np.array([dist.quantile(0.5)]))[0]),
        f"int(max(draw, {floor})) with the draw inside its bounds",
        quantiles,
    )


def new_tokens(params: GenerationParams, engine: str = "fast", levels: tuple[float, ...] = ()) -> Expected:
    """What the sampler draws for a later turn: biased median, unscaled bounds, int, floor 1."""
    spec = params.new_tokens_per_turn
    dist = law(spec, engine, spec.bias)

    def tokens(x: np.ndarray) -> np.ndarray:
        return np.maximum(np.trunc(x), 1)

    return Expected(
        dist.expect(tokens),
        float(tokens(np.array([dist.quantile(0.5)]))[0]),
        f"the sampler's draw: median x bias ({spec.bias:g}), bounds not scaled, max(int(x),1); "
        "accepted turns are fewer large draws (a draw that reaches the context ends the session)",
        _levels(Draw(dist, tokens), levels) or None,
    )


def delay_mixture(params: GenerationParams, engine: str = "fast", levels: tuple[float, ...] = ()) -> Expected:
    """The inter-turn delay before context scaling: the clipped agentic/human mixture."""
    mix = params.inter_turn_delay
    agentic = law(mix.agentic_delay, engine)
    human = law(mix.human_delay, engine)
    cap = mix.max

    def clipped(x: np.ndarray) -> np.ndarray:
        return np.minimum(x, cap) if cap is not None else x

    frac = mix.agentic_fraction
    mean = frac * agentic.expect(clipped) + (1 - frac) * human.expect(clipped)

    def cdf(x: float) -> float:
        if cap is not None and x >= cap:
            return 1.0
        return frac * agentic.cdf(x) + (1 - frac) * human.cdf(x)

    def quantile(q: float) -> float:
        lo, hi = 0.0, max(agentic.quantile(0.9999), human.quantile(0.9999))
        for _ in range(200):  # bisection on the mixture CDF
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if cdf(mid) < q else (lo, mid)
        return min(hi, cap) if cap is not None else hi

    return Expected(
        mean,
        quantile(0.5),
        "the delay before context scaling (observed delay / max(0.2, 1-0.8*previous context/"
        "max_prompt_tokens)): agentic/human mixture, each drawn within its bounds, clipped to max",
        {_level_name(q): quantile(q) for q in levels} or None,
    )


def delay_scale(previous_context: np.ndarray, limit: int) -> np.ndarray:
    """The generator's context scaling of a delay: long contexts make the agent reply faster."""
    return np.maximum(0.2, 1.0 - 0.8 * previous_context / limit)


def turns_draw(params: GenerationParams, engine: str = "fast") -> Draw | None:
    """Turns mode: the drawn target, round-half-even and clamped to [min, max]."""
    if params.turns is None:
        return None
    spec = params.turns

    def count(x: np.ndarray) -> np.ndarray:
        return np.clip(np.round(x), spec.min, spec.max)

    return Draw(law(spec.target, engine), count)


TURNS_BASIS = ("the drawn target turn count: round-half-even of a draw within [min, max]; sessions "
               "truncated at the context limit end short of it")


def turns(params: GenerationParams, engine: str = "fast", levels: tuple[float, ...] = ()) -> Expected | None:
    """Turns mode: the drawn target, round-half-even and clamped to [min, max]."""
    draw = turns_draw(params, engine)
    if draw is None:
        return None
    return Expected(draw.mean, draw.quantile(0.5), TURNS_BASIS, _levels(draw, levels) or None)


def mixture(parts: list[tuple[float, Draw]], basis: str, levels: tuple[float, ...] = ()) -> Expected:
    """A per-session quantity of a trace whose sessions draw their class by fraction: the
    fraction-weighted mixture of the classes' laws (its mean, median and ``levels``; integer
    valued, as token and turn counts are)."""
    mean = float(sum(fraction * draw.mean for fraction, draw in parts))
    return Expected(mean, mixture_quantile(parts, 0.5), basis,
                    {_level_name(q): mixture_quantile(parts, q) for q in levels} or None)


def mixture_quantile(parts: list[tuple[float, Draw]], q: float) -> float:
    """The smallest integer v with sum(fraction * P(draw <= v)) >= q.

    P(draw <= v) is the largest p whose ``Draw.quantile`` is at most v (bisection down to
    adjacent doubles), so for one class this is ``Draw.quantile(q)`` exactly, also where the
    law's quantile falls on one of the transform's steps (an integer median)."""

    def below(draw: Draw, v: float) -> float:  # P(draw <= v): the largest p whose quantile is <= v
        lo, hi = 0.0, 1.0
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if draw.quantile(mid) <= v else (lo, mid)
        return lo

    def reached(v: float) -> bool:
        return math.fsum(fraction * below(draw, v) for fraction, draw in parts) >= q

    lo = min(draw.quantile(1e-12) for _, draw in parts)
    hi = max(draw.quantile(1 - 1e-12) for _, draw in parts)
    lo, hi = math.floor(lo) - 1, math.ceil(hi)
    while hi - lo > 1:  # reached(hi) holds, reached(lo) does not
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if reached(mid) else (mid, hi)
    return float(hi)


def expected_restart_injections(params: GenerationParams, primaries: int) -> float:
    """Expected number of sessions chosen to split (each still has to live to its split turn)."""
    r0 = params.restart_initial_probability
    if r0 == 0 or primaries == 0:
        return 0.0
    progress = np.arange(primaries) / max(1, primaries - 1)
    return float(np.where(progress >= 0.75, 0.0, r0 * (1 - progress / 0.75)).sum())
