"""Diagnostics as data (code, message, span, hint) and their gcc-style rendering."""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from enum import Enum
from functools import lru_cache

# The line ends of every input: the .trace parser, JSON and TOML positions and the excerpt all
# count lines by these, and only these (str.splitlines also splits at \f, \v, \x1c-\x1e, \x85,
# U+2028 and U+2029, which the parser reads as characters of a line).
LINE_END = re.compile(r"\r\n|\r|\n")
MAX_SHOWN = 20  # diagnostics a command prints; the rest are counted in one line
EXCERPT_WIDTH = 100  # columns of a long source line shown around the caret
MAX_MESSAGE = 400  # characters of a message or hint, cut in the middle beyond that
# Characters that would break or hide the excerpt, shown as one visible column each.
_VISIBLE = {
    **{code: 0x2400 + code for code in range(0x20) if code != 0x09},
    0x7F: 0x2421,
    **dict.fromkeys((0x85, 0x2028, 0x2029), 0x2424),
}


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, order=True)
class Span:
    """A region of a source text; lines and columns count from 1, ``end_*`` is exclusive."""

    line: int
    column: int
    end_line: int | None = None
    end_column: int | None = None


@dataclass(frozen=True)
class Diagnostic:
    """One finding about an input: what is wrong, where, and how to fix it."""

    code: str
    message: str
    severity: Severity = Severity.ERROR
    file: str | None = None
    span: Span | None = None
    hint: str | None = None
    path: str | None = None  # a field path such as ``cache.layer2.mean``, when there is one
    related: tuple[Diagnostic, ...] = field(default=())  # other spans of the same problem
    # The whole text of the file the span points into, so any command can show the excerpt;
    # not part of the diagnostic's identity, nor of its JSON.
    source: str | None = field(default=None, compare=False, repr=False)

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def to_dict(self) -> dict:
        out: dict = {"code": self.code, "severity": self.severity.value, "message": self.message}
        if self.file is not None:
            out["file"] = self.file
        if self.span is not None:
            out["line"] = self.span.line
            out["column"] = self.span.column
        if self.path is not None:
            out["path"] = self.path
        if self.hint is not None:
            out["hint"] = self.hint
        return out


class DiagnosticError(Exception):
    """Raised by a stage that found errors; carries every diagnostic it collected."""

    def __init__(self, diagnostics: list[Diagnostic] | Diagnostic):
        self.diagnostics = [diagnostics] if isinstance(diagnostics, Diagnostic) else list(diagnostics)
        super().__init__("; ".join(d.message for d in self.diagnostics))


def with_source(diagnostics: Iterable[Diagnostic], text: str, file: str) -> list[Diagnostic]:
    """The diagnostics, each that points into ``file`` (and has no source yet) carrying ``text``."""
    return [_with_source(diag, text, file) for diag in diagnostics]


def _with_source(diag: Diagnostic, text: str, file: str) -> Diagnostic:
    if diag.file != file or diag.source is not None:
        return diag
    related = tuple(_with_source(other, text, file) for other in diag.related)
    return replace(diag, source=text, related=related)


def split_lines(text: str) -> list[str]:
    """The lines of ``text`` as the parser counts them: ended by ``\\r\\n``, ``\\r`` or ``\\n`` only."""
    return LINE_END.split(text)


def normalise_newlines(text: str) -> str:
    """``text`` with every ``\\r\\n`` and lone ``\\r`` made ``\\n`` (lines and columns unchanged)."""
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


@lru_cache(maxsize=4)  # a command renders many diagnostics of one source
def line_starts(text: str) -> tuple[int, ...]:
    """The offset where each line of ``text`` starts (lines as :func:`split_lines` counts them)."""
    return (0, *(match.end() for match in LINE_END.finditer(text)))


def position(text: str, offset: int) -> tuple[int, int]:
    """The line and column (from 1) of character ``offset`` of ``text``."""
    starts = line_starts(text)
    index = bisect.bisect_right(starts, offset) - 1
    return index + 1, offset - starts[index] + 1


def line_text(text: str, number: int) -> str | None:
    """Line ``number`` (from 1) of ``text`` without its line end; None past the last line."""
    starts = line_starts(text)
    if not 1 <= number <= len(starts):
        return None
    end = starts[number] if number < len(starts) else len(text)
    return text[starts[number - 1]:end].rstrip("\r\n")


def shown(found: Iterable[Diagnostic], limit: int | None = MAX_SHOWN) -> tuple[list[Diagnostic], str | None]:
    """The first ``limit`` diagnostics (all when None), and a line that counts the rest, if any."""
    found = list(found)
    if limit is None or len(found) <= limit:
        return found, None
    rest = found[limit:]
    errors = sum(diag.is_error for diag in rest)
    counts = [_count(errors, "error"), _count(len(rest) - errors, "warning")]
    counted = " and ".join(count for count in counts if count)
    return found[:limit], f"… and {counted} (the first {limit} diagnostics are shown)"


def _count(number: int, noun: str) -> str:
    return f"{number:,} more {noun}{'' if number == 1 else 's'}" if number else ""


def render(diag: Diagnostic, source: str | None = None) -> str:
    """Render a diagnostic as ``file:line:col: error[CODE]: message`` with a caret excerpt.

    The excerpt comes from ``source`` when given, else from the text the diagnostic carries.
    """
    if source is None:
        source = diag.source
    where = diag.file or "<input>"
    if diag.span is not None:
        where += f":{diag.span.line}:{diag.span.column}"
    elif diag.path:
        where += f": {diag.path}"
    lines = [f"{where}: {diag.severity.value}[{diag.code}]: {_clip(diag.message)}"]
    if source is not None and diag.span is not None:
        lines.extend(_excerpt(source, diag.span))
    for other in diag.related:
        # a note in another file (an include) shows its own text, never this one's lines
        own = other.source if other.source is not None or other.file != diag.file else source
        lines.append(render(other, own))
    if diag.hint:
        lines.append(f"   = help: {_clip(diag.hint)}")
    return "\n".join(lines)


def _clip(text: str) -> str:
    if len(text) <= MAX_MESSAGE:
        return text
    half = MAX_MESSAGE // 2
    return f"{text[:half]}…{text[-half:]}"


def _excerpt(source: str, span: Span) -> list[str]:
    text = line_text(source, span.line)
    if text is None:
        return []
    text = text.expandtabs(1)  # the parser counts a tab as one column
    number = str(span.line)
    gutter = " " * len(number)
    start = min(max(span.column, 1), len(text) + 1)  # at most just past the line's end
    if span.end_line == span.line and span.end_column and span.end_column > start:
        width = span.end_column - start
    else:
        width = 1
    # A long line is cut to a window around the caret, a third of it before the caret.
    first, last = 0, len(text)
    if len(text) > EXCERPT_WIDTH:
        first = max(0, min(start - 1 - EXCERPT_WIDTH // 3, len(text) - EXCERPT_WIDTH))
        last = first + EXCERPT_WIDTH
    lead = "…" if first > 0 else ""
    tail = "…" if last < len(text) else ""
    width = max(1, min(width, last - start + 1))
    shown_text = text[first:last].translate(_VISIBLE)
    return [
        f"   {number} | {lead}{shown_text}{tail}",
        f"   {gutter} | {' ' * (len(lead) + start - 1 - first)}{'^' * width}",
    ]
