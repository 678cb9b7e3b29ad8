"""Exact LRU stack distances of repeated blocks, in whole-array steps.

The sequence is S: every session's distinct blocks in first-use order, sessions in file order
(reuse.py explains why replaying whole prompts reduces to it). A position i whose block last
appeared at p = prev(i) has stack distance d(i) = the number of distinct blocks strictly between
p and i, which is (i - p - 1) minus the positions k < i whose own previous use lies in (p, i):
d(i) = i - p - 1 - #{k < i : prev(k) > p}.

Repeats come in runs (a copied prefix: i, i+1, ... reusing p, p+1, ...), and every position of
a run has its head's distance, so only run heads are counted. A run h reusing [p_h, e_h] holds
clip(e_h - p, 0, m_h) positions with prev > p, which is (e_h - p)+ - (p_h - 1 - p)+. Summing that
over earlier runs is a dominance count: earlier chunks' runs sit in sorted arrays, the current
chunk's runs are counted against each other by a divide and conquer over time whose every level
is one sort and two binary searches.
"""

from __future__ import annotations

import numpy as np

_VALUE_BITS = 32  # positions in S stay below 2^31 (the reuse sample bound)


def repeat_runs(prev: np.ndarray, position: np.ndarray) -> np.ndarray:
    """Run heads among repeated positions (given in order): a run continues both sequences by one."""
    head = np.ones(prev.size, dtype=bool)
    head[1:] = (position[1:] != position[:-1] + 1) | (prev[1:] != prev[:-1] + 1)
    return head


class RunHistory:
    """Every earlier run's reused interval [p, e], as sorted endpoint arrays with prefix sums."""

    def __init__(self) -> None:
        self._ends = _Sorted()  # e_h
        self._starts = _Sorted()  # p_h - 1

    @property
    def size(self) -> int:
        return self._ends.values.size

    def head_distances(self, head_pos: np.ndarray, head_prev: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Exact stack distances of this chunk's run heads; then remember the runs."""
        ends = head_prev + lengths - 1
        starts = head_prev - 1
        inside = self._ends.excess(head_prev) - self._starts.excess(head_prev)
        inside += _earlier_excess(ends, head_prev) - _earlier_excess(starts, head_prev)
        self._ends.add(ends)
        self._starts.add(starts)
        return head_pos - head_prev - 1 - inside


class _Sorted:
    def __init__(self) -> None:
        self.values = np.zeros(0, dtype=np.int64)
        self.suffix = np.zeros(1, dtype=np.int64)  # suffix[k] = sum(values[k:])

    def excess(self, y: np.ndarray) -> np.ndarray:
        """For each y: the sum over stored x > y of (x - y)."""
        k = np.searchsorted(self.values, y, side="right")
        return self.suffix[k] - (self.values.size - k) * y

    def add(self, x: np.ndarray) -> None:
        self.values = np.sort(np.concatenate([self.values, x]), kind="stable")
        self.suffix = np.concatenate([np.cumsum(self.values[::-1])[::-1], [0]])


def _earlier_excess(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """For each i: the sum over h < i with x[h] > y[i] of (x[h] - y[i]).

    Level L pairs blocks of 2^L items: each item of a right block is counted against the left
    block of its pair, so every h < i meets i at exactly one level.
    """
    n = x.size
    total = np.zeros(n, dtype=np.int64)
    if n < 2:
        return total
    shift = 1 - min(int(x.min()), int(y.min()), 0)  # values made positive for the packed keys
    xs, ys = x + shift, y + shift
    index = np.arange(n, dtype=np.int64)
    level = 0
    while (1 << level) < n:
        pair = index >> (level + 1)
        left = ((index >> level) & 1) == 0
        keys = np.sort((pair[left] << _VALUE_BITS) | xs[left])
        values = keys & ((1 << _VALUE_BITS) - 1)
        prefix = np.concatenate([[0], np.cumsum(values)])
        right = ~left
        right_pair = pair[right]
        y_right = ys[right]
        first_above = np.searchsorted(keys, (right_pair << _VALUE_BITS) | y_right, side="right")
        pair_end = np.searchsorted(keys, (right_pair + 1) << _VALUE_BITS, side="left")
        total[right] += prefix[pair_end] - prefix[first_above] - (pair_end - first_above) * y_right
        level += 1
    return total
