"""`tracedsl compare`: the figures of two traces, their distances, the verdicts and the gate."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats

from tests.conftest import MOONCAKE, ROOT, fixture_dir
from tracedsl import pipeline
from tracedsl.analysis.compare import (
    Comparison,
    Figure,
    compare,
    distances,
    ks_p_value,
    lru_at,
    relative_gap,
)
from tracedsl.analysis.load import load
from tracedsl.analysis.profile import Sample, TraceProfile, profile
from tracedsl.analysis.tolerances import Tolerances
from tracedsl.cli import cli

SESSIONS = 1000


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """1k sessions of the default spec at two seeds, and of a clearly different spec."""
    out = tmp_path_factory.mktemp("runs")
    made = {}
    for key, spec, seed in (("default_1", "default", 1), ("default_2", "default", 2),
                            ("inference_day", str(ROOT / "specs" / "inference-day-2026.trace"), 1)):
        made[key] = pipeline.run(spec, out / key, num_sessions=SESSIONS, seed=seed, html=False).run_dir
    return made


@pytest.fixture(scope="module")
def agent_runs(tmp_path_factory):
    """A spec with requests, compaction and subagents, at two seeds (request kinds, logical sessions)."""
    out = tmp_path_factory.mktemp("agent")
    return [pipeline.run(str(ROOT / "examples" / "coding-agent.trace"), out / str(seed), num_sessions=300,
                         seed=seed, html=False).run_dir for seed in (1, 2)]


def _compare(*args):
    return CliRunner().invoke(cli, ["compare", *map(str, args)])


# ---------------------------------------------------------------------------- the gate


def test_same_spec_different_seeds_passes(runs):
    result = _compare(runs["default_1"], runs["default_2"])
    assert result.exit_code == 0, result.output
    assert "PASS:" in result.output and "0 outside" in result.output
    header = result.output.splitlines()[3].split()
    assert header == ["figure", "A", "B", "distance", "tolerance", "verdict"]


def test_different_spec_fails_and_names_the_failing_figures(runs):
    result = _compare(runs["default_1"], runs["inference_day"])
    assert result.exit_code == 1, result.output
    assert "FAIL:" in result.output
    failing = result.output.split("outside: ", 1)[1]
    for name in ("calls per session KS", "output (tokens) KS", "new tokens (tokens) KS"):
        assert name in failing
    comparison = pipeline.compare(runs["default_1"], runs["inference_day"])
    assert not comparison.passed
    assert {f"{f.name} {f.measure}" for f in comparison.failed} >= {"calls per session KS", "output (tokens) KS"}
    assert all(f.distance > f.tolerance for f in comparison.failed)


def test_a_trace_against_itself_has_every_distance_zero(runs):
    comparison = pipeline.compare(runs["default_1"], runs["default_1"])
    assert comparison.passed
    measured = [f for f in comparison.figures if f.within is not None]
    assert len(measured) > 40
    assert all(f.distance == 0 for f in measured), [f for f in measured if f.distance != 0]


def test_the_verdicts_are_symmetric(runs):
    ab = pipeline.compare(runs["default_1"], runs["inference_day"])
    ba = pipeline.compare(runs["inference_day"], runs["default_1"])
    assert [(f.name, f.measure, f.within) for f in ab.figures if not f.name.startswith("LRU")] == \
           [(f.name, f.measure, f.within) for f in ba.figures if not f.name.startswith("LRU")]


def test_flags_change_verdicts(runs):
    strict = _compare(runs["default_1"], runs["default_2"], "--ks", "0")
    assert strict.exit_code == 1 and "input (tokens) KS" in strict.output.split("outside: ", 1)[1]
    loose = ["--ks", "1", "--wasserstein", "100", "--mean", "1", "--percentile", "1", "--tail", "1",
             "--hit-rate", "1", "--lru", "1"]
    assert _compare(runs["default_1"], runs["inference_day"], *loose).exit_code == 0
    # one flag at a time moves only its own figures
    comparison = pipeline.compare(runs["default_1"], runs["default_2"], tolerances=Tolerances(hit_rate=0.0))
    assert {f.measure for f in comparison.failed} <= {"absolute gap"}
    assert all(not f.name.startswith("LRU") for f in comparison.failed)


def test_bad_tolerances_are_usage_errors(runs):
    result = _compare(runs["default_1"], runs["default_2"], "--ks", "-1", "--tail", "nan")
    assert result.exit_code == 2
    assert "--ks: error[E216]" in result.output and "--tail: error[E216]" in result.output
    with pytest.raises(pipeline.PipelineError) as caught:
        pipeline.compare(runs["default_1"], runs["default_2"], tolerances=Tolerances(mean=-0.5))
    assert caught.value.category == pipeline.Category.USAGE


# ---------------------------------------------------------------------------- other traces


def test_a_foreign_mooncake_trace_against_a_run_is_chained(runs):
    foreign = MOONCAKE / "conversation_trace.jsonl"
    comparison = pipeline.compare(foreign, runs["default_1"])
    a = comparison.a_profile
    assert a["format"] == "mooncake" and a["sessions_from"] == "hash-id chains"
    assert a["rows"] == 12_031 and a["sessions"] == 8_695  # the chains of docs/architecture's count
    # chained rows have new tokens and delays (from the timestamps) and sessions with durations
    for key in ("new_tokens", "delay_ms", "duration_s", "interarrival_s"):
        assert a["distributions"][key]["count"] > 0, key
    assert not comparison.passed
    kinds = {f.name: f for f in comparison.figures if f.name.startswith("hit rate:")}
    assert kinds and all(f.within is None for f in kinds.values())  # no request kinds: not comparable
    assert _compare(foreign, runs["default_1"]).exit_code == 1


def test_a_foreign_trace_against_itself_passes():
    foreign = MOONCAKE / "conversation_trace.jsonl"
    result = _compare(foreign, foreign)
    assert result.exit_code == 0, result.output


def test_an_aiperf_fixture_run_directory():
    default, other = fixture_dir("default_s1_n300"), fixture_dir("manifest1k_s3_n300")
    same = pipeline.compare(default, default)
    assert same.passed and same.a_profile["format"] == "aiperf"
    assert same.a_profile["sessions"] == 300
    assert _compare(default, other).exit_code == 1


def test_request_kinds_and_logical_sessions_when_the_trace_has_them(agent_runs):
    comparison = pipeline.compare(*agent_runs)
    names = {f.name: f for f in comparison.figures}
    assert names["hit rate: request-opening calls"].within is not None
    assert names["hit rate: tool-result calls"].within is not None
    assert "calls per logical session" in names and names["requests per session"].within is not None
    a = comparison.a_profile["distributions"]
    # a logical session gathers its continuations: fewer of them, more calls each
    assert a["logical_calls"]["count"] < a["calls"]["count"]
    assert a["logical_calls"]["mean"] > a["calls"]["mean"]


# ---------------------------------------------------------------------------- output


def test_json_output(runs):
    result = _compare(runs["default_1"], runs["inference_day"], "--json")
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert set(data) == {"a", "b", "passed", "counts", "tolerances", "failed", "figures", "profiles"}
    assert data["passed"] is False and data["a"] == "default" and data["b"] == "inference-day-2026"
    assert data["tolerances"] == {"ks": 0.08, "wasserstein": 0.25, "mean": 0.2, "percentile": 0.15,
                                  "tail": 0.25, "hit_rate": 0.03, "lru": 0.05}
    assert sum(data["counts"].values()) == len(data["figures"])
    for figure in data["figures"]:
        assert set(figure) == {"group", "name", "a", "b", "distance", "measure", "tolerance", "within", "note",
                               "verdict"}
        assert figure["verdict"] in ("within", "outside", "not comparable")
        assert (figure["within"] is None) == (figure["verdict"] == "not comparable")
    assert len(data["failed"]) == data["counts"]["outside"]
    assert data["profiles"]["a"]["distributions"]["input"]["count"] > 0


def test_missing_file_and_broken_row_are_located(tmp_path, runs):
    missing = _compare(tmp_path / "nosuch.jsonl", runs["default_1"])
    assert missing.exit_code == 4 and "nosuch.jsonl" in missing.output and "Traceback" not in missing.output
    dataset = runs["default_1"] / "dataset.jsonl"
    broken = tmp_path / "broken.jsonl"
    lines = dataset.read_text().splitlines()[:5]
    lines[3] = '{"session_id": "x", "input_length": "many", "output_length": 1, "hash_ids": [1]}'
    broken.write_text("\n".join(lines) + "\n")
    result = _compare(runs["default_1"], broken)
    assert result.exit_code == 3, result.output
    assert f"{broken}:4:" in result.output and "Traceback" not in result.output
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert _compare(empty, runs["default_1"]).exit_code == 3


def test_html_is_written(tmp_path, runs):
    page = tmp_path / "compare.html"
    result = _compare(runs["default_1"], runs["default_2"], "--html", page)
    assert result.exit_code == 0 and page.exists()
    text = page.read_text()
    assert 'id="lru"' in text and "cdf-input" in text
    assert "https://" not in text and "http://" not in text.replace("http://www.w3.org/2000/svg", "")
    unwritable = _compare(runs["default_1"], runs["default_2"], "--html", tmp_path / "no" / "dir.html")
    assert unwritable.exit_code == 4 and "E403" in unwritable.output


# ---------------------------------------------------------------------------- the measures


def test_distances_agree_with_scipy():
    rng = np.random.default_rng(3)
    a, b = rng.lognormal(0, 1, 3000), rng.lognormal(0.1, 1.1, 2000)
    ks, p_value, w1 = distances(a, b)
    reference = stats.ks_2samp(a, b, method="asymp")
    assert ks == pytest.approx(reference.statistic, abs=1e-12)
    assert p_value == pytest.approx(reference.pvalue, abs=0.02)
    assert w1 == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-9)
    assert distances(a, a)[:1] == (0.0,) and distances(a, a)[2] == 0.0
    assert ks_p_value(0.0, 10, 10) == 1.0


def test_relative_gap_and_lru_interpolation():
    assert relative_gap(0, 0) == 0 and relative_gap(100, 80) == pytest.approx(0.2)
    assert relative_gap(1, 2, slack=1.0) == 0  # counts: one whole count of slack
    caps, rates = np.array([64.0, 128.0, 256.0]), np.array([0.1, 0.3, 0.5])
    assert lru_at(caps, rates, 128) == pytest.approx(0.3)
    assert lru_at(caps, rates, 64 * 2**0.5) == pytest.approx(0.2)  # halfway in log capacity
    assert lru_at(caps, rates, 32) is None and lru_at(caps, rates, 512) is None


def test_sample_keeps_all_values_up_to_its_cap_then_thins_uniformly():
    sample = Sample(cap=1000)
    values = np.arange(5000, dtype=np.float64)
    for part in np.array_split(values, 37):
        sample.add(part)
    assert sample.count == 5000 and sample.mean == pytest.approx(values.mean())
    assert sample.min == 0 and sample.max == 4999
    kept = sample.values()
    assert sample.stride == 8 and kept.size <= 1000
    assert np.array_equal(kept, values[::8])  # every 8th value in arrival order, whatever the chunking
    small = Sample(cap=1000)
    small.add(values[:900])
    assert np.array_equal(small.values(), values[:900]) and not small.thinned


def test_not_comparable_figures_do_not_fail_the_gate():
    a = TraceProfile("a", "a.jsonl", "mooncake", 16, "the rows", "session_id")
    b = TraceProfile("b", "b.jsonl", "mooncake", 16, "the rows", "session_id")
    for trace in (a, b):
        trace.samples["input"].add(np.array([1.0, 2.0, 3.0]))
    a.missing["delay_ms"] = "no timestamps"
    comparison = compare(a, b)
    delay = [f for f in comparison.figures if f.name.startswith("delay")]
    assert len(delay) == 1 and delay[0].within is None and "no timestamps" in delay[0].note
    assert comparison.passed
    assert Comparison("a", "b", [Figure("rows", "x", 1, 2, 1, "KS", 0.5, False)], Tolerances()).passed is False


def test_profile_reads_a_run_directory(runs):
    trace = profile(load(runs["default_1"]))
    assert trace.sessions == SESSIONS and trace.rows == trace.samples["input"].count
    assert trace.samples["calls"].total == trace.rows
    assert trace.samples["new_tokens"].count == trace.rows - trace.sessions
    assert "latency model" in trace.notes["duration_s"]  # rows carry delays, not timestamps
    assert trace.unbounded_hit_rate is not None and trace.reuse["sample"]["sessions"] == SESSIONS


def test_logical_sessions_gather_restarts_from_the_parent_links(tmp_path):
    """examples/restarts.trace: sessions.jsonl links each Session B to its parent (no logical id)."""
    run_dir = pipeline.run(str(ROOT / "examples" / "restarts.trace"), tmp_path, num_sessions=200, seed=4,
                           html=False).run_dir
    trace = profile(load(run_dir))
    logical = trace.samples["logical_calls"]
    assert trace.has_continuations and trace.sessions > 200
    assert logical.count == 200  # one per primary session
    assert logical.total == trace.rows == trace.samples["calls"].total


def test_inter_arrival_gaps_of_spread_starts(tmp_path):
    run_dir = pipeline.run(str(ROOT / "examples" / "arrivals.trace"), tmp_path, num_sessions=200, seed=4,
                           html=False).run_dir
    gaps = profile(load(run_dir)).samples["interarrival_s"]
    assert gaps.count == 199 and gaps.min >= 0 and gaps.mean > 0
