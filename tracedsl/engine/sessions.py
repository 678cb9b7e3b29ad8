"""Drawing sessions' turns, many sessions at once: turn 0, then windows of candidate turns until each stops.

A session's later turns depend on each other only through the running cumulative input
and the stopping rules, so for every still-running session a window of candidate turns
is drawn at once; cumulative sums give each candidate's input; the first candidate that
an ending rule stops (endings.py: a planned split or target, the context limit, a reset
draw) ends it;
only sessions that survive the whole window are drawn again. Draws are counter-based
(samplers.py), so the window size changes nothing but speed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from tracedsl.engine import compaction, endings, requests, spawns
from tracedsl.engine.columns import SessionColumns
from tracedsl.engine.endings import NO_PLANNED_STOP
from tracedsl.engine.model import SessionModel
from tracedsl.engine.samplers import stream, token_counts, uniforms, zipf_groups
from tracedsl.trace import EndReason

__all__ = ["NO_PLANNED_STOP", "Growth", "assemble", "compaction_continuations", "groups", "grow",
           "initial_context", "outputs"]
_FIRST_WINDOW = 16
_MAX_WINDOW = 256
_MAX_CELLS = 1 << 21  # candidate turns per window (sessions x turns): bounds memory

# The random stream of each quantity drawn here, by its stable name.
GROUP = stream("session.group")
SESSION_PREFIX = stream("session.prefix")
NEW_TOKENS = stream("turn.new_tokens")
OUTPUT = stream("turn.output")
DELAY_PICK = stream("turn.delay.pick")
DELAY_AGENTIC = stream("turn.delay.agentic")
DELAY_HUMAN = stream("turn.delay.human")


@dataclass(frozen=True)
class Growth:
    """The later turns accepted for each session, and how and where each session ended."""

    end_reason: np.ndarray
    later_turns: np.ndarray
    last_input: np.ndarray  # cumulative input of the last accepted turn
    last_output: np.ndarray
    row_session: np.ndarray  # per accepted later turn
    row_turn: np.ndarray
    new_tokens: np.ndarray
    output: np.ndarray
    delay_ms: np.ndarray
    opens_request: np.ndarray | None = None  # per accepted later turn, with requests


def outputs(model: SessionModel, keys: np.ndarray, turns: np.ndarray | int) -> np.ndarray:
    """int(max(draw, floor)): the floor applies before truncation, as in the reference."""
    draws = model.output.sample(uniforms(keys, turns, OUTPUT))
    return token_counts(draws, model.output_floor)


def groups(model: SessionModel, keys: np.ndarray) -> np.ndarray:
    """Each session's group, as its global id (a class's own groups follow the earlier ones)."""
    drawn = zipf_groups(uniforms(keys, 0, GROUP), model.num_groups, model.zipf_alpha)
    return drawn + model.group_base if model.group_base else drawn


def initial_context(model: SessionModel, keys: np.ndarray) -> np.ndarray:
    """L1 + L1.5 as whole blocks plus a sampled L2 of at least 1 token, below the context limit."""
    layer2 = token_counts(model.layer2.sample(uniforms(keys, 0, SESSION_PREFIX)), 1)
    return np.minimum(model.fixed_prefix_tokens + layer2, model.context_limit - 1)


def _delays(model: SessionModel, keys: np.ndarray, turns: np.ndarray, context: np.ndarray,
            opening: np.ndarray | None = None):
    """The mixture delay, clipped to its max, scaled down as the previous context fills; with
    requests, a request-opening call waits the human's think time instead (requests.py)."""
    if opening is not None and model.request is not None:
        delay = np.empty(keys.shape[0], dtype=np.float64)
        delay[opening] = requests.thinks(model.request, keys[opening], turns[opening])
        tool = ~opening
        delay[tool] = _delays(model, keys[tool], turns[tool], context[tool])
        return delay
    agentic = uniforms(keys, turns, DELAY_PICK) < model.agentic_fraction
    raw = np.empty(keys.shape[0], dtype=np.float64)
    raw[agentic] = model.agentic_delay.sample(uniforms(keys[agentic], turns[agentic], DELAY_AGENTIC))
    human = ~agentic
    raw[human] = model.human_delay.sample(uniforms(keys[human], turns[human], DELAY_HUMAN))
    raw = np.minimum(raw, model.delay_max)
    return raw * np.maximum(0.2, 1.0 - 0.8 * context / model.context_limit)


def grow(
    model: SessionModel,
    keys: np.ndarray,
    input0: np.ndarray,
    output0: np.ndarray,
    planned_stop: np.ndarray,
    planned_reason: EndReason,
    resets: bool,
    compacts: bool = False,
) -> Growth:
    """Later turns of sessions whose turn 0 is drawn; ``planned_stop`` is the turn that ends
    a session before it is drawn (a restart split, or the explicit target). Each candidate is
    checked against the ending rules (endings.py). ``compacts``: the sessions may compact (the
    spec has ``compact`` and their chain is under its bound); one that does ends with its
    summarization call (compaction.py)."""
    compacts = compacts and model.compaction is not None
    checks = endings.rules(model, planned_reason, resets, compacts)
    count = keys.shape[0]
    compactable = compaction.room_to_compact(model, input0, output0) if compacts else None
    end_reason = np.full(count, -1, dtype=np.int8)
    later_turns = np.zeros(count, dtype=np.int64)
    last_input = input0.astype(np.int64).copy()
    last_output = output0.astype(np.int64).copy()
    active = np.arange(count, dtype=np.int64)
    first_turn, window = 1, _FIRST_WINDOW
    pieces: list[tuple[np.ndarray, ...]] = []
    openings = requests.Openings(model.request, keys) if model.request is not None else None
    opened: list[np.ndarray] = []
    while active.size:
        window = max(1, min(window, _MAX_CELLS // active.size))
        turns = np.arange(first_turn, first_turn + window, dtype=np.int64)
        session_keys = keys[active][:, None]
        new = token_counts(model.new_tokens.sample(uniforms(session_keys, turns, NEW_TOKENS)), 1)
        opening = None
        if openings is not None:
            opening = openings.window(active, session_keys, first_turn, window)
            at_s, at_t = np.nonzero(opening)
            new[at_s, at_t] = requests.messages(model.request, keys[active[at_s]], turns[at_t])
        if model.subagent is not None:  # a call after a spawn appends the children's returns
            at_s, at_t = np.nonzero(spawns.returning(model.subagent, session_keys, turns, opening))
            new[at_s, at_t] = spawns.returned(model.subagent, keys[active[at_s]], turns[at_t] - 1)
        out = outputs(model, session_keys, turns)
        # candidate k's input = previous input + previous output + new tokens
        growth = new.copy()
        growth[:, 0] += last_output[active]
        growth[:, 1:] += out[:, :-1]
        candidate = last_input[active][:, None] + np.cumsum(growth, axis=1)
        window_compactable = compactable[active][:, None] if compactable is not None else None
        stops = endings.first_stops(
            checks, endings.Candidates(session_keys, turns, candidate, planned_stop[active][:, None],
                                       out, window_compactable)
        )
        accepted = stops.accepted

        cells = np.arange(window)[None, :] < accepted[:, None]
        at_session, at_turn = np.nonzero(cells)
        sessions = active[at_session]
        before = np.where(at_turn > 0, candidate[at_session, at_turn - 1], last_input[sessions])
        kind = opening[at_session, at_turn] if opening is not None else None
        pieces.append(
            (
                sessions,
                turns[at_turn],
                new[at_session, at_turn],
                out[at_session, at_turn],
                _delays(model, keys[sessions], turns[at_turn], before, kind),
            )
        )
        if kind is not None:
            opened.append(kind)

        later_turns[active] += accepted
        took = accepted > 0
        last_col = np.maximum(accepted - 1, 0)
        rows = np.arange(active.size)
        last_input[active[took]] = candidate[rows, last_col][took]
        last_output[active[took]] = out[rows, last_col][took]

        end_reason[active[stops.stopped]] = stops.reason
        running = np.ones(active.size, dtype=bool)
        running[stops.stopped] = False
        active = active[running]
        first_turn += window
        window = min(window * 2, _MAX_WINDOW)

    if compacts:
        summarized = np.flatnonzero(end_reason == EndReason.COMPACTED)
        if summarized.size:
            turn = later_turns[summarized] + 1
            new, summary = compaction.summarization(model, keys[summarized], turn)
            before = last_input[summarized]
            pieces.append((summarized, turn, new, summary, _delays(model, keys[summarized], turn, before)))
            if openings is not None:
                opened.append(np.zeros(summarized.size, dtype=bool))  # a tool-side call
            later_turns[summarized] = turn
            last_input[summarized] = before + last_output[summarized] + new
            last_output[summarized] = summary
    columns = [np.concatenate(parts) for parts in zip(*pieces, strict=True)] if pieces else [np.zeros(0)] * 5
    opens = None
    if openings is not None:
        opens = np.concatenate(opened) if opened else np.zeros(0, dtype=bool)
    return Growth(end_reason, later_turns, last_input, last_output, *columns, opens_request=opens)


def assemble(
    index: np.ndarray,
    number: np.ndarray,
    group: np.ndarray,
    is_restart: bool,
    input0: np.ndarray,
    output0: np.ndarray,
    growth: Growth,
) -> SessionColumns:
    """Sessions as columns: turn 0 then the accepted later turns, in turn order."""
    turns = 1 + growth.later_turns
    row_offsets = np.zeros(turns.shape[0] + 1, dtype=np.int64)
    np.cumsum(turns, out=row_offsets[1:])
    rows = int(row_offsets[-1])
    input_length = np.empty(rows, dtype=np.int64)
    output_length = np.empty(rows, dtype=np.int64)
    delay_ms = np.full(rows, np.nan)
    first_rows = row_offsets[:-1]
    input_length[first_rows] = input0
    output_length[first_rows] = output0
    later = row_offsets[growth.row_session.astype(np.int64)] + growth.row_turn.astype(np.int64)
    input_length[later] = growth.new_tokens
    output_length[later] = growth.output
    delay_ms[later] = growth.delay_ms
    opens = None
    if growth.opens_request is not None:
        opens = np.zeros(rows, dtype=bool)
        opens[first_rows] = True  # turn 0 opens the session's first request
        opens[later] = growth.opens_request
    return SessionColumns(
        index=index.astype(np.int64),
        number=number,
        group=group.astype(np.int64),
        is_restart=np.full(index.shape[0], is_restart),
        end_reason=growth.end_reason.astype(np.int8),
        row_offsets=row_offsets,
        input_length=input_length,
        output_length=output_length,
        delay_ms=delay_ms,
        opens_request=opens,
    )


def compaction_continuations(model: SessionModel, parent: SessionColumns, keys: np.ndarray, number: np.ndarray,
                             level: int, remaining: np.ndarray | None = None) -> SessionColumns:
    """The compaction continuations (chain level ``level``, drawn from ``keys``) of the sessions
    ``parent``, which compacted: turn 0 is L1 + L1.5 + the parent's summary (its last output),
    in the same group; they may compact again while under the bound. ``remaining``: in
    turn-count mode, the calls left to each logical session's target."""
    spec = model.compaction
    assert spec is not None
    summary = parent.output_length[parent.row_offsets[1:] - 1]
    input0 = np.minimum(model.fixed_prefix_tokens + summary, model.context_limit - 1)
    output0 = outputs(model, keys, 0)
    resets = model.turns is None and model.reset_base is not None
    if remaining is None:
        stop, reason = np.full(keys.shape[0], NO_PLANNED_STOP, dtype=np.int64), EndReason.FORCED_RETIRE
    else:
        stop, reason = remaining, EndReason.TARGET_TURN_COUNT
    growth = grow(model, keys, input0, output0, stop, reason, resets, compacts=level < spec.max_compactions)
    sessions = assemble(parent.index, number, parent.group, False, input0, output0, growth)
    return replace(sessions, key=keys) if model.subagent is not None else sessions
