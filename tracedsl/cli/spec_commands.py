"""CLI commands on specs: compile, check, decompile, fmt, schema."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from tracedsl import pipeline
from tracedsl.cli import exitcodes
from tracedsl.cli.printing import EXIT_CODES, show


def _write(text: str, output: Path | None) -> None:
    """To ``output`` (atomically), or to stdout."""
    if output is None:
        click.echo(text, nl=False)
    else:
        pipeline.write_text(output, text)


_OUTPUT = click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
                       help="Write here, atomically (default: stdout).")


@click.command("compile", short_help="Compile any spec form into spec.json or spec.toml.")
@click.argument("source", metavar="FILE|NAME")
@_OUTPUT
@click.option("--format", "form", type=click.Choice(["json", "toml"]),
              help="Default: from -o's suffix, else json.")
def compile_command(source: str, output: Path | None, form: str | None) -> None:
    """Compile a .trace, spec.json/.toml, reference config or manifest (or a bundled spec's
    NAME) into a spec.json (or spec.toml)."""
    if form is None:
        form = "toml" if output is not None and output.suffix.lower() == ".toml" else "json"
    text, compiled = pipeline.compile_document(source, form)
    show(compiled.diagnostics)
    _write(text, output)
    if output is not None:
        click.echo(f"wrote {output} (workload '{compiled.workload.name}')", err=True)


@click.command("check", short_help="Report each spec's diagnostics; print ok when it has no errors.")
@click.argument("sources", nargs=-1, required=True, metavar="FILE|NAME...")
def check_command(sources: tuple[str, ...]) -> None:
    """Report the diagnostics of each spec on stderr and write nothing.

    A spec without errors gets one line on stdout, `SPEC: ok` (with its warning count, if it
    has warnings). Exit 1 if any spec has errors, 4 if one cannot be read.
    """
    worst = exitcodes.OK
    for source in sources:
        checked = pipeline.check(source)
        show(checked.diagnostics)
        if checked.ok:
            warned = f", {len(checked.diagnostics)} warning(s)" if checked.diagnostics else ""
            click.echo(f"{source}: ok{warned}")
        else:
            worst = max(worst, EXIT_CODES[checked.category])
    sys.exit(worst)


@click.command("decompile", short_help="Print a spec of any form as canonical .trace text.")
@click.argument("source", metavar="FILE|NAME")
@_OUTPUT
def decompile_command(source: str, output: Path | None) -> None:
    """Print canonical .trace text for a spec.json/spec.toml, reference config or manifest."""
    text, compiled = pipeline.decompile_text(source)
    show(compiled.diagnostics)
    _write(text, output)


@click.command("fmt", short_help="Print .trace files in canonical form (comments kept).")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--check", is_flag=True,
              help="Write nothing; print a unified diff of what would change and exit 1 if a "
                   "file is not canonical.")
@click.option("-w", "--write", is_flag=True, help="Rewrite the files in place (atomically).")
def fmt_command(files: tuple[Path, ...], check: bool, write: bool) -> None:
    """Print .trace files in canonical formatting (comments kept); see docs/language.md."""
    worst = exitcodes.OK
    for formatted in pipeline.format_files(files):
        path = formatted.path
        if formatted.category is not None:
            show(formatted.diagnostics)
            worst = max(worst, EXIT_CODES[formatted.category])
        elif check:
            if formatted.changed:
                click.echo(formatted.diff(), nl=False)
                click.echo(f"{path}: not canonically formatted", err=True)
                worst = max(worst, exitcodes.FAILED)
        elif write:
            if formatted.changed:
                pipeline.write_text(path, formatted.formatted)
                click.echo(f"formatted {path}", err=True)
        else:
            click.echo(formatted.formatted, nl=False)
    sys.exit(worst)


@click.command("schema", short_help="Print the JSON Schema of spec.json.")
@_OUTPUT
def schema_command(output: Path | None) -> None:
    """Write the JSON Schema of spec.json (the IR), as in specs/spec.schema.json."""
    _write(pipeline.schema_text(), output)


COMMANDS: list = [compile_command, check_command, decompile_command, fmt_command, schema_command]
