"""Each family's exact bounded law: 20k counter-based draws pass a KS test against scipy's law restricted to the bounds."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import TypeAdapter
from scipy import integrate, stats

from tracedsl import families
from tracedsl.engine.samplers import session_keys, stream, uniforms
from tracedsl.ir import Distribution

DRAWS = 20_000
ALPHA = 1e-3
_ADAPTER = TypeAdapter(Distribution)


def _draws(law, name: str) -> np.ndarray:
    keys = session_keys(12345, np.arange(DRAWS, dtype=np.uint64))
    return law.sample(uniforms(keys, 0, stream(f"test.{name}")))


def _truncated_cdf(frozen, low: float, high: float):
    # Through the survival function, so an interval far in the right tail keeps its precision.
    s_low, s_high = frozen.sf(low), frozen.sf(high)

    def cdf(x):
        return np.clip((s_low - frozen.sf(np.clip(x, low, high))) / (s_low - s_high), 0.0, 1.0)

    return cdf


# (IR data, scipy's unbounded law, the bounds the exact law must keep)
CASES = {
    "uniform": ({"kind": "uniform", "min": 1000.0, "max": 4000.0}, stats.uniform(loc=1000, scale=3000), (1000, 4000)),
    "normal": ({"kind": "normal", "mean": 2000.0, "sd": 500.0, "min": 0.0}, stats.norm(loc=2000, scale=500), (0, np.inf)),
    "normal, below 0 cut": ({"kind": "normal", "mean": 100.0, "sd": 500.0}, stats.norm(loc=100, scale=500), (0, np.inf)),
    "normal, far right": (
        {"kind": "normal", "mean": 0.0, "sd": 1.0, "min": 9.0, "max": 10.0}, stats.truncnorm(9, 10), (9, 10)),
    "exponential": ({"kind": "exponential", "mean": 500.0}, stats.expon(scale=500), (0, np.inf)),
    "exponential, both bounds": (
        {"kind": "exponential", "mean": 500.0, "min": 200.0, "max": 900.0}, stats.expon(scale=500), (200, 900)),
    "pareto": ({"kind": "pareto", "alpha": 1.3, "min": 2000.0}, stats.pareto(1.3, scale=2000), (2000, np.inf)),
    "pareto, capped": (
        {"kind": "pareto", "alpha": 1.3, "min": 2000.0, "max": 60000.0}, stats.pareto(1.3, scale=2000),
        (2000, 60000)),
    "gamma": ({"kind": "gamma", "shape": 0.8, "mean": 2000.0}, stats.gamma(0.8, scale=2500), (0, np.inf)),
    "gamma, by scale": ({"kind": "gamma", "shape": 2.0, "scale": 300.0}, stats.gamma(2.0, scale=300), (0, np.inf)),
    "gamma, bounded": (
        {"kind": "gamma", "shape": 0.8, "mean": 2000.0, "min": 100.0, "max": 5000.0},
        stats.gamma(0.8, scale=2500), (100, 5000)),
    "gamma, far right": (
        {"kind": "gamma", "shape": 2.0, "scale": 300.0, "min": 15000.0}, stats.gamma(2.0, scale=300), (15000, np.inf)),
    "weibull": ({"kind": "weibull", "shape": 1.5, "scale": 3000.0}, stats.weibull_min(1.5, scale=3000), (0, np.inf)),
    "weibull, bounded": (
        {"kind": "weibull", "shape": 0.7, "scale": 3000.0, "min": 500.0, "max": 20000.0},
        stats.weibull_min(0.7, scale=3000), (500, 20000)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_draws_follow_the_exact_bounded_law(case):
    data, frozen, (low, high) = CASES[case]
    dist = _ADAPTER.validate_python(data)
    law = families.law(dist)
    values = _draws(law, case)
    assert values.min() >= low and values.max() <= high  # truncated, never outside the bounds
    cdf = _truncated_cdf(frozen, low, high)
    assert stats.kstest(values, cdf).pvalue > ALPHA
    # The law's own CDF and quantile agree with scipy's truncated law.
    for q in (0.1, 0.5, 0.9):
        x = law.quantile(q)
        assert cdf(np.array([x]))[0] == pytest.approx(q, abs=1e-6)
        assert law.cdf(x) == pytest.approx(q, abs=1e-6)


@pytest.mark.parametrize("case", list(CASES))
def test_the_laws_mean_is_the_truncated_laws(case):
    data, frozen, (low, high) = CASES[case]
    law = families.law(_ADAPTER.validate_python(data))
    cdf = _truncated_cdf(frozen, low, high)
    # E[X] = low + the integral of P(X > x) over the interval (by scipy's survival function).
    tail, _ = integrate.quad(lambda x: 1.0 - cdf(np.array([x]))[0], low, high, limit=500)
    expected = low + tail
    assert law.mean == pytest.approx(expected, rel=2e-3)


def test_a_draw_that_the_bounds_can_barely_hold_is_not_clipped():
    # A clip would pile mass on 10; the exact law spreads it over [9, 10], densest at 9.
    law = families.law(_ADAPTER.validate_python(CASES["normal, far right"][0]))
    values = _draws(law, "far")
    assert (values == 10.0).mean() < 1e-3 and np.median(values) < 9.2


def test_a_constant_is_every_draw():
    law = families.law(_ADAPTER.validate_python({"kind": "constant", "value": 1000.0}))
    assert set(_draws(law, "constant").tolist()) == {1000.0}
    assert law.mean == law.median == 1000.0


@pytest.mark.parametrize("case", ["normal", "pareto, capped", "weibull, bounded", "uniform", "exponential", "gamma, bounded"])
def test_a_scale_multiplies_the_variable_but_not_the_bounds(case):
    data, frozen, (low, high) = CASES[case]
    scale = 1.5
    law = families.law(_ADAPTER.validate_python(data), "fast", scale)
    values = _draws(law, f"scaled {case}")
    loc, spread = frozen.kwds.get("loc", 0.0), frozen.kwds.get("scale", 1.0)
    moved = frozen.dist(*frozen.args, loc=loc * scale, scale=spread * scale)
    cdf = _truncated_cdf(moved, low, high)
    if case == "uniform":  # its bounds are its parameters, which the scale moves
        low, high = low * scale, high * scale
    cdf = _truncated_cdf(moved, low, high)
    assert values.min() >= low and values.max() <= high
    assert stats.kstest(values, cdf).pvalue > ALPHA


def test_the_aiperf_engine_has_none_of_these_laws():
    for data, _, _ in CASES.values():
        with pytest.raises(ValueError, match="AIPerf has no"):
            families.law(_ADAPTER.validate_python(data), "aiperf")
