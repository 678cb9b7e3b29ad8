"""A trace's block size worked out from its rows, when no manifest says it: one rule for every command.

A row of ``n`` hash ids and ``L`` input tokens fits a block size ``b`` when ``(n-1)·b < L <= n·b``
(each id a full block but the last, which holds the rest). So every row allows a range of
sizes, ``ceil(L/n)`` up to ``(L-1) // (n-1)`` (no upper end for a single id), and the file
allows their intersection. Within it the rule takes, in this order:

1. 512, when the range holds it: AIPerf's ``--isl-block-size`` default and the Mooncake
   traces' size, so the file is checked at the size replay will use when not told otherwise;
2. the smallest power of two in the range: serving engines' block sizes are powers of two
   (16, 32, 64, ...), and with no upper end (rows of one id each) the smallest is the block
   that just holds the longest row — any larger one would fit as well, so only the smallest
   is a statement the rows support;
3. the smallest size in the range.

Rows of two or more ids allow a range less than twice as wide as its low end, so it holds at
most one power of two: the choice among powers only matters when every row has one id.
When no size fits every row there is no inferred size; the size most rows fit (among the
powers of two and the range's ends) is given for checking the others against it.
``--block-size`` overrides all of this in validate, report and simulate.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from tracedsl.output.lines import LineProblem, line_blocks
from tracedsl.output.plain import PlainBlock, plain_padded, will_read
from tracedsl.output.rows import MAX_COUNT

AIPERF_DEFAULT_BLOCK_SIZE = 512  # the Mooncake loader's default when --isl-block-size is not given
POWER_SIZES = tuple(2**k for k in range(0, 21))  # counted while streaming, for the no-fit case


@dataclass(frozen=True)
class BlockSizeFinding:
    """What the rows say about the block size.

    ``size``: the inferred size, or None when no size fits every row. ``low``..``high``: the
    sizes every row allows (``high`` None: no upper end; ``low > high``: none). ``closest``:
    the size most rows fit (``size`` itself when there is one), ``closest_rows`` of ``rows``
    rows with hash ids. ``note``: the finding in words, for the user.
    """

    size: int | None
    low: int
    high: int | None
    closest: int
    closest_rows: int
    rows: int
    note: str

    @property
    def agreed(self) -> bool:
        return self.size is not None


class BlockSizeEvidence:
    """The rows' hash-id counts, kept as a few numbers while a trace streams by."""

    def __init__(self) -> None:
        self.rows = 0
        self.low = 1  # every row needs a block of at least ceil(input / count) tokens
        self.high: int | None = None  # rows of 2+ ids: at most (input - 1) // (count - 1)
        self.power_fits = np.zeros(len(POWER_SIZES), dtype=np.int64)

    def add(self, inputs: np.ndarray, counts: np.ndarray) -> None:
        """Rows with at least one hash id: their input lengths and id counts (int64 arrays)."""
        if inputs.shape[0] == 0:
            return
        self.rows += int(inputs.shape[0])
        # each row's least and (rows of 2+ ids) greatest block size, shared with _power_fits
        lows = -(-inputs // counts)
        several = counts >= 2
        highs = (inputs - 1) // np.maximum(counts - 1, 1)
        self.low = max(self.low, int(lows.max()))
        if several.any():
            high = int(highs[several].min())
            self.high = high if self.high is None else min(self.high, high)
        self.power_fits += _power_fits(lows, highs, several, counts == 1)

    def finding(self, rows_fitting: Callable[[int], int] | None = None) -> BlockSizeFinding:
        """The rule applied to the evidence so far.

        ``rows_fitting(size)`` counts the rows that fit a size that is not a power of two; it is
        asked only when no size fits every row (to see whether one of the range's ends fits more
        rows than any power of two), and may read the trace again. Without it, only powers count.
        """
        low, high, rows = self.low, self.high, self.rows
        if high is None or low <= high:
            size = preferred_size(low, high)
            return BlockSizeFinding(size, low, high, size, rows, rows, _agreed_note(size, low, high, rows))
        fits = dict(zip(POWER_SIZES, self.power_fits.tolist(), strict=True))
        if rows_fitting is not None:
            for end in (high, low):
                if end not in fits and end >= 1:
                    fits[end] = rows_fitting(end)
        best = max(fits.values())
        closest = AIPERF_DEFAULT_BLOCK_SIZE if fits[AIPERF_DEFAULT_BLOCK_SIZE] == best else (
            min(size for size, count in fits.items() if count == best)
        )
        note = (f"no block size fits every row's hash-id count (some rows need blocks of at least "
                f"{low} tokens, others at most {high}); {closest} fits the most rows ({best} of {rows}); "
                "give --block-size to choose")
        return BlockSizeFinding(None, low, high, closest, best, rows, note)


    def infer(self, rows_fitting: Callable[[int], int] | None = None) -> tuple[int, str]:
        """The size to check the rows at and the note (the former interface of this class)."""
        finding = self.finding(rows_fitting)
        return finding.closest, finding.note


def preferred_size(low: int, high: int | None) -> int:
    """The size the rule takes among ``low``..``high`` (a non-empty range; ``high`` None: no end)."""
    if low <= AIPERF_DEFAULT_BLOCK_SIZE and (high is None or AIPERF_DEFAULT_BLOCK_SIZE <= high):
        return AIPERF_DEFAULT_BLOCK_SIZE
    power = 1 << max(low - 1, 0).bit_length()  # the smallest power of two >= low
    if high is None or power <= high:
        return power
    return low


def _agreed_note(size: int, low: int, high: int | None, rows: int) -> str:
    if rows == 0:
        return f"block size {size} assumed (AIPerf's default): no row has hash ids"
    if low == high:
        return f"block size {size} inferred: the only size every row's hash-id count fits"
    sizes = f"any size from {low} up" if high is None else f"any size from {low} to {high}"
    if size == AIPERF_DEFAULT_BLOCK_SIZE:
        why = "512 is AIPerf's default"
    elif size & (size - 1) == 0:
        why = f"{size} is the smallest power of two among them"
    else:
        why = "no power of two among them, so the smallest"
    return (f"block size {size} inferred: every row's hash-id count fits {sizes}; {why} "
            "(give --block-size if the trace was made at another)")


def _power_fits(lows: np.ndarray, highs: np.ndarray, several: np.ndarray, single: np.ndarray) -> np.ndarray:
    """For each of POWER_SIZES, how many of these rows fit it (a few array passes, not one per size).

    A row fits the powers of two from the smallest one >= its least size (``lows``): all of
    them for a single id, else just that one if it is <= its greatest size (``highs``, read
    only where ``several``).
    """
    # the exponent of the smallest power of two >= low: the bit length of low - 1 (exact in
    # float64 far beyond the largest power counted)
    exponents = np.frexp((lows - 1).astype(np.float64))[1]
    counted = exponents < len(POWER_SIZES)
    smallest = np.left_shift(np.int64(1), np.minimum(exponents, len(POWER_SIZES)))
    fitting = counted & several & (smallest <= highs)
    tally = np.bincount(exponents[fitting], minlength=len(POWER_SIZES))
    tally += np.cumsum(np.bincount(exponents[counted & single], minlength=len(POWER_SIZES)))
    return tally


def fitting_rows(inputs: np.ndarray, counts: np.ndarray, block_size: int) -> int:
    """How many rows' id counts equal ceil(input_length / block_size)."""
    return int(np.count_nonzero(fits(inputs, counts, block_size)))


def fits(inputs: np.ndarray, counts: np.ndarray, block_size: int) -> np.ndarray:
    return ((counts - 1) * block_size < inputs) & (inputs <= counts * block_size)


def block_size_finding(rows: Iterable[tuple[int, int]]) -> BlockSizeFinding:
    """The rule for rows given as (input_length, number of hash ids) pairs; rows without ids are no evidence."""
    pairs = np.asarray([pair for pair in rows if pair[1] > 0], dtype=np.int64).reshape(-1, 2)
    evidence = BlockSizeEvidence()
    evidence.add(pairs[:, 0], pairs[:, 1])
    return evidence.finding(lambda size: fitting_rows(pairs[:, 0], pairs[:, 1], size))


def file_block_size(path: str | Path) -> BlockSizeFinding:
    """The rule applied to every row of a Mooncake JSONL file (one pass; broken rows are no evidence).

    The rows counted are the ones the validator counts: an integer input_length in
    [1, 2**63) and a non-empty hash_ids array (the ids themselves are not looked at), so
    validate and report agree on any file. A block of plain rows (``plain.plain_padded``) is
    read as columns; any other block row by row.
    """
    evidence = BlockSizeEvidence()
    for inputs, counts in _file_evidence(path):
        evidence.add(inputs, counts)
    if evidence.high is not None and evidence.low > evidence.high:
        return evidence.finding(lambda size: rows_fitting_in_file(path, size))
    return evidence.finding()


def _file_evidence(path: str | Path) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Each block's evidence: the input lengths and id counts of its rows that count (int64)."""
    with open(path, "rb") as handle:
        will_read(handle)
        for block in line_blocks(handle):
            plain = plain_padded(block.padded) if block.padded is not None else None
            if plain is not None:
                yield plain_evidence(plain)
                continue
            _, raws, _ = block.batch()
            if raws:
                yield row_evidence(raws)


def plain_evidence(plain: PlainBlock) -> tuple[np.ndarray, np.ndarray]:
    """A plain block's evidence (``plain.plain_padded``): its rows with ids and tokens."""
    inputs, counts = plain.input_length, plain.id_counts
    counted = (counts > 0) & (inputs >= 1)
    return (inputs, counts) if counted.all() else (inputs[counted], counts[counted])


def row_evidence(raws: list) -> tuple[np.ndarray, np.ndarray]:
    """The evidence of raw lines read one by one (``LineProblem``s and broken rows are none)."""
    inputs: list[int] = []
    counts: list[int] = []
    loads = orjson.loads
    collecting = gc.isenabled()
    gc.disable()  # fresh acyclic rows: collecting while they are made only costs time
    try:
        for raw in raws:
            if type(raw) is LineProblem:
                continue
            try:
                row = loads(raw)
            except orjson.JSONDecodeError:
                continue
            if type(row) is not dict:
                continue
            input_length, hash_ids = row.get("input_length"), row.get("hash_ids")
            if type(hash_ids) is list and hash_ids and type(input_length) is int and 1 <= input_length <= MAX_COUNT:
                inputs.append(input_length)
                counts.append(len(hash_ids))
    finally:
        if collecting:
            gc.enable()
    return np.asarray(inputs, dtype=np.int64), np.asarray(counts, dtype=np.int64)


def rows_fitting_in_file(path: str | Path, size: int) -> int:
    """How many of the file's rows (those counted as evidence) fit ``size``: a second reading."""
    return sum(fitting_rows(inputs, counts, size) for inputs, counts in _file_evidence(path))
