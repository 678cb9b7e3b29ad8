"""Session classes in the language: each class's body is the top level overridden by its own, problems name the class where it caused them, and fmt/decompile/--set/spec.json keep them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import ROOT
from tracedsl import families
from tracedsl.diagnostics import DiagnosticError
from tracedsl.feasibility import turn_zero_share
from tracedsl.io import dump_spec_json, dump_spec_toml, spec_document
from tracedsl.ir import Lognormal, Workload, _token_laws
from tracedsl.language.decompile import decompile
from tracedsl.language.format import format_text
from tracedsl.language.lower import compile_text
from tracedsl.loading import apply_overrides, load_spec

TOP = """\
context 100k
prefix {
  global 10k
  groups 10 of 5k
  session lognormal(mean=4k, median=2k)
}
turn {
  new_tokens lognormal(mean=2k, median=1k)
  output lognormal(mean=500, median=300)
  delay lognormal(mean=3s, median=2s)
}
reset 2% scaling 1.5
"""
CLASSES = TOP + """\
class coding 70% {
  prefix { session lognormal(mean=8k, median=5k) }
  reset 1%
}
class chat 20% {
  turn { output lognormal(mean=300, median=200) }
  turns uniform(min=2, max=8) truncate
}
class review 10% {
  context 150k
  prefix { groups 40 of 8k zipf 0.7 }
}
"""


def compiled(text: str, file: str = "<input>"):
    return compile_text(text, file)


def params(text: str):
    return compiled(text)[0].params


def errors(text: str, file: str = "<input>"):
    with pytest.raises(DiagnosticError) as caught:
        compile_text(text, file)
    return caught.value.diagnostics


def at(diag) -> tuple[int, int]:
    return diag.span.line, diag.span.column


def body(text: str, name: str):
    return next(c for c in params(text).classes if c.name == name)


# The merged bodies -------------------------------------------------------------------------


def test_each_class_body_is_the_top_level_overridden_by_its_own_field_by_field():
    top = params(TOP)
    spec = params(CLASSES)
    assert spec.model_copy(update={"classes": None}) == top  # the top level is the defaults as written
    coding, chat, review = spec.classes
    assert [(c.name, c.fraction) for c in spec.classes] == [("coding", 0.7), ("chat", 0.2), ("review", 0.1)]
    # coding: its own L2 and reset; everything else the top level's
    assert coding.params.cache.layer2 == Lognormal(mean=8000.0, median=5000.0)
    assert coding.params.reset.base_probability == 0.01
    assert coding.params.reset.context_scaling == 2.0  # `reset 1%` is a whole statement: its default scaling
    assert coding.params.cache.layer1_tokens == top.cache.layer1_tokens == 10_000
    assert coding.params.cache.layer1_5_groups == top.cache.layer1_5_groups
    assert coding.params.new_tokens_per_turn == top.new_tokens_per_turn
    assert coding.params.generation_length == top.generation_length
    assert coding.params.inter_turn_delay == top.inter_turn_delay
    assert (coding.shares_global, coding.shares_groups) == (True, True)
    # chat: `turn { output }` replaces the output only; its turns switch the inherited reset off
    assert chat.params.generation_length == Lognormal(mean=300.0, median=200.0)
    assert chat.params.new_tokens_per_turn == top.new_tokens_per_turn
    assert chat.params.inter_turn_delay == top.inter_turn_delay
    assert chat.params.cache == top.cache
    assert chat.params.reset is None
    assert chat.params.turns.law.kind == "uniform" and chat.params.turns.allow_truncation
    # review: its own groups (so its own blocks), the shared global, its own context
    assert (review.shares_global, review.shares_groups) == (True, False)
    assert review.params.cache.layer1_5_tokens == 8000
    assert review.params.cache.layer1_5_groups.num_groups == 40
    assert review.params.cache.layer1_5_groups.zipf_alpha == 0.7
    assert review.params.cache.layer2 == top.cache.layer2
    assert review.params.max_prompt_tokens == 150_000
    assert review.params.reset == top.reset
    # what is one for the trace is every class's
    assert all(c.params.block_size == top.block_size and c.params.latency == top.latency
               and c.params.arrivals is None for c in spec.classes)


def test_a_class_body_is_what_writing_it_out_at_the_top_level_gives():
    written_out = TOP.replace("session lognormal(mean=4k, median=2k)", "session lognormal(mean=8k, median=5k)") \
        .replace("reset 2% scaling 1.5", "reset 1%")
    assert body(CLASSES, "coding").params == params(written_out)


def test_a_class_that_writes_global_gets_blocks_of_its_own_even_of_the_same_size():
    spec = params(TOP + "class a 50% { prefix { global 10k } }\nclass b 50% { }\n")
    assert [(c.shares_global, c.shares_groups) for c in spec.classes] == [(False, True), (True, True)]
    assert spec.classes[0].params == spec.classes[1].params


def test_a_class_reset_switches_the_inherited_turns_off():
    top = "turns lognormal(mean=6, median=5, min=2, max=20) truncate\n"
    spec = params(top + "class r 50% { reset 3% }\nclass t 50% { }\n")
    reset_class, turns_class = spec.classes
    assert reset_class.params.turns is None and reset_class.params.reset.base_probability == 0.03
    assert turns_class.params.turns == spec.turns and turns_class.params.reset is None


def test_lets_and_includes_work_around_classes(tmp_path):
    base = tmp_path / "base.trace"
    base.write_text("context 120k\nclass chat 30% { turn { output lognormal(mean=300, median=200) } }\n"
                    "class coding 70% { }\n")
    spec = tmp_path / "spec.trace"
    spec.write_text('include "base.trace"\nlet small = 4k\n'
                    "class chat 30% { prefix { session lognormal(mean=small, median=2k) } }\n")
    loaded = load_spec(spec).params
    chat = loaded.classes[0]
    # the including file's class merges with the included one of its name, item by item
    assert [c.name for c in loaded.classes] == ["chat", "coding"]
    assert chat.params.generation_length == Lognormal(mean=300.0, median=200.0)
    assert chat.params.cache.layer2 == Lognormal(mean=4000.0, median=2000.0)
    assert chat.params.max_prompt_tokens == 120_000


# Located errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(("statement", "word"), [
    ("block 1k", "block"),
    ("arrivals poisson(rate=2/s)", "arrivals"),
    ("latency { prefill 10k/s }", "latency"),
    ('workload "x"', "workload"),
    ('include "other.trace"', "include"),
    ("let x = 1k", "let"),
    ("class inner 100% { }", "class"),
])
def test_a_class_cannot_give_a_trace_wide_or_top_level_only_statement(statement, word):
    (diag,) = errors(f"context 100k\nclass chat 100% {{\n  reset 1%\n  {statement}\n}}\n")
    assert diag.code == "E118"
    assert f"cannot give '{word}'" in diag.message
    assert at(diag) == (4, 3)


def test_a_class_may_use_a_let_name():
    assert body("let out = lognormal(mean=900, median=300)\nclass a 100% { turn { output out } }\n",
                "a").params.generation_length == Lognormal(mean=900.0, median=300.0)


def test_a_class_defined_twice_points_at_both_names():
    (diag,) = errors("class chat 50% { }\nclass chat 50% { reset 1% }\n")
    assert diag.code == "E101" and "class 'chat' is defined twice" in diag.message
    assert at(diag) == (2, 7)
    assert [at(r) for r in diag.related] == [(1, 7)]


def test_fractions_that_do_not_add_up_point_at_every_fraction_and_say_the_sum():
    (diag,) = errors("class a 60% { }\nclass b 30% { }\nclass c 0.05 { }\n")
    assert diag.code == "E119"
    assert "add up to 95% (60% + 30% + 0.05), not 100%" in diag.message
    assert [at(diag), *(at(r) for r in diag.related)] == [(1, 9), (2, 9), (3, 9)]


def test_fractions_are_added_exactly():
    spec = params("class a 33.3% { }\nclass b 33.3% { }\nclass c 33.4% { }\n")
    assert [c.fraction for c in spec.classes] == [0.333, 0.333, 0.334]


def test_a_class_whose_own_context_cannot_hold_the_shared_prefix_is_an_error_at_it():
    (diag,) = errors(TOP + "class small 50% {\n  context 14k\n}\nclass ok 50% { }\n")
    assert diag.code == "E106"
    assert diag.message.startswith("class 'small': the shared prefix does not fit the context")
    assert at(diag) == (14, 11)
    assert diag.path == "classes.0.params.max_prompt_tokens"


def test_an_inherited_statement_that_does_not_fit_a_class_is_an_error_at_it_naming_the_class():
    text = "context 30k\nprefix { global 16k groups 1 of 0 }\n" \
           "class big 50% {\n  prefix { session lognormal(mean=8k, median=5k, min=20k) }\n}\nclass ok 50% { }\n"
    (diag,) = errors(text)
    assert diag.message.startswith("class 'big': the shared prefix does not fit")
    assert at(diag) == (4, 20)  # the class's own session: the cause, though the IR names the context first
    assert (1, 9) in [at(r) for r in diag.related]  # and the inherited context
    text = "context 30k\nprefix { global 16k groups 1 of 0 }\nturns lognormal(mean=6, median=5, min=5, max=9)\n" \
           "class a 50% { turn { new_tokens lognormal(mean=4k, median=3k, min=3k) } }\n" \
           "class b 50% { turn { new_tokens lognormal(mean=4k, median=3k, min=3k) } }\n"
    found = errors(text)
    assert {d.code for d in found} == {"E106"}
    assert all("turns.min (5) almost never fits" in d.message for d in found)
    assert [d.message.split(":")[0] for d in found] == ["class 'a'", "class 'b'"]  # each its own new tokens
    assert [at(d) for d in found] == [(4, 33), (5, 33)]


def test_a_problem_the_classes_inherit_is_said_once_at_the_top_level_statement_with_a_note_at_each_class():
    text = "context 40k\nprefix { global 16k groups 1 of 0 }\nturns lognormal(mean=6, median=5, min=5, max=9)\n" \
           "class a 50% { turn { output lognormal(mean=400, median=300) } }\n" \
           "class b 50% { turn { output lognormal(mean=500, median=300) } }\n" \
           "turn { new_tokens lognormal(mean=9k, median=8k, min=7k) }\n"
    (diag,) = errors(text)
    assert diag.message.startswith("classes 'a' and 'b' (inherited from the top level): turns.min (5) cannot fit")
    assert at(diag) == (3, 39)
    notes = [(r.message, at(r)) for r in diag.related]
    assert ("(and here)", (1, 9)) in notes
    assert ("(class 'a')", (4, 7)) in notes and ("(class 'b')", (5, 7)) in notes


def test_an_invalid_value_in_a_class_is_located_at_the_class_and_names_it():
    (diag,) = errors("turn { output lognormal(mean=500, median=300) }\n"
                     "class a 100% {\n  turn { output lognormal(mean=100, median=300) }\n}\n")
    assert diag.code == "E106"
    assert diag.message.startswith("class 'a': generation_length: mean (100) must be >= median (300)")
    assert diag.span.line == 3


def test_an_inherited_invalid_combination_names_the_class_and_points_at_both_statements():
    (diag,) = errors("restart 10% at turn [2, 5)\nclass a 100% { turns lognormal(mean=6, median=5, min=2, max=9) }\n")
    assert diag.message.startswith("class 'a': explicit turns cannot be combined with restarts")
    assert [at(diag), *(at(r) for r in diag.related)] == [(2, 22), (1, 9)]  # the class's turns first


# Warnings: each once, naming the classes -----------------------------------------------------


def test_an_inherited_warning_is_said_once_naming_every_class_that_inherits_it():
    text = TOP.replace("output lognormal(mean=500, median=300)", "output lognormal(mean=500, median=500)") \
        + "class a 40% { }\nclass b 40% { }\nclass c 20% { turn { output lognormal(mean=300, median=200) } }\n"
    warnings = [w for w in compiled(text)[1] if w.code == "W101"]
    assert len(warnings) == 1
    (warning,) = warnings
    assert warning.message.startswith("classes 'a' and 'b' (inherited from the top level): generation_length:")
    assert at(warning) == (9, 25)


def test_a_class_own_warning_names_that_class_only():
    text = TOP + "class a 50% { turn { output lognormal(mean=500, median=500) } }\nclass b 50% { }\n"
    (warning,) = [w for w in compiled(text)[1] if w.code == "W101"]
    assert warning.message.startswith("class 'a': generation_length:")
    assert warning.span.line == 13


def test_the_top_level_defaults_that_no_class_runs_do_not_warn():
    text = TOP.replace("output lognormal(mean=500, median=300)", "output lognormal(mean=500, median=500)") \
        + "class a 100% { turn { output lognormal(mean=300, median=200) } }\n"
    assert [w.code for w in compiled(text)[1] if w.code != "W105"] == []


def test_w105_names_the_classes_and_each_class_construct_once():
    warnings = [w for w in compiled(CLASSES)[1] if w.code == "W105"]
    messages = [w.message for w in warnings]
    assert any(m.startswith("classes: AIPerf 0.13.0 has one population") for m in messages)
    # the top-level delay law every class inherits: once, naming them all
    (delay,) = [w for w in warnings if "delay of one lognormal law" in w.message]
    assert delay.message.startswith("classes 'coding', 'chat' and 'review' (inherited from the top level)")
    (turns,) = [w for w in warnings if "turn counts" in w.message]
    assert turns.message.startswith("class 'chat':") and turns.span.line == 19


def test_w104_speaks_per_class():
    text = "context 200k\nturn { new_tokens lognormal(mean=250k, median=200k) }\n" \
           "class a 50% { turns lognormal(mean=8, median=6, min=2, max=20) retry 10000 }\n" \
           "class b 50% { turn { new_tokens lognormal(mean=2k, median=1k) } " \
           "turns lognormal(mean=8, median=6, min=2, max=20) retry 10000 }\n"
    (warning,) = [w for w in compiled(text)[1] if w.code == "W104"]
    assert warning.message.startswith("class 'a': turns:") and warning.span.line == 3


# W107: most sessions end at turn 0 ----------------------------------------------------------


SHORT = "context 60k\nprefix { session lognormal(mean=12k, median=8k) }\nturn { output lognormal(mean=2k, median=1.5k) }\n"


def test_w107_when_most_sessions_cannot_fit_turn_1_at_the_context_with_the_share():
    (warning,) = [w for w in compiled(SHORT)[1] if w.code == "W107"]
    assert at(warning) == (1, 9)
    assert "about 83% of sessions end at turn 0" in warning.message
    assert "max_prompt_tokens (60000)" in warning.message
    assert not [w for w in compiled(SHORT.replace("context 60k", "context 80k"))[1] if w.code == "W107"]


def test_the_turn_zero_share_is_the_share_a_draw_of_the_laws_gives():
    spec = params(SHORT)
    room = spec.max_prompt_tokens - spec.fixed_prefix_tokens
    layer2, new_tokens, output = _token_laws(spec)
    rng = np.random.default_rng(5)
    draws = [np.maximum(np.floor(part.law.sample(rng.random(200_000))), part.floor)
             for part in (layer2, output, new_tokens)]
    observed = float(np.mean(draws[0] + draws[1] + draws[2] >= room))
    assert turn_zero_share(room, layer2, new_tokens, output) == pytest.approx(observed, abs=0.01)
    assert 0.8 < observed < 0.86


def test_w107_is_each_class_own_and_not_for_retrying_turns():
    text = "context 60k\nprefix { session lognormal(mean=12k, median=8k) }\n" \
           "class short 50% { turn { output lognormal(mean=2k, median=1.5k) } }\n" \
           "class retry 25% { turn { output lognormal(mean=2k, median=1.5k) } " \
           "turns lognormal(mean=2, median=2, min=1, max=3) retry 100 }\n" \
           "class long 25% { context 200k turn { output lognormal(mean=2k, median=1.5k) } }\n"
    (warning,) = [w for w in compiled(text)[1] if w.code == "W107"]
    assert warning.message.startswith("class 'short': about 83% of sessions end at turn 0")
    assert at(warning) == (3, 33)  # what the class wrote that makes it so, before the inherited context
    text = text.replace("class short 50% { turn { output lognormal(mean=2k, median=1.5k) } }",
                        "class short 50% { }").replace("context 60k", "context 60k\nturn { output lognormal(mean=2k, median=1.5k) }")
    (warning,) = [w for w in compiled(text)[1] if w.code == "W107"]
    assert warning.message.startswith("class 'short' (inherited from the top level): about 83%")
    assert at(warning) == (1, 9)


# fmt, decompile and spec.json --------------------------------------------------------------


def test_fmt_puts_classes_last_each_a_paragraph_in_the_order_written():
    text = "class b 50% { reset 1% turn { output lognormal(mean=1k, median=800) } context 150k }\n" \
           "context 100k\nclass a 50% { }\n"
    formatted = format_text(text)
    assert formatted == (
        "context 100k\n\nclass b 50% {\n  context 150k\n  turn {\n    output lognormal(mean=1k, median=800)\n"
        "  }\n  reset 1%\n}\n\nclass a 50% {}\n")
    assert format_text(formatted) == formatted
    assert params(formatted) == params(text)


@pytest.mark.parametrize("text", [
    CLASSES,
    (ROOT / "examples" / "classes.trace").read_text(),
    TOP + "class a 60% { prefix { global 10k groups 10 of 5k } }\nclass b 40% { }\n",
    "turns lognormal(mean=6, median=5, min=2, max=20) truncate\nclass r 50% { reset 3% }\nclass t 50% { }\n",
    "turns lognormal(mean=6, median=5, min=2, max=20) truncate\nclass r 50% { reset none }\nclass t 50% { }\n",
    "reset none\nclass a 50% { restart 5% at turn [3, 9) }\nclass b 50% { reset 1% restart 5% }\n",
    "restart 5% at turn [3, 9)\nclass a 50% { restart 0 turns lognormal(mean=6, median=5, min=2, max=20) }\n"
    "class b 50% { }\n",
    "context 100k\nclass a 100% { context 80k }\n",
])
def test_decompile_compiles_back_to_the_same_spec(text):
    workload = compiled(text, "spec.trace")[0]
    back = decompile(workload)
    assert compile_text(back, "spec.trace")[0] == workload


def test_decompile_writes_only_what_a_class_does_not_inherit():
    back = decompile(compiled(CLASSES, "spec.trace")[0])
    classes = back[back.index("class coding"):]
    assert classes == (
        "class coding 70% {\n  prefix {\n    session lognormal(mean=8k, median=5k)\n  }\n  reset 1% scaling 2\n}\n\n"
        "class chat 20% {\n  turn {\n    output lognormal(mean=300, median=200)\n  }\n"
        "  turns uniform(min=2, max=8) truncate\n}\n\n"
        "class review 10% {\n  context 150k\n  prefix {\n    groups 40 of 8k zipf 0.7\n  }\n}\n")


def test_a_compiled_spec_with_classes_loads_back_identically(tmp_path):
    workload = compiled(CLASSES, "spec.trace")[0]
    path = tmp_path / "spec.json"
    path.write_text(dump_spec_json(spec_document(workload, None, None)))
    loaded = load_spec(path)
    assert Workload(name=loaded.name, params=loaded.params) == workload
    assert json.loads(path.read_text())["generation_params"]["classes"][2]["shares_groups"] is False


def test_a_spec_json_problem_in_a_class_is_located_by_its_json_path(tmp_path):
    workload = compiled(CLASSES, "spec.trace")[0]
    document = spec_document(workload, None, None)
    document["generation_params"]["classes"][1]["params"]["generation_length"]["mean"] = 50.0
    path = tmp_path / "spec.json"
    text = dump_spec_json(document)
    path.write_text(text)
    with pytest.raises(DiagnosticError) as caught:
        load_spec(path)
    (diag,) = caught.value.diagnostics
    assert diag.code == "E106"
    assert diag.message.startswith("class 'chat': generation_length: mean (50) must be >= median (200)")
    assert '"mean": 50.0' in text.splitlines()[diag.span.line - 1]
    assert text[:text.index('"classes"')].count("\n") + 1 < diag.span.line  # inside the classes, not the top level


# --set and --sweep paths --------------------------------------------------------------------


def test_class_paths_set_that_class_body_with_the_language_units():
    spec = params(CLASSES)
    changed = apply_overrides(spec, ["class.chat.turn.output.mean=2k", "class.review.turns.max=12",
                                     "class.review.turns.mean=6", "class.review.turns.median=5",
                                     "class.review.turns.min=2", "class.review.reset=none"])
    chat, review = changed.classes[1], changed.classes[2]
    assert chat.params.generation_length.mean == 2000.0 and chat.params.generation_length.median == 200.0
    assert (review.params.turns.min, review.params.turns.max) == (2, 12)
    assert changed.classes[0] == spec.classes[0] and changed.generation_length == spec.generation_length


def test_a_top_level_path_sets_the_default_and_every_class_that_inherits_it():
    spec = params(CLASSES)
    changed = apply_overrides(spec, ["turn.output.mean=2k", "context=120k"])
    assert changed.generation_length.mean == 2000.0
    assert [c.params.generation_length.mean for c in changed.classes] == [2000.0, 300.0, 2000.0]
    assert [c.params.max_prompt_tokens for c in changed.classes] == [120_000, 120_000, 150_000]
    # spec.json's top-level paths follow the same rule
    changed = apply_overrides(spec, ["generation_length.median=250"])
    assert [c.params.generation_length.median for c in changed.classes] == [250.0, 200.0, 250.0]


@pytest.mark.parametrize(("override", "message", "hint"), [
    ("class.chta.turn.output.mean=2k", "no class 'chta'", "did you mean 'chat'?"),
    ("class.chat.block=1k", "'block' is one for the whole trace", "set block instead"),
    ("class.chat=1", "a class's path is class.NAME.PATH", "class.chat.turns.max=12"),
    ("class.chat.turn.output.mean=2s", "'2s' is not a token count", None),
])
def test_a_bad_class_path_is_e211_with_a_hint(override, message, hint):
    with pytest.raises(DiagnosticError) as caught:
        apply_overrides(params(CLASSES), [override])
    (diag,) = caught.value.diagnostics
    assert diag.code == "E211" and message in diag.message
    assert hint is None or hint in diag.hint


def test_a_class_path_on_a_spec_without_classes_says_so():
    with pytest.raises(DiagnosticError) as caught:
        apply_overrides(params(TOP), ["class.chat.turns.max=3"])
    assert "no classes" in caught.value.diagnostics[0].message


def test_spec_json_class_paths_work_too():
    changed = apply_overrides(params(CLASSES), ["classes.0.params.generation_length.mean=900"])
    assert changed.classes[0].params.generation_length.mean == 900.0
    assert changed.generation_length.mean == 500.0


def test_the_example_means_what_its_comments_say():
    spec = load_spec(ROOT / "examples" / "classes.trace").params
    coding, chat, review = spec.classes
    assert [c.fraction for c in spec.classes] == [0.6, 0.3, 0.1]
    assert all(c.shares_global for c in spec.classes)
    assert (coding.shares_groups, chat.shares_groups, review.shares_groups) == (True, True, False)
    assert chat.params.reset is None and chat.params.turns.allow_truncation
    assert families.family_of(chat.params.inter_turn_delay.law).name == "lognormal"
    assert review.params.generation_length.mean == 1500.0


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("*.trace")), ids=lambda p: p.stem)
def test_a_spec_toml_loads_back_identically_its_nulls_restored_in_classes_and_in_any_family(path, tmp_path):
    loaded = load_spec(path)
    toml = tmp_path / "spec.toml"
    toml.write_text(dump_spec_toml(spec_document(Workload(name=loaded.name, params=loaded.params), None, None)))
    assert load_spec(toml).params == loaded.params


def test_a_class_reset_none_survives_toml_which_has_no_null(tmp_path):
    workload = compiled("class a 50% { reset none }\nclass b 50% { }\n")[0]
    toml = tmp_path / "spec.toml"
    toml.write_text(dump_spec_toml(spec_document(workload, None, None)))
    assert "reset" not in toml.read_text().split("[generation_params.classes.params")[1].split("\n[")[0]
    assert load_spec(toml).params.classes[0].params.reset is None


def test_a_let_inside_a_class_is_refused_alone_though_the_class_uses_its_name():
    (diag,) = errors("context 100k\nclass a 100% {\n  let big = 2k\n  turn { output lognormal(mean=big, median=1k) }\n}\n")
    assert diag.code == "E118" and at(diag) == (3, 3)


@pytest.mark.parametrize(("fraction", "hint"), [("0%", "leave a class out"), ("70", "a number without % is a share of 1")])
def test_a_fraction_outside_0_to_100_percent_is_an_error_at_it(fraction, hint):
    (diag,) = errors(f"class a 30% {{ }}\nclass b {fraction} {{ }}\n")
    assert diag.code == "E106" and f"class 'b' has a fraction of {fraction}" in diag.message
    assert at(diag) == (2, 9) and hint in diag.hint


def test_a_top_level_set_that_breaks_a_class_names_the_class():
    with pytest.raises(DiagnosticError) as caught:
        apply_overrides(params(CLASSES), ["context=14k"])
    messages = [d.message for d in caught.value.diagnostics]
    assert any(m.startswith("class 'coding': the shared prefix does not fit") for m in messages), messages
    assert not any("classes.0.params" in m for m in messages)


def test_a_top_level_arrivals_set_is_the_trace_s_not_the_classes():
    changed = apply_overrides(params(CLASSES + "arrivals poisson(rate=2/s)\n"), ["arrivals.rate=5"])
    assert changed.arrivals.rate == 5 and all(c.params.arrivals is None for c in changed.classes)


def test_a_related_place_that_only_encloses_another_is_left_out():
    (diag,) = errors("context 40k\nprefix {\n  global 50k\n}\n")
    assert at(diag) == (1, 9)
    assert [at(r) for r in diag.related] == [(3, 10)]  # the global, not also the prefix block around it


def test_w107_that_two_classes_inherit_is_said_once_naming_both():
    text = SHORT + "class a 50% { reset 1% }\nclass b 50% { reset 3% }\n"
    (warning,) = [w for w in compiled(text)[1] if w.code == "W107"]
    assert warning.message.startswith("classes 'a' and 'b' (inherited from the top level): about 83%")
    assert at(warning) == (1, 9)


def test_max_isl_and_max_osl_hold_for_every_class(tmp_path):
    from tracedsl.pipeline.runs import RunOptions, plan_run

    spec = tmp_path / "spec.trace"
    spec.write_text(CLASSES)
    plan = plan_run(RunOptions(spec=str(spec), max_isl=120_000, max_osl=900, output=str(tmp_path)))
    assert [c.params.max_prompt_tokens for c in plan.params.classes] == [120_000] * 3
    assert [c.params.generation_length.max for c in plan.params.classes] == [900.0] * 3
