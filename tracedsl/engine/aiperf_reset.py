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
        session_id = sampler.new_session_id()
        restart_at = (
            sampler.stream.integers(first_restart_turn, end_restart_turn) if inject else -1
        )
        group = sampler.group()
        context = sampler.initial_context()
        output = sampler.output()
        primary = len(sampler.session_keys)
        sampler.open_session(session_id, group, region, False)
        sampler.turn_zero(context, output)
        split = _run_turns(sampler, context, output, restart_at)
        origin = len(primaries)
        primaries.append(primary)
        if split is not None:
            # The continuation keeps A's group and hash-id region, with a fresh id and clock.
            context = min(split[0] + split[1], sampler.context_limit - 1)
            session_id = sampler.new_session_id()
            output = sampler.output()
            continuations.append((len(sampler.session_keys), origin))
            sampler.open_session(session_id, group, region, True)
            sampler.turn_zero(context, output)
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
            sampler.check_blocks(cumulative)
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
    """Insert each continuation at a random place in the back part of the queue (§8.4).

    The reference inserts into a list one by one. The draws depend only on the queue's
    length, so we draw every position first and place them all at once (quadratic list
    inserts would dominate runs with many restarts).
    """
    min_offset = max(1, int(num_sessions * 0.25))
    positions = []
    for k, (_, origin) in enumerate(continuations):
        length = len(primaries) + k
        low = min(origin + min_offset, length)
        positions.append(length if low >= length else sampler.stream.integers(low, length + 1))
    return place_insertions(primaries, [session for session, _ in continuations], positions)


def place_insertions(items: list[int], inserted: list[int], positions: list[int]) -> list[int]:
    """The list after ``insert(positions[k], inserted[k])`` for k = 0, 1, ..., in O(n log n).

    Walking the insertions backwards, the k-th one lands on the positions[k]-th slot not
    taken by a later one; a Fenwick tree over free slots finds it.
    """
    total = len(items) + len(inserted)
    free = [0] * (total + 1)
    for slot in range(1, total + 1):
        free[slot] = slot & -slot  # every slot starts free
    order: list[int | None] = [None] * total
    top = 1 << (total.bit_length() - 1) if total else 0
    for k in range(len(inserted) - 1, -1, -1):
        rank, slot, step = positions[k] + 1, 0, top
        while step:
            if slot + step <= total and free[slot + step] < rank:
                slot += step
                rank -= free[slot]
            step >>= 1
        order[slot] = inserted[k]
        node = slot + 1
        while node <= total:
            free[node] -= 1
            node += node & -node
    remaining = iter(items)
    return [next(remaining) if session is None else session for session in order]
