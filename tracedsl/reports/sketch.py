"""Streaming summaries of one quantity: exact moments, and percentiles from a bounded sketch.

A :class:`Sketch` keeps every distinct value with its count while there are few of them (so
percentiles are exactly numpy's), and past that switches to log-spaced buckets with a relative
width of 0.1% that remember each bucket's count and sum. Memory is bounded by the number of
buckets, never by the number of values added.
"""

from __future__ import annotations

import math

import numpy as np

EXACT_LIMIT = 4096  # distinct values kept exactly before switching to buckets
RELATIVE_ACCURACY = 0.001
_GAMMA_LOG = math.log((1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY))
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
        self._keys = np.zeros(0, dtype=np.float64)  # values (exact) or bucket keys
        self._counts = np.zeros(0, dtype=np.int64)
        self._sums = np.zeros(0, dtype=np.float64)

    def add(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float64).ravel()
        values = values[np.isfinite(values)]
        n = values.size
        if n == 0:
            return
        # Chan et al.'s merge of (count, mean, M2): stable for large counts.
        batch_mean = float(values.mean())
        batch_m2 = float(((values - batch_mean) ** 2).sum())
        total = self.count + n
        delta = batch_mean - self._mean
        self._m2 += batch_m2 + delta * delta * self.count * n / total
        self._mean += delta * n / total
        self.count = total
        self.min = min(self.min, float(values.min()))
        self.max = max(self.max, float(values.max()))
        keys = values if self._exact else _bucket_keys(values)
        self._merge(keys, values)
        if self._exact and self._keys.size > EXACT_LIMIT:
            self._to_buckets()

    def _merge(self, keys: np.ndarray, values: np.ndarray) -> None:
        uniq, inverse = np.unique(keys, return_inverse=True)
        counts = np.bincount(inverse, minlength=uniq.size).astype(np.int64)
        sums = np.bincount(inverse, weights=values, minlength=uniq.size)
        all_keys = np.concatenate([self._keys, uniq])
        merged, where = np.unique(all_keys, return_inverse=True)
        new_counts = np.zeros(merged.size, dtype=np.int64)
        new_sums = np.zeros(merged.size, dtype=np.float64)
        np.add.at(new_counts, where, np.concatenate([self._counts, counts]))
        np.add.at(new_sums, where, np.concatenate([self._sums, sums]))
        self._keys, self._counts, self._sums = merged, new_counts, new_sums

    def _to_buckets(self) -> None:
        values, counts, sums = self._keys, self._counts, self._sums
        self._exact = False
        self._keys = np.zeros(0)
        self._counts = np.zeros(0, dtype=np.int64)
        self._sums = np.zeros(0)
        keys = _bucket_keys(values)
        uniq, inverse = np.unique(keys, return_inverse=True)
        self._keys = uniq
        self._counts = np.bincount(inverse, weights=counts, minlength=uniq.size).astype(np.int64)
        self._sums = np.bincount(inverse, weights=sums, minlength=uniq.size)

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


def _bucket_keys(values: np.ndarray) -> np.ndarray:
    # Zero gets key 0; positive values get keys >= 1 and negative values mirrored keys <= -1,
    # so buckets sort in value order. The +2000 offset keeps keys of values down to ~1e-1
    # positive; smaller magnitudes share the innermost bucket.
    magnitude = np.abs(values)
    keys = np.zeros(values.shape, dtype=np.float64)
    nonzero = magnitude > 0
    raw = np.ceil(np.log(magnitude[nonzero]) / _GAMMA_LOG) + 2000.0
    keys[nonzero] = np.maximum(raw, 1.0) * np.sign(values[nonzero])
    return keys
