"""The calibration loop: run the drafted spec, measure it as the input was measured, adjust the
few knobs the figures depend on, and again, a bounded number of rounds.

Each round generates the spec in memory with the fast engine (no files), at a small size first
(:data:`SMALL`) and then at the input's own size, and measures it with
:func:`~tracedsl.analysis.fit.structure.figures`. The knobs and what moves them:

- the group prefix's length (blocks): the unbounded hit rate rises with it. A bracket on the
  length narrows each round (bisection once the hit rate has been seen on both sides); when
  even the longest run leaves the hit rate short, the groups are halved in number;
- the session layer's scale: a Newton step on the mean input (each row's prompt holds its
  session's whole layer);
- the output's scale: one ratio step on the mean output (its law is refitted to the scaled values);
- the arrival rate: the measured rate is proportional to the written one (the same draws), so
  one ratio step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from tracedsl.analysis.fit.structure import Figures, Observed, figures
from tracedsl.analysis.fit.writer import Knobs, session_values

SMALL = 2000  # sessions of the first rounds
HIT_MARGIN = 0.03  # the must-holds (docs/fit.md): unbounded prefix hit rate, absolute
MEAN_MARGIN = 0.05  # mean input, mean output, arrival rate: relative
ROUNDS = 12
HIT_TOLERANCE = 0.01  # the loop stops inside these: a third of the must-holds' margins
MEAN_TOLERANCE = 0.015
RATE_TOLERANCE = 0.01


@dataclass
class Round:
    sessions: int
    knobs: Knobs
    figures: Figures


def calibrate(observed: Observed, knobs: Knobs, measure: Callable[[Knobs, int], Figures],
              max_group_blocks: int) -> tuple[Knobs, Figures, list[Round]]:
    """Knobs whose run at the input's size meets the figures (else the nearest of the rounds),
    what their run measured, and the rounds that found them."""
    target = observed.figures
    rounds: list[Round] = []
    axis = _SharingAxis(knobs, max_group_blocks)
    lo, hi = 0, axis.top
    position = axis.start
    if axis.top:
        knobs = replace(knobs, group_blocks=axis.start)
    for number in range(ROUNDS):
        full = number >= 2 or target.sessions <= SMALL
        size = target.sessions if full else min(SMALL, target.sessions)
        got = measure(knobs, size)
        rounds.append(Round(size, knobs, got))
        hit_ok = abs(got.hit_rate - target.hit_rate) <= HIT_TOLERANCE
        mean_ok = _near(got.mean_input, target.mean_input, MEAN_TOLERANCE)
        output_ok = _near(got.mean_output, target.mean_output, MEAN_TOLERANCE)
        rate_ok = target.arrival_rate is None or got.arrival_rate is None or _near(
            got.arrival_rate, target.arrival_rate, RATE_TOLERANCE)
        if full and hit_ok and mean_ok and output_ok and rate_ok:
            break
        knobs = replace(knobs)
        if not output_ok and got.mean_output:
            knobs.output_scale *= target.mean_output / got.mean_output
        if not rate_ok and got.arrival_rate:
            knobs.rate = knobs.rate * target.arrival_rate / got.arrival_rate
        if not hit_ok and axis.top > 0:
            if got.hit_rate < target.hit_rate:
                lo = position
                position = min(hi, position + max(1, (hi - position + 1) // 2))
            else:
                hi = position
                position = max(lo, position - max(1, (position - lo + 1) // 2))
            knobs.groups, knobs.group_blocks = axis.at(position)
        if not mean_ok:
            layer = float(np.mean(session_values(observed, replace(knobs, session_scale=1.0))))
            if layer > 0:
                change = (target.mean_input - got.mean_input) / layer
                knobs.session_scale = max(0.05, knobs.session_scale + change)
    else:  # out of rounds: the best full-size round's knobs, measured
        best = min((r for r in rounds if r.sessions == target.sessions), key=lambda r: _miss(r.figures, target))
        return best.knobs, best.figures, rounds
    return knobs, got, rounds


def within_margins(got: Figures, target: Figures, share: float = 1.0) -> bool:
    """A run meets every must-hold figure of the input within ``share`` of its margin."""
    return _miss(got, target) <= share


def _miss(got: Figures, target: Figures) -> float:
    """How far a round is from the figures, each in units of its must-hold margin."""
    misses = [abs(got.hit_rate - target.hit_rate) / HIT_MARGIN,
              abs(got.mean_input - target.mean_input) / (MEAN_MARGIN * target.mean_input or 1),
              abs(got.mean_output - target.mean_output) / (MEAN_MARGIN * target.mean_output or 1)]
    if target.arrival_rate:
        misses.append(abs((got.arrival_rate or 0) - target.arrival_rate) / (MEAN_MARGIN * target.arrival_rate))
    return max(misses)


class _SharingAxis:
    """The group layer's sharing as one ordered axis: the group run grows block by block up to
    its cap, then the groups halve in number (more sessions a group) down to two."""

    def __init__(self, knobs: Knobs, cap: int) -> None:
        self.groups = max(knobs.groups, 2)
        self.cap = max(cap, 1)
        self.halvings = max(int(np.log2(self.groups / 2)), 0)
        self.top = self.cap + self.halvings if knobs.groups > 1 else 0
        self.start = min(knobs.group_blocks, self.cap)

    def at(self, position: int) -> tuple[int, int]:
        if position <= self.cap:
            return self.groups, position
        return max(2, self.groups >> (position - self.cap)), self.cap


def _near(value: float, target: float, tolerance: float) -> bool:
    return abs(value - target) <= tolerance * abs(target) if target else value == 0


def measured_by(render: Callable[[Knobs], str], seed: int, block_size: int) -> Callable[[Knobs, int], Figures]:
    """A measure for :func:`calibrate`: compile the knobs' spec, generate it in memory, measure."""
    from tracedsl.engine import RunRequest, get_engine
    from tracedsl.pipeline import compile_text

    def measure(knobs: Knobs, sessions: int) -> Figures:
        workload = compile_text(render(knobs), "<fit>").workload
        chunks = get_engine("fast").generate(RunRequest(workload.params, sessions, seed))
        return figures(chunks, block_size)

    return measure
