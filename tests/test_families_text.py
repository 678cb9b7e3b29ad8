"""Every family in the language: it compiles, decompiles back to itself exactly, and a wrong law is a located error."""

from __future__ import annotations

import pytest

from tracedsl.diagnostics import DiagnosticError
from tracedsl.language.decompile import decompile
from tracedsl.language.format import format_text
from tracedsl.language.lower import compile_text

# One line of each family in a slot of each unit (tokens, times).
LAWS = [
    "constant(1k)",
    "constant(1k, min=0, max=2k)",
    "uniform(min=1k, max=4k)",
    "normal(mean=2k, sd=500, min=0)",
    "normal(mean=2k, sd=500, max=3k)",
    "exponential(mean=500)",
    "exponential(mean=500, min=100, max=1k)",
    "pareto(alpha=1.3, min=2k)",
    "pareto(alpha=1.3, min=2k, max=1M)",
    "gamma(shape=0.8, mean=2k)",
    "gamma(shape=2, scale=300, max=10k)",
    "weibull(shape=1.5, scale=3k)",
    "weibull(shape=0.7, scale=3k, min=10, max=90k)",
]
DELAYS = [
    "constant(300ms)",
    "exponential(mean=500ms)",
    "pareto(alpha=1.4, min=50ms, max=10min)",
    "uniform(min=1s, max=2.5s)",
]


def _spec(law: str, delay: str = "lognormal(mean=2.5s, median=1.8s)") -> str:
    return (
        f"prefix {{\n  session {law}\n}}\n"
        f"turn {{\n  new_tokens {law} bias 1.1\n  output {law}\n"
        f"  delay mix {{\n    agentic 70%: {delay}\n    human: {delay}\n  }}\n}}\n"
    )


@pytest.mark.parametrize("law", LAWS)
def test_a_family_compiles_in_every_token_slot_and_round_trips(law):
    workload, _ = compile_text(_spec(law), "t.trace")
    params = workload.params
    for dist in (params.cache.layer2, params.new_tokens_per_turn, params.generation_length):
        assert dist.kind == law.split("(")[0]
    text = decompile(workload)
    assert compile_text(text, "t.trace")[0] == workload
    assert format_text(text) == text  # decompile's text is canonical


@pytest.mark.parametrize("delay", DELAYS)
def test_a_family_compiles_as_a_delay_in_times(delay):
    workload, _ = compile_text(_spec("constant(1k)", delay), "t.trace")
    agentic = workload.params.inter_turn_delay.agentic_delay
    assert agentic.kind == delay.split("(")[0]
    assert compile_text(decompile(workload), "t.trace")[0] == workload


def test_units_follow_the_slot():
    workload, _ = compile_text(_spec("constant(2k)", "constant(1.5s)"), "t.trace")
    assert workload.params.generation_length.value == 2000.0
    assert workload.params.inter_turn_delay.agentic_delay.value == 1500.0
    with pytest.raises(DiagnosticError) as caught:
        compile_text(_spec("constant(2k)", "constant(1500)"), "t.trace")
    assert "is not a time" in caught.value.diagnostics[0].message


def _error(law: str):
    with pytest.raises(DiagnosticError) as caught:
        compile_text(f"turn {{\n  output {law}\n}}\n", "t.trace")
    (diagnostic,) = caught.value.diagnostics
    return diagnostic, diagnostic.span.column


@pytest.mark.parametrize(
    ("law", "says", "at"),
    [
        ("normal(mean=1k, sd=0)", "sd (0) must be > 0", "0"),
        ("normal(mean=1k, sd=-5)", "sd (-5) must be > 0", "-5"),
        ("pareto(alpha=0, min=2)", "alpha: input should be greater than 0", "0"),
        ("exponential(mean=1k, min=5k, max=2k)", "min (5000) must be <= max (2000)", "5k"),
        ("constant(5, max=3)", "the constant 5 lies beyond its max (3)", "5"),
        ("uniform(min=4k, max=1k)", "min (4000) must be below max (1000)", "4k"),
        ("normal(mean=1k, sd=10, max=0)", "the bounds [0, 0] leave no mass of this normal", "0"),
        ("exponential(mean=1, min=1M)", "the bound min=1000000 leaves no mass", "1M"),
        ("weibull(shape=1.5)", "generation_length.scale is required", "weibull"),
        ("gamma(shape=2, mean=1k, scale=500)", "a gamma takes its shape and one of mean or scale, not both", "1k"),
        ("gamma(shape=2)", "a gamma takes its shape and one of mean or scale", "2"),
        ("gamma(shape=2, scale=1, min=1M)", "the bound min=1000000 leaves no mass of this gamma", "1M"),
        ("exponential(1k)", "exponential takes named arguments only", "1k"),
        ("weibull(shape=1, scale=2, mean=3)", "weibull here takes shape, scale, min, max; not 'mean'", "mean=3"),
    ],
)
def test_a_wrong_law_is_a_located_error(law, says, at):
    diagnostic, column = _error(law)
    assert says in diagnostic.message
    line = f"  output {law}"
    assert line[column - 1 :].startswith(at)
