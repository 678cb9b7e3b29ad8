"""The Python API (docs/api.md): each function returns data, raises DiagnosticError for bad input, never prints or exits."""

from __future__ import annotations

import orjson
import pytest

from tests.conftest import ROOT
from tracedsl import pipeline
from tracedsl.diagnostics import DiagnosticError

SMALL = 'workload "small"\ncontext 100k\n'


@pytest.fixture(autouse=True)
def _silent(capfd):
    """Nothing an API call does may reach stdout or stderr."""
    yield
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


def _dataset_rows(run_dir):
    return [orjson.loads(line) for line in (run_dir / "dataset.jsonl").read_bytes().splitlines()]


def test_compile_text_returns_the_workload_and_its_warnings():
    compiled = pipeline.compile_text(SMALL, "small.trace")
    assert compiled.workload.name == "small"
    assert compiled.workload.params.max_prompt_tokens == 100_000
    assert compiled.diagnostics == []
    warned = pipeline.compile_text((ROOT / "specs" / "default.trace").read_text(), "d.trace")
    assert [d.code for d in warned.diagnostics] == ["W101", "W101"]
    assert all(d.file == "d.trace" and d.span is not None for d in warned.diagnostics)


def test_compile_text_raises_a_located_diagnostic_error():
    with pytest.raises(DiagnosticError) as raised:
        pipeline.compile_text('workload "x"\ncontxt 200k\n', "typo.trace")
    (diag,) = raised.value.diagnostics
    assert (diag.file, diag.span.line, diag.span.column) == ("typo.trace", 2, 1)
    assert pipeline.category_of(raised.value) is pipeline.Category.INPUT


def test_compile_file_takes_any_spec_form():
    compiled = pipeline.compile_file("default")
    assert compiled.workload.name == "default" and compiled.loaded.kind == "trace"
    with pytest.raises(DiagnosticError) as raised:
        pipeline.compile_file(ROOT / "no-such.trace")
    assert pipeline.category_of(raised.value) is pipeline.Category.IO


def test_run_into_a_directory_returns_paths_and_figures(tmp_path):
    result = pipeline.run("default", tmp_path, num_sessions=20, seed=5, html=False)
    assert result.run_dir.parent == tmp_path and result.run_dir.is_dir()
    assert [p.name for p in result.files[:2]] == ["dataset.jsonl", "manifest.json"]
    assert all(p.is_file() for p in result.files)
    rows = _dataset_rows(result.run_dir)
    assert result.rows == len(rows) and result.sessions == len({r["session_id"] for r in rows})
    assert sum(result.end_reasons.values()) == result.sessions
    assert result.validation.ok and result.passed(strict=True)


@pytest.mark.parametrize("engine", ["fast", "aiperf"])
def test_run_rows_gives_the_rows_the_dataset_holds(engine, tmp_path):
    result = pipeline.run("default", tmp_path, num_sessions=30, seed=9, engine=engine, html=False)
    rows = list(pipeline.run_rows("default", num_sessions=30, seed=9, engine=engine))
    assert rows == _dataset_rows(result.run_dir)
    # the same keys in the same order, as printed
    assert [list(r) for r in rows] == [list(r) for r in _dataset_rows(result.run_dir)]
    assert list(tmp_path.iterdir()) == [result.run_dir]  # run_rows wrote nothing


def test_run_rows_of_a_compiled_workload_and_with_overrides():
    workload = pipeline.compile_text(SMALL).workload
    rows = list(pipeline.run_rows(workload, num_sessions=3, seed=1,
                                  overrides=["cache.layer1_tokens=1024"]))
    assert rows and max(r["input_length"] for r in rows) <= 100_000
    assert rows[0]["hash_ids"][:2] == [0, 1]  # the two blocks of the 1k global prefix come first


def test_run_rows_checks_the_spec_before_the_first_row():
    with pytest.raises(DiagnosticError) as raised:
        pipeline.run_rows("default", overrides=["cache.nope=3"])  # not iterated
    assert raised.value.diagnostics[0].path == "cache.nope"


@pytest.mark.parametrize("call, category", [
    (lambda out: pipeline.run("default", out, seed=-1), pipeline.Category.USAGE),
    (lambda out: pipeline.run("default", out, engine="slow"), pipeline.Category.USAGE),
    (lambda out: pipeline.run("default", out, num_sessions=2, executor="dask"), pipeline.Category.USAGE),
    (lambda out: pipeline.run("default", out, num_sessions=2, engine="aiperf",
                              overrides=["cache.layer1_5_groups.num_groups=2000"]),
     pipeline.Category.LIMIT),
    (lambda out: pipeline.run(ROOT / "nope.trace", out), pipeline.Category.IO),
])
def test_run_failures_are_one_exception_type_with_a_category(call, category, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(DiagnosticError) as raised:
        call(out)
    assert pipeline.category_of(raised.value) is category
    assert not out.exists() or list(out.iterdir()) == []


def test_run_into_an_unwritable_place_is_an_io_diagnostic(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(DiagnosticError) as raised:
        pipeline.run("default", tmp_path / "afile" / "sub", num_sessions=2, html=False)
    assert pipeline.category_of(raised.value) is pipeline.Category.IO
    assert "afile" in raised.value.diagnostics[0].file


def test_validate_returns_the_report(tmp_path):
    result = pipeline.run("default", tmp_path, num_sessions=10, html=False)
    report = pipeline.validate(result.run_dir / "dataset.jsonl")
    assert report.ok and report.rows == result.rows and report.block_size == 512
    with pytest.raises(DiagnosticError) as raised:
        pipeline.validate(tmp_path / "missing.jsonl")
    assert pipeline.category_of(raised.value) is pipeline.Category.IO


def test_report_and_simulate_read_a_run_directory(tmp_path):
    result = pipeline.run("default", tmp_path / "runs", num_sessions=10, html=False)
    done = pipeline.report(result.run_dir, tmp_path / "reports", html=False)
    assert (done.rows, done.trace.block_size_from) == (result.rows, "the manifest")
    assert (tmp_path / "reports" / "quality.json") in done.files
    simulated = pipeline.simulate(result.run_dir, concurrency=4, max_sessions=0)
    assert simulated.config.block_size == 512 and simulated.config.concurrency == 4
    assert simulated.result.summary["requests"] == result.rows
    with pytest.raises(DiagnosticError) as raised:
        pipeline.simulate(result.run_dir, concurrency=0)
    assert pipeline.category_of(raised.value) is pipeline.Category.USAGE
    assert raised.value.diagnostics[0].file == "--concurrency"
