"""Explicit turn mode of the reference: a target per session, whole-session retries (§8.7)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tracedsl.engine import EngineError
from tracedsl.engine.aiperf_sampler import bounded_draw
from tracedsl.trace import EndReason

if TYPE_CHECKING:
    from tracedsl.engine.aiperf_sampler import AiperfSampler


def sample_explicit_turns(sampler: AiperfSampler, num_sessions: int) -> list[int]:
    """Draw ``num_sessions`` sessions; the file order is generation order."""
    turns = sampler.params.turns
    assert turns is not None
    draw_target = bounded_draw(sampler.stream, turns.as_lognormal())
    attempts = turns.max_session_attempts or 1
    for _ in range(num_sessions):
        target = min(max(round(draw_target()), turns.min), turns.max)
        for _attempt in range(attempts):
            if _attempt_session(sampler, target, turns.allow_truncation):
                break
        else:
            raise EngineError(
                f"AIPerf 0.13.0 would stop here: session {len(sampler.session_keys)} could not "
                f"reach its target of {target} turns within max_prompt_tokens="
                f"{sampler.context_limit} in turns.max_session_attempts={attempts} attempts",
                path="turns.max_session_attempts",
                hint="raise max_prompt_tokens, lower turns.max, or set turns.allow_truncation",
            )
    return list(range(len(sampler.session_keys)))


def _attempt_session(sampler: AiperfSampler, target: int, allow_truncation: bool) -> bool:
    """One attempt (a new hash-id region each time); False when it overflowed the context."""
    region = sampler.session_counter
    sampler.session_counter += 1
    session_id = sampler.new_session_id()
    group = sampler.group()
    context = sampler.initial_context()
    output = sampler.output()
    sampler.open_session(session_id, group, region, False)
    first_row = sampler.row_starts[-1] - sampler.rows_spilled  # in the columns held in memory
    sampler.turn_zero(context, output)
    limit = sampler.context_limit
    prev_input, prev_output = context, output
    for _turn in range(1, target):
        delay = sampler.delay(prev_input)
        new = max(int(sampler.draw_new()), 1)
        cumulative = prev_input + prev_output + new
        if cumulative >= limit:
            if allow_truncation:
                sampler.end_reasons.append(EndReason.FORCED_RETIRE)
                return True
            _discard_session(sampler, first_row)
            return False
        output = sampler.output()
        sampler.check_blocks(cumulative)
        sampler.new_tokens.append(new)
        sampler.outputs.append(output)
        sampler.delays.append(delay)
        prev_input, prev_output = cumulative, output
    sampler.end_reasons.append(EndReason.TARGET_TURN_COUNT)
    return True


def _discard_session(sampler: AiperfSampler, first_row: int) -> None:
    for column in (sampler.new_tokens, sampler.outputs, sampler.delays):
        del column[first_row:]
    sampler.session_keys.pop()
    for column in (sampler.group_ids, sampler.regions, sampler.is_restart, sampler.row_starts):
        column.pop()
