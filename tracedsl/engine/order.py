"""The stitching pass: chunk bodies in order → TraceChunks in file order, with final hash ids.

Cheap and sequential. It places each restart continuation before the primary its target
names (continuations wait in a small pending set until the writer reaches that primary),
hands out session-unique hash ids densely in file order, and resolves the ids a
continuation reuses once its parent's ids are known (the parent is always written first).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from tracedsl.engine.chunk import ChunkBody, Continuations
from tracedsl.engine.columns import SessionColumns, ragged_gather
from tracedsl.engine.model import SessionModel
from tracedsl.engine.prefix import fresh_blocks, hash_ids, session_fresh_bases
from tracedsl.engine.samplers import format_session_ids
from tracedsl.trace import TraceChunk


class Stitcher:
    """Feed chunk bodies in task order; each ``add`` returns that chunk's sessions in file order."""

    def __init__(self, model: SessionModel):
        self.model = model
        self.next_id = model.first_session_id
        self.pending: list[Continuations] = []  # reused starts already absolute

    def add(self, body: ChunkBody) -> TraceChunk:
        model = self.model
        is_last = body.stop >= model.num_sessions

        def split(group: Continuations) -> tuple[Continuations, Continuations]:
            now = np.ones(group.target.shape[0], bool) if is_last else group.target < body.stop
            return group.take(np.nonzero(now)[0]), group.take(np.nonzero(~now)[0])

        due, waiting = [], []
        for group in self.pending:
            now, later = split(group)
            due.append(now)
            waiting.append(later)
        new = body.continuations
        new_due = new_waiting = None
        if new is not None:
            new_due, new_waiting = split(new)
        written = [group for group in (*due, new_due) if group is not None and group.target.size]

        # A continuation goes before the primary its target names; ties by parent.
        primaries = body.primaries
        parts = [primaries, *(group.sessions for group in written)]
        order = np.lexsort(
            (
                np.concatenate([part.index for part in parts]),
                np.concatenate([np.ones(primaries.num_sessions, np.int64)]
                               + [np.zeros(g.target.shape[0], np.int64) for g in written]),
                np.concatenate([primaries.index, *(group.target for group in written)]),
            )
        )
        sessions = SessionColumns.concat(parts).take(order)
        no_runs = np.zeros(primaries.num_sessions + 1, dtype=np.int64)
        offsets, starts, lengths = _ragged_concat(
            [no_runs, *(g.reused_offsets for g in written)],
            [no_runs[:0], *(g.reused_start for g in written)],
            [no_runs[:0], *(g.reused_length for g in written)],
        )
        # New continuations' runs are still relative to their parent's first fresh id; the
        # parents are in this chunk, so that id is known once the order is.
        new_runs_at = offsets[-1] - (new_due.reused_offsets[-1] if new_due is not None else 0)
        offsets, runs = ragged_gather(offsets, order)
        starts_so_far = np.zeros(runs.shape[0] + 1, dtype=np.int64)
        np.cumsum(lengths[runs], out=starts_so_far[1:])
        reused_blocks = starts_so_far[offsets[1:]] - starts_so_far[offsets[:-1]]
        fresh = fresh_blocks(model, sessions, reused_blocks)
        bases = session_fresh_bases(fresh, sessions.row_offsets, self.next_id)
        if new is not None:
            position = np.empty(order.shape[0], dtype=np.int64)
            position[order] = np.arange(order.shape[0])
            starts[new_runs_at:] += np.repeat(
                bases[position[new_due.parent]], np.diff(new_due.reused_offsets)
            )
            if new_waiting.target.size:
                base = bases[position[new_waiting.parent]]
                shift = np.repeat(base, np.diff(new_waiting.reused_offsets))
                waiting.append(replace(new_waiting, reused_start=new_waiting.reused_start + shift))
        self.pending = [group for group in waiting if group.target.size]

        hash_offsets, ids = hash_ids(
            model, sessions, fresh, self.next_id, offsets, starts[runs], lengths[runs]
        )
        self.next_id = int(bases[-1])
        return _trace_chunk(sessions, hash_offsets, ids)


def _ragged_concat(offsets: list[np.ndarray], *columns: list[np.ndarray]):
    counts = np.concatenate([np.diff(o) for o in offsets])
    joined = np.zeros(counts.shape[0] + 1, dtype=np.int64)
    np.cumsum(counts, out=joined[1:])
    return (joined, *(np.concatenate(parts) for parts in columns))


def _trace_chunk(sessions: SessionColumns, hash_offsets: np.ndarray, ids: np.ndarray) -> TraceChunk:
    timestamp = np.full(sessions.input_length.shape[0], np.nan)
    timestamp[sessions.row_offsets[:-1]] = 0.0  # every session starts at 0, as in the reference
    return TraceChunk(
        session_ids=format_session_ids(sessions.number),
        group_ids=sessions.group,
        is_restart=sessions.is_restart,
        end_reasons=sessions.end_reason,
        row_offsets=sessions.row_offsets,
        input_length=sessions.input_length,
        output_length=sessions.output_length,
        delay_ms=sessions.delay_ms,
        timestamp_ms=timestamp,
        hash_offsets=hash_offsets,
        hash_ids=ids,
        # which primary each session belongs to (a continuation names its parent's)
        extras={"primary_index": sessions.index},
    )
