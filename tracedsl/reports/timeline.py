"""The arrivals timeline: primary sessions started per time bin, and the spec's target rate."""

from __future__ import annotations

import numpy as np

from tracedsl.ir import Arrivals

BINS = 512  # the accumulator's bins; the chart shows them merged to at most SHOWN
SHOWN = 128
FIRST_WIDTH_MS = 1.0  # a bin's width until a start falls outside the range; each overflow doubles it


class Timeline:
    """Starts counted in bins of a power-of-two width (ms) on a grid from time 0; bounded
    whatever the span.

    The bins in use never span more than BINS: when a start would widen them past that, the
    width doubles and neighbouring bins merge, so memory stays BINS integers. Dividing by a
    power of two is exact in floating point, so every start is counted in the bin
    [k·width, (k+1)·width) that holds it, exactly.
    """

    def __init__(self) -> None:
        self.width = FIRST_WIDTH_MS
        self.low = 0  # the grid index of counts[0]
        self.counts = np.zeros(BINS, dtype=np.int64)
        self.smallest = self.largest = None  # the earliest and latest start seen (ms)

    def add(self, starts: np.ndarray) -> None:
        starts = starts[np.isfinite(starts)]
        if not starts.size:
            return
        first, last = float(starts.min()), float(starts.max())
        self.smallest = first if self.smallest is None else min(self.smallest, first)
        self.largest = last if self.largest is None else max(self.largest, last)
        while self._index(self.largest) - self._index(self.smallest) >= BINS:
            self._double()
        low = self._index(self.smallest)
        if low != self.low:  # move the window so it starts at the earliest start
            used = np.flatnonzero(self.counts)
            moved = np.zeros(BINS, dtype=np.int64)
            moved[used + self.low - low] = self.counts[used]
            self.counts, self.low = moved, low
        index = np.floor(starts / self.width).astype(np.int64) - self.low
        self.counts += np.bincount(index, minlength=BINS)

    def _index(self, start: float) -> int:
        return int(np.floor(start / self.width))

    def _double(self) -> None:
        used = np.flatnonzero(self.counts)
        merged = np.zeros(BINS, dtype=np.int64)
        np.add.at(merged, ((self.low + used) >> 1) - (self.low >> 1), self.counts[used])
        self.counts, self.low, self.width = merged, self.low >> 1, self.width * 2

    @property
    def spread(self) -> bool:
        """Whether the starts are not all at one instant (a trace without arrivals starts all at 0)."""
        return self.smallest is not None and self.largest > self.smallest

    def shown(self) -> tuple[np.ndarray, np.ndarray]:
        """(bin edges in ms, starts per bin) from the bin of the first start to the bin of the
        last, at most SHOWN bins (neighbours merged on the same grid)."""
        used = np.flatnonzero(self.counts)
        if not used.size:
            return np.array([0.0, self.width]), np.zeros(1, dtype=np.int64)
        first, last = self.low + int(used[0]), self.low + int(used[-1])
        merge = 1
        while last // merge - first // merge + 1 > SHOWN:
            merge *= 2
        counts = np.zeros(last // merge - first // merge + 1, dtype=np.int64)
        np.add.at(counts, (self.low + used) // merge - first // merge, self.counts[used])
        edges = (first // merge + np.arange(counts.size + 1)) * (merge * self.width)
        return edges.astype(np.float64), counts


def target_rate(arrivals: Arrivals, edges_ms: np.ndarray) -> tuple[list[float], list[float]] | None:
    """The process's rate (sessions/s) over the chart's span as (times ms, rates) of a line.

    poisson, gamma and constant: their rate throughout; stages: the piecewise-linear rate (past
    the last stage the engine goes on at its end rate, or the stages' mean rate when that is 0);
    file: the file's own times, binned like the observed starts.
    """
    lo, hi = float(edges_ms[0]), float(edges_ms[-1])
    if arrivals.kind in ("poisson", "gamma", "constant"):
        rate = float(arrivals.rate or 0.0)
        return [lo, hi], [rate, rate]
    if arrivals.kind == "stages":
        stages = arrivals.stages or []
        times, rates, start = [], [], 0.0
        held = 0.0
        for stage in stages:
            times += [start, start + stage.duration_ms]
            rates += [stage.rate, stage.end_rate]
            held += (stage.rate + stage.end_rate) / 2.0 * stage.duration_ms / 1000.0
            start += stage.duration_ms
        tail = stages[-1].end_rate if stages and stages[-1].end_rate > 0 else held / (start / 1000.0)
        if hi > start:
            times += [start, hi]
            rates += [tail, tail]
        return _clipped(times, rates, lo, hi)
    if arrivals.kind == "file":
        given = np.asarray(arrivals.times_ms or (), dtype=np.float64)
        counts, _ = np.histogram(given, bins=edges_ms)
        seconds = np.diff(edges_ms) / 1000.0
        times = np.repeat(edges_ms, 2)[1:-1].tolist()
        rates = np.repeat(counts / seconds, 2).tolist()
        return times, rates
    return None


def _clipped(times: list[float], rates: list[float], lo: float, hi: float) -> tuple[list[float], list[float]]:
    """The line restricted to [lo, hi], with its value interpolated at both ends."""
    grid = np.asarray(times)
    values = np.asarray(rates)
    inside = (grid > lo) & (grid < hi)
    xs = [lo, *grid[inside].tolist(), hi]
    ys = [_at(grid, values, lo), *values[inside].tolist(), _at(grid, values, hi)]
    return xs, ys


def _at(grid: np.ndarray, values: np.ndarray, t: float) -> float:
    """The line's value at t (at a jump, the value after it)."""
    after = int(np.searchsorted(grid, t, side="right"))
    if after == 0:
        return float(values[0])
    if after >= grid.size:
        return float(values[-1])
    a, b = grid[after - 1], grid[after]
    if b == a:
        return float(values[after])
    return float(values[after - 1] + (values[after] - values[after - 1]) * (t - a) / (b - a))
