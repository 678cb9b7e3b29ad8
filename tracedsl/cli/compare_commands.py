"""CLI commands: compare."""

from __future__ import annotations

import json
import sys
from dataclasses import fields
from pathlib import Path

import click

from tracedsl import pipeline
from tracedsl.cli import exitcodes
from tracedsl.cli.options import IrFieldType

_DEFAULTS = pipeline.Tolerances()


def _tolerance_options(command):
    """One flag per tolerance (--ks, --wasserstein, --mean, --percentile, --tail, --hit-rate)."""
    for item in reversed(fields(pipeline.Tolerances)):
        flag = "--" + item.name.replace("_", "-")
        command = click.option(flag, item.name, type=float, default=None, metavar="X",
                               help=f"{pipeline.TOLERANCE_HELP[item.name]} (default {getattr(_DEFAULTS, item.name):g})")(command)
    return command


@click.command("compare", short_help="Compare two traces figure by figure, as a CI gate.")
@click.argument("a", metavar="A", type=click.Path(path_type=Path))
@click.argument("b", metavar="B", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="print the comparison as JSON (docs/compare.md gives its schema)")
@click.option("--html", type=click.Path(path_type=Path, dir_okay=False), default=None, metavar="FILE",
              help="also write an HTML page: overlaid CDFs and both hit-rate-vs-capacity curves")
@click.option("--block-size", type=IrFieldType("--block-size"), default=None,
              help="tokens per hash id of both traces (default: each trace's manifest's, else its rows')")
@click.option("--block-size-a", type=IrFieldType("--block-size"), default=None, help="tokens per hash id of A only")
@click.option("--block-size-b", type=IrFieldType("--block-size"), default=None, help="tokens per hash id of B only")
@_tolerance_options
def compare_command(a: Path, b: Path, as_json: bool, html: Path | None, block_size: int | None,
                    block_size_a: int | None, block_size_b: int | None, **tolerances: float | None) -> None:
    """Compare trace A with trace B: per-row input, new tokens, output and delay, per-session
    calls, requests and duration, inter-arrival times, and the prefix and LRU hit rates.

    A and B are run directories or datasets: tracedsl's, AIPerf's, foreign Mooncake traces or
    TraceLab rows. Exit 0 when every figure is within its tolerance, 1 when one is not (a CI
    gate); figures one side lacks are listed as not comparable and do not fail.
    """
    given = {name: value for name, value in tolerances.items() if value is not None}
    chosen = pipeline.Tolerances(**given)
    sizes = (block_size_a if block_size_a is not None else block_size,
             block_size_b if block_size_b is not None else block_size)
    comparison = pipeline.compare(a, b, block_size=sizes, tolerances=chosen, html=html)
    if as_json:
        click.echo(json.dumps(comparison.to_json(), indent=1, allow_nan=False, default=_number))
    else:
        click.echo(comparison.text())
        if html is not None:
            click.echo(f"wrote {html}")
    sys.exit(exitcodes.OK if comparison.passed else exitcodes.FAILED)


def _number(value):
    return float(value)


COMMANDS: list = [compare_command]
