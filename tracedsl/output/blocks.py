"""The block-size ledger: one size per hash id across a whole trace, checked as rows stream in.

Replay materialises a hash id once, at one size: a full block, or the partial last block of
a row (input_length − (len − 1)·block_size tokens). Every id but a row's last is a full
block, so the ledger keeps only (a) every id seen, as merged intervals — a trace's ids are
mostly consecutive, so a handful of intervals stand for millions of ids — and (b) the ids
seen as partial blocks, with their size and first line, in sorted numpy segments. A
conflict is an id seen at two sizes: a partial id seen again at another size, or an id that
is a full block on one row and a partial one on another. Either is found when the second
size arrives, so nothing per row is kept but the partial ids (10 bytes each at block sizes
below 32768), and each id is merged a bounded number of times (segments merge like a binary
counter, up to a cap). A segment that has reached its final size moves to a temporary file
(``SPILL_AT``) and is mapped back only for the few lookups that fall in its id range, so
the ledger's memory stays bounded however long the trace is; :meth:`BlockLedger.close`
removes the files.
"""

from __future__ import annotations

import heapq
from pathlib import Path

import numpy as np

# the block-size rule's names, importable from here as before
from tracedsl.output.blocksize import AIPERF_DEFAULT_BLOCK_SIZE, BlockSizeEvidence, fitting_rows  # noqa: F401
from tracedsl.output.blocksize import fits as _fits
from tracedsl.spill import SpillFolder

SEGMENT_CAP = 1 << 21  # entries; a merge never builds a bigger segment, which bounds its copy
_ALWAYS_MERGE_BELOW = 4096  # small segments always join their neighbour: dense ids stay one segment
# Entries: a segment at least this large that is no longer the newest goes to disk. A
# segment of 2**18 partial ids holds about 2.6 MB, so the ledger keeps at most a few such
# segments in memory (the newest ones, still merging) whatever the trace's length. Measured
# on a 1M-session run: 369 MB peak at 2**20, 342 MB at 2**18, the same wall time.
SPILL_AT = 1 << 18


class BlockLedger:
    """The hash ids of a trace at a known block size: block-count rule and one size per id."""

    def __init__(self, block_size: int, max_listed: int, spill_dir: str | Path | None = None):
        """``spill_dir``: where full segments go (a temporary folder is made in it; default: the
        system's temporary directory)."""
        self.block_size = block_size
        self.max_listed = max_listed
        self.seen = IdIntervals()
        self.partials = _Partials(
            np.int16 if block_size < 2**15 else np.int32 if block_size < 2**31 else np.int64,
            _Spill(spill_dir),
        )
        self.bad_count_rows = 0
        self._bad_count_listed: list[tuple[int, str]] = []
        self.conflicts = 0
        # the conflicts with the earliest first partial rows: id -> [line, size, full, size2, line2]
        self._listed: dict[int, list] = {}
        self._heap: list[tuple[int, int]] = []  # (-line, id) of the listed, latest line on top

    def add_rows(self, lines: np.ndarray, inputs: np.ndarray, offsets: np.ndarray, ids: np.ndarray) -> None:
        """Rows with at least one id, in file order: lines, input lengths, ids (``offsets`` per row)."""
        if lines.shape[0] == 0:
            return
        size = self.block_size
        counts = np.diff(offsets)
        fits = _fits(inputs, counts, size)
        if not fits.all():
            self._count_rows(lines[~fits], inputs[~fits], counts[~fits])
        last = offsets[1:] - 1
        sizes = inputs - (counts - 1) * size
        partial = fits & (sizes < size)
        steps = np.not_equal(ids[1:] - ids[:-1], 1)
        # a row's last id is full only at full size; the rest are full blocks
        full_runs = _merge_runs([_runs_without(ids, steps, last[~(fits & (sizes == size))])])
        self._partials_now_full(*full_runs)
        partial_ids = ids[last[partial]]
        if partial_ids.shape[0]:
            self._add_partials(partial_ids, sizes[partial], lines[partial], *full_runs)
        # every id that was given a size: all but the last ids of rows that break the count rule
        self.seen.add(*_merge_runs([_runs_without(ids, steps, last[~fits])]))

    def close(self) -> None:
        """Remove the segments moved to disk; the findings stay readable, adding rows does not."""
        self.partials.spill.close()

    def __enter__(self) -> BlockLedger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def block_count_errors(self) -> tuple[int, list[tuple[int, str]]]:
        """Rows whose id count is not ceil(input_length / block_size): how many, the first few."""
        return self.bad_count_rows, list(self._bad_count_listed)

    def size_conflicts(self) -> tuple[int, list[tuple[int, str]]]:
        """Hash ids given two sizes: how many ids, and the conflicts whose first partial row comes first."""
        listed = []
        for hash_id, (line, size, full, other_size, other_line) in self._listed.items():
            if full:
                message = (f"hash id {hash_id} is a partial block of {size} tokens here but a full "
                           f"block of {self.block_size} tokens on another row; replay refuses a second size")
            else:
                message = (f"hash id {hash_id} is a block of {size} tokens here but "
                           f"{other_size} tokens on line {other_line}")
            listed.append((line, message))
        listed.sort()
        return self.conflicts, listed

    def _count_rows(self, lines, inputs, counts) -> None:
        self.bad_count_rows += int(lines.shape[0])
        room = self.max_listed - len(self._bad_count_listed)
        size = self.block_size
        for line, length, count in zip(lines[:room].tolist(), inputs[:room].tolist(),
                                       counts[:room].tolist(), strict=True):
            self._bad_count_listed.append(
                (line, f"hash_ids has {count} ids, but input_length {length} needs "
                       f"ceil({length} / {size}) = {-(-length // size)} at block size {size}")
            )

    def _partials_now_full(self, starts: np.ndarray, ends: np.ndarray) -> None:
        """Partial ids seen before that these rows use as full blocks."""
        for segment, positions in self.partials.inside(starts, ends):
            sizes = segment.sizes[positions]
            fresh = positions[sizes > 0]
            if fresh.shape[0]:
                segment.sizes[fresh] = -segment.sizes[fresh]
                self.conflicts += int(fresh.shape[0])
                self._list(segment.ids_at(fresh), segment.lines[fresh], -segment.sizes[fresh],
                           np.ones(fresh.shape[0], dtype=bool), None, None)
            if self._listed:
                held = segment.ids_at(positions)
                for hash_id in held[np.isin(held, np.fromiter(self._listed, np.int64))].tolist():
                    self._listed[hash_id][2] = True

    def _add_partials(self, ids, sizes, lines, full_starts, full_ends) -> np.ndarray:
        """Check and keep a batch's partial ids (rows in file order); return them sorted, unique."""
        if (ids[1:] > ids[:-1]).all():  # the common case: each id once, ascending (no sort needed)
            group_of = firsts = np.arange(ids.shape[0])
            unique_ids = ids
        else:
            order = np.lexsort((lines, ids))
            ids, sizes, lines = ids[order], sizes[order], lines[order]
            starts_group = np.ones(ids.shape[0], dtype=bool)
            starts_group[1:] = ids[1:] != ids[:-1]
            group_of = np.cumsum(starts_group) - 1
            firsts = np.flatnonzero(starts_group)
            unique_ids = ids[firsts]

        segment_of, position = self.partials.find(unique_ids)
        found = segment_of >= 0
        old_sizes, old_lines = self.partials.values(segment_of, position)
        flagged = found & (old_sizes < 0)
        first_size = np.where(found, np.abs(old_sizes), sizes[firsts])
        first_line = np.where(found, old_lines, lines[firsts])

        # occurrences are in line order within an id: the first that differs names the other size
        differs = np.flatnonzero(sizes != first_size[group_of])
        other_groups, which = np.unique(group_of[differs], return_index=True)
        other = differs[which]
        has_other = np.zeros(unique_ids.shape[0], dtype=bool)
        has_other[other_groups] = True
        other_size = np.zeros(unique_ids.shape[0], dtype=np.int64)
        other_line = np.zeros(unique_ids.shape[0], dtype=np.int64)
        other_size[other_groups], other_line[other_groups] = sizes[other], lines[other]

        full = _contains(full_starts, full_ends, unique_ids)
        new = ~found
        if new.any():
            full[new] |= self.seen.contains(unique_ids[new])
        conflict = ~flagged & (full | has_other)
        if conflict.any():
            self.conflicts += int(np.count_nonzero(conflict))
            self._list(unique_ids[conflict], first_line[conflict], first_size[conflict], full[conflict],
                       other_size[conflict], other_line[conflict])
            self.partials.flag(segment_of[conflict & found], position[conflict & found])
        if new.any():
            stored = np.where(conflict, -first_size, first_size)[new]
            self.partials.insert(unique_ids[new], stored, first_line[new])
        return unique_ids

    def _list(self, ids, lines, sizes, full, other_sizes, other_lines) -> None:
        """Keep the ``max_listed`` conflicts with the earliest first partial rows."""
        if self.max_listed <= 0:
            return
        if len(self._heap) >= self.max_listed:
            keep = np.flatnonzero(lines < -self._heap[0][0])
        else:
            keep = np.arange(lines.shape[0])
        keep = keep[np.argsort(lines[keep], kind="stable")[: self.max_listed]]
        for index in keep.tolist():
            line = int(lines[index])
            if len(self._heap) >= self.max_listed:
                if line >= -self._heap[0][0]:
                    continue
                _, dropped = heapq.heappop(self._heap)
                del self._listed[dropped]
            hash_id = int(ids[index])
            heapq.heappush(self._heap, (-line, hash_id))
            self._listed[hash_id] = [
                line, int(sizes[index]), bool(full[index]),
                None if other_sizes is None else int(other_sizes[index]),
                None if other_lines is None else int(other_lines[index]),
            ]


class IdIntervals:
    """A set of ids as sorted, disjoint [start, end) intervals, held in a few segments."""

    def __init__(self) -> None:
        self.segments: list[tuple[np.ndarray, np.ndarray]] = []

    def add(self, starts: np.ndarray, ends: np.ndarray) -> None:
        """Add intervals that are already sorted and disjoint."""
        if starts.shape[0] == 0:
            return
        self.segments.append((starts, ends))
        while len(self.segments) >= 2 and _should_merge(self.segments[-2][0].shape[0],
                                                         self.segments[-1][0].shape[0]):
            last = self.segments.pop()
            self.segments[-1] = _merge_runs([self.segments[-1], last])

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Which of the sorted ``points`` lie in the set."""
        inside = np.zeros(points.shape[0], dtype=bool)
        for starts, ends in self.segments:
            low, high = np.searchsorted(points, (starts[0], ends[-1]))
            if low < high:
                inside[low:high] |= _contains(starts, ends, points[low:high])
        return inside


class KeySet:
    """A set of int64 keys as sorted arrays (8 bytes a key), merged like a binary counter.

    For keys with no runs to speak of (session ids drawn from a permutation), where
    :class:`IdIntervals` would spend 16 bytes a key.
    """

    def __init__(self) -> None:
        self.segments: list[np.ndarray] = []

    def add(self, keys: np.ndarray) -> None:
        """Add sorted, unique keys, none held already."""
        if keys.shape[0] == 0:
            return
        segments = self.segments
        segments.append(keys.astype(np.int64, copy=True))
        while len(segments) >= 2 and segments[-2].shape[0] <= 2 * segments[-1].shape[0]:
            last = segments.pop()
            merged = np.concatenate((segments[-1], last))
            merged.sort(kind="stable")  # two sorted runs: timsort merges them in linear time
            segments[-1] = merged

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Which of the sorted ``points`` are held."""
        inside = np.zeros(points.shape[0], dtype=bool)
        for keys in self.segments:
            low = np.searchsorted(points, keys[0], side="left")
            high = np.searchsorted(points, keys[-1], side="right")
            if low >= high:
                continue
            wanted = points[low:high]
            where = np.minimum(np.searchsorted(keys, wanted), keys.shape[0] - 1)
            inside[low:high] |= keys[where] == wanted
        return inside


class _Segment:
    """Sorted unique ids with their sizes and lines; the ids as 32-bit offsets when they span less.

    The arrays live in memory or, once spilled, in three ``.npy`` files that each access maps
    afresh (and the mapping goes with the returned array), so only the pages a lookup touches
    are ever resident, and only while it runs.
    """

    __slots__ = ("base", "_arrays", "_files", "first", "last", "count")

    def __init__(self, ids: np.ndarray, sizes: np.ndarray, lines: np.ndarray):
        self.first, self.last = int(ids[0]), int(ids[-1])
        self.base = self.first
        self.count = int(ids.shape[0])
        narrow = self.last + 1 - self.base < 2**32  # 4 bytes an id instead of 8
        self._arrays: tuple[np.ndarray, ...] | None = (
            (ids - self.base).astype(np.uint32 if narrow else np.int64), sizes, lines)
        self._files: tuple[Path, ...] | None = None

    @property
    def spilled(self) -> bool:
        return self._files is not None

    def spill(self, spill: _Spill) -> None:
        assert self._arrays is not None
        self._files = spill.save(self._arrays)
        self._arrays = None

    def _array(self, which: int) -> np.ndarray:
        if self._arrays is not None:
            return self._arrays[which]
        assert self._files is not None
        return np.load(self._files[which], mmap_mode="r+")

    @property
    def offsets(self) -> np.ndarray:
        return self._array(0)

    @property
    def sizes(self) -> np.ndarray:
        """Writable: a spilled segment's changes go to its file."""
        return self._array(1)

    @property
    def lines(self) -> np.ndarray:
        return self._array(2)

    def ids(self) -> np.ndarray:
        return self.offsets.astype(np.int64) + self.base

    def ids_at(self, positions: np.ndarray) -> np.ndarray:
        return self.offsets[positions].astype(np.int64) + self.base

    def search(self, values: np.ndarray) -> np.ndarray:
        """np.searchsorted over the ids, for any int64 values."""
        offsets = self.offsets
        keys = np.clip(values, self.first, self.last + 1) - self.base
        return np.searchsorted(offsets, keys.astype(offsets.dtype))


class _Spill:
    """Where spilled segments go: ``.npy`` files in a :class:`SpillFolder`."""

    def __init__(self, parent: str | Path | None) -> None:
        self.folder = SpillFolder(parent, ".tracedsl-ledger-")
        self._saved = 0

    def save(self, arrays: tuple[np.ndarray, ...]) -> tuple[Path, ...]:
        files = []
        for array in arrays:
            file = self.folder.file(f"{self._saved}.npy")
            np.save(file, array)
            files.append(file)
            self._saved += 1
        return tuple(files)

    def close(self) -> None:
        self.folder.close()


class _Partials:
    """Partial ids, each once, with the size and line of its first partial row (size < 0: conflicting).

    Sorted segments; ids are unique across segments, so a lookup hits at most one.
    """

    def __init__(self, size_dtype, spill: _Spill) -> None:
        self.size_dtype = size_dtype
        self.spill = spill
        self.segments: list[_Segment] = []

    def insert(self, ids: np.ndarray, sizes: np.ndarray, lines: np.ndarray) -> None:
        """Ids sorted, unique, none held already."""
        line_dtype = np.uint32 if int(lines.max()) < 2**32 else np.int64
        self.segments.append(_Segment(ids, sizes.astype(self.size_dtype), lines.astype(line_dtype)))
        segments = self.segments
        while (len(segments) >= 2 and not segments[-2].spilled
               and _should_merge(segments[-2].count, segments[-1].count)):
            last = segments.pop()
            segments[-1] = _merge_segments(segments[-1], last)
        # a big segment that did not merge with the newer one never will: it waits on disk
        for segment in segments[:-1]:
            if segment.count >= SPILL_AT and not segment.spilled:
                segment.spill(self.spill)

    def find(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For sorted unique ``ids``: the segment and position holding each, or -1."""
        segment_of = np.full(ids.shape[0], -1, dtype=np.int64)
        position = np.zeros(ids.shape[0], dtype=np.int64)
        firsts, lasts = self._ranges()
        lows = np.searchsorted(ids, firsts, side="left")
        highs = np.searchsorted(ids, lasts, side="right")
        for index in np.flatnonzero(lows < highs).tolist():  # the few segments whose range holds some
            segment, low, high = self.segments[index], lows[index], highs[index]
            wanted = ids[low:high]
            where = np.minimum(segment.search(wanted), segment.count - 1)
            hit = segment.ids_at(where) == wanted
            segment_of[low:high][hit] = index
            position[low:high][hit] = where[hit]
        return segment_of, position

    def _ranges(self) -> tuple[np.ndarray, np.ndarray]:
        """Each segment's first and last id: one search over them all finds the few a batch meets
        (a long trace holds dozens of segments, and a batch meets one or two)."""
        count = len(self.segments)
        return (np.fromiter((segment.first for segment in self.segments), np.int64, count),
                np.fromiter((segment.last for segment in self.segments), np.int64, count))

    def values(self, segment_of: np.ndarray, position: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sizes = np.zeros(segment_of.shape[0], dtype=np.int64)
        lines = np.zeros(segment_of.shape[0], dtype=np.int64)
        for index in np.unique(segment_of[segment_of >= 0]).tolist():
            mine = segment_of == index
            sizes[mine] = self.segments[index].sizes[position[mine]]
            lines[mine] = self.segments[index].lines[position[mine]]
        return sizes, lines

    def flag(self, segment_of: np.ndarray, position: np.ndarray) -> None:
        for index in np.unique(segment_of).tolist():
            sizes = self.segments[index].sizes
            where = position[segment_of == index]
            sizes[where] = -np.abs(sizes[where])

    def inside(self, starts: np.ndarray, ends: np.ndarray):
        """Yield (segment, positions) of the held ids inside sorted disjoint intervals."""
        if starts.shape[0] == 0:
            return
        # for each segment, the intervals that can overlap its id range
        firsts, lasts = self._ranges()
        lows = np.searchsorted(ends, firsts, side="right")
        highs = np.searchsorted(starts, lasts, side="right")
        for index in np.flatnonzero(lows < highs).tolist():
            segment, low, high = self.segments[index], lows[index], highs[index]
            first = segment.search(starts[low:high])
            last = segment.search(ends[low:high])
            counts = last - first
            if not counts.any():
                continue
            total = int(counts.sum())
            positions = np.repeat(first - np.cumsum(counts) + counts, counts) + np.arange(total)
            yield segment, positions


def _should_merge(before: int, after: int) -> bool:
    return before + after <= SEGMENT_CAP and (before <= 2 * after or before + after <= _ALWAYS_MERGE_BELOW)


def _merge_segments(a: _Segment, b: _Segment) -> _Segment:
    ids = np.concatenate((a.ids(), b.ids()))
    sizes = np.concatenate((a.sizes, b.sizes))
    lines = np.concatenate((a.lines, b.lines))
    if a.last > b.first:
        order = np.argsort(ids, kind="stable")  # two sorted runs: timsort merges them in linear time
        ids, sizes, lines = ids[order], sizes[order], lines[order]
    return _Segment(ids, sizes, lines)


def _contains(starts: np.ndarray, ends: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Which points lie in the sorted disjoint intervals [starts, ends)."""
    if starts.shape[0] == 0:
        return np.zeros(points.shape[0], dtype=bool)
    slot = np.searchsorted(starts, points, side="right") - 1
    return (slot >= 0) & (points < ends[np.maximum(slot, 0)])


def _runs_without(ids: np.ndarray, steps: np.ndarray, left_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Runs of consecutive ids in array order (``steps``: where the next id is not one more),
    leaving out the positions ``left_out``."""
    count = ids.shape[0]
    if left_out.shape[0] == count:
        return _no_runs()
    breaks = np.empty(count + 1, dtype=bool)
    breaks[0] = breaks[count] = True
    breaks[1:count] = steps
    breaks[left_out] = True
    breaks[left_out + 1] = True
    firsts = np.flatnonzero(breaks)
    lasts = firsts[1:] - 1
    firsts = firsts[:-1]
    keep = np.ones(count, dtype=bool)
    keep[left_out] = False
    kept = keep.take(firsts)  # a left-out position is a run of its own
    # compress and take: the same as boolean and fancy indexing, at a fraction of the cost
    return ids.take(firsts.compress(kept)), ids.take(lasts.compress(kept)) + 1


def _no_runs() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)


def _merge_runs(runs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """The union of [start, end) runs as sorted, disjoint, non-touching runs."""
    starts = np.concatenate([r[0] for r in runs])
    ends = np.concatenate([r[1] for r in runs])
    if starts.shape[0] == 0:
        return starts, ends
    if starts.shape[0] > 1 and not (starts[1:] >= starts[:-1]).all():
        order = np.argsort(starts, kind="stable")  # sorted runs concatenated: timsort is linear
        starts, ends = starts[order], ends[order]
    reach = np.maximum.accumulate(ends)
    new = np.ones(starts.shape[0], dtype=bool)
    new[1:] = starts[1:] > reach[:-1]
    firsts = np.flatnonzero(new)
    return starts[firsts], np.maximum.reduceat(ends, firsts)
