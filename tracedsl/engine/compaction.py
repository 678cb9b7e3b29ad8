"""Compaction: a session whose context fills summarizes it and goes on in a new session.

With ``compact at P% to SUMMARY``, the call after which the summarization call would reach P%
of the context is not made (endings.py). Instead the session's last row is the
summarization call: the instruction (``instruction_tokens``) is its new input and the summary
(drawn from the session's "compaction.summary" stream) its output. The work goes on in a
compaction continuation (chunk.py): a new session of the same group and class whose turn 0 is
L1 + L1.5 + the summary (fresh hash ids for the summary), which grows, compacts again, retires
or resets as usual. ``max`` bounds the compactions of one logical session (then it retires at
the context limit); without one, a chain stops compacting at ``CHAIN_CAP``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tracedsl.engine.samplers import stream, token_counts, uniforms
from tracedsl.families import Law

SUMMARY = stream("compaction.summary")
PLACEMENT = stream("compaction.placement")

# The most compactions one logical session makes when the spec gives no max: far beyond any
# real session (TraceLab's p99 is 34), and a bound on the session numbers a chain uses.
CHAIN_CAP = 4096
# A continuation's keys are its root's with this attempt offset plus its level (retries use
# attempts below MAX_SESSION_ATTEMPTS).
CHAIN_KEYS = 1 << 20


@dataclass(frozen=True)
class CompactionModel:
    """The compaction as the fast engine draws it (plain numbers, for the workers)."""

    threshold_tokens: float
    instruction: int
    summary: Law
    max_compactions: int  # CHAIN_CAP when the spec gives none

    @classmethod
    def build(cls, compaction, context_limit: int, law) -> CompactionModel:
        bound = compaction.max_compactions
        return cls(
            compaction.threshold * context_limit,
            int(compaction.instruction_tokens),
            law(compaction.summary),
            min(int(bound), CHAIN_CAP) if bound is not None else CHAIN_CAP,
        )


def room_to_compact(model, input0: np.ndarray, output0: np.ndarray) -> np.ndarray:
    """Per session: whether a summarization right after turn 0 stays below the threshold. A
    session without that room never compacts (a summarization would pass the threshold)."""
    spec = model.compaction
    return input0 + output0 + spec.instruction < spec.threshold_tokens


def summarization(model, keys: np.ndarray, turns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(new tokens, output) of the summarization calls at ``turns``: the instruction, the summary."""
    spec = model.compaction
    summary = token_counts(spec.summary.sample(uniforms(keys, turns, SUMMARY)), 1)
    return np.full(keys.shape[0], spec.instruction, dtype=np.int64), summary
