"""Syntax errors as diagnostics: where, what was found, what was expected, the nearest keyword."""

from __future__ import annotations

import difflib
import re

from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from tracedsl.codes import E_SYNTAX
from tracedsl.diagnostics import Diagnostic, Span

__all__ = ["E_SYNTAX", "keywords", "syntax_diagnostic"]

# What the user should read for each non-keyword terminal of the grammar.
_TERMINAL_WORDS = {
    "NUMBER": "a number",
    "NAME": "a name",
    "STRING": "a quoted string",
    "COMPONENT": "'agentic' or 'human'",
    "OPEN": "'[' or '('",
    "CLOSE": "']' or ')'",
    "$END": "the end of the file",
}
# Keywords that only make sense inside one block, for a hint when they appear elsewhere.
_BLOCK_OF = {
    **dict.fromkeys(("global", "groups", "session"), "prefix { }"),
    **dict.fromkeys(("new_tokens", "output", "delay"), "turn { }"),
    **dict.fromkeys(("agentic", "human"), "delay mix { }"),
}
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def keywords() -> list[str]:
    """Every keyword of the grammar (string terminals made of letters)."""
    from tracedsl.language.parser import grammar_parser

    found = set()
    for terminal in grammar_parser().terminals:
        for word in re.findall(r"[a-z_]+", terminal.pattern.value):
            if terminal.pattern.type == "str" or terminal.name in ("COMPONENT", "NONE"):
                found.add(word)
    return sorted(found)


def syntax_diagnostic(error: Exception, text: str, file: str) -> Diagnostic:
    """Turn a lark error into a located diagnostic with the expected tokens and a hint."""
    if not isinstance(error, UnexpectedInput):
        return Diagnostic(E_SYNTAX, f"cannot parse: {type(error).__name__}", file=file, source=text)
    expected = _expected_terminals(error)
    line, column = (
        max(error.line, 1) if error.line else 1,
        max(error.column, 1) if error.column else 1,
    )
    found = _found(error, text)
    if isinstance(error, UnexpectedEOF) or found is None:
        line, column = _end_position(text)
        found_text = "end of file"
        width = 1
    else:
        found_text = f"'{found}'"
        width = max(1, len(found))
    message = f"unexpected {found_text}"
    if expected:
        message += f"; expected {_join(expected)}"
    hint = _suggestion(found, expected)
    return Diagnostic(
        E_SYNTAX, message, file=file, span=Span(line, column, line, column + width), hint=hint,
        source=text,
    )


def _expected_terminals(error: UnexpectedInput) -> list[str]:
    from tracedsl.language.parser import grammar_parser

    if isinstance(error, (UnexpectedToken, UnexpectedEOF)):
        names = set(error.expected or ())
    elif isinstance(error, UnexpectedCharacters):
        names = set(error.allowed or ())
    else:  # pragma: no cover
        names = set()
    patterns = {t.name: t.pattern for t in grammar_parser().terminals}
    words = []
    for name in names:
        if name in _TERMINAL_WORDS:
            words.append(_TERMINAL_WORDS[name])
        elif name in patterns and patterns[name].type == "str":
            words.append(f"'{patterns[name].value}'")
        elif not name.startswith("__"):
            words.append(name.lower())
    return sorted(set(words), key=lambda w: (not w.startswith("'"), w))


def _found(error: UnexpectedInput, text: str) -> str | None:
    if isinstance(error, UnexpectedToken):
        if error.token.type == "$END":
            return None
        return str(error.token)
    if isinstance(error, UnexpectedCharacters):
        pos = error.pos_in_stream
        word = _WORD.match(text, pos)
        return word.group() if word else text[pos : pos + 1]
    return None


def _suggestion(found: str | None, expected: list[str]) -> str | None:
    if not found or not _WORD.fullmatch(found):
        return None
    quoted = [w.strip("'") for w in expected if w.startswith("'")]
    if found in _BLOCK_OF and found not in quoted:
        return f"'{found}' belongs inside {_BLOCK_OF[found]}"
    close = difflib.get_close_matches(found, quoted, n=1, cutoff=0.6)
    if not close:
        close = difflib.get_close_matches(found, keywords(), n=1, cutoff=0.75)
        if close and close[0] not in quoted:
            return f"'{close[0]}' is a keyword, but not one that can appear here"
    return f"did you mean '{close[0]}'?" if close else None


def _end_position(text: str) -> tuple[int, int]:
    stripped = text.rstrip()
    line = stripped.count("\n") + 1
    column = len(stripped) - (stripped.rfind("\n") + 1) + 1
    return line, column


def _join(words: list[str]) -> str:
    if len(words) > 17:  # every top-level statement's keyword still fits
        words = words[:17] + ["…"]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]
