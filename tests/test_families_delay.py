"""``delay LAW`` and ``delay mix`` with any named components: the IR, the fast engine's draws, the text, and the reference's mixture kept as it was."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from tracedsl.diagnostics import DiagnosticError
from tracedsl.engine import RunRequest, get_engine
from tracedsl.ir import Delay, DelayMixture, GenerationParams
from tracedsl.language.decompile import decompile
from tracedsl.language.format import format_text
from tracedsl.language.lower import compile_text
from tracedsl.reports import targets


def _params(delay: str) -> GenerationParams:
    return compile_text(f"turn {{\n  {delay}\n}}\n", "t.trace")[0].params


def _unscaled_delays(params: GenerationParams, sessions: int = 400) -> np.ndarray:
    """Every drawn delay before the engine's context scaling, from a fast run."""
    found = []
    for chunk in get_engine("fast").generate(RunRequest(params, sessions, 11)):
        later = ~np.isnan(chunk.delay_ms)
        previous = chunk.request_input_length[np.flatnonzero(later) - 1].astype(np.float64)
        found.append(chunk.delay_ms[later] / targets.delay_scale(previous, params.max_prompt_tokens))
    return np.concatenate(found)


def test_a_single_law_is_every_delay():
    params = _params("delay constant(300ms)")
    assert isinstance(params.inter_turn_delay, Delay)
    assert params.generation_params()["inter_turn_delay"] == {
        "law": {"kind": "constant", "value": 300.0, "min": None, "max": None}, "max": None}
    assert np.allclose(_unscaled_delays(params), 300.0)
    assert targets.delay_mixture(params).mean == pytest.approx(300.0)


def test_a_single_law_is_drawn_exactly_and_clipped_by_max():
    params = _params("delay pareto(alpha=1.4, min=50ms) max 2s")
    values = _unscaled_delays(params)
    assert values.min() >= 50 * (1 - 1e-9) and values.max() <= 2000 * (1 + 1e-9)

    def cdf(x):
        return np.where(x >= 2000, 1.0, stats.pareto(1.4, scale=50).cdf(x))

    assert stats.kstest(values, cdf).pvalue > 1e-3


def test_any_number_of_named_components():
    params = _params(
        "delay mix {\n    tool 60%: exponential(mean=2s)\n    think 30%: uniform(min=5s, max=10s)\n"
        "    human 10%: constant(1min)\n  }"
    )
    law = params.inter_turn_delay.law
    assert [(c.name, c.weight) for c in law.components] == [("tool", 0.6), ("think", 0.3), ("human", 0.1)]
    values = _unscaled_delays(params)
    parts = ((0.6, stats.expon(scale=2000)), (0.3, stats.uniform(loc=5000, scale=5000)))
    human = np.isclose(values, 60000.0)
    assert stats.binomtest(int(human.sum()), len(values), 0.1).pvalue > 1e-3
    rest = values[~human]

    def cdf(x):
        return sum(w * d.cdf(x) for w, d in parts) / 0.9

    assert stats.kstest(rest, cdf).pvalue > 1e-3


@pytest.mark.parametrize(
    "delay",
    [
        "delay constant(0.3s)",
        "delay pareto(alpha=1.4, min=50ms) max 600s",
        "delay mix {\n    tool 80%: exponential(mean=2s)\n    human 20%: lognormal(mean=40s, median=25s)\n  } max 5min",
        "delay mix {\n    70%: constant(1s)\n    30%: gamma(shape=2, scale=0.3s)\n  }",
        "delay mix {\n    agentic 60%: constant(1s)\n    human 40%: pareto(alpha=2, min=1s)\n  }",
    ],
)
def test_decompile_and_fmt_round_trip(delay):
    workload = compile_text(f"turn {{\n  {delay}\n}}\n", "t.trace")[0]
    text = decompile(workload)
    assert compile_text(text, "t.trace")[0] == workload
    assert format_text(text) == text
    assert f"  {delay}\n" in text  # decompile prints it as written here


def test_agentic_and_human_stay_the_reference_mixture():
    params = _params("delay mix {\n    agentic 70%: lognormal(mean=2s, median=1s)\n    human: lognormal(mean=9s, median=5s)\n  }")
    assert isinstance(params.inter_turn_delay, DelayMixture)
    assert params.generation_params()["inter_turn_delay"]["agentic_fraction"] == 0.7


def test_a_spec_json_delay_law_that_is_the_reference_mixture_is_refused():
    from tracedsl.language.validate import validate_params

    law = {"kind": "mix", "components": [
        {"name": "agentic", "weight": 0.5, "law": {"kind": "constant", "value": 1.0}},
        {"name": "human", "weight": 0.5, "law": {"kind": "constant", "value": 2.0}}]}
    params, problems = validate_params({"inter_turn_delay": {"law": law}})
    assert params is None and "is the reference's mixture" in problems[0].message


@pytest.mark.parametrize(
    ("delay", "says"),
    [
        ("delay mix {\n    tool 80%: constant(1s)\n    human 30%: constant(2s)\n  }", "add up to 110%"),
        ("delay mix {\n    tool: constant(1s)\n  }", "mix lines are '[name] weight: law'"),
        ("delay mix {\n    tool 50%: constant(1s)\n    tool 50%: constant(2s)\n  }", "'tool' is given twice"),
        ("delay constant(300)", "is not a time"),
    ],
)
def test_a_wrong_delay_is_a_located_error(delay, says):
    with pytest.raises(DiagnosticError) as caught:
        _params(delay)
    assert any(says in d.message and d.span.line >= 2 for d in caught.value.diagnostics)
