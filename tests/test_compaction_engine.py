"""Compaction in the fast engine (issue #13): where a session compacts, what its summarization
call and its continuation hold, how chains are bounded, linked, ordered and timed."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from tracedsl import pipeline
from tracedsl.engine import RunRequest
from tracedsl.engine.fast import FastEngine
from tracedsl.ir import GenerationParams, Workload
from tracedsl.trace import EndReason

BASE = GenerationParams().generation_params()
THRESHOLD, SUMMARY, INSTRUCTION, MAX = 0.5, 5000, 300, 3
COMPACTING = {
    **BASE,
    "reset": {"base_probability": 0.004, "context_scaling": 1.0},
    "compaction": {"threshold": THRESHOLD, "summary": {"kind": "constant", "value": float(SUMMARY)},
                   "instruction_tokens": INSTRUCTION, "max_compactions": MAX},
}
PARAMS = GenerationParams.model_validate(COMPACTING)
LIMIT = PARAMS.max_prompt_tokens
PREFIX = PARAMS.fixed_prefix_tokens
PREFIX_BLOCKS = PARAMS.layer1_blocks + PARAMS.layer1_5_blocks


def _chunks(data: dict = COMPACTING, sessions: int = 400, seed: int = 5, chunk_sessions: int = 4096):
    engine = FastEngine(chunk_sessions=chunk_sessions)
    return list(engine.generate(RunRequest(GenerationParams.model_validate(data), sessions, seed)))


def _index(data: dict = COMPACTING, sessions: int = 300, tmp_path=None):
    workload = Workload(name="compacting", params=GenerationParams.model_validate(data))
    result = pipeline.run(workload, tmp_path, num_sessions=sessions, seed=4, html=False)
    rows = [orjson.loads(line) for line in (result.run_dir / "dataset.jsonl").read_bytes().splitlines()]
    index = [orjson.loads(line) for line in (result.run_dir / "sessions.jsonl").read_bytes().splitlines()]
    return rows, index


def _sessions(chunks):
    """(end reason, link, prompts, rows) per session in file order; prompts as replayed."""
    for chunk in chunks:
        prompt = chunk.request_input_length
        link = chunk.extras.get("link", np.zeros(chunk.num_sessions, np.int8))
        for s in range(chunk.num_sessions):
            rows = slice(chunk.row_offsets[s], chunk.row_offsets[s + 1])
            yield (EndReason(int(chunk.end_reasons[s])), int(link[s]), prompt[rows],
                   chunk.input_length[rows], chunk.output_length[rows], chunk.row_hash_ids(int(chunk.row_offsets[s])))


def test_a_compacting_session_ends_with_its_summarization_below_the_threshold():
    sessions = list(_sessions(_chunks()))
    compacted = [s for s in sessions if s[0] is EndReason.COMPACTED]
    assert len(compacted) > 100
    for _, _, prompt, new, out, _ in compacted:
        assert (new[-1], out[-1]) == (INSTRUCTION, SUMMARY)  # the summarization call
        # no call, the summarization's included, reaches the threshold
        assert prompt.max() < THRESHOLD * LIMIT
    retired = [s for s in sessions if s[0] is EndReason.FORCED_RETIRE]
    assert retired  # chains at their bound retire at the context limit instead
    assert all(s[2].max() < LIMIT for s in sessions)


def test_a_continuation_starts_at_the_prefix_plus_the_summary_with_fresh_summary_ids():
    chunks = _chunks()
    seen: set[int] = set()
    continuations = 0
    for chunk in chunks:
        link = chunk.extras["link"]
        for s in range(chunk.num_sessions):
            first = int(chunk.row_offsets[s])
            ids = chunk.row_hash_ids(first)
            if link[s] == 2:
                continuations += 1
                assert chunk.input_length[first] == PREFIX + SUMMARY
                assert len(ids) == -(-(PREFIX + SUMMARY) // PARAMS.block_size)
                summary_ids = ids[PREFIX_BLOCKS:]
                assert not seen.intersection(summary_ids.tolist())  # fresh: no earlier row had them
            for row in range(first, int(chunk.row_offsets[s + 1])):
                seen.update(chunk.row_hash_ids(row)[PREFIX_BLOCKS if row == first else 0:].tolist())
    assert continuations > 100


def test_chains_are_linked_bounded_and_written_after_their_parents(tmp_path):
    rows, index = _index(tmp_path=tmp_path)
    position = {row["session_id"]: i for i, row in enumerate(index)}
    by_id = {row["session_id"]: row for row in index}
    compactions = {}
    for row in index:
        if row["link"] == "compaction":
            parent = by_id[row["parent_session_id"]]
            assert parent["end_reason"] == "compacted" and position[parent["session_id"]] < position[row["session_id"]]
            assert parent["group_id"] == row["group_id"]
            assert row["logical_session_id"] == parent["logical_session_id"]
            # it shares L1 and the group's L1.5 with its parent, nothing else
            mine, theirs = rows[row["first_row"]]["hash_ids"], rows[parent["first_row"]]["hash_ids"]
            assert mine[:PREFIX_BLOCKS] == theirs[:PREFIX_BLOCKS]
            assert not set(mine[PREFIX_BLOCKS:]) & set(theirs)
        else:
            assert row["logical_session_id"] == row["session_id"]
        compactions[row["logical_session_id"]] = compactions.get(row["logical_session_id"], 0) + (
            row["end_reason"] == "compacted")
    assert max(compactions.values()) == MAX  # some logical sessions reach the bound, none passes it
    parents = {row["parent_session_id"] for row in index if row["link"] == "compaction"}
    assert parents == {row["session_id"] for row in index if row["end_reason"] == "compacted"}


def test_compaction_does_not_depend_on_the_chunking():
    def flat(chunks):
        return [np.concatenate([getattr(c, name) for c in chunks])
                for name in ("input_length", "output_length", "end_reasons", "hash_ids")]

    for a, b in zip(flat(_chunks(sessions=97)), flat(_chunks(sessions=97, chunk_sessions=5)), strict=True):
        np.testing.assert_array_equal(a, b)


def test_with_arrivals_a_continuation_starts_after_its_parent_by_the_parents_estimated_time(tmp_path):
    data = {**COMPACTING, "arrivals": {"kind": "poisson", "rate": 2.0}}
    rows, index = _index(data, sessions=150, tmp_path=tmp_path)
    latency = GenerationParams.model_validate(data).latency
    by_id = {row["session_id"]: row for row in index}
    checked = 0
    for row in index:
        if row["link"] != "compaction":
            continue
        parent = by_id[row["parent_session_id"]]
        calls = rows[parent["first_row"]:parent["first_row"] + parent["turns"]]
        prompt, spent = 0, 0.0
        for call in calls:
            prompt += call["input_length"]
            spent += latency.request_ms(prompt, call["output_length"]) + call.get("delay", 0)
            prompt += call["output_length"]
        gap = rows[row["first_row"]]["timestamp"] - rows[parent["first_row"]]["timestamp"]
        assert gap == pytest.approx(spent, rel=1e-6, abs=2)
        checked += 1
    assert checked > 50


def test_turn_count_mode_counts_every_call_of_the_logical_session(tmp_path):
    data = {**COMPACTING, "reset": None, "turns": {
        "law": {"kind": "uniform", "min": 40.0, "max": 120.0}, "allow_truncation": True}}
    data["compaction"] = {**data["compaction"], "max_compactions": None}
    _, index = _index(data, sessions=200, tmp_path=tmp_path)
    calls: dict[str, int] = {}
    for row in index:
        calls[row["logical_session_id"]] = calls.get(row["logical_session_id"], 0) + row["turns"]
    ended = {row["logical_session_id"]: row["end_reason"] for row in index}  # the chain's last session
    assert any(row["link"] == "compaction" for row in index)
    targets = [n for logical, n in calls.items() if ended[logical] == "target_turn_count"]
    assert targets and all(40 <= n <= 120 for n in targets)
    assert len(targets) >= 0.9 * len(calls)


def test_a_run_without_compaction_writes_no_logical_ids(tmp_path):
    _, index = _index(BASE, sessions=10, tmp_path=tmp_path)
    assert all("logical_session_id" not in row for row in index)


def test_late_parents_continuations_spread_over_the_rest_of_the_file_not_its_end(tmp_path):
    # A quarter-run gap from a parent in the run's last quarter would pass the end; those
    # continuations go anywhere after their parent instead of all after the last primary
    # (which made the run's last chunk hold O(N) sessions).
    _, index = _index(sessions=400, tmp_path=tmp_path)
    primaries = [i for i, row in enumerate(index) if row["link"] is None]
    continuations = [i for i, row in enumerate(index) if row["link"] == "compaction"]
    late = [i for i in continuations if i > primaries[int(0.75 * len(primaries))]]
    after_last = [i for i in continuations if i > primaries[-1]]
    assert len(late) > 50
    assert len(after_last) <= 0.25 * len(late)  # 14% here; 72% when they all went to the end
