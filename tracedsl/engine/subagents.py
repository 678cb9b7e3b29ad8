"""Subagents: the child sessions a chunk's sessions spawn, drawn with the subagent's body, and their layout.

A spawning call (spawns.py) starts ``fanout`` children; each is its own session running the
subagent's body: turn 0 is its L1 (the parent's when it shares the global prefix, else its
body's own region), its L1.5 group (the parent's group when it shares groups, else its own
Zipf draw in its own region) and a fresh L2; then its own turns, resets and retirement (no
restarts); it compacts when its body says so (its chain follows it) and spawns children when
its body has ``subagent`` (depth bounded by the IR). The parent's call after the spawn waits
the longest child's estimated duration (its whole chain; arrivals.py's latency estimate), so
children are drawn and their durations known before the parent's times are: a child's start is
its parent's plus the end of the spawning call, by the parent's patched delays.

In the file a host (a primary, or a continuation) is followed by its block of descendants:
its children in spawn order, each followed by its own block and then by its compaction
continuations (each with its own block): DFS preorder. Children's session numbers are handed
out by the stitcher (order.py) in file order.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from tracedsl.engine import spawns
from tracedsl.engine.arrivals import call_ends_ms, session_durations_ms
from tracedsl.engine.columns import (
    LINK_COMPACTION,
    LINK_SUBAGENT,
    SessionColumns,
    ragged_gather,
    with_blocks,
)
from tracedsl.engine.compaction import CHAIN_KEYS
from tracedsl.engine.endings import NO_PLANNED_STOP, target_turns
from tracedsl.engine.model import SessionModel, SubagentModel
from tracedsl.engine.samplers import attempt_keys
from tracedsl.engine.sessions import (
    assemble,
    compaction_continuations,
    groups,
    grow,
    initial_context,
    outputs,
)
from tracedsl.engine.targets import explicit_turn_sessions
from tracedsl.trace import EndReason


@dataclass(frozen=True)
class Descendants:
    """The subagent sessions of some hosts, each host's block in DFS preorder, host after host.

    Per session: ``parent`` its parent's position in its host's block (-1: the host itself),
    ``spawned_at`` the spawning call's turn index in its parent (-1 for a child's compaction
    continuation), ``offset_ms`` its estimated start after its host's, ``link`` its link kind.
    """

    sessions: SessionColumns
    offsets: np.ndarray  # by host: its block is sessions offsets[h] .. offsets[h + 1] - 1
    parent: np.ndarray
    spawned_at: np.ndarray
    offset_ms: np.ndarray
    link: np.ndarray

    @property
    def count(self) -> int:
        return self.sessions.num_sessions

    def take(self, hosts: np.ndarray) -> Descendants:
        """The blocks of ``hosts`` (indices), in that order."""
        offsets, picks = ragged_gather(self.offsets, np.asarray(hosts, dtype=np.int64))
        return Descendants(self.sessions.take(picks), offsets, self.parent[picks], self.spawned_at[picks],
                           self.offset_ms[picks], self.link[picks])

    @staticmethod
    def concat(parts: list[Descendants]) -> Descendants:
        if len(parts) == 1:
            return parts[0]
        sizes = np.concatenate([np.diff(p.offsets) for p in parts])
        offsets = np.zeros(sizes.shape[0] + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        return Descendants(SessionColumns.concat([p.sessions for p in parts]), offsets,
                           *(np.concatenate([getattr(p, name) for p in parts])
                             for name in ("parent", "spawned_at", "offset_ms", "link")))


def descend(model: SessionModel, sessions: SessionColumns, depth: int = 0
            ) -> tuple[SessionColumns, Descendants | None]:
    """``sessions`` (of ``model``'s body, with their keys) with each spawn's next call's delay
    patched to its longest child's duration, and their descendants; (sessions, None) when the
    body spawns nothing."""
    sub = model.subagent
    if sub is None:
        return sessions, None
    assert sessions.key is not None
    spawner, turn = spawning_calls(sub, sessions)
    if not spawner.size:
        none = sessions.take(np.zeros(0, dtype=np.int64))
        empty = np.zeros(0, dtype=np.int64)
        return sessions, Descendants(replace(none, body=np.zeros(0, np.int8)),
                                     np.zeros(sessions.num_sessions + 1, dtype=np.int64), empty, empty,
                                     np.zeros(0), np.zeros(0, np.int8))
    spawn, _, keys, first = spawns.children(sub, sessions.key[spawner], turn)
    host = spawner[spawn]
    segments, child, level = _drawn(sub, keys, sessions.index[host], sessions.group[host], depth + 1)
    segments, below = descend(sub.body, segments, depth + 1)

    duration = session_durations_ms(sub.latency, segments)
    logical = np.bincount(child, weights=duration, minlength=keys.shape[0])
    call = sessions.row_offsets[spawner] + turn
    delay = sessions.delay_ms.copy()
    delay[call + 1] = np.maximum.reduceat(logical, first[:-1])
    sessions = replace(sessions, delay_ms=delay)
    start = call_ends_ms(sub.latency, sessions)[call][spawn]

    order = np.lexsort((level, child))  # each child's chain in level order, children in spawn order
    child, level, duration = child[order], level[order], duration[order]
    earlier = np.cumsum(duration) - duration
    chain_start = np.maximum.accumulate(np.where(level == 0, np.arange(order.shape[0]), 0))
    offset = start[child] + earlier - earlier[chain_start]  # after the earlier links of its chain
    return sessions, _blocks(sessions.num_sessions, segments, below, order, host[child], level,
                             np.where(level == 0, turn[spawn[child]], -1), offset)


def spawning_calls(sub: SubagentModel, sessions: SessionColumns) -> tuple[np.ndarray, np.ndarray]:
    """(session, turn) of every call that spawns, in file order: a call after turn 0 whose draw
    says so and whose next call is a tool call of the session (not the last call, not before a
    request opening or a summarization)."""
    turns = sessions.turns
    row_session = np.repeat(np.arange(sessions.num_sessions), turns)
    call = np.arange(row_session.shape[0], dtype=np.int64) - np.repeat(sessions.row_offsets[:-1], turns)
    after = turns - 1 - (sessions.end_reason == EndReason.COMPACTED)  # calls that a tool call follows
    candidate = (call >= 1) & (call < after[row_session])
    if sessions.opens_request is not None:
        candidate[:-1] &= ~sessions.opens_request[1:]
    rows = np.flatnonzero(candidate)
    rows = rows[spawns.spawn_draws(sub, sessions.key[row_session[rows]], call[rows])]
    return row_session[rows], call[rows]


def _drawn(sub: SubagentModel, keys: np.ndarray, index: np.ndarray, group: np.ndarray, depth: int):
    """Every child (by its key) and its compaction chain: (sessions, child, chain level) per session."""
    body = sub.body
    count = keys.shape[0]
    number = np.zeros(count, dtype=np.uint64)  # the stitcher numbers them in file order
    shared = group if sub.shares_groups else None
    target = None
    if body.turns is not None:
        first = explicit_turn_sessions(body, index, keys, number, shared, what="a subagent of session")
        target = target_turns(body, keys)
    else:
        drawn_group = shared if shared is not None else groups(body, keys)
        input0, output0 = initial_context(body, keys), outputs(body, keys, 0)
        growth = grow(body, keys, input0, output0, np.full(count, NO_PLANNED_STOP, dtype=np.int64),
                      EndReason.FORCED_RETIRE, body.reset_base is not None, compacts=True)
        first = replace(assemble(index, number, drawn_group, False, input0, output0, growth), key=keys)
    parts, child, level = [first], [np.arange(count)], [np.zeros(count, np.int64)]
    if body.compaction is not None:
        parent, who, root = first, np.arange(count), keys
        remaining = None if target is None else target - first.turns
        for at in range(1, body.compaction.max_compactions + 1):
            compacted = np.flatnonzero(parent.end_reason == EndReason.COMPACTED)
            if not compacted.size:
                break
            who, root = who[compacted], root[compacted]
            remaining = None if remaining is None else remaining[compacted]
            parent = compaction_continuations(body, parent.take(compacted), attempt_keys(root, CHAIN_KEYS + at),
                                              number[:compacted.size], at, remaining)
            parts.append(parent)
            child.append(who)
            level.append(np.full(compacted.size, at, np.int64))
            if remaining is not None:
                remaining = remaining - parent.turns
    segments = SessionColumns.concat(parts)
    segments = replace(segments, body=np.full(segments.num_sessions, depth, np.int8))
    return segments, np.concatenate(child), np.concatenate(level)


def _blocks(hosts: int, segments: SessionColumns, below: Descendants | None, order: np.ndarray,
            host: np.ndarray, level: np.ndarray, spawned_at: np.ndarray, offset: np.ndarray) -> Descendants:
    """The hosts' blocks: the segments in ``order`` (with their ``host``, chain ``level``, spawn
    turn and start, already in that order), each followed by its own block ``below``."""
    count = order.shape[0]
    block_offsets = below.offsets if below is not None else np.zeros(count + 1, np.int64)
    inner = np.diff(block_offsets)
    picks, item, slot, flat = with_blocks(order, block_offsets, count)
    offsets = np.zeros(hosts + 1, dtype=np.int64)
    np.cumsum(np.bincount(host, weights=1 + inner[order], minlength=hosts).astype(np.int64), out=offsets[1:])
    at = item - offsets[host]  # its position in its host's block
    parent = np.where(level == 0, -1, np.concatenate([[-1], at[:-1]]))  # a chain link's parent: the one before
    columns = [parent, spawned_at, offset, np.where(level == 0, LINK_SUBAGENT, LINK_COMPACTION).astype(np.int8)]
    if below is None or not below.count:
        return Descendants(segments.take(order), offsets, *columns)
    full = [np.empty(picks.shape[0], dtype=c.dtype) for c in columns]
    for column, mine in zip(full, columns, strict=True):
        column[item] = mine
    owner = np.repeat(np.arange(count), inner[order])  # the segment (in order) each inner one follows
    inner_parent = below.parent[flat]
    full[0][slot] = np.where(inner_parent < 0, at[owner], at[owner] + 1 + inner_parent)
    full[1][slot] = below.spawned_at[flat]
    full[2][slot] = offset[owner] + below.offset_ms[flat]
    full[3][slot] = below.link[flat]
    sessions = SessionColumns.concat([segments, below.sessions]).take(picks)
    return Descendants(sessions, offsets, *full)
