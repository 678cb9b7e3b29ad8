"""--set and --sweep in the language's own paths and units; a sweep runs the cross product and summarises it."""

from __future__ import annotations

import pytest

from tracedsl.diagnostics import DiagnosticError
from tracedsl.language.lower import compile_text
from tracedsl.loading import apply_overrides

BASE = """\
prefix { session lognormal(mean=10k, median=5k) }
turn {
  new_tokens lognormal(mean=2k, median=1k)
  output lognormal(mean=500, median=300)
}
"""


def spec(text: str = BASE):
    return compile_text(text, "<input>")[0].params


# --set in the language's paths ------------------------------------------------------------


DELAY = "delay mix { agentic 70%: lognormal(mean=2.5s, median=1.8s) human: lognormal(mean=40s, median=25s) }"


@pytest.mark.parametrize(("override", "old", "new"), [
    ("turn.output.mean=2k", "mean=500", "mean=2k"),
    ("turn.output.max=4k", "median=300", "median=300, max=4k"),
    ("turn.new_tokens.bias=1.2", "median=1k)", "median=1k) bias 1.2"),
    ("turn.delay.agentic.mean=3s", "turn {", "turn { " + DELAY.replace("mean=2.5s", "mean=3s")),
    ("turn.delay.agentic.fraction=60%", "turn {", "turn { " + DELAY.replace("70%", "60%")),
    ("turn.delay.max=2min", "turn {", "turn { " + DELAY + " max 2min"),
    ("prefix.session.median=6k", "median=5k", "median=6k"),
    ("prefix.global=1k", "prefix {", "prefix { global 1k"),
    ("prefix.groups=10", "prefix {", "prefix { groups 10"),
    ("prefix.groups.of=2k", "prefix {", "prefix { groups 50 of 2k"),
    ("context=1.5M", "prefix {", "context 1.5M prefix {"),
    ("reset=3%", "prefix {", "reset 3% prefix {"),
    ("reset.scaling=1.5", "prefix {", "reset 2% scaling 1.5 prefix {"),
    ("reset=none", "prefix {", "reset none prefix {"),
    ("restart=10%", "prefix {", "restart 10% prefix {"),
])
def test_a_language_path_sets_what_the_statement_writes(override, old, new):
    assert old in BASE
    expected = spec(BASE.replace(old, new, 1))
    assert expected != spec()
    assert apply_overrides(spec(), [override]) == expected


def test_the_spec_json_paths_keep_working():
    assert apply_overrides(spec(), ["generation_length.mean=2k"]) == apply_overrides(spec(), ["turn.output.mean=2k"])
    assert apply_overrides(spec(), ["reset.base_probability=0.02"]) == apply_overrides(spec(), ["reset=2%"])


@pytest.mark.parametrize(("override", "message", "hint"), [
    ("turn.output.mean=2s", "'2s' is not a token count (units: k, M)", None),
    ("turn.delay.agentic.mean=3", "'3' is not a time (units: ms, s, min)", "write 3ms, or a value in s or min"),
    ("context=1.2345k", "'1.2345k' must be a whole number here", None),
    ("turn.output.meen=3", "turn.output is lognormal: it takes mean, median, mu, sigma, min, max; not 'meen'",
     "did you mean 'mean'?"),
    ("turn.output.mean=lots", "'lots' is not a number", "a value such as 2k, 1.5s or 70% (a token count (units: k, M))"),
    ("turn.outptu.mean=3", "no such path 'turn.outptu.mean'", "did you mean 'turn.output.…'?"),
    ("restart=2k", "'2k' is not a probability (a fraction, or a percentage with %)", None),
])
def test_a_bad_language_path_or_value_names_the_path(override, message, hint):
    with pytest.raises(DiagnosticError) as caught:
        apply_overrides(spec(), [override])
    (diag,) = caught.value.diagnostics
    assert (diag.code, diag.file, diag.path) == ("E211", "--set", override.partition("=")[0])
    assert diag.message == message
    if hint is not None:
        assert diag.hint == hint


def test_a_family_keyword_takes_the_slot_unit_and_a_shape_keyword_none():
    pareto = spec("turn { delay pareto(alpha=1.4, min=50ms) }")
    changed = apply_overrides(pareto, ["turn.delay.min=1s", "turn.delay.alpha=2"])
    assert changed == spec("turn { delay pareto(alpha=2, min=1s) }")
    with pytest.raises(DiagnosticError):
        apply_overrides(pareto, ["turn.delay.alpha=2s"])
