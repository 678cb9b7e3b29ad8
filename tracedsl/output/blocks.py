"""The block-size ledger: which size each hash id is given across a whole trace, kept compact.

Replay materialises a hash id once, at one size: a full block, or the partial last block
of a row (input_length − (len − 1)·block_size tokens). Every id except a row's last is a
full block whatever the block size, so those are kept as merged runs of consecutive ids
(a trace's ids are mostly consecutive: a few runs stand for millions of ids). Each row's
last id, its input length and its id count are kept as columns, so the block size can be
inferred at the end and the last ids sized then.
"""

from __future__ import annotations

import numpy as np

AIPERF_DEFAULT_BLOCK_SIZE = 512  # the Mooncake loader's default when --isl-block-size is not given
_MERGE_RUNS_AT = 1 << 20


class BlockLedger:
    def __init__(self) -> None:
        self._lines: list[np.ndarray] = []
        self._inputs: list[np.ndarray] = []
        self._counts: list[np.ndarray] = []
        self._last_ids: list[np.ndarray] = []
        self._runs: list[tuple[np.ndarray, np.ndarray]] = []
        self._pending_runs = 0
        self._rows: tuple[np.ndarray, ...] | None = None

    def add_rows(self, lines: np.ndarray, inputs: np.ndarray, offsets: np.ndarray, ids: np.ndarray) -> None:
        """Rows with at least one id: their lines, input lengths, and ids (``offsets`` per row)."""
        if lines.shape[0] == 0:
            return
        last_positions = offsets[1:] - 1
        self._lines.append(lines)
        self._inputs.append(inputs)
        self._counts.append(np.diff(offsets))
        self._last_ids.append(ids[last_positions])
        is_last = np.zeros(ids.shape[0], dtype=bool)
        is_last[last_positions] = True
        full = ids[~is_last]
        if full.shape[0]:
            self._runs.append(_runs_of(full))
            self._pending_runs += self._runs[-1][0].shape[0]
            if self._pending_runs >= _MERGE_RUNS_AT:
                self._runs = [_merge_runs(self._runs)]
                self._pending_runs = self._runs[0][0].shape[0]
        self._rows = None

    def _columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        if self._rows is None:
            if self._lines:
                self._rows = tuple(np.concatenate(parts) for parts in (self._lines, self._inputs, self._counts, self._last_ids))
            else:
                empty = np.zeros(0, dtype=np.int64)
                self._rows = (empty, empty, empty, empty)
        return self._rows

    def infer_block_size(self) -> tuple[int, str]:
        """The block size every row's id count agrees with, or the one most rows agree with."""
        _, inputs, counts, _ = self._columns()
        if inputs.shape[0] == 0:
            return AIPERF_DEFAULT_BLOCK_SIZE, (
                f"no row has hash ids; block size {AIPERF_DEFAULT_BLOCK_SIZE} (AIPerf's default) assumed"
            )
        lowest = int(np.max(-(-inputs // counts)))
        several = counts >= 2
        highest = int(np.min((inputs[several] - 1) // (counts[several] - 1))) if several.any() else None
        if highest is None or lowest <= highest:
            if highest is None:
                fitting = f"any size >= {lowest}"
            elif lowest == highest:
                fitting = f"only {lowest}"
            else:
                fitting = f"any size from {lowest} to {highest}"
            size = _preferred(lowest, highest)
            return size, (
                f"block size {size} inferred: every row's hash-id count equals "
                f"ceil(input_length / block size) for {fitting}"
            )
        candidates = sorted({2**k for k in range(0, 17)} | {lowest})
        fits = [int(np.count_nonzero(_fits(inputs, counts, size))) for size in candidates]
        best = max(fits)
        size = AIPERF_DEFAULT_BLOCK_SIZE if fits[candidates.index(AIPERF_DEFAULT_BLOCK_SIZE)] == best else (
            candidates[fits.index(best)]
        )
        return size, (
            f"block size {size} inferred: no size fits every row's hash-id count; {size} fits the "
            f"most rows ({best} of {inputs.shape[0]}); give --block-size to choose"
        )

    def block_count_errors(self, block_size: int, limit: int) -> tuple[int, list[tuple[int, str]]]:
        """Rows whose id count is not ceil(input_length / block_size): how many, and the first few."""
        lines, inputs, counts, _ = self._columns()
        bad = ~_fits(inputs, counts, block_size)
        listed = []
        for line, length, count in zip(lines[bad][:limit].tolist(), inputs[bad][:limit].tolist(),
                                       counts[bad][:limit].tolist(), strict=True):
            needed = -(-length // block_size)
            listed.append(
                (line, f"hash_ids has {count} ids, but input_length {length} needs "
                       f"ceil({length} / {block_size}) = {needed} at block size {block_size}")
            )
        return int(np.count_nonzero(bad)), listed

    def size_conflicts(self, block_size: int, limit: int) -> tuple[int, list[tuple[int, str]]]:
        """Hash ids given two different sizes: how many ids, and the first rows that disagree."""
        lines, inputs, counts, last_ids = self._columns()
        sizes = inputs - (counts - 1) * block_size
        usable = (sizes >= 1) & (sizes <= block_size)
        lines, sizes, last_ids = lines[usable], sizes[usable], last_ids[usable]
        whole = sizes == block_size
        run_starts, run_ends = _merge_runs(
            [*self._runs, (last_ids[whole], last_ids[whole] + 1)]
        ) if (self._runs or whole.any()) else (np.zeros(0, np.int64), np.zeros(0, np.int64))
        partial_ids, partial_sizes, partial_lines = last_ids[~whole], sizes[~whole], lines[~whole]

        # A partial id that is also a whole block somewhere.
        slot = np.searchsorted(run_starts, partial_ids, side="right") - 1
        in_whole = (slot >= 0) & (partial_ids < run_ends[np.maximum(slot, 0)]) if run_starts.size else (
            np.zeros(partial_ids.shape[0], dtype=bool)
        )
        # A partial id given two partial sizes.
        order = np.lexsort((partial_lines, partial_sizes, partial_ids))
        ids_sorted, sizes_sorted = partial_ids[order], partial_sizes[order]
        same_id = ids_sorted[1:] == ids_sorted[:-1]
        differs = same_id & (sizes_sorted[1:] != sizes_sorted[:-1])
        two_sizes = np.unique(ids_sorted[1:][differs])
        conflicting = np.union1d(np.unique(partial_ids[in_whole]), two_sizes)

        listed: list[tuple[int, str]] = []
        if conflicting.size:
            listed = self._describe(conflicting[:limit], partial_ids, partial_sizes, partial_lines,
                                    in_whole, block_size)[:limit]
        return int(conflicting.shape[0]), listed

    @staticmethod
    def _describe(ids, partial_ids, partial_sizes, partial_lines, in_whole, block_size):
        listed = []
        for hash_id in ids.tolist():
            where = np.flatnonzero(partial_ids == hash_id)
            first = where[np.argmin(partial_lines[where])]
            line, size = int(partial_lines[first]), int(partial_sizes[first])
            if in_whole[first]:
                message = (f"hash id {hash_id} is a partial block of {size} tokens here but a full "
                           f"block of {block_size} tokens on another row; replay refuses a second size")
            else:
                other = where[partial_sizes[where] != size][0]
                message = (f"hash id {hash_id} is a block of {size} tokens here but "
                           f"{int(partial_sizes[other])} tokens on line {int(partial_lines[other])}")
            listed.append((line, message))
        listed.sort()
        return listed


def _fits(inputs: np.ndarray, counts: np.ndarray, block_size: int) -> np.ndarray:
    return ((counts - 1) * block_size < inputs) & (inputs <= counts * block_size)


def _preferred(lowest: int, highest: int | None) -> int:
    """Within the sizes that fit: AIPerf's 512, else the largest power of two, else the smallest."""
    def fits(size: int) -> bool:
        return size >= lowest and (highest is None or size <= highest)

    if fits(AIPERF_DEFAULT_BLOCK_SIZE):
        return AIPERF_DEFAULT_BLOCK_SIZE
    powers = [2**k for k in range(0, 40) if fits(2**k)]
    return powers[-1] if powers else lowest


def _runs_of(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Maximal runs of consecutive values in ``ids`` (in array order) as [start, end)."""
    breaks = np.flatnonzero(np.diff(ids) != 1) + 1
    first = np.concatenate(([0], breaks))
    last = np.concatenate((breaks - 1, [ids.shape[0] - 1]))
    return ids[first].astype(np.int64), ids[last].astype(np.int64) + 1


def _merge_runs(runs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """The union of [start, end) runs as sorted, disjoint, non-touching runs."""
    starts = np.concatenate([r[0] for r in runs])
    ends = np.concatenate([r[1] for r in runs])
    if starts.shape[0] == 0:
        return starts, ends
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], ends[order]
    reach = np.maximum.accumulate(ends)
    new = np.ones(starts.shape[0], dtype=bool)
    new[1:] = starts[1:] > reach[:-1]
    firsts = np.flatnonzero(new)
    return starts[firsts], np.maximum.reduceat(ends, firsts)
