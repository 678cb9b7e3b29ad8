"""Requests made of LLM calls in the fast engine (issue #13): which rows open a request, what
those rows draw, and that the structure holds whatever the chunking."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from tracedsl import pipeline
from tracedsl.engine import RunRequest
from tracedsl.engine.fast import FastEngine
from tracedsl.engine.requests import RequestModel
from tracedsl.families import law
from tracedsl.ir import GenerationParams, Workload

BASE = GenerationParams().generation_params()
# Every quantity is told apart by its value: a request's message is 3000 tokens and a tool
# result 50; a human waits 100-200 s and a tool at most 10 s (the delay's max).
STRUCTURED = {
    **BASE,
    "new_tokens_per_turn": {"kind": "constant", "value": 50.0},
    "generation_length": {"kind": "constant", "value": 100.0},
    "inter_turn_delay": {"law": {"kind": "exponential", "mean": 2000.0}, "max": 10000.0},
    "request": {
        "calls": {"kind": "constant", "value": 5.0},
        "message": {"kind": "constant", "value": 3000.0},
        "think": {"kind": "uniform", "min": 100000.0, "max": 200000.0},
    },
}


def _chunks(data: dict, sessions: int = 300, seed: int = 3, chunk_sessions: int = 4096):
    params = GenerationParams.model_validate(data)
    engine = FastEngine(chunk_sessions=chunk_sessions)
    return list(engine.generate(RunRequest(params, sessions, seed)))


def _columns(chunks):
    turn = np.concatenate([c.turn_index for c in chunks])
    new = np.concatenate([c.input_length for c in chunks])
    delay = np.concatenate([c.delay_ms for c in chunks])
    opens = np.concatenate([c.extras["opens_request"] for c in chunks])
    return turn, new, delay, opens


def test_with_constant_calls_every_fifth_call_opens_a_request_and_draws_the_request_laws():
    turn, new, delay, opens = _columns(_chunks(STRUCTURED))
    assert turn.max() >= 10  # sessions last several requests
    np.testing.assert_array_equal(opens, turn % 5 == 0)
    later = turn > 0
    opening, tool = later & opens, later & ~opens
    assert opening.sum() > 100 and tool.sum() > 400
    assert (new[opening] == 3000).all() and (new[tool] == 50).all()
    assert ((delay[opening] >= 100000) & (delay[opening] <= 200000)).all()
    assert (delay[tool] <= 10000).all()
    assert np.isnan(delay[turn == 0]).all()


def test_request_lengths_follow_the_calls_law_rounded():
    # 60 calls a session: its first five requests (at most 30 calls) always end inside it, so
    # their lengths are not biased by where the session stops.
    data = {**STRUCTURED, "reset": None,
            "turns": {"law": {"kind": "constant", "value": 60.0}, "allow_truncation": False},
            "request": {**STRUCTURED["request"], "calls": {"kind": "uniform", "min": 1.0, "max": 6.0}}}
    lengths = []
    for chunk in _chunks(data, sessions=3000):
        opens = chunk.extras["opens_request"]
        for s in range(chunk.num_sessions):
            starts = np.flatnonzero(opens[chunk.row_offsets[s]:chunk.row_offsets[s + 1]])
            lengths += np.diff(starts[:6]).tolist()
    lengths = np.array(lengths)
    assert lengths.size == 3000 * 5
    # round-half-even of uniform(1, 6): 1 and 6 get half the weight of 2..5
    shares = np.bincount(lengths, minlength=7)[1:] / lengths.size
    np.testing.assert_allclose(shares, [0.1, 0.2, 0.2, 0.2, 0.2, 0.1], atol=0.015)
    model = RequestModel.build(GenerationParams.model_validate(data).request, law)
    drawn = model.calls_at(np.arange(1, 100001, dtype=np.uint64), np.zeros(1, dtype=np.uint64))
    np.testing.assert_allclose(np.bincount(drawn, minlength=7)[1:] / drawn.size, shares, atol=0.015)


def test_requests_do_not_depend_on_the_chunking():
    whole = _columns(_chunks(STRUCTURED, sessions=97))
    split = _columns(_chunks(STRUCTURED, sessions=97, chunk_sessions=7))
    for a, b in zip(whole, split, strict=True):
        np.testing.assert_array_equal(a, b)


def test_explicit_turn_mode_counts_calls():
    data = {**STRUCTURED, "reset": None,
            "turns": {"law": {"kind": "constant", "value": 12.0}, "allow_truncation": False}}
    chunks = _chunks(data, sessions=50)
    turns = np.concatenate([c.turns_per_session for c in chunks])
    assert (turns == 12).all()
    _, new, _, opens = _columns(chunks)
    assert opens.sum() == 50 * 3  # calls 0, 5 and 10 of each session open its requests


def test_sessions_jsonl_lists_each_sessions_request_openings(tmp_path):
    workload = Workload(name="requests", params=GenerationParams.model_validate(STRUCTURED))
    result = pipeline.run(workload, tmp_path, num_sessions=40, seed=2, html=False)
    index = [orjson.loads(line) for line in (result.run_dir / "sessions.jsonl").read_bytes().splitlines()]
    assert all(row["requests"] == list(range(0, row["turns"], 5)) for row in index)


def test_without_requests_no_request_column_is_written(tmp_path):
    result = pipeline.run("default", tmp_path, num_sessions=10, seed=2, html=False)
    first = orjson.loads((result.run_dir / "sessions.jsonl").read_bytes().splitlines()[0])
    assert "requests" not in first
    chunk = _chunks(BASE, sessions=10)[0]
    assert "opens_request" not in chunk.extras


def test_subagents_of_session_classes_are_refused(tmp_path):
    subagent = {"probability": 0.1, "fanout": {"kind": "constant", "value": 1.0},
                "returns": {"mean": 2000.0, "median": 1000.0}, "params": BASE}
    classes = [{"name": "agent", "fraction": 1.0, "params": {**BASE, "subagent": subagent}}]
    workload = Workload(name="agent", params=GenerationParams.model_validate({**BASE, "classes": classes}))
    with pytest.raises(pipeline.PipelineError) as raised:
        pipeline.run(workload, tmp_path, num_sessions=5, html=False)
    assert "'subagent' with session classes is not drawn yet" in str(raised.value.diagnostics[0].message)
