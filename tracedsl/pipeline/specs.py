"""The commands on specs: compile, check, decompile, fmt and schema (and compiling for the API).

Each returns text, a workload or diagnostics; none prints or exits. A spec that cannot be
loaded raises :class:`PipelineError` (INPUT, or IO when the file cannot be reached).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from tracedsl.codes import E_UNPRINTABLE
from tracedsl.diagnostics import DiagnosticError
from tracedsl.files import write_atomic
from tracedsl.pipeline.failures import Category, PipelineError, categorised, category_of, io_failure

if TYPE_CHECKING:  # pydantic loads when a spec is compiled, not when the CLI starts
    from tracedsl.diagnostics import Diagnostic
    from tracedsl.ir import Workload
    from tracedsl.loading import LoadedSpec

__all__ = ["Checked", "Compiled", "Formatted", "check", "compile_document", "compile_file",
           "compile_text", "decompile_text", "format_file", "format_files", "schema_text", "write_text"]


@dataclass(frozen=True)
class Compiled:
    """A compiled workload (the IR) and its warnings; errors are raised, not returned."""

    workload: Workload
    diagnostics: list[Diagnostic]
    loaded: LoadedSpec | None = None  # where it came from, for a file (kind, path, sha256)


def compile_file(source: str | Path) -> Compiled:
    """Compile a .trace, spec.json/.toml, reference config, manifest or bundled name."""
    from tracedsl.ir import Workload
    from tracedsl.loading import load_spec

    with categorised():
        loaded = load_spec(source)
    return Compiled(Workload(name=loaded.name, params=loaded.params), list(loaded.warnings), loaded)


def compile_text(text: str, file: str = "<text>") -> Compiled:
    """Compile .trace text; ``file`` is the name diagnostics give it."""
    from tracedsl.language import compile_source

    with categorised(Category.INPUT):
        workload, warnings = compile_source(text, file)
    return Compiled(workload, list(warnings))


def compile_document(source: str | Path, form: str = "json") -> tuple[str, Compiled]:
    """The spec.json (``form`` "json") or spec.toml text ``compile`` writes, and the workload."""
    from tracedsl.io import dump_spec_json, dump_spec_toml, spec_document

    compiled = compile_file(source)
    loaded = compiled.loaded
    document = spec_document(compiled.workload, loaded.source_path, loaded.source_sha256)
    return (dump_spec_toml(document) if form == "toml" else dump_spec_json(document)), compiled


@dataclass(frozen=True)
class Checked:
    """What ``check`` found in one spec: its diagnostics and, when it failed, how."""

    source: str
    diagnostics: list[Diagnostic]
    category: Category | None  # None: no errors; FAILED: errors in the spec; IO: unreachable

    @property
    def ok(self) -> bool:
        return self.category is None


def check(source: str | Path) -> Checked:
    """Load a spec and collect its diagnostics; a bad spec is a finding here, not an error."""
    try:
        compiled = compile_file(source)
    except PipelineError as error:
        category = Category.IO if category_of(error) is Category.IO else Category.FAILED
        return Checked(str(source), error.diagnostics, category)
    return Checked(str(source), compiled.diagnostics, None)


def decompile_text(source: str | Path) -> tuple[str, Compiled]:
    """Canonical .trace text for any spec form, headed by a comment naming where it came from."""
    from tracedsl.language.decompile import decompile

    compiled = compile_file(source)
    loaded = compiled.loaded
    origin = loaded.source_path.name if loaded.source_path else str(source)
    try:
        text = decompile(compiled.workload, f"decompiled by tracedsl from {origin} ({loaded.kind})")
    except DiagnosticError as error:
        located = [located for found in error.diagnostics
                   for located in _located(found, str(source), compiled.workload)]
        raise PipelineError(located, Category.INPUT) from error
    return text, compiled


def _located(found: Diagnostic, file: str, workload: Workload) -> list[Diagnostic]:
    """A decompile diagnostic on the spec's file, and on each field holding the value it names.

    decompile sees values, not where they came from: the fields are found here, by value.
    """
    if found.file is not None or found.path is not None:
        return [found]
    located = replace(found, file=file)
    if found.code != E_UNPRINTABLE:
        return [located]
    value = found.message.split(" ", 1)[0]
    paths = [path for path, number in _numbers(workload.params.model_dump())
             if isinstance(number, float) and not math.isfinite(number) and str(number) == value]
    return [replace(located, path=path) for path in paths] or [located]


def _numbers(tree: object, prefix: str = "") -> Iterator[tuple[str, object]]:
    """(field path, value) of every leaf of a dumped spec."""
    if isinstance(tree, dict):
        for key, item in tree.items():
            yield from _numbers(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(tree, (list, tuple)):
        for index, item in enumerate(tree):
            yield from _numbers(item, f"{prefix}.{index}")
    else:
        yield prefix, tree


@dataclass(frozen=True)
class Formatted:
    """A .trace file and its canonical formatting (or, from :func:`format_files`, why not)."""

    path: Path
    original: str
    formatted: str
    diagnostics: tuple[Diagnostic, ...] = ()  # why it could not be formatted
    category: Category | None = None  # None: formatted; else INPUT (bad syntax) or IO

    @property
    def changed(self) -> bool:
        return self.formatted != self.original

    def diff(self) -> str:
        """A unified diff from the file to its canonical form (empty when it is canonical)."""
        return "".join(difflib.unified_diff(
            self.original.splitlines(keepends=True), self.formatted.splitlines(keepends=True),
            fromfile=str(self.path), tofile=f"{self.path} (formatted)",
        ))


def format_file(path: str | Path) -> Formatted:
    """Format a .trace file canonically (its syntax must be valid; semantics are not checked)."""
    from tracedsl.io import read_source
    from tracedsl.language.format import format_text

    path = Path(path)
    with categorised():
        source = read_source(path)
        formatted = format_text(source.text, str(path))
    return Formatted(path, source.text, formatted)


def format_files(paths: Iterable[str | Path]) -> Iterator[Formatted]:
    """Each file formatted, in order; one that cannot be is a Formatted with its diagnostics."""
    for path in paths:
        try:
            yield format_file(path)
        except PipelineError as error:
            yield Formatted(Path(path), "", "", tuple(error.diagnostics), category_of(error))


def schema_text() -> str:
    """The JSON Schema of spec.json, as committed in specs/spec.schema.json."""
    import json

    from tracedsl.io import spec_schema

    return json.dumps(spec_schema(), indent=2) + "\n"


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically; PipelineError (IO) when it cannot be written."""
    try:
        return write_atomic(path, text)
    except OSError as error:
        raise io_failure(error, str(path), writing=True, what="cannot write") from error
