"""Printing diagnostics (with their source excerpt) and failing with the exit code of their kind."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import NoReturn

import click

from tracedsl import diagnostics
from tracedsl.cli import exitcodes
from tracedsl.diagnostics import Diagnostic, DiagnosticError
from tracedsl.pipeline import Category, category_of

EXIT_CODES = {
    Category.FAILED: exitcodes.FAILED,
    Category.USAGE: exitcodes.USAGE,
    Category.INPUT: exitcodes.INPUT,
    Category.IO: exitcodes.IO,
    Category.LIMIT: exitcodes.LIMIT,
}
_EXCERPT_LIMIT = 4_000_000  # bytes: a file larger than this is not read again for an excerpt


def render(diag: Diagnostic, source: str | None = None) -> str:
    """One diagnostic, gcc-style, with a caret excerpt of ``source`` (else the one it carries)."""
    if source is None:
        source = getattr(diag, "source", None)
    return diagnostics.render(diag, source)


def show(found: Iterable[Diagnostic], *, err: bool = True, excerpts: bool = True,
         limit: int | None = diagnostics.MAX_SHOWN) -> None:
    """Print the first ``limit`` diagnostics (all when None), each with an excerpt of its source
    when ``excerpts`` and it can be read, then one line that counts the rest."""
    listed, rest = diagnostics.shown(found, limit)
    sources: dict[str, str | None] = {}
    for diag in listed:
        if not excerpts:
            click.echo(diagnostics.render(diag), err=err)
            continue
        source = getattr(diag, "source", None)
        if source is None and diag.span is not None:
            source = _file_text(diag.file, sources)
        click.echo(render(diag, source), err=err)
    if rest:
        click.echo(rest, err=err)


def show_compactly(found: Iterable[Diagnostic], limit: int | None = diagnostics.MAX_SHOWN) -> None:
    """Each diagnostic once, on one line, without excerpt or hint (run's warnings: `check` reviews)."""
    seen: dict[str, Diagnostic] = {}
    for diag in found:
        line = diagnostics.render(Diagnostic(diag.code, diag.message, diag.severity, diag.file,
                                             diag.span, path=diag.path))
        seen.setdefault(line, diag)
    listed, rest = diagnostics.shown(seen.values(), limit)
    for line in list(seen)[: len(listed)]:
        click.echo(line, err=True)
    if rest:
        click.echo(rest, err=True)


def fail(error: DiagnosticError) -> NoReturn:
    """Print the error's diagnostics and exit with the code of its category."""
    show(error.diagnostics)
    sys.exit(EXIT_CODES[category_of(error)])


def _file_text(file: str | None, cache: dict[str, str | None]) -> str | None:
    if not file:
        return None
    if file not in cache:
        try:
            path = Path(file)
            cache[file] = path.read_text(encoding="utf-8") if path.stat().st_size < _EXCERPT_LIMIT else None
        except (OSError, UnicodeDecodeError, ValueError):
            cache[file] = None
    return cache[file]
