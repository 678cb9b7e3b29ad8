"""Messages stay readable on hostile input: bounded output, the parser's own line ends, located bytes.

Each case was found by fuzzing (issue 11): one line with 20,000 unknown arguments wrote 5 GB to
stderr; a CR-only file compiled silently as the default workload; a form feed or U+2028 made
the excerpt show the wrong line; a NUL byte and JSON nested 100,000 deep had no line:column.
Each is checked through `check` and through `run`, which must fail the same way.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tracedsl import diagnostics
from tracedsl.cli import cli
from tracedsl.cli.exitcodes import FAILED, INPUT
from tracedsl.diagnostics import Diagnostic, Span, render, split_lines
from tracedsl.io import MAX_NESTING

VALID = "context 100k\nturn { output lognormal(mean=1k, median=800) }\n"


def invoke(tmp_path: Path, *args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def check(tmp_path: Path, name: str, text: str | bytes):
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_bytes(text.encode("utf-8"))
    return invoke(tmp_path, "check", str(path)), invoke(
        tmp_path, "run", str(path), "-n", "5", "-o", str(tmp_path / "out")
    )


# ---------------------------------------------------------------------------------------------
# 1. Many diagnostics on one long line


def _wide_trace(count: int) -> str:
    arguments = ", ".join(f"a{i}=1" for i in range(count))
    return f"turn {{ output lognormal(mean=1k, median=800, {arguments}) }}\n"


def test_twenty_thousand_unknown_arguments_print_a_bounded_message_fast(tmp_path):
    text = _wide_trace(20_000)
    assert len(text) > 160_000
    started = time.monotonic()
    checked, ran = check(tmp_path, "wide.trace", text)
    elapsed = time.monotonic() - started
    for result in (checked, ran):
        assert result.exit_code in (FAILED, INPUT)
        err = result.stderr
        assert len(err.encode()) < 20_000, len(err)
        assert err.count("error[E103]") == diagnostics.MAX_SHOWN
        assert f"and {20_000 - diagnostics.MAX_SHOWN:,} more errors" in err
        assert "Traceback" not in err
    assert checked.exit_code == FAILED and ran.exit_code == INPUT
    # Both commands (parse and lower 20,000 arguments twice) in a few seconds, not 55.
    assert elapsed < 15, elapsed


def test_the_count_of_the_rest_names_errors_and_warnings():
    found = [Diagnostic("E103", f"e{i}", span=Span(1, 1)) for i in range(25)]
    found += [Diagnostic("W101", "w", diagnostics.Severity.WARNING) for _ in range(3)]
    shown, rest = diagnostics.shown(found)
    assert shown == found[:20]
    assert rest == "… and 5 more errors and 3 more warnings (the first 20 diagnostics are shown)"
    shown, rest = diagnostics.shown(found[:20])
    assert rest is None and len(shown) == 20
    assert diagnostics.shown(found, None) == (found, None)
    assert diagnostics.shown(found[-2:], 1)[1] == "… and 1 more warning (the first 1 diagnostics are shown)"


def test_thousands_of_unknown_keys_on_one_json_line_print_a_bounded_message(tmp_path):
    config = {"max_prompt_tokens": 100000, **{f"key{i}": 1 for i in range(5000)}}
    checked, ran = check(tmp_path, "keys.json", json.dumps(config))
    for result in (checked, ran):
        assert result.exit_code in (FAILED, INPUT)
        err = result.stderr
        assert len(err.encode()) < 20_000, len(err)
        assert err.count("error[E207]") == diagnostics.MAX_SHOWN
        assert f"and {5000 - diagnostics.MAX_SHOWN:,} more errors" in err


def test_a_long_line_is_cut_around_the_caret_which_stays_aligned():
    line = "x" * 5000 + "TARGET" + "y" * 5000
    diag = Diagnostic("E103", "m", file="f", span=Span(1, 5001, 1, 5007))
    header, text, caret = render(diag, line + "\n").splitlines()
    assert len(text) < 140 and len(caret) < 140
    assert text.startswith("   1 | …") and text.endswith("…")
    at = caret.index("^")
    assert text[at:at + 6] == "TARGET" and caret[at:] == "^^^^^^"


def test_a_short_line_is_not_cut_and_a_caret_past_its_end_still_shows():
    diag = Diagnostic("E001", "m", file="f", span=Span(1, 13))
    assert render(diag, "context 100k\n").splitlines()[1:] == [
        "   1 | context 100k",
        "     |             ^",
    ]
    long = "a" * 300
    diag = Diagnostic("E001", "m", file="f", span=Span(1, 301))
    _, text, caret = render(diag, long).splitlines()
    assert text.endswith("aaa") and caret.endswith("^") and len(caret) == len(text) + 1


def test_a_column_past_the_end_of_its_line_puts_the_caret_just_after_it():
    diag = Diagnostic("E001", "m", file="f", span=Span(1, 10**9))
    assert render(diag, "ab").splitlines()[2] == "     |   ^"


def test_a_huge_message_is_cut_in_the_middle():
    diag = Diagnostic("E001", "unexpected '" + "a" * 100_000 + "'", file="f")
    assert len(render(diag)) < 2 * diagnostics.MAX_MESSAGE
    assert render(diag).endswith("aaa'")


def test_a_huge_name_in_a_trace_gives_one_short_message(tmp_path):
    checked, ran = check(tmp_path, "name.trace", "context 1k " + "z" * 200_000 + "\n")
    for result in (checked, ran):
        assert result.exit_code in (FAILED, INPUT)
        assert "error[E001]" in result.stderr and len(result.stderr) < 5_000


# ---------------------------------------------------------------------------------------------
# 2. CR, CRLF and LF line ends


@pytest.mark.parametrize("end", ["\r", "\r\n", "\n"], ids=["cr", "crlf", "lf"])
def test_every_line_end_ends_a_comment_and_counts_a_line(tmp_path, end):
    text = end.join(["# a comment", "workload \"ends\"", "context 5s", ""])
    checked, ran = check(tmp_path, "ends.trace", text)
    for result in (checked, ran):
        assert result.exit_code in (FAILED, INPUT), result.stdout
        assert "ends.trace:3:9: error[E104]: '5s' is not a token count" in result.stderr
        assert "   3 | context 5s\n     |         ^^\n" in result.stderr


@pytest.mark.parametrize("end", ["\r", "\r\n"], ids=["cr", "crlf"])
def test_a_file_with_any_line_end_compiles_as_with_newlines(tmp_path, end):
    source = (Path(__file__).parents[1] / "examples").glob("*.trace")
    example = sorted(source)[0].read_text(encoding="utf-8")
    (tmp_path / "lf.trace").write_text(example, encoding="utf-8", newline="")
    (tmp_path / "other.trace").write_bytes(example.replace("\n", end).encode())
    lf = invoke(tmp_path, "compile", str(tmp_path / "lf.trace"))
    other = invoke(tmp_path, "compile", str(tmp_path / "other.trace"))
    assert lf.exit_code == other.exit_code == 0, other.stderr
    params = json.loads(lf.stdout)["generation_params"]
    assert json.loads(other.stdout)["generation_params"] == params


def test_fmt_writes_newlines_whatever_the_file_had(tmp_path):
    path = tmp_path / "crlf.trace"
    path.write_bytes(b"# kept\r\ncontext 100k\r\nblock 64\r\n")
    result = invoke(tmp_path, "fmt", str(path))
    assert result.exit_code == 0 and result.stdout == "# kept\ncontext 100k\nblock 64\n"
    assert invoke(tmp_path, "fmt", "--check", str(path)).exit_code == FAILED


@pytest.mark.parametrize("end", ["\r", "\r\n"], ids=["cr", "crlf"])
def test_json_and_toml_positions_count_every_line_end(tmp_path, end):
    text = end.join(["{", '  "max_prompt_tokens": 100000,', '  "blok_size": 64', "}", ""])
    checked, _ = check(tmp_path, "config.json", text)
    assert "config.json:3:3: error[E207]: unknown key 'blok_size'" in checked.stderr
    assert '   3 |   "blok_size": 64\n' in checked.stderr
    checked, _ = check(tmp_path, "bad.json", end.join(["{", '  "a": 1,', "  oops", "}"]))
    assert "bad.json:3:3: error[E203]" in checked.stderr
    checked, _ = check(tmp_path, "bad.toml", end.join(["[generation_params]", "a = 1", "b = ", ""]))
    assert "bad.toml:3:5: error[E204]" in checked.stderr, checked.stderr
    toml = end.join(["format_version = 1", 'workload = "w"', "[generation_params]",
                     "max_prompt_tokens = 100000", "blok_size = 64", ""])
    checked, _ = check(tmp_path, "spec.toml", toml)
    assert "error[E207]: unknown key 'blok_size'" in checked.stderr, checked.stderr


# ---------------------------------------------------------------------------------------------
# 3. Lines as the parser counts them


def test_comments_are_located_in_one_pass():
    from tracedsl.language.parser import parse

    text = "# a comment line\r\n" * 50_000 + "context 100k # last\r"
    started = time.monotonic()
    comments = parse(text).comments
    assert time.monotonic() - started < 5  # counting lines afresh for each comment took 14 s
    assert [(c.line, c.column) for c in comments[-2:]] == [(50_000, 1), (50_001, 14)]
    assert comments[-1].text == "# last"


@pytest.mark.parametrize("odd", ["\x0c", "\x0b", "\u2028", "\u2029", "\x85", "\x1c"])
def test_the_excerpt_counts_lines_as_the_parser_does(tmp_path, odd):
    text = f'# a{odd}comment\nworkload "a"\ncontext 5s\n'
    checked, ran = check(tmp_path, "odd.trace", text)
    for result in (checked, ran):
        assert "odd.trace:3:9: error[E104]" in result.stderr
        assert "   3 | context 5s\n     |         ^^\n" in result.stderr


def test_split_lines_splits_only_at_line_ends():
    assert split_lines("a\x0cb\u2028c\rd\r\ne\nf") == ["a\x0cb\u2028c", "d", "e", "f"]
    assert split_lines("a\n") == ["a", ""]


def test_the_excerpt_shows_control_characters_visibly_and_aligned():
    diag = Diagnostic("E001", "m", file="f", span=Span(1, 4))
    _, text, caret = render(diag, "a\x0cb\x00x\u2028").splitlines()
    assert text == "   1 | a␌b␀x␤"
    assert caret == "     |    ^"


# ---------------------------------------------------------------------------------------------
# 4. Bytes and nesting located


def test_a_nul_byte_is_located(tmp_path):
    checked, ran = check(tmp_path, "nul.trace", b"context 100k\r\nblock 6\x004\n")
    for result in (checked, ran):
        assert result.exit_code in (FAILED, INPUT)
        assert "nul.trace:2:8: error[E201]: a NUL byte" in result.stderr
        assert "   2 | block 6␀4\n     |        ^\n" in result.stderr


def test_a_byte_that_is_not_utf8_is_located_after_cr_line_ends(tmp_path):
    checked, _ = check(tmp_path, "latin.trace", b"context 100k\rworkload \"caf\xe9\"\r")
    assert "latin.trace:2:14: error[E201]: not UTF-8 text (byte 0xe9)" in checked.stderr


def test_json_nested_100000_deep_is_located_where_it_passes_the_limit(tmp_path):
    text = '{"generation_params":\n  ' + "[" * 100_000 + "]" * 100_000 + "}"
    checked, ran = check(tmp_path, "deep.json", text)
    for result in (checked, ran):
        assert result.exit_code in (FAILED, INPUT)
        column = 3 + MAX_NESTING - 1  # the bracket that opens level MAX_NESTING + 1
        assert f"deep.json:2:{column}: error[E203]: invalid JSON: nested more than {MAX_NESTING} deep" in result.stderr
        assert len(result.stderr) < 2_000


def test_valid_json_just_past_the_limit_is_refused_and_at_the_limit_is_not(tmp_path):
    def nested(depth: int) -> str:
        return '{"max_prompt_tokens": 100000, "x": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"
    checked, _ = check(tmp_path, "ok.json", nested(MAX_NESTING))
    assert "nested more than" not in checked.stderr and "error[E207]" in checked.stderr
    checked, _ = check(tmp_path, "over.json", nested(MAX_NESTING + 1))
    assert f"over.json:1:{36 + MAX_NESTING - 1}: error[E203]: invalid JSON: nested more" in checked.stderr


def test_toml_nested_too_deep_is_located(tmp_path):
    text = "[generation_params]\nx = " + "[" * 100_000 + "]" * 100_000 + "\n"
    checked, ran = check(tmp_path, "deep.toml", text)
    for result in (checked, ran):
        assert result.exit_code in (FAILED, INPUT)
        assert f"deep.toml:2:{5 + MAX_NESTING}: error[E204]: invalid TOML: nested more than" in result.stderr


def test_run_warnings_are_deduplicated_then_capped(capsys):
    from tracedsl.cli.printing import show_compactly

    warning = diagnostics.Severity.WARNING
    found = [Diagnostic("W101", f"w{i}", warning, file="f", span=Span(i + 1, 1)) for i in range(30)]
    show_compactly(found + found)
    err = capsys.readouterr().err.splitlines()
    assert err[:20] == [f"f:{i + 1}:1: warning[W101]: w{i}" for i in range(20)]
    assert err[20:] == ["… and 10 more warnings (the first 20 diagnostics are shown)"]


def test_validate_lists_its_own_max_errors_not_the_cap(tmp_path):
    path = tmp_path / "trace.jsonl"
    path.write_text("not json\n" * 30)
    result = invoke(tmp_path, "validate", str(path))
    assert result.exit_code == FAILED
    assert result.stdout.count("error[bad-json]") == 30, result.stdout
    assert "diagnostics are shown" not in result.stdout
