"""Arrival processes: the primaries' start times follow the law, do not depend on chunking, and
continuations start after their parent by the latency model."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from tests.conftest import ROOT
from tracedsl.diagnostics import DiagnosticError
from tracedsl.engine import RunRequest
from tracedsl.engine.arrivals import session_durations_ms
from tracedsl.engine.fast import FastEngine
from tracedsl.ir import GenerationParams, Latency
from tracedsl.language.decompile import decompile
from tracedsl.language.lower import compile_text

N = 20_000


def _run(text: str, n: int = N, chunk: int = 4096, seed: int = 7):
    params = compile_text(text, "t.trace")[0].params
    chunks = list(FastEngine(chunk_sessions=chunk).generate(RunRequest(params, n, seed)))
    return params, chunks


def _primary_starts(chunks) -> np.ndarray:
    return np.concatenate([c.timestamp_ms[c.row_offsets[:-1]][~c.is_restart.astype(bool)] for c in chunks])


def test_poisson_gaps_are_exponential_at_the_rate():
    _, chunks = _run("arrivals poisson(rate=2/s)")
    starts = _primary_starts(chunks)
    assert starts[0] == 0.0 and np.all(np.diff(starts) >= 0)
    assert stats.kstest(np.diff(starts), stats.expon(scale=500.0).cdf).pvalue > 1e-3
    assert stats.kstest(np.diff(starts), stats.expon(scale=400.0).cdf).pvalue < 1e-6  # the test can fail


def test_gamma_gaps_have_the_mean_and_cv():
    _, chunks = _run("arrivals gamma(rate=2/s, cv=3)")
    gaps = np.diff(_primary_starts(chunks))
    shape = 1 / 9
    law = stats.gamma(shape, scale=500.0 / shape)
    # a gap far below a timestamp's float resolution (shape 1/9 draws many) is lost in the sum;
    # above 1 ms the gaps follow the law restricted there, and the share below 1 ms is right
    floor = 1.0
    below = law.cdf(floor)
    assert abs(np.mean(gaps < floor) - below) < 4 * np.sqrt(below * (1 - below) / gaps.size)
    kept = gaps[gaps >= floor]
    assert stats.kstest(kept, lambda x: (law.cdf(x) - below) / (1 - below)).pvalue > 1e-3


def test_constant_gaps_are_exact():
    _, chunks = _run("arrivals constant(rate=30/min)", n=100)
    assert np.array_equal(_primary_starts(chunks), np.arange(100) * 2000.0)


def test_stages_follow_the_piecewise_rate():
    _, chunks = _run("arrivals stages { 5min at 1/s  10min ramp to 8/s  5min at 8/s }", n=6000)
    starts = _primary_starts(chunks) / 1000.0
    first = starts[starts < 300.0]
    assert abs(first.size - 300) < 4 * np.sqrt(300)
    # within the ramp, Λ(t) - Λ(300) = (t-300) + 7 (t-300)² / 1200, times as a unit Poisson process
    ramp = starts[(starts >= 300.0) & (starts < 900.0)] - 300.0
    work = ramp + 7.0 * ramp**2 / 1200.0
    assert stats.kstest(np.diff(work), stats.expon().cdf).pvalue > 1e-3


def test_start_times_do_not_depend_on_the_chunking():
    text = "arrivals gamma(rate=5/s, cv=2)\nrestart 30%"
    _, a = _run(text, n=3000, chunk=4096)
    _, b = _run(text, n=3000, chunk=37)
    ta = np.concatenate([c.timestamp_ms[c.row_offsets[:-1]] for c in a])
    tb = np.concatenate([c.timestamp_ms[c.row_offsets[:-1]] for c in b])
    assert np.array_equal(ta, tb)


def test_a_continuation_starts_after_its_parent_by_the_latency_model():
    params, chunks = _run("arrivals poisson(rate=2/s)\nrestart 50%\nlatency { prefill 10k/s  decode 50/s }", n=2000, chunk=128)
    assert params.latency == Latency(prefill_tokens_per_s=10_000.0, decode_tokens_per_s=50.0)
    starts = _primary_starts(chunks)
    restarts = [c.timestamp_ms[c.row_offsets[:-1]][c.is_restart.astype(bool)] for c in chunks]
    parents = [c.extras["primary_index"][c.is_restart.astype(bool)] for c in chunks]
    after = np.concatenate(restarts) - starts[np.concatenate(parents)]
    assert after.size > 100 and np.all(after > 0)
    # exactly the parent's requests at 10k/50 tokens a second plus its delays, from the rows written
    duration = {}
    for c in chunks:
        spent = (c.request_input_length / 10_000.0 + c.output_length / 50.0) * 1000.0 + np.nan_to_num(c.delay_ms)
        per_session = np.add.reduceat(spent, c.row_offsets[:-1])
        primary = ~c.is_restart.astype(bool)
        duration.update(zip(c.extras["primary_index"][primary].tolist(), per_session[primary].tolist(), strict=True))
    expected = np.array([duration[p] for p in np.concatenate(parents).tolist()])
    assert np.allclose(after, expected, rtol=1e-9, atol=1e-6)


def test_session_durations_sum_latency_and_delays():
    from tracedsl.engine.columns import SessionColumns

    cols = SessionColumns(index=np.array([0]), number=np.array([0]), group=np.array([0]),
                          is_restart=np.array([False]), end_reason=np.array([0]),
                          row_offsets=np.array([0, 2]), input_length=np.array([1000, 100]),
                          output_length=np.array([50, 50]), delay_ms=np.array([np.nan, 300.0]))
    latency = Latency(prefill_tokens_per_s=1000.0, decode_tokens_per_s=50.0)
    # turn 0: 1000/1000 + 50/50 = 2 s; turn 1: prompt 1150 -> 1.15 s + 1 s; one delay of 0.3 s
    assert session_durations_ms(latency, cols)[0] == pytest.approx(2000 + 2150 + 300)


def test_without_arrivals_every_timestamp_is_zero():
    _, chunks = _run("restart 30%", n=500)
    assert all(np.all(c.timestamp_ms[c.row_offsets[:-1]] == 0.0) for c in chunks)


@pytest.mark.parametrize("name", ["arrivals", "arrivals-bursty", "arrivals-stages", "arrivals-file"])
def test_examples_decompile_to_the_same_workload(name):
    path = ROOT / "examples" / f"{name}.trace"
    workload, _ = compile_text(path.read_text(), str(path))
    assert compile_text(decompile(workload), str(path))[0].params == workload.params


def test_an_arrivals_file_line_out_of_order_is_located_in_its_file(tmp_path):
    (tmp_path / "times.txt").write_text("0\n250\n100\n")
    spec = tmp_path / "s.trace"
    with pytest.raises(DiagnosticError) as raised:
        compile_text('arrivals file("times.txt")', str(spec))
    (found,) = raised.value.diagnostics
    assert found.code == "E110" and found.file.endswith("times.txt") and found.span.line == 3


def test_arrivals_warn_w105_and_stay_out_of_default_generation_params():
    _, warnings = compile_text("arrivals poisson(rate=2/s)", "t.trace")
    assert [w.code for w in warnings] == ["W105"]
    assert "arrivals" not in GenerationParams().generation_params()
    assert "latency" not in GenerationParams().generation_params()


def test_a_run_asking_more_sessions_than_the_stages_hold_warns_w106(tmp_path):
    from tracedsl.pipeline.runs import RunOptions, plan_run

    spec = tmp_path / "s.trace"
    spec.write_text("arrivals stages { 1min at 1/s  1min ramp to 2/s }\n")  # holds 60 + 90 sessions
    codes = [w.code for w in plan_run(RunOptions(spec=str(spec), num_sessions=200)).warnings]
    assert codes == ["W105", "W106"]
    assert [w.code for w in plan_run(RunOptions(spec=str(spec), num_sessions=150)).warnings] == ["W105"]


def test_the_aiperf_engine_refuses_arrivals_at_the_statement(tmp_path):
    from click.testing import CliRunner

    from tracedsl.cli import cli

    spec = tmp_path / "s.trace"
    spec.write_text("context 100k\narrivals poisson(rate=2/s)\n")
    result = CliRunner().invoke(cli, ["run", str(spec), "-n", "5", "--engine", "aiperf", "-o", str(tmp_path)])
    assert result.exit_code != 0
    assert "s.trace:2:1: error[E501]" in result.output and "arrival process" in result.output


def test_quality_json_reports_the_arrival_rate_and_cv(tmp_path):
    import json

    from click.testing import CliRunner

    from tracedsl.cli import cli

    spec = tmp_path / "s.trace"
    spec.write_text("arrivals gamma(rate=4/s, cv=2)\n")
    result = CliRunner().invoke(cli, ["run", str(spec), "-n", "4000", "--seed", "3", "-o", str(tmp_path), "-q"])
    assert result.exit_code == 0, result.output
    (quality,) = tmp_path.glob("*/quality.json")
    figures = json.loads(quality.read_text())["arrivals"]
    assert figures["rate_per_s"]["target"] == 4.0 and figures["interarrival_cv"]["target"] == 2.0
    assert figures["rate_per_s"]["observed"] == pytest.approx(4.0, rel=0.15)
    assert figures["interarrival_cv"]["observed"] == pytest.approx(2.0, rel=0.15)
