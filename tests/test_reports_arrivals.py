"""The arrivals in the reports: the timeline's counts are exact, the target rate follows the
process, and quality.json and comparison.txt carry target against observed rate and gap CV."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tracedsl.engine import RunRequest
from tracedsl.engine.fast import FastEngine
from tracedsl.ir import Arrivals, ArrivalStage
from tracedsl.language.lower import compile_text
from tracedsl.reports import ReportSet
from tracedsl.reports.html import cards
from tracedsl.reports.timeline import BINS, SHOWN, Timeline, target_rate

STAGES = "arrivals stages {\n  1min at 1/s\n  2min ramp to 8/s\n  1min at 8/s\n}\n"


def _reports(text: str, n: int, seed: int = 5) -> ReportSet:
    params = compile_text(text, "t.trace")[0].params
    reports = ReportSet(params, "t", params.block_size)
    for chunk in FastEngine(chunk_sessions=700).generate(RunRequest(params, n, seed)):
        reports.add(chunk)
    return reports


def _primary_starts(text: str, n: int, seed: int = 5) -> np.ndarray:
    params = compile_text(text, "t.trace")[0].params
    chunks = FastEngine(chunk_sessions=700).generate(RunRequest(params, n, seed))
    return np.concatenate([c.timestamp_ms[c.row_offsets[:-1]][~c.is_restart.astype(bool)] for c in chunks])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_timeline_counts_are_exact_in_every_bin_whatever_the_order(seed):
    rng = np.random.default_rng(seed)
    starts = np.sort(rng.exponential(300.0, 20_000).cumsum())
    timeline = Timeline()
    pieces = np.array_split(rng.permutation(starts) if seed == 3 else starts, 37)
    for piece in pieces:
        timeline.add(piece)
    assert timeline.counts.size == BINS  # bounded: the width doubled instead
    edges, counts = timeline.shown()
    assert counts.size <= SHOWN and counts.sum() == starts.size
    expected, _ = np.histogram(starts, bins=edges)
    expected[-1] += int((starts == edges[-1]).sum())
    assert (counts == expected).all()
    assert edges[0] <= starts.min() and edges[-1] > starts.max()


def test_timeline_extends_to_the_left_for_a_start_before_the_first():
    timeline = Timeline()
    timeline.add(np.array([5000.0, 5001.0]))
    timeline.add(np.array([10.0, 9000.0]))
    edges, counts = timeline.shown()
    assert counts.sum() == 4 and edges[0] <= 10.0 < edges[1]
    assert counts[np.searchsorted(edges, 5000.0, side="right") - 1] == 2


def test_timeline_is_off_when_every_start_is_zero():
    reports = _reports("", 50)
    assert not reports.collector.timeline.spread
    assert not any(card["title"].startswith("Arrivals") for card in cards(reports.collector, reports.quality()))


def test_the_target_rate_follows_the_stages_and_their_tail():
    process = Arrivals(kind="stages", stages=[ArrivalStage(duration_ms=60_000, rate=1, end_rate=1),
                                              ArrivalStage(duration_ms=120_000, rate=1, end_rate=8)])
    times, rates = target_rate(process, np.array([0.0, 100_000.0, 200_000.0]))
    line = dict(zip(times, rates, strict=False))
    assert line[0.0] == 1.0 and line[60_000.0] == 1.0
    assert np.interp(120_000.0, times[1:], rates[1:]) == pytest.approx(4.5)
    assert line[200_000.0] == 8.0  # past the stages the engine goes on at the end rate
    poisson = target_rate(Arrivals(kind="poisson", rate=2.5), np.array([0.0, 7.0]))
    assert poisson == ([0.0, 7.0], [2.5, 2.5])


def test_a_files_target_is_its_own_times_binned_like_the_starts():
    process = Arrivals(kind="file", times_ms=[0.0, 100.0, 200.0, 1500.0, 1600.0])
    times, rates = target_rate(process, np.array([0.0, 1000.0, 2000.0]))
    assert times == [0.0, 1000.0, 1000.0, 2000.0] and rates == [3.0, 3.0, 2.0, 2.0]


def test_the_report_card_shows_every_primary_and_the_stages_target():
    reports = _reports(STAGES, 1500)
    report = reports.quality()
    (card,) = [c for c in cards(reports.collector, report) if c["title"].startswith("Arrivals")]
    svg = str(card["svg"])
    bars = [int(t.split(": ")[1].split(" ")[0].replace(",", "")) for t in svg.split("<title>")[1:]
            if "sessions (" in t]
    assert sum(bars) == reports.collector.primaries == 1500
    assert 'class="line target"' in svg and "target rate" in svg
    assert "rate target 5.13/s" in card["note"]


def test_stages_target_is_the_rate_up_to_the_runs_last_start():
    # 1500 sessions outrun the stages (1080 in 4 min), so the rate's target is the run's own
    # span under the process: 1499 gaps up to the time the cumulative rate reaches 1499.
    held = 60 + 4.5 * 120 + 8 * 60
    span_s = 240 + (1499 - held) / 8
    figures = _reports(STAGES, 1500).quality()["arrivals"]
    assert figures["rate_per_s"]["target"] == pytest.approx(1499 / span_s)
    assert figures["rate_per_s"]["observed"] == pytest.approx(1499 / span_s, rel=0.08)
    assert figures["interarrival_cv"]["target"] is None


def test_a_files_target_rate_and_cv_are_exactly_its_own(tmp_path):
    times = [0, 50, 400, 450, 2000, 2100, 2150]
    (tmp_path / "times.txt").write_text("\n".join(map(str, times)) + "\n")
    spec = tmp_path / "f.trace"
    spec.write_text('arrivals file("times.txt")\n')
    params = compile_text(spec.read_text(), str(spec))[0].params
    reports = ReportSet(params, "f", params.block_size)
    for chunk in FastEngine().generate(RunRequest(params, 7, 1)):
        reports.add(chunk)
    figures = reports.quality()["arrivals"]
    gaps = np.diff(times)
    assert figures["rate_per_s"]["target"] == pytest.approx(1000 / gaps.mean())
    assert figures["rate_per_s"]["observed"] == pytest.approx(1000 / gaps.mean())
    assert figures["interarrival_cv"]["target"] == pytest.approx(gaps.std() / gaps.mean())
    assert figures["interarrival_cv"]["observed"] == pytest.approx(gaps.std() / gaps.mean())


def test_comparison_txt_carries_the_arrival_figures_of_quality_json(tmp_path):
    reports = _reports("arrivals gamma(rate=4/s, cv=2)\n", 3000, seed=3)
    reports.write(tmp_path, html=False)
    quality = json.loads((tmp_path / "quality.json").read_text())["arrivals"]
    text = (tmp_path / "comparison.txt").read_text()
    (rate,) = [line for line in text.splitlines() if line.strip().startswith("rate, sessions/s")]
    (cv,) = [line for line in text.splitlines() if line.strip().startswith("inter-arrival CV")]
    assert rate.split()[-3:-1] == ["4.000", f"{quality['rate_per_s']['observed']:.3f}"]
    assert cv.split()[-3:-1] == ["2.000", f"{quality['interarrival_cv']['observed']:.3f}"]
    assert quality["interarrival_cv"]["observed"] == pytest.approx(2.0, rel=0.15)
    assert "Arrivals (gamma;" in text


def test_without_arrivals_comparison_txt_has_no_arrivals_block(tmp_path):
    reports = _reports("", 40)
    reports.write(tmp_path, html=False)
    assert "Arrivals" not in (tmp_path / "comparison.txt").read_text()
    assert "arrivals" not in json.loads((tmp_path / "quality.json").read_text())


def test_a_foreign_trace_with_timestamps_gets_a_timeline_without_target():
    from tracedsl.trace import TraceChunk

    starts = np.arange(40, dtype=np.float64) * 250.0 + 1_000_000.0  # 4 sessions a second, not from 0
    chunk = TraceChunk(
        session_ids=[f"s{n}" for n in range(40)], group_ids=np.full(40, -1), is_restart=np.zeros(40, dtype=bool),
        end_reasons=np.full(40, -1, dtype=np.int8), row_offsets=np.arange(41, dtype=np.int64),
        input_length=np.full(40, 100), output_length=np.full(40, 10), delay_ms=np.full(40, np.nan),
        timestamp_ms=starts, hash_offsets=np.arange(41, dtype=np.int64), hash_ids=np.arange(40, dtype=np.int64))
    reports = ReportSet(None, "foreign", 512)
    reports.add(chunk)
    report = reports.quality()
    assert "arrivals" not in report  # quality.json keeps a foreign trace's keys
    (card,) = [c for c in cards(reports.collector, report) if c["title"].startswith("Arrivals")]
    svg = str(card["svg"])
    assert "target" not in svg and card["note"].startswith("40 primary sessions")
    edges, counts = reports.collector.timeline.shown()
    assert counts.sum() == 40 and edges[0] <= starts[0] and edges[-1] > starts[-1]
    rates = counts[:-1] / (np.diff(edges)[:-1] / 1000.0)  # the last bin ends after the last start
    assert rates.mean() == pytest.approx(4.0, rel=0.1)
