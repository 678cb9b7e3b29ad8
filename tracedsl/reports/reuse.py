"""KV-cache reuse of a trace when replayed: exact prefix hit rates (unbounded and LRU) and layer shares.

The replay model (docs/reports.md states it exactly): sessions run one after another in file
order; request t of a session sends the session's whole history, so its prompt blocks P(t) are
the distinct hash ids of the session's rows 0..t in order, and each request touches all of them.
A request hits the longest prefix of its blocks that the cache holds.

Every LRU capacity comes out of one exact pass. A carried block of request t was last touched by
request t-1, behind the |P(t-1)| - 1 other blocks of that request, so that is its stack distance.
A block entering its session was last touched at its previous session's last request, and the
distinct blocks touched since are exactly the distinct blocks between its two places in S, the
sequence of every session's distinct blocks in first-use order: stackdist.py counts those. A
request's hits at capacity C are its leading blocks whose running maximum distance is below C.

Layers come from what the data shows, never from an id layout, decided when the analysis ends
so the first sessions are labelled like the rest: a block entered (not inherited) by at least
half of the sessions is L1, by two or more L1.5; otherwise it belongs to the session that first
used it: L2 if it entered at turn 0, L3 later. A continuation's turn-0 blocks that already
appeared are inherited (status carried unless the block is L1 or L1.5).

Per-id state is a table indexed by hash id. The analysis covers sessions in file order until S
would pass MAX_ENTRIES blocks or an id would pass ID_LIMIT; the figures then cover those first
sessions and say how many (memory stays flat however long the trace).
"""

from __future__ import annotations

import numpy as np

from tracedsl.reports.stackdist import RunHistory, repeat_runs
from tracedsl.trace import EndReason, TraceChunk

MAX_ENTRIES = 1 << 22  # session-distinct blocks analysed: ~16k sessions of the default spec
ID_LIMIT = 1 << 22  # hash ids the per-id table can hold (17 bytes each at most: ~70 MB)
CAPACITIES = tuple(2**k for k in range(6, 23))  # LRU sizes in blocks: 64 .. 4M
LAYERS = ("L1", "L1.5", "L2", "L3")
STATUS = ("new", "cached", "carried")
NEW, CACHED, INHERITED = 0, 1, 2  # how a block entered its session (entry codes)


class _IdTable:
    """Per hash id: last position in S, sessions entering it, inheritances, request weight, turn."""

    def __init__(self) -> None:
        self.size = 0
        self.last = np.zeros(0, dtype=np.int32)
        self.entered = np.zeros(0, dtype=np.int32)  # sessions that entered it, not by inheritance
        self.inherited = np.zeros(0, dtype=np.int32)
        self.weight = np.zeros(0, dtype=np.int64)  # requests whose prompt holds it, all sessions
        self.late = np.zeros(0, dtype=bool)  # first entered after turn 0

    def ensure(self, size: int) -> None:
        if size <= self.last.size:
            self.size = max(self.size, size)
            return
        grown = min(max(size + size // 4, 1 << 16), ID_LIMIT)
        for name, fill in (("last", -1), ("entered", 0), ("inherited", 0), ("weight", 0), ("late", False)):
            old = getattr(self, name)
            new = np.full(grown, fill, dtype=old.dtype)
            new[: old.size] = old
            setattr(self, name, new)
        self.size = size

    def layers(self, ids: np.ndarray, sessions: int) -> np.ndarray:
        """Each id's layer index, from how many sessions entered it by the end."""
        entered = self.entered[ids]
        widely = (entered * 2 >= sessions) & (entered >= 2)
        return np.where(widely, 0, np.where(entered >= 2, 1, np.where(self.late[ids], 3, 2)))


class ReuseAnalysis:
    """Streaming prefix-cache and LRU figures, layer token shares, and per-request hit columns."""

    def __init__(self, block_size: int) -> None:
        self.block_size = block_size
        self.sessions = 0  # sessions analysed
        self.requests = 0
        self.skipped_sessions = 0
        self.skipped_requests = 0
        self.stop_reason = ""
        self.entries = 0  # length of S so far
        self.max_id = -1
        self.prompt_blocks = 0  # sum over requests of |P_t|
        self.hits_at = np.zeros(len(CAPACITIES) + 1, dtype=np.int64)  # ... and unbounded last
        self.input_tokens = 0  # sum over requests of their rows' inputs (the prompt minus outputs)
        self.output_tokens = 0  # sum over requests of earlier outputs carried in the prompt
        self.table = _IdTable()
        self._runs = RunHistory()

    def add(self, chunk: TraceChunk) -> ChunkReuse | None:
        """Analyse one chunk (or its first sessions, at the bound); None once the bound is reached."""
        if not self.stop_reason:
            chunk = self._within_bound(chunk)
        elif chunk.num_sessions:
            self.skipped_sessions += chunk.num_sessions
            self.skipped_requests += chunk.num_rows
            return None
        if chunk.num_sessions == 0:
            return None
        result = _analyse(self, chunk)
        self.sessions += chunk.num_sessions
        self.requests += chunk.num_rows
        return result

    def _within_bound(self, chunk: TraceChunk) -> TraceChunk:
        """The chunk's leading sessions that keep S and the ids inside the bounds."""
        if chunk.num_sessions == 0:
            return chunk
        session_hashes = chunk.hash_offsets[chunk.row_offsets]
        fits = np.cumsum(np.diff(session_hashes)) <= MAX_ENTRIES - self.entries
        ids = chunk.hash_ids
        if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= ID_LIMIT):
            bad = (ids < 0) | (ids >= ID_LIMIT)
            bad_before = np.concatenate([[0], np.cumsum(bad)])[session_hashes]
            fits &= np.diff(bad_before) == 0
            self.stop_reason = f"a hash id outside [0, {ID_LIMIT:,}) (the per-id table's size)"
        keep = chunk.num_sessions if fits.all() else int(np.argmin(fits))
        if keep == chunk.num_sessions:
            self.stop_reason = ""
            return chunk
        self.stop_reason = self.stop_reason or f"the bound of {MAX_ENTRIES:,} session-distinct blocks"
        self.skipped_sessions += chunk.num_sessions - keep
        self.skipped_requests += chunk.num_rows - int(chunk.row_offsets[keep])
        return head_sessions(chunk, keep)

    def layer_blocks(self) -> np.ndarray:
        """Request-weighted blocks per (layer, status): every id's entries, labelled at the end."""
        table, size = self.table, self.table.size
        used = np.flatnonzero(table.entered[:size] > 0)
        layer = table.layers(used, self.sessions)
        entered = table.entered[used].astype(np.int64)
        inherited = table.inherited[used].astype(np.int64)
        shared = layer <= 1
        # Each entry counts once with its entry status; the later requests of its session carry it.
        by_status = np.stack([
            np.ones(used.size, dtype=np.int64),
            entered - 1 + np.where(shared, inherited, 0),
            np.where(shared, 0, inherited) + table.weight[used] - entered - inherited,
        ], axis=1)
        out = np.zeros((len(LAYERS), len(STATUS)), dtype=np.int64)
        for index in range(len(LAYERS)):
            out[index] = by_status[layer == index].sum(axis=0)
        return out

    def summary(self) -> dict:
        """The quality.json ``kv_reuse`` object."""
        total = max(self.prompt_blocks, 1)
        prompt_tokens = self.input_tokens + self.output_tokens
        layer_blocks = self.layer_blocks()
        layer_total = max(int(layer_blocks.sum()), 1)
        shares = {
            layer: round(float(self.input_tokens / max(prompt_tokens, 1) * layer_blocks[i].sum() / layer_total), 4)
            for i, layer in enumerate(LAYERS)
        }
        shares["outputs"] = round(self.output_tokens / max(prompt_tokens, 1), 4)
        by_status = {
            layer: {status: int(layer_blocks[i, j]) for j, status in enumerate(STATUS)}
            for i, layer in enumerate(LAYERS)
        }
        return {
            "model": "serial replay in file order; request t's prompt = distinct hash ids of its "
            "session's rows 0..t; hit = longest cached prefix, in blocks (docs/reports.md)",
            "block_size": self.block_size,
            "sample": {
                "sessions": self.sessions,
                "requests": self.requests,
                "of_sessions": self.sessions + self.skipped_sessions,
                "of_requests": self.requests + self.skipped_requests,
                "method": "all" if not self.skipped_sessions else
                f"the first {self.sessions:,} sessions in file order, replayed exactly; the analysis "
                f"stops at {self.stop_reason} so memory stays flat",
            },
            "exact": "every figure is exact for the sessions in the sample: LRU hit rates from exact "
            "stack distances (no estimate); layers decided from the whole sample",
            "prompt_blocks": int(self.prompt_blocks),
            "prefix_hit_rate_unbounded": round(self.hits_at[-1] / total, 6),
            "lru_hit_rate": [
                {"capacity_blocks": cap, "capacity_tokens": cap * self.block_size,
                 "hit_rate": round(self.hits_at[i] / total, 6)}
                for i, cap in enumerate(CAPACITIES)
            ],
            "layer_token_share": shares,
            "layer_blocks_by_status": by_status,
        }

    def label(self, ids: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Final (layer, status) indices of a sampled session's entering blocks."""
        layer = self.table.layers(ids, self.sessions)
        status = np.where(codes == NEW, 0, np.where((codes == INHERITED) & (layer >= 2), 2, 1))
        return layer.astype(np.int8), status.astype(np.int8)


class ChunkReuse:
    """Per-row results of the analysed rows of one chunk, for the per-request charts and the sample."""

    def __init__(self, prompt_blocks, hit_blocks, entry_start, entry_id, entry_code) -> None:
        self.rows = prompt_blocks.size
        self.prompt_blocks = prompt_blocks  # |P_t| per row
        self.hit_blocks = hit_blocks  # unbounded-cache prefix hit per row, blocks
        self.entry_start = entry_start  # row r's entering blocks are entry_start[r]:entry_start[r+1]
        self.entry_id = entry_id
        self.entry_code = entry_code  # NEW, CACHED or INHERITED


def _analyse(state: ReuseAnalysis, chunk: TraceChunk) -> ChunkReuse:
    rows = chunk.num_rows
    ids = chunk.hash_ids.astype(np.int64, copy=False)
    per_row = np.diff(chunk.hash_offsets)
    row_of = np.repeat(np.arange(rows, dtype=np.int64), per_row)
    ids, row_of = _session_distinct(chunk, ids, row_of)
    count = ids.size
    position = state.entries + np.arange(count, dtype=np.int64)
    table = state.table
    if count:
        table.ensure(int(ids.max()) + 1)

    # Previous place in S of each block. An id above every id seen so far is new without a lookup.
    running_max = np.maximum.accumulate(ids) if count else ids
    before_max = np.maximum(np.concatenate([[state.max_id], running_max[:-1]]), state.max_id)
    fresh = ids > before_max
    state.max_id = max(state.max_id, int(running_max[-1])) if count else state.max_id
    table.last[ids[fresh]] = position[fresh]
    prev = np.full(count, -1, dtype=np.int64)
    others = np.flatnonzero(~fresh)
    if others.size:
        order = np.argsort(ids[others], kind="stable")
        sorted_ids, sorted_pos = ids[others][order], position[others][order]
        first = np.ones(order.size, dtype=bool)
        first[1:] = sorted_ids[1:] != sorted_ids[:-1]
        prev_sorted = np.empty(order.size, dtype=np.int64)
        prev_sorted[1:] = sorted_pos[:-1]
        prev_sorted[first] = table.last[sorted_ids[first]]
        prev[others[order]] = prev_sorted
        last = np.append(first[1:], True)
        table.last[sorted_ids[last]] = sorted_pos[last]
    seen = prev >= 0

    # Prompt sizes per row: |P_t| grows by the blocks entering at row t.
    entering = np.bincount(row_of, minlength=rows).astype(np.int64)
    entry_start = np.concatenate([[0], np.cumsum(entering)])
    prompt = entry_start[1:].copy()
    session_start = chunk.row_offsets[:-1]
    turns = chunk.turns_per_session
    prompt -= np.repeat(entry_start[session_start], turns)
    carried = prompt - entering  # |P(t-1)|

    # Exact distances of repeated blocks; only each row's leading repeats can be hits.
    repeats = np.flatnonzero(seen)
    rep_prev, rep_pos = prev[repeats], position[repeats]
    heads = np.flatnonzero(repeat_runs(rep_prev, rep_pos))
    lengths = np.diff(np.append(heads, repeats.size))
    distance = np.repeat(state._runs.head_distances(rep_pos[heads], rep_prev[heads], lengths), lengths)
    rep_row = row_of[repeats]
    repeats_before_row = np.concatenate([[0], np.cumsum(np.bincount(rep_row, minlength=rows))])[:-1]
    new_before_row = entry_start[:-1] - repeats_before_row
    leading = (repeats - np.arange(repeats.size)) == new_before_row[rep_row]
    lead_row = rep_row[leading]
    floor = np.where(carried > 0, carried - 1, -1)
    offset = lead_row << 32
    running = np.maximum.accumulate(np.maximum(distance[leading], floor[lead_row]) + offset) - offset

    grid = np.array(CAPACITIES, dtype=np.int64)
    hits = np.bincount(np.searchsorted(grid, running, side="right"), minlength=grid.size + 1)
    has_carried = carried > 0
    carried_slot = np.searchsorted(grid, carried[has_carried] - 1, side="right")
    hits += np.bincount(carried_slot, weights=carried[has_carried], minlength=grid.size + 1).astype(np.int64)
    hit_blocks = carried + np.bincount(lead_row, minlength=rows)
    state.hits_at[:-1] += np.cumsum(hits)[: grid.size]
    state.hits_at[-1] += int(hit_blocks.sum())
    state.prompt_blocks += int(prompt.sum())

    # Per-id tallies for the layers, which are decided at the end.
    session_end = np.repeat(chunk.row_offsets[1:], turns)
    remaining_rows = session_end - np.arange(rows)
    weight = remaining_rows[row_of]
    turn_of_row = chunk.turn_index
    code = np.where(seen, CACHED, NEW).astype(np.int8)
    restart_row = np.repeat(chunk.is_restart.astype(bool), turns) & (turn_of_row == 0)
    code[seen & restart_row[row_of]] = INHERITED
    new_ids = ids[~seen]
    table.entered[new_ids] = 1
    table.weight[new_ids] = weight[~seen]
    table.late[new_ids] = turn_of_row[row_of[~seen]] > 0
    np.add.at(table.weight, ids[repeats], weight[repeats])
    rep_code = code[repeats]
    np.add.at(table.entered, ids[repeats[rep_code == CACHED]], 1)
    np.add.at(table.inherited, ids[repeats[rep_code == INHERITED]], 1)
    state.input_tokens += int((chunk.input_length.astype(np.int64) * remaining_rows).sum())
    state.output_tokens += int((chunk.output_length.astype(np.int64) * (remaining_rows - 1)).sum())
    state.entries += count
    return ChunkReuse(prompt, hit_blocks, entry_start, ids, code)


def _session_distinct(chunk: TraceChunk, ids: np.ndarray, row_of: np.ndarray):
    """Each session's first occurrence of every id, in file order (a row may repeat earlier ones)."""
    if ids.size < 2:
        return ids, row_of
    starts = chunk.hash_offsets[chunk.row_offsets[1:-1]]
    new_session = np.zeros(ids.size, dtype=bool)
    new_session[starts[starts < ids.size]] = True
    increasing = (ids[1:] > ids[:-1]) | new_session[1:]
    if increasing.all():  # strictly increasing inside each session: nothing repeats (no sort)
        return ids, row_of
    session_of = np.cumsum(new_session)
    order = np.argsort((session_of << 23) | ids, kind="stable")
    key = (session_of << 23 | ids)[order]
    first = np.ones(ids.size, dtype=bool)
    first[1:] = key[1:] != key[:-1]
    keep = np.zeros(ids.size, dtype=bool)
    keep[order[first]] = True
    return ids[keep], row_of[keep]


def head_sessions(chunk: TraceChunk, keep: int) -> TraceChunk:
    """The chunk's first ``keep`` sessions."""
    rows = int(chunk.row_offsets[keep])
    hashes = int(chunk.hash_offsets[rows])
    return TraceChunk(
        session_ids=chunk.session_ids[:keep], group_ids=chunk.group_ids[:keep],
        is_restart=chunk.is_restart[:keep], end_reasons=chunk.end_reasons[:keep],
        row_offsets=chunk.row_offsets[: keep + 1], input_length=chunk.input_length[:rows],
        output_length=chunk.output_length[:rows], delay_ms=chunk.delay_ms[:rows],
        timestamp_ms=chunk.timestamp_ms[:rows], hash_offsets=chunk.hash_offsets[: rows + 1],
        hash_ids=chunk.hash_ids[:hashes],
    )


def end_reason_name(value: int) -> str:
    try:
        return EndReason(int(value)).reference_name
    except ValueError:
        return "unknown"
