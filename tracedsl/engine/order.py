"""The stitching pass: chunk bodies in order → TraceChunks in file order, with final hash ids.

Cheap and sequential. It places each restart continuation before the primary its target
names (continuations wait in a small pending set until the writer reaches that primary),
hands out session-unique hash ids densely in file order, and resolves the ids a
continuation reuses once its parent's ids are known (the parent is always written first).
"""

from __future__ import annotations

import pickle
from dataclasses import replace
from pathlib import Path

import numpy as np

from tracedsl.engine.chunk import LINK_RESTART, ChunkBody, Continuations
from tracedsl.engine.columns import SessionColumns, ragged_gather, with_blocks
from tracedsl.engine.model import SessionModel
from tracedsl.engine.prefix import fresh_blocks, hash_ids, session_fresh_bases
from tracedsl.engine.samplers import format_session_ids, session_numbers
from tracedsl.engine.subagents import Descendants
from tracedsl.ir import Latency
from tracedsl.spill import SpillFolder
from tracedsl.trace import TraceChunk

# Subagents' session numbers: CHILD_NUMBERS + their count in file order, a range no primary
# (2i), Session B (2i + 1) or compaction continuation (root + level << 31, level <= 4096) reaches.
CHILD_NUMBERS = 1 << 47


# With a spill folder, once the waiting continuations hold more than SPILL_ROWS rows, those
# due past the current bucket of SPILL_BUCKET primaries wait on disk, a file per bucket, and
# come back when the writer reaches their bucket: memory stays flat however long the run.
SPILL_ROWS = 1 << 21
SPILL_BUCKET = 1 << 15


class PendingSpill:
    """Waiting continuations on disk, by the bucket of primaries their target falls in."""

    def __init__(self, parent: str | Path | None, bucket: int = SPILL_BUCKET):
        self.folder = SpillFolder(parent, ".tracedsl-pending-")
        self.bucket = bucket
        self.buckets: set[int] = set()
        self.written = 0  # continuations that went to disk, all told

    def put(self, group: Continuations) -> None:
        bucket = group.target // self.bucket
        for number in np.unique(bucket).tolist():
            with open(self.folder.file(str(number)), "ab") as handle:
                pickle.dump(group.take(np.flatnonzero(bucket == number)), handle, protocol=5)
            self.buckets.add(number)
        self.written += group.count

    def take_before(self, stop: int | None) -> list[Continuations]:
        """Every part whose bucket starts before primary ``stop`` (None: all), in the order put."""
        parts: list[Continuations] = []
        for number in sorted(b for b in self.buckets if stop is None or b * self.bucket < stop):
            path = self.folder.file(str(number))
            with open(path, "rb") as handle:
                while True:
                    try:
                        parts.append(pickle.load(handle))
                    except EOFError:
                        break
            path.unlink()
            self.buckets.discard(number)
        return parts

    def close(self) -> None:
        self.folder.close()


class Stitcher:
    """Feed chunk bodies in task order; each ``add`` returns that chunk's sessions in file order.

    ``spill_dir``: where waiting continuations may go when they are many (see PendingSpill);
    None keeps them in memory. Either way the output is the same."""

    def __init__(self, model: SessionModel, start_ms: np.ndarray | None = None,
                 latency: Latency | None = None, spill_dir: str | Path | None = None,
                 spill_rows: int = SPILL_ROWS, spill_bucket: int = SPILL_BUCKET):
        self.model = model
        self.next_id = model.first_session_id
        self.pending: Continuations | None = None  # waiting; reused runs already absolute
        # Each primary's start (ms; None: every session starts at 0, as in the reference) and,
        # by its parent's primary index, each continuation's: its parent's start plus the
        # parent's estimated duration under ``latency`` (engine/arrivals.py).
        self.start_ms = start_ms
        self.latency = latency or Latency()
        self.next_child = 0  # subagent sessions numbered so far
        self.spill = PendingSpill(spill_dir, spill_bucket) if spill_dir is not None else None
        self.spill_rows = spill_rows


    def add(self, body: ChunkBody) -> TraceChunk:
        model = self.model
        # Continuations due before a primary of this chunk are written now; the last chunk
        # also writes those placed at the very end.
        written_before = None if body.stop >= model.num_sessions else body.stop
        if self.spill is not None:
            if self.spill.buckets:
                self.pending = _join_all([*self.spill.take_before(written_before), self.pending])
            if written_before is None:  # the last chunk: nothing more waits
                self.spill.close()
        old_due, old_waiting = _split(self.pending, written_before)
        new = body.continuations
        new_due_picks = _due(new, written_before)
        new_due = new.take(new_due_picks) if new is not None else None
        written = [group for group in (old_due, new_due) if group is not None and group.count]

        hosts = [body.primaries, *(g.sessions for g in written)]
        order = _file_order(body.primaries, written)
        children = _children(body, written)
        host_count = sum(h.num_sessions for h in hosts)
        if children is not None:  # each host's block of subagents right after it
            order = with_blocks(order, children.offsets, host_count)[0]
            hosts.append(children.sessions)
        sessions = SessionColumns.concat(hosts).take(order)
        if children is not None:
            sessions = self._numbered(sessions, order >= host_count)
        none = np.zeros(body.primaries.num_sessions, dtype=np.int64)
        tail = [np.zeros(children.count, np.int64)] if children is not None else []
        reused_blocks = np.concatenate([none, *(g.reused_blocks() for g in written), *tail])[order]
        fresh = fresh_blocks(model, sessions, reused_blocks)
        bases = session_fresh_bases(fresh, sessions.row_offsets, self.next_id)

        if new is not None:
            # The parents are primaries of this chunk: their first fresh id is now known.
            position = np.empty(order.shape[0], dtype=np.int64)
            position[order] = np.arange(order.shape[0])
            new = _shift_runs(new, bases[position[new.parent]])
            new_due, new_waiting = new.take(new_due_picks), _split(new, written_before)[1]
            written = [g for g in (old_due, new_due) if g is not None and g.count]
            old_waiting = _join(old_waiting, new_waiting)
        self.pending = old_waiting
        if self.spill is not None and written_before is not None:
            self._spill_far(written_before)

        extra = children.count if children is not None else 0
        offsets, starts, lengths = _runs_in_order(body.primaries.num_sessions, written, order, extra)
        hash_offsets, ids, runs = hash_ids(model, sessions, fresh, self.next_id, offsets, starts, lengths)
        self.next_id = int(bases[-1])
        link = np.concatenate([np.zeros(body.primaries.num_sessions, np.int8), *(g.link for g in written),
                               *([children.link] if children is not None else [])])[order]
        spawned = _spawn_extras(children, order, host_count) if children is not None else {}
        return _trace_chunk(sessions, hash_offsets, ids, runs, self._starts(sessions, written, order, children),
                            link, spawned)

    def _spill_far(self, written_before: int) -> None:
        """Past SPILL_ROWS waiting rows, those due after the current bucket go to disk."""
        waiting = self.pending
        if waiting is None:
            return
        rows = waiting.sessions.input_length.shape[0]
        if waiting.children is not None:
            rows += waiting.children.sessions.input_length.shape[0]
        if rows <= self.spill_rows:
            return
        bucket = self.spill.bucket
        far = waiting.target >= (written_before // bucket + 1) * bucket
        if far.any():
            self.spill.put(waiting.take(np.flatnonzero(far)))
            self.pending = waiting.take(np.flatnonzero(~far)) if not far.all() else None

    def _numbered(self, sessions: SessionColumns, spawned: np.ndarray) -> SessionColumns:
        """Subagent sessions numbered in file order from their own range (see CHILD_NUMBERS)."""
        count = int(spawned.sum())
        number = sessions.number.copy()
        counter = CHILD_NUMBERS + self.next_child + np.arange(count, dtype=np.int64)
        number[spawned] = session_numbers(counter, self.model.id_key)
        self.next_child += count
        return replace(sessions, number=number)

    def _starts(self, sessions: SessionColumns, written: list[Continuations], order: np.ndarray,
                children: Descendants | None = None):
        """Each session's start: its primary's, plus, for a continuation, the estimated time
        its ancestors took (the chunk worked it out: Continuations.offset_ms), and for a
        subagent its host's offset plus its own after its host's start."""
        if self.start_ms is None:
            return 0.0  # every session starts at 0, as in the reference
        primaries = sessions.num_sessions - sum(g.count for g in written)
        hosts = [np.zeros(primaries - (children.count if children is not None else 0)),
                 *(g.offset_ms for g in written)]
        offset = np.concatenate(hosts)
        continued = np.concatenate([np.zeros(hosts[0].shape[0], bool), *(np.ones(g.count, bool) for g in written)])
        if children is not None:
            host = np.repeat(np.arange(offset.shape[0]), np.diff(children.offsets))
            offset = np.concatenate([offset, offset[host] + children.offset_ms])
            continued = np.concatenate([continued, np.ones(children.count, bool)])
        start = self.start_ms[sessions.index]
        return np.where(continued[order], start + offset[order], start)


def _due(group: Continuations | None, written_before: int | None) -> np.ndarray:
    if group is None:
        return np.zeros(0, dtype=np.int64)
    if written_before is None:
        return np.arange(group.count)
    return np.nonzero(group.target < written_before)[0]


def _split(group: Continuations | None, written_before: int | None):
    """(due now, still waiting)."""
    if group is None:
        return None, None
    due = _due(group, written_before)
    waiting = np.setdiff1d(np.arange(group.count), due)
    return group.take(due), (group.take(waiting) if waiting.size else None)


def _join(a: Continuations | None, b: Continuations | None) -> Continuations | None:
    return _join_all([a, b])


def _join_all(groups: list[Continuations | None]) -> Continuations | None:
    parts = [group for group in groups if group is not None and group.count]
    return Continuations.concat(parts) if parts else None


def _shift_runs(group: Continuations, parent_base: np.ndarray) -> Continuations:
    shift = np.repeat(parent_base, np.diff(group.reused_offsets))
    return replace(group, reused_start=group.reused_start + shift)


def _file_order(primaries: SessionColumns, written: list[Continuations]) -> np.ndarray:
    """A continuation goes just before the primary its target names; ties go by parent, then
    by depth in the parent's chain (a continuation after the one it continues)."""
    position = np.concatenate([primaries.index, *(g.target for g in written)])
    continuation_first = np.concatenate(
        [np.ones(primaries.num_sessions, np.int64), *(np.zeros(g.count, np.int64) for g in written)]
    )
    parent = np.concatenate([primaries.index, *(g.sessions.index for g in written)])
    depth = np.concatenate([np.zeros(primaries.num_sessions, np.int64), *(g.depth for g in written)])
    return np.lexsort((depth, parent, continuation_first, position))


def _runs_in_order(primaries: int, written: list[Continuations], order: np.ndarray, spawned: int = 0):
    """The reused runs of every session (none for primaries and the ``spawned`` subagents after
    every continuation), ragged, in file order."""
    counts = np.concatenate(
        [np.zeros(primaries, np.int64), *(np.diff(g.reused_offsets) for g in written),
         np.zeros(spawned, np.int64)]
    )
    offsets = np.zeros(counts.shape[0] + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    starts = np.concatenate([np.zeros(0, np.int64), *(g.reused_start for g in written)])
    lengths = np.concatenate([np.zeros(0, np.int64), *(g.reused_length for g in written)])
    offsets, runs = ragged_gather(offsets, order)
    return offsets, starts[runs], lengths[runs]


def _children(body: ChunkBody, written: list[Continuations]) -> Descendants | None:
    """The descendants of the chunk's hosts (its primaries, then the continuations written),
    by host in that order; None when the run has no subagents."""
    if body.children is None:
        return None
    return Descendants.concat([body.children, *(g.children for g in written if g.children is not None)])


def _spawn_extras(children: Descendants, order: np.ndarray, hosts: int) -> dict[str, np.ndarray]:
    """Per session in file order: the spawning call's turn (-1 but for a subagent) and the
    chunk position of the session it was spawned by or continues (-1 for hosts)."""
    position = np.empty(order.shape[0], dtype=np.int64)
    position[order] = np.arange(order.shape[0])
    host = np.repeat(np.arange(hosts), np.diff(children.offsets))
    at = position[host]
    parent = np.where(children.parent < 0, at, at + 1 + children.parent)
    minus = np.full(hosts, -1, dtype=np.int64)
    return {"spawned_at": np.concatenate([minus, children.spawned_at])[order],
            "parent_position": np.concatenate([minus, parent])[order]}


def _trace_chunk(
    sessions: SessionColumns, hash_offsets: np.ndarray, ids: np.ndarray, runs: tuple,
    starts: np.ndarray | float = 0.0, link: np.ndarray | None = None, spawned: dict | None = None,
) -> TraceChunk:
    timestamp = np.full(sessions.input_length.shape[0], np.nan)
    timestamp[sessions.row_offsets[:-1]] = starts
    extras = {
        # which primary each session belongs to (a continuation names its parent's)
        "primary_index": sessions.index,
        # each row's ids as runs of consecutive ids (the writer sizes rows' text from them)
        "hash_run_offsets": runs[0],
        "hash_run_start": runs[1],
        "hash_run_length": runs[2],
    }
    if sessions.class_index is not None:  # each session's class, in the spec's class order
        extras["class_index"] = sessions.class_index
    if sessions.opens_request is not None:  # with requests: per row, whether the call opens one
        extras["opens_request"] = sessions.opens_request
    if link is not None and (link > LINK_RESTART).any():  # a link other than a restart's
        extras["link"] = link
    if spawned:  # with subagents: each spawning call's turn, and who spawned each subagent
        extras.update(spawned)
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
        extras=extras,
    )
