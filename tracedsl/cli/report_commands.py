"""CLI commands: report."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from tracedsl.cli import exitcodes
from tracedsl.diagnostics import DiagnosticError, render
from tracedsl.limits import MAX_TOKENS


def _fail(message: str, code: int) -> None:
    click.echo(f"tracedsl report: {message}", err=True)
    sys.exit(code)


@click.command("report")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path, file_okay=False),
              help="directory for the reports (default: beside the trace)")
@click.option("--block-size", type=click.IntRange(min=1, max=MAX_TOKENS),
              help="KV block size in tokens (default: the manifest's, else inferred from the rows)")
@click.option("--no-html", is_flag=True, help="write quality.json, comparison.txt and cache_structure.json only")
def report_command(source: Path, output: Path | None, block_size: int | None, no_html: bool) -> None:
    """Regenerate quality.json, comparison.txt and the HTML reports for DATASET.jsonl or RUN_DIR."""
    from tracedsl.reports.regenerate import infer_block_size, locate, regenerate

    try:
        job = locate(source, output)
    except FileNotFoundError as exc:
        _fail(str(exc), exitcodes.IO)
    params, name = None, job.dataset.stem
    if job.manifest is not None:
        from tracedsl.loading import is_io_problem, load_spec

        try:
            loaded = load_spec(job.manifest)
        except DiagnosticError as exc:
            for diagnostic in exc.diagnostics:
                click.echo(render(diagnostic), err=True)
            sys.exit(exitcodes.IO if is_io_problem(exc) else exitcodes.INPUT)
        params, name = loaded.params, loaded.name
    if block_size is None:
        block_size = params.block_size if params is not None else infer_block_size(job.dataset)
        if block_size is None:
            _fail(f"{job.dataset}: rows disagree on a block size; give --block-size", exitcodes.INPUT)
    try:
        written, reports = regenerate(job, params, name, block_size, html=not no_html)
    except DiagnosticError as exc:
        for diagnostic in exc.diagnostics:
            click.echo(render(diagnostic), err=True)
        sys.exit(exitcodes.INPUT)
    except ValueError as exc:
        _fail(str(exc), exitcodes.INPUT)
    except OSError as exc:
        _fail(f"{exc.filename or job.output}: {exc.strerror or exc}", exitcodes.IO)
    collector = reports.collector
    targets = "targets from the manifest" if params is not None else "no spec: targets absent"
    click.echo(f"{job.dataset}: {collector.sessions:,} sessions, {collector.rows:,} requests, "
               f"block size {block_size} ({targets})")
    for path in written:
        click.echo(f"  wrote {path}")


COMMANDS: list = [report_command]
