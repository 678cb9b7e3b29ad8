"""--set and --sweep in the language's own paths and units; a sweep runs the cross product and summarises it."""

from __future__ import annotations

import json

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
    ("turn.delay.agentic.mean=3", "'3' is not a time (units: ms, s, min, h)", "write 3ms, or a value in s or min"),
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


# --sweep ----------------------------------------------------------------------------------


def _run(*args: str):
    from click.testing import CliRunner

    from tracedsl.cli import cli

    return CliRunner().invoke(cli, ["run", *args])


def _mean_prompt(rows) -> float:
    """The mean prompt a request sends when replayed: its session's earlier inputs and outputs, and its own input."""
    sent: dict[str, int] = {}
    prompts = []
    for row in rows:
        prompt = sent.get(row["session_id"], 0) + row["input_length"]
        prompts.append(prompt)
        sent[row["session_id"]] = prompt + row["output_length"]
    return sum(prompts) / len(prompts)


def _rows(path):
    return path.read_bytes().splitlines()


def test_a_sweep_runs_the_cross_product_and_summarises_each_point(tmp_path):
    result = _run("default", "-n", "12", "--seed", "3", "-o", str(tmp_path), "-q", "--no-reports",
                  "--set", "reset=3%", "--sweep", "turn.output.mean=1.5k,2k", "--sweep", "context=100k,167k")
    assert result.exit_code == 0, result.output
    (directory,) = tmp_path.iterdir()
    document = json.loads((directory / "sweep.json").read_text())
    assert [p["values"] for p in document["points"]] == [
        {"turn.output.mean": a, "context": b} for a in ("1.5k", "2k") for b in ("100k", "167k")]
    assert len({p["run_dir"] for p in document["points"]}) == 4
    for point in document["points"]:
        run_dir = directory / point["run_dir"]
        rows = [json.loads(line) for line in _rows(run_dir / "dataset.jsonl")]
        assert point["requests"] == len(rows)
        assert point["sessions"] == len({row["session_id"] for row in rows})
        assert point["mean_input"] == pytest.approx(_mean_prompt(rows), abs=0.01)
        assert 0 < point["hit_rate"] < 1
        assert sum(point["end_reasons"].values()) == point["sessions"]
        # the same bytes as one run with the point's values given by --set
        alone = tmp_path.parent / f"alone-{point['run_dir']}"
        sets = [arg for path, value in point["values"].items() for arg in ("--set", f"{path}={value}")]
        single = _run("default", "-n", "12", "--seed", "3", "-o", str(alone), "-q", "--no-reports",
                      "--set", "reset=3%", *sets)
        assert single.exit_code == 0, single.output
        (alone_dir,) = alone.iterdir()
        assert (alone_dir / "dataset.jsonl").read_bytes() == (run_dir / "dataset.jsonl").read_bytes()
    # the points differ where their values do
    requests = [p["requests"] for p in document["points"]]
    assert requests[0] != requests[1]
    table = (directory / "sweep.md").read_text()
    assert table.count("\n| 1.5k | 100k |") == 1 and table.count("\n| 2k | 167k |") == 1
    assert "| `turn.output.mean` | `context` | sessions | requests | mean input | hit rate |" in table


@pytest.mark.parametrize(("sweep", "code", "message"), [
    ("turn.output.mean", 2, "'turn.output.mean' is not PATH=V1,V2,…"),
    ("turn.output.mean=1k,,2k", 2, "is not PATH=V1,V2,…"),
    ("turn.output.mean=2s,3k", 3, "'2s' is not a token count (units: k, M)"),
    ("turn.output.mean=200", 3, "mean (200) must be >= median"),
])
def test_a_bad_sweep_is_refused_before_anything_is_written(tmp_path, sweep, code, message):
    result = _run("default", "-n", "5", "-o", str(tmp_path / "out"), "-q", "--no-reports",
                  "--sweep", "context=100k,120k", "--sweep", sweep)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "E2" in result.output or "E1" in result.output
    assert not (tmp_path / "out").exists()


def test_a_swept_value_error_is_named_for_the_sweep(tmp_path):
    result = _run("default", "-n", "5", "-o", str(tmp_path), "-q", "--sweep", "turn.output.mean=2s")
    assert "--sweep: turn.output.mean: error[E211]: '2s' is not a token count" in result.output
    assert "(in the sweep's point turn.output.mean=2s)" in result.output


def test_a_path_swept_twice_or_too_many_points_is_a_usage_error(tmp_path):
    from tracedsl.pipeline.sweeps import MAX_POINTS

    twice = _run("default", "-o", str(tmp_path), "--sweep", "context=1k", "--sweep", "context=2k")
    assert twice.exit_code == 2 and "context is swept twice" in twice.output
    values = ",".join(str(n) for n in range(1, 40))
    many = _run("default", "-o", str(tmp_path), "--sweep", f"prefix.groups={values}",
                "--sweep", f"turns.retry={values}")
    assert many.exit_code == 2 and f"more than {MAX_POINTS}" in many.output
    assert not any(tmp_path.iterdir())


def test_a_sweep_shows_each_warning_once(tmp_path):
    result = _run("default", "-n", "3", "-o", str(tmp_path), "--no-reports",
                  "--sweep", "prefix.session.median=15k", "--sweep", "context=100k,120k")
    assert result.exit_code == 0, result.output
    assert result.output.count("W101") == 1  # mean = median: a constant, at both points
