"""The mix family: a component picked by one uniform and drawn from a second; exact bounds on the whole mix; text and errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from tracedsl import families
from tracedsl.diagnostics import DiagnosticError
from tracedsl.engine.samplers import session_keys, stream, uniforms
from tracedsl.families.mix import value_uniforms
from tracedsl.language.decompile import decompile
from tracedsl.language.lower import compile_text

DRAWS = 20_000


def _law(text: str, scale: float = 1.0):
    workload = compile_text(f"turn {{ new_tokens {text} }}", "t.trace")[0]
    return families.law(workload.params.new_tokens_per_turn, "fast", scale)


def _draws(law) -> np.ndarray:
    keys = session_keys(99, np.arange(DRAWS, dtype=np.uint64))
    return law.sample(uniforms(keys, 0, stream("test.mix")))


def _lognormal(mean: float, median: float):
    sigma = np.sqrt(2 * np.log(mean / median))
    return stats.lognorm(sigma, scale=median)


def test_an_unbounded_mix_follows_its_weighted_laws():
    law = _law("mix { 70%: lognormal(mean=900, median=125), 30%: pareto(alpha=1.2, min=5k) }")
    parts = ((0.7, _lognormal(900, 125)), (0.3, stats.pareto(1.2, scale=5000)))

    def cdf(x):
        return sum(w * d.cdf(x) for w, d in parts)

    values = _draws(law)
    assert stats.kstest(values, cdf).pvalue > 1e-3
    assert law.cdf(law.median) == pytest.approx(0.5, abs=1e-9)


def test_a_bounded_mix_is_the_mix_restricted_to_its_bounds():
    law = _law("mix { 60%: exponential(mean=1k), 40%: normal(mean=5k, sd=1k), min=500, max=6k }")
    parts = ((0.6, stats.expon(scale=1000)), (0.4, stats.norm(loc=5000, scale=1000)))

    # the normal component is itself bounded below at 0 (every slot is non-negative)
    parts_cdf = lambda x: 0.6 * parts[0][1].cdf(x) + 0.4 * (parts[1][1].cdf(x) - parts[1][1].cdf(0)) / parts[1][1].sf(0)  # noqa: E731
    low, high = parts_cdf(500.0), parts_cdf(6000.0)
    values = _draws(law)
    assert values.min() >= 500 and values.max() <= 6000  # restricted, not clipped
    assert (values == 6000).mean() < 1e-3 and (values == 500).mean() < 1e-3
    assert stats.kstest(values, lambda x: (parts_cdf(np.clip(x, 500, 6000)) - low) / (high - low)).pvalue > 1e-3
    assert law.mass == pytest.approx(high - low, rel=1e-6)


def test_a_mix_with_an_atom_keeps_its_weight():
    law = _law("mix { small 25%: constant(100), big 75%: uniform(min=1k, max=2k) }")
    values = _draws(law)
    assert stats.binomtest(int((values == 100).sum()), DRAWS, 0.25).pvalue > 1e-3
    big = values[values != 100]
    assert stats.kstest(big, stats.uniform(loc=1000, scale=1000).cdf).pvalue > 1e-3


def test_the_pick_and_the_value_come_from_independent_uniforms():
    # Within the first component's share of the pick, the value's uniform is still uniform.
    u = uniforms(session_keys(5, np.arange(DRAWS, dtype=np.uint64)), 0, stream("test.mix.pick"))
    second = value_uniforms(u)
    assert stats.kstest(second[u < 0.1], "uniform").pvalue > 1e-3
    assert abs(stats.pearsonr(u, second).statistic) < 0.03


def test_a_scale_multiplies_every_component():
    law = _law("mix { 50%: constant(100), 50%: constant(300) }", scale=2.0)
    assert set(_draws(law).tolist()) == {200.0, 600.0}


@pytest.mark.parametrize(
    "text",
    [
        "mix { 70%: lognormal(mean=900ms, median=125ms), 30%: pareto(alpha=1.2, min=5s) }",
        "mix { tool 80%: exponential(mean=2s), human 20%: mix { 50%: constant(1min), 50%: uniform(min=1min, max=5min) } }",
        "mix { 33.3333333333333%: constant(1s), 66.6666666666667%: constant(2s), max=1.5s }",
    ],
)
def test_a_mix_round_trips_in_a_time_slot(text):
    workload = compile_text(f"turn {{ delay mix {{ agentic 100%: {text} }} }}", "t.trace")[0]
    assert compile_text(decompile(workload), "t.trace")[0] == workload


def _error(text: str):
    with pytest.raises(DiagnosticError) as caught:
        compile_text(f"turn {{\n  output {text}\n}}\n", "t.trace")
    return caught.value.diagnostics


def test_weights_that_do_not_add_up_are_an_error_at_each_weight():
    (diagnostic,) = _error("mix { 70%: constant(1), 20%: constant(2) }")
    assert diagnostic.code == "E107" and "the components' weights add up to 90%" in diagnostic.message
    assert diagnostic.span.column == 16 and [r.span.column for r in diagnostic.related] == [34]


def test_a_component_named_twice_is_an_error():
    (diagnostic,) = _error("mix { a 50%: constant(1), a 50%: constant(2) }")
    assert diagnostic.code == "E101" and "'a' is given twice" in diagnostic.message


def test_a_component_without_a_weight_or_law_is_an_error():
    (diagnostic,) = _error("mix { a: constant(1) }")
    assert "mix lines are '[name] weight: law'" in diagnostic.message


def test_a_components_own_error_points_into_it():
    (diagnostic,) = _error("mix { 50%: constant(1),\n    50%: normal(mean=1k, sd=0) }")
    assert "sd (0) must be > 0" in diagnostic.message
    assert (diagnostic.span.line, diagnostic.span.column) == (3, 29)


def test_bounds_that_keep_no_mass_of_any_component_are_an_error():
    (diagnostic,) = _error("mix { 50%: constant(1), 50%: constant(2), min=5 }")
    assert "leave no mass of this mix" in diagnostic.message
