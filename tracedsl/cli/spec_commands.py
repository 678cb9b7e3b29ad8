"""CLI commands on specs: compile, check, decompile, fmt, schema."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import click

from tracedsl.cli import exitcodes
from tracedsl.diagnostics import Diagnostic, DiagnosticError, render


def _read_for_excerpt(file: str | None, cache: dict) -> str | None:
    if not file or file in cache:
        return cache.get(file) if file else None
    try:
        path = Path(file)
        cache[file] = path.read_text(encoding="utf-8") if path.stat().st_size < 4_000_000 else None
    except (OSError, UnicodeDecodeError, ValueError):
        cache[file] = None
    return cache[file]


def report(diagnostics: list[Diagnostic]) -> None:
    """Print diagnostics to stderr, each with an excerpt of its source when it can be read."""
    sources: dict = {}
    for diag in diagnostics:
        click.echo(render(diag, _read_for_excerpt(diag.file, sources)), err=True)


def fail(error: DiagnosticError) -> None:
    """Report a DiagnosticError and exit with the code of its class (input or I/O)."""
    from tracedsl.loading import is_io_problem

    report(error.diagnostics)
    sys.exit(exitcodes.IO if is_io_problem(error) else exitcodes.INPUT)


def write_output(text: str, output: Path | None) -> None:
    """Write to ``output`` atomically (a temporary file renamed into place), or to stdout."""
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{output.name}.", dir=output.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(text)
            os.replace(temporary, output)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as exc:
        click.echo(f"{output}: error: cannot write: {exc.strerror or exc}", err=True)
        sys.exit(exitcodes.IO)


def _load(source: str):
    from tracedsl.loading import load_spec

    try:
        loaded = load_spec(source)
    except DiagnosticError as error:
        fail(error)
    report(list(loaded.warnings))
    return loaded


@click.command("compile")
@click.argument("source", metavar="FILE|NAME")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write here (default: stdout).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "toml"]),
    help="Default: from -o's suffix, else json.",
)
def compile_command(source: str, output: Path | None, fmt: str | None) -> None:
    """Compile a .trace, spec, reference config or manifest into a spec.json (or spec.toml)."""
    from tracedsl.io import dump_spec_json, dump_spec_toml, spec_document
    from tracedsl.ir import Workload

    loaded = _load(source)
    workload = Workload(name=loaded.name, params=loaded.params)
    document = spec_document(workload, loaded.source_path, loaded.source_sha256)
    if fmt is None:
        fmt = "toml" if output is not None and output.suffix.lower() == ".toml" else "json"
    write_output(dump_spec_toml(document) if fmt == "toml" else dump_spec_json(document), output)
    if output is not None:
        click.echo(f"wrote {output} (workload '{loaded.name}')", err=True)


@click.command("check")
@click.argument("sources", nargs=-1, required=True, metavar="FILE|NAME...")
def check_command(sources: tuple[str, ...]) -> None:
    """Report the diagnostics of each spec; write nothing. Exit 1 if any has errors."""
    from tracedsl.loading import is_io_problem, load_spec

    worst = exitcodes.OK
    for source in sources:
        try:
            loaded = load_spec(source)
        except DiagnosticError as error:
            report(error.diagnostics)
            code = exitcodes.IO if is_io_problem(error) else exitcodes.FAILED
            worst = max(worst, code)
            continue
        report(list(loaded.warnings))
        warned = f", {len(loaded.warnings)} warning(s)" if loaded.warnings else ""
        click.echo(f"{source}: ok{warned}", err=True)
    sys.exit(worst)


@click.command("decompile")
@click.argument("source", metavar="FILE|NAME")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write here (default: stdout).",
)
def decompile_command(source: str, output: Path | None) -> None:
    """Print canonical .trace text for a spec.json/spec.toml, reference config or manifest."""
    from tracedsl.ir import Workload
    from tracedsl.language.decompile import decompile

    loaded = _load(source)
    origin = loaded.source_path.name if loaded.source_path else source
    header = f"decompiled by tracedsl from {origin} ({loaded.kind})"
    try:
        text = decompile(Workload(name=loaded.name, params=loaded.params), header)
    except DiagnosticError as error:
        fail(error)
    write_output(text, output)


@click.command("fmt")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if a file is not canonical.")
@click.option("-w", "--write", is_flag=True, help="Rewrite the files in place.")
def fmt_command(files: tuple[Path, ...], check: bool, write: bool) -> None:
    """Print .trace files in canonical formatting (comments kept)."""
    from tracedsl.io import read_source
    from tracedsl.language.format import format_text

    worst = exitcodes.OK
    for path in files:
        try:
            source = read_source(path)
            formatted = format_text(source.text, str(path))
        except DiagnosticError as error:
            from tracedsl.loading import is_io_problem

            report(error.diagnostics)
            worst = max(worst, exitcodes.IO if is_io_problem(error) else exitcodes.INPUT)
            continue
        if check:
            if formatted != source.text:
                click.echo(f"{path}: not canonically formatted", err=True)
                worst = max(worst, exitcodes.FAILED)
        elif write:
            if formatted != source.text:
                write_output(formatted, path)
                click.echo(f"formatted {path}", err=True)
        else:
            click.echo(formatted, nl=False)
    sys.exit(worst)


@click.command("schema")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write here (default: stdout).",
)
def schema_command(output: Path | None) -> None:
    """Write the JSON Schema of spec.json (the IR), as in specs/spec.schema.json."""
    from tracedsl.io import spec_schema

    write_output(json.dumps(spec_schema(), indent=2) + "\n", output)


COMMANDS: list = [compile_command, check_command, decompile_command, fmt_command, schema_command]
