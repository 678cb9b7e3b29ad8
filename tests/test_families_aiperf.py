"""What AIPerf 0.13.0 cannot express: each construct warns (W105) where it is written, and --engine aiperf refuses it there."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from tracedsl.cli import cli
from tracedsl.language.lower import compile_text
from tracedsl.loading import load_spec
from tracedsl.resources import bundled_spec_names

REFERENCE_ONLY = """turn {
  output lognormal(mean=500, median=300, max=2k)
  delay mix {
    agentic 70%: lognormal(mean=2s, median=1s)
    human 30%: lognormal(mean=9s, median=5s)
  }
}
"""


def _warnings(text: str) -> list:
    return [w for w in compile_text(text, "t.trace")[1] if w.code == "W105"]


def test_a_spec_aiperf_can_express_gets_no_warning():
    assert _warnings(REFERENCE_ONLY) == []


@pytest.mark.parametrize(
    ("line", "says", "column"),
    [
        ("  output pareto(alpha=1.3, min=2k)", "generation_length: AIPerf 0.13.0 has no pareto distribution", 10),
        ("  new_tokens gamma(shape=2, mean=1k) bias 1.1", "new_tokens_per_turn: AIPerf 0.13.0 has no gamma", 14),
        ("  delay constant(300ms)", "not a delay of one constant law", 9),
        ("  delay mix {\n    tool 80%: exponential(mean=2s)\n    human 20%: constant(1min)\n  }",
         "not a delay mix of tool, human", 3),
    ],
)
def test_each_construct_aiperf_lacks_warns_where_it_is_written(line, says, column):
    (warning,) = _warnings(f"turn {{\n{line}\n}}\n")
    assert says in warning.message
    assert (warning.span.line, warning.span.column) == (2, column)
    assert "--engine aiperf refuses it" in warning.hint


def test_every_construct_is_named_once():
    text = "prefix { session uniform(min=1k, max=2k) }\nturn { output constant(1k)\n  delay mix { agentic 50%: weibull(shape=1, scale=1s) human: lognormal(mean=9s, median=5s) } }\n"
    paths = sorted(w.path for w in _warnings(text))
    assert paths == ["cache.layer2", "generation_length", "inter_turn_delay.agentic_delay"]


def test_the_aiperf_engine_refuses_at_the_construct(tmp_path):
    spec = tmp_path / "spec.trace"
    spec.write_text("turn {\n  output lognormal(mean=500, median=300)\n  delay pareto(alpha=1.4, min=50ms)\n}\n")
    result = CliRunner().invoke(cli, ["run", str(spec), "-n", "5", "--engine", "aiperf", "-o", str(tmp_path / "out")])
    assert result.exit_code == 5  # an engine limit
    assert (f"{spec}:3:9: error[E501]: the aiperf engine cannot run this spec: inter_turn_delay: AIPerf 0.13.0 "
            "has only the agentic/human delay mixture") in result.output
    assert "   3 |   delay pareto(alpha=1.4, min=50ms)" in result.output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_the_fast_engine_runs_what_aiperf_cannot(tmp_path):
    spec = tmp_path / "spec.trace"
    spec.write_text("turn {\n  delay pareto(alpha=1.4, min=50ms)\n}\n")
    result = CliRunner().invoke(cli, ["run", str(spec), "-n", "5", "-o", str(tmp_path / "out")])
    assert result.exit_code == 0 and "warning[W105]" in result.output


# The bundled specs AIPerf can load; the others (the presets of real agents, docs/presets.md, and
# the spec fitted to a foreign trace, docs/fit.md) use what it cannot, and say so.
AIPERF_SPECS = {"aiperf-defaults", "default", "inference-day-2026"}


def test_the_references_bundled_specs_are_all_aiperf_specs():
    for name in bundled_spec_names():
        warned = [w for w in load_spec(name).warnings if w.code == "W105"]
        assert (not warned) == (name in AIPERF_SPECS), name
