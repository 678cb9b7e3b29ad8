"""Reading and writing the file formats around the IR: source text, JSON with positions, spec.json/spec.toml."""

from __future__ import annotations

import bisect
import hashlib
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracedsl import codes
from tracedsl.diagnostics import (
    Diagnostic,
    DiagnosticError,
    Severity,
    Span,
    line_starts,
    normalise_newlines,
    position,
)
from tracedsl.ir import SPEC_FORMAT_VERSION, Workload

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

# This module's diagnostic codes (tracedsl.codes defines them; the names stay importable here).
E_MISSING, E_UNREADABLE = codes.E_MISSING, codes.E_UNREADABLE
E_NOT_TEXT, E_EMPTY = codes.E_NOT_TEXT, codes.E_EMPTY
E_BAD_JSON, E_BAD_TOML = codes.E_BAD_JSON, codes.E_BAD_TOML

# How deep arrays and objects (tables) of a JSON or TOML spec may nest: a spec needs four
# levels; the limit keeps every pass over the document far from Python's recursion limit.
MAX_NESTING = 100

# The keys of a spec.json/spec.toml, in the order compile writes them.
SPEC_KEYS = ("format_version", "workload", "source_file", "source_sha256", "generation_params")


@dataclass(frozen=True)
class SourceFile:
    """A file read as text, with the bytes' sha256."""

    path: Path
    text: str
    sha256: str

    @property
    def display(self) -> str:
        return str(self.path)


def read_source(path: Path) -> SourceFile:
    """Read a UTF-8 file; a missing, unreadable, empty or binary file is a located diagnostic."""
    display = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DiagnosticError(Diagnostic(E_MISSING, "no such file", file=display)) from None
    except IsADirectoryError:
        raise DiagnosticError(
            Diagnostic(E_UNREADABLE, "is a directory, not a file", file=display)
        ) from None
    except OSError as exc:
        raise DiagnosticError(
            Diagnostic(E_UNREADABLE, f"cannot read: {exc.strerror or exc}", file=display)
        ) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start].decode("utf-8-sig")
        line, column = position(before, len(before))
        raise DiagnosticError(
            Diagnostic(
                E_NOT_TEXT,
                f"not UTF-8 text (byte 0x{raw[exc.start]:02x})",
                file=display,
                span=Span(line, column),
                source=before,
            )
        ) from None
    nul = text.find("\x00")
    if nul >= 0:
        line, column = position(text, nul)
        raise DiagnosticError(
            Diagnostic(
                E_NOT_TEXT,
                "a NUL byte: this is a binary file, not text",
                file=display,
                span=Span(line, column, line, column + 1),
                source=text,
            )
        )
    return SourceFile(path, text, hashlib.sha256(raw).hexdigest())


# ---------------------------------------------------------------------------------------------
# JSON with positions


@dataclass
class JsonPositions:
    """Where each value (and each object key) of a JSON text starts, keyed by path tuples."""

    line_starts: list[int]
    values: dict[tuple, int] = field(default_factory=dict)
    keys: dict[tuple, int] = field(default_factory=dict)

    def span(self, path: tuple, *, key: bool = False) -> Span | None:
        """The span of ``path`` (its key when ``key`` and it is an object member), or of the
        nearest enclosing value that exists (a missing field points at its parent object)."""
        path = tuple(path)
        while True:
            offset = self.keys.get(path) if key else None
            if offset is None:
                offset = self.values.get(path)
            if offset is not None:
                return self._span(offset)
            if not path:
                return None
            path = path[:-1]

    def _span(self, offset: int) -> Span:
        index = bisect.bisect_right(self.line_starts, offset) - 1
        return Span(index + 1, offset - self.line_starts[index] + 1)


def parse_json(text: str, file: str) -> tuple[Any, JsonPositions]:
    """Parse JSON text; errors carry the line and column, NaN/Infinity are refused where they stand."""
    if not text.strip():
        raise DiagnosticError(Diagnostic(E_EMPTY, "empty file: expected a JSON object", file=file))
    try:
        # NaN and Infinity are parsed as markers first, so they can be refused at their place.
        data = json.loads(text, parse_constant=_NonJsonConstant)
    except json.JSONDecodeError as exc:
        line, column = position(text, exc.pos)  # json counts lines by \n alone
        raise DiagnosticError(
            Diagnostic(E_BAD_JSON, f"invalid JSON: {exc.msg}", file=file, span=Span(line, column))
        ) from None
    except RecursionError:
        # Valid up to a nesting too deep (an error before it would have stopped json first).
        deep = _too_deep(text, _JSON_NESTING)
        raise DiagnosticError(_nested_too_deep(E_BAD_JSON, "JSON", text, deep, file)) from None
    except ValueError as exc:
        raise DiagnosticError(Diagnostic(E_BAD_JSON, f"invalid JSON: {exc}", file=file)) from None
    deep = _too_deep(text, _JSON_NESTING)
    if deep is not None:
        raise DiagnosticError(_nested_too_deep(E_BAD_JSON, "JSON", text, deep, file))
    positions = JsonPositions(list(line_starts(text)))
    try:
        _JsonScanner(text, positions).value(())
    except (IndexError, ValueError, RecursionError):  # pragma: no cover - text already parsed
        pass
    constant = _first_constant(data, ())
    if constant is not None:
        path, name = constant
        raise DiagnosticError(
            JsonLocator(file, positions).at(
                path,
                E_BAD_JSON,
                f"invalid JSON: {name} is not valid JSON",
                hint="JSON numbers are finite; write the value, or null where none is meant",
            )
        )
    return data, positions


# What opens and closes a level of nesting, and what to pass over whole: strings (and in TOML
# comments, where a bracket means nothing).
_JSON_NESTING = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
_TOML_NESTING = re.compile(
    r'"""(?:[^\\]|\\.)*?"""|\'\'\'.*?\'\'\'|"(?:[^"\\\r\n]|\\.)*"|\'[^\'\r\n]*\'|#[^\r\n]*|[\[\]{}]',
    re.DOTALL,
)


def _too_deep(text: str, tokens: re.Pattern) -> int | None:
    """The offset of the bracket that opens level MAX_NESTING + 1, if one does (one pass, no recursion).

    On text that is valid (up to that bracket), strings are passed over exactly.
    """
    depth = 0
    for match in tokens.finditer(text):
        mark = match.group()
        if mark in ("[", "{"):
            depth += 1
            if depth > MAX_NESTING:
                return match.start()
        elif mark in ("]", "}"):
            depth -= 1
    return None


def _nested_too_deep(code: str, form: str, text: str, offset: int | None, file: str) -> Diagnostic:
    span = None
    if offset is not None:
        line, column = position(text, offset)
        span = Span(line, column, line, column + 1)
    return Diagnostic(
        code,
        f"invalid {form}: nested more than {MAX_NESTING} deep",
        file=file,
        span=span,
        hint="a spec nests four levels at most",
    )


class _NonJsonConstant(str):
    """NaN, Infinity or -Infinity as parsed, until it is reported at its position."""


def _first_constant(value: Any, path: tuple) -> tuple[tuple, str] | None:
    """The path and spelling of the first NaN/Infinity in ``value``, in document order."""
    stack = [(value, path)]
    while stack:  # iterative: a deeply nested document must not hit the recursion limit
        node, where = stack.pop()
        if isinstance(node, _NonJsonConstant):
            return where, str(node)
        if isinstance(node, dict):
            stack.extend(((child, (*where, key)) for key, child in reversed(node.items())))
        elif isinstance(node, list):
            stack.extend(((child, (*where, i)) for i, child in reversed(list(enumerate(node)))))
    return None


class JsonLocator:
    """Makes diagnostics for paths in a JSON document, with line and column when known."""

    def __init__(self, file: str, positions: JsonPositions | None):
        self.file = file
        self.positions = positions

    def at(
        self,
        path: tuple,
        code: str,
        message: str,
        *,
        key: bool = False,
        severity: Severity = Severity.ERROR,
        hint: str | None = None,
        prefix: tuple = (),
    ) -> Diagnostic:
        full = (*prefix, *path)
        span: Span | None = self.positions.span(full, key=key) if self.positions else None
        dotted = ".".join(str(p) for p in full) or None
        return Diagnostic(
            code, message, severity, file=self.file, span=span, hint=hint, path=dotted
        )


class _JsonScanner:
    """A second pass over JSON text already known to be valid, recording where values start."""

    _SPACE = re.compile(r"[ \t\r\n]*")
    _STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
    _SCALAR = re.compile(r"[^\s,\]}]+")

    def __init__(self, text: str, positions: JsonPositions):
        self.text = text
        self.pos = 0
        self.positions = positions

    def skip(self) -> None:
        self.pos = self._SPACE.match(self.text, self.pos).end()

    def value(self, path: tuple) -> None:
        self.skip()
        self.positions.values[path] = self.pos
        char = self.text[self.pos]
        if char == "{":
            self.pos += 1
            self.skip()
            if self.text[self.pos] == "}":
                self.pos += 1
                return
            while True:
                self.skip()
                key_start = self.pos
                key = json.loads(self.string())
                self.positions.keys[(*path, key)] = key_start
                self.skip()
                self.pos += 1  # ':'
                self.value((*path, key))
                self.skip()
                char = self.text[self.pos]
                self.pos += 1
                if char == "}":
                    return
        elif char == "[":
            self.pos += 1
            self.skip()
            if self.text[self.pos] == "]":
                self.pos += 1
                return
            index = 0
            while True:
                self.value((*path, index))
                index += 1
                self.skip()
                char = self.text[self.pos]
                self.pos += 1
                if char == "]":
                    return
        elif char == '"':
            self.string()
        else:
            self.pos = self._SCALAR.match(self.text, self.pos).end()

    def string(self) -> str:
        match = self._STRING.match(self.text, self.pos)
        self.pos = match.end()
        return match.group()


# ---------------------------------------------------------------------------------------------
# TOML


_TOML_WHERE = re.compile(r"\(at line (\d+), column (\d+)\)")


def parse_toml(text: str, file: str) -> dict:
    """Parse TOML text; errors carry the line and column tomllib reports.

    A lone ``\\r`` ends a line here as in a .trace file (TOML itself allows only ``\\n`` and
    ``\\r\\n``), so every line end is made ``\\n`` first: lines and columns stay the same.
    """
    if not text.strip():
        raise DiagnosticError(Diagnostic(E_EMPTY, "empty file: expected a TOML spec", file=file))
    try:
        data = tomllib.loads(normalise_newlines(text))
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        where = _TOML_WHERE.search(message)
        span = Span(int(where.group(1)), int(where.group(2))) if where else None
        message = _TOML_WHERE.sub("", message).strip()
        raise DiagnosticError(
            Diagnostic(E_BAD_TOML, f"invalid TOML: {message}", file=file, span=span)
        ) from None
    except RecursionError:
        deep = _too_deep(text, _TOML_NESTING)
        raise DiagnosticError(_nested_too_deep(E_BAD_TOML, "TOML", text, deep, file)) from None
    deep = _too_deep(text, _TOML_NESTING)
    if deep is not None:
        raise DiagnosticError(_nested_too_deep(E_BAD_TOML, "TOML", text, deep, file))
    return data


# ---------------------------------------------------------------------------------------------
# spec.json / spec.toml


def spec_document(
    workload: Workload, source_path: Path | None, source_sha256: str | None
) -> dict[str, Any]:
    """What compile writes: format version, workload name, source name and hash, the params."""
    return {
        "format_version": SPEC_FORMAT_VERSION,
        "workload": workload.name,
        "source_file": source_path.name if source_path else None,
        "source_sha256": source_sha256,
        "generation_params": workload.params.generation_params(),
    }


def spec_schema() -> dict[str, Any]:
    """The JSON Schema of a spec.json: the document around the IR's GenerationParams."""
    from tracedsl.ir import GenerationParams

    params = GenerationParams.model_json_schema(ref_template="#/$defs/{model}")
    definitions = params.pop("$defs", {})
    if "GenerationParams" not in definitions:  # a recursive model is already a definition
        definitions["GenerationParams"] = params
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://github.com/tracedsl/tracedsl/specs/spec.schema.json",
        "title": "tracedsl spec",
        "description": "A compiled workload: its name, its source, and the reference-shaped "
        "generation_params that AIPerf's agentic-code generator also reads.",
        "type": "object",
        "additionalProperties": False,
        "required": ["format_version", "workload", "generation_params"],
        "properties": {
            "format_version": {"const": SPEC_FORMAT_VERSION},
            "workload": {"type": "string", "minLength": 1},
            "source_file": {"type": ["string", "null"]},
            "source_sha256": {"type": ["string", "null"], "pattern": "^[0-9a-f]{64}$"},
            "generation_params": {"$ref": "#/$defs/GenerationParams"},
        },
        "$defs": definitions,
    }


def dump_spec_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2) + "\n"


def dump_spec_toml(document: dict[str, Any]) -> str:
    """TOML has no null: a field that is none is left out (loading puts the none back)."""
    import tomli_w

    return tomli_w.dumps(_without_none(document))


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_none(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_none(item) for item in value]
    return value
