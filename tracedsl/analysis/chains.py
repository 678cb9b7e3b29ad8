"""Conversations in a trace whose rows carry no ``session_id``, from their hash-id prefix chains.

A foreign Mooncake trace (the FAST'25 release) writes every request's whole prompt as hash ids
and says nothing of which requests belong together. A later turn of a conversation resends the
whole earlier prompt: its leading ids are the earlier request's ids, all but perhaps the last
(a partly filled block changes once the conversation grows past it). So a row **continues** an
earlier row's chain when

- its leading ids shared with earlier rows reach, at least, every block of that earlier row but
  its last (the earlier row being the one that first wrote the last shared block), the earlier
  row has at least two blocks (a one-block row is only the shared system prompt), and
- the earlier row is still its chain's last row: of several rows extending the same row, the
  first continues the chain and the others start chains of their own (a retry, a branch).

Everything is whole-array work: the first writer of each id, the leading shared run of each
row (a reduceat), the first claimant of each parent (np.unique), and chain numbers and depths
by pointer jumping over parent links (log2 of the longest chain steps).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from tracedsl.trace import TraceChunk

_DENSE_IDS = 1 << 27  # ids below this are looked up in one array; larger ones are renumbered


@dataclass
class Chains:
    """Per row, in file order: its chain, its place in it, the row it extends, its shared lead."""

    session: np.ndarray  # chain number, numbered in order of each chain's first row
    turn: np.ndarray  # the row's index within its chain
    parent: np.ndarray  # the earlier row it continues, -1 for a chain's first row
    shared_blocks: np.ndarray  # leading blocks the row shares with any earlier row

    @property
    def num_sessions(self) -> int:
        return int(self.session.max()) + 1 if self.session.size else 0

    @property
    def num_rows(self) -> int:
        return int(self.session.size)

    def turns_per_session(self) -> np.ndarray:
        return np.bincount(self.session, minlength=self.num_sessions)


class _FirstWriter:
    """The first row that wrote each hash id (global row numbers), for ids seen so far."""

    def __init__(self) -> None:
        self._dense = np.full(0, -1, dtype=np.int64)
        self._sparse: dict[int, int] = {}

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        out = np.full(ids.size, -1, dtype=np.int64)
        small = (ids >= 0) & (ids < min(self._dense.size, _DENSE_IDS))
        out[small] = self._dense[ids[small]]
        large = ~small & ((ids < 0) | (ids >= _DENSE_IDS))
        if large.any() and self._sparse:
            values, inverse = np.unique(ids[large], return_inverse=True)
            found = np.array([self._sparse.get(int(v), -1) for v in values.tolist()], dtype=np.int64)
            out[large] = found[inverse]
        return out

    def record(self, ids: np.ndarray, rows: np.ndarray) -> None:
        """Record (id, row) pairs for ids not yet known (the first pair of each id wins)."""
        if not ids.size:
            return
        values, first = np.unique(ids, return_index=True)
        rows = rows[first]
        dense = (values >= 0) & (values < _DENSE_IDS)
        if dense.any():
            top = int(values[dense].max()) + 1
            if top > self._dense.size:
                grown = np.full(max(top, 2 * self._dense.size), -1, dtype=np.int64)
                grown[: self._dense.size] = self._dense
                self._dense = grown
            target = values[dense]
            unknown = self._dense[target] < 0
            self._dense[target[unknown]] = rows[dense][unknown]
        for value, row in zip(values[~dense].tolist(), rows[~dense].tolist(), strict=True):
            self._sparse.setdefault(value, row)


def chain_sessions(chunks: Iterable[TraceChunk]) -> Chains:
    """Every row's chain, from the rows' hash ids in file order (rows of any session layout)."""
    writers = _FirstWriter()
    shared_parts, writer_parts, length_parts = [], [], []
    first_row = 0
    for chunk in chunks:
        rows = chunk.num_rows
        if rows == 0:
            continue
        ids = chunk.hash_ids.astype(np.int64, copy=False)
        lengths = np.diff(chunk.hash_offsets).astype(np.int64)
        row_of = first_row + np.repeat(np.arange(rows, dtype=np.int64), lengths)
        writer = writers.lookup(ids)
        # An id unknown before this chunk: its first writer is its first row within the chunk.
        fresh = writer < 0
        if fresh.any():
            values, inverse = np.unique(ids[fresh], return_inverse=True)
            first_at = np.full(values.size, np.iinfo(np.int64).max, dtype=np.int64)
            np.minimum.at(first_at, inverse, row_of[fresh])
            writer[fresh] = first_at[inverse]
        earlier = writer < row_of
        # Leading shared run: the first position of each row not written before it.
        position = np.arange(ids.size, dtype=np.int64) - np.repeat(chunk.hash_offsets[:-1].astype(np.int64), lengths)
        stop = np.where(earlier, np.iinfo(np.int64).max, position)
        shared = np.full(rows, 0, dtype=np.int64)
        nonempty = lengths > 0
        if nonempty.any():
            starts = chunk.hash_offsets[:-1][nonempty].astype(np.int64)
            lead = np.minimum.reduceat(stop, starts)
            shared[nonempty] = np.minimum(lead, lengths[nonempty])
        # The first writer of each row's last shared block.
        last_shared = chunk.hash_offsets[:-1].astype(np.int64) + shared - 1
        writer_of_last = np.where(shared > 0, writer[np.maximum(last_shared, 0)], -1)
        shared_parts.append(shared)
        writer_parts.append(writer_of_last)
        length_parts.append(lengths)
        writers.record(ids, row_of)
        first_row += rows
    if not shared_parts:
        empty = np.zeros(0, dtype=np.int64)
        return Chains(empty, empty, empty, empty)
    shared = np.concatenate(shared_parts)
    candidate = np.concatenate(writer_parts)
    lengths = np.concatenate(length_parts)
    return _linked(shared, candidate, lengths)


def _linked(shared: np.ndarray, candidate: np.ndarray, lengths: np.ndarray) -> Chains:
    rows = shared.size
    row = np.arange(rows, dtype=np.int64)
    valid = candidate >= 0
    valid[valid] &= lengths[candidate[valid]] >= 2
    valid[valid] &= shared[valid] >= lengths[candidate[valid]] - 1
    parent = np.full(rows, -1, dtype=np.int64)
    claimants = row[valid]
    if claimants.size:
        # Rows are in order, so np.unique's first index is each parent's earliest claimant.
        _, first = np.unique(candidate[claimants], return_index=True)
        winners = claimants[first]
        parent[winners] = candidate[winners]
    root, depth = _roots(parent)
    heads = parent < 0
    number = np.cumsum(heads) - 1  # chains numbered in order of their first row
    return Chains(number[root], depth, parent, shared)


def _roots(parent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's chain head and its depth, by pointer jumping."""
    rows = parent.size
    up = np.where(parent < 0, np.arange(rows, dtype=np.int64), parent)
    depth = (parent >= 0).astype(np.int64)
    while True:
        if np.array_equal(up[up], up):
            return up, depth
        depth = depth + depth[up]
        up = up[up]
