"""``run``: load the spec, apply the command-line overrides, then generate, write, check, publish.

engine chunks → JSONL writer, chunk checks and reports side by side → verify the file →
manifest → publish the run directory. :func:`run_rows` gives the same rows as dicts,
writing nothing. Every failure is a :class:`PipelineError`.
"""

from __future__ import annotations

import contextlib
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from tracedsl.codes import W_ARRIVALS_SHORT, W_CONSTANT
from tracedsl.diagnostics import Diagnostic
from tracedsl.output.rundir import locate_run
from tracedsl.pipeline.defaults import DEFAULT_SEED, DEFAULT_SESSIONS, DEFAULT_SPEC, ENGINES
from tracedsl.pipeline.failures import (
    E_ENGINE_LIMIT,
    E_EXECUTOR,
    E_NOT_A_RUN,
    E_OPTION,
    E_OPTIONS,
    E_RUN_CHECK,
    E_STRICT,
    Category,
    PipelineError,
    categorised,
    fail,
    io_failure,
)

if TYPE_CHECKING:  # pydantic and numpy load when a run is planned, not when the CLI starts
    from tracedsl.ir import GenerationParams, Workload
    from tracedsl.output.validate import ValidationReport

__all__ = ["E_OPTION", "OPTION_FIELDS", "RunFailed", "RunOptions", "RunPlan", "RunResult",
           "abandon_runs", "execute_run", "option_problem", "plan_run", "run", "run_rows"]


@dataclass(frozen=True)
class RunOptions:
    """The ``run`` command's arguments; None means "not given on the command line".

    ``spec`` is anything ``load_spec`` takes (a path, a bundled name), a run directory (its
    manifest.json), or a compiled :class:`~tracedsl.ir.Workload`.
    """

    spec: str | Path | Workload = DEFAULT_SPEC
    num_sessions: int | None = None
    seed: int | None = None
    output: Path = Path(".")
    max_isl: int | None = None
    max_osl: int | None = None
    overrides: tuple[str, ...] = ()
    engine: str | None = None
    workers: int | None = None
    executor: str = "local"
    scheduler: str | None = None
    reports: bool = True  # the HTML reports; quality.json and comparison.txt are always written


@dataclass
class RunPlan:
    """A loaded, overridden spec and the resolved run settings, before anything is written."""

    name: str
    params: GenerationParams
    num_sessions: int
    seed: int
    engine: str
    spec_source: str | None
    spec_sha256: str | None
    notes: list[str] = field(default_factory=list)
    warnings: list[Diagnostic] = field(default_factory=list)
    shown_as: str = DEFAULT_SPEC  # the spec as the user named it, for messages


@dataclass
class RunResult:
    """A published run: where its files are, and what the run counted while writing them."""

    run_dir: Path
    plan: RunPlan
    rows: int
    sessions: int
    end_reasons: Counter
    files: list[Path]
    validation: ValidationReport
    hash_conflicts: int

    def passed(self, strict: bool = False) -> bool:
        """False under ``strict`` when the file holds hash-id size conflicts AIPerf replay refuses."""
        return not self.problems(strict)

    def problems(self, strict: bool = False) -> list[Diagnostic]:
        """What ``strict`` refuses in the published run (nothing without ``strict``)."""
        if not (strict and self.hash_conflicts):
            return []
        return [Diagnostic(
            E_STRICT, f"the dataset holds {self.hash_conflicts} hash-id size conflicts, which "
            "AIPerf replay refuses (--strict); the run directory is kept",
            file=str(self.run_dir / "dataset.jsonl"),
            hint="the default fast engine writes none",
        )]


# What a failed run's findings name as their file: the run's directory was never published.
WRITTEN_DATASET = "the written dataset"


class RunFailed(Exception):
    """The run wrote something that failed its own checks; nothing was published.

    Raised inside the run; :func:`execute_run` turns it into a PipelineError (FAILED).
    """

    def __init__(self, message: str, validation: ValidationReport | None = None):
        self.validation = validation
        super().__init__(message)


def plan_run(options: RunOptions) -> RunPlan:
    """Load the spec and resolve every setting; PipelineError for a bad spec or option.

    Everything a run will use is checked here, before anything is created or generated.
    """
    from tracedsl.loading import apply_overrides

    _check_run_numbers(options)
    if options.engine is not None and options.engine not in ENGINES:
        raise fail(E_OPTIONS, f"unknown engine {options.engine!r}; choose one of {', '.join(ENGINES)}",
                   Category.USAGE, file="--engine")
    with categorised():
        loaded = _load(options.spec)
        notes: list[str] = []
        seed, num_sessions, engine = options.seed, options.num_sessions, options.engine
        if loaded.kind == "manifest":
            seed, num_sessions, engine = _recorded_settings(loaded, seed, num_sessions, engine, notes)
        params = _with_limits(loaded.params, options.max_isl, options.max_osl)
        params = apply_overrides(params, list(options.overrides))
        warnings = _warnings_from_options(loaded.params, params, options)
        warnings += _arrival_warnings(params, DEFAULT_SESSIONS if num_sessions is None else num_sessions,
                                      loaded.warnings)
    return RunPlan(
        name=loaded.name,
        params=params,
        num_sessions=DEFAULT_SESSIONS if num_sessions is None else num_sessions,
        seed=DEFAULT_SEED if seed is None else seed,
        engine=engine or "fast",
        # The file name, not the path: a manifest must not record the machine it was made on.
        spec_source=loaded.source_path.name if loaded.source_path else None,
        spec_sha256=loaded.source_sha256,
        notes=notes,
        # A bundled spec's warnings are intended (e.g. the reference's constant lognormals) and
        # the user cannot act on them; `tracedsl check NAME` still shows them.
        warnings=([] if loaded.bundled else list(loaded.warnings)) + warnings,
        shown_as=str(options.spec) if isinstance(options.spec, (str, Path)) else loaded.name,
    )


def _load(spec):
    """The LoadedSpec of a path, bundled name, run directory (its manifest) or Workload."""
    from tracedsl.ir import Workload
    from tracedsl.loading import LoadedSpec, load_spec

    if isinstance(spec, Workload):
        return LoadedSpec(spec.name, spec.params, None, None, "spec")
    if Path(spec).is_dir():
        try:
            found = locate_run(Path(spec))
        except FileNotFoundError as error:
            raise fail(E_NOT_A_RUN, error.strerror, Category.IO, file=str(spec)) from None
        if found.manifest is None:
            raise fail(E_NOT_A_RUN, "a run directory without a manifest.json: nothing to rerun",
                       Category.IO, file=str(spec))
        spec = found.manifest
    return load_spec(spec)


def _recorded_settings(loaded, seed, num_sessions, engine, notes: list[str]):
    """Seed, session count and engine from a manifest, where the command line gave none."""
    from tracedsl.output.manifest import read_tracedsl_fields

    ours = read_tracedsl_fields(loaded.source_path) if loaded.source_path else None
    seed = loaded.manifest_seed if seed is None else seed
    if ours is not None:
        if engine is None and ours.get("engine") in ENGINES:
            engine = ours["engine"]
        if num_sessions is None and loaded.manifest_num_sessions is not None:
            num_sessions = loaded.manifest_num_sessions
            notes.append(f"{num_sessions} sessions requested, as recorded in the manifest")
    elif num_sessions is None and loaded.manifest_num_sessions is not None:
        num_sessions = loaded.manifest_num_sessions
        notes.append(
            f"the reference manifest's num_sessions ({num_sessions}) counts restart continuations; "
            f"running {num_sessions} primary sessions, so the dataset differs from the one it "
            "describes (pass --num-sessions to choose)"
        )
    return seed, num_sessions, engine


def _arrival_warnings(params: GenerationParams, num_sessions: int, located: list[Diagnostic]) -> list[Diagnostic]:
    """W106 when the arrival stages or file hold fewer sessions than the run asks for, at the
    ``arrivals`` statement (where the compile's W105 points)."""
    from tracedsl.diagnostics import Severity
    from tracedsl.engine.arrivals import shortfall

    message = shortfall(params.arrivals, num_sessions) if params.arrivals is not None else None
    if message is None:
        return []
    at = next((w for w in located if w.path == "arrivals" and w.span), None)
    return [Diagnostic(W_ARRIVALS_SHORT, message, Severity.WARNING, file=at.file if at else None,
                       span=at.span if at else None, path="arrivals", source=at.source if at else None,
                       hint="lengthen the stages or the file, or run fewer sessions (-n)")]


def _warnings_from_options(before: GenerationParams, after: GenerationParams,
                           options: RunOptions) -> list[Diagnostic]:
    """Warnings the command-line overrides brought in (e.g. --set making a lognormal constant)."""
    from tracedsl.diagnostics import Severity
    from tracedsl.language.validate import warnings_for

    known = {(w.path, w.message) for w in warnings_for(before)}
    source = "--set" if options.overrides else " ".join(
        option for option, value in (("--max-isl", options.max_isl), ("--max-osl", options.max_osl))
        if value is not None)
    # Each warning keeps its own code (W101, W102, W103), not the constant lognormal's for all.
    return [Diagnostic(w.code or W_CONSTANT, w.message, Severity.WARNING, file=source, path=w.path)
            for w in warnings_for(after) if (w.path, w.message) not in known]


def _check_run_numbers(options: RunOptions) -> None:
    """--seed and --num-sessions within what a run can do and a manifest can record."""
    from tracedsl.output.manifest import MAX_SEED, MAX_SESSIONS

    problems = []
    if options.seed is not None and not 0 <= options.seed <= MAX_SEED:
        problems.append(("--seed", f"must be from 0 to 2**64-1 ({MAX_SEED}), not {options.seed}"))
    if options.num_sessions is not None and not 1 <= options.num_sessions <= MAX_SESSIONS:
        problems.append(
            ("--num-sessions", f"must be from 1 to {MAX_SESSIONS:,}, not {options.num_sessions}")
        )
    if problems:
        raise PipelineError([Diagnostic(E_OPTION, message, file=option) for option, message in problems],
                            Category.USAGE)


# The IR field each numeric option stands for: its value is held to that field's bounds.
OPTION_FIELDS = {
    "--max-isl": ("max_prompt_tokens",),
    "--max-osl": ("generation_length", "max"),
    "--block-size": ("block_size",),  # validate's
}


def option_problem(option: str, value: int) -> str | None:
    """Why ``value`` cannot be the IR field that ``option`` stands for, by that field's bounds."""
    from typing import Annotated

    from pydantic import TypeAdapter, ValidationError

    from tracedsl.language.validate import model_at

    *parent, name = OPTION_FIELDS[option]
    info = model_at(tuple(parent)).model_fields[name]
    try:
        TypeAdapter(Annotated[(info.annotation, *info.metadata)]).validate_python(value, strict=True)
    except ValidationError as error:
        return f"{'.'.join(OPTION_FIELDS[option])}: {error.errors()[0]['msg'].lower()}"
    return None


def _with_limits(params: GenerationParams, max_isl: int | None, max_osl: int | None) -> GenerationParams:
    """--max-isl sets the context limit, --max-osl the output maximum; then revalidate (as the reference)."""
    given = {option: value for option, value in (("--max-isl", max_isl), ("--max-osl", max_osl))
             if value is not None}
    if not given:
        return params
    from tracedsl.language.validate import validate_params

    data = params.generation_params()
    # the limits hold for every session: the top level's and each class's body
    for body in (data, *(c["params"] for c in data.get("classes") or ())):
        if max_isl is not None:
            body["max_prompt_tokens"] = max_isl
        if max_osl is not None:
            # A float, as the reference writes the bound; an integer too large for one stays an
            # integer, so validation reports it against the field's bound.
            osl = float(max_osl) if max_osl <= 2**1023 else max_osl
            body["generation_length"] = {**body["generation_length"], "max": osl}
    new_params, problems = validate_params(data)
    if problems:
        raise PipelineError([
            Diagnostic(E_OPTION, p.message, file=_option_of(p.paths, given), path=p.path or None,
                       hint=p.hint)
            for p in problems
        ])
    return new_params


def _option_of(paths: tuple[str, ...], given: dict[str, int]) -> str:
    """The option(s) behind a problem: the one whose field it names, else every one given."""
    for option in given:
        field_path = ".".join(OPTION_FIELDS[option])
        if any(path == field_path or path.startswith(field_path + ".") for path in paths):
            return option
    return " ".join(given)


def execute_run(
    plan: RunPlan,
    options: RunOptions,
    progress: Callable[[int, int], None] | None = None,
    notice: Callable[[str], None] | None = None,
) -> RunResult:
    """Generate, write, check and publish; PipelineError for whatever stops the run.

    An engine limit is LIMIT, bad executor options USAGE, a lost scheduler or an unwritable
    directory IO, a written file that fails its checks FAILED (nothing is published then).
    ``notice`` is told, in one line each, what the run did to files it did not make (the
    hidden directory of a killed run, removed from the output directory).
    """
    from tracedsl.engine.executors import ExecutorError, ExecutorMissing

    try:
        with _engine_limits(plan):
            return _execute(plan, options, progress, notice)
    except ExecutorMissing as error:  # --executor dask without the extra installed
        raise fail(E_OPTIONS, str(error), Category.USAGE, file="--executor") from error
    except ExecutorError as error:
        raise fail(E_EXECUTOR, str(error), Category.IO, file="--executor") from error
    except RunFailed as error:
        # The findings point into the hidden directory the run wrote in, which is gone now:
        # name the dataset by what it was, keeping each row's line.
        found = [replace(diag, file=WRITTEN_DATASET)
                 for diag in (error.validation.errors if error.validation is not None else [])]
        raise PipelineError([*found, Diagnostic(E_RUN_CHECK, _unhidden(str(error)), file=plan.shown_as)],
                            Category.FAILED) from error
    except OSError as error:
        raise io_failure(error, str(options.output), writing=True, what="cannot write the run") from error


# A path inside the hidden directory a run writes in (output/rundir.py: ``.<name>.tmp-XXXX``).
_HIDDEN_PATH = re.compile(r"\S*\.tmp-[^/\s]+/(\S+)")


def _unhidden(message: str) -> str:
    """A failed run's message without the hidden directory, which is removed by now."""
    return _HIDDEN_PATH.sub(
        lambda found: WRITTEN_DATASET if found.group(1) == "dataset.jsonl" else f"the run's {found.group(1)}",
        message)


@contextlib.contextmanager
def _engine_limits(plan: RunPlan) -> Iterator[None]:
    """An EngineError (the spec is valid, the engine cannot run it) as a LIMIT diagnostic."""
    from tracedsl.engine import EngineError

    try:
        yield
    except EngineError as error:
        # A construct the compiler warned about (W105) has its place: point the refusal there.
        at = next((w for w in plan.warnings if error.path and w.path == error.path and w.span), None)
        if at is None:
            raise fail(E_ENGINE_LIMIT, f"the {plan.engine} engine cannot run this spec: {error}",
                       Category.LIMIT, file=plan.shown_as, path=error.path, hint=error.hint) from error
        raise PipelineError(Diagnostic(E_ENGINE_LIMIT, f"the {plan.engine} engine cannot run this spec: {error}",
                                       file=at.file, span=at.span, hint=error.hint, path=error.path,
                                       source=at.source), Category.LIMIT) from error
    except MemoryError as error:
        raise fail(E_ENGINE_LIMIT, f"the {plan.engine} engine ran out of memory drawing this spec's "
                   f"sessions ({error or 'no detail'}); nothing was published", Category.LIMIT,
                   file=plan.shown_as, hint="lower max_prompt_tokens or raise block_size (fewer "
                   "blocks a session), or give the run more memory") from error


def _execute(plan: RunPlan, options: RunOptions, progress, notice=None) -> RunResult:
    from tracedsl.engine import RunRequest
    from tracedsl.engine.executors import BackgroundThread, make_executor
    from tracedsl.output.chunkcheck import ChunkChecker
    from tracedsl.output.jsonl import JsonlWriter, ReadBack, WrittenFileDiffers
    from tracedsl.output.manifest import RunRecord, write_manifest
    from tracedsl.output.rundir import RunDir, run_dir_name
    from tracedsl.output.sessions import SESSIONS_NAME, SessionIndexWriter
    from tracedsl.trace import EndReason

    # The executor first: its options are checked (and a Dask scheduler reached) before the
    # output directory is created, so a bad --executor/--scheduler leaves nothing behind.
    try:
        executor = make_executor(workers=options.workers, executor=options.executor,
                                 scheduler=options.scheduler, num_sessions=plan.num_sessions)
    except ValueError as error:  # e.g. --scheduler without --executor dask
        raise fail(E_OPTIONS, str(error), Category.USAGE,
                   file="--scheduler" if options.scheduler else "--executor") from error
    request = RunRequest(plan.params, plan.num_sessions, plan.seed)
    end_reasons: Counter = Counter()
    primaries = 0
    classes = ClassCounts(plan.params)
    with _stopped(executor) as map_fn, RunDir(Path(options.output), plan.name) as run_dir, \
            _stopped_on_error(map_fn):
        if notice is not None:
            for stale in run_dir.stale:
                notice(str(stale))
        dataset = run_dir.path / "dataset.jsonl"
        # The checker's spilled hash ids sit beside the dataset, on the same disk, and go
        # before the directory is published (or with it, if the run fails).
        checker = ChunkChecker(str(dataset), plan.params.block_size, spill_dir=run_dir.path)
        reports = _open_reports(plan)
        chunks = _engine(plan.engine, map_fn, run_dir.path).generate(request)
        # Threads beside this one (which samples each chunk and feeds the reports): one prints
        # and writes it, one runs the checks, one reads each piece back as soon as it is in
        # the file (CRC-32 and SHA-256). numpy, zlib, hashlib and file I/O release the GIL.
        try:
            with JsonlWriter(dataset) as writer, ReadBack(dataset) as reread, \
                    SessionIndexWriter(run_dir.path / SESSIONS_NAME, classes.names,
                                       _compacts(plan.params), plan.params.subagent is not None) as index:
                with BackgroundThread(reread.check, name="dataset-reader") as reading, \
                        BackgroundThread(partial(_write, writer, reading, index), name="dataset-writer") as writing, \
                        BackgroundThread(checker.add, name="dataset-checker") as checking:
                    for chunk, rendered in _with_rendering(map_fn, chunks, run_dir.path):
                        writing.put(chunk, rendered)
                        checking.put(chunk)
                        if reports is not None:
                            reports.add(chunk)
                        end_reasons.update(chunk.end_reasons.tolist())
                        classes.add(chunk)
                        primaries += int(chunk.is_primary.sum())
                        if progress is not None:
                            progress(primaries, plan.num_sessions)
                writer.close()
                index.close()
                digest = reread.finish(writer.rows)
        except WrittenFileDiffers as error:
            raise RunFailed(f"{error}; no run directory was published") from error
        validation = checker.finish()
        tolerated = {"hash-id-size-conflict"} if plan.engine == "aiperf" else set()
        if set(validation.error_counts) - tolerated:
            raise RunFailed("the written dataset failed validation; no run directory was published",
                            validation)
        files = [dataset, index.path]
        if reports is not None:
            files.extend(reports.write(run_dir.path, html=options.reports, sessions_index=index.path))
        record = RunRecord(
            seed=plan.seed, config_name=plan.name, params=plan.params, engine=plan.engine,
            requested_sessions=plan.num_sessions, written_sessions=writer.sessions,
            rows=writer.rows, dataset_sha256=digest, spec_source=plan.spec_source,
            spec_sha256=plan.spec_sha256, class_sessions=classes.counts(),
        )
        files.insert(1, write_manifest(run_dir.path, record))
        final = run_dir.commit(run_dir_name(plan.name, plan.num_sessions, plan.seed))
    files = [final / f.relative_to(run_dir.path) for f in files]
    named = Counter({EndReason(code).reference_name: n for code, n in end_reasons.items()})
    return RunResult(final, plan, writer.rows, writer.sessions, named, files, validation,
                     validation.hash_conflicts)


def _compacts(params: GenerationParams) -> bool:
    """Whether any population of the run, or a subagent's body, compacts (then sessions.jsonl
    names logical sessions)."""
    bodies = [body for _, _, body in params.bodies()]
    while bodies[-1].subagent is not None:
        bodies.append(bodies[-1].subagent.params)
    return any(body.compaction is not None for body in bodies)


class ClassCounts:
    """How many sessions (all, and primaries) of each class a run wrote, from the chunks'
    ``class_index`` extra; nothing to count when the spec has no classes."""

    def __init__(self, params: GenerationParams):
        self.names = tuple(c.name for c in params.classes or ())
        self.sessions = [0] * len(self.names)
        self.primaries = [0] * len(self.names)

    def add(self, chunk) -> None:
        which = chunk.extras.get("class_index") if self.names else None
        if which is None:
            return
        import numpy as np  # loaded by the engine already

        size = len(self.names)
        every = np.bincount(which, minlength=size)
        primary = np.bincount(which[chunk.is_primary], minlength=size)
        for i in range(size):
            self.sessions[i] += int(every[i])
            self.primaries[i] += int(primary[i])

    def counts(self) -> tuple[tuple[int, int], ...] | None:
        if not self.names:
            return None
        return tuple(zip(self.sessions, self.primaries, strict=True))


@contextlib.contextmanager
def _stopped(executor):
    """The executor, closed when the run ends, aborted (no waiting on queued work) when it fails."""
    try:
        yield executor
    except BaseException:
        _abort(executor)
        raise
    executor.close()


@contextlib.contextmanager
def _stopped_on_error(map_fn):
    """On an error, Ctrl-C or SIGTERM, stop the workers before the run directory is removed.

    Pool workers print into the run directory; one still printing when it is removed
    would leave a part file behind in a directory of its own making. A pool is aborted: each
    worker finishes only the chunk it is on (or is killed), and nothing waits on its queues.
    """
    try:
        yield
    except BaseException:
        _abort(map_fn)
        raise


def _abort(executor) -> None:
    getattr(executor, "abort", executor.close)()


def abandon_runs() -> None:
    """What an interrupted command does last: stop every pool, remove every unpublished run.

    Whatever point a signal reached, this leaves no worker running, no hidden run directory
    of this process (with its part files and spill folders) and no other spill folder behind. It only touches
    what this process has loaded, so it costs nothing when no run started.
    """
    import sys

    executors = sys.modules.get("tracedsl.engine.executors")
    if executors is not None:
        executors.abort_pools()
    rundir = sys.modules.get("tracedsl.output.rundir")
    if rundir is not None:
        rundir.remove_own_unfinished()
    spill = sys.modules.get("tracedsl.spill")
    if spill is not None:  # those outside a run directory (validate's, in the system's temp)
        spill.remove_all()


def _with_rendering(map_fn, chunks, part_dir: Path):
    """Each chunk with its JSONL when a local pool printed it (a ``RenderedPart``), else with None.

    With a pool, the workers print each stitched chunk into a file of its own in
    ``part_dir`` (beside the dataset, so the writer can move the bytes in the kernel) while
    this process keeps the chunk for its checks and reports. Otherwise the writer's thread
    prints it here: a Dask cluster's workers cannot write beside the dataset, and sending
    every chunk over the network and its bytes back costs more than printing it.
    """
    from tracedsl.engine.executors import ProcessPool, map_alongside
    from tracedsl.output.jsonl import packed_for_printing, render_to_part

    if not isinstance(map_fn, ProcessPool):
        return ((chunk, None) for chunk in chunks)
    # Each chunk goes to a worker with its hash ids as runs (a third of its size) and stays
    # here whole for the checks and reports.
    return map_alongside(map_fn, partial(render_to_part, directory=str(part_dir)), chunks,
                         send=packed_for_printing)


def _engine(name: str, map_fn, spill_dir: Path):
    if name == "fast":
        from tracedsl.engine.fast import FastEngine

        # many waiting continuations (compaction-heavy runs) wait beside the dataset
        return FastEngine(map_fn=map_fn, spill_dir=spill_dir)
    if name == "aiperf":
        from tracedsl.engine.aiperf import AiperfEngine

        # its sampled rows wait beside the dataset until written, and go before it is published
        return AiperfEngine(spill_dir=spill_dir)
    from tracedsl.engine import get_engine

    return get_engine(name)


def _open_reports(plan: RunPlan):
    """The ReportSet that streams every chunk into quality.json, comparison.txt and the HTML pages."""
    from tracedsl.reports import ReportSet

    return ReportSet(plan.params, plan.name, plan.params.block_size, plan.engine)


def _write(writer, reading, index, chunk, rendered) -> None:
    """Write a chunk, hand its piece to the reader thread, then add its sessions to sessions.jsonl."""
    reading.put(*writer.write(chunk, rendered))
    index.write(chunk)


# --------------------------------------------------------------------------------------------
# The Python API: a run in one call


def run(
    spec: str | Path | Workload = DEFAULT_SPEC,
    output: str | Path = ".",
    *,
    num_sessions: int | None = None,
    seed: int | None = None,
    engine: str | None = None,
    overrides: tuple[str, ...] | list[str] = (),
    max_isl: int | None = None,
    max_osl: int | None = None,
    workers: int | None = None,
    executor: str = "local",
    scheduler: str | None = None,
    html: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> RunResult:
    """Run ``spec`` into a new run directory under ``output``; PipelineError when it cannot.

    The same as ``tracedsl run``: the spec's warnings are in ``result.plan.warnings``.
    """
    options = RunOptions(
        spec=spec, num_sessions=num_sessions, seed=seed, output=Path(output), max_isl=max_isl,
        max_osl=max_osl, overrides=tuple(overrides), engine=engine, workers=workers,
        executor=executor, scheduler=scheduler, reports=html,
    )
    return execute_run(plan_run(options), options, progress)


def run_rows(
    spec: str | Path | Workload = DEFAULT_SPEC,
    *,
    num_sessions: int | None = None,
    seed: int | None = None,
    engine: str | None = None,
    overrides: tuple[str, ...] | list[str] = (),
    max_isl: int | None = None,
    max_osl: int | None = None,
) -> Iterator[dict]:
    """The rows ``run`` would write to dataset.jsonl, as dicts in file order; nothing is written.

    The spec is loaded and checked now (PipelineError); the rows are generated as they are
    read, in this process, one chunk of sessions at a time.
    """
    options = RunOptions(spec=spec, num_sessions=num_sessions, seed=seed, max_isl=max_isl,
                         max_osl=max_osl, overrides=tuple(overrides), engine=engine)
    return _rows(plan_run(options))


def _rows(plan: RunPlan) -> Iterator[dict]:
    from tracedsl.engine import RunRequest, get_engine
    from tracedsl.output.jsonl import row_dicts

    with _engine_limits(plan):
        for chunk in get_engine(plan.engine).generate(RunRequest(plan.params, plan.num_sessions, plan.seed)):
            yield from row_dicts(chunk)
