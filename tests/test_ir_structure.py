"""The IR of session classes and of agent structure (requests, compaction, subagents): what
each holds, the rules checked across fields, and that specs without them keep their bytes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tracedsl.ir import GenerationParams, aiperf_inexpressible, distribution_slots, params_warnings

BASE = GenerationParams().generation_params()
TRUNCATED = {**BASE, "reset": None,
             "turns": {"law": {"kind": "uniform", "min": 1, "max": 5}, "allow_truncation": True}}
REQUEST = {"calls": {"kind": "lognormal", "mean": 8.8, "median": 2, "max": 300},
           "message": {"mean": 3000, "median": 400}, "think": {"kind": "constant", "value": 0}}


def _errors(data: dict) -> str:
    with pytest.raises(ValidationError) as caught:
        GenerationParams.model_validate(data)
    return str(caught.value)


def _classes(*items: tuple[str, float, dict]) -> dict:
    return {**BASE, "classes": [{"name": n, "fraction": f, **extra, "params": {**BASE, **body}}
                                for n, f, extra, body in items]}


def test_a_spec_without_the_new_fields_keeps_its_generation_params():
    data = GenerationParams().generation_params()
    for name in ("classes", "request", "compaction", "subagent"):
        assert name not in data


def test_classes_round_trip_and_list_their_bodies():
    params = GenerationParams.model_validate(
        _classes(("coding", 0.7, {}, {}), ("chat", 0.3, {}, {"max_prompt_tokens": 64000})))
    assert [(name, fraction, body.max_prompt_tokens) for name, fraction, body in params.bodies()] == [
        ("coding", 0.7, 200000), ("chat", 0.3, 64000)]
    assert GenerationParams.model_validate(params.generation_params()) == params
    assert GenerationParams().bodies()[0][:2] == (None, 1.0)


def test_class_rules_are_each_named():
    message = _errors(_classes(("a", 0.6, {}, {}), ("a", 0.3, {}, {"block_size": 64})))
    assert "class 'a' is defined twice" in message
    assert "block_size is one for the whole trace" in message
    assert "add up to 90%, not 100%" in message
    shared = _errors(_classes(("a", 1.0, {}, {"cache": {**BASE["cache"], "layer1_tokens": 1000}})))
    assert "shares the top-level global prefix" in shared
    own = _classes(("a", 1.0, {"shares_global": False}, {"cache": {**BASE["cache"], "layer1_tokens": 1000}}))
    assert GenerationParams.model_validate(own).classes[0].params.cache.layer1_tokens == 1000


def test_a_class_body_is_checked_as_a_workload():
    message = _errors(_classes(("a", 1.0, {}, {"max_prompt_tokens": 1000})))
    assert "shared prefix does not fit the context" in message


def test_warnings_of_a_workload_with_classes_are_the_class_bodies():
    constant = {"generation_length": {"mean": 300.0, "median": 300.0}}
    params = GenerationParams.model_validate(_classes(("a", 0.5, {}, constant), ("b", 0.5, {}, {})))
    paths = [path for issue in params_warnings(params) for path in issue.paths]
    assert paths and all(path.startswith("classes.0.params.generation_length") for path in paths)


def _agent(**fields) -> dict:
    return {**BASE, **fields}


def test_agent_structure_round_trips_and_lists_its_slots():
    subagent = {"probability": 0.02, "fanout": {"kind": "uniform", "min": 1, "max": 4},
                "returns": {"mean": 2000, "median": 1000}, "shares_global": False,
                "params": {**TRUNCATED, "cache": {**BASE["cache"], "layer1_tokens": 12000}}}
    params = GenerationParams.model_validate(_agent(
        request=REQUEST, subagent=subagent,
        compaction={"threshold": 0.83, "summary": {"mean": 30000, "median": 25000, "max": 60000}}))
    assert GenerationParams.model_validate(params.generation_params()) == params
    slots = [path for path, _, _ in distribution_slots(params)]
    assert slots[-6:] == ["request.calls", "request.message", "request.think", "compaction.summary",
                          "subagent.fanout", "subagent.returns"]
    refused = [issue.paths[0] for issue in aiperf_inexpressible(params)]
    assert refused == ["request", "compaction", "subagent"]  # once each, not per distribution


def test_request_calls_are_whole_and_at_least_one():
    bad = {**REQUEST, "calls": {"kind": "uniform", "min": 0.5, "max": 3}}
    assert "min (0.5) must be a whole number of calls" in _errors(_agent(request=bad))


def test_a_compaction_must_leave_room_below_its_threshold():
    message = _errors(_agent(compaction={"threshold": 0.2, "summary": {
        "mean": 30000, "median": 25000, "min": 20000}}))
    assert "not below the compaction threshold (40000 tokens: 20% of 200000)" in message


def test_subagents_share_only_what_matches_and_nest_boundedly():
    body = {**TRUNCATED, "cache": {**BASE["cache"], "layer1_tokens": 12000}}
    shared = {"probability": 0.1, "fanout": {"kind": "constant", "value": 2},
              "returns": {"mean": 2000, "median": 1000}, "params": body}
    assert "shares its parent's global prefix but gives it another size" in _errors(_agent(subagent=shared))
    nested: dict = {**TRUNCATED}
    for _ in range(4):
        nested = {**TRUNCATED, "subagent": {**shared, "params": nested}}
    assert "subagents nest 4 deep" in _errors(_agent(subagent={**shared, "params": nested}))


def test_the_fast_engine_refuses_agent_structure_it_does_not_draw_yet(tmp_path):
    import json
    import subprocess
    import sys

    # subagents are drawn for the top-level body; a class body's are not yet
    subagent = {"probability": 0.1, "fanout": {"kind": "constant", "value": 1},
                "returns": {"mean": 2000, "median": 1000}, "params": BASE}
    spec = tmp_path / "agent.json"
    spec.write_text(json.dumps({"format_version": 1, "workload": "agent",
                                "generation_params": _classes(("agent", 1.0, {}, {"subagent": subagent}))}))
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "tracedsl", "run", str(spec), "-n", "5", "-o", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 5, done.stderr
    assert "subagent: error[E501]" in done.stderr and "'subagent' with session classes is not drawn yet" in done.stderr
    assert "Traceback" not in done.stderr and not any(out.rglob("*"))  # nothing written
