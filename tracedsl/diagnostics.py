"""Diagnostics as data (code, message, span, hint) and their gcc-style rendering."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from enum import Enum


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
    lines = [f"{where}: {diag.severity.value}[{diag.code}]: {diag.message}"]
    if source is not None and diag.span is not None:
        lines.extend(_excerpt(source, diag.span))
    for other in diag.related:
        lines.append(render(other, source))
    if diag.hint:
        lines.append(f"   = help: {diag.hint}")
    return "\n".join(lines)


def _excerpt(source: str, span: Span) -> list[str]:
    text_lines = source.splitlines()
    if not 1 <= span.line <= len(text_lines):
        return []
    text = text_lines[span.line - 1].expandtabs(1)
    number = str(span.line)
    gutter = " " * len(number)
    start = max(span.column, 1)
    if span.end_line == span.line and span.end_column and span.end_column > start:
        width = span.end_column - start
    else:
        width = 1
    width = max(1, min(width, max(1, len(text) - start + 1)))
    return [
        f"   {number} | {text}",
        f"   {gutter} | {' ' * (start - 1)}{'^' * width}",
    ]
