"""CLI commands: run (spec → run directory) and validate (any Mooncake trace)."""

from __future__ import annotations

import contextlib
import gc
import sys
import time
from pathlib import Path

import click
import orjson

from tracedsl import pipeline
from tracedsl.cli import exitcodes
from tracedsl.cli.options import IrFieldType, block_size_option
from tracedsl.cli.printing import show, show_compactly

# More worker processes than any machine has cores is a typo, not a plan.
MAX_WORKERS = 1024
SET_HELP = ("Override one value by its path in the language (--set turn.output.mean=2k, "
            "--set turn.delay.agentic.mean=3s, --set context=128k; a class's as class.NAME.turns.max=12, "
            "agent structure's as compact.at=90%; units as in a .trace file) or in "
            "spec.json (--set cache.layer2.mean=20000; numbers take k and M; none clears a field). "
            "Repeatable.")


# --------------------------------------------------------------------------------------------
# run


class _ProgressBar:
    """A one-line bar on stderr, shown only once the work has taken a second."""

    def __init__(self, enabled: bool, width: int = 30):
        self.enabled = enabled
        self.width = width
        self.started = time.monotonic()
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.started
        if elapsed < 1.0 and not self.shown:
            return
        self.shown = True
        fraction = min(1.0, done / total) if total else 1.0
        filled = int(fraction * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        sys.stderr.write(f"\r  [{bar}] {fraction:4.0%}  {done}/{total} sessions  {elapsed:5.1f}s")
        sys.stderr.flush()

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\n")
            sys.stderr.flush()


@click.command("run", short_help="Run a spec into a run directory of Mooncake JSONL.")
@click.argument("spec", required=False, default=pipeline.DEFAULT_SPEC)
@click.option("--num-sessions", "-n", type=click.IntRange(1, pipeline.MAX_SESSIONS), default=None,
              help="Primary sessions to generate (default 1000, or the manifest's); at most a "
              "billion, which for `default` is ~16 billion rows, ~3 TB of JSONL.")
@click.option("--seed", type=click.IntRange(0, pipeline.MAX_SEED), default=None,
              help="Random seed, 0 to 2**64-1 (default 42, or the manifest's).")
@click.option("--output", "-o", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Parent directory of the run directory.")
@click.option("--max-isl", type=IrFieldType("--max-isl"), default=None,
              help="Context limit (max_prompt_tokens).")
@click.option("--max-osl", type=IrFieldType("--max-osl"), default=None,
              help="Output maximum (generation_length.max).")
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE", help=SET_HELP)
@click.option("--sweep", "sweeps", multiple=True, metavar="PATH=V1,V2,...",
              help="Run once per value (repeatable: every combination), each into its own run "
                   "directory inside one sweep directory with sweep.json and sweep.md. Paths as --set.")
@click.option("--engine", type=click.Choice(pipeline.ENGINES), default=None,
              help="fast (default) or aiperf (the reference's exact bytes, flaws included).")
@click.option("--workers", type=click.IntRange(1, MAX_WORKERS), default=None,
              help=f"Worker processes, at most {MAX_WORKERS} (default: all cores; runs under 100,000 "
                   "sessions stay in one process).")
@click.option("--executor", type=click.Choice(("local", "dask")), default="local", show_default=True,
              help="Where chunks run: local processes or a Dask cluster.")
@click.option("--scheduler", default=None, metavar="ADDRESS", help="Dask scheduler address (with --executor dask).")
@click.option("--strict", is_flag=True,
              help="Exit 1 when the written file holds hash-id size conflicts, which AIPerf replay "
                   "refuses (the aiperf engine reproduces them on restart specs); the run is kept.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary.")
@click.option("--no-reports", is_flag=True, help="Skip the HTML reports.")
def run_command(spec, num_sessions, seed, output, max_isl, max_osl, overrides, sweeps, engine, workers,
                executor, scheduler, strict, quiet, no_reports) -> None:
    """Run SPEC into a new run directory: dataset.jsonl, manifest.json and the reports.

    SPEC is a .trace file, a spec.json/.toml, a reference config, a manifest.json or a run
    directory (to rerun it), or a bundled spec's name; it defaults to `default`, the bundled
    spec.
    """
    options = pipeline.RunOptions(
        spec=spec, num_sessions=num_sessions, seed=seed, output=output, max_isl=max_isl,
        max_osl=max_osl, overrides=tuple(overrides), engine=engine, workers=workers,
        executor=executor, scheduler=scheduler, reports=not no_reports,
    )
    if sweeps:
        _sweep(options, sweeps, strict, quiet)
        return
    with _startup_kept_from_the_collector() as startup_done:
        plan = pipeline.plan_run(options)
        if not quiet:
            show_compactly(plan.warnings)
            for note in plan.notes:
                click.echo(f"note: {note}", err=True)
        bar = _ProgressBar(enabled=not quiet and sys.stderr.isatty())
        startup_done()
        try:
            result = pipeline.execute_run(plan, options, progress=bar,
                                          notice=lambda text: click.echo(f"note: {text}", err=True))
        finally:
            bar.close()
    if not quiet:
        _print_summary(result)
    problems = result.problems(strict)
    if problems:
        show(problems)
        sys.exit(exitcodes.FAILED)


def _sweep(options, sweeps, strict: bool, quiet: bool) -> None:
    def announce(done: int, total: int, values: dict) -> None:
        if not quiet:
            said = ", ".join(f"{path}={value}" for path, value in values.items())
            click.echo(f"[{done + 1}/{total}] {said}", err=True)

    result = pipeline.run_sweep(options, sweeps, progress=announce)
    if not quiet:
        # each point's spec warnings, once each (most points share them)
        show_compactly(list(dict.fromkeys(w for point in result.points for w in point.result.plan.warnings)))
        click.echo(f"wrote {result.directory}")
        for path in result.files:
            click.echo(f"  {path.relative_to(result.directory.parent)}")
    problems = [p for point in result.points for p in point.result.problems(strict)]
    if problems:
        show(problems)
        sys.exit(exitcodes.FAILED)


@contextlib.contextmanager
def _startup_kept_from_the_collector():
    """No cyclic garbage collection while the run imports and plans; then freeze what it made.

    Start-up makes hundreds of thousands of objects that live as long as the process
    (modules, the IR's pydantic schemas); the collector would scan them again and again,
    about 40 ms of a 10k-session run. Frozen, they are skipped, and forked workers do not
    touch (and so copy) their pages. Everything is unfrozen when the command ends.
    """
    enabled = gc.isenabled()
    gc.disable()

    def startup_done() -> None:
        gc.freeze()
        if enabled:
            gc.enable()

    try:
        yield startup_done
    finally:
        gc.unfreeze()
        if enabled:
            gc.enable()


def _print_summary(result) -> None:
    plan = result.plan
    click.echo(f"wrote {result.run_dir}")
    click.echo(
        f"  {result.rows} rows, {result.sessions} sessions "
        f"({plan.num_sessions} requested, seed {plan.seed}, engine {plan.engine})"
    )
    reasons = ", ".join(f"{name} {count}" for name, count in sorted(result.end_reasons.items()))
    click.echo(f"  sessions by end reason: {reasons or 'none'}")
    if plan.engine == "aiperf":
        click.echo(f"  hash-id size conflicts: {_conflicts_said(result.hash_conflicts)}")
    checked = f"{result.validation.rows} rows, {result.validation.block_size_note}"
    if result.hash_conflicts:  # checked, but not valid for replay: "validated" would mislead
        click.echo(f"  written with {result.hash_conflicts} hash-id conflicts: {checked}")
    else:
        click.echo(f"  validated: {checked}")
    for path in result.files:
        click.echo(f"  {path.relative_to(result.run_dir.parent)}")


def _conflicts_said(count: int) -> str:
    """The aiperf engine's hash-id size conflicts, worded for whether there are any."""
    if not count:
        return "0 (every hash id has one block size; AIPerf replay accepts that)"
    return (f"{count} (the reference's flaw, reproduced; AIPerf replay refuses such a file; "
            "the default fast engine writes none)")


# --------------------------------------------------------------------------------------------
# validate


@click.command("validate", short_help="Check any Mooncake trace file against the replay rules.")
@click.argument("file", type=click.Path(path_type=Path))
@block_size_option("Tokens per hash id [default: the manifest's beside the trace, else inferred from the rows].")
@click.option("--max-errors", type=click.IntRange(min=0), default=pipeline.DEFAULT_MAX_ERRORS,
              show_default=True, help="How many errors and warnings to list (all are counted).")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.option("--strict", is_flag=True, help="Fail on warnings too.")
def validate_command(file: Path, block_size, max_errors, as_json, strict) -> None:
    """Check any Mooncake trace FILE (or a run directory's dataset): strict row rules and the
    cross-row rules replay needs."""
    report = pipeline.validate(file, block_size=block_size, max_errors=max_errors)
    passed = report.passed(strict)
    if as_json:
        data = report.to_dict()
        data["strict"] = strict
        data["passed"] = passed
        click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
    else:
        _print_validation(report, strict)
    sys.exit(exitcodes.OK if passed else exitcodes.FAILED)


def _print_validation(report, strict: bool) -> None:
    # validate lists up to --max-errors of each severity itself; a row can be megabytes
    show(report.errors + report.warnings, err=False, excerpts=False, limit=None)
    errors = sum(report.error_counts.values())
    warnings = sum(report.warning_counts.values())
    click.echo(f"{report.file}: {report.rows} rows, {report.sessions} sessions; {report.block_size_note}")
    for title, counts in (("errors", report.error_counts), ("warnings", report.warning_counts)):
        if counts:
            kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(counts.items()))
            click.echo(f"  {title}: {kinds}")
    listed = len(report.errors) + len(report.warnings)
    if listed < errors + warnings:
        click.echo(f"  (listed {listed} of {errors + warnings}; raise --max-errors to see more)")
    if report.hash_conflicts:
        click.echo(f"  {report.hash_conflicts} hash ids are used at two block sizes; AIPerf replay refuses the file")
    if errors:
        click.echo(f"invalid: {errors} error(s)")
    elif warnings and strict:
        click.echo(f"invalid under --strict: {warnings} warning(s)")
    else:
        click.echo("valid" + (f" with {warnings} warning(s)" if warnings else ""))


COMMANDS: list = [run_command, validate_command]
