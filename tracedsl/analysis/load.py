"""One loader for every trace ``compare`` and ``fit`` read: a tracedsl run, an AIPerf dataset,
a foreign Mooncake trace, or TraceLab's public release rows.

:func:`load` settles what the trace is (its format, its manifest's spec, its block size and
where its sessions come from) without reading it whole; :meth:`AnalysisInput.chunks` reads it
(again, each call) as :class:`~tracedsl.trace.TraceChunk` objects with what the sessions.jsonl
beside it adds (end reasons, links, request openings). Rows without a ``session_id`` come
through as one-row sessions, as written: :mod:`tracedsl.analysis.chains` finds their
conversations.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from tracedsl.ir import GenerationParams
from tracedsl.trace import TraceChunk

FORMATS = ("tracedsl", "aiperf", "mooncake", "tracelab")
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class AnalysisInput:
    """A trace to measure: where it is, what wrote it, and how to read it."""

    name: str
    dataset: Path
    run_dir: Path | None  # the run directory, when the trace is one's dataset.jsonl
    format: str  # one of FORMATS
    block_size: int
    block_size_from: str  # "--block-size", "the manifest", "the rows" or "the importer's default"
    params: GenerationParams | None  # the manifest's spec, when there is one
    sessions_from: str  # "session_id" or "hash-id chains" (rows without ids)

    def chunks(self, chunk_rows: int = 16384) -> Iterator[TraceChunk]:
        """The trace's sessions in file order (read afresh on each call)."""
        if self.format == "tracelab":
            from tracedsl.imports.tracelab import read_tracelab

            yield from read_tracelab(self.dataset, block_size=self.block_size, chunk_rows=chunk_rows)
            return
        from tracedsl.output.reader import read_trace
        from tracedsl.reports.regenerate import with_index

        yield from with_index(read_trace(self.dataset, chunk_rows), self.params, self.sessions_index())

    def sessions_index(self) -> Path | None:
        """The sessions.jsonl written beside the dataset, if any."""
        if self.format == "tracelab":
            return None
        from tracedsl.output.sessions import index_beside

        return index_beside(self.dataset)

    @property
    def chained(self) -> bool:
        """True when sessions must be found from hash-id prefix chains (rows without ids)."""
        return self.sessions_from == "hash-id chains"


def load(target: str | Path, block_size: int | None = None) -> AnalysisInput:
    """What the trace at ``target`` is (a run directory or a file); PipelineError when it
    cannot be found or read, or its block size cannot be settled."""
    from tracedsl.pipeline.failures import io_failure
    from tracedsl.pipeline.traces import open_trace

    target = Path(target)
    if target.is_file():
        from tracedsl.imports.tracelab import DEFAULT_BLOCK_SIZE, is_tracelab

        try:
            tracelab = is_tracelab(target)
        except OSError as error:
            raise io_failure(error, str(target), writing=False, what="cannot read") from error
        if tracelab:

            size, source = (block_size, "--block-size") if block_size is not None else (
                DEFAULT_BLOCK_SIZE, "the importer's default")
            return AnalysisInput(target.stem, target, None, "tracelab", size, source, None, "session_id")
    found = open_trace(target, block_size)
    first = _first_object(found.dataset)
    if first is None and not _has_text(found.dataset):
        from tracedsl.codes import E_EMPTY_TRACE
        from tracedsl.pipeline.failures import Category, fail

        raise fail(E_EMPTY_TRACE, "the trace has no rows to measure", Category.INPUT, file=str(found.dataset))
    sessions_from = "session_id" if first is None or "session_id" in first else "hash-id chains"
    if found.manifest is None:
        kind = "mooncake"
    else:
        kind = "aiperf" if found.engine == "aiperf" and _is_reference_manifest(found.manifest) else "tracedsl"
    run_dir = found.dataset.parent if found.manifest is not None else None
    return AnalysisInput(found.name, found.dataset, run_dir, kind, found.block_size,
                         found.block_size_from, found.params, sessions_from)


def _first_object(path: Path) -> dict | None:
    """The first non-blank line as a JSON object; None when there is none or it is not one
    (the reader then reports that line, located)."""
    with open(path, "rb") as handle:
        for line in handle:
            line = line.removeprefix(_BOM).strip()
            if not line:
                continue
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError:
                return None
            return value if isinstance(value, dict) else None
    return None


def _has_text(path: Path) -> bool:
    with open(path, "rb") as handle:
        return any(line.removeprefix(_BOM).strip() for line in handle)


def _is_reference_manifest(manifest: Path) -> bool:
    from tracedsl.output.manifest import read_tracedsl_fields

    return read_tracedsl_fields(manifest) is None
