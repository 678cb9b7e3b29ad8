"""Subagents in the fast engine (issue #13): which calls spawn, what the parent's next call holds
and waits, where children go, what they share with their parent, nesting, timing, ids, bytes."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest

from tracedsl import pipeline
from tracedsl.engine import RunRequest
from tracedsl.engine import spawns as spawn_draws
from tracedsl.engine.executors import ProcessPool
from tracedsl.engine.fast import FastEngine, Stitcher, plan, run_chunk, stitcher_for
from tracedsl.engine.model import SessionModel
from tracedsl.engine.samplers import session_keys
from tracedsl.ir import GenerationParams, Workload
from tracedsl.output.jsonl import render_chunk
from tracedsl.trace import EndReason

DEFAULT = GenerationParams().generation_params()
# A small prefix (4 + 4 blocks and a short L2), so sessions grow and compact within 40k tokens.
CACHE = {**DEFAULT["cache"], "layer1_tokens": 2048, "layer1_5_tokens": 2048,
         "layer2": {"kind": "uniform", "min": 500.0, "max": 3000.0},
         "layer1_5_groups": {"num_groups": 8, "zipf_alpha": 1.0}}
BASE = {**DEFAULT, "cache": CACHE}
NEW, OUT, MESSAGE, RETURNS, SUMMARY, INSTRUCTION = 50, 100, 3000, 700, 2000, 300
LIMIT = 40_000
CHILD = {  # a small body: three calls, its own groups, the parent's global prefix
    **BASE,
    "reset": None,
    "turns": {"law": {"kind": "constant", "value": 3.0}, "allow_truncation": True},
    "new_tokens_per_turn": {"kind": "constant", "value": 40.0},
    "generation_length": {"kind": "constant", "value": 80.0},
    "cache": {**CACHE, "layer1_5_groups": {"num_groups": 3, "zipf_alpha": 1.0}},
}
# Every quantity is told apart by its value: a tool result is 50 tokens, a request's message
# 3000, a summarization's instruction 300, two children's returns 1400.
SPAWNING = {
    **BASE,
    "max_prompt_tokens": LIMIT,
    "reset": {"base_probability": 0.03, "context_scaling": 1.0},
    "new_tokens_per_turn": {"kind": "constant", "value": float(NEW)},
    "generation_length": {"kind": "constant", "value": float(OUT)},
    "inter_turn_delay": {"law": {"kind": "exponential", "mean": 2000.0}, "max": 10000.0},
    "request": {"calls": {"kind": "constant", "value": 4.0},
                "message": {"kind": "constant", "value": float(MESSAGE)},
                "think": {"kind": "uniform", "min": 100000.0, "max": 200000.0}},
    "compaction": {"threshold": 0.5, "summary": {"kind": "constant", "value": float(SUMMARY)},
                   "instruction_tokens": INSTRUCTION, "max_compactions": 2},
    "subagent": {"probability": 1.0, "fanout": {"kind": "constant", "value": 2.0},
                 "returns": {"kind": "constant", "value": float(RETURNS)},
                 "shares_global": True, "shares_groups": False, "params": CHILD},
}
LATENCY = GenerationParams.model_validate(SPAWNING).latency


def _with(data: dict = SPAWNING, **subagent) -> dict:
    return {**data, "subagent": {**data["subagent"], **subagent}}


def _chunks(data: dict = SPAWNING, sessions: int = 40, seed: int = 3, **engine):
    return list(FastEngine(**engine).generate(RunRequest(GenerationParams.model_validate(data), sessions, seed)))


def _sessions(chunks) -> list[dict]:
    """Every session in file order, with its parent's file position (-1: none) and its rows."""
    found: list[dict] = []
    for chunk in chunks:
        first = len(found)
        link = chunk.extras.get("link", np.zeros(chunk.num_sessions, np.int8))
        parent = chunk.extras["parent_position"]
        spawned_at = chunk.extras["spawned_at"]
        opens = chunk.extras.get("opens_request")
        for s in range(chunk.num_sessions):
            rows = slice(int(chunk.row_offsets[s]), int(chunk.row_offsets[s + 1]))
            start, stop = chunk.hash_offsets[rows.start], chunk.hash_offsets[rows.stop]
            found.append({
                "id": chunk.session_ids[s], "link": int(link[s]), "group": int(chunk.group_ids[s]),
                "restart": bool(chunk.is_restart[s]),
                "parent": first + int(parent[s]) if parent[s] >= 0 else -1,
                "spawned_at": int(spawned_at[s]), "end": EndReason(int(chunk.end_reasons[s])),
                "new": chunk.input_length[rows], "out": chunk.output_length[rows],
                "delay": chunk.delay_ms[rows], "opens": opens[rows] if opens is not None else None,
                "start": float(chunk.timestamp_ms[rows.start]), "index": int(chunk.extras["primary_index"][s]),
                "first_ids": chunk.row_hash_ids(rows.start), "ids": chunk.hash_ids[start:stop],
            })
    return found


def _duration(session: dict, upto: int | None = None) -> float:
    """The session's estimated time (latency of each call, as replayed, plus the delays before
    them), through call ``upto`` (all of them by default), worked out call by call."""
    prompt, spent = 0, 0.0
    for turn, (new, out, delay) in enumerate(zip(session["new"], session["out"], session["delay"], strict=True)):
        if upto is not None and turn > upto:
            break
        prompt += int(new)
        spent += LATENCY.request_ms(prompt, int(out)) + (0.0 if np.isnan(delay) else float(delay))
        prompt += int(out)
    return spent


def _spawning_turns(session: dict) -> list[int]:
    """The calls the design says spawn at probability 1: after turn 0, followed by a tool call."""
    turns = len(session["new"])
    last = turns - 1 - (session["end"] is EndReason.COMPACTED)  # a summarization is no tool call
    return [k for k in range(1, last) if not session["opens"][k + 1]]


@pytest.fixture(scope="module")
def spawning():
    return _sessions(_chunks())


def test_every_call_followed_by_a_tool_call_spawns_two_children_right_after_the_parent(spawning):
    hosts = [i for i, s in enumerate(spawning) if s["link"] != 3]
    skipped_opening = skipped_summary = 0
    for i in hosts:
        host = spawning[i]
        expected = _spawning_turns(host)
        children = [j for j, s in enumerate(spawning) if s["parent"] == i and s["link"] == 3]
        assert children == list(range(i + 1, i + 1 + 2 * len(expected)))  # its block, nothing between
        assert [spawning[j]["spawned_at"] for j in children] == [k for k in expected for _ in range(2)]
        turns = len(host["new"])
        skipped_opening += sum(bool(host["opens"][k + 1]) for k in range(1, turns - 1))
        skipped_summary += host["end"] is EndReason.COMPACTED
    assert skipped_opening > 50 and skipped_summary > 10  # both exceptions are exercised
    assert all(s["spawned_at"] == -1 for s in spawning if s["link"] != 3)
    # the children's body has no subagent: no subagent spawns
    assert not any(spawning[s["parent"]]["link"] == 3 for s in spawning if s["parent"] >= 0)


def test_the_call_after_a_spawn_appends_the_returns_and_waits_the_longest_child(spawning):
    checked = 0
    for i, host in enumerate(spawning):
        if host["link"] == 3:
            continue
        expected = set(_spawning_turns(host))
        children = [s for s in spawning if s["parent"] == i and s["link"] == 3]
        for turn in range(1, len(host["new"])):
            new = int(host["new"][turn])
            if turn - 1 in expected:
                assert new == 2 * RETURNS
                pair = [c for c in children if c["spawned_at"] == turn - 1]
                assert host["delay"][turn] == pytest.approx(max(_duration(c) for c in pair), rel=1e-9)
                checked += 1
            else:  # a request's message, a summarization's instruction, or a tool result
                assert new in (MESSAGE, INSTRUCTION, NEW)
                assert host["delay"][turn] <= 10000.0 or host["opens"][turn]
    assert checked > 300


def test_returns_are_each_childs_own_draw():
    data = _with(returns={"kind": "lognormal", "mean": 2000.0, "median": 1000.0, "max": 20000.0},
                 probability=0.3, fanout={"kind": "uniform", "min": 1.0, "max": 4.0})
    params = GenerationParams.model_validate(data)
    model = SessionModel.build(params, 60, 3)
    sessions = _sessions(_chunks(data, sessions=60))
    fanouts, checked = set(), 0
    for i, host in enumerate(sessions):
        if host["link"] != 0:  # a primary: its key is the run's
            continue
        key = session_keys(model.run_key, np.array([2 * host["index"]]))
        for turn in sorted({s["spawned_at"] for s in sessions if s["parent"] == i}):
            count = sum(s["spawned_at"] == turn for s in sessions if s["parent"] == i)
            _, _, child, _ = spawn_draws.children(model.subagent, key, np.array([turn]))
            assert child.shape[0] == count
            assert host["new"][turn + 1] == spawn_draws.returns(model.subagent, child).sum()
            fanouts.add(count)
            checked += 1
    assert checked > 50 and fanouts == {1, 2, 3, 4}


@pytest.mark.parametrize("shares_global,shares_groups", [(True, False), (False, True)])
def test_children_share_exactly_what_their_body_inherits(shares_global, shares_groups):
    child = {**CHILD, "cache": {**CHILD["cache"], "layer1_tokens": 1536}} if not shares_global else CHILD
    if shares_groups:
        child = {**child, "cache": {**child["cache"], "layer1_5_groups": CACHE["layer1_5_groups"]}}
    data = _with(shares_global=shares_global, shares_groups=shares_groups, params=child, probability=0.4)
    params = GenerationParams.model_validate(data)
    top_layer1, top_layer1_5 = params.layer1_blocks, params.layer1_5_blocks
    top_groups = params.cache.layer1_5_groups.num_groups
    sessions = _sessions(_chunks(data, sessions=60))
    children = [s for s in sessions if s["link"] == 3]
    assert len(children) > 100
    host_prefix = {int(i) for s in sessions if s["link"] != 3 for i in s["first_ids"][:top_layer1 + top_layer1_5]}
    own_layer1 = set()
    for child_session in children:
        parent = sessions[child_session["parent"]]
        ids, theirs = child_session["first_ids"], parent["first_ids"]
        layer1 = ids[:top_layer1] if shares_global else ids[:3]  # 1536 tokens: 3 blocks of its own
        rest = ids[len(layer1):]
        layer1_5 = rest[:top_layer1_5]
        if shares_global:
            assert list(layer1) == list(theirs[:top_layer1])
        else:
            assert not set(layer1.tolist()) & host_prefix
            own_layer1.add(tuple(layer1.tolist()))
        if shares_groups:
            assert child_session["group"] == parent["group"]
            assert list(layer1_5) == list(theirs[top_layer1:top_layer1 + top_layer1_5])
        else:
            assert top_groups <= child_session["group"] < top_groups + 3  # its own 3 groups, global ids
            assert not set(layer1_5.tolist()) & host_prefix
    if not shares_global:
        assert len(own_layer1) == 1  # every child's own global prefix is the same blocks
    # nothing else is shared: past its prefix, every id belongs to one session only
    own_prefix = 3 + top_layer1_5 if not shares_global else top_layer1 + top_layer1_5
    prefix_ids = host_prefix | {int(i) for s in children for i in s["first_ids"][:own_prefix]}
    unique = [np.unique(s["ids"]) for s in sessions]
    rest = np.concatenate([u[~np.isin(u, list(prefix_ids))] for u in unique])
    assert np.unique(rest).shape[0] == rest.shape[0]


def test_a_restarts_session_b_spawns_too_and_still_reuses_its_parents_blocks():
    data = {**_with(probability=0.3, params=CHILD), "request": None, "compaction": None,
            "restart_initial_probability": 0.8, "restart_turn_range": [2, 6]}
    params = GenerationParams.model_validate(data)
    prefix = params.layer1_blocks + params.layer1_5_blocks
    sessions = _sessions(_chunks(data, sessions=60))
    split = {s["index"]: s for s in sessions if s["end"] is EndReason.RESTART_SPLIT}
    restarts = [(i, s) for i, s in enumerate(sessions) if s["restart"]]
    assert len(restarts) > 10
    for i, b in restarts:
        parent = split[b["index"]]
        whole = (int(parent["new"][0]) - params.fixed_prefix_tokens) // params.block_size
        assert list(b["first_ids"][:prefix + whole]) == list(parent["first_ids"][:prefix + whole])
        children = [j for j, s in enumerate(sessions) if s["parent"] == i]
        assert children == list(range(i + 1, i + 1 + len(children)))  # its block travels with it
    assert any(s["parent"] == i for i, _ in restarts for s in sessions)


NESTED = _with(probability=0.5, params={
    **CHILD,
    "turns": {"law": {"kind": "uniform", "min": 3.0, "max": 30.0}, "allow_truncation": True},
    "max_prompt_tokens": 20_000,
    "compaction": {"threshold": 0.5, "summary": {"kind": "constant", "value": 1000.0}},
    "subagent": {"probability": 0.2, "fanout": {"kind": "constant", "value": 1.0},
                 "returns": {"kind": "constant", "value": 500.0}, "params": CHILD},
})


def test_nested_subagents_when_the_body_says_so_in_dfs_preorder():
    sessions = _sessions(_chunks(NESTED, sessions=40))
    depth = []
    for s in sessions:
        depth.append(0 if s["link"] != 3 and s["parent"] < 0 else depth[s["parent"]] + (s["link"] == 3))
    assert max(depth) == 2 and sum(d == 2 for d in depth) > 20
    # a subagent's compaction continuation follows it, linked to it
    chained = [s for s in sessions if s["link"] == 2 and s["parent"] >= 0]
    assert chained and all(sessions[s["parent"]]["end"] is EndReason.COMPACTED for s in chained)
    # DFS preorder: every session between a parent and its child descends from that parent
    for i, s in enumerate(sessions):
        if s["parent"] < 0:
            continue
        for between in range(s["parent"] + 1, i):
            up = between
            while up > s["parent"]:
                up = sessions[up]["parent"]
            assert up == s["parent"]


def test_session_ids_are_unique_and_the_bytes_do_not_depend_on_chunking_or_workers():
    data = {**NESTED, "arrivals": {"kind": "poisson", "rate": 2.0}}

    def digest(chunks) -> str:
        sha = hashlib.sha256()
        for chunk in chunks:
            sha.update(render_chunk(chunk))
        return sha.hexdigest()

    whole = _chunks(data, sessions=61)
    ids = [i for c in whole for i in c.session_ids]
    assert len(ids) == len(set(ids))
    assert digest(_chunks(data, sessions=61, chunk_sessions=5)) == digest(whole)
    with ProcessPool(2) as pool:
        assert digest(_chunks(data, sessions=61, chunk_sessions=7, map_fn=pool)) == digest(whole)


def test_with_arrivals_a_child_starts_when_its_spawning_call_ends():
    data = {**SPAWNING, "arrivals": {"kind": "poisson", "rate": 1.0}}
    sessions = _sessions(_chunks(data, sessions=30))
    checked = 0
    for s in sessions:
        if s["link"] != 3:
            continue
        parent = sessions[s["parent"]]
        assert s["start"] - parent["start"] == pytest.approx(_duration(parent, s["spawned_at"]), rel=1e-9, abs=1e-6)
        checked += 1
    assert checked > 100


def test_sessions_jsonl_links_children_and_validate_accepts_the_run(tmp_path):
    workload = Workload(name="spawning", params=GenerationParams.model_validate(NESTED))
    result = pipeline.run(workload, tmp_path, num_sessions=30, seed=4, html=False)
    index = [json.loads(line) for line in (result.run_dir / "sessions.jsonl").read_text().splitlines()]
    position = {row["session_id"]: i for i, row in enumerate(index)}
    subagents = [row for row in index if row["link"] == "subagent"]
    assert subagents and all(row["spawned_at"] >= 1 for row in subagents)
    assert all(row["spawned_at"] is None for row in index if row["link"] != "subagent")
    for row in subagents:
        parent = index[position[row["parent_session_id"]]]
        assert position[parent["session_id"]] < position[row["session_id"]]
        assert row["spawned_at"] < parent["turns"] - 1
    for row in index:
        if row["link"] == "compaction":
            assert row["logical_session_id"] == index[position[row["parent_session_id"]]]["logical_session_id"]
    command = [sys.executable, "-m", "tracedsl", "validate", str(result.run_dir / "dataset.jsonl")]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_run_without_subagents_writes_no_spawn_fields(tmp_path):
    result = pipeline.run("default", tmp_path, num_sessions=10, seed=2, html=False)
    first = json.loads((result.run_dir / "sessions.jsonl").read_text().splitlines()[0])
    assert "spawned_at" not in first
    chunk = _chunks(DEFAULT, sessions=10)[0]
    assert not {"spawned_at", "parent_position", "link"} & set(chunk.extras)


def test_continuations_waiting_on_disk_change_no_byte(tmp_path):
    data = {**NESTED, "arrivals": {"kind": "poisson", "rate": 2.0}, "restart_initial_probability": 0.5,
            "request": None, "restart_turn_range": [2, 6]}
    request = RunRequest(GenerationParams.model_validate(data), 300, 9)
    tasks = plan(request, 10)

    def rendered(**spill) -> tuple[bytes, Stitcher]:
        stitcher = stitcher_for(request, tasks[0].model)
        if spill:
            stitcher = Stitcher(stitcher.model, stitcher.start_ms, stitcher.latency, **spill)
        return b"".join(render_chunk(stitcher.add(run_chunk(task))) for task in tasks), stitcher

    in_memory, _ = rendered()
    spilled, stitcher = rendered(spill_dir=tmp_path, spill_rows=0, spill_bucket=16)
    assert stitcher.spill.written > 20  # compaction and restart continuations (with their subagents)
    assert spilled == in_memory
    assert not list(tmp_path.iterdir())  # every waiting part came back; the folder is gone
