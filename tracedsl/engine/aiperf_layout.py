"""The reference's hash ids as its writer prints them, laid out over sessions in file order.

Turn 0 prints the synthesizer's in-memory ids: the first L1 ids, the group's L1.5 ids and a
run starting at the session's region base (a continuation reuses its origin's region, each
explicit-turn attempt takes a new one). Later rows print fresh ids from one cursor for the
whole file, which jumps past each turn 0's largest id (§8.9, §8.10). Both are whole runs of
consecutive ids, so the flat id column is built with a few vectorized passes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from tracedsl.engine.aiperf_sampler import (
    MAX_GROUP_BLOCKS,
    MAX_GROUPS,
    MAX_SESSION_BLOCKS,
    Sampled,
    session_names,
)
from tracedsl.ir import GenerationParams
from tracedsl.trace import TraceChunk

SESSIONS_PER_CHUNK = 4096


def _expand_runs(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenate ``range(start, start + length)`` for every run, in order."""
    total = int(lengths.sum())
    offsets = np.cumsum(lengths) - lengths
    return np.repeat(starts - offsets, lengths) + np.arange(total, dtype=np.int64)


def layout_chunks(
    sampled: Sampled, params: GenerationParams, per_chunk: int = SESSIONS_PER_CHUNK
) -> Iterator[TraceChunk]:
    """Reorder the sampled sessions into file order and attach the printed hash ids.

    Per-session quantities (where each session's ids start) are computed for the whole run;
    per-row columns only one chunk at a time, to keep the peak memory near the sampler's.
    """
    block = params.block_size
    layer1_blocks, layer1_5_blocks = params.layer1_blocks, params.layer1_5_blocks
    order = sampled.file_order
    first_blocks, all_blocks = _session_blocks(sampled, block)
    later_blocks = (all_blocks - first_blocks)[order]
    first_blocks = first_blocks[order]
    del all_blocks

    # Turn 0: L1 ids, the group's L1.5 ids, then the session's own run in its region.
    layer1_used = np.minimum(layer1_blocks, first_blocks)
    layer1_5_used = np.minimum(layer1_5_blocks, first_blocks - layer1_used)
    session_used = first_blocks - layer1_used - layer1_5_used
    group_base = layer1_blocks + MAX_GROUP_BLOCKS * sampled.group_ids[order]
    region_base = layer1_blocks + MAX_GROUPS * MAX_GROUP_BLOCKS + MAX_SESSION_BLOCKS * sampled.regions[order]
    past_first = np.where(
        session_used > 0,
        region_base + session_used,
        np.where(layer1_5_used > 0, group_base + layer1_5_used, layer1_used),
    )
    # Later rows: the cursor jumps to max(cursor, past_first) at each turn 0, then runs on.
    before_session = np.cumsum(later_blocks) - later_blocks
    cursor_start = np.maximum.accumulate(np.maximum(past_first - before_session, 0)) + before_session
    first_segments = np.column_stack(
        [np.zeros_like(group_base), group_base, region_base, layer1_used, layer1_5_used, session_used]
    )

    turns = np.diff(sampled.row_offsets)[order]
    # A continuation is drawn right after its origin: its primary is the latest one before it.
    primary_index = np.cumsum(~sampled.is_restart, dtype=np.int64) - 1
    try:
        for first in range(0, len(order), per_chunk):
            last = min(first + per_chunk, len(order))
            picked = order[first:last]
            yield _chunk(sampled, block, picked, turns[first:last], cursor_start[first:last],
                         first_segments[first:last], primary_index[picked])
    finally:
        sampled.rows.close()  # spilled rows: their files go as soon as the last chunk is out


def _session_blocks(sampled: Sampled, block: int, rows_per_pass: int = 1 << 21):
    """Each session's blocks on turn 0 and on all its turns, reading the rows a span at a time."""
    offsets = sampled.row_offsets
    sessions = offsets.shape[0] - 1
    first_blocks = np.zeros(sessions, dtype=np.int64)
    all_blocks = np.zeros(sessions, dtype=np.int64)
    first = 0
    while first < sessions:
        # whole sessions, about rows_per_pass rows (at least one session)
        last = max(first + 1, int(np.searchsorted(offsets, offsets[first] + rows_per_pass, side="right")) - 1)
        last = min(last, sessions)
        start = int(offsets[first])
        blocks = -(-sampled.rows.new_tokens(start, int(offsets[last])) // block)
        starts = offsets[first:last] - start
        first_blocks[first:last] = blocks[starts]
        all_blocks[first:last] = np.add.reduceat(blocks, starts)
        first = last
    return first_blocks, all_blocks


def _chunk(
    sampled: Sampled,
    block: int,
    picked: np.ndarray,
    turns: np.ndarray,
    cursor_start: np.ndarray,
    first_segments: np.ndarray,
    primary_index: np.ndarray,
) -> TraceChunk:
    row_offsets = np.zeros(len(picked) + 1, dtype=np.int64)
    np.cumsum(turns, out=row_offsets[1:])
    rows = _expand_runs(sampled.row_offsets[:-1][picked], turns)
    new_tokens, outputs, delays = sampled.rows.take(rows)
    blocks = -(-new_tokens // block)
    firsts = row_offsets[:-1]
    later_blocks = blocks.copy()
    later_blocks[firsts] = 0
    before_row = np.cumsum(later_blocks) - later_blocks

    starts = np.zeros((len(rows), 3), dtype=np.int64)
    lengths = np.zeros((len(rows), 3), dtype=np.int64)
    starts[:, 0] = np.repeat(cursor_start - before_row[firsts], turns) + before_row
    lengths[:, 0] = later_blocks
    starts[firsts] = first_segments[:, :3]
    lengths[firsts] = first_segments[:, 3:]
    hash_offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(blocks, out=hash_offsets[1:])
    timestamps = np.full(len(rows), np.nan)
    timestamps[firsts] = 0.0
    return TraceChunk(
        session_ids=session_names(sampled.session_keys[picked]),
        group_ids=sampled.group_ids[picked],
        is_restart=sampled.is_restart[picked],
        end_reasons=sampled.end_reasons[picked],
        row_offsets=row_offsets,
        input_length=new_tokens,
        output_length=outputs,
        delay_ms=delays,
        timestamp_ms=timestamps,
        hash_offsets=hash_offsets,
        hash_ids=_expand_runs(starts.ravel(), lengths.ravel()),
        # which primary each session belongs to, as the fast engine's (pairs a continuation
        # with its parent in sessions.jsonl)
        extras={"primary_index": primary_index},
    )


def count_hash_conflicts(chunks: Iterable[TraceChunk], block_size: int) -> int:
    """How many hash ids the trace uses at two or more block sizes.

    A row's blocks are all full except its last, which holds
    ``input_length - (len(hash_ids) - 1) * block_size`` tokens. An id seen with two sizes
    cannot be replayed as one cached block (reference doc §9 B2, B3).
    """
    keys = []
    for chunk in chunks:
        lengths = np.diff(chunk.hash_offsets)
        sizes = np.full(chunk.hash_ids.shape[0], block_size, dtype=np.int64)
        has_ids = lengths > 0
        last = chunk.hash_offsets[1:][has_ids] - 1
        sizes[last] = chunk.input_length[has_ids] - (lengths[has_ids] - 1) * block_size
        keys.append(np.unique(chunk.hash_ids.astype(np.int64) * (block_size + 1) + sizes))
    if not keys:
        return 0
    pairs = np.unique(np.concatenate(keys))
    ids = pairs // (block_size + 1)
    repeated = ids[1:] == ids[:-1]
    return int(np.unique(ids[1:][repeated]).shape[0])
