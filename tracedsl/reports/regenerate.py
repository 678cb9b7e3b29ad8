"""`tracedsl report`: rebuild every report of a run directory or of any Mooncake trace file."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from itertools import islice, repeat
from operator import is_not
from pathlib import Path

import numpy as np

from tracedsl.diagnostics import DiagnosticError
from tracedsl.ir import GenerationParams
from tracedsl.output.blocksize import rows_fitting_in_file
from tracedsl.output.reader import read_trace, survey
from tracedsl.output.rundir import locate_run
from tracedsl.output.sessions import index_beside, index_objects
from tracedsl.reports.reportset import ReportSet
from tracedsl.trace import EndReason, TraceChunk


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

    The finding is ``tracedsl.output.blocksize.file_block_size``'s, read by ``reader.survey``: the range the rows
    allow and the note to show. When no size fits, a row the reader refuses is the better
    message (it is located, and no block size would make the file readable): then the size
    most rows fit is returned, and reading the trace reports that row.
    """
    evidence = survey(dataset)  # read_trace's first pass, kept for the reading that follows
    finding = evidence.finding(lambda size: rows_fitting_in_file(dataset, size))
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
    for chunk in with_index(read_trace(job.dataset), params, index_beside(job.dataset)):
        reports.add(chunk)
    if reports.collector.rows == 0:
        raise ValueError(f"{job.dataset}: the trace has no rows")
    job.output.mkdir(parents=True, exist_ok=True)
    return reports.write(job.output, html=html, sessions_index=index_beside(job.dataset)), reports


def with_classes(chunks: Iterable[TraceChunk], params: GenerationParams | None,
                 index: Path | None) -> Iterator[TraceChunk]:
    """The old name of :func:`with_index` (kept for importers)."""
    yield from with_index(chunks, params, index)


def _field(rows: list[dict], name: str) -> Iterator:
    """Each row's ``name`` (None where absent), with no Python step per row."""
    return map(dict.get, rows, repeat(name))


def _codes(rows: list[dict], name: str, codes: dict, default: int, dtype) -> np.ndarray:
    """Each row's ``name`` as its code in ``codes`` (``default`` for any other value)."""
    return np.fromiter(map(codes.get, _field(rows, name), repeat(default)), dtype=dtype, count=len(rows))


_REASON_CODES = {reason.reference_name: int(reason) for reason in EndReason}
_LINK_CODES = {"restart": 1, "compaction": 2, "subagent": 3}


def with_index(chunks: Iterable[TraceChunk], params: GenerationParams | None,
               index: Path | None) -> Iterator[TraceChunk]:
    """The chunks with what the rows do not say and sessions.jsonl does, as the engine's chunks
    carry it: each session's end reason, and (when the index has them) its ``class_index`` (-1 for
    a session the index does not place in one of the spec's classes), its ``link`` (restart 1,
    compaction 2, subagent 3), each row's ``opens_request`` (from ``requests``), and a subagent's
    ``spawned_at`` and ``parent_position``. With subagents, chunks are cut so each host session
    and the subagents right after it are in one chunk, as the engine writes them. Unchanged
    without an index."""
    if index is None:
        yield from chunks
        return
    number = {session_class.name: i for i, session_class in enumerate(params.classes)} \
        if params is not None and params.classes else None
    rows = index_objects(index)
    pending: dict[str, dict] = {}  # index rows read past, for a trace whose order differs
    returned: deque[dict] = deque()  # rows taken for a chunk whose names they did not match
    carried: tuple[TraceChunk, list[dict]] | None = None
    block: set[str] = set()  # the current host's subagents and their continuations
    for chunk in chunks:
        names = chunk.session_ids
        found = list(islice(rows, len(names))) if not pending and not returned else []
        if found and list(_field(found, "session_id")) != list(names):  # another order, or rows missing
            returned.extend(found)  # read again, one name at a time
            found = []
        if not found:
            for session_id in names:
                while session_id not in pending:
                    row = returned.popleft() if returned else next(rows, None)
                    if row is None:
                        break
                    pending[row.get("session_id")] = row
                found.append(pending.pop(session_id, {}))
        if carried is not None:
            chunk, found = _join(carried[0], chunk), carried[1] + found
            carried = None
        cut = chunk.num_sessions
        if "subagent" in _field(found, "link") or block:
            roots = []
            for s, row in enumerate(found):
                link, parent = row.get("link"), row.get("parent_session_id")
                if link == "subagent" or (link == "compaction" and parent in block):
                    block.add(row.get("session_id"))
                else:
                    block = set()
                    roots.append(s)
            cut = roots[-1] if roots else 0
            if cut == 0:  # one host's block so far: wait for the rest
                carried = (chunk, found)
                continue
            carried = (_slice(chunk, cut, chunk.num_sessions), found[cut:]) if cut < chunk.num_sessions else None
            chunk, found = _slice(chunk, 0, cut), found[:cut]
        yield _annotated(chunk, found, number)
    if carried is not None:
        yield _annotated(carried[0], carried[1], number)


def _annotated(chunk: TraceChunk, found: list[dict], number: dict[str, int] | None) -> TraceChunk:
    extras = dict(chunk.extras)
    if number is not None:
        extras["class_index"] = _codes(found, "class", number, -1, np.int64)
    reasons = _codes(found, "end_reason", _REASON_CODES, int(EndReason.UNKNOWN), np.int8)
    links = _codes(found, "link", _LINK_CODES, 0, np.int8)
    if (links > 1).any():
        extras["link"] = links
    if any(map(dict.__contains__, found, repeat("requests"))):
        opens = np.zeros(chunk.num_rows, dtype=bool)
        turns = chunk.turns_per_session.tolist()
        starts = chunk.row_offsets.tolist()
        at = [starts[s] + t for s, row in enumerate(found) for t in row.get("requests") or ()
              if type(t) is int and 0 <= t < turns[s]]
        opens[np.asarray(at, dtype=np.int64)] = True
        extras["opens_request"] = opens
    if any(map(is_not, _field(found, "spawned_at"), repeat(None))):
        position = {session_id: s for s, session_id in enumerate(chunk.session_ids)}
        parent = np.full(chunk.num_sessions, -1, dtype=np.int64)
        spawned = np.full(chunk.num_sessions, -1, dtype=np.int64)
        for s, row in enumerate(found):
            if links[s] == 3 and type(row.get("spawned_at")) is int:
                spawned[s] = row["spawned_at"]
            if links[s] in (2, 3):
                p = position.get(row.get("parent_session_id"), -1)
                if 0 <= p < s and (links[s] == 3 or parent[p] >= 0 or links[p] == 3):
                    parent[s] = p  # a subagent, or a continuation of one
        extras["spawned_at"] = spawned
        extras["parent_position"] = parent
    return replace(chunk, end_reasons=reasons, extras=extras)


def _slice(chunk: TraceChunk, lo: int, hi: int) -> TraceChunk:
    """Sessions lo .. hi - 1 of a chunk (without extras: the index adds them)."""
    r0, r1 = int(chunk.row_offsets[lo]), int(chunk.row_offsets[hi])
    h0, h1 = int(chunk.hash_offsets[r0]), int(chunk.hash_offsets[r1])
    return TraceChunk(
        session_ids=chunk.session_ids[lo:hi], group_ids=chunk.group_ids[lo:hi],
        is_restart=chunk.is_restart[lo:hi], end_reasons=chunk.end_reasons[lo:hi],
        row_offsets=chunk.row_offsets[lo : hi + 1] - r0, input_length=chunk.input_length[r0:r1],
        output_length=chunk.output_length[r0:r1], delay_ms=chunk.delay_ms[r0:r1],
        timestamp_ms=chunk.timestamp_ms[r0:r1], hash_offsets=chunk.hash_offsets[r0 : r1 + 1] - h0,
        hash_ids=chunk.hash_ids[h0:h1])


def _join(a: TraceChunk, b: TraceChunk) -> TraceChunk:
    return TraceChunk(
        session_ids=[*a.session_ids, *b.session_ids], group_ids=np.concatenate([a.group_ids, b.group_ids]),
        is_restart=np.concatenate([a.is_restart, b.is_restart]),
        end_reasons=np.concatenate([a.end_reasons, b.end_reasons]),
        row_offsets=np.concatenate([a.row_offsets, b.row_offsets[1:] + a.row_offsets[-1]]),
        input_length=np.concatenate([a.input_length, b.input_length]),
        output_length=np.concatenate([a.output_length, b.output_length]),
        delay_ms=np.concatenate([a.delay_ms, b.delay_ms]),
        timestamp_ms=np.concatenate([a.timestamp_ms, b.timestamp_ms]),
        hash_offsets=np.concatenate([a.hash_offsets, b.hash_offsets[1:] + a.hash_offsets[-1]]),
        hash_ids=np.concatenate([a.hash_ids, b.hash_ids]))
