"""Reset mode of the reference: primaries with optional restart splits, then the scatter (§8.4–§8.6)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tracedsl.trace import EndReason

if TYPE_CHECKING:
    from tracedsl.engine.aiperf_sampler import AiperfSampler

_RESTART_CUTOFF = 0.75


def sample_reset_mode(sampler: AiperfSampler, num_sessions: int) -> list[int]:
    """Draw ``num_sessions`` primaries (and their continuations); return the file order."""
    params = sampler.params
    random = sampler.stream.random
    restart_probability = params.restart_initial_probability
    first_restart_turn, end_restart_turn = params.restart_turn_range
    primaries: list[int] = []
    continuations: list[tuple[int, int]] = []  # (session number, origin position)
    for i in range(num_sessions):
        progress = i / max(1, num_sessions - 1)
        if progress >= _RESTART_CUTOFF:
            p_restart = 0.0
        else:
            p_restart = restart_probability * (1.0 - progress / _RESTART_CUTOFF)
        inject = random() < p_restart
        region = sampler.session_counter
        sampler.session_counter += 1
        session_id = sampler._session_id()
        restart_at = (
            sampler.stream.integers(first_restart_turn, end_restart_turn) if inject else -1
        )
        group = sampler.group()
        context = sampler._initial_context()
        output = sampler._output()
        primary = len(sampler.session_ids)
        sampler._open_session(session_id, group, region, False)
        sampler._turn_zero(context, output)
        split = _run_turns(sampler, context, output, restart_at)
        origin = len(primaries)
        primaries.append(primary)
        if split is not None:
            # The continuation keeps A's group and hash-id region, with a fresh id and clock.
            context = min(split[0] + split[1], sampler.context_limit - 1)
            session_id = sampler._session_id()
            output = sampler._output()
            continuations.append((len(sampler.session_ids), origin))
            sampler._open_session(session_id, group, region, True)
            sampler._turn_zero(context, output)
            _run_turns(sampler, context, output, -1)
    return _scatter(sampler, primaries, continuations, num_sessions)


def _run_turns(
    sampler: AiperfSampler, prev_input: int, prev_output: int, restart_at: int
) -> tuple[int, int] | None:
    """Turns 1.. of one session; returns (last input, last output) when it splits for a restart."""
    random = sampler.stream.random
    draw_delay, draw_new, draw_output = sampler.delay, sampler.draw_new, sampler.draw_output
    limit = sampler.context_limit
    output_floor = sampler.output_floor
    block_limit = sampler.session_block_limit
    reset = sampler.params.reset
    if reset is not None:
        reset_base = reset.base_probability
        reset_growth = reset.context_scaling - 1.0
    new_tokens, outputs, delays = sampler.new_tokens, sampler.outputs, sampler.delays
    turn = 1
    while True:
        if turn == restart_at:
            sampler.end_reasons.append(EndReason.RESTART_SPLIT)
            return prev_input, prev_output
        delay = draw_delay(prev_input)
        new = max(int(draw_new()), 1)
        cumulative = prev_input + prev_output + new
        if cumulative >= limit:
            sampler.end_reasons.append(EndReason.FORCED_RETIRE)
            return None
        if reset is not None and random() < reset_base * (1.0 + reset_growth * (cumulative / limit)):
            sampler.end_reasons.append(EndReason.PROBABILISTIC_RESET)
            return None
        output = int(max(draw_output(), output_floor))
        if cumulative > block_limit:
            sampler._check_blocks(cumulative)
        new_tokens.append(new)
        outputs.append(output)
        delays.append(delay)
        prev_input, prev_output = cumulative, output
        turn += 1


def _scatter(
    sampler: AiperfSampler,
    primaries: list[int],
    continuations: list[tuple[int, int]],
    num_sessions: int,
) -> list[int]:
    """Insert each continuation at a random place in the back part of the queue (§8.4)."""
    order = primaries
    min_offset = max(1, int(num_sessions * 0.25))
    for continuation, origin in continuations:
        low = min(origin + min_offset, len(order))
        if low >= len(order):
            order.append(continuation)
        else:
            order.insert(sampler.stream.integers(low, len(order) + 1), continuation)
    return order
