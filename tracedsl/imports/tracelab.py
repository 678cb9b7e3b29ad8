"""TraceLab's public release rows (one JSON object per LLM call) → TraceChunks, the block structure
built from each call's prefix/append split.

The release has no hash ids and no content: a call says how large its prompt was
(``input_tokens_total``) and how much of it the provider found cached (``prefix_tokens``). A
session's calls, in ``(round_index, file order)``, are one tracedsl session while each call's
prefix covers the prompt before it (to within one block); the call whose prefix falls short
(a compaction, or a cache break) starts a continuation whose first prompt reuses the first
``prefix_tokens // block_size`` blocks of the session's context. docs/tracelab.md states the
rules, what the timing events give and what the rows cannot say.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson

from tracedsl.codes import E_TRACELAB_JSON
from tracedsl.imports.tracelab_rows import (
    DEFAULT_BLOCK_SIZE,
    Columns,
    check_format,
    fail,
    parse_batch,
)
from tracedsl.imports.tracelab_write import logical_sessions, write_run, write_tracelab
from tracedsl.output.lines import MAX_LINE_BYTES, raw_line_batches
from tracedsl.trace import EndReason, TraceChunk

__all__ = ["DEFAULT_BLOCK_SIZE", "COMPACTION_SHRINK", "is_tracelab", "logical_sessions", "read_tracelab",
           "write_run", "write_tracelab"]

CHUNK_ROWS = 16384
# A continuation whose first prompt is below this share of the prompt before it follows a
# compaction (its parent ends "compacted"); a larger one follows a cache break ("unknown").
COMPACTION_SHRINK = 0.75
LINK_CONTINUATION = 2  # the chunks' "link" extra of a compaction continuation (docs/architecture.md)


def is_tracelab(path: str | Path) -> bool:
    """Whether the first non-blank line is a TraceLab release row: a JSON object with
    ``input_tokens_total`` and ``round_index`` and no ``hash_ids``."""
    with open(path, "rb") as handle:
        for _, raws, _ in raw_line_batches(handle):
            for raw in raws:
                if isinstance(raw, bytes):
                    row = _object(raw)
                    return row is not None and "input_tokens_total" in row and "round_index" in row \
                        and "hash_ids" not in row
                if raw.kind != "byte-order-mark":
                    return False
    return False


def read_tracelab(path: str | Path, block_size: int = DEFAULT_BLOCK_SIZE, chunk_rows: int = CHUNK_ROWS,
                  shared_prefix_tokens: int = 0) -> Iterator[TraceChunk]:
    """Yield the file's sessions as chunks of about ``chunk_rows`` rows (whole TraceLab sessions,
    in order of first appearance); the first bad row raises a located DiagnosticError.

    ``shared_prefix_tokens`` gives every session's first prompt the same first
    ``shared_prefix_tokens // block_size`` blocks (ids 0 ..), e.g. a system prompt the rows
    cannot show is shared.
    """
    if block_size < 1:
        raise ValueError(f"block_size must be at least 1, got {block_size}")
    if shared_prefix_tokens < 0:
        raise ValueError(f"shared_prefix_tokens must be >= 0, got {shared_prefix_tokens}")
    path = Path(path)
    columns, names = _read(path)
    if columns.lines.shape[0] == 0:
        return
    builder = _Builder(columns, names, block_size, shared_prefix_tokens // block_size)
    del columns  # the builder holds the rows sorted; the file-order columns can go
    yield from builder.chunks(max(chunk_rows, 1))


def _read(path: Path) -> tuple[Columns, list[str]]:
    """Every row, checked, in file order, and the session names in order of first appearance."""
    parts: list[Columns] = []
    numbered: dict[str, int] = {}  # session name -> its number, by first appearance
    first = True
    with open(path, "rb") as handle:
        for numbers, raws, problems in raw_line_batches(handle, MAX_LINE_BYTES):
            lines, texts = numbers, raws
            if problems:
                lines, texts = [], []
                for number, raw in zip(numbers, raws, strict=True):
                    if isinstance(raw, bytes):
                        lines.append(number)
                        texts.append(raw)
                    elif raw.kind != "byte-order-mark":  # a BOM is dropped; the line after it is read
                        fail(path, number, E_TRACELAB_JSON, raw.message, None, raw.column)
            if not texts:
                continue
            if first:  # a file of another format says so at its first row, before any field does
                row = _object(texts[0])
                if row is not None:
                    check_format(path, lines[0], row)
                first = False
            part = parse_batch(path, lines, texts)
            # each row's session number, by first appearance (the names are not kept per row)
            part.sessions = np.fromiter((numbered.setdefault(name, len(numbered)) for name in part.sessions),
                                        dtype=np.int64, count=len(part.sessions))
            parts.append(part)
    return Columns.join(parts), list(numbered)


def _object(raw: bytes) -> dict | None:
    """The line as a JSON object; None when it is not one (parse_batch then says why)."""
    try:
        row = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return row if isinstance(row, dict) else None


class _Builder:
    """Rows sorted into sessions and split into segments; chunks built from them one at a time."""

    def __init__(self, columns: Columns, names: list[str], block_size: int, shared_blocks: int) -> None:
        order = np.lexsort((columns.lines, columns.round_index, columns.sessions))
        self.names = names
        self.block_size = block_size
        self.shared_blocks = shared_blocks
        self.next_id = shared_blocks  # fresh ids follow the shared ones, in file order
        self.session = columns.sessions[order]
        self.total = columns.total[order]
        self.prefix = columns.prefix[order]
        self.output = columns.output[order]
        earliest = columns.earliest_ms
        self.start = columns.start_ms[order] - earliest
        self.end = columns.end_ms[order] - earliest
        self.opens = columns.opens[order]
        rows = self.session.shape[0]
        self.opening = np.ones(rows, dtype=bool)  # a session's first row
        self.opening[1:] = self.session[1:] != self.session[:-1]
        previous_total = np.concatenate([[0], self.total[:-1]])
        # a call whose prefix misses a block or more of the prompt before it starts a segment
        self.breaks = ~self.opening & (self.prefix + block_size <= previous_total)

    def chunks(self, chunk_rows: int) -> Iterator[TraceChunk]:
        firsts = np.flatnonzero(self.opening)
        which = firsts // chunk_rows  # sessions starting in one span of chunk_rows rows go together
        cuts = np.flatnonzero(np.concatenate([[True], which[1:] != which[:-1]]))
        bounds = np.append(firsts[cuts], self.session.shape[0]).tolist()
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            yield self._chunk(lo, hi)

    def _chunk(self, lo: int, hi: int) -> TraceChunk:
        total, prefix, output = self.total[lo:hi], self.prefix[lo:hi], self.output[lo:hi]
        opening, breaks = self.opening[lo:hi], self.breaks[lo:hi]
        starts = opening | breaks  # each segment's first row
        rows = hi - lo
        segment = np.cumsum(starts) - 1
        seg_first = np.flatnonzero(starts)
        row_offsets = np.append(seg_first, rows).astype(np.int64)

        # Inputs: each segment's request_input_length follows input_tokens_total, never shrinking
        # (a prompt shorter than the one before plus its output gives an input of 0).
        outputs_before = np.cumsum(output) - output
        outputs_before -= np.repeat(outputs_before[seg_first], np.diff(row_offsets))
        climb = total - outputs_before
        span = int(climb.max() - climb.min()) + 1 if rows else 1
        lifted = climb + segment * span  # each segment above the last: one running maximum for all
        prompt = np.maximum.accumulate(lifted) - segment * span + outputs_before
        input_length = np.empty(rows, dtype=np.int64)
        input_length[1:] = prompt[1:] - prompt[:-1] - output[:-1]
        input_length[seg_first] = total[seg_first]

        # Times: a row's start; its delay is the gap since the call before it completed (a
        # continuation's first row keeps its gap too: only a TraceLab session's first has none).
        start, end = self.start[lo:hi], self.end[lo:hi]
        delay = np.full(rows, np.nan)
        delay[1:] = np.maximum(start[1:] - end[:-1], 0.0)
        delay[opening] = np.nan

        hash_offsets, hash_ids = self._ids(input_length, prefix, seg_first, opening[seg_first])

        link = np.where(opening[seg_first], 0, LINK_CONTINUATION).astype(np.int8)
        reasons = np.full(seg_first.shape[0], int(EndReason.UNKNOWN), dtype=np.int8)
        continued = np.flatnonzero(link[1:] == LINK_CONTINUATION)  # segment i + 1 continues segment i
        shrunk = total[seg_first[continued + 1]] < COMPACTION_SHRINK * total[seg_first[continued + 1] - 1]
        reasons[continued[shrunk]] = int(EndReason.COMPACTED)

        session = self.session[lo:hi][seg_first]
        level = np.arange(seg_first.shape[0]) - np.maximum.accumulate(np.where(link == 0, np.arange(link.shape[0]), 0))
        names = self.names
        ids = [names[s] if k == 0 else f"{names[s]}#{k}" for s, k in zip(session.tolist(), level.tolist(), strict=True)]
        count = seg_first.shape[0]
        return TraceChunk(
            session_ids=ids,
            group_ids=np.full(count, -1, dtype=np.int64),
            is_restart=np.zeros(count, dtype=bool),
            end_reasons=reasons,
            row_offsets=row_offsets,
            input_length=input_length,
            output_length=output.copy(),
            delay_ms=delay,
            timestamp_ms=start.copy(),
            hash_offsets=hash_offsets,
            hash_ids=hash_ids,
            extras={
                "primary_index": session,  # the TraceLab session (the logical session), numbered in order
                "link": link,  # 0 a session's first segment, 2 a continuation
                "opens_request": self.opens[lo:hi].copy(),
            },
        )

    def _ids(self, input_length: np.ndarray, prefix: np.ndarray, seg_first: np.ndarray,
             root: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(hash_offsets, hash_ids): ceil(input / block) ids a row; a session's first prompt opens with
        the shared ids, a continuation's with the first prefix // block ids of the segment before."""
        bs = self.block_size
        counts = -(-input_length // bs)
        hash_offsets = np.zeros(counts.shape[0] + 1, dtype=np.int64)
        np.cumsum(counts, out=hash_offsets[1:])
        segment_blocks = np.add.reduceat(counts, seg_first) if seg_first.size else counts[:0]
        before = np.concatenate([[0], segment_blocks[:-1]])  # the blocks of the segment before
        reused = np.where(root, np.minimum(self.shared_blocks, input_length[seg_first] // bs),
                          np.minimum(prefix[seg_first] // bs, before))
        total_ids = int(hash_offsets[-1])
        fresh = np.ones(total_ids, dtype=bool)
        lead = np.repeat(hash_offsets[seg_first], reused) + (
            np.arange(int(reused.sum()), dtype=np.int64) - np.repeat(np.cumsum(reused) - reused, reused))
        fresh[lead] = False
        hash_ids = np.empty(total_ids, dtype=np.int64)
        fresh_count = int(fresh.sum())
        hash_ids[fresh] = self.next_id + np.arange(fresh_count, dtype=np.int64)
        self.next_id += fresh_count
        # the shared ids are 0 .. at each session's first row; a continuation copies the segment
        # before it, in order, so a chain of continuations copies what its parent copied
        hash_ids[lead] = lead - np.repeat(hash_offsets[seg_first], reused)
        for s in np.flatnonzero(~root & (reused > 0)).tolist():
            count, at, parent_at = int(reused[s]), int(hash_offsets[seg_first[s]]), int(hash_offsets[seg_first[s - 1]])
            hash_ids[at:at + count] = hash_ids[parent_at:parent_at + count]
        return hash_offsets, hash_ids
