"""One chunk body: the primary sessions of an index range and the restart continuations they spawn.

A chunk body is a pure function of (SessionModel, first, stop), so it can run in any
process or on any machine; the stitching pass (order.py) puts bodies together in order.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from tracedsl.engine import EngineError, compaction, endings
from tracedsl.engine.arrivals import session_durations_ms
from tracedsl.engine.columns import LINK_COMPACTION, LINK_RESTART, SessionColumns, ragged_gather
from tracedsl.engine.compaction import CHAIN_KEYS
from tracedsl.engine.endings import NO_PLANNED_STOP
from tracedsl.engine.model import CONTINUATION_MIN_GAP, SessionModel
from tracedsl.engine.samplers import session_keys, session_numbers, stream, uniforms
from tracedsl.engine.sessions import (
    assemble,
    compaction_continuations,
    groups,
    grow,
    initial_context,
    outputs,
)
from tracedsl.engine.subagents import Descendants, descend
from tracedsl.engine.targets import explicit_turn_sessions
from tracedsl.trace import EndReason

# Where a restart continuation is written, drawn from its parent's streams; where a
# compaction continuation is, from its own.
PLACEMENT = stream("restart.placement")
PLACEMENT_COMPACTION = compaction.PLACEMENT
# Link kinds (sessions.jsonl's ``link``) are columns.py's LINK_*. A compaction continuation's
# keys are its root's (a primary's, or a Session B's) with the attempt offset CHAIN_KEYS plus its
# level; its session number is its root's plus its level shifted past every root's (2i + 1 < 2**31).
CHAIN_SHIFT = 31
# Which class a primary runs (only drawn when the spec has classes).
CLASS = stream("session.class")


@dataclass(frozen=True)
class ChunkTask:
    """Primary sessions ``first`` .. ``stop - 1`` of the run that ``model`` describes."""

    model: SessionModel
    first: int
    stop: int


@dataclass(frozen=True)
class Continuations:
    """Restart continuations (Session B), with where they go and what they reuse of their parent.

    ``target``: the primary index before which B is written (``num_sessions``: at the end).
    ``reused_*``: the parent's whole turn-0 L2 blocks as runs of session-unique ids, ragged
    by B (one run each today); starts are relative to the parent's first session-unique id
    until stitched.
    """

    sessions: SessionColumns
    parent: np.ndarray
    target: np.ndarray
    reused_offsets: np.ndarray
    reused_start: np.ndarray
    reused_length: np.ndarray
    # When each starts after its primary does (ms, by the latency model; only used with
    # arrivals), how deep in its primary's chain it is (file order among continuations placed
    # before the same primary), and its link kind (LINK_RESTART or LINK_COMPACTION).
    offset_ms: np.ndarray
    depth: np.ndarray
    link: np.ndarray
    children: Descendants | None = None  # with subagents: each one's block of descendants

    @property
    def count(self) -> int:
        return int(self.target.shape[0])

    def reused_blocks(self) -> np.ndarray:
        """How many ids each continuation reuses (the sum of its runs)."""
        before = np.zeros(self.reused_length.shape[0] + 1, dtype=np.int64)
        np.cumsum(self.reused_length, out=before[1:])
        return before[self.reused_offsets[1:]] - before[self.reused_offsets[:-1]]

    def take(self, picks: np.ndarray) -> Continuations:
        offsets, runs = ragged_gather(self.reused_offsets, picks)
        return Continuations(
            self.sessions.take(picks),
            self.parent[picks],
            self.target[picks],
            offsets,
            self.reused_start[runs],
            self.reused_length[runs],
            self.offset_ms[picks],
            self.depth[picks],
            self.link[picks],
            self.children.take(picks) if self.children is not None else None,
        )

    @staticmethod
    def concat(parts: list[Continuations]) -> Continuations:
        if len(parts) == 1:
            return parts[0]
        counts = np.concatenate([np.diff(p.reused_offsets) for p in parts])
        offsets = np.zeros(counts.shape[0] + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        return Continuations(
            SessionColumns.concat([p.sessions for p in parts]),
            np.concatenate([p.parent for p in parts]),
            np.concatenate([p.target for p in parts]),
            offsets,
            np.concatenate([p.reused_start for p in parts]),
            np.concatenate([p.reused_length for p in parts]),
            np.concatenate([p.offset_ms for p in parts]),
            np.concatenate([p.depth for p in parts]),
            np.concatenate([p.link for p in parts]),
            Descendants.concat([p.children for p in parts]) if parts[0].children is not None else None,
        )


@dataclass(frozen=True)
class ChunkBody:
    first: int
    stop: int
    primaries: SessionColumns
    continuations: Continuations | None
    children: Descendants | None = None  # with subagents: each primary's block of descendants


def run_chunk(task: ChunkTask) -> ChunkBody:
    """Draw the chunk's sessions (the part of a run that may execute anywhere)."""
    model = task.model
    index = np.arange(task.first, task.stop, dtype=np.int64)
    if model.classes:
        return ChunkBody(task.first, task.stop, *_classed(model, index))
    return ChunkBody(task.first, task.stop, *_population(model, index))


def class_of(model: SessionModel, index: np.ndarray) -> np.ndarray:
    """Each primary's class: the first whose cumulative fraction exceeds its draw."""
    u = uniforms(session_keys(model.run_key, 2 * index), 0, CLASS)
    drawn = np.searchsorted(np.asarray(model.class_cdf), u, side="right")
    return np.minimum(drawn, len(model.classes) - 1).astype(np.int8)


def _classed(model: SessionModel, index: np.ndarray
             ) -> tuple[SessionColumns, Continuations | None, Descendants | None]:
    """Each class's primaries drawn with its own model, merged back in index order; a
    continuation and a subagent keep their host's class (and a subagent's body is its depth
    below its class: prefix.py)."""
    which = class_of(model, index)
    spawns = any(c.subagent is not None for c in model.classes)
    primaries: list[SessionColumns] = []
    continuations: list[Continuations] = []
    children: list[Descendants] = []
    drawn = 0
    for number, class_model in enumerate(model.classes):
        members = np.flatnonzero(which == number)
        if not members.size:
            continue
        try:
            own, continued, below = _population(class_model, index[members])
        except EngineError as error:  # name the class's field, and the class
            raise EngineError(f"class '{model.class_names[number]}': {error}",
                              path=f"classes.{number}.params.{error.path}" if error.path else "classes",
                              hint=error.hint) from error
        primaries.append(replace(own, class_index=which[members]))
        if spawns:
            children.append(_of_class(below, own.num_sessions, number))
        if continued is not None:
            sessions = replace(continued.sessions, class_index=np.full(continued.count, number, np.int8))
            kids = _of_class(continued.children, continued.count, number) if spawns else None
            continuations.append(replace(continued, sessions=sessions, parent=continued.parent + drawn,
                                         children=kids))
        drawn += members.size
    merged = SessionColumns.concat(primaries)
    order = np.argsort(merged.index, kind="stable")
    descendants = Descendants.concat(children).take(order) if spawns else None
    if not continuations:
        return merged.take(order), None, descendants
    position = np.empty(order.shape[0], dtype=np.int64)
    position[order] = np.arange(order.shape[0])
    joined = Continuations.concat(continuations)
    joined = replace(joined, parent=position[joined.parent])
    return merged.take(order), joined.take(np.argsort(joined.parent, kind="stable")), descendants


def _of_class(found: Descendants | None, hosts: int, number: int) -> Descendants:
    """A class's descendants (none: an empty block for each of its ``hosts``), marked as its."""
    if found is None:
        found = Descendants.empty(hosts)
    return replace(found, sessions=replace(found.sessions, class_index=np.full(found.count, number, np.int8)))


def _population(model: SessionModel, index: np.ndarray
                ) -> tuple[SessionColumns, Continuations | None, Descendants | None]:
    """The primaries ``index`` of one population (the run, or one class), their continuations
    and (with subagents) the primaries' descendants."""
    keys = session_keys(model.run_key, 2 * index)
    if model.turns is not None:
        primaries = explicit_turn_sessions(model, index, keys, session_numbers(2 * index, model.id_key))
        primaries, children = descend(model, primaries)
        target = endings.target_turns(model, keys)
        return primaries, _compactions(model, primaries, np.arange(index.shape[0]), 2 * index,
                                       np.zeros(index.shape[0]), index, 0, target), children
    group = groups(model, keys)
    input0 = initial_context(model, keys)
    output0 = outputs(model, keys, 0)
    split_at = endings.restart_split_turns(model, index, keys)
    resets = model.reset_base is not None
    growth = grow(model, keys, input0, output0, split_at, EndReason.RESTART_SPLIT, resets, compacts=True)
    number = session_numbers(2 * index, model.id_key)
    primaries = assemble(index, number, group, False, input0, output0, growth)
    if model.subagent is not None:
        primaries = replace(primaries, key=keys)
    primaries, children = descend(model, primaries)  # the parents' delays after a spawn, first
    parents = np.nonzero(growth.end_reason == EndReason.RESTART_SPLIT)[0]
    found: list[Continuations] = []
    if parents.size:
        context = np.minimum(
            growth.last_input[parents] + growth.last_output[parents], model.context_limit - 1
        )
        found.append(_continuations(model, primaries, parents, keys[parents], context))
    if model.compaction is not None:
        everyone = np.arange(index.shape[0])
        chains = [_compactions(model, primaries, everyone, 2 * index, np.zeros(index.shape[0]), index, 0)]
        if found:  # a restart's Session B compacts too; its chain starts from B
            b = found[0]
            chains.append(_compactions(model, b.sessions, b.parent, 2 * b.sessions.index + 1,
                                       b.offset_ms, b.target, 1))
        found += [chain for chain in chains if chain is not None]
    if not found:
        return primaries, None, children
    joined = Continuations.concat(found)
    # in the order of their primaries, then by depth (stable): the stitcher expects no more
    return primaries, joined.take(np.lexsort((joined.depth, joined.parent))), children


def _continuations(
    model: SessionModel,
    primaries: SessionColumns,
    parents: np.ndarray,
    parent_keys: np.ndarray,
    context: np.ndarray,
) -> Continuations:
    """Session B for each split parent: turn 0 carries the parent's whole context (sharing the
    prefix and the parent's whole turn-0 blocks, fresh ids for the rest), then reset-mode turns."""
    index = primaries.index[parents]
    keys = session_keys(model.run_key, 2 * index + 1)
    output0 = outputs(model, keys, 0)
    resets = model.reset_base is not None
    no_stop = np.full(parents.shape[0], NO_PLANNED_STOP, dtype=np.int64)
    growth = grow(model, keys, context, output0, no_stop, EndReason.FORCED_RETIRE, resets)
    number = session_numbers(2 * index + 1, model.id_key)
    sessions = assemble(index, number, primaries.group[parents], True, context, output0, growth)
    if model.subagent is not None:
        sessions = replace(sessions, key=keys)
    sessions, children = descend(model, sessions)

    # Written uniformly at or after a quarter of the run past the parent (the reference's
    # rule, in primary positions, so it is the same whatever the chunking).
    target = _placed_after(model, index, parent_keys, PLACEMENT)

    offsets, reused_start, reused_length = _parent_whole_blocks(model, primaries, parents)
    return Continuations(sessions, parents, target, offsets, reused_start, reused_length,
                         _durations(model, primaries.take(parents)), np.ones(parents.shape[0], np.int64),
                         np.full(parents.shape[0], LINK_RESTART, np.int8), children)


def _durations(model: SessionModel, sessions: SessionColumns) -> np.ndarray:
    """Each session's estimated duration (ms) under the spec's latency model, when it matters:
    only start times use it, and without arrivals every session starts at 0."""
    if model.latency is None:
        return np.zeros(sessions.num_sessions)
    return session_durations_ms(model.latency, sessions)


def _compactions(
    model: SessionModel,
    roots: SessionColumns,
    primary: np.ndarray,
    base: np.ndarray,
    offset_ms: np.ndarray,
    position: np.ndarray,
    depth: int,
    target: np.ndarray | None = None,
) -> Continuations | None:
    """The compaction continuations of ``roots`` (sessions that may have compacted), level by
    level: a continuation starts at L1 + L1.5 + its parent's summary (the parent's last output),
    in the same group, and may compact again while its logical session is under the bound.

    Per root: ``primary`` its primary's position in the chunk, ``base`` the number its keys and
    ids derive from (its primary's 2i, or 2i + 1 for a restart's Session B), ``offset_ms`` its
    start after its primary's, ``position`` where it is written (a primary index), ``depth`` its
    depth in its primary's chain; ``target`` the explicit turn targets (turn-count mode), which
    a logical session's calls count toward.
    """
    spec = model.compaction
    if spec is None:
        return None
    found: list[Continuations] = []
    parents = roots
    remaining = None if target is None else target - parents.turns
    for level in range(1, spec.max_compactions + 1):
        compacted = np.flatnonzero(parents.end_reason == EndReason.COMPACTED)
        if not compacted.size:
            break
        parent = parents.take(compacted)
        primary, base, position = primary[compacted], base[compacted], position[compacted]
        offset_ms = offset_ms[compacted] + _durations(model, parent)
        keys = session_keys(model.run_key, base, CHAIN_KEYS + level)
        if remaining is not None:
            remaining = remaining[compacted]
        number = session_numbers(base + (np.int64(level) << CHAIN_SHIFT), model.id_key)
        sessions, children = descend(model, compaction_continuations(model, parent, keys, number, level, remaining))
        position = _placed_after(model, position, keys, PLACEMENT_COMPACTION, spread_tail=True)
        none = np.zeros(compacted.size + 1, dtype=np.int64)
        found.append(Continuations(sessions, primary, position, none, none[:0], none[:0], offset_ms,
                                   np.full(compacted.size, depth + level, np.int64),
                                   np.full(compacted.size, LINK_COMPACTION, np.int8), children))
        parents = sessions
        if remaining is not None:
            remaining = remaining - sessions.turns
    return Continuations.concat(found) if found else None


def _placed_after(model: SessionModel, position: np.ndarray, keys: np.ndarray, placement,
                  spread_tail: bool = False) -> np.ndarray:
    """Where continuations are written: uniformly at or after a quarter of the run past
    ``position`` (a primary index; the reference's rule for restarts), at most at the end.

    ``spread_tail`` (compaction continuations, not the reference's): one whose quarter-run gap
    would pass the end goes uniformly anywhere after ``position`` instead of at the very end,
    so the run's last chunk does not hold every late parent's continuation (O(N) of them)."""
    n = model.num_sessions
    earliest = position + max(1, int(n * CONTINUATION_MIN_GAP))
    room = np.maximum(n - earliest + 1, 1)
    u = uniforms(keys, 0, placement)
    target = np.where(earliest >= n, n, np.minimum(earliest + (u * room).astype(np.int64), n))
    if spread_tail:
        rest = np.maximum(n - position, 1)
        spread = np.minimum(position + 1 + (u * rest).astype(np.int64), n)
        target = np.where(earliest >= n, spread, target)
    return target


def _parent_whole_blocks(model: SessionModel, primaries: SessionColumns, parents: np.ndarray):
    """Each parent's whole turn-0 L2 blocks, as one (start, count) run of session-unique ids.

    Only these are a true prefix of B's prompt: in a replay, A's prompt continues after its
    turn-0 blocks with A's first output, so A's later blocks never follow them in B's prompt
    and sharing them would fake reuse. A partial last block is not shared either, because
    every id must keep one size across the file.
    """
    layer2 = primaries.input_length[primaries.row_offsets[:-1][parents]] - model.fixed_prefix_tokens
    offsets = np.arange(parents.shape[0] + 1, dtype=np.int64)
    return offsets, np.zeros(parents.shape[0], dtype=np.int64), layer2 // model.block_size
