"""``run --sweep``: one run per point of the values' cross product, and sweep.json/sweep.md with each point's key figures."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from tracedsl.diagnostics import Diagnostic, DiagnosticError
from tracedsl.pipeline.failures import E_OPTION, Category, PipelineError, fail, io_failure
from tracedsl.pipeline.runs import RunOptions, RunResult, execute_run, plan_run

__all__ = ["MAX_POINTS", "SweepAxis", "SweepPoint", "SweepResult", "parse_sweeps", "run_sweep"]

MAX_POINTS = 1000  # more runs than this from one command is a typo in a value list
SWEEP_FORMAT_VERSION = 1


@dataclass(frozen=True)
class SweepAxis:
    """One ``--sweep PATH=V1,V2,…``: a path (the language's or spec.json's) and its values as written."""

    path: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class SweepPoint:
    """One run of the sweep: its values (path → value as written) and what the run counted."""

    values: dict[str, str]
    result: RunResult
    mean_input: float | None
    hit_rate: float | None

    def figures(self) -> dict:
        return {
            "values": self.values,
            "run_dir": self.result.run_dir.name,
            "sessions": self.result.sessions,
            "requests": self.result.rows,
            "mean_input": self.mean_input,
            "hit_rate": self.hit_rate,
            "end_reasons": dict(sorted(self.result.end_reasons.items())),
        }


@dataclass(frozen=True)
class SweepResult:
    directory: Path  # holds each point's run directory, sweep.json and sweep.md
    axes: tuple[SweepAxis, ...]
    points: tuple[SweepPoint, ...]
    files: tuple[Path, ...]


def parse_sweeps(texts: list[str] | tuple[str, ...]) -> tuple[SweepAxis, ...]:
    """The axes of ``--sweep`` arguments; PipelineError (USAGE) for a malformed one."""
    axes: list[SweepAxis] = []
    problems: list[Diagnostic] = []
    for text in texts:
        path, sep, values = text.partition("=")
        path = path.strip()
        listed = tuple(value.strip() for value in values.split(","))
        if not sep or not path or not all(listed):
            problems.append(Diagnostic(E_OPTION, f"'{text}' is not PATH=V1,V2,…", file="--sweep",
                                       hint="e.g. --sweep turn.output.mean=500,1k,2k"))
        elif any(axis.path == path for axis in axes):
            problems.append(Diagnostic(E_OPTION, f"{path} is swept twice", file="--sweep", path=path,
                                       hint="give all its values in one --sweep"))
        else:
            axes.append(SweepAxis(path, listed))
    if problems:
        raise PipelineError(problems, Category.USAGE)
    count = 1
    for axis in axes:
        count *= len(axis.values)
    if count > MAX_POINTS:
        raise fail(E_OPTION, f"the sweep has {count} points, more than {MAX_POINTS}", Category.USAGE,
                   file="--sweep", hint="sweep fewer values at once")
    return tuple(axes)


def run_sweep(
    options: RunOptions,
    sweeps: list[str] | tuple[str, ...],
    progress: Callable[[int, int, dict[str, str]], None] | None = None,
) -> SweepResult:
    """Run ``options`` once per point of the sweeps' cross product (each after its --set
    overrides, so a swept path wins), all planned before the first is written.

    The runs go into one new directory under ``options.output``, with sweep.json and
    sweep.md; ``progress(done, total, values)`` is called before each run.
    """
    axes = parse_sweeps(sweeps)
    if not axes:
        raise fail(E_OPTION, "no --sweep given", Category.USAGE, file="--sweep")
    points = [dict(zip([a.path for a in axes], values, strict=True))
              for values in itertools.product(*(a.values for a in axes))]
    planned = []
    for values in points:
        point_options = replace(options, overrides=(*options.overrides, *(f"{p}={v}" for p, v in values.items())))
        try:
            planned.append((values, point_options, plan_run(point_options)))
        except DiagnosticError as error:
            raise _in_sweep(error, values) from None
    first = planned[0][2]
    directory = Path(options.output) / _sweep_dir_name(first.name, first.num_sessions, first.seed)
    try:
        directory.mkdir(parents=True, exist_ok=False)
    except OSError as error:
        raise io_failure(error, str(directory), writing=True, what="cannot make the sweep directory") from error
    done: list[SweepPoint] = []
    for index, (values, point_options, plan) in enumerate(planned):
        if progress is not None:
            progress(index, len(planned), values)
        result = execute_run(plan, replace(point_options, output=directory))
        done.append(_point(values, result))
    files = _write_summary(directory, axes, done, first)
    return SweepResult(directory, axes, tuple(done), files)


def _in_sweep(error: DiagnosticError, values: dict[str, str]) -> PipelineError:
    """A point's planning error, with the diagnostics of a swept value named for --sweep."""
    diagnostics = [
        replace(d, file="--sweep") if d.file == "--set" and d.path in values else d
        for d in error.diagnostics
    ]
    point = ", ".join(f"{p}={v}" for p, v in values.items())
    note = Diagnostic(E_OPTION, f"(in the sweep's point {point})", file="--sweep")
    category = getattr(error, "category", Category.INPUT)
    return PipelineError([*diagnostics, note], category)


def _sweep_dir_name(name: str, num_sessions: int, seed: int) -> str:
    from tracedsl.output.rundir import safe_name

    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{safe_name(name)}_sweep_{num_sessions}s_seed{seed}_{stamp}"


def _point(values: dict[str, str], result: RunResult) -> SweepPoint:
    """The point's figures; mean input and hit rate from the quality.json the run wrote."""
    try:
        quality = json.loads((result.run_dir / "quality.json").read_text())
    except (OSError, ValueError):
        quality = {}
    mean_input = (quality.get("request_input_length") or {}).get("mean")
    hit_rate = (quality.get("kv_reuse") or {}).get("prefix_hit_rate_unbounded")
    return SweepPoint(values, result, mean_input, hit_rate)


def _write_summary(directory: Path, axes, points: list[SweepPoint], first) -> tuple[Path, ...]:
    from tracedsl.files import write_atomic

    document = {
        "format_version": SWEEP_FORMAT_VERSION,
        "workload": first.name,
        "num_sessions": first.num_sessions,
        "seed": first.seed,
        "engine": first.engine,
        "axes": [{"path": a.path, "values": list(a.values)} for a in axes],
        "points": [p.figures() for p in points],
    }
    sweep_json = write_atomic(directory / "sweep.json", json.dumps(document, indent=2) + "\n")
    sweep_md = write_atomic(directory / "sweep.md", sweep_markdown(document))
    return sweep_json, sweep_md


def sweep_markdown(document: dict) -> str:
    """sweep.md: one table row per point, the swept values first."""
    paths = [a["path"] for a in document["axes"]]
    reasons = sorted({r for p in document["points"] for r in p["end_reasons"]})
    head = [*(f"`{p}`" for p in paths), "sessions", "requests", "mean input", "hit rate",
            *(f"ended: {r}" for r in reasons), "run"]
    lines = [
        f"# Sweep of {document['workload']}",
        "",
        f"{document['num_sessions']} sessions a point, seed {document['seed']}, engine "
        f"{document['engine']}. Mean input is the mean prompt a request sends when replayed "
        "(quality.json `request_input_length`); hit rate the share of prompt blocks an unbounded "
        "prefix cache holds (quality.json `kv_reuse`).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for point in document["points"]:
        cells = [
            *(point["values"][p] for p in paths),
            str(point["sessions"]),
            str(point["requests"]),
            "" if point["mean_input"] is None else f"{point['mean_input']:.1f}",
            "" if point["hit_rate"] is None else f"{point['hit_rate']:.1%}",
            *(str(point["end_reasons"].get(r, 0)) for r in reasons),
            point["run_dir"],
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
