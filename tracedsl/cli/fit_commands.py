"""CLI commands: fit."""

from __future__ import annotations

from pathlib import Path

import click

from tracedsl import pipeline
from tracedsl.cli import exitcodes
from tracedsl.cli.options import block_size_option
from tracedsl.cli.printing import show_compactly


@click.command("fit", short_help="Write a commented .trace whose run resembles a given trace.")
@click.argument("trace", metavar="TRACE", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False),
              help="write the fitted .trace here (default: print it)")
@click.option("--classes", type=int, default=None, metavar="K",
              help="cluster the sessions into K session classes")
@click.option("--seed", type=click.IntRange(0, pipeline.MAX_SEED), default=pipeline.DEFAULT_SEED,
              show_default=True, help="seed of the calibration runs and of the check run")
@click.option("--sessions", type=int, default=None, metavar="N",
              help="sessions of the check run (default: the input's)")
@click.option("--no-check", is_flag=True, help="skip the run of the fitted spec and its comparison")
@block_size_option()
def fit_command(trace: Path, output: Path | None, classes: int | None, seed: int, sessions: int | None,
                no_check: bool, block_size: int | None) -> None:
    """Fit TRACE (a run directory, an AIPerf dataset, a Mooncake or TraceLab file) with a .trace
    whose run resembles it; then run that spec at TRACE's size and compare the two.

    Exit 0 when the run meets every must-hold figure (docs/fit.md), 1 when it misses one.
    """
    done = pipeline.fit(trace, output=output, classes=classes, block_size=block_size, seed=seed,
                        sessions=sessions, check=not no_check)
    if done.output is None:
        click.echo(done.text, nl=False)
    else:
        click.echo(f"wrote {done.output} ({done.sessions:,} sessions fitted, {done.rounds} calibration rounds)",
                   err=True)
    if no_check:
        return
    out = done.output is not None
    click.echo(f"\n{'figure':<14}{'input':>12}{'fitted run':>12}  {'margin':<7} verdict", err=not out)
    for check in done.checks:
        verdict = "n/a" if check.within is None else ("ok" if check.within else "MISSED")
        click.echo(f"{check.figure:<14}{_shown(check.input):>12}{_shown(check.run):>12}  {check.margin:<7} {verdict}",
                   err=not out)
    if done.comparison:
        click.echo("\n" + done.comparison.rstrip("\n"), err=not out)
    show_compactly(done.warnings)
    if not done.passed:
        raise SystemExit(exitcodes.FAILED)


def _shown(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if value < 10 else f"{value:,.1f}"


COMMANDS: list = [fit_command]
