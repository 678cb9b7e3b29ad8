"""The agent structure in the language: request { }, compact at … to …, subagent P% fanout … { } lower
to the IR field by field, their errors are located, subagent bodies inherit like class bodies, and
fmt/decompile/--set/spec.json/TOML keep them."""

from __future__ import annotations

import json

import orjson
import pytest
from click.testing import CliRunner

from tests.conftest import ROOT
from tracedsl.cli import cli
from tracedsl.diagnostics import DiagnosticError
from tracedsl.io import dump_spec_json, dump_spec_toml, spec_document
from tracedsl.language.decompile import decompile
from tracedsl.language.format import format_text
from tracedsl.language.lower import compile_text
from tracedsl.loading import apply_overrides, load_spec

TOP = """\
context 200k
prefix {
  global 10k
  groups 10 of 5k
  session lognormal(mean=4k, median=2k)
}
turn {
  new_tokens lognormal(mean=2k, median=1k)
  output lognormal(mean=500, median=300)
  delay lognormal(mean=3s, median=200ms)
}
reset 2% scaling 1.5
"""
REQUEST = """\
request {
  calls lognormal(mean=8.8, median=2, max=300)
  message lognormal(mean=3k, median=400, max=80k)
  think mix { 60%: lognormal(mean=10min, median=80s, max=14h), 40%: constant(0ms) }
}
"""
COMPACT = "compact at 83% to lognormal(mean=30k, median=25k, max=60k) max 3 instruction 300\n"
SUBAGENT = """\
subagent 2% fanout uniform(min=1, max=4) {
  prefix { global 12k }
  turns lognormal(mean=15, median=10, min=1, max=80) truncate
  returns lognormal(mean=2k, median=1k, max=20k)
}
"""
ALL = TOP + REQUEST + COMPACT + SUBAGENT


def params(text: str):
    return compile_text(text)[0].params


def errors(text: str, file: str = "<input>"):
    with pytest.raises(DiagnosticError) as caught:
        compile_text(text, file)
    return caught.value.diagnostics


def at(diagnostic) -> tuple[str, int, int]:
    return diagnostic.code, diagnostic.span.line, diagnostic.span.column


# The IR each construct lowers to ------------------------------------------------------------


def test_request_lowers_to_its_three_laws_in_the_slot_units():
    request = params(TOP + REQUEST).request
    assert (request.calls.kind, request.calls.mean, request.calls.median, request.calls.max) == (
        "lognormal", 8.8, 2.0, 300.0)
    assert (request.message.mean, request.message.median, request.message.max) == (3000.0, 400.0, 80_000.0)
    think = request.think
    assert think.kind == "mix"
    (weight_a, slow), (weight_b, zero) = [(c.weight, c.law) for c in think.components]
    assert (weight_a, weight_b) == (0.6, 0.4)
    assert (slow.mean, slow.median, slow.max) == (600_000.0, 80_000.0, 14 * 3_600_000.0)  # ms; h is a time unit
    assert (zero.kind, zero.value) == ("constant", 0.0)


def test_compact_lowers_to_threshold_summary_instruction_and_max():
    compaction = params(TOP + COMPACT).compaction
    assert compaction.threshold == 0.83
    assert (compaction.summary.mean, compaction.summary.median, compaction.summary.max) == (30_000.0, 25_000.0, 60_000.0)
    assert (compaction.instruction_tokens, compaction.max_compactions) == (300, 3)
    plain = params(TOP + "compact at 90% to constant(2k)\n").compaction
    assert (plain.threshold, plain.summary.value, plain.instruction_tokens, plain.max_compactions) == (0.9, 2000.0, 200, None)


def test_subagent_lowers_to_probability_fanout_returns_shares_and_its_whole_body():
    top = params(TOP + SUBAGENT)
    subagent = top.subagent
    assert (subagent.probability, subagent.fanout.kind, subagent.fanout.min, subagent.fanout.max) == (
        0.02, "uniform", 1.0, 4.0)
    assert (subagent.returns.mean, subagent.returns.median, subagent.returns.max) == (2000.0, 1000.0, 20_000.0)
    assert (subagent.shares_global, subagent.shares_groups) == (False, True)
    body = subagent.params
    assert body.cache.layer1_tokens == 12_000
    assert (body.turns.mean, body.turns.max, body.turns.allow_truncation) == (15, 80, True)
    assert body.reset is None  # its turns switch the inherited reset off, as a class's do
    # everything else is the top level's
    for field in ("max_prompt_tokens", "block_size", "new_tokens_per_turn", "generation_length",
                  "inter_turn_delay", "latency"):
        assert getattr(body, field) == getattr(top, field), field
    assert (body.cache.layer1_5_tokens, body.cache.layer1_5_groups, body.cache.layer2) == (
        top.cache.layer1_5_tokens, top.cache.layer1_5_groups, top.cache.layer2)


def test_a_subagent_body_inherits_request_and_compaction_but_not_the_subagent():
    top = params(ALL)
    body = top.subagent.params
    assert body.request == top.request and body.compaction == top.compaction
    assert body.subagent is None  # a subagent spawns subagents only when its own body says so


def test_a_subagent_body_is_what_writing_it_out_at_the_top_level_gives():
    written = TOP.replace("  global 10k\n", "  global 12k\n").replace("reset 2% scaling 1.5\n", "") + REQUEST + COMPACT + (
        "turns lognormal(mean=15, median=10, min=1, max=80) truncate\n")
    assert params(ALL).subagent.params == params(written)


def test_none_gives_a_body_no_request_compaction_or_subagent_where_it_would_inherit_one():
    text = ALL.replace("  returns", "  request none\n  compact none\n  returns") + "class a 50% { subagent none }\nclass b 50% {}\n"
    spec = params(text)
    assert spec.subagent.params.request is None and spec.subagent.params.compaction is None
    assert spec.classes[0].params.subagent is None
    assert spec.classes[1].params.subagent is not None and spec.classes[1].params.request == spec.request


def test_a_subagent_in_a_class_inherits_the_class_body():
    text = TOP + SUBAGENT + "class long 60% {\n  turn { output lognormal(mean=2k, median=1k) }\n}\nclass plain 40% {}\n"
    spec = params(text)
    long, plain = (c.params for c in spec.classes)
    assert long.subagent.params.generation_length.mean == 2000.0  # the class's, not the top level's
    assert plain.subagent.params.generation_length.mean == 500.0
    own = params(TOP + "class c 100% {\n  turn { output constant(700) }\n" + SUBAGENT + "}\n").classes[0].params
    assert own.subagent.params.generation_length.value == 700.0 and own.subagent.returns.mean == 2000.0


def test_a_class_request_block_merges_item_by_item():
    spec = params(TOP + REQUEST + "class chat 100% { request { think constant(5s) } }\n")
    request = spec.classes[0].params.request
    assert request.think.value == 5000.0 and request.calls == spec.request.calls and request.message == spec.request.message


def test_nested_subagents_inherit_returns_from_the_enclosing_subagent():
    text = TOP + (
        "subagent 2% fanout constant(1) {\n  returns constant(1k)\n"
        "  subagent 10% fanout constant(2) { turn { output constant(50) } }\n}\n")
    spec = params(text)
    child = spec.subagent.params.subagent
    assert (child.probability, child.fanout.value, child.returns.value) == (0.1, 2.0, 1000.0)
    assert child.params.generation_length.value == 50.0 and child.params.subagent is None


def test_lets_work_in_the_agent_slots():
    text = TOP + "let out = constant(1k)\nlet share = 83%\n" + (
        "compact at share to out max 2\nsubagent 5% fanout constant(2) { returns out }\n")
    spec = params(text)
    assert (spec.compaction.threshold, spec.compaction.summary.value, spec.subagent.returns.value) == (0.83, 1000.0, 1000.0)


def test_every_family_works_in_each_slot():
    text = TOP + """\
request {
  calls empirical { 1: 50%, 4: 50% }
  message gamma(shape=2, scale=500)
  think pareto(alpha=1.5, min=10s, max=1h)
}
compact at 80% to uniform(min=10k, max=20k) max 2
subagent 3% fanout exponential(mean=2, min=1, max=5) { returns weibull(shape=1.5, scale=1k) }
"""
    spec = params(text)
    assert spec.request.calls.kind == "empirical" and spec.request.think.min == 10_000.0
    assert spec.compaction.summary.kind == "uniform" and spec.subagent.fanout.kind == "exponential"
    assert spec.subagent.returns.kind == "weibull"


# Errors, located ------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected", "words"), [
    ("compact at 0% to constant(1k) max 2\n", ("E106", 1, 12), "compact at 0%"),
    ("compact at 120% to constant(1k) max 2\n", ("E106", 1, 12), "compact at 120%"),
    ("request {\n  calls constant(0)\n  message constant(1k)\n  think constant(1s)\n}\n", ("E106", 2, 9),
     "calls draws 0, below 1"),
    ("request {\n  calls lognormal(mean=3, median=2, min=0.5)\n  message constant(1k)\n  think constant(1s)\n}\n",
     ("E106", 2, 41), "min (0.5)"),
    ("subagent 2% fanout empirical { 0: 50%, 2: 50% } { returns constant(1k) }\n", ("E106", 1, 20),
     "fanout draws 0"),
    ("returns constant(1k)\n", ("E121", 1, 1), "only valid inside a subagent"),
    ("subagent 2% fanout constant(1) {\n  turns uniform(min=2, max=8)\n}\n", ("E121", 1, 1), "needs 'returns'"),
    ("subagent 2% fanout constant(1) {\n  returns constant(1k)\n  block 256\n}\n", ("E120", 3, 3),
     "cannot give 'block'"),
    ("subagent 2% fanout constant(1) {\n  returns constant(1k)\n  arrivals poisson(rate=1/s)\n}\n",
     ("E120", 3, 3), "cannot give 'arrivals'"),
    ("request {\n  calls constant(2)\n  message constant(1k)\n  think constant(5)\n}\n", ("E104", 4, 18),
     "is not a time"),
    ("request {\n  calls constant(2)\n  message constant(2s)\n  think constant(5s)\n}\n", ("E104", 3, 20),
     "is not a token count"),
    ("compact at 80% to constant(1k) max 1.5\n", ("E105", 1, 36), "whole number"),
])
def test_each_error_is_located_and_named_by_its_construct(text, expected, words):
    found = errors(TOP + text)
    top_lines = TOP.count("\n")
    code, line, column = expected
    first = found[0]
    assert at(first) == (code, line + top_lines, column), [str(d.message) for d in found]
    assert words in first.message


def test_a_missing_request_item_is_at_the_request_block():
    (missing,) = errors(TOP + "request {\n  calls constant(2)\n  think constant(1s)\n}\n")
    assert at(missing) == ("E106", 13, 1) and "request.message" in missing.message


def test_a_threshold_the_summary_cannot_fit_under_is_at_the_compact_statement():
    text = TOP.replace("context 200k", "context 100k") + "compact at 50% to uniform(min=45k, max=60k) max 2\n"
    (problem,) = errors(text)
    assert at(problem) == ("E106", 13, 12)  # the threshold, with the summary and the context as related places
    assert "compaction continuation starts at L1 + L1.5 + the summary" in problem.message
    assert [(r.span.line, r.span.column) for r in problem.related] == [(13, 19), (1, 9)]


def test_subagents_nested_too_deep_are_an_error_at_the_level_too_deep():
    nested = "subagent 2% fanout constant(1) {\n" * 4 + "}\n" * 4
    text = TOP + nested.replace("{\n", "{\n  returns constant(1k)\n", 1)
    (problem,) = errors(text)
    assert problem.code == "E106" and "nests 4 deep" in problem.message
    assert problem.span.line == 14 + 3  # the fourth subagent (line 14 is the first one's returns)


def test_a_repeated_item_is_e101_at_both():
    (twice,) = errors(TOP + "compact at 80% to constant(1k) max 2 max 3\n")
    assert at(twice) == ("E101", 13, 38) and twice.related[0].span.column == 32


def test_a_component_may_still_be_named_think():
    spec = params(TOP.replace("  delay lognormal(mean=3s, median=200ms)\n",
                              "  delay mix {\n    tool 80%: constant(1s)\n    think 20%: constant(5s)\n  }\n"))
    assert [c.name for c in spec.inter_turn_delay.law.components] == ["tool", "think"]


# W105 and the aiperf engine --------------------------------------------------------------------


def test_w105_is_located_at_each_construct_once():
    _, warnings = compile_text(ALL)
    agent = [(w.span.line, w.message.split(":")[0]) for w in warnings if w.code == "W105"
             and w.message.split(":")[0] in ("request", "compact", "subagent")]
    assert agent == [(13, "request"), (18, "compact"), (19, "subagent")]


def test_run_with_the_aiperf_engine_refuses_with_a_located_e501(tmp_path):
    spec = tmp_path / "agent.trace"
    mixture = "  delay mix {\n    agentic 70%: lognormal(mean=3s, median=2s)\n    human 30%: lognormal(mean=40s, median=25s)\n  }\n"
    spec.write_text(TOP.replace("  delay lognormal(mean=3s, median=200ms)\n", mixture) + COMPACT)
    result = CliRunner().invoke(cli, ["run", str(spec), "--engine", "aiperf", "-n", "5", "-o", str(tmp_path / "out")])
    assert result.exit_code == 5
    assert f"{spec}:16:1: error[E501]: the aiperf engine cannot run this spec: compact" in result.output


# fmt, decompile, spec.json, TOML ---------------------------------------------------------------


def test_fmt_prints_the_constructs_in_canonical_order():
    scrambled = SUBAGENT + COMPACT + REQUEST.replace("  calls", "  think constant(1s)\n  calls").replace(
        "  think mix { 60%: lognormal(mean=10min, median=80s, max=14h), 40%: constant(0ms) }\n", "") + TOP
    printed = format_text(scrambled)
    keywords = [line.split()[0] for line in printed.splitlines() if line and not line.startswith(" ")]
    assert keywords == ["context", "prefix", "}", "turn", "}", "request", "}", "reset", "compact", "subagent", "}"]
    assert "  calls lognormal" in printed.split("request {")[1].split("\n")[1]
    assert format_text(printed) == printed
    assert params(printed) == params(scrambled)


@pytest.mark.parametrize("text", [
    ALL,
    TOP + SUBAGENT + "class long 60% {\n  turn { output lognormal(mean=2k, median=1k) }\n}\nclass plain 40% {}\n",
    ALL.replace("  returns", "  request none\n  compact none\n  returns") + "class a 50% { subagent none }\nclass b 50% {}\n",
    TOP + "subagent 2% fanout constant(1) {\n  returns constant(1k)\n  subagent 10% fanout constant(2) {}\n}\n",
])
def test_decompile_compiles_back_to_the_same_spec(text):
    workload = compile_text(text, "agent.trace")[0]
    printed = decompile(workload)
    assert compile_text(printed, "agent.trace")[0] == workload
    assert format_text(printed) == printed


def test_decompile_writes_only_what_a_subagent_body_does_not_inherit():
    printed = decompile(compile_text(ALL, "agent.trace")[0])
    body = printed.split("subagent 2% fanout uniform(min=1, max=4) {\n")[1]
    assert body == ("  prefix {\n    global 12k\n  }\n"
                    "  turns lognormal(mean=15, median=10, min=1, max=80) truncate\n"
                    "  returns lognormal(mean=2k, median=1k, max=20k)\n}\n")
    assert "compact at 83% to lognormal(mean=30k, median=25k, max=60k) max 3 instruction 300\n" in printed


@pytest.mark.parametrize("name", ["requests", "compaction", "subagents", "coding-agent"])
def test_the_examples_load_back_from_spec_json_and_toml(name, tmp_path):
    workload = load_spec(ROOT / "examples" / f"{name}.trace")
    document = spec_document(workload, None, None)
    (tmp_path / "spec.json").write_text(dump_spec_json(document))
    (tmp_path / "spec.toml").write_text(dump_spec_toml(document))
    assert load_spec(tmp_path / "spec.json").params == workload.params
    assert load_spec(tmp_path / "spec.toml").params == workload.params
    assert compile_text(decompile(workload), f"{name}.trace")[0].params == workload.params


def test_a_spec_json_problem_in_a_subagent_is_named_by_its_path(tmp_path):
    document = spec_document(compile_text(ALL)[0], None, None)
    document["generation_params"]["subagent"]["params"]["block_size"] = 256
    (tmp_path / "spec.json").write_text(json.dumps(document))
    with pytest.raises(DiagnosticError) as caught:
        load_spec(tmp_path / "spec.json")
    assert any("subagent.params.block_size" in (d.path or "") for d in caught.value.diagnostics)


# --set paths -----------------------------------------------------------------------------------


def test_set_paths_of_the_agent_structure_take_the_language_units():
    spec = params(ALL + "class a 50% { request { think constant(1s) } }\nclass b 50% {}\n")
    changed = apply_overrides(spec, [
        "request.calls.mean=4", "compact.at=90%", "compact.max=5", "compact.instruction=1k",
        "compact.to.max=50k", "subagent=5%", "subagent.fanout.max=6", "subagent.turns.max=40",
        "subagent.returns.mean=3k", "subagent.turn.output.mean=1k", "class.a.request.think.value=2s",
    ])
    assert changed.request.calls.mean == 4.0 and changed.request.calls.median == 2.0
    compaction = changed.compaction
    assert (compaction.threshold, compaction.max_compactions, compaction.instruction_tokens, compaction.summary.max) == (
        0.9, 5, 1000, 50_000.0)
    subagent = changed.subagent
    assert (subagent.probability, subagent.fanout.max, subagent.params.turns.max, subagent.returns.mean) == (
        0.05, 6.0, 40, 3000.0)
    assert subagent.params.generation_length.mean == 1000.0
    assert changed.classes[0].params.request.think.value == 2000.0


@pytest.mark.parametrize(("override", "message"), [
    ("request.message.mean=5s", "is not a token count"),
    ("compact.at=1k", "is not a probability"),
    ("subagent.fanout.mean=2", "takes min, max"),
    ("subagent.block=256", "not a subagent body's"),
])
def test_a_bad_agent_path_is_e211(override, message):
    with pytest.raises(DiagnosticError) as caught:
        apply_overrides(params(ALL), [override])
    (problem,) = caught.value.diagnostics
    assert problem.code == "E211" and message in problem.message


def test_a_subagent_path_on_a_spec_without_one_says_so():
    with pytest.raises(DiagnosticError) as caught:
        apply_overrides(params(TOP), ["subagent.turns.max=4"])
    assert "no subagent" in caught.value.diagnostics[0].message


# The examples run end to end ---------------------------------------------------------------------


def _run(tmp_path, name: str):
    out = tmp_path / name
    result = CliRunner().invoke(cli, ["run", str(ROOT / "examples" / f"{name}.trace"), "-n", "30", "--seed", "3",
                                      "-o", str(out), "-q", "--no-reports"])
    assert result.exit_code == 0, result.output
    (run_dir,) = out.iterdir()
    index = [orjson.loads(line) for line in (run_dir / "sessions.jsonl").read_bytes().splitlines()]
    rows = [orjson.loads(line) for line in (run_dir / "dataset.jsonl").read_bytes().splitlines()]
    return index, rows


def test_requests_trace_runs_with_requests_of_calls_in_sessions_jsonl(tmp_path):
    index, rows = _run(tmp_path, "requests")
    assert len(rows) == sum(row["turns"] for row in index)
    assert all(row["requests"][0] == 0 for row in index)  # turn 0 opens the first request
    assert all(row["requests"] == sorted(set(row["requests"])) and row["requests"][-1] < row["turns"] for row in index)
    calls = [row["turns"] / len(row["requests"]) for row in index]
    assert any(len(row["requests"]) > 1 for row in index) and max(calls) > 1  # requests of several calls


def test_compaction_trace_runs_with_linked_continuations_in_sessions_jsonl(tmp_path):
    index, rows = _run(tmp_path, "compaction")
    by_id = {row["session_id"]: row for row in index}
    continuations = [row for row in index if row["link"] == "compaction"]
    assert continuations
    for row in continuations:
        parent = by_id[row["parent_session_id"]]
        assert parent["end_reason"] == "compacted" and row["logical_session_id"] == parent["logical_session_id"]
    chains: dict[str, int] = {}
    for row in continuations:
        chains[row["logical_session_id"]] = chains.get(row["logical_session_id"], 0) + 1
    assert max(chains.values()) <= 4  # compact … max 4
    threshold = 0.83 * 128_000
    assert all(row["input_length"] < threshold + 300 + 40_000 for row in rows)  # no call passes it by more than a summary call's


def test_a_top_level_set_reaches_the_subagent_body_that_inherits_it():
    spec = params(ALL.replace("  returns", "  turn { delay constant(1s) }\n  returns"))
    changed = apply_overrides(spec, ["turn.output.mean=2k", "turn.delay.median=300ms", "block=256",
                                     "latency.prefill_tokens_per_s=10000"])
    body = changed.subagent.params
    assert body.generation_length.mean == 2000.0  # inherited, so set too
    assert body.inter_turn_delay.law.value == 1000.0  # its own, kept
    assert (body.block_size, body.latency.prefill_tokens_per_s) == (256, 10000.0)  # one for the whole trace
    inner = params(TOP + "subagent 2% fanout constant(1) {\n  returns constant(1k)\n"
                   "  subagent 10% fanout constant(2) {}\n}\n"
                   "class a 100% {}\n")
    deep = apply_overrides(inner, ["turn.output.mean=2k"]).classes[0].params.subagent.params.subagent.params
    assert deep.generation_length.mean == 2000.0
    by_class = apply_overrides(inner, ["class.a.turn.output.mean=3k"]).classes[0].params.subagent.params
    assert by_class.generation_length.mean == 3000.0 and by_class.subagent.params.generation_length.mean == 3000.0
