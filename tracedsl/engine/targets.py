"""Turn-count mode: sessions drawn to a sampled target of turns, truncated or drawn again at the limit."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from tracedsl.engine import EngineError, endings
from tracedsl.engine.columns import SessionColumns
from tracedsl.engine.model import SessionModel
from tracedsl.engine.samplers import attempt_keys
from tracedsl.engine.sessions import assemble, groups, grow, initial_context, outputs
from tracedsl.limits import RETRY_BUDGET
from tracedsl.trace import EndReason


def explicit_turn_sessions(model: SessionModel, index: np.ndarray, root_keys: np.ndarray,
                           number: np.ndarray, group: np.ndarray | None = None,
                           what: str = "session") -> SessionColumns:
    """Each session aims at its target (drawn from ``root_keys``); at the limit it is truncated
    or drawn again (same target, the keys of the next attempt) up to the attempt limit.
    ``group``: the sessions' groups when they are not drawn (a subagent sharing its parent's).
    With subagents each session keeps the key it was drawn with (``SessionColumns.key``)."""
    spec = model.turns
    assert spec is not None
    target = endings.target_turns(model, root_keys)
    pending = np.arange(index.shape[0], dtype=np.int64)
    finished: list[tuple[np.ndarray, SessionColumns]] = []
    budget, tried = RETRY_BUDGET * index.shape[0], 0
    for attempt in range(spec.max_attempts):
        tried += pending.size
        if tried > budget:
            raise _over_budget(model, index, pending, attempt, budget)
        keys = attempt_keys(root_keys[pending], attempt)
        drawn_group = groups(model, keys) if group is None else group[pending]
        input0 = initial_context(model, keys)
        output0 = outputs(model, keys, 0)
        growth = grow(
            model, keys, input0, output0, target[pending], EndReason.TARGET_TURN_COUNT, False, compacts=True
        )
        drawn = assemble(index[pending], number[pending], drawn_group, False, input0, output0, growth)
        if model.subagent is not None:
            drawn = replace(drawn, key=keys)
        kept = endings.kept_attempts(model, growth.end_reason)
        finished.append((pending[kept], drawn.take(kept)))
        pending = np.delete(pending, kept)
        if not pending.size:
            break
    if pending.size:
        session = int(index[pending[0]])
        raise EngineError(
            f"{what} {session} (target {int(target[pending[0]])} turns) did not fit the context "
            f"limit ({model.context_limit} tokens) in {spec.max_attempts} attempts",
            path="turns.max_session_attempts",
            hint="raise max_session_attempts or max_prompt_tokens, lower the turn targets, "
            "or set allow_truncation",
        )
    order = np.argsort(np.concatenate([local for local, _ in finished]), kind="stable")
    return SessionColumns.concat([cols for _, cols in finished]).take(order)


def _over_budget(model: SessionModel, index: np.ndarray, pending: np.ndarray, attempts: int,
                 budget: int) -> EngineError:
    """Turn-count mode: the chunk's sessions used up the retry budget; how many still do not fit."""
    return EngineError(
        f"{pending.size} of the {index.shape[0]} sessions {int(index[0])}..{int(index[-1])} still did "
        f"not fit the context "
        f"limit ({model.context_limit} tokens) after {attempts} attempts each; the fast engine "
        f"draws at most {RETRY_BUDGET} attempts a session on average ({budget} for these), so the turn targets almost never fit",
        path="turns",
        hint="lower the turn targets or the new tokens a turn, raise max_prompt_tokens, "
        "or set allow_truncation",
    )
