"""Subagents in the reports (issue #13): quality.json's ``agent.subagents`` and the hit rate of
subagent calls against sessions.jsonl, `tracedsl report` reading them back, the validator's
check of what a child shares, and the timeline's spawn marks in headless Chromium."""

from __future__ import annotations

import shutil

import numpy as np
import orjson
import pytest
from browser import open_page

from tracedsl import pipeline
from tracedsl.ir import GenerationParams, Workload
from tracedsl.output.reader import read_trace
from tracedsl.output.sessions import INDEX_SHARED
from tracedsl.output.validate import validate_file
from tracedsl.reports import ReportSet
from tracedsl.reports.regenerate import with_index
from tracedsl.trace import EndReason

DEFAULT = GenerationParams().generation_params()
CACHE = {**DEFAULT["cache"], "layer1_tokens": 2048, "layer1_5_tokens": 2048,
         "layer2": {"kind": "uniform", "min": 500.0, "max": 3000.0},
         "layer1_5_groups": {"num_groups": 8, "zipf_alpha": 1.0}}
CHILD = {**DEFAULT, "cache": {**CACHE, "layer1_5_groups": {"num_groups": 3, "zipf_alpha": 1.0}},
         "reset": None, "turns": {"law": {"kind": "uniform", "min": 2.0, "max": 6.0}, "allow_truncation": True},
         "new_tokens_per_turn": {"kind": "constant", "value": 40.0},
         "generation_length": {"kind": "constant", "value": 80.0}}
PROBABILITY = 0.3
SPEC = {
    **DEFAULT, "cache": CACHE, "max_prompt_tokens": 40_000,
    "reset": {"base_probability": 0.03, "context_scaling": 1.0},
    "new_tokens_per_turn": {"kind": "constant", "value": 50.0},
    "generation_length": {"kind": "constant", "value": 100.0},
    "inter_turn_delay": {"law": {"kind": "exponential", "mean": 2000.0}, "max": 10000.0},
    "request": {"calls": {"kind": "constant", "value": 4.0}, "message": {"kind": "constant", "value": 3000.0},
                "think": {"kind": "uniform", "min": 100000.0, "max": 200000.0}},
    "compaction": {"threshold": 0.5, "summary": {"kind": "constant", "value": 2000.0}, "max_compactions": 2},
    "subagent": {"probability": PROBABILITY, "fanout": {"kind": "uniform", "min": 1.0, "max": 3.0},
                 "returns": {"kind": "constant", "value": 700.0},
                 "shares_global": True, "shares_groups": False, "params": CHILD},
}
PARAMS = GenerationParams.model_validate(SPEC)


def _lines(path):
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("subagents")
    result = pipeline.run(Workload(name="subagents", params=PARAMS), out, num_sessions=60, seed=7, html=True)
    directory = result.run_dir
    return {"dir": directory, "quality": orjson.loads((directory / "quality.json").read_bytes()),
            "rows": _lines(directory / "dataset.jsonl"), "index": _lines(directory / "sessions.jsonl")}


def test_spawns_fanout_and_calls_per_child_match_sessions_jsonl(run):
    index = run["index"]
    sub = run["quality"]["agent"]["subagents"]
    children = [e for e in index if e["link"] == "subagent"]
    spawns = {(e["parent_session_id"], e["spawned_at"]) for e in children}
    by_id = {e["session_id"]: e for e in index}
    # eligible: a host's call k >= 1 whose call k + 1 is a tool call (not an opening, not the
    # summarization); a host is any session not in a subagent's block; the children's body spawns nothing
    block: set[str] = set()
    eligible = 0
    for e in index:
        if e["link"] == "subagent" or (e["link"] == "compaction" and e["parent_session_id"] in block):
            block.add(e["session_id"])
            continue
        last = e["turns"] - 1
        summarizing = e["end_reason"] == EndReason.COMPACTED.reference_name
        for k in range(1, last):
            if k + 1 not in e["requests"] and not (summarizing and k + 1 == last):
                eligible += 1
    assert len(children) > 40 and sub["children"] == len(children)
    assert sub["spawns"] == len(spawns) and sub["spawns_elsewhere"] == 0
    assert sub["eligible_calls"] == eligible
    assert all(k + 1 < by_id[p]["turns"] for p, k in spawns)  # every spawn has a next call here
    assert sub["spawn_rate"]["target"] == PROBABILITY
    assert sub["spawn_rate"]["observed"] == round(len(spawns) / eligible, 6)
    assert abs(sub["spawn_rate"]["observed"] - PROBABILITY) < 0.08
    fan = [sum(1 for c in children if (c["parent_session_id"], c["spawned_at"]) == s) for s in sorted(spawns)]
    assert sub["fanout"]["observed"]["mean"] == pytest.approx(np.mean(fan), abs=0.01)
    assert set(fan) <= {1, 2, 3} and sub["fanout"]["expected"]["mean"] == pytest.approx(2.0, abs=0.01)
    assert sub["calls_per_child"]["observed"]["mean"] == pytest.approx(np.mean([c["turns"] for c in children]),
                                                                       abs=0.01)
    assert sub["calls_per_child"]["expected"]["mean"] == pytest.approx(4.0, abs=0.01)
    assert sub["wait_ms"]["observed"]["count"] == len(spawns)
    # the subagent calls' hit rate covers every row of the subagents (and their continuations)
    kinds = run["quality"]["agent"]["hit_rate_by_call_kind"]
    assert kinds["subagent"]["calls"] == sum(by_id[s]["turns"] for s in block)
    assert "Subagents" in (run["dir"] / "comparison.txt").read_text()


def test_report_reads_the_same_subagent_figures_whatever_the_chunks(run):
    dataset = run["dir"] / "dataset.jsonl"
    for rows in (37, 1000):  # chunks that cut hosts from their subagents, and larger ones
        reports = ReportSet(PARAMS, "again", PARAMS.block_size)
        for chunk in with_index(read_trace(dataset, chunk_rows=rows), PARAMS, run["dir"] / "sessions.jsonl"):
            reports.add(chunk)
        again = reports.quality()
        assert again["agent"] == run["quality"]["agent"]
        assert again["session_end_stats"] == run["quality"]["session_end_stats"]


def test_the_validator_flags_a_subagent_sharing_more_than_its_body_inherits(run, tmp_path):
    assert validate_file(run["dir"] / "dataset.jsonl").ok
    for name in ("dataset.jsonl", "sessions.jsonl", "manifest.json"):
        shutil.copy(run["dir"] / name, tmp_path / name)
    rows, index = run["rows"], run["index"]
    by_id = {e["session_id"]: e for e in index}
    line, child = next((n, e) for n, e in enumerate(index, start=1) if e["link"] == "subagent")
    parent_ids = rows[by_id[child["parent_session_id"]]["first_row"]]["hash_ids"]
    row = rows[child["first_row"]]
    allowed = GenerationParams.model_validate(CHILD).layer1_blocks  # its L1: shares_global, own groups
    assert row["hash_ids"][:allowed] == parent_ids[:allowed] and row["hash_ids"][allowed] != parent_ids[allowed]
    row["hash_ids"] = [*parent_ids[: allowed + 1], *row["hash_ids"][allowed + 1:]]  # the parent's L1.5 too
    lines = (tmp_path / "dataset.jsonl").read_bytes().splitlines()
    lines[child["first_row"]] = orjson.dumps(row)
    (tmp_path / "dataset.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    found = [d for d in validate_file(tmp_path / "dataset.jsonl").errors if d.code == INDEX_SHARED]
    assert len(found) == 1 and found[0].span.line == line
    assert f"first {allowed + 1} hash ids" in found[0].message and "what its body inherits" in found[0].message


@pytest.mark.browser
def test_the_timeline_marks_each_drawn_spawn(run):
    reports = ReportSet(PARAMS, "x", PARAMS.block_size)
    for chunk in with_index(read_trace(run["dir"] / "dataset.jsonl"), PARAMS, run["dir"] / "sessions.jsonl"):
        reports.add(chunk)
    lanes = reports.collector.agent.samples
    drawn_ids = {lane["session_id"] for lane in lanes}
    spawned = [lane for lane in lanes if lane["link"] == "subagent" and lane["parent_id"] in drawn_ids]
    assert spawned and len(lanes) > 4
    with open_page(run["dir"] / "report.html", width=1400) as page:
        assert page.errors == [] and page.blocked == []
        svg = """[...document.querySelectorAll('.card')].find(
            c => c.querySelector('h2').textContent.startsWith('Agent structure')).querySelector('svg')"""
        counts = page.eval(f"""(() => {{ const svg = {svg};
            return [svg.querySelectorAll('line.spawn').length, svg.querySelectorAll('rect.call.subagent').length,
                    svg.querySelectorAll('text.lane').length]; }})()""")
        assert counts == [len(spawned), sum(len(lane["start_ms"]) for lane in lanes if not lane["host"]), len(lanes)]


def test_nested_subagents_count_their_own_eligible_calls(tmp_path):
    grandchild = {**CHILD, "turns": {"law": {"kind": "constant", "value": 3.0}, "allow_truncation": True}}
    nested = {**SPEC, "subagent": {**SPEC["subagent"], "params": {
        **CHILD, "subagent": {"probability": 0.5, "fanout": {"kind": "constant", "value": 1.0},
                              "returns": {"kind": "constant", "value": 300.0}, "params": grandchild}}}}
    params = GenerationParams.model_validate(nested)
    result = pipeline.run(Workload(name="nested", params=params), tmp_path, num_sessions=30, seed=2, html=False)
    index = _lines(result.run_dir / "sessions.jsonl")
    sub = orjson.loads((result.run_dir / "quality.json").read_bytes())["agent"]["subagents"]
    depth: dict[str, int] = {}
    eligible = 0
    for e in index:
        parent = e["parent_session_id"]
        if e["link"] == "subagent":
            depth[e["session_id"]] = depth.get(parent, 0) + 1
        elif e["link"] == "compaction" and parent in depth:
            depth[e["session_id"]] = depth[parent]
        if depth.get(e["session_id"], 0) >= 2:  # the grandchildren's body spawns nothing
            continue
        last = e["turns"] - 1
        summarizing = e["end_reason"] == EndReason.COMPACTED.reference_name
        requests = e.get("requests") if depth.get(e["session_id"], 0) == 0 else []
        eligible += sum(1 for k in range(1, last) if k + 1 not in requests and not (summarizing and k + 1 == last))
    assert max(depth.values()) == 2
    assert sub["eligible_calls"] == eligible and sub["spawns_elsewhere"] == 0
    assert sub["children"] == sum(1 for e in index if e["link"] == "subagent")
