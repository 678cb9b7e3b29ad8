"""How sessions end: the rules each candidate turn is checked against, and the plans drawn at turn 0.

A session ends at the first candidate turn where any rule fires; when several fire on the
same turn, the first in the rule list names the reason. The rules, in that order:

- a planned stop: the turn drawn at turn 0 at which the session stops before being drawn
  (a restart split, or the explicit turn-count target);
- the context limit: a candidate whose cumulative input reaches it retires the session
  (forced retire; in turn-count mode the session is then truncated or drawn again);
- a compaction (with ``compact``): the call after which the summarization call would reach
  the compaction threshold is not made; the session compacts after the call before it
  (compaction.py), so no call, the summarization's included, reaches the threshold. A
  session whose turn 0 leaves no room for the summarization never compacts (it retires);
- a probabilistic reset: p = base * (1 + (scaling - 1) * input / limit), one draw a turn.

Reasons in ``CONTINUED`` end a session whose context goes on in a new session (a restart's
Session B, a compaction continuation). Subagents add no rule: the children's returns are
the next candidate's new tokens (spawns.py), which the rules see like any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from tracedsl.engine.model import RESTART_PROGRESS_END, SessionModel
from tracedsl.engine.samplers import stream, uniforms
from tracedsl.trace import EndReason

NO_PLANNED_STOP = np.iinfo(np.int64).max

# The random stream of each quantity drawn here, by its stable name.
RESET = stream("turn.reset")
RESTART_SPLIT = stream("restart.split")
RESTART_TURN = stream("restart.turn")
TARGET_TURNS = stream("turns.target")

# End reasons after which the session's context continues in a new session.
CONTINUED = frozenset({EndReason.RESTART_SPLIT, EndReason.COMPACTED})


@dataclass(frozen=True)
class Candidates:
    """A window of candidate turns for running sessions: what the rules look at.

    ``keys`` and ``planned_stop`` are per session, as columns (shape (S, 1)); ``turns`` is the
    window's turn indices (W,); ``context`` each candidate's cumulative input (S, W).
    """

    keys: np.ndarray
    turns: np.ndarray
    context: np.ndarray
    planned_stop: np.ndarray
    output: np.ndarray | None = None  # each candidate's output (S, W), for compaction
    compactable: np.ndarray | None = None  # per session (S, 1): may this session compact


class Rule(Protocol):
    reason: EndReason

    def fires(self, window: Candidates) -> np.ndarray:
        """Where the rule ends the session: a bool per candidate, shaped like ``window.context``."""
        ...


@dataclass(frozen=True)
class PlannedStop:
    reason: EndReason

    def fires(self, window: Candidates) -> np.ndarray:
        return window.turns[None, :] >= window.planned_stop


@dataclass(frozen=True)
class ContextLimit:
    limit: int
    reason: EndReason = EndReason.FORCED_RETIRE

    def fires(self, window: Candidates) -> np.ndarray:
        return window.context >= self.limit


@dataclass(frozen=True)
class CompactionThreshold:
    """Fires at the candidate after which the summarization call (its prompt plus output plus
    the instruction) would reach ``threshold`` tokens: the session compacts before it."""

    threshold: float
    instruction: int
    reason: EndReason = EndReason.COMPACTED

    def fires(self, window: Candidates) -> np.ndarray:
        assert window.output is not None and window.compactable is not None
        reaches = window.context + window.output + self.instruction >= self.threshold
        # ... and the continuation would still have a call to make before a planned stop
        room = window.turns[None, :] + 1 < window.planned_stop
        return reaches & room & window.compactable


@dataclass(frozen=True)
class ProbabilisticReset:
    base: float
    scaling: float
    limit: int
    reason: EndReason = EndReason.PROBABILISTIC_RESET

    def fires(self, window: Candidates) -> np.ndarray:
        p_reset = self.base * (1.0 + (self.scaling - 1.0) * window.context / self.limit)
        return uniforms(window.keys, window.turns, RESET) < p_reset


def rules(model: SessionModel, planned_reason: EndReason, resets: bool,
          compacts: bool = False) -> tuple[Rule, ...]:
    """The rules a session's later turns are checked against, first one naming the reason.
    ``compacts``: these sessions may still compact (the chain is under its bound)."""
    found: list[Rule] = [PlannedStop(planned_reason)]
    if compacts and model.compaction is not None:
        found.append(CompactionThreshold(model.compaction.threshold_tokens, model.compaction.instruction))
    found.append(ContextLimit(model.context_limit))
    if resets and model.reset_base is not None:
        found.append(ProbabilisticReset(model.reset_base, model.reset_scaling, model.context_limit))
    return tuple(found)


@dataclass(frozen=True)
class Stops:
    """Where each session of a window stops: ``accepted`` candidates before the stop (the
    window's width when it did not stop), and the reason of those that did."""

    stopped: np.ndarray  # indices of the sessions that stop in this window
    accepted: np.ndarray  # per session
    reason: np.ndarray  # per stopped session, EndReason values (int8)


def first_stops(checks: tuple[Rule, ...], window: Candidates) -> Stops:
    masks = [rule.fires(window) for rule in checks]
    stop = masks[0].copy()
    for mask in masks[1:]:
        stop |= mask
    stops = stop.any(axis=1)
    width = window.turns.shape[0]
    accepted = np.where(stops, stop.argmax(axis=1), width)
    stopped = np.nonzero(stops)[0]
    at = accepted[stopped]
    reason = np.select(
        [mask[stopped, at] for mask in masks[:-1]],
        [np.int8(rule.reason) for rule in checks[:-1]],
        np.int8(checks[-1].reason),
    ).astype(np.int8)
    return Stops(stopped, accepted, reason)


# ---------------------------------------------------------------------------------------------
# Plans drawn at turn 0


def restart_split_turns(model: SessionModel, index: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """The turn at which each primary splits; the chance decays linearly to 0 at 75% of the run."""
    if model.restart_probability == 0.0:
        return np.full(index.shape[0], NO_PLANNED_STOP, dtype=np.int64)
    progress = index / max(1, model.num_sessions - 1)
    chance = np.where(
        progress < RESTART_PROGRESS_END,
        model.restart_probability * (1.0 - progress / RESTART_PROGRESS_END),
        0.0,
    )
    inject = uniforms(keys, 0, RESTART_SPLIT) < chance
    span = model.restart_stop - model.restart_first  # the range is [first, stop)
    turn = model.restart_first + (uniforms(keys, 0, RESTART_TURN) * span).astype(np.int64)
    turn = np.minimum(turn, model.restart_stop - 1)
    return np.where(inject, turn, NO_PLANNED_STOP)


def target_turns(model: SessionModel, keys: np.ndarray) -> np.ndarray:
    """Turn-count mode: each session's target, round-half-even and clamped to [min, max]."""
    spec = model.turns
    assert spec is not None
    target_draw = spec.distribution.sample(uniforms(keys, 0, TARGET_TURNS))
    return np.clip(np.rint(target_draw), spec.min, spec.max).astype(np.int64)


def kept_attempts(model: SessionModel, end_reason: np.ndarray) -> np.ndarray:
    """Turn-count mode: which sessions of an attempt are final. Truncation keeps a session the
    context limit retired; retry draws it again (same target, new draws)."""
    spec = model.turns
    assert spec is not None
    if spec.allow_truncation:
        return np.arange(end_reason.shape[0])
    return np.nonzero(end_reason != EndReason.FORCED_RETIRE)[0]
