"""The commands that read a trace: validate, report and simulate.

report and simulate find their trace one way (:func:`open_trace`: a file, or a run
directory's dataset.jsonl, with the manifest beside it) and settle its block size by one rule:
``--block-size`` when given, else the manifest's, else inferred from the rows. Nothing here
prints or exits; every failure is a :class:`PipelineError`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracedsl.diagnostics import DiagnosticError
from tracedsl.output.rundir import locate_run
from tracedsl.pipeline.defaults import DEFAULT_MAX_ERRORS, SimulationConfig
from tracedsl.pipeline.failures import (
    E_BLOCK_SIZE,
    E_EMPTY_TRACE,
    E_NOT_A_RUN,
    E_OPTIONS,
    Category,
    PipelineError,
    categorised,
    fail,
    io_failure,
)

if TYPE_CHECKING:  # numpy, pydantic and jinja2 load when a command runs, not at start-up
    from tracedsl.ir import GenerationParams
    from tracedsl.output.validate import ValidationReport
    from tracedsl.reports.simulation import SimulationSample
    from tracedsl.reports.simulation_model import SimulationResult

__all__ = ["ReportResult", "SimulationRun", "TraceInput", "open_trace", "report", "simulate",
           "validate"]


# ============================================================================================
# Finding a trace, its manifest and its block size


@dataclass(frozen=True)
class TraceInput:
    """A trace to read, what its manifest says about it, and the block size to read it at."""

    dataset: Path
    manifest: Path | None
    params: GenerationParams | None  # the manifest's spec; None for a trace without one
    name: str
    block_size: int
    block_size_from: str  # "--block-size", "the manifest" or "the rows"
    engine: str = "fast"  # the engine that wrote it, as its manifest says (targets follow its law)


def open_trace(target: str | Path, block_size: int | None = None) -> TraceInput:
    """Locate the trace at ``target``, read its manifest and settle its block size."""
    from tracedsl.loading import load_spec

    target = Path(target)
    try:
        found = locate_run(target)
    except FileNotFoundError as error:
        raise fail(E_NOT_A_RUN, error.strerror, Category.IO, file=str(target)) from None
    params, name, engine = None, found.dataset.stem, "fast"
    if found.manifest is not None:
        with categorised():
            loaded = load_spec(found.manifest)
        params, name = loaded.params, loaded.name
        engine = _engine_of(found.manifest)
    if block_size is not None:
        source = "--block-size"
    elif params is not None:
        block_size, source = params.block_size, "the manifest"
    else:
        block_size, source = _inferred_block_size(found.dataset), "the rows"
    return TraceInput(found.dataset, found.manifest, params, name, block_size, source, engine)


def _engine_of(manifest: Path) -> str:
    """The engine a manifest's dataset came from: tracedsl's records it; the reference's own
    manifest means the reference wrote the dataset, which the aiperf engine reproduces."""
    from tracedsl.output.manifest import read_tracedsl_fields

    ours = read_tracedsl_fields(manifest)
    if ours is None:
        return "aiperf"
    return ours.get("engine") if ours.get("engine") in ("fast", "aiperf") else "fast"


def _inferred_block_size(dataset: Path) -> int:
    from tracedsl.reports.regenerate import infer_block_size

    try:
        size = infer_block_size(dataset)
    except OSError as error:
        raise io_failure(error, str(dataset), writing=False, what="cannot read") from error
    if size is None:
        from tracedsl.output.blocksize import file_block_size

        note = file_block_size(dataset).note.removesuffix("; give --block-size to choose")
        raise fail(E_BLOCK_SIZE, note, Category.INPUT, file=str(dataset), hint="give --block-size")
    return size


# ============================================================================================
# validate


def validate(path: str | Path, block_size: int | None = None,
             max_errors: int = DEFAULT_MAX_ERRORS) -> ValidationReport:
    """Validate any Mooncake trace (a file or a run directory); PipelineError (IO) when it
    cannot be read.

    The block size is ``block_size`` when given, else the one the manifest beside the trace
    records, else the one rule of ``tracedsl.output.blocksize`` applied to the rows. What is
    wrong with the rows is the report's (``report.passed(strict)``), not an error.
    """
    from tracedsl.output.validate import validate_file

    try:
        found = locate_run(Path(path))
    except FileNotFoundError as error:
        raise fail(E_NOT_A_RUN, error.strerror, Category.IO, file=str(path)) from None
    recorded = _recorded_block_size(found.manifest) if block_size is None else None
    try:
        report = validate_file(found.dataset, block_size=block_size or recorded, max_errors=max_errors)
    except OSError as error:
        raise io_failure(error, str(found.dataset), writing=False, what="cannot read") from error
    if recorded is not None:
        report.block_size_note = f"block size {recorded} (the manifest)"
    return report


def _recorded_block_size(manifest: Path | None) -> int | None:
    """The block size a manifest records; None without one, or for one that does not load
    (validate checks the trace, and says which block size it used)."""
    if manifest is None:  # the IR's models are imported only when a manifest is there
        return None
    from tracedsl.loading import load_spec

    try:
        return load_spec(str(manifest)).params.block_size
    except DiagnosticError:
        return None


# ============================================================================================
# report


@dataclass(frozen=True)
class ReportResult:
    """The reports written for a trace, and the counts they were made from."""

    trace: TraceInput
    output: Path
    files: list[Path]
    sessions: int
    rows: int


def report(target: str | Path, output: str | Path | None = None, block_size: int | None = None,
           html: bool = True) -> ReportResult:
    """Rewrite quality.json, comparison.txt, cache_structure.json (and the HTML) for a trace.

    ``output`` defaults to the trace's own directory. Targets (what the spec asked for) are
    compared only when the trace has a manifest.
    """
    from tracedsl.reports.regenerate import ReportJob, regenerate

    trace = open_trace(target, block_size)
    where = Path(output) if output is not None else trace.dataset.parent
    job = ReportJob(trace.dataset, trace.manifest, where)
    try:
        with categorised(Category.INPUT):
            written, reports = regenerate(job, trace.params, trace.name, trace.block_size, html=html,
                                          engine=trace.engine)
    except ValueError as error:  # a trace with no rows
        raise fail(E_EMPTY_TRACE, _without_prefix(str(error), trace.dataset), Category.INPUT,
                   file=str(trace.dataset)) from error
    except OSError as error:
        reading = error.filename is not None and Path(error.filename) == trace.dataset
        raise io_failure(error, None if error.filename else str(where), writing=not reading) from error
    collector = reports.collector
    return ReportResult(trace, where, written, collector.sessions, collector.rows)


def _without_prefix(message: str, dataset: Path) -> str:
    return message.removeprefix(f"{dataset}: ")


# ============================================================================================
# simulate


@dataclass(frozen=True)
class SimulationRun:
    """A headless run of simulation.html's model: its inputs, the sample, and the figures."""

    trace: TraceInput
    config: SimulationConfig
    sample: SimulationSample
    result: SimulationResult

    def to_json(self) -> dict[str, Any]:
        """What ``simulate --json`` prints: summary, time series and requests, with the inputs."""
        return {
            "dataset": str(self.trace.dataset),
            "sample": self.sample.describe(),
            "config": asdict(self.config),
            **self.result.to_json(),
        }


def simulate(target: str | Path, *, block_size: int | None = None, max_sessions: int | None = None,
             record: bool = False, **inputs: Any) -> SimulationRun:
    """Simulate KV-cache pressure when replaying a trace (the figures simulation.html shows).

    ``inputs`` are :class:`SimulationConfig` fields (concurrency, prefill_tps, decode_tps,
    kv_gb, kv_bytes_per_token); the block size follows :func:`open_trace`'s rule.
    ``max_sessions`` None simulates the page's sample, 0 every session. ``record`` keeps the
    time series and requests (for ``to_json``).
    """
    trace = open_trace(target, block_size)
    config = SimulationConfig(**inputs, block_size=trace.block_size)
    problems = config.problems()
    if problems:
        raise PipelineError([_option_problem(problem) for problem in problems], Category.USAGE)
    from tracedsl.reports.simulation_model import simulate as run_model

    sample = _sample(trace.dataset, max_sessions)
    return SimulationRun(trace, config, sample, run_model(sample.trace, config, record=record))


def _option_problem(problem: str):
    from tracedsl.diagnostics import Diagnostic

    name, _, message = problem.partition(": ")
    return Diagnostic(E_OPTIONS, message, file="--" + name.replace("_", "-"))


def _sample(dataset: Path, max_sessions: int | None) -> SimulationSample:
    from tracedsl.output.reader import read_trace
    from tracedsl.reports.simulation import SimulationSample

    # the default is exactly the page's sample, so both show the same figures
    sample = (
        SimulationSample()
        if max_sessions is None
        else SimulationSample(max_sessions, max_rows=None, max_id_numbers=None, for_page=False)
    )
    try:
        with categorised(Category.INPUT):
            for chunk in read_trace(dataset):
                sample.add(chunk)
    except OSError as error:
        raise io_failure(error, str(dataset), writing=False) from error
    if not sample.num_sessions:
        raise fail(E_EMPTY_TRACE, "the trace has no rows to simulate", Category.INPUT, file=str(dataset))
    return sample
