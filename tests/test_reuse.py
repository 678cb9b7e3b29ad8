"""let and include: substitution gives what writing the value out gives; includes merge and override; errors are located."""

from __future__ import annotations

import pytest

from tests.conftest import ROOT
from tracedsl.diagnostics import DiagnosticError
from tracedsl.language.decompile import decompile
from tracedsl.language.format import format_text
from tracedsl.language.lower import compile_text
from tracedsl.loading import load_spec


def params(text: str, file: str = "<input>"):
    return compile_text(text, file)[0].params


def errors(text: str, file: str = "<input>"):
    with pytest.raises(DiagnosticError) as caught:
        compile_text(text, file)
    return caught.value.diagnostics


def write(directory, name: str, text: str) -> str:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


# let ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("with_let", "written_out"), [
    ("let c = 64k\ncontext c", "context 64k"),
    ("let out = lognormal(mean=900, median=300)\nturn { output out }",
     "turn { output lognormal(mean=900, median=300) }"),
    ("let m = 2k\nlet b = 1.1\nturn { new_tokens lognormal(mean=m, median=1k) bias b }",
     "turn { new_tokens lognormal(mean=2k, median=1k) bias 1.1 }"),
    ("let think = lognormal(mean=4s, median=2s)\nturn { delay mix { agentic 70%: think human: think } }",
     "turn { delay mix { agentic 70%: lognormal(mean=4s, median=2s) human: lognormal(mean=4s, median=2s) } }"),
    ("let a = 5\nlet b = 15\nrestart 10% at turn [a, b)", "restart 10% at turn [5, 15)"),
    ("let p = 2%\nreset p scaling 1.5", "reset 2% scaling 1.5"),
    # a let's value may use another, defined anywhere in the file
    ("let out = lognormal(mean=big, median=300)\nlet big = 900\nturn { output out }",
     "turn { output lognormal(mean=900, median=300) }"),
    ("let half = 50%\nturn { output empirical { 1k: half, 4k: half } }",
     "turn { output empirical { 1k: 50%, 4k: 50% } }"),
])
def test_a_let_gives_what_writing_its_value_out_gives(with_let, written_out):
    assert params(with_let) == params(written_out)
    assert params(with_let) != params("")  # the case sets something


def test_the_slot_that_uses_a_name_applies_its_unit_rules_at_the_use():
    (diag,) = errors("let wait = 2s\n\ncontext wait\n")
    assert diag.code == "E104"
    assert "'2s' is not a token count" in diag.message
    assert (diag.span.line, diag.span.column) == (3, 9)


def test_an_unknown_name_is_located_with_the_nearest_defined_one():
    (diag,) = errors("let window = 128k\ncontext windw\n")
    assert (diag.code, diag.message) == ("E116", "'windw' is not defined")
    assert (diag.span.line, diag.span.column, diag.span.end_column) == (2, 9, 14)
    assert diag.hint == "did you mean 'window'?"


@pytest.mark.parametrize(("text", "message"), [
    ("let n = 3k\nturn { output n }", "'n' is a number; a distribution goes here"),
    ("let d = constant(1k)\ncontext d", "'d' is a distribution; a number goes here"),
    ("let d = constant(1k)\nturn { output lognormal(mean=d, median=1) }",
     "'d' is a distribution; a number goes here"),
])
def test_a_name_of_the_wrong_kind_is_an_error_at_the_use(text, message):
    (diag,) = errors(text)
    assert (diag.code, diag.message) == ("E116", message)
    assert diag.span.line == 2


def test_a_name_defined_twice_or_through_itself_is_an_error():
    found = errors("let a = 1k\nlet a = 2k\nlet b = lognormal(mean=c, median=1)\nlet c = b\n")
    assert [(d.code, d.span.line) for d in found] == [("E101", 2), ("E116", 4)]
    assert found[0].related[0].span.line == 1
    assert "defined through itself" in found[1].message


def test_every_name_error_is_reported_together():
    found = errors("context x\nturn { output y }\n")
    assert [(d.code, d.span.line) for d in found] == [("E116", 1), ("E116", 2)]


# include --------------------------------------------------------------------------------

BASE = """\
let window = 64k
workload "base"
context window
turn {
  new_tokens lognormal(mean=2k, median=1k)
  output lognormal(mean=500, median=300)
}
reset 2%
"""


def test_own_statements_override_included_ones_wherever_the_include_stands(tmp_path):
    write(tmp_path, "base.trace", BASE)
    after = write(tmp_path, "after.trace", 'include "base.trace"\ncontext 100k\n')
    before = write(tmp_path, "before.trace", 'context 100k\ninclude "base.trace"\n')
    base = load_spec(str(tmp_path / "base.trace")).params
    for path in (after, before):
        spec = load_spec(path).params
        assert spec.max_prompt_tokens == 100_000
        assert spec.generation_length == base.generation_length
        assert spec.reset == base.reset


def test_a_turn_block_merges_item_by_item(tmp_path):
    write(tmp_path, "base.trace", BASE)
    top = write(tmp_path, "top.trace", 'include "base.trace"\nturn { output lognormal(mean=900, median=300) }\n')
    spec = load_spec(top).params
    base = load_spec(str(tmp_path / "base.trace")).params
    assert spec.new_tokens_per_turn == base.new_tokens_per_turn  # kept from base
    assert spec.generation_length.mean == 900  # overridden
    assert spec.max_prompt_tokens == 64_000


def test_a_later_include_overrides_an_earlier_one_and_its_names_are_seen(tmp_path):
    write(tmp_path, "a.trace", "context 10k\nreset 1%\n")
    write(tmp_path, "b/b.trace", "let big = 90k\ncontext 200k\n")
    top = write(tmp_path, "top.trace", 'include "a.trace"\ninclude "b/b.trace"\nprefix { session constant(big) }\n')
    spec = load_spec(top).params
    assert spec.max_prompt_tokens == 200_000
    assert spec.reset.base_probability == 0.01
    assert spec.cache.layer2.value == 90_000


def test_an_own_let_shadows_an_included_one_in_the_including_file_only(tmp_path):
    write(tmp_path, "base.trace", BASE)
    top = write(tmp_path, "top.trace", 'include "base.trace"\nlet window = 10k\nprefix { global window }\n')
    spec = load_spec(top).params
    assert spec.max_prompt_tokens == 64_000  # base's own use keeps base's name
    assert spec.cache.layer1_tokens == 10_000


def test_an_included_empirical_file_is_read_beside_the_included_file(tmp_path):
    write(tmp_path, "lib/sizes.txt", "1k\n2k\n")
    write(tmp_path, "lib/base.trace", 'turn { output empirical("sizes.txt") }\n')
    top = write(tmp_path, "top.trace", 'include "lib/base.trace"\n')
    assert load_spec(top).params.generation_length.values == [1000.0, 2000.0]


def test_a_missing_include_names_the_chain(tmp_path):
    write(tmp_path, "mid.trace", '\ninclude "gone.trace"\n')
    top = write(tmp_path, "top.trace", 'include "mid.trace"\n')
    with pytest.raises(DiagnosticError) as caught:
        load_spec(top)
    (diag,) = caught.value.diagnostics
    mid, gone = tmp_path / "mid.trace", tmp_path / "gone.trace"
    assert diag.code == "E117"
    assert diag.message == f"cannot include {gone}: no such file ({top} includes {mid} includes {gone})"
    assert (diag.file, diag.span.line) == (str(mid), 2)
    assert diag.source == '\ninclude "gone.trace"\n'  # the excerpt is the included file's


def test_a_cycle_is_an_error_at_the_include_that_closes_it(tmp_path):
    write(tmp_path, "b.trace", 'context 1k\ninclude "a.trace"\n')
    a = write(tmp_path, "a.trace", 'include "b.trace"\n')
    with pytest.raises(DiagnosticError) as caught:
        load_spec(a)
    (diag,) = caught.value.diagnostics
    b = tmp_path / "b.trace"
    assert (diag.code, diag.file, diag.span.line) == ("E117", str(b), 2)
    assert diag.message == f"include cycle: {a} includes {b} includes {tmp_path / 'a.trace'}"


def test_a_file_including_itself_is_a_cycle(tmp_path):
    a = write(tmp_path, "a.trace", 'include "a.trace"\n')
    (diag,) = errors((tmp_path / "a.trace").read_text(), a)
    assert diag.code == "E117" and diag.message.startswith("include cycle")


def test_errors_in_an_included_file_point_into_it(tmp_path):
    base = write(tmp_path, "base.trace", "\nprefix { session lognormal(mean=3ms, median=2) }\n")
    top = write(tmp_path, "top.trace", 'include "base.trace"\ncontext 2s\n')
    with pytest.raises(DiagnosticError) as caught:
        load_spec(top)
    found = sorted(caught.value.diagnostics, key=lambda d: d.file)
    assert [(d.code, d.file, d.span.line) for d in found] == [("E104", base, 2), ("E104", top, 2)]
    assert found[0].source == (tmp_path / "base.trace").read_text()
    (note,) = found[0].related
    assert (note.message, note.file, note.span.line) == ("(included here)", top, 1)
    assert not found[1].related  # the including file's own error needs no note


def test_each_include_of_the_chain_is_noted_and_shown_with_its_own_text(tmp_path):
    from tracedsl.diagnostics import render

    write(tmp_path, "c.trace", "\n\ncontext undefined_name\n")
    write(tmp_path, "b.trace", 'include "c.trace"\n')
    top = write(tmp_path, "a.trace", '# a\ninclude "b.trace"\n')
    with pytest.raises(DiagnosticError) as caught:
        load_spec(top)
    (diag,) = caught.value.diagnostics
    assert (diag.code, diag.span.line) == ("E116", 3)
    assert [(n.file, n.span.line) for n in diag.related] == [(str(tmp_path / "b.trace"), 1), (top, 2)]
    shown = render(diag)
    assert '   2 | include "b.trace"' in shown and '   1 | include "c.trace"' in shown


def test_a_syntax_error_in_an_included_file_notes_the_include(tmp_path):
    base = write(tmp_path, "base.trace", "context\n")
    top = write(tmp_path, "top.trace", '# top\ninclude "base.trace"\n')
    with pytest.raises(DiagnosticError) as caught:
        load_spec(top)
    (diag,) = caught.value.diagnostics
    assert (diag.code, diag.file) == ("E001", base)
    (note,) = diag.related
    assert (note.message, note.file, note.span.line) == ("(included here)", top, 2)
    assert note.source == (tmp_path / "top.trace").read_text()


def test_a_cross_field_error_points_at_the_included_statement(tmp_path):
    base = write(tmp_path, "base.trace", "\n\nturns lognormal(mean=12, median=10, min=2, max=40)\n")
    top = write(tmp_path, "top.trace", 'include "base.trace"\nrestart 10%\n')
    with pytest.raises(DiagnosticError) as caught:
        load_spec(top)
    places = {(d.file, d.span.line) for diag in caught.value.diagnostics for d in (diag, *diag.related)}
    assert (base, 3) in places and (top, 2) in places


# fmt and decompile -----------------------------------------------------------------------


def test_fmt_keeps_includes_lets_and_names():
    text = 'turn { output out }\nlet out = lognormal(mean=1k, median=big)\ninclude "b.trace"\nlet big = 800\ncontext big\n'
    formatted = format_text(text)
    assert formatted == (
        'include "b.trace"\nlet big = 800\nlet out = lognormal(mean=1k, median=big)\n\n'
        "context big\n\nturn {\n  output out\n}\n"
    )
    assert format_text(formatted) == formatted


def test_decompile_writes_the_values_out():
    workload, _ = compile_text((ROOT / "examples" / "let.trace").read_text(), str(ROOT / "examples" / "let.trace"))
    text = decompile(workload)
    assert "let " not in text and "window" not in text
    assert params(text) == workload.params
