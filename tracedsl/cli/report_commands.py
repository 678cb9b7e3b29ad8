"""CLI commands: report."""

from __future__ import annotations

from pathlib import Path

import click

from tracedsl import pipeline
from tracedsl.cli.options import block_size_option


@click.command("report", short_help="Rewrite a trace's quality.json, comparison.txt and HTML.")
@click.argument("source", metavar="RUN_DIR|DATASET", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path, file_okay=False),
              help="directory for the reports (default: beside the trace)")
@block_size_option()
@click.option("--no-html", is_flag=True, help="write quality.json, comparison.txt and cache_structure.json only")
def report_command(source: Path, output: Path | None, block_size: int | None, no_html: bool) -> None:
    """Regenerate quality.json, comparison.txt and the HTML reports for DATASET.jsonl or RUN_DIR."""
    done = pipeline.report(source, output, block_size, html=not no_html)
    trace = done.trace
    targets = "targets from the manifest" if trace.params is not None else "no spec: targets absent"
    click.echo(f"{trace.dataset}: {done.sessions:,} sessions, {done.rows:,} requests, "
               f"block size {trace.block_size} from {trace.block_size_from} ({targets})")
    for path in done.files:
        click.echo(f"  wrote {path}")


COMMANDS: list = [report_command]
