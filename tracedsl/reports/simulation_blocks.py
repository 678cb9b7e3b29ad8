"""The simulation's input (sessions as columns) and its block layout, for all sessions at once.

A session's prompt is a sequence of blocks [row 0's ids, row 0's outputs, row 1's ids, ...]
(docs/simulation.md). ``layout`` numbers every block densely, gives it a layer from the data,
and splits it into *shared* blocks (used by 2+ sessions: tracked one by one) and *private*
ones (one session's inputs and outputs: tracked as counts, see simulation_model.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COMMON, SHARED, PRIVATE, OUTPUT = 0, 1, 2, 3


@dataclass(frozen=True)
class SimSession:
    """One session as the simulation sees it: per-turn lengths, delays and hash ids."""

    session_id: str
    is_restart: bool
    input_length: list[int]
    output_length: list[int]
    delay_ms: list[float]  # before each turn; turn 0's is ignored (closed loop)
    hash_ids: list[np.ndarray]


@dataclass(frozen=True)
class SimTrace:
    """Sessions in file order as columns (the layout of a TraceChunk, delays cleaned)."""

    session_ids: list[str]
    is_restart: np.ndarray  # per session
    row_offsets: np.ndarray  # per session + 1: its rows are row_offsets[s]:row_offsets[s+1]
    input_length: np.ndarray  # per row
    output_length: np.ndarray  # per row
    delay_ms: np.ndarray  # per row: 0 for turn 0 and for anything not a finite delay >= 0
    hash_offsets: np.ndarray  # per row + 1, into hash_ids
    hash_ids: np.ndarray

    @property
    def num_sessions(self) -> int:
        return len(self.session_ids)

    @classmethod
    def from_sessions(cls, sessions: list[SimSession]) -> SimTrace:
        turns = [len(s.input_length) for s in sessions]
        rows = [ids for s in sessions for ids in s.hash_ids]
        counts = np.fromiter((len(ids) for ids in rows), np.int64, len(rows))
        row_offsets = np.concatenate(([0], np.cumsum(turns, dtype=np.int64)))
        return cls(
            session_ids=[s.session_id for s in sessions],
            is_restart=np.array([s.is_restart for s in sessions], dtype=bool),
            row_offsets=row_offsets,
            input_length=np.array([v for s in sessions for v in s.input_length], np.int64),
            output_length=np.array([v for s in sessions for v in s.output_length], np.int64),
            delay_ms=clean_delays(
                np.array([v for s in sessions for v in s.delay_ms], np.float64), row_offsets
            ),
            hash_offsets=np.concatenate(([0], np.cumsum(counts))),
            hash_ids=np.concatenate(rows).astype(np.int64) if rows else np.zeros(0, np.int64),
        )


def clean_delays(delay_ms: np.ndarray, row_offsets: np.ndarray) -> np.ndarray:
    """Delays the closed loop can use: turn 0 starts when a slot frees, bad values wait 0 ms."""
    delays = np.where(np.isfinite(delay_ms) & (delay_ms >= 0), delay_ms, 0.0)
    delays[row_offsets[:-1][np.diff(row_offsets) > 0]] = 0.0
    return delays


@dataclass
class Layout:
    """Dense block ids and per-row block counts; "position" is a block's index in its session."""

    num_blocks: int
    layer: np.ndarray  # per dense block id
    tokens_before: np.ndarray  # per block of all sessions, + 1: tokens in earlier blocks
    private_position: np.ndarray  # per private block, in session order: its position
    outputs_before: np.ndarray  # per private block, + 1: output blocks among earlier ones
    shared_ids: np.ndarray  # per shared block, in session order: its dense id
    shared_position: np.ndarray  # its position
    shared_private_before: np.ndarray  # private blocks of its session before it
    # per session (+ 1): where its blocks, private blocks and shared blocks start
    block_start: list[int]
    private_start: list[int]
    shared_start: list[int]
    # per row (one request): blocks, private blocks, shared blocks of its prompt; blocks and
    # private blocks with its outputs; its prompt tokens
    prompt_blocks: list[int]
    prompt_private: list[int]
    prompt_shared: list[int]
    request_blocks: list[int]
    request_private: list[int]
    prompt_tokens: list[int]


def _exclusive(counts: np.ndarray) -> np.ndarray:
    """[0, c0, c0+c1, ...]: where each run starts, plus the total."""
    return np.concatenate(([0], np.cumsum(counts, dtype=np.int64)))


def _rank(counts: np.ndarray) -> np.ndarray:
    """0..c0-1, 0..c1-1, ...: each item's index within its run."""
    return np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(
        np.cumsum(counts) - counts, counts
    )


def layout(trace: SimTrace, block_size: int) -> Layout:
    """Lay out every session's blocks; an id repeated within a session keeps its first place."""
    sessions, rows = trace.num_sessions, len(trace.input_length)
    turns = np.diff(trace.row_offsets)
    row_session = np.repeat(np.arange(sessions, dtype=np.int64), turns)
    ids_per_row = np.diff(trace.hash_offsets)
    id_row = np.repeat(np.arange(rows, dtype=np.int64), ids_per_row)
    id_index = _rank(ids_per_row)  # the id's place in its row: which tokens its block holds
    id_session = row_session[id_row]
    # one stable sort (ids are mostly runs: ~10x faster than np.unique) gives dense ids in
    # value order and, within an id, its places in file order, so sessions come in order
    order = np.argsort(trace.hash_ids, kind="stable")
    by_id = trace.hash_ids[order]
    new_id = np.ones(len(order), dtype=bool)
    new_id[1:] = by_id[1:] != by_id[:-1]
    num_ids = int(new_id.sum())
    dense = np.empty(len(order), dtype=np.int64)
    dense[order] = np.cumsum(new_id) - 1
    # the first place of each (session, id): a repeat names a block the prompt already holds
    new_pair = new_id.copy()
    sessions_by_id = id_session[order]
    new_pair[1:] |= sessions_by_id[1:] != sessions_by_id[:-1]
    keep = np.zeros(len(order), dtype=bool)
    keep[order[new_pair]] = True
    kept_row = id_row[keep]
    kept = np.bincount(kept_row, minlength=rows).astype(np.int64)
    outputs = -(-trace.output_length // block_size)
    row_start = _exclusive(kept + outputs)  # where each row's blocks start, all sessions
    num_blocks = int(row_start[-1])
    blocks = np.empty(num_blocks, dtype=np.int64)
    tokens = np.empty(num_blocks, dtype=np.int64)
    where = row_start[kept_row] + _rank(kept)
    blocks[where] = dense[keep]
    # tokens no kept block holds (repeats, ids short of the length) are always misses
    tokens[where] = np.clip(
        trace.input_length[kept_row] - id_index[keep] * block_size, 0, block_size
    )
    output_row = np.repeat(np.arange(rows, dtype=np.int64), outputs)
    output_rank = _rank(outputs)
    where = row_start[output_row] + kept[output_row] + output_rank
    blocks[where] = num_ids + np.arange(len(output_row), dtype=np.int64)
    tokens[where] = np.clip(
        trace.output_length[output_row] - output_rank * block_size, 0, block_size
    )

    users = np.bincount(dense[keep], minlength=num_ids)  # sessions using each id
    layer = np.full(num_ids + len(output_row), OUTPUT, dtype=np.int8)
    shared_id = users >= 2
    common = shared_id & (users * 2 >= sessions)
    layer[:num_ids] = np.where(common, COMMON, np.where(shared_id, SHARED, PRIVATE))

    block_start = row_start[trace.row_offsets]
    block_session = np.repeat(np.arange(sessions, dtype=np.int64), np.diff(block_start))
    position = np.arange(num_blocks, dtype=np.int64) - block_start[block_session]
    shared = layer[blocks] < PRIVATE
    private = ~shared
    private_before = _exclusive(private)
    shared_before = _exclusive(shared)
    private_start = private_before[block_start]
    shared_start = shared_before[block_start]

    prompt_end = row_start[:-1] + kept  # numbered across all sessions
    request_end = row_start[1:]
    first_block = block_start[row_session]
    inputs = _exclusive(trace.input_length)
    produced = _exclusive(trace.output_length)
    firsts = trace.row_offsets[row_session]
    prompt_tokens = (inputs[1:] - inputs[firsts]) + (produced[:-1] - produced[firsts])
    return Layout(
        num_blocks=len(layer),
        layer=layer,
        tokens_before=_exclusive(tokens),
        private_position=position[private],
        outputs_before=_exclusive(blocks[private] >= num_ids),
        shared_ids=blocks[shared],
        shared_position=position[shared],
        shared_private_before=private_before[:-1][shared] - private_start[block_session[shared]],
        block_start=block_start.tolist(),
        private_start=private_start.tolist(),
        shared_start=shared_start.tolist(),
        prompt_blocks=(prompt_end - first_block).tolist(),
        prompt_private=(private_before[prompt_end] - private_start[row_session]).tolist(),
        prompt_shared=(shared_before[prompt_end] - shared_start[row_session]).tolist(),
        request_blocks=(request_end - first_block).tolist(),
        request_private=(private_before[request_end] - private_start[row_session]).tolist(),
        prompt_tokens=prompt_tokens.tolist(),
    )
