"""The ``fit`` command: a commented .trace whose run resembles a given trace, and the check of it.

:func:`fit` loads the trace (any kind :func:`tracedsl.analysis.load.load` reads), fits and
calibrates a spec (:mod:`tracedsl.analysis.fit`), writes it atomically when asked, and then runs
it at the input's size into a temporary directory and measures that run against the input: the
must-holds of docs/fit.md, and ``compare``'s table when that command is available.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tracedsl.analysis.fit.calibrate import HIT_MARGIN, MEAN_MARGIN
from tracedsl.codes import E_FIT_OPTION, W_FIT_MISSED
from tracedsl.diagnostics import Diagnostic, Severity
from tracedsl.pipeline.defaults import DEFAULT_SEED, MAX_SESSIONS
from tracedsl.pipeline.failures import Category, categorised, fail

__all__ = ["FitResult", "MustHold", "fit"]



@dataclass(frozen=True)
class MustHold:
    """One must-hold figure: the input's value, the fitted run's, and the margin it must keep."""

    figure: str
    input: float | None
    run: float | None
    margin: str  # "±0.03" or "±5%"
    within: bool | None  # None when the input has no such figure (no timestamps)


@dataclass
class FitResult:
    text: str  # the fitted .trace
    output: Path | None  # where it was written
    name: str
    sessions: int  # the input's sessions (the size of every check run)
    rounds: int  # calibration rounds
    checks: list[MustHold]  # the run of the written spec against the input (empty with check=False)
    comparison: str | None = None  # compare's table, when available
    warnings: list[Diagnostic] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(check.within is not False for check in self.checks)


def fit(trace: str | Path, *, output: str | Path | None = None, classes: int | None = None,
        block_size: int | None = None, seed: int = DEFAULT_SEED, sessions: int | None = None,
        check: bool = True) -> FitResult:
    """Fit ``trace``; write the spec to ``output`` (atomically) when given; with ``check``, run
    it at the input's size (or ``sessions``) and measure the run against the input."""
    from tracedsl.analysis.fit import fit_trace
    from tracedsl.analysis.load import load
    from tracedsl.pipeline.specs import compile_text

    if classes is not None and classes < 1:
        raise fail(E_FIT_OPTION, f"--classes must be at least 1, not {classes}", Category.USAGE, path="--classes")
    if sessions is not None and not 1 <= sessions <= MAX_SESSIONS:
        raise fail(E_FIT_OPTION, f"--sessions must be 1 to {MAX_SESSIONS:,}, not {sessions}", Category.USAGE,
                   path="--sessions")
    found = load(trace, block_size)
    name = Path(output).stem if output is not None else f"{found.name}-fit"
    with categorised(Category.INPUT):
        outcome = fit_trace(found, seed=seed, name=name, classes=classes)
    compiled = compile_text(outcome.text, f"{name}.trace")  # the fit must compile: a bug otherwise
    written = _write(Path(output), outcome.text) if output is not None else None
    result = FitResult(outcome.text, written, name, outcome.target.sessions, len(outcome.rounds), [],
                       notes=list(outcome.notes))
    if not check:
        return result
    size = sessions or outcome.target.sessions
    with tempfile.TemporaryDirectory(prefix="tracedsl-fit-") as scratch:
        from tracedsl.analysis.fit.structure import figures
        from tracedsl.pipeline.runs import run

        done = run(compiled.workload, scratch, num_sessions=size, seed=seed, html=False)
        fitted = load(done.run_dir)
        achieved = figures(fitted.chunks(), fitted.block_size)
        result.checks = must_holds(outcome.target, achieved)
        result.comparison = _comparison(found, fitted)
    missed = [c.figure for c in result.checks if c.within is False]
    if missed:
        result.warnings.append(Diagnostic(
            W_FIT_MISSED, f"the fitted spec's run misses {', '.join(missed)} by more than the margin",
            Severity.WARNING, file=str(written) if written else None,
            hint="the table below says by how much; docs/fit.md says what cannot be recovered"))
    return result


def _write(path: Path, text: str) -> Path:
    """Atomically into a file; straight into anything else (a device, a pipe), never replacing it."""
    from tracedsl.pipeline.failures import io_failure
    from tracedsl.pipeline.specs import write_text

    if path.exists() and not path.is_file():
        try:
            with open(path, "w", encoding="utf-8") as stream:
                stream.write(text)
        except OSError as error:
            raise io_failure(error, str(path), writing=True, what="cannot write") from error
        return path
    return write_text(path, text)


def must_holds(target, achieved) -> list[MustHold]:
    """The must-holds of docs/fit.md: hit rate within 0.03, means and arrival rate within 5%."""
    def relative(name: str, a: float | None, b: float | None) -> MustHold:
        if a is None:
            return MustHold(name, a, b, f"±{MEAN_MARGIN:.0%}", None)
        ok = bool(b is not None and abs(b - a) <= MEAN_MARGIN * abs(a))
        return MustHold(name, a, b, f"±{MEAN_MARGIN:.0%}", ok)

    return [
        MustHold("hit rate", target.hit_rate, achieved.hit_rate, f"±{HIT_MARGIN}",
                 bool(abs(achieved.hit_rate - target.hit_rate) <= HIT_MARGIN)),
        relative("mean input", target.mean_input, achieved.mean_input),
        relative("mean output", target.mean_output, achieved.mean_output),
        relative("arrival rate", target.arrival_rate, achieved.arrival_rate),
    ]


def _comparison(found, fitted) -> str | None:
    """compare's table of the input against the fitted run, when compare is installed."""
    try:
        from tracedsl.analysis.compare import compare
        from tracedsl.analysis.profile import profile
    except ImportError:
        return None
    return compare(profile(found), profile(fitted)).text()
