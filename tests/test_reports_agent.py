"""Agent structure in the reports (issue #13): quality.json's ``agent`` figures against the rows,
comparison.txt's rows, `tracedsl report` of the run directory reading the same figures back
from sessions.jsonl, and the validator's checks of what continuations share."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import orjson
import pytest

from tracedsl import pipeline
from tracedsl.ir import GenerationParams, Workload
from tracedsl.output.sessions import INDEX_SHARED
from tracedsl.output.validate import validate_file
from tracedsl.trace import EndReason

BASE = GenerationParams().generation_params()
THINK_LO, THINK_HI, DELAY_MAX, SUMMARY = 100_000.0, 200_000.0, 10_000.0, 5000
# Each quantity is told apart by its value: a request's message 3000 tokens, a tool result 50;
# a human waits 100-200 s, a tool at most 10 s.
AGENT = {
    **BASE,
    "new_tokens_per_turn": {"kind": "constant", "value": 50.0},
    "generation_length": {"kind": "constant", "value": 100.0},
    "inter_turn_delay": {"law": {"kind": "exponential", "mean": 2000.0}, "max": DELAY_MAX},
    "reset": {"base_probability": 0.004, "context_scaling": 1.0},
    "request": {
        "calls": {"kind": "constant", "value": 5.0},
        "message": {"kind": "constant", "value": 3000.0},
        "think": {"kind": "uniform", "min": THINK_LO, "max": THINK_HI},
    },
    "compaction": {"threshold": 0.5, "summary": {"kind": "constant", "value": float(SUMMARY)},
                   "instruction_tokens": 300, "max_compactions": 3},
}
PARAMS = GenerationParams.model_validate(AGENT)


def _lines(path):
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("agent")
    result = pipeline.run(Workload(name="agent", params=PARAMS), out, num_sessions=80, seed=4, html=False)
    directory = result.run_dir
    return {
        "dir": directory,
        "quality": orjson.loads((directory / "quality.json").read_bytes()),
        "rows": _lines(directory / "dataset.jsonl"),
        "index": _lines(directory / "sessions.jsonl"),
    }


def _sessions(run):
    """Per index row: (row, that session's dataset rows)."""
    rows = run["rows"]
    out = []
    for entry in run["index"]:
        out.append((entry, rows[entry["first_row"]: entry["first_row"] + entry["turns"]]))
    return out


def test_calls_per_request_is_the_constant_and_think_gaps_come_only_from_openings(run):
    figures = run["quality"]["agent"]["requests"]
    calls = figures["calls_per_request"]
    assert calls["observed"]["count"] > 200
    assert calls["observed"]["mean"] == 5.0 and calls["observed"]["std"] == 0.0
    assert calls["expected"]["mean"] == 5.0 and calls["signed_error_mean_pct"] == 0.0
    openings, tools = [], []
    for entry, rows in _sessions(run):
        summarizing = entry["end_reason"] == EndReason.COMPACTED.reference_name
        # every fifth call opens a request; a summarization call (the last) opens none
        assert entry["requests"] == list(range(0, entry["turns"] - summarizing, 5))
        for turn, row in enumerate(rows[1:], start=1):
            if turn in entry["requests"]:
                openings.append(row["delay"])
            elif not (summarizing and turn == len(rows) - 1):
                tools.append(row["delay"])
    think, tool = figures["think_ms"]["observed"], figures["tool_latency_ms"]["observed"]
    assert think["count"] == len(openings) and tool["count"] == len(tools)
    assert all(THINK_LO <= d <= THINK_HI for d in openings) and max(tools) <= DELAY_MAX
    assert think["mean"] == pytest.approx(np.mean(openings), abs=0.01)
    assert tool["mean"] == pytest.approx(np.mean(tools), abs=0.01)
    assert THINK_LO <= think["p05"] and think["p99"] <= THINK_HI and tool["p99"] <= DELAY_MAX
    assert figures["think_ms"]["expected"]["mean"] == pytest.approx((THINK_LO + THINK_HI) / 2)
    assert figures["message_tokens"]["observed"]["std"] == 0.0
    assert figures["message_tokens"]["observed"]["mean"] == 3000.0
    assert figures["tool_new_tokens"]["observed"]["mean"] == 50.0


def test_a_compactions_prompt_before_and_after_match_the_rows(run):
    figures = run["quality"]["agent"]["compaction"]
    before, after, roots, logical = [], [], set(), set()
    for entry, rows in _sessions(run):
        logical.add(entry["logical_session_id"])
        if entry["end_reason"] == EndReason.COMPACTED.reference_name:
            # the summarization call's prompt when replayed: everything before it, then its input
            before.append(sum(r["input_length"] + r["output_length"] for r in rows[:-1]) + rows[-1]["input_length"])
            roots.add(entry["logical_session_id"])
        if entry["link"] == "compaction":
            after.append(rows[0]["input_length"])
    assert len(before) == len(after) == figures["compactions"] > 50
    assert figures["prompt_before"]["observed"]["count"] == len(before)
    assert figures["prompt_before"]["observed"]["mean"] == pytest.approx(np.mean(before), abs=0.01)
    assert max(before) <= figures["prompt_before"]["threshold_tokens"] == 0.5 * PARAMS.max_prompt_tokens
    assert set(after) == {PARAMS.fixed_prefix_tokens + SUMMARY}
    assert figures["prompt_after"]["observed"]["mean"] == PARAMS.fixed_prefix_tokens + SUMMARY
    assert figures["prompt_after"]["expected"]["mean"] == PARAMS.fixed_prefix_tokens + SUMMARY
    assert figures["summary_tokens"]["observed"]["mean"] == SUMMARY
    assert figures["logical_sessions"] == len(logical)
    assert figures["compacting_logical_sessions"] == len(roots)
    assert figures["share_compacting"] == round(len(roots) / len(logical), 4)
    per = figures["compactions_per_compacting_session"]
    assert per["observed_mean"] == round(len(before) / len(roots), 4) and 1 < per["observed_mean"] <= 3


def test_hit_rate_by_call_kind_and_by_gap_add_up_to_the_whole(run):
    quality = run["quality"]
    kinds = quality["agent"]["hit_rate_by_call_kind"]
    assert set(kinds) == {"first", "request_opening", "tool"}  # no subagents in this spec
    assert sum(k["calls"] for k in kinds.values()) == quality["kv_reuse"]["sample"]["requests"] == len(run["rows"])
    assert kinds["first"]["calls"] == len(run["index"])
    openings = sum(len(entry["requests"]) - 1 for entry in run["index"])
    assert kinds["request_opening"]["calls"] == openings
    gaps = quality["agent"]["hit_rate_by_gap"]
    assert sum(g["calls"] for g in gaps) == len(run["rows"]) - len(run["index"])
    # every think gap (100-200 s) falls in the 1-5 min bin, and only openings do
    think_bin = [g for g in gaps if g["gap_ms_from"] == 60_000.0]
    assert think_bin[0]["calls"] == openings
    # a request's first call comes after a human wait and holds a 3000-token message: fewer hits
    assert kinds["request_opening"]["hit_rate"] < kinds["tool"]["hit_rate"]


def test_comparison_lists_the_agent_figures(run):
    text = (run["dir"] / "comparison.txt").read_text()
    assert "Requests (the hosts' LLM calls" in text and "Compactions" in text
    assert "Subagents" not in text  # the spec has none
    calls = text.split("calls per request (whole requests)")[1].splitlines()[1]
    assert calls.split()[-1] == "+0.0%" and "5.0" in calls
    assert "request-opening" in text.split("Prefix hit rate by call kind")[1]


def test_report_of_the_run_directory_gives_the_runs_figures(run, tmp_path):
    subprocess.run([sys.executable, "-m", "tracedsl", "report", str(run["dir"]), "-o", str(tmp_path), "--no-html"],
                   check=True, capture_output=True)
    again = orjson.loads((tmp_path / "quality.json").read_bytes())
    quality = run["quality"]
    assert again["agent"] == quality["agent"]
    # the endings come from sessions.jsonl: none "not recorded", the same counts as the run's
    assert again["session_end_stats"] == quality["session_end_stats"]
    assert EndReason.UNKNOWN.count_key not in again["session_end_stats"]
    assert quality["session_end_stats"][EndReason.COMPACTED.count_key] == quality["agent"]["compaction"]["compactions"]


def test_report_without_sessions_jsonl_counts_endings_as_not_recorded(run, tmp_path):
    shutil.copy(run["dir"] / "dataset.jsonl", tmp_path / "dataset.jsonl")
    subprocess.run([sys.executable, "-m", "tracedsl", "report", str(tmp_path / "dataset.jsonl"), "--no-html"],
                   check=True, capture_output=True)
    quality = orjson.loads((tmp_path / "quality.json").read_bytes())
    assert quality["session_end_stats"][EndReason.UNKNOWN.count_key] == len(run["index"])
    assert "agent" not in quality  # no spec: nothing says the trace has requests


def test_a_spec_without_agent_constructs_has_no_agent_figures(tmp_path):
    result = pipeline.run(Workload(name="plain", params=GenerationParams()), tmp_path, num_sessions=40, seed=1,
                          html=True)
    quality = orjson.loads((result.run_dir / "quality.json").read_bytes())
    assert "agent" not in quality
    assert "Requests (" not in (result.run_dir / "comparison.txt").read_text()
    assert "Agent structure" not in (result.run_dir / "report.html").read_text()


def test_the_validator_accepts_the_run_and_flags_a_continuation_sharing_past_l1_l15(run, tmp_path):
    assert validate_file(run["dir"] / "dataset.jsonl").ok
    for name in ("dataset.jsonl", "sessions.jsonl", "manifest.json"):
        shutil.copy(run["dir"] / name, tmp_path / name)
    rows, index = run["rows"], run["index"]
    by_id = {entry["session_id"]: entry for entry in index}
    line, entry = next((n, e) for n, e in enumerate(index, start=1) if e["link"] == "compaction")
    parent_ids = rows[by_id[entry["parent_session_id"]]["first_row"]]["hash_ids"]
    row = rows[entry["first_row"]]
    allowed = PARAMS.layer1_blocks + PARAMS.layer1_5_blocks
    assert row["hash_ids"][:allowed] == parent_ids[:allowed] and row["hash_ids"][allowed] != parent_ids[allowed]
    # the continuation's turn 0 repeats one more of its parent's blocks (its L2's first)
    row["hash_ids"] = [*parent_ids[: allowed + 1], *row["hash_ids"][allowed + 1:]]
    lines = (tmp_path / "dataset.jsonl").read_bytes().splitlines()
    lines[entry["first_row"]] = orjson.dumps(row)
    (tmp_path / "dataset.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    report = validate_file(tmp_path / "dataset.jsonl")
    found = [d for d in report.errors if d.code == INDEX_SHARED]
    assert len(found) == 1 and found[0].span.line == line and found[0].file.endswith("sessions.jsonl")
    assert f"first {allowed + 1} hash ids" in found[0].message and f"only {allowed}" in found[0].message
    # without the spec (no manifest) only a repeat of the parent's whole turn 0 is a finding
    (tmp_path / "manifest.json").unlink()
    assert not [d for d in validate_file(tmp_path / "dataset.jsonl").errors if d.code == INDEX_SHARED]


def _hand_built_chunk():
    """A host of 6 calls whose call 2 spawns two subagents (3 and 2 calls, written right after
    it), then a second host of 4 calls; every session opens one request, at turn 0."""
    from tracedsl.trace import TraceChunk

    turns = [6, 3, 2, 4]
    offsets = np.concatenate([[0], np.cumsum(turns)])
    delays = [np.nan, 100.0, 200.0, 5000.0, 300.0, 400.0,  # the host; call 3 waits for its children
              np.nan, 10.0, 20.0, np.nan, 30.0,  # the subagents
              np.nan, 500.0, 600.0, 700.0]
    rows = int(offsets[-1])
    opens = np.zeros(rows, dtype=bool)
    opens[offsets[:-1]] = True
    return TraceChunk(
        session_ids=["host-a", "child-1", "child-2", "host-b"], group_ids=np.zeros(4, dtype=np.int64),
        is_restart=np.zeros(4, dtype=bool),
        end_reasons=np.array([0, 0, 0, 0], dtype=np.int8), row_offsets=offsets.astype(np.int64),
        input_length=np.full(rows, 100, dtype=np.int64), output_length=np.full(rows, 10, dtype=np.int64),
        delay_ms=np.array(delays), timestamp_ms=np.where(np.isnan(delays), 0.0, np.nan),
        hash_offsets=np.arange(rows + 1, dtype=np.int64), hash_ids=np.arange(rows, dtype=np.int64),
        extras={"opens_request": opens, "link": np.array([0, 3, 3, 0], dtype=np.int8),
                "spawned_at": np.array([-1, 2, 2, -1]), "parent_position": np.array([-1, 0, 0, -1])})


def test_subagent_figures_of_a_hand_built_chunk():
    from tracedsl.reports.agent import AgentFigures

    body = {**BASE, "reset": None, "turns": {"law": {"kind": "constant", "value": 3.0}, "allow_truncation": True}}
    params = GenerationParams.model_validate({**AGENT, "subagent": {
        "probability": 0.25, "fanout": {"kind": "constant", "value": 2.0},
        "returns": {"kind": "constant", "value": 500.0}, "params": body}})
    chunk = _hand_built_chunk()
    figures = AgentFigures(params)
    figures.add(chunk, chunk.request_input_length.astype(np.float64), None, None)
    out = figures.figures()
    sub = out["subagents"]
    # hosts' calls 1..4 and 1..2 have a tool call after them; the children's body spawns nothing
    assert (sub["eligible_calls"], sub["spawns"], sub["spawns_elsewhere"], sub["children"]) == (6, 1, 0, 2)
    assert sub["spawn_rate"] == {"target": 0.25, "observed": round(1 / 6, 6)}
    assert sub["fanout"]["observed"]["mean"] == 2.0 and sub["fanout"]["expected"]["mean"] == 2.0
    assert sub["calls_per_child"]["observed"]["mean"] == 2.5 and sub["calls_per_child"]["expected"]["mean"] == 3.0
    assert sub["wait_ms"]["observed"]["count"] == 1 and sub["wait_ms"]["observed"]["mean"] == 5000.0
    requests = out["requests"]
    # the hosts' tool calls: not the call that waited for the subagents, not the subagents' calls
    assert requests["tool_latency_ms"]["observed"]["count"] == 7
    assert requests["tool_latency_ms"]["observed"]["mean"] == pytest.approx(np.mean([100, 200, 300, 400, 500, 600, 700]))
    assert requests["requests_per_session"]["observed"]["count"] == 2  # the hosts
    # the sample: both hosts, each child after its host, starting when the spawning call ends
    lanes = figures.samples
    assert [lane["session_id"] for lane in lanes] == ["host-a", "child-1", "child-2", "host-b"]
    host = lanes[0]
    assert lanes[1]["start_ms"][0] == pytest.approx(host["start_ms"][2] + host["latency_ms"][2], abs=0.2)
    assert lanes[1]["parent_id"] == "host-a" and lanes[1]["spawned_at"] == 2
