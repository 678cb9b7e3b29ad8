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
would pass MAX_ENTRIES blocks, the requests MAX_ROWS, the runs MAX_RUNS, or an id ID_LIMIT; the
figures then cover those first sessions and say how many (memory stays flat however long the
trace).
"""

from __future__ import annotations

import numpy as np

from tracedsl.reports.stackdist import RunHistory, repeat_runs
from tracedsl.trace import TraceChunk

MAX_ENTRIES = 1 << 23  # session-distinct blocks analysed: ~31k sessions of the default spec
ID_LIMIT = 1 << 23  # hash ids the per-id table holds: 4 bytes each, 24 for ids that recur
MAX_ROWS = 1 << 22  # requests analysed (per-row state: 17 bytes each)
MAX_RUNS = 1 << 21  # runs of repeated blocks remembered (16 bytes each)
CAPACITIES = tuple(2**k for k in range(6, 23))  # LRU sizes in blocks: 64 .. 4M
LAYERS = ("L1", "L1.5", "L2", "L3")
STATUS = ("new", "cached", "carried")
NEW, CACHED, INHERITED = 0, 1, 2  # how a block entered its session (entry codes)


class _IdTable:
    """Per hash id: last place in S, and for ids that recur, first place, entries and weight.

    The arrays are allocated once at ID_LIMIT with zeros (0 = nothing yet, places are stored +1);
    the operating system only backs the pages that ids actually touch.
    """

    def __init__(self) -> None:
        self.last = np.zeros(ID_LIMIT, dtype=np.int32)  # place in S + 1
        self.first = np.zeros(ID_LIMIT, dtype=np.int32)  # place in S + 1, kept for recurring ids
        self.extra = np.zeros(ID_LIMIT, dtype=np.int32)  # later sessions entering it, not inherited
        self.inherited = np.zeros(ID_LIMIT, dtype=np.int32)  # later sessions inheriting it
        self.weight = np.zeros(ID_LIMIT, dtype=np.int64)  # requests holding it, later sessions


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
        self._private = np.zeros((2, len(STATUS)), dtype=np.int64)  # first entries, by turn > 0
        self._row_start: list[np.ndarray] = []  # per analysed row: its first place in S
        self._row_weight: list[np.ndarray] = []  # requests from it to its session's end
        self._row_late: list[np.ndarray] = []  # turn > 0

    def add(self, chunk: TraceChunk) -> ChunkReuse | None:
        """Analyse one chunk (or its first sessions, at the bound); None once the bound is reached."""
        if not self.stop_reason:
            chunk = self._within_bound(chunk)
            if self.stop_reason and chunk.num_sessions == 0:
                return None
        elif chunk.num_sessions:
            self.skipped_sessions += chunk.num_sessions
            self.skipped_requests += chunk.num_rows
            return None
        if chunk.num_sessions == 0:
            return None
        result = _analyse(self, chunk)
        self.sessions += chunk.num_sessions
        self.requests += chunk.num_rows
        if self._runs.size > MAX_RUNS and not self.stop_reason:  # checked after: runs show only then
            self.stop_reason = f"the bound of {MAX_RUNS:,} runs of repeated blocks"
        return result

    def _within_bound(self, chunk: TraceChunk) -> TraceChunk:
        """The chunk's leading sessions that keep S and the ids inside the bounds."""
        if chunk.num_sessions == 0:
            return chunk
        session_hashes = chunk.hash_offsets[chunk.row_offsets]
        fits = np.cumsum(np.diff(session_hashes)) <= MAX_ENTRIES - self.entries
        fits &= chunk.row_offsets[1:] <= MAX_ROWS - self.requests
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
        self.stop_reason = self.stop_reason or (
            f"the bound of {MAX_ENTRIES:,} session-distinct blocks or {MAX_ROWS:,} requests")
        self.skipped_sessions += chunk.num_sessions - keep
        self.skipped_requests += chunk.num_rows - int(chunk.row_offsets[keep])
        return head_sessions(chunk, keep)

    def _rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if len(self._row_start) > 1:
            self._row_start = [np.concatenate(self._row_start)]
            self._row_weight = [np.concatenate(self._row_weight)]
            self._row_late = [np.concatenate(self._row_late)]
        if not self._row_start:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool)
        return self._row_start[0], self._row_weight[0], self._row_late[0]

    def _first_rows(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Weight and turn > 0 of the row where each recurring id first entered."""
        start, weight, late = self._rows()
        row = np.searchsorted(start, self.table.first[ids].astype(np.int64) - 1, side="right") - 1
        return weight[row], late[row]

    def _layers(self, ids: np.ndarray, late: np.ndarray) -> np.ndarray:
        """Layer index of recurring ids, from how many sessions entered them by the end."""
        entered = 1 + self.table.extra[ids].astype(np.int64)
        widely = (entered * 2 >= self.sessions) & (entered >= 2)
        return np.where(widely, 0, np.where(entered >= 2, 1, np.where(late, 3, 2)))

    def _recurring(self) -> np.ndarray:
        size = self.max_id + 1
        table = self.table
        return np.flatnonzero((table.extra[:size] > 0) | (table.inherited[:size] > 0))

    def layer_blocks(self) -> np.ndarray:
        """Request-weighted blocks per (layer, status): every id's entries, labelled at the end."""
        out = np.zeros((len(LAYERS), len(STATUS)), dtype=np.int64)
        out[2:] = self._private  # every first entry was booked as the session's own (L2 / L3)
        recurring = self._recurring()
        if recurring.size == 0:
            return out
        first_weight, late = self._first_rows(recurring)
        late_index = late.astype(np.int64)
        out[2:, 0] -= np.bincount(late_index, minlength=2)  # ... which recurring ids were not
        out[2:, 2] -= np.bincount(late_index, weights=first_weight - 1, minlength=2).astype(np.int64)
        table = self.table
        extra = table.extra[recurring].astype(np.int64)
        inherited = table.inherited[recurring].astype(np.int64)
        layer = self._layers(recurring, late)
        shared = layer <= 1
        # Each entry counts once with its entry status; the later requests of its session carry it.
        tallies = (
            np.ones(recurring.size, dtype=np.int64),
            extra + np.where(shared, inherited, 0),
            np.where(shared, 0, inherited) + first_weight + table.weight[recurring] - 1 - extra - inherited,
        )
        for status, tally in enumerate(tallies):
            out[:, status] += np.bincount(layer, weights=tally, minlength=len(LAYERS)).astype(np.int64)
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

    def label(self, ids: np.ndarray, codes: np.ndarray, late: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Final (layer, status) indices of a sampled session's entering blocks (late: turn > 0)."""
        table = self.table
        recurring = (table.extra[ids] > 0) | (table.inherited[ids] > 0)
        layer = np.where(late, 3, 2)  # a block no other session used is the session's own
        if recurring.any():
            _, first_late = self._first_rows(ids[recurring])
            layer[recurring] = self._layers(ids[recurring], first_late)
        status = np.where(codes == NEW, 0, np.where((codes == INHERITED) & (layer >= 2), 2, 1))
        return layer.astype(np.int8), status.astype(np.int8)


class ChunkReuse:
    """Per-row results of the analysed rows of one chunk, for the per-request charts and the sample."""

    def __init__(self, prompt_blocks, hit_blocks, entry_start, entry_id, entry_code, entry_tokens) -> None:
        self.rows = prompt_blocks.size
        self.prompt_blocks = prompt_blocks  # |P_t| per row
        self.hit_blocks = hit_blocks  # unbounded-cache prefix hit per row, blocks
        self.entry_start = entry_start  # row r's entering blocks are entry_start[r]:entry_start[r+1]
        self.entry_id = entry_id
        self.entry_code = entry_code  # NEW, CACHED or INHERITED
        self.entry_tokens = entry_tokens  # the tokens each entering block holds in its row

    def hit_tokens(self, row_offsets: np.ndarray) -> np.ndarray:
        """Per row, the tokens of its hit blocks: the first ``hit_blocks`` of its session's blocks."""
        turns = np.diff(row_offsets[: np.searchsorted(row_offsets, self.rows) + 1])
        session_start = np.repeat(self.entry_start[row_offsets[: turns.size]], turns)
        held = np.concatenate([[0], np.cumsum(self.entry_tokens, dtype=np.int64)])
        return held[session_start + self.hit_blocks] - held[session_start]


def _analyse(state: ReuseAnalysis, chunk: TraceChunk) -> ChunkReuse:
    rows = chunk.num_rows
    ids = chunk.hash_ids.astype(np.int64, copy=False)
    entry_start = chunk.hash_offsets.astype(np.int64, copy=False)
    # An id above every id seen so far is new without a lookup; only the others are searched.
    fresh = _above_all_before(ids, state.max_id)
    others = np.flatnonzero(~fresh)
    tokens = block_tokens(chunk.input_length, chunk.hash_offsets, state.block_size)
    if not _distinct_in_sessions(chunk, ids, others):
        ids, entry_start, kept = _session_distinct(chunk, ids)
        tokens = tokens[kept]
        fresh = _above_all_before(ids, state.max_id)
        others = np.flatnonzero(~fresh)
    if ids.size:
        state.max_id = max(state.max_id, int(ids.max()))
    fresh_at = np.flatnonzero(fresh)
    state.table.last[ids[fresh_at]] = state.entries + fresh_at + 1

    turns = chunk.turns_per_session
    late_row = chunk.turn_index > 0
    remaining = np.repeat(chunk.row_offsets[1:], turns) - np.arange(rows)  # requests holding a row's blocks
    inheriting_row = np.repeat(chunk.is_restart.astype(bool), turns) & ~late_row
    repeats, rep_prev, rep_row, rep_code = _link(state, ids, others, entry_start, remaining, inheriting_row)

    # Prompt sizes per row: |P_t| grows by the blocks entering at row t.
    entering = np.diff(entry_start)
    prompt = entry_start[1:] - np.repeat(entry_start[chunk.row_offsets[:-1]], turns)
    repeats_per_row = np.bincount(rep_row, minlength=rows)
    hit_blocks = _hits(state, repeats, rep_prev, rep_row, repeats_per_row, entry_start, prompt - entering)
    state.prompt_blocks += int(prompt.sum())

    # First entries are booked as their session's own blocks; layer_blocks() corrects recurring ids.
    new_per_row = entering - repeats_per_row
    for late in (0, 1):
        rows_here = late_row == bool(late)
        state._private[late, 0] += int(new_per_row[rows_here].sum())
        state._private[late, 2] += int((new_per_row * (remaining - 1))[rows_here].sum())
    state._row_start.append(state.entries + entry_start[:-1])
    state._row_weight.append(remaining)
    state._row_late.append(late_row)
    state.input_tokens += int((chunk.input_length.astype(np.int64) * remaining).sum())
    state.output_tokens += int((chunk.output_length.astype(np.int64) * (remaining - 1)).sum())
    state.entries += ids.size
    code = np.zeros(ids.size, dtype=np.int8)
    code[repeats] = rep_code
    return ChunkReuse(prompt, hit_blocks, entry_start, ids, code, tokens)


def _link(state: ReuseAnalysis, ids, others, entry_start, remaining, inheriting_row):
    """Previous place in S of the searched blocks, and the per-id tallies of those that recur.

    The blocks are grouped by id (a stable sort keeps file order inside a group): a group's first
    block continues from the table, each later one from the block before it. Returns the repeats
    in file order: chunk index, previous place in S, row, and CACHED or INHERITED.
    """
    table, base = state.table, state.entries
    if others.size == 0:  # nothing to look up (e.g. a chunk of one-row sessions)
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, np.zeros(0, dtype=np.int8)
    order = np.argsort(ids[others], kind="stable")
    member = others[order]
    member_id = ids[member]
    group_first = np.ones(member.size, dtype=bool)
    group_first[1:] = member_id[1:] != member_id[:-1]
    starts = np.flatnonzero(group_first)
    group_id = member_id[starts]
    last_before = table.last[group_id].astype(np.int64)
    prev_sorted = np.empty(member.size, dtype=np.int64)
    prev_sorted[1:] = base + member[:-1]
    prev_sorted[starts] = last_before - 1
    table.last[group_id] = base + member[np.append(starts[1:], member.size) - 1] + 1
    unrecorded = table.first[group_id] == 0
    table.first[group_id[unrecorded]] = np.where(last_before > 0, last_before, base + member[starts] + 1)[unrecorded]
    member_row = np.repeat(np.arange(remaining.size, dtype=np.int64), np.diff(entry_start))[member]
    recurs = prev_sorted >= 0
    inherits = recurs & inheriting_row[member_row]
    if starts.size:
        table.extra[group_id] += np.add.reduceat((recurs & ~inherits).astype(np.int64), starts)
        table.inherited[group_id] += np.add.reduceat(inherits.astype(np.int64), starts)
        table.weight[group_id] += np.add.reduceat(np.where(recurs, remaining[member_row], 0), starts)
    inverse = np.empty_like(order)
    inverse[order] = np.arange(order.size)
    in_file = recurs[inverse]
    code = np.where(inherits[inverse][in_file], INHERITED, CACHED)
    return others[in_file], prev_sorted[inverse][in_file], member_row[inverse][in_file], code


def _hits(state: ReuseAnalysis, repeats, rep_prev, rep_row, repeats_per_row, entry_start, carried) -> np.ndarray:
    """Add the chunk's hits at every capacity; return each row's hit blocks with an unbounded cache.

    Only a row's leading repeats (before its first new block) can hit; a carried block's distance
    is |P(t-1)| - 1, so it is the floor of the running maximum along the row's entering blocks.
    """
    rep_pos = state.entries + repeats
    heads = np.flatnonzero(repeat_runs(rep_prev, rep_pos))
    lengths = np.diff(np.append(heads, repeats.size))
    distance = np.repeat(state._runs.head_distances(rep_pos[heads], rep_prev[heads], lengths), lengths)
    new_before_row = entry_start[:-1] - (np.cumsum(repeats_per_row) - repeats_per_row)
    leading = (repeats - np.arange(repeats.size)) == new_before_row[rep_row]
    lead_row = rep_row[leading]
    floor = np.where(carried > 0, carried - 1, -1)
    offset = lead_row << 32  # rows apart, so one accumulate restarts at each row
    running = np.maximum.accumulate(np.maximum(distance[leading], floor[lead_row]) + offset) - offset

    grid = np.array(CAPACITIES, dtype=np.int64)
    hits = np.bincount(np.searchsorted(grid, running, side="right"), minlength=grid.size + 1)
    has_carried = carried > 0
    carried_slot = np.searchsorted(grid, carried[has_carried] - 1, side="right")
    hits += np.bincount(carried_slot, weights=carried[has_carried], minlength=grid.size + 1).astype(np.int64)
    hit_blocks = carried + np.bincount(lead_row, minlength=carried.size)
    state.hits_at[:-1] += np.cumsum(hits)[: grid.size]  # a block held at capacity C is held above it
    state.hits_at[-1] += int(hit_blocks.sum())
    return hit_blocks


def _above_all_before(ids: np.ndarray, max_before: int) -> np.ndarray:
    """Whether each id exceeds every id before it, in this chunk and in earlier ones."""
    fresh = np.empty(ids.size, dtype=bool)
    if ids.size == 0:
        return fresh
    running = np.maximum.accumulate(ids)
    np.greater(ids[1:], running[:-1], out=fresh[1:])
    # The running maximum never falls, so only ids before it first passes max_before can fail.
    first_above = int(np.searchsorted(running, max_before, side="right"))
    fresh[:first_above] = False
    if first_above < ids.size:
        fresh[first_above] = True
    return fresh


def _distinct_in_sessions(chunk: TraceChunk, ids: np.ndarray, others: np.ndarray) -> bool:
    """Whether every session's ids strictly increase (so none repeats): only non-fresh ids can fail."""
    others = others[others > 0]
    session_start = np.zeros(ids.size + 1, dtype=bool)
    session_start[chunk.hash_offsets[chunk.row_offsets[:-1]]] = True
    return bool(((ids[others] > ids[others - 1]) | session_start[others]).all())


def block_tokens(input_length: np.ndarray, hash_offsets: np.ndarray, block_size: int) -> np.ndarray:
    """The tokens each hash id's block holds in its row: full blocks, then what the row has left.

    Block k of a row of L tokens holds clip(L - k * block_size, 0, block_size): a partly full
    last block holds L - (len - 1) * block_size, and a row's blocks never hold more than L.
    """
    counts = np.diff(hash_offsets)
    place = np.arange(int(hash_offsets[-1]), dtype=np.int64) - np.repeat(hash_offsets[:-1], counts)
    row_tokens = np.repeat(input_length.astype(np.int64, copy=False), counts)
    return np.clip(row_tokens - place * block_size, 0, block_size)


def _session_distinct(chunk: TraceChunk, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each session's first occurrence of every id, in file order, the rows' new entry starts, and where the kept ids were."""
    row_of = np.repeat(np.arange(chunk.num_rows, dtype=np.int64), np.diff(chunk.hash_offsets))
    session_of = np.repeat(np.arange(chunk.num_sessions, dtype=np.int64), chunk.turns_per_session)[row_of]
    key = (session_of << 23) | ids
    order = np.argsort(key, kind="stable")
    first = np.ones(ids.size, dtype=bool)
    first[1:] = key[order][1:] != key[order][:-1]
    keep = np.zeros(ids.size, dtype=bool)
    keep[order[first]] = True
    kept_rows = np.bincount(row_of[keep], minlength=chunk.num_rows)
    return ids[keep], np.concatenate([[0], np.cumsum(kept_rows)]), np.flatnonzero(keep)


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

