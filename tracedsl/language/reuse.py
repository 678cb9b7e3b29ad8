"""Resolves reuse in a parsed file: each ``include`` read in its place, each ``let`` name replaced by its value."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from tracedsl.codes import E_DUPLICATE, E_INCLUDE, E_LET
from tracedsl.diagnostics import Diagnostic, DiagnosticError, Span, normalise_newlines
from tracedsl.language import ast
from tracedsl.language.parser import parse
from tracedsl.language.validate import did_you_mean

# Statements whose value is a distribution (a law); every other statement's value is a number.
LAW_STATEMENTS = frozenset({"session", "new_tokens", "output", "turns", "delay", "calls", "message", "think",
                            "compact", "returns"})
LAW_OPTIONS = frozenset({"fanout"})  # a subagent's fan-out is a law, its other options values
# Blocks an overriding file merges item by item: ``turn { output ... }`` keeps the included
# file's new_tokens and delay; a ``class`` of the same name merges its statements so.
MERGED_BLOCKS = frozenset({"prefix", "turn", "class", "request"})


@dataclass
class Resolved:
    """A file's statements with no ``let``, ``include`` or name left, and the included texts."""

    spec: ast.Spec
    sources: dict[str, str] = field(default_factory=dict)  # an included file's text, by its name
    included_at: dict[str, tuple[str, Span]] = field(default_factory=dict)  # file → its include

    def noted(self, diagnostics) -> list[Diagnostic]:
        """The diagnostics, each in an included file noting where it was included."""
        return [_note_include(d, self.included_at) for d in diagnostics]


@dataclass(frozen=True)
class _Let:
    value: ast.Number | ast.Distribution
    file: str


def resolve(spec: ast.Spec, file: str = "<input>") -> Resolved:
    """The spec with its includes merged (later statements override) and its lets substituted.

    Errors (an unknown name, a missing include, a cycle) are collected and raised together as
    a DiagnosticError; each carries the source text of the file it points into.
    """
    if not any(_uses_reuse(s) for s in spec.statements):
        return Resolved(spec)
    resolver = _Resolver()
    statements, _ = resolver.file_statements(spec, file, (file,))
    if resolver.errors:
        noted = [_note_include(d, resolver.included_at) for d in resolver.errors]
        raise DiagnosticError(attach_sources(noted, resolver.sources))
    return Resolved(ast.Spec(tuple(statements), spec.comments), resolver.sources, resolver.included_at)


def attach_sources(diagnostics, sources: dict[str, str]) -> list[Diagnostic]:
    """The diagnostics, each pointing into an included file carrying that file's text."""
    return [_attach(d, sources) for d in diagnostics]


def _attach(diag: Diagnostic, sources: dict[str, str]) -> Diagnostic:
    related = tuple(_attach(other, sources) for other in diag.related)
    source = diag.source if diag.source is not None else sources.get(diag.file or "")
    return replace(diag, related=related, source=source)


def _note_include(diag: Diagnostic, included_at: dict[str, tuple[str, Span]]) -> Diagnostic:
    notes, file = [], diag.file
    while file in included_at and len(notes) < len(included_at):
        file, span = included_at[file]
        notes.append(Diagnostic(diag.code, "(included here)", diag.severity, file, span))
    return replace(diag, related=(*diag.related, *notes)) if notes else diag


def _uses_reuse(statement: ast.Statement) -> bool:
    return statement.keyword in ("let", "include") or _has_reference(statement)


def _has_reference(node: Any) -> bool:
    if isinstance(node, ast.Reference):
        return True
    if isinstance(node, tuple):
        return any(_has_reference(item) for item in node)
    if is_dataclass(node):
        return any(_has_reference(getattr(node, f.name)) for f in fields(node))
    return False


class _Resolver:
    def __init__(self):
        self.errors: list[Diagnostic] = []
        self.sources: dict[str, str] = {}
        self.included_at: dict[str, tuple[str, Span]] = {}

    def file_statements(
        self, spec: ast.Spec, file: str, chain: tuple[str, ...]
    ) -> tuple[list[ast.Statement], dict[str, _Let]]:
        """One file's statements in order of precedence, and the lets it leaves defined."""
        layers: list[tuple[list[ast.Statement], object]] = []  # each include's, then the file's own
        lets: dict[str, _Let] = {}
        # Order-free, so fmt may move includes and lets to the top: the included files' names,
        # shadowed by this file's lets (whose values may use any name), seen by every statement.
        for statement in spec.statements:
            if statement.keyword == "include":
                included = self.include(statement, file, chain)
                if included is not None:
                    layers.append((included[0], object()))  # a later include overrides an earlier one
                    lets.update(included[1])
        scope = _Scope(self, lets, file)
        # A let inside a class is refused where it stands (lowering, E118); its name still
        # resolves, so that error comes alone, not with one for each use.
        in_classes = list(_bodies_items(spec.statements))
        for statement in (*spec.statements, *in_classes):
            if statement.keyword != "let":
                continue
            if statement.name in scope.own:
                self.error(
                    E_DUPLICATE, f"'{statement.name}' is defined twice", statement.span, file,
                    related=[scope.own[statement.name].span], hint="remove one of them",
                )
                continue
            scope.own[statement.name] = statement
        for name in scope.own:
            scope.get(name)
        own = [self.statement(s, scope, file) for s in spec.statements if s.keyword not in ("let", "include")]
        # The included statements come first, wherever the include stands: the file's own
        # statements override them, so moving an include (fmt does) changes nothing.
        merged: list[tuple[ast.Statement, object]] = []  # each with the origin it came from
        for statements, origin in (*layers, (own, None)):
            for statement in statements:
                _merge(merged, statement, origin)
        return [statement for statement, _ in merged], {**lets, **scope.values}

    def include(self, statement: ast.Statement, file: str, chain: tuple[str, ...]):
        # Relative to the including file; text that is no file (``<stdin>``) includes from here.
        from_text = file.startswith("<")
        path = (Path.cwd() if from_text else Path(file).parent) / statement.value
        shown = statement.value if from_text or Path(statement.value).is_absolute() else str(path)
        route = " includes ".join((*chain, shown))
        if any(_same_file(path, earlier) for earlier in chain):
            self.error(E_INCLUDE, f"include cycle: {route}", statement.span, file,
                       hint="a file cannot include itself, directly or through the files it includes")
            return None
        try:
            text = normalise_newlines(path.read_bytes().decode("utf-8-sig"))
        except (OSError, UnicodeDecodeError) as exc:
            reason = "no such file" if isinstance(exc, FileNotFoundError) else (
                "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else (exc.strerror or str(exc)).lower()
            )
            self.error(E_INCLUDE, f"cannot include {shown}: {reason} ({route})", statement.span, file,
                       hint="the path is relative to the including file")
            return None
        self.sources[shown] = text
        self.included_at.setdefault(shown, (file, statement.span))
        try:
            spec = parse(text, shown)
        except DiagnosticError as error:
            self.errors.extend(error.diagnostics)  # resolve() notes where the file was included
            return None
        statements, lets = self.file_statements(spec, shown, (*chain, shown))
        return [_from_file(s, shown) for s in statements], lets

    def statement(self, statement: ast.Statement, lets: _Scope, file: str) -> ast.Statement:
        expects = "law" if statement.keyword in LAW_STATEMENTS else "value"
        value = self.substitute(statement.value, expects, lets, file)
        options = tuple(self.option(o, lets, file) for o in statement.options)
        items = statement.items
        if items is not None:
            items = tuple(
                self.statement(i, lets, file) if isinstance(i, ast.Statement) else self.substitute(i, None, lets, file)
                for i in items
            )
        return replace(statement, value=value, options=options, items=items)

    def option(self, option: ast.Option, lets: _Scope, file: str) -> ast.Option:
        if option.keyword in LAW_OPTIONS and isinstance(option.value, ast.Reference):
            return replace(option, value=self.lookup(option.value, "law", lets, file))
        return self.substitute(option, "value", lets, file)

    def substitute(self, node: Any, expects: str | None, lets: _Scope, file: str) -> Any:
        """``node`` with every name replaced by its let's value; ``expects``: what goes here."""
        if isinstance(node, ast.Reference):
            return self.lookup(node, expects, lets, file)
        if isinstance(node, ast.Component):
            law = self.substitute(node.distribution, "law", lets, file)
            return replace(node, distribution=law)
        if isinstance(node, ast.Entry):
            return replace(node, value=self.substitute(node.value, None, lets, file))
        if isinstance(node, (ast.Distribution, ast.Option, ast.Argument, ast.TurnRange)):
            changes = {}
            for f in fields(node):
                value = getattr(node, f.name)
                if isinstance(value, tuple):
                    changes[f.name] = tuple(self.substitute(v, "value", lets, file) for v in value)
                elif isinstance(value, (ast.Reference, ast.TurnRange)):
                    changes[f.name] = self.substitute(value, "value", lets, file)
            return replace(node, **changes) if changes else node
        return node

    def lookup(self, reference: ast.Reference, expects: str | None, lets: _Scope, file: str):
        let = lets.get(reference.name, reference)
        if let is None:
            if reference.name in lets.failed:
                return reference  # its own definition was already reported
            names = lets.names()
            hint = did_you_mean(reference.name, names) or (
                f"define it: let {reference.name} = ..." if not names else f"defined: {', '.join(names)}"
            )
            self.error(E_LET, f"'{reference.name}' is not defined", reference.span, file, hint=hint)
            return reference
        is_law = isinstance(let.value, ast.Distribution)
        if expects is not None and is_law != (expects == "law"):
            wanted, given = ("a distribution", "a number") if expects == "law" else ("a number", "a distribution")
            self.error(E_LET, f"'{reference.name}' is {given}; {wanted} goes here", reference.span, file)
            return reference
        if let.file != file:
            return _respan(let.value, reference.span)  # its own spans are in another file
        return replace(let.value, span=reference.span)

    def error(self, code: str, message: str, span: Span, file: str, *, related=(), hint=None) -> None:
        others = tuple(Diagnostic(code, "(and here)", file=file, span=s) for s in related)
        self.errors.append(Diagnostic(code, message, file=file, span=span, hint=hint, related=others))


class _Scope:
    """The names a file's statements see: its own lets, resolved on first use, over the included ones."""

    def __init__(self, resolver: _Resolver, included: dict[str, _Let], file: str):
        self.resolver = resolver
        self.included = included
        self.file = file
        self.own: dict[str, ast.Statement] = {}
        self.values: dict[str, _Let] = {}
        self.failed: set[str] = set()
        self.resolving: list[str] = []

    def names(self) -> list[str]:
        return list(dict.fromkeys([*self.own, *self.included]))

    def get(self, name: str, reference: ast.Reference | None = None) -> _Let | None:
        if name in self.values:
            return self.values[name]
        statement = self.own.get(name)
        if statement is None:
            return self.included.get(name)
        if name in self.failed:
            return None
        if name in self.resolving:
            cycle = " -> ".join([*self.resolving[self.resolving.index(name):], name])
            self.resolver.error(E_LET, f"'{name}' is defined through itself: {cycle}",
                                (reference or statement).span, self.file)
            self.failed.add(name)
            return None
        self.resolving.append(name)
        value = self.resolver.substitute(statement.value, None, self, self.file)
        self.resolving.pop()
        if not isinstance(value, (ast.Number, ast.Distribution)) or _has_reference(value):
            self.failed.add(name)
            return None
        self.values[name] = _Let(value, self.file)
        return self.values[name]


def _bodies_items(statements):
    """The statements inside class and subagent bodies, however deep."""
    for statement in statements:
        if statement.keyword in ("class", "subagent"):
            yield from statement.items or ()
            yield from _bodies_items(statement.items or ())


def merge_statements(base, overriding) -> list[ast.Statement]:
    """``base`` overridden by ``overriding``, as an include is by its including file (a class's
    body is so merged into the top-level statements): blocks item by item, other statements
    whole; a repeat within one of them stays a repeat (lowering reports it)."""
    merged: list[tuple[ast.Statement, object]] = []
    for statements, origin in ((base, object()), (overriding, None)):
        for statement in statements:
            _merge(merged, statement, origin)
    return [statement for statement, _ in merged]


def _merge(merged: list, statement: ast.Statement, origin: object) -> None:
    """Add ``statement``: it overrides one of the same keyword (a class: of the same name) from
    another origin; a repeat from its own origin stays a repeat (lowering reports it)."""
    for index, (earlier, earlier_origin) in enumerate(merged):
        if earlier.keyword != statement.keyword or earlier_origin is origin:
            continue
        if statement.keyword == "class" and earlier.name != statement.name:
            continue
        if statement.keyword in MERGED_BLOCKS and statement.items is not None and earlier.items is not None:
            kept = object()  # the earlier block's items, each overridable
            items: list = [(item, kept) for item in earlier.items or ()]
            for item in statement.items or ():
                _merge(items, item, origin)
            statement = replace(statement, items=tuple(item for item, _ in items))
        merged[index] = (statement, origin)
        return
    merged.append((statement, origin))


def _from_file(statement: ast.Statement, file: str) -> ast.Statement:
    """An included statement, marked with the file it (and each of its items) came from."""
    items = statement.items
    if items is not None:
        items = tuple(_from_file(i, file) if isinstance(i, ast.Statement) else i for i in items)
    return replace(statement, items=items, file=statement.file or file)


def _respan(node: Any, span: Span) -> Any:
    if isinstance(node, tuple):
        return tuple(_respan(item, span) for item in node)
    if not is_dataclass(node):
        return node
    changes = {}
    for f in fields(node):
        value = getattr(node, f.name)
        if isinstance(value, Span):
            changes[f.name] = span
        elif isinstance(value, tuple) or is_dataclass(value):
            changes[f.name] = _respan(value, span)
    return replace(node, **changes)


def _same_file(path: Path, name: str) -> bool:
    if name.startswith("<"):
        return False
    try:
        return path.resolve() == Path(name).resolve()
    except OSError:  # pragma: no cover - resolve() on an unreachable path
        return False
