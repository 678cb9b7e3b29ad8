"""KV-cache reuse of a trace when replayed: prefix hit rates (unbounded and LRU) and layer shares.

The replay model (docs/reports.md states it exactly): sessions run one after another in file
order; request t of a session sends the session's whole history, so its prompt blocks are the
distinct hash ids of the session's rows 0..t in order, and each request touches all of them.
A request hits the longest prefix of its blocks that the cache holds.

One pass gives every LRU capacity at once. A block's reuse distance (distinct blocks touched
since its last use) is exact inside a session (a carried block of request t sits behind the
|P(t-1)|-1 other blocks of the previous request) and counted per session across sessions (the
blocks of the sessions in between, those shared with the session just before counted once). A
request's hits at capacity C are its leading blocks whose running maximum distance is below C.

Layers come from what the data shows, never from an id layout: a block entering a session is
new (first appearance in the file; L2 at turn 0, L3 later), L1 when at least half the earlier
sessions used it, carried when a continuation inherits it at turn 0, else L1.5 (shared).
State is per distinct id (sorted arrays); past ``MAX_TRACKED_IDS`` the analysis stops and the
figures say how many sessions and requests they cover.
"""

from __future__ import annotations

import numpy as np

from tracedsl.trace import EndReason, TraceChunk

MAX_TRACKED_IDS = 4_000_000  # ~70 MB of per-id state; beyond it the figures cover a prefix
CAPACITIES = tuple(2**k for k in range(6, 23))  # LRU sizes in blocks: 64 .. 4M
_FAR = 2**23  # a reuse distance past every capacity; _NEVER marks a block never seen
_NEVER = _FAR + 1
_ID_LIMIT = 2**40
LAYERS = ("L1", "L1.5", "L2", "L3")
STATUS = ("new", "cached", "carried")


class _Growable:
    """A numpy array indexed by global session number that grows as sessions arrive."""

    def __init__(self, dtype) -> None:
        self.data = np.zeros(1024, dtype=dtype)
        self.size = 0

    def extend(self, values: np.ndarray) -> None:
        need = self.size + values.size
        if need > self.data.size:
            grown = np.zeros(max(need, 2 * self.data.size), dtype=self.data.dtype)
            grown[: self.size] = self.data[: self.size]
            self.data = grown
        self.data[self.size : need] = values
        self.size = need

    def __getitem__(self, index):
        return self.data[: self.size][index]


class ReuseAnalysis:
    """Streaming prefix-cache and LRU figures, layer token shares, and per-request hit columns."""

    def __init__(self, block_size: int) -> None:
        self.block_size = block_size
        self.sessions = 0  # sessions analysed
        self.requests = 0
        self.skipped_sessions = 0
        self.skipped_requests = 0
        self.prompt_blocks = 0  # sum over requests of |P_t|
        self.hits_at = np.zeros(len(CAPACITIES) + 1, dtype=np.int64)  # ... and unbounded last
        self.layer_blocks = np.zeros((len(LAYERS), len(STATUS)), dtype=np.int64)  # request-weighted
        self.input_tokens = 0  # sum over requests of their rows' inputs (the prompt minus outputs)
        self.output_tokens = 0  # sum over requests of earlier outputs carried in the prompt
        self._ids = np.zeros(0, dtype=np.int64)
        self._last_session = np.zeros(0, dtype=np.int64)
        self._sharers = np.zeros(0, dtype=np.int32)
        self._origin_late = np.zeros(0, dtype=bool)
        self._footprint_start = _Growable(np.int64)
        self._footprint = _Growable(np.int64)
        self._final_blocks = _Growable(np.int64)
        self._footprint_total = 0

    @property
    def stopped(self) -> bool:
        return self._ids.size > MAX_TRACKED_IDS

    def add(self, chunk: TraceChunk) -> ChunkReuse | None:
        """Analyse one chunk; returns its per-row and per-entry columns, or None once stopped."""
        if self.stopped:
            self.skipped_sessions += chunk.num_sessions
            self.skipped_requests += chunk.num_rows
            return None
        result = _analyse(self, chunk)
        self.sessions += chunk.num_sessions
        self.requests += chunk.num_rows
        return result

    def summary(self) -> dict:
        """The quality.json ``kv_reuse`` object."""
        total = max(self.prompt_blocks, 1)
        prompt_tokens = self.input_tokens + self.output_tokens
        layer_total = max(int(self.layer_blocks.sum()), 1)
        shares = {
            layer: round(float(self.input_tokens / max(prompt_tokens, 1) * self.layer_blocks[i].sum() / layer_total), 4)
            for i, layer in enumerate(LAYERS)
        }
        shares["outputs"] = round(self.output_tokens / max(prompt_tokens, 1), 4)
        by_status = {
            layer: {status: int(self.layer_blocks[i, j]) for j, status in enumerate(STATUS)}
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
                f"the first {self.sessions} sessions in file order (per-id state limit)",
            },
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


class ChunkReuse:
    """Per-row results of one chunk, for the per-request charts and the explorer sample."""

    def __init__(self, prompt_blocks, hit_blocks, entry_row, entry_layer, entry_status) -> None:
        self.prompt_blocks = prompt_blocks  # |P_t| per row
        self.hit_blocks = hit_blocks  # unbounded-cache prefix hit per row, blocks
        self.entry_row = entry_row  # per block entering its session: the row it enters at
        self.entry_layer = entry_layer  # index into LAYERS
        self.entry_status = entry_status  # index into STATUS


def _analyse(state: ReuseAnalysis, chunk: TraceChunk) -> ChunkReuse:
    rows, sessions = chunk.num_rows, chunk.num_sessions
    ids = chunk.hash_ids.astype(np.int64, copy=False)
    if ids.size and (ids.min() < 0 or ids.max() >= _ID_LIMIT):
        raise ValueError(f"hash ids must lie in [0, 2^40) for the reuse analysis; found {ids.min()}..{ids.max()}")
    per_row = np.diff(chunk.hash_offsets)
    row_of = np.repeat(np.arange(rows, dtype=np.int64), per_row)
    session_of_row = np.repeat(np.arange(sessions, dtype=np.int64), chunk.turns_per_session)
    turn_of_row = chunk.turn_index
    session_of = session_of_row[row_of]

    # A block enters its session at its first occurrence there; later repeats are already in P.
    key = session_of * _ID_LIMIT + ids
    order = np.argsort(key, kind="stable")
    first = np.ones(ids.size, dtype=bool)
    first[1:] = key[order][1:] != key[order][:-1]
    enters = np.zeros(ids.size, dtype=bool)
    enters[order[first]] = True
    entry = np.flatnonzero(enters)  # file order
    e_ids, e_row, e_sess = ids[entry], row_of[entry], session_of[entry]
    global_sess = state.sessions + e_sess

    # The previous session that used each entering id: within the chunk, else the stored state.
    by_id = np.argsort(e_ids, kind="stable")
    sorted_ids = e_ids[by_id]
    group_start = np.ones(by_id.size, dtype=bool)
    group_start[1:] = sorted_ids[1:] != sorted_ids[:-1]
    group = np.cumsum(group_start) - 1
    starts = np.flatnonzero(group_start)
    rank = np.arange(by_id.size) - starts[group]
    first_ids = sorted_ids[starts]
    where = np.searchsorted(state._ids, first_ids)
    where_c = np.minimum(where, max(state._ids.size - 1, 0))
    known = (where < state._ids.size) & (state._ids[where_c] == first_ids) if state._ids.size else np.zeros(first_ids.size, bool)
    base_last = np.where(known, state._last_session[where_c] if state._ids.size else -1, -1)
    base_sharers = np.where(known, state._sharers[where_c] if state._ids.size else 0, 0)
    first_turn_late = turn_of_row[e_row[by_id[starts]]] > 0
    base_origin = np.where(known, state._origin_late[where_c] if state._ids.size else False, first_turn_late)

    sorted_sess = global_sess[by_id]
    prev_sorted = np.where(rank == 0, base_last[group], np.roll(sorted_sess, 1))
    sharers_sorted = base_sharers[group] + rank
    prev_session = np.empty_like(prev_sorted)
    prev_session[by_id] = prev_sorted
    sharers_before = np.empty_like(sharers_sorted)
    sharers_before[by_id] = sharers_sorted
    origin_late = np.empty(by_id.size, dtype=bool)
    origin_late[by_id] = base_origin[group]

    # Footprints: a session's distinct blocks, less those shared with the session just before.
    blocks = np.bincount(e_sess, minlength=sessions).astype(np.int64)
    this_global = state.sessions + np.arange(sessions)
    overlap = np.bincount(e_sess, weights=(prev_session == global_sess - 1), minlength=sessions)
    footprint = blocks - overlap.astype(np.int64)
    start = state._footprint_total + np.concatenate([[0], np.cumsum(footprint)[:-1]])
    state._footprint_start.extend(start)
    state._footprint.extend(footprint)
    state._final_blocks.extend(blocks)
    state._footprint_total += int(footprint.sum())
    del this_global

    # Reuse distance of each entering block (see the module docstring).
    seen = prev_session >= 0
    distance = np.full(entry.size, _NEVER, dtype=np.int64)
    prev = prev_session[seen]
    far = (
        state._final_blocks[prev] - 1 + state._footprint_start[global_sess[seen]]
        - state._footprint_start[prev] - state._footprint[prev]
    )
    distance[seen] = np.minimum(np.maximum(far, 0), _FAR)

    # Prompt sizes per row: |P_t| grows by the blocks entering at row t.
    entering_per_row = np.bincount(e_row, minlength=rows).astype(np.int64)
    prompt = np.cumsum(entering_per_row)
    session_start = chunk.row_offsets[:-1]
    before_session = np.repeat(prompt[session_start] - entering_per_row[session_start], chunk.turns_per_session)
    prompt -= before_session
    carried = prompt - entering_per_row  # |P_(t-1)|

    # Running maximum of distance along each request's prompt: carried blocks first.
    floor = np.where(carried > 0, carried - 1, -1)
    running = np.maximum(distance, floor[e_row])
    offset = e_row * (_NEVER + 2)
    running = np.maximum.accumulate(running + offset) - offset
    grid = np.array([*CAPACITIES, _NEVER], dtype=np.int64)
    slot = np.searchsorted(grid, running, side="right")  # first capacity that holds it
    hits = np.bincount(slot, minlength=grid.size + 1)[: grid.size]
    has_carried = carried > 0
    carried_slot = np.searchsorted(grid, carried[has_carried] - 1, side="right")
    hits += np.bincount(carried_slot, weights=carried[has_carried], minlength=grid.size + 1)[: grid.size].astype(np.int64)
    state.hits_at += np.cumsum(hits)
    state.prompt_blocks += int(prompt.sum())
    hit_blocks = carried + np.bincount(e_row, weights=running < _NEVER, minlength=rows).astype(np.int64)

    # Layers and how each block entered its session.
    turn = turn_of_row[e_row]
    restart = chunk.is_restart.astype(bool)[e_sess]
    widely = seen & (sharers_before * 2 >= global_sess) & (sharers_before > 0)
    inherited = seen & ~widely & restart & (turn == 0)
    layer = np.where(~seen, np.where(turn > 0, 3, 2), np.where(widely, 0, 1))
    layer = np.where(inherited, np.where(origin_late, 3, 2), layer)
    status = np.where(~seen, 0, np.where(inherited, 2, 1))
    # Each entering block stays in every later request of its session: weight by those requests.
    session_end = np.repeat(chunk.row_offsets[1:], chunk.turns_per_session)
    remaining = (session_end - np.arange(rows))[e_row]
    # The request it enters at sees it with its entry status; later ones carry it.
    np.add.at(state.layer_blocks, (layer, status), 1)
    np.add.at(state.layer_blocks, (layer, np.full(layer.size, 2)), remaining - 1)
    remaining_rows = session_end - np.arange(rows)
    state.input_tokens += int((chunk.input_length.astype(np.int64) * remaining_rows).sum())
    state.output_tokens += int((chunk.output_length.astype(np.int64) * (remaining_rows - 1)).sum())

    _store(state, first_ids, known, where, sorted_sess, group, starts, base_origin)
    return ChunkReuse(prompt, hit_blocks, e_row, layer.astype(np.int8), status.astype(np.int8))


def _store(state, first_ids, known, where, sorted_sess, group, starts, base_origin) -> None:
    """Fold the chunk's ids into the per-id state: last session, sharer count, origin."""
    ends = np.append(starts[1:], sorted_sess.size) - 1
    last = sorted_sess[ends]
    count = (ends - starts + 1).astype(np.int32)
    if known.any():
        slots = where[known]
        state._last_session[slots] = last[known]
        state._sharers[slots] += count[known]
    fresh = ~known
    if fresh.any():
        positions = where[fresh]
        state._ids = np.insert(state._ids, positions, first_ids[fresh])
        state._last_session = np.insert(state._last_session, positions, last[fresh])
        state._sharers = np.insert(state._sharers, positions, count[fresh])
        state._origin_late = np.insert(state._origin_late, positions, base_origin[fresh])


def end_reason_name(value: int) -> str:
    try:
        return EndReason(int(value)).reference_name
    except ValueError:
        return "unknown"
