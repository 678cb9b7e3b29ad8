"""TraceLab's release rows → TraceChunks: the structure worked out by hand, a round trip through a
tracedsl run, and a located message for every kind of bad row."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT
from tracedsl import pipeline
from tracedsl.diagnostics import DiagnosticError, render
from tracedsl.imports.tracelab import (
    DEFAULT_BLOCK_SIZE,
    is_tracelab,
    logical_sessions,
    read_tracelab,
    write_run,
    write_tracelab,
)
from tracedsl.output.reader import read_trace
from tracedsl.reports.regenerate import with_index
from tracedsl.reports.reuse import ReuseAnalysis
from tracedsl.trace import EndReason

FIXTURE = ROOT / "tests" / "fixtures" / "tracelab" / "two_sessions.jsonl"
NAN = float("nan")
UNKNOWN, COMPACTED = int(EndReason.UNKNOWN), int(EndReason.COMPACTED)


def _one(path, **options):
    chunks = list(read_tracelab(path, **options))
    assert len(chunks) == 1
    chunk = chunks[0]
    chunk.validate_shape()
    return chunk


def _ids(chunk):
    return [chunk.row_hash_ids(r).tolist() for r in range(chunk.num_rows)]


def _same(a, b):
    return np.array_equal(np.asarray(a, dtype=float), np.asarray(b, dtype=float), equal_nan=True)


# ---------------------------------------------------------------- the hand-written rows
def test_the_hand_written_rows_give_the_structure_worked_out_by_hand():
    """Block size 100. claude:s1: 250 (3 ids), +40 out, 400 (110 new: 2 ids), +20 out, 480 (60 new:
    1 id); round 3 caches 200 of the 480 before (a cache break: a continuation reusing the first 2
    blocks, 600 tokens = 6 ids); round 4 falls to 150 with 100 cached (a compaction: 1 block
    reused). codex:s2: 1000 (10 ids), 1300 (200 new), 1350 (40 new), 1380 is below 1350 + 50 out
    (0 new, the prompt stays 1400), 1500 (95 new)."""
    chunk = _one(FIXTURE, block_size=100)
    assert chunk.session_ids == ["claude:s1", "claude:s1#1", "claude:s1#2", "codex:s2"]
    assert chunk.row_offsets.tolist() == [0, 3, 4, 5, 10]
    assert chunk.input_length.tolist() == [250, 110, 60, 600, 150, 1000, 200, 40, 0, 95]
    assert chunk.output_length.tolist() == [40, 20, 30, 60, 25, 100, 10, 50, 5, 10]
    assert chunk.request_input_length.tolist() == [250, 400, 480, 600, 150, 1000, 1300, 1350, 1400, 1500]
    assert _ids(chunk) == [[0, 1, 2], [3, 4], [5], [0, 1, 6, 7, 8, 9], [0, 10],
                           list(range(11, 21)), [21, 22], [23], [], [24]]
    # starts: the latest input event (two tool results: the later one); ms since 10:00:00.000
    assert _same(chunk.timestamp_ms, [0, 3500, 64000, 70000, 672000, 500, 4000, 6000, 8000, 10000])
    # delays: from the call before's last output event (a tool_call, a usage_report) to the start;
    # a continuation's first row keeps its gap (10:01:06 -> 10:01:10, 10:01:12 -> 10:11:12)
    assert _same(chunk.delay_ms, [NAN, 2000, 60000, 4000, 600000, NAN, 1990, 1000, 1000, 1000])
    assert chunk.extras["opens_request"].tolist() == [True, False, True, False, True,
                                                      True, False, False, False, False]
    assert chunk.extras["link"].tolist() == [0, 2, 2, 0]
    assert chunk.extras["primary_index"].tolist() == [0, 0, 0, 1]
    assert chunk.end_reasons.tolist() == [UNKNOWN, COMPACTED, UNKNOWN, UNKNOWN]
    assert chunk.is_primary.tolist() == [True, False, False, True]


def test_a_shared_prefix_gives_every_session_the_same_first_blocks():
    chunk = _one(FIXTURE, block_size=100, shared_prefix_tokens=250)  # 2 whole blocks
    assert _ids(chunk) == [[0, 1, 2], [3, 4], [5], [0, 1, 6, 7, 8, 9], [0, 10],
                           [0, 1, *range(11, 19)], [19, 20], [21], [], [22]]


def test_chunks_hold_whole_sessions_and_the_ids_do_not_depend_on_the_chunking():
    whole = _one(FIXTURE, block_size=100)
    parts = list(read_tracelab(FIXTURE, block_size=100, chunk_rows=1))
    assert [p.session_ids for p in parts] == [["claude:s1", "claude:s1#1", "claude:s1#2"], ["codex:s2"]]
    assert np.concatenate([p.hash_ids for p in parts]).tolist() == whole.hash_ids.tolist()
    assert np.concatenate([p.input_length for p in parts]).tolist() == whole.input_length.tolist()


def test_the_hand_written_rows_survive_a_write_and_a_read(tmp_path):
    chunk = _one(FIXTURE, block_size=100)
    path = tmp_path / "again.jsonl"
    assert write_tracelab([chunk], path, logical={"claude:s1#1": "claude:s1", "claude:s1#2": "claude:s1"},
                          block_size=100) == 10
    assert is_tracelab(path)
    again = _one(path, block_size=100)
    assert again.session_ids == ["tracedsl:claude:s1", "tracedsl:claude:s1#1", "tracedsl:claude:s1#2",
                                 "tracedsl:codex:s2"]
    for name in ("input_length", "output_length", "hash_ids", "hash_offsets", "row_offsets", "end_reasons"):
        assert _same(getattr(again, name), getattr(chunk, name)), name
    later = chunk.turn_index > 0  # (a continuation's first gap counts from a call written with no latency)
    assert _same(again.delay_ms[later], chunk.delay_ms[later])
    assert again.extras["opens_request"].tolist() == chunk.extras["opens_request"].tolist()


def test_the_sniff_reads_the_first_non_blank_line(tmp_path):
    assert is_tracelab(FIXTURE)
    mooncake = tmp_path / "m.jsonl"
    mooncake.write_text('{"session_id": "s", "input_length": 10, "output_length": 1, "hash_ids": [1]}\n')
    assert not is_tracelab(mooncake)
    marked = tmp_path / "bom.jsonl"
    marked.write_bytes(b"\n\xef\xbb\xbf" + FIXTURE.read_bytes())
    assert not is_tracelab(marked)  # a mark after the first line is not one: that line is not JSON
    marked.write_bytes(b"\xef\xbb\xbf\n\n" + FIXTURE.read_bytes())
    assert is_tracelab(marked)
    assert _one(marked, block_size=100).input_length.tolist()[:3] == [250, 110, 60]
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    assert not is_tracelab(empty)
    assert list(read_tracelab(empty)) == []
    (tmp_path / "text.jsonl").write_text("round_index input_tokens_total\n")
    assert not is_tracelab(tmp_path / "text.jsonl")
    with pytest.raises(ValueError, match="block_size"):
        next(read_tracelab(FIXTURE, block_size=0))


def test_times_without_an_offset_are_utc_and_a_call_without_events_has_no_time(tmp_path):
    rows = _rows()[:2]  # claude:s1 round 0, codex:s2 round 0
    rows[1]["timing_events"] = [{"event_type": "user_message", "timestamp": "2026-06-01T12:00:00.500+02:00"},
                                {"event_type": "text", "timestamp": "2026-06-01T10:00:01"}]
    extra = dict(rows[1], round_index=1, input_tokens_total=1200, prefix_tokens=1000, newly_append_tokens=200,
                 timing_events=[])
    path = tmp_path / "times.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in [*rows, extra]))
    chunk = _one(path, block_size=100)
    assert _same(chunk.timestamp_ms, [0, 500, NAN])
    assert _same(chunk.delay_ms, [NAN, NAN, NAN])  # no start for the last call: no gap either


# ---------------------------------------------------------------- a round trip through a run
AGENT = ROOT / "tests" / "fixtures" / "tracelab" / "agent.trace"


@pytest.fixture(scope="module")
def agent_run(tmp_path_factory):
    """A run with requests and compaction whose only shared blocks are the global prefix (4k, 8 blocks)."""
    where = tmp_path_factory.mktemp("tracelab")
    spec = where / "agent.trace"
    spec.write_text(AGENT.read_text())
    result = pipeline.run(spec, where / "runs", num_sessions=200, seed=5, html=False)
    dataset, index = result.run_dir / "dataset.jsonl", result.run_dir / "sessions.jsonl"
    chunks = list(with_index(read_trace(dataset), None, index))
    path = where / "tracelab.jsonl"
    write_tracelab(chunks, path, logical=logical_sessions(index), latency_ms=750.0)  # calls take 0.75 s
    return chunks, logical_sessions(index), path, result.run_dir


def _sessions_by_chain(chunks, logical):
    """Each session's rows, a logical session's sessions together in file order (as the import gives them)."""
    chains: dict[str, list] = {}
    for chunk in chunks:
        for s, session_id in enumerate(chunk.session_ids):
            lo, hi = chunk.row_offsets[s], chunk.row_offsets[s + 1]
            chains.setdefault(logical.get(session_id, session_id), []).append({
                "prompt": chunk.request_input_length[lo:hi], "output": chunk.output_length[lo:hi],
                "delay": chunk.delay_ms[lo:hi], "opens": chunk.extras["opens_request"][lo:hi],
                "compacted": chunk.end_reasons[s] == COMPACTED,
            })
    return [session for chain in chains.values() for session in chain]


def _reuse(chunks):
    analysis = ReuseAnalysis(DEFAULT_BLOCK_SIZE)
    for chunk in chunks:
        analysis.add(chunk)
    return analysis


def test_a_run_written_and_read_back_keeps_its_calls(agent_run):
    chunks, logical, path, _ = agent_run
    assert any(chunk.extras.get("link") is not None for chunk in chunks)  # it has continuations
    written = _sessions_by_chain(chunks, logical)
    read = _sessions_by_chain(list(read_tracelab(path)), {})
    assert len(read) == len(written) == sum(chunk.num_sessions for chunk in chunks)
    # only a logical session's first call has no delay (a continuation's first keeps its gap)
    imported = list(read_tracelab(path))
    no_delay = np.concatenate([np.isnan(chunk.delay_ms) for chunk in imported])
    firsts = np.concatenate([chunk.row_offsets[:-1][chunk.extras["link"] == 0] + offset for chunk, offset in
                             zip(imported, np.cumsum([0] + [c.num_rows for c in imported[:-1]]), strict=True)])
    assert np.flatnonzero(no_delay).tolist() == firsts.tolist()
    assert sum(s["compacted"] for s in written) > 10
    for before, after in zip(written, read, strict=True):
        assert before["prompt"].tolist() == after["prompt"].tolist()
        assert before["output"].tolist() == after["output"].tolist()
        assert before["opens"].tolist() == after["opens"].tolist()
        assert before["compacted"] == after["compacted"]  # a compaction is told from a cache break
        later = ~np.isnan(before["delay"])
        assert not np.isnan(after["delay"][later]).any()
        assert np.abs(before["delay"][later] - after["delay"][later]).max(initial=0) <= 1.0  # ms timestamps


def test_a_run_written_and_read_back_keeps_its_prefix_hit_rate(agent_run):
    chunks, _, path, _ = agent_run
    before = _reuse(chunks)
    after = _reuse(read_tracelab(path, shared_prefix_tokens=4096))
    blind = _reuse(read_tracelab(path))
    assert after.prompt_blocks == before.prompt_blocks
    rate = before.summary()["prefix_hit_rate_unbounded"]
    one_block_each = before.sessions / before.prompt_blocks
    assert abs(after.summary()["prefix_hit_rate_unbounded"] - rate) <= one_block_each
    # without the shared system prompt the rows cannot show, every session's first 8 blocks miss
    assert blind.summary()["prefix_hit_rate_unbounded"] < rate - 0.005


def test_a_run_directory_is_written_in_one_call(agent_run, tmp_path):
    _, _, path, run_dir = agent_run
    assert write_run(run_dir, tmp_path / "run.jsonl", latency_ms=750.0) > 0
    assert (tmp_path / "run.jsonl").read_bytes() == path.read_bytes()


# ---------------------------------------------------------------- bad rows
def _rows() -> list[dict]:
    return [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]


def _error(tmp_path: Path, rows: list, *, raw: dict[int, str] | None = None) -> str:
    """The rendered error of reading ``rows`` (line i + 1 is rows[i], or ``raw[i]`` as given)."""
    lines = [raw[i] if raw and i in raw else json.dumps(row) for i, row in enumerate(rows)]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DiagnosticError) as caught:
        list(read_tracelab(path))
    assert len(caught.value.diagnostics) == 1
    return render(caught.value.diagnostics[0]).replace(str(path), "bad.jsonl")


def test_a_row_that_is_not_json_or_not_an_object(tmp_path):
    message = _error(tmp_path, _rows(), raw={2: '{"session_id": "claude:s1", "round_index": 2,'})
    assert message.startswith("bad.jsonl:3:")
    assert "error[E225]: not valid JSON" in message
    assert _error(tmp_path, _rows(), raw={4: "[1, 2]"}).startswith(
        "bad.jsonl:5:1: error[E225]: a row must be a JSON object, found an array")


@pytest.mark.parametrize("field", ["session_id", "round_index", "input_tokens_total", "prefix_tokens",
                                   "output_tokens", "timing_events"])
def test_a_missing_field(tmp_path, field):
    rows = _rows()
    del rows[3][field]
    assert _error(tmp_path, rows).startswith(f"bad.jsonl:4:1: error[E226]: the row has no {field}")


def test_a_field_of_the_wrong_type(tmp_path):
    rows = _rows()
    rows[1]["round_index"] = "1"
    message = _error(tmp_path, rows)
    column = json.dumps(rows[1]).index('"round_index"') + 1
    assert message.startswith(f"bad.jsonl:2:{column}: error[E226]: round_index must be an integer, found a string")
    rows = _rows()
    rows[5]["output_tokens"] = 2.5
    assert "bad.jsonl:6:" in _error(tmp_path, rows)
    assert "error[E226]: output_tokens must be an integer, found a number" in _error(tmp_path, rows)
    rows = _rows()
    rows[0]["timing_events"][1] = "text"
    assert "bad.jsonl:1:" in _error(tmp_path, rows)
    assert "error[E226]: timing_events[1] must be an object, found a string" in _error(tmp_path, rows)
    rows = _rows()
    del rows[2]["timing_events"][0]["timestamp"]
    assert "error[E226]: timing_events[0] has no timestamp" in _error(tmp_path, rows)
    rows = _rows()
    rows[2]["first_input_event_type"] = 3
    assert "error[E226]: first_input_event_type must be a string or null, found an integer" in _error(tmp_path, rows)


def test_counts_that_cannot_be(tmp_path):
    rows = _rows()
    rows[6]["output_tokens"] = -5
    assert "bad.jsonl:7:" in _error(tmp_path, rows)
    assert "error[E227]: output_tokens must be >= 0, got -5" in _error(tmp_path, rows)
    rows = _rows()
    rows[4]["prefix_tokens"] = 1301
    assert "error[E227]: prefix_tokens (1301) is larger than input_tokens_total (1300)" in _error(tmp_path, rows)
    rows = _rows()
    rows[4]["newly_append_tokens"] = 299
    assert "error[E227]: newly_append_tokens must be input_tokens_total - prefix_tokens (300), found 299" in \
        _error(tmp_path, rows)


def test_a_timestamp_that_does_not_parse(tmp_path):
    rows = _rows()
    rows[8]["timing_events"][1]["timestamp"] = "2026-06-01T10:00:61.000Z"
    message = _error(tmp_path, rows)
    column = json.dumps(rows[8]).index('"2026-06-01T10:00:61.000Z"') + 1
    assert message.startswith(f"bad.jsonl:9:{column}: error[E228]: timing_events[1].timestamp "
                              "'2026-06-01T10:00:61.000Z' is not an ISO-8601 time")


def test_a_file_that_is_not_tracelab_rows(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('\n{"session_id": "s", "input_length": 10, "output_length": 1, "hash_ids": [1]}\n')
    with pytest.raises(DiagnosticError) as caught:
        list(read_tracelab(path))
    message = render(caught.value.diagnostics[0]).replace(str(path), "m.jsonl")
    assert message.startswith("m.jsonl:2:1: error[E229]: not a TraceLab release row (no input_tokens_total, "
                              "no round_index); it looks like a Mooncake trace row")


def test_the_first_bad_row_is_reported_even_many_rows_in(tmp_path):
    """A bad row thousands of lines in (past the first block read) and a later one: the first is named."""
    good = _rows()
    rows = [dict(good[i % len(good)], session_id=f"s{i}", round_index=0) for i in range(6000)]
    rows[4321]["prefix_tokens"] = -1
    rows[5000]["round_index"] = None
    assert _error(tmp_path, rows).startswith("bad.jsonl:4322:")
    timed = [dict(row) for row in rows]
    timed[4321]["prefix_tokens"] = 0
    timed[4000] = dict(timed[4000], timing_events=[{"event_type": "text", "timestamp": "yesterday"}])
    assert "bad.jsonl:4001:" in _error(tmp_path, timed)
    assert "error[E228]" in _error(tmp_path, timed)
