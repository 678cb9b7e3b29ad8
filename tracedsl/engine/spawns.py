"""Subagent spawns as draws: which calls spawn, how many children, their keys and what they return.

Call k >= 1 of a session whose body has ``subagent`` spawns when its "subagent.spawn" draw at
counter k is below the probability and call k + 1 is a tool call of the same session (not a
request opening: a subagent returns within the request that started it; not the
summarization call of a compaction). The children's returns are call k + 1's new tokens, so
the turn windows (sessions.py) need them before any child is drawn: each child's key derives
from its parent's key, the spawning turn and its index j, and its returns come from its own
"subagent.returns" stream, so the sum is a pure function of (parent key, k) and chunk-free.
"""

from __future__ import annotations

import numpy as np

from tracedsl.engine.samplers import mix64, stream, token_counts, uniforms
from tracedsl.limits import MAX_FANOUT

SPAWN = stream("subagent.spawn")
FANOUT = stream("subagent.fanout")
RETURNS = stream("subagent.returns")
CHILD = stream("subagent.child")
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def spawn_draws(sub, keys: np.ndarray, turns: np.ndarray) -> np.ndarray:
    """Whether call ``turns`` would spawn by its draw (broadcast against ``keys``), before the
    rules on what follows it."""
    return uniforms(keys, turns, SPAWN) < sub.probability


def fanouts(sub, keys: np.ndarray, turns: np.ndarray) -> np.ndarray:
    """Children of each spawning call: the law's draw rounded half-even, within its bounds."""
    draw = sub.fanout.sample(uniforms(keys, turns, FANOUT))
    return np.clip(np.rint(draw), sub.fanout_min, sub.fanout_max).astype(np.int64)


def children(sub, keys: np.ndarray, turns: np.ndarray):
    """Per child of the spawns (``keys``, ``turns``), in spawn order: (its spawn, its index j
    among its siblings, its key), and each spawn's first child (length spawns + 1)."""
    count = fanouts(sub, keys, turns)
    first = np.zeros(count.shape[0] + 1, dtype=np.int64)
    np.cumsum(count, out=first[1:])
    spawn = np.repeat(np.arange(count.shape[0]), count)
    j = np.arange(first[-1], dtype=np.int64) - first[:-1][spawn]
    return spawn, j, child_keys(keys[spawn], turns[spawn], j), first


def child_keys(parent_keys: np.ndarray, turns: np.ndarray, j: np.ndarray) -> np.ndarray:
    """The key of child j of the call at ``turns``: a counter off its parent's key."""
    counter = np.asarray(turns, dtype=np.uint64) * np.uint64(MAX_FANOUT) + np.asarray(j, dtype=np.uint64)
    with np.errstate(over="ignore"):
        return mix64(parent_keys + CHILD + counter * _GOLDEN)


def returns(sub, keys: np.ndarray) -> np.ndarray:
    """The tokens each child (by its key) returns to its parent, at least 1."""
    return token_counts(sub.returns.sample(uniforms(keys, 0, RETURNS)), 1)


def returned(sub, keys: np.ndarray, turns: np.ndarray) -> np.ndarray:
    """The sum of the children's returns of each spawning call (``keys``, ``turns`` flat)."""
    if not keys.shape[0]:
        return np.zeros(0, dtype=np.int64)
    _, _, child, first = children(sub, keys, turns)
    return np.add.reduceat(returns(sub, child), first[:-1])


def returning(sub, keys: np.ndarray, turns: np.ndarray, opening: np.ndarray | None) -> np.ndarray:
    """Which candidate calls (``keys`` (S, 1), window ``turns`` (W,)) take their previous
    call's children's returns as new tokens: a bool (S, W)."""
    back = spawn_draws(sub, keys, turns - 1) & (turns >= 2)[None, :]
    return back & ~opening if opening is not None else back
