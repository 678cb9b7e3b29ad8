"""The hash-id layout: shared prefix regions, then session-unique ids handed out densely in file order.

Ids 0 .. L1-1 are the global prefix; group g's L1.5 blocks follow at L1 + g * L1.5; every
id after all the groups' regions is unique to one session (or to a continuation and the
parent whose whole turn-0 blocks it reuses). With session classes each session's L1 and
L1.5 runs are its class's regions (model.py's ``class_regions``), looked up per session. A row carries ceil(input_length / block_size) ids:
on turn 0 the L1 ids, the group's L1.5 ids, a continuation's reused runs, then fresh ids;
on later rows only fresh ids. Fresh ids are consecutive in file order, so each row's ids
are a few contiguous runs, expanded to a flat array only here.
"""

from __future__ import annotations

import numpy as np

from tracedsl.engine.columns import SessionColumns
from tracedsl.engine.model import PrefixRegions, SessionModel, body_models


def fresh_blocks(model: SessionModel, sessions: SessionColumns, reused_blocks: np.ndarray) -> np.ndarray:
    """Per row: the ids this row takes from the session-unique pool (turn 0 less what it reuses)."""
    fresh = -(-sessions.input_length // model.block_size)
    _, layer1_length, _, layer1_5_length = prefix_runs(model, sessions)
    fresh[sessions.row_offsets[:-1]] -= layer1_length + layer1_5_length + reused_blocks
    return fresh


def prefix_runs(model: SessionModel, sessions: SessionColumns):
    """(L1 start, L1 length, L1.5 base, L1.5 length) of every session: the model's numbers, or
    per session by its class, or by its body (the top level's or a subagent's) with subagents. Group g's L1.5 run starts at ``base + g * length``."""
    if model.subagent is not None and sessions.body is not None:  # by each session's body
        which, bodies = sessions.body.astype(np.intp), body_models(model)
    elif not model.classes or sessions.class_index is None:
        return 0, model.layer1_blocks, model.layer1_blocks, model.layer1_5_blocks
    else:
        which, bodies = sessions.class_index.astype(np.intp), list(model.classes)
    regions = [b.regions or PrefixRegions(0, b.layer1_blocks, 0) for b in bodies]

    def per_session(values) -> np.ndarray:
        return np.asarray(values, dtype=np.int64)[which]

    return (
        per_session([r.layer1_start for r in regions]),
        per_session([b.layer1_blocks for b in bodies]),
        per_session([r.groups_start - r.group_base * b.layer1_5_blocks
                     for r, b in zip(regions, bodies, strict=True)]),
        per_session([b.layer1_5_blocks for b in bodies]),
    )


def session_fresh_bases(fresh: np.ndarray, row_offsets: np.ndarray, first_id: int) -> np.ndarray:
    """Each session's first fresh id, length S+1 (the last entry is the next free id)."""
    before_rows = np.zeros(fresh.shape[0] + 1, dtype=np.int64)
    np.cumsum(fresh, out=before_rows[1:])
    return first_id + before_rows[row_offsets]


def hash_ids(
    model: SessionModel,
    sessions: SessionColumns,
    fresh: np.ndarray,
    first_id: int,
    reused_offsets: np.ndarray,
    reused_start: np.ndarray,
    reused_length: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(hash_offsets, hash_ids, runs) for ``sessions`` in file order; fresh ids start at ``first_id``.

    ``reused_*`` are the absolute runs each session's turn 0 reuses (ragged by session).
    ``runs`` is (run_offsets by row, run_start, run_length): each row's ids as runs of
    consecutive ids, some empty, which the JSONL writer uses to size each row's text.
    """
    rows = fresh.shape[0]
    first_rows = sessions.row_offsets[:-1]
    reused_count = np.diff(reused_offsets)
    blocks = -(-sessions.input_length // model.block_size)
    hash_offsets = np.zeros(rows + 1, dtype=np.int64)
    np.cumsum(blocks, out=hash_offsets[1:])

    # Runs per row: turn 0 has L1, L1.5, the reused runs and the fresh run; others one run.
    runs = np.ones(rows, dtype=np.int64)
    runs[first_rows] += 2 + reused_count
    run_offsets = np.zeros(rows + 1, dtype=np.int64)
    np.cumsum(runs, out=run_offsets[1:])
    run_start = np.empty(run_offsets[-1], dtype=np.int64)
    run_length = np.empty(run_offsets[-1], dtype=np.int64)

    fresh_start = first_id + np.cumsum(fresh) - fresh
    last_run = run_offsets[1:] - 1
    run_start[last_run] = fresh_start
    run_length[last_run] = fresh

    first_run = run_offsets[first_rows]
    layer1_start, layer1_length, layer1_5_base, layer1_5_length = prefix_runs(model, sessions)
    run_start[first_run] = layer1_start
    run_length[first_run] = layer1_length
    run_start[first_run + 1] = layer1_5_base + sessions.group * layer1_5_length
    run_length[first_run + 1] = layer1_5_length
    total_reused = int(reused_offsets[-1])
    if total_reused:
        at = np.repeat(first_run + 2 - reused_offsets[:-1], reused_count) + np.arange(total_reused)
        run_start[at] = reused_start
        run_length[at] = reused_length

    before = np.cumsum(run_length) - run_length
    ids = np.repeat(run_start - before, run_length) + np.arange(hash_offsets[-1], dtype=np.int64)
    return hash_offsets, ids, (run_offsets, run_start, run_length)
