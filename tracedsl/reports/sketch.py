"""Streaming summaries of one quantity: exact moments, and percentiles from a bounded sketch.

A :class:`Sketch` keeps every distinct value with its count while there are few of them (so
percentiles are exactly numpy's), and past that switches to log-linear buckets: a value's bucket
is its float64 bit pattern with the low mantissa bits dropped, so buckets are 2^-10 (under 0.1%)
wide relative to their values and cost a shift to compute. Each bucket remembers its count and
sum. Memory is bounded by the number of buckets, never by the number of values added; every
step is a whole-array numpy operation (no sort of the values once in bucket mode).
"""

from __future__ import annotations

import math

import numpy as np

EXACT_LIMIT = 4096  # distinct values kept exactly before switching to buckets
MANTISSA_BITS_KEPT = 10
RELATIVE_ACCURACY = 2.0**-MANTISSA_BITS_KEPT
_SHIFT = 52 - MANTISSA_BITS_KEPT
_SMALL_INTEGER_SPAN = 1 << 16  # integer batches this narrow are counted with one bincount
PERCENTILES = (("p05", 5), ("p25", 25), ("p75", 75), ("p95", 95), ("p99", 99))


class Sketch:
    """Count, mean, std, min, max exactly; percentiles (numpy's linear rule) exactly or within 0.1%."""

    def __init__(self) -> None:
        self.count = 0
        self._mean = 0.0
        self._m2 = 0.0
        self.min = math.inf
        self.max = -math.inf
        self._exact = True
        self._keys = np.zeros(0, dtype=np.float64)  # sorted values (exact) or bucket keys
        self._counts = np.zeros(0, dtype=np.int64)
        self._sums = np.zeros(0, dtype=np.float64)

    def add(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float64).ravel()
        finite = np.isfinite(values)
        if not finite.all():
            values = values[finite]
        n = values.size
        if n == 0:
            return
        # Chan et al.'s merge of (count, mean, M2): stable for large counts.
        batch_mean = float(values.mean())
        centred = values - batch_mean
        batch_m2 = float(np.square(centred, out=centred).sum())  # no BLAS: its threads spin
        total = self.count + n
        delta = batch_mean - self._mean
        self._m2 += batch_m2 + delta * delta * self.count * n / total
        self._mean += delta * n / total
        self.count = total
        low, high = float(values.min()), float(values.max())
        self.min = min(self.min, low)
        self.max = max(self.max, high)
        if self._exact:
            keys, counts = _distinct(values, low, high)
            if keys is None:  # more distinct values in this batch alone than the exact limit
                self._to_buckets()
            else:
                self._merge(keys, counts.astype(np.int64), keys * counts)
                if self._keys.size > EXACT_LIMIT:
                    self._to_buckets()
                return
        keys, counts, sums = _bucketed(values)
        self._merge(keys, counts.astype(np.int64), sums)

    def _merge(self, keys: np.ndarray, counts: np.ndarray, sums: np.ndarray) -> None:
        """Fold sorted distinct (key, count, sum) triples into the stored ones."""
        if self._keys.size == 0:
            self._keys, self._counts, self._sums = keys, counts, sums
            return
        all_keys = np.concatenate([self._keys, keys])
        order = np.argsort(all_keys, kind="stable")
        all_keys = all_keys[order]
        starts = np.flatnonzero(np.concatenate([[True], all_keys[1:] != all_keys[:-1]]))
        self._keys = all_keys[starts]
        self._counts = np.add.reduceat(np.concatenate([self._counts, counts])[order], starts)
        self._sums = np.add.reduceat(np.concatenate([self._sums, sums])[order], starts)

    def _to_buckets(self) -> None:
        values, counts, sums = self._keys, self._counts, self._sums
        self._exact = False
        self._keys = np.zeros(0)
        self._counts = np.zeros(0, dtype=np.int64)
        self._sums = np.zeros(0)
        if values.size:
            keys = _bucket_keys(values)  # monotone in the value, so already sorted
            starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
            self._merge(keys[starts], np.add.reduceat(counts, starts), np.add.reduceat(sums, starts))

    @property
    def exact(self) -> bool:
        return self._exact

    @property
    def mean(self) -> float:
        return self._mean if self.count else 0.0

    @property
    def std(self) -> float:
        """Population standard deviation (ddof 0), as the reference reports it."""
        return math.sqrt(max(self._m2 / self.count, 0.0)) if self.count else 0.0

    def _representatives(self) -> np.ndarray:
        if self._exact:
            return self._keys
        reps = self._sums / np.maximum(self._counts, 1)
        return np.clip(reps, self.min, self.max)

    def quantile(self, q: float) -> float:
        """The q-quantile (0..1) by numpy's default linear interpolation between order statistics."""
        if self.count == 0:
            return 0.0
        rank = q * (self.count - 1)
        lower = math.floor(rank)
        upper = min(lower + 1, self.count - 1)
        cumulative = np.cumsum(self._counts)
        reps = self._representatives()
        low_value = float(reps[np.searchsorted(cumulative, lower, side="right")])
        high_value = float(reps[np.searchsorted(cumulative, upper, side="right")])
        if lower == 0:
            low_value = self.min if not self._exact else low_value
        if upper == self.count - 1:
            high_value = self.max if not self._exact else high_value
        return low_value + (rank - lower) * (high_value - low_value)

    def stats(self, digits: int | None = 2) -> dict:
        """The reference's PercentileStats: count, mean, std, median, p05, p25, p75, p95, p99."""
        out = {"count": self.count, "mean": self.mean, "std": self.std, "median": self.quantile(0.5)}
        for key, pct in PERCENTILES:
            out[key] = self.quantile(pct / 100)
        if digits is not None:
            out = {k: (v if k == "count" else round(float(v), digits)) for k, v in out.items()}
        return out

    def histogram(self, bins: int = 40, lo: float | None = None, hi: float | None = None):
        """Counts over ``bins`` equal-width bins between lo and hi (default: min and max)."""
        if self.count == 0:
            return np.zeros(bins + 1), np.zeros(bins, dtype=np.int64)
        lo = self.min if lo is None else lo
        hi = self.max if hi is None else hi
        if hi <= lo:
            hi = lo + max(abs(lo) * 0.01, 1.0)
        edges = np.linspace(lo, hi, bins + 1)
        reps = self._representatives()
        counts, _ = np.histogram(np.clip(reps, lo, hi), bins=edges, weights=self._counts)
        return edges, counts.astype(np.int64)


def _distinct(values: np.ndarray, low: float, high: float):
    """Sorted distinct values and their counts, or (None, None) when there are too many."""
    if high - low < _SMALL_INTEGER_SPAN and low == math.floor(low):
        offsets = values - low
        as_int = offsets.astype(np.int64)
        if np.array_equal(as_int, offsets):  # integer-valued: one bincount, no sort
            counts = np.bincount(as_int)
            present = np.flatnonzero(counts)
            if present.size > EXACT_LIMIT:
                return None, None
            return present + low, counts[present]
    if values.size > 4 * EXACT_LIMIT:
        # A cheap look at a slice first: a continuous quantity shows its many values at once.
        head = values[: 2 * EXACT_LIMIT + 2]
        head = np.sort(head)
        if np.count_nonzero(head[1:] != head[:-1]) >= EXACT_LIMIT:
            return None, None
    ordered = np.sort(values)
    starts = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
    if starts.size > EXACT_LIMIT:
        return None, None
    return ordered[starts], np.diff(np.append(starts, ordered.size))


def _bucketed(values: np.ndarray):
    """Sorted bucket keys of a batch, with each bucket's count and sum of values."""
    keys = _bucket_keys(values)
    positive = keys > 0
    parts = []
    if not positive.all():
        # Zeros and negatives are rare: a sort is fine for them, and it keeps the bincount
        # below spanning the whole exponent range between 0 and the positive keys.
        rest = np.sort(keys[~positive])
        rest_values = np.sort(values[~positive])
        starts = np.flatnonzero(np.concatenate([[True], rest[1:] != rest[:-1]]))
        parts.append((rest[starts], np.diff(np.append(starts, rest.size)),
                      np.add.reduceat(rest_values, starts)))
        keys, values = keys[positive], values[positive]
    if keys.size:
        low = int(keys.min())
        index = (keys - low).astype(np.int64)
        counts = np.bincount(index)
        sums = np.bincount(index, weights=values)
        present = np.flatnonzero(counts)
        parts.append(((present + low).astype(np.float64), counts[present], sums[present]))
    return tuple(np.concatenate([part[i] for part in parts]) for i in range(3))


def _bucket_keys(values: np.ndarray) -> np.ndarray:
    # The bit pattern of a non-negative double grows with its value; dropping the low mantissa
    # bits leaves 2^10 buckets per power of two. Negative values get mirrored negative keys so
    # keys sort in value order (-0.0 and 0.0 share key 0).
    magnitude = np.abs(values)
    keys = (magnitude.view(np.int64) >> _SHIFT).astype(np.float64)
    return np.where(values < 0, -keys, keys)
