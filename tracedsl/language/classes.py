"""Lowers session classes: each class's body is the top-level statements overridden by its own, and its problems name it."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from tracedsl.codes import E_CLASS_FRACTIONS, E_CLASS_STATEMENT, E_DUPLICATE, E_INVALID
from tracedsl.diagnostics import Diagnostic, Span
from tracedsl.language import ast
from tracedsl.language.reuse import merge_statements
from tracedsl.language.units import PROBABILITY_UNITS

# What a class cannot give, and why: one of each for the whole trace.
NOT_IN_A_CLASS = {
    "block": "the block size is one for the whole trace",
    "arrivals": "the arrival process is one for the whole trace (each session then draws its class)",
    "latency": "the latency model is one for the whole trace",
    "workload": "the workload's name is one for the whole trace",
    "include": "an include reads statements at the top level only",
    "let": "a let is top-level only (a class may use its name)",
    "class": "a class cannot hold classes",
}
# Top-level statements a class does not inherit: they are the trace's, not a body's.
NOT_INHERITED = frozenset({"workload", "arrivals", "class", "let", "include"})
_PERCENT = PROBABILITY_UNITS
_PLAIN_SHARE = "a number without % is a share of 1 (0.3 is 30%): write 30%, or 0.3"
# The class a field path of the IR belongs to, and that path inside the class's body.
_CLASS_PATH = re.compile(r"^classes\.(\d+)\.params(?:\.(.*))?$")
_CLASS_IN_MESSAGE = re.compile(r"\bclasses\.\d+\.params(?:\.|: )")


@dataclass(frozen=True)
class ClassSource:
    """Where a class was written: its name, file, whole span and name's span."""

    name: str
    file: str
    span: Span
    name_span: Span

    def holds(self, file: str | None, span: Span | None) -> bool:
        """Whether ``span`` (in ``file``) lies inside the class's braces: written by the class."""
        if span is None or file != self.file:
            return False
        start = (span.line, span.column)
        return (self.span.line, self.span.column) <= start and (
            self.span.end_line is None or start < (self.span.end_line, self.span.end_column or 0))


def body_statements(top: list[ast.Statement], own: list[ast.Statement]) -> list[ast.Statement]:
    """A class's whole body: the top-level statements it inherits, overridden by its own.

    Blocks merge item by item (its ``turn { output ... }`` replaces the output only), as an
    including file's do. The class's ending mode wins: its ``turns`` without ``reset`` switches
    the inherited reset off (as ``turns`` does at the top level), and its ``reset`` without
    ``turns`` the inherited turn count.
    """
    words = {statement.keyword for statement in own}
    dropped = set(NOT_INHERITED)
    if "turns" in words and "reset" not in words:
        dropped.add("reset")
    if "reset" in words and "turns" not in words:
        dropped.add("turns")
    return merge_statements([s for s in top if s.keyword not in dropped], own)


def class_of_path(path: str) -> tuple[int, str] | None:
    """(class index, path inside its body) of ``classes.N.params.…``; None for another path."""
    match = _CLASS_PATH.match(path or "")
    return (int(match.group(1)), match.group(2) or "") if match else None


class ClassLowering:
    """Mixed into the lowering: needs its ``file``, ``at``, ``scope``, ``spans``, ``errors``,
    ``error``, ``exact``, ``_unique`` and ``statements``."""

    file: str
    errors: list[Diagnostic]

    def classes(self, top: list[ast.Statement], statements: list[ast.Statement]) -> list[dict[str, Any]]:
        """Each class as the IR holds it: name, fraction, what it shares, and its whole body."""
        found: list[dict[str, Any]] = []
        self.class_sources: list[ClassSource] = []
        fractions: list[tuple[Decimal | None, ast.Number]] = []
        seen: dict[str, ast.Statement] = {}
        for statement in statements:
            self.at = statement.file or self.file
            index = len(found)
            twice = statement.name in seen
            # a class defined twice still counts in the sum: its fraction was meant
            fraction = self.exact(statement.value, "classes.again.fraction" if twice else f"classes.{index}.fraction",
                                  _PERCENT)
            if fraction is not None and not 0 < fraction <= 1:
                self.error(E_INVALID, f"class '{statement.name}' has a fraction of {statement.value.text}: a "
                           "class's share of the sessions lies above 0% and at most 100%", statement.value.span,
                           hint="leave a class out rather than give it 0%" if fraction <= 0 else _PLAIN_SHARE)
                fraction = None
            fractions.append((fraction, statement.value))
            if twice:
                self.error(E_DUPLICATE, f"class '{statement.name}' is defined twice", statement.name_span,
                           related=[seen[statement.name].name_span], hint="give each class a name of its own")
                continue
            seen[statement.name] = statement
            header = Span(statement.span.line, statement.span.column,
                          statement.value.span.end_line, statement.value.span.end_column)  # class NAME PERCENT
            if not index:
                self.spans["classes"] = header
            self.spans[f"classes.{index}"] = header
            self.spans[f"classes.{index}.name"] = statement.name_span
            self.spans[f"classes.{index}.params"] = header
            own = [item for item in statement.items or () if self._allowed(item)]
            self.class_sources.append(ClassSource(statement.name, self.at, statement.span, statement.name_span))
            self.scope = f"classes.{index}.params."
            try:
                body, _ = self.statements(body_statements(top, own))
            finally:
                self.scope = ""
            prefix = next((item for item in own if item.keyword == "prefix"), None)
            written = {item.keyword for item in (prefix.items or ())} if prefix is not None else set()
            found.append({
                "name": statement.name,
                "fraction": float(fraction) if fraction is not None else None,
                "shares_global": "global" not in written,
                "shares_groups": "groups" not in written,
                "params": body,
            })
        self._check_fractions(fractions)
        return found

    def _allowed(self, item: ast.Statement) -> bool:
        why = NOT_IN_A_CLASS.get(item.keyword)
        if why is None:
            return True
        self.at = item.file or self.file
        self.error(E_CLASS_STATEMENT, f"a class cannot give '{item.keyword}': {why}", item.span,
                   hint="move it to the top level" if item.keyword not in ("class", "workload") else None)
        return False

    def _check_fractions(self, fractions: list[tuple[Decimal | None, ast.Number]]) -> None:
        if any(value is None for value, _ in fractions):
            return  # a fraction that is not one was reported already
        total = sum((value for value, _ in fractions), Decimal(0))
        if total == 1:
            return
        numbers = [number for _, number in fractions]
        shown = f"{(total * 100).normalize():f}%"
        parts = " + ".join(number.text for number in numbers)
        self.error(E_CLASS_FRACTIONS, f"the class fractions add up to {shown} ({parts}), not 100%",
                   numbers[0].span, related=[number.span for number in numbers[1:]],
                   hint="each session draws one class: give fractions that add up to 100%")

    # Diagnostics of the classes' bodies -----------------------------------------------------

    def for_classes(self, found: list[tuple[Diagnostic, int | None]]) -> list[Diagnostic]:
        """The diagnostics, each said once: one that several classes inherit from the same
        top-level statement names them all (and one the top level has itself names none)."""
        groups: dict[tuple, list] = {}
        for diag, index in found:
            key = (diag.code, diag.severity, diag.file, diag.span, diag.message)
            entry = groups.setdefault(key, [diag, [], False])
            if index is None:
                entry[2] = True
            elif index not in entry[1]:
                entry[1].append(index)
        return [self._named(diag, indices) if indices and not top else diag
                for diag, indices, top in groups.values()]

    def _named(self, diag: Diagnostic, indices: list[int]) -> Diagnostic:
        sources = [self.class_sources[i] for i in indices if i < len(self.class_sources)]
        if not sources:
            return diag
        names = [f"'{source.name}'" for source in sources]
        said = f"class {names[0]}" if len(names) == 1 else f"classes {', '.join(names[:-1])} and {names[-1]}"
        own = len(sources) == 1 and sources[0].holds(diag.file, diag.span)
        if not own:
            said += " (inherited from the top level)" if diag.span is not None else ""
        related = diag.related
        if diag.is_error and not own:
            related = (*related, *(Diagnostic(diag.code, f"(class '{s.name}')", diag.severity, s.file, s.name_span)
                                   for s in sources))
        return replace(diag, message=f"{said}: {diag.message}", related=related)


def body_message(message: str) -> str:
    """An IR message about a class's body without the ``classes.N.params`` prefix (the
    diagnostic names the class in words)."""
    return _CLASS_IN_MESSAGE.sub("", message)
