"""The empirical family: inline tables and files of values, their exact bounded step law, and located errors (a file's bad line by its own file and line)."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats

from tracedsl import families
from tracedsl.cli import cli
from tracedsl.diagnostics import DiagnosticError
from tracedsl.engine.samplers import session_keys, stream, uniforms
from tracedsl.language.decompile import decompile
from tracedsl.language.lower import compile_text

DRAWS = 20_000


def _compile(text: str, file: str = "t.trace"):
    return compile_text(text, file)[0]


def _draws(law) -> np.ndarray:
    keys = session_keys(777, np.arange(DRAWS, dtype=np.uint64))
    return law.sample(uniforms(keys, 0, stream("test.empirical")))


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("{ 1k: 50%, 4k: 30%, 16k: 20% }", {1000: 0.5, 4000: 0.3, 16000: 0.2}),
        ("{ 16k: 20%, 1k: 0.5, 4k: 30% }", {1000: 0.5, 4000: 0.3, 16000: 0.2}),
        ("{ 1k: 50%, 4k: 30%, 16k: 20%, max=10k }", {1000: 0.625, 4000: 0.375}),
        ("{ 1k: 50%, 4k: 30%, 16k: 20%, min=2k }", {4000: 0.6, 16000: 0.4}),
    ],
)
def test_draws_follow_the_table_restricted_to_its_bounds(table, expected):
    dist = _compile(f"turn {{ output empirical {table} }}").params.generation_length
    values = _draws(families.law(dist))
    observed = {v: int((values == v).sum()) for v in expected}
    assert sum(observed.values()) == DRAWS  # nothing outside the table or the bounds
    chi = stats.chisquare(list(observed.values()), [p * DRAWS for p in expected.values()])
    assert chi.pvalue > 1e-3
    law = families.law(dist)
    assert law.mean == pytest.approx(sum(v * p for v, p in expected.items()))
    assert law.cdf(min(expected)) == pytest.approx(expected[min(expected)])


def test_a_file_is_one_value_a_line_relative_to_the_trace_file(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "sizes.csv").write_text("# measured\n1k\n4000\n\n1k  # again\n250ms\n"[:-6] + "2k\n")
    spec = tmp_path / "spec.trace"
    spec.write_text('turn { new_tokens empirical("data/sizes.csv") }\n')
    dist = _compile(spec.read_text(), str(spec)).params.new_tokens_per_turn
    assert dist.values == [1000.0, 2000.0, 4000.0] and dist.weights == [0.5, 0.25, 0.25]


def test_a_file_of_times_takes_ms_for_a_bare_number(tmp_path):
    (tmp_path / "think.txt").write_text("250\n1.5s\n2min\n")
    spec = tmp_path / "spec.trace"
    spec.write_text('turn { delay mix { agentic 100%: empirical("think.txt") } }\n')
    dist = _compile(spec.read_text(), str(spec)).params.inter_turn_delay.agentic_delay
    assert dist.values == [250.0, 1500.0, 120000.0]


@pytest.mark.parametrize(
    "table",
    ["{ 1k: 50%, 4k: 30%, 16k: 20% }", "{ 1k: 33.3333%, 2k: 33.3333%, 3k: 33.3334%, min=1.5k }"],
)
def test_decompile_writes_the_table_back_exactly(table):
    workload = _compile(f"turn {{ output empirical {table} }}")
    assert _compile(decompile(workload)) == workload


def test_a_file_decompiles_to_its_values_and_back(tmp_path):
    (tmp_path / "v.txt").write_text("\n".join(str(v) for v in (1, 2, 2, 3, 3, 3, 10)) + "\n")
    spec = tmp_path / "spec.trace"
    spec.write_text('turn { output empirical("v.txt") }\n')
    workload = _compile(spec.read_text(), str(spec))
    assert _compile(decompile(workload)) == workload  # thirds and sevenths, printed exactly


def _error(text: str, file: str = "t.trace"):
    with pytest.raises(DiagnosticError) as caught:
        compile_text(text, file)
    return caught.value.diagnostics


def test_weights_that_do_not_add_up_are_located_at_each_weight():
    (diagnostic,) = _error("turn {\n  output empirical { 1k: 50%, 4k: 40% }\n}\n")
    assert diagnostic.code == "E107" and "add up to 90%, not 100%" in diagnostic.message
    assert (diagnostic.span.line, diagnostic.span.column) == (2, 26)
    assert [r.span.column for r in diagnostic.related] == [35]


def test_bounds_that_keep_no_value_are_an_error():
    (diagnostic,) = _error("turn {\n  output empirical { 1k: 50%, 4k: 50%, min=2k, max=3k }\n}\n")
    assert "no value lies within the bounds [2000, 3000]" in diagnostic.message


@pytest.mark.parametrize(
    ("content", "says", "line", "column"),
    [
        ("1k\n  2x\n", "'2x': the unit 'x' is not one of k, M", 2, 3),
        ("1k\n\nfoo\n", "'foo' is not a number", 3, 1),
        ("1k\n-5\n", "'-5' is negative", 2, 1),
    ],
)
def test_a_bad_line_is_reported_by_its_own_file_and_line(tmp_path, content, says, line, column):
    (tmp_path / "sizes.csv").write_text(content)
    spec = tmp_path / "spec.trace"
    spec.write_text('turn {\n  output empirical("sizes.csv")\n}\n')
    (diagnostic,) = _error(spec.read_text(), str(spec))
    assert diagnostic.code == "E109" and says in diagnostic.message
    assert diagnostic.file == str(tmp_path / "sizes.csv")
    assert (diagnostic.span.line, diagnostic.span.column) == (line, column)


@pytest.mark.parametrize(
    ("content", "says"),
    [(None, "cannot read"), ("# nothing\n\n", "holds no values"), (b"\xff\xfe1\n", "is not UTF-8 text")],
)
def test_a_missing_empty_or_binary_file_is_an_error_at_its_name(tmp_path, content, says):
    if isinstance(content, str):
        (tmp_path / "sizes.csv").write_text(content)
    elif content is not None:
        (tmp_path / "sizes.csv").write_bytes(content)
    spec = tmp_path / "spec.trace"
    spec.write_text('turn {\n  output empirical("sizes.csv")\n}\n')
    (diagnostic,) = _error(spec.read_text(), str(spec))
    assert diagnostic.code == "E109" and says in diagnostic.message
    assert diagnostic.file == str(spec) and (diagnostic.span.line, diagnostic.span.column) == (2, 20)


def test_the_cli_shows_the_files_own_line(tmp_path):
    (tmp_path / "sizes.csv").write_text("1k\nabc\n")
    (tmp_path / "spec.trace").write_text('turn { output empirical("sizes.csv") }\n')
    result = CliRunner().invoke(cli, ["compile", str(tmp_path / "spec.trace"), "-o", str(tmp_path / "s.json")])
    assert result.exit_code == 3  # invalid input
    assert f"{tmp_path / 'sizes.csv'}:2:1: error[E109]: 'abc' is not a number" in result.output
    assert "   2 | abc" in result.output


@pytest.mark.parametrize("text", ["empirical(min=1)", 'lognormal("x.csv")', "constant { 1: 100% }"])
def test_a_family_in_the_wrong_form_says_how_it_is_written(text):
    (diagnostic,) = _error(f"turn {{ output {text} }}")
    assert "is written" in diagnostic.message
