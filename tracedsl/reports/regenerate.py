"""`tracedsl report`: rebuild every report of a run directory or of any Mooncake trace file."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from tracedsl.diagnostics import DiagnosticError
from tracedsl.ir import GenerationParams
from tracedsl.output.blocksize import file_block_size
from tracedsl.output.reader import read_trace
from tracedsl.output.rundir import locate_run
from tracedsl.output.sessions import index_beside, read_index
from tracedsl.reports.reportset import ReportSet
from tracedsl.trace import TraceChunk


@dataclass(frozen=True)
class ReportJob:
    dataset: Path
    manifest: Path | None
    output: Path


def locate(source: Path, output: Path | None) -> ReportJob:
    """The trace, its manifest and where to write (the run directory rule: output.rundir.locate_run)."""
    found = locate_run(source)
    return ReportJob(found.dataset, found.manifest, output or found.dataset.parent)


def infer_block_size(dataset: Path) -> int | None:
    """The trace's block size by the one rule, or None when no size fits every row.

    ``tracedsl.output.blocksize.file_block_size`` gives the whole finding: the range the rows
    allow and the note to show. When no size fits, a row the reader refuses is the better
    message (it is located, and no block size would make the file readable): then the size
    most rows fit is returned, and reading the trace reports that row.
    """
    finding = file_block_size(dataset)
    if finding.agreed:
        return finding.size
    try:
        for _ in read_trace(dataset):
            pass
    except DiagnosticError:
        return finding.closest
    return None


def regenerate(job: ReportJob, params: GenerationParams | None, name: str, block_size: int,
               html: bool = True, engine: str = "fast") -> tuple[list[Path], ReportSet]:
    """Stream the trace through a ReportSet and write its files into the output directory."""
    reports = ReportSet(params, name, block_size, engine)
    for chunk in with_classes(read_trace(job.dataset), params, index_beside(job.dataset)):
        reports.add(chunk)
    if reports.collector.rows == 0:
        raise ValueError(f"{job.dataset}: the trace has no rows")
    job.output.mkdir(parents=True, exist_ok=True)
    return reports.write(job.output, html=html, sessions_index=index_beside(job.dataset)), reports


def with_classes(chunks: Iterable[TraceChunk], params: GenerationParams | None,
                 index: Path | None) -> Iterator[TraceChunk]:
    """The chunks, each with its sessions' ``class_index`` from sessions.jsonl (the rows do not
    say a session's class; the engine's chunks carry it). -1 for a session the index does not
    place in one of the spec's classes; unchanged without classes or without an index."""
    if params is None or not params.classes or index is None:
        yield from chunks
        return
    number = {session_class.name: i for i, session_class in enumerate(params.classes)}
    rows = (row for _, row in read_index(index) if isinstance(row, dict))
    pending: dict[str, int] = {}  # index rows read past, for a trace whose order differs
    for chunk in chunks:
        found = np.full(chunk.num_sessions, -1, dtype=np.int64)
        for s, session_id in enumerate(chunk.session_ids):
            while session_id not in pending:
                row = next(rows, None)
                if row is None:
                    break
                pending[row.get("session_id")] = number.get(row.get("class"), -1)
            found[s] = pending.pop(session_id, -1)
        yield replace(chunk, extras={**chunk.extras, "class_index": found})
