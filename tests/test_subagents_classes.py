"""Subagents inside session classes: a class's calls spawn its subagent's children, which keep
the class, share what their body inherits from the class's own prefix, and nothing else."""

from __future__ import annotations

import numpy as np
import orjson

from tracedsl import pipeline
from tracedsl.engine import RunRequest
from tracedsl.engine.fast import FastEngine
from tracedsl.ir import GenerationParams, Workload

DEFAULT = GenerationParams().generation_params()
CACHE = {**DEFAULT["cache"], "layer1_tokens": 2048, "layer1_5_tokens": 2048,
         "layer2": {"kind": "uniform", "min": 500.0, "max": 3000.0},
         "layer1_5_groups": {"num_groups": 8, "zipf_alpha": 1.0}}
BASE = {**DEFAULT, "cache": CACHE, "max_prompt_tokens": 40_000,
        "reset": {"base_probability": 0.05, "context_scaling": 1.0},
        "new_tokens_per_turn": {"kind": "constant", "value": 50.0},
        "generation_length": {"kind": "constant", "value": 100.0}}
CHILD = {**BASE, "reset": None, "turns": {"law": {"kind": "constant", "value": 3.0}, "allow_truncation": True},
         "cache": {**CACHE, "layer1_tokens": 1024}}  # its own 2-block system prompt
SUBAGENT = {"probability": 0.5, "fanout": {"kind": "constant", "value": 2.0},
            "returns": {"kind": "constant", "value": 700.0},
            "shares_global": False, "shares_groups": True, "params": CHILD}
# "review" has its own global prefix, so its children's group prefix is review's, not chat's.
CLASSES = {**BASE, "classes": [
    {"name": "chat", "fraction": 0.5, "params": BASE},
    {"name": "review", "fraction": 0.5, "shares_global": False,
     "params": {**BASE, "cache": {**CACHE, "layer1_tokens": 3072}, "subagent": SUBAGENT}},
]}
BLOCK = 512


def _run(tmp_path, data=CLASSES, sessions=300):
    workload = Workload(name="classes-subagents", params=GenerationParams.model_validate(data))
    result = pipeline.run(workload, tmp_path, num_sessions=sessions, seed=6, html=False)
    rows = [orjson.loads(line) for line in (result.run_dir / "dataset.jsonl").read_bytes().splitlines()]
    index = [orjson.loads(line) for line in (result.run_dir / "sessions.jsonl").read_bytes().splitlines()]
    return result, rows, index


def test_a_class_spawns_its_subagents_which_keep_its_class_and_share_what_they_inherit(tmp_path):
    result, rows, index = _run(tmp_path)
    by_id = {row["session_id"]: row for row in index}
    children = [row for row in index if row["link"] == "subagent"]
    assert len(children) > 50
    first_ids = {row["session_id"]: rows[row["first_row"]]["hash_ids"] for row in index}
    chat_l1 = {tuple(first_ids[r["session_id"]][:4]) for r in index if r["class"] == "chat"}
    review_l1 = {tuple(first_ids[r["session_id"]][:6]) for r in index if r["class"] == "review" and not r["link"]}
    child_l1 = {tuple(first_ids[r["session_id"]][:2]) for r in children}
    assert len(chat_l1) == len(review_l1) == len(child_l1) == 1  # one region each
    regions = [set(next(iter(s))) for s in (chat_l1, review_l1, child_l1)]
    assert not (regions[0] & regions[1] or regions[0] & regions[2] or regions[1] & regions[2])
    for child in children:
        parent = by_id[child["parent_session_id"]]
        assert child["class"] == parent["class"] == "review"  # chat has no subagent
        assert child["group_id"] == parent["group_id"]
        mine, theirs = first_ids[child["session_id"]], first_ids[parent["session_id"]]
        assert mine[2:6] == theirs[6:10]  # the group's L1.5 blocks, shared; after them nothing is
        assert not set(mine[6:]) & {i for r in index for i in first_ids[r["session_id"]][10:]
                                    if r["session_id"] != child["session_id"]}
    assert result.rows == len(rows)


def test_subagents_in_classes_do_not_depend_on_the_chunking():
    params = GenerationParams.model_validate(CLASSES)

    def flat(chunk_sessions):
        chunks = list(FastEngine(chunk_sessions=chunk_sessions).generate(RunRequest(params, 120, 3)))
        return [np.concatenate([getattr(c, name) for c in chunks])
                for name in ("input_length", "delay_ms", "hash_ids", "group_ids")], \
            [s for c in chunks for s in c.session_ids]

    (a, ids_a), (b, ids_b) = flat(4096), flat(7)
    assert ids_a == ids_b and len(set(ids_a)) == len(ids_a)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def test_a_class_without_a_subagent_spawns_none_even_when_the_top_level_has_one(tmp_path):
    data = {**CLASSES, "subagent": SUBAGENT, "classes": [
        {"name": "chat", "fraction": 1.0, "params": BASE}]}
    _, _, index = _run(tmp_path, data, sessions=50)
    assert not any(row["link"] == "subagent" for row in index)
