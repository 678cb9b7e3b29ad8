"""The KV-cache pressure simulation: closed-loop sessions, one FIFO prefill server, block LRU.

The model is defined in docs/simulation.md; ``static/sim_engine.js`` runs the same algorithm
in the browser, step for step, so both give identical figures. Keep the two in lockstep:
same event order, same tie-breaking, same arithmetic (integers for tokens and blocks, one
float expression per duration). The cache itself is in simulation_cache.py.
"""

from __future__ import annotations

import gc
import heapq
import math
from collections import deque
from dataclasses import dataclass, field

from tracedsl.reports.simulation_blocks import SimSession, SimTrace, layout
from tracedsl.reports.simulation_cache import KVCache
from tracedsl.reports.simulation_config import LAYERS, SimulationConfig

__all__ = [
    "LAYERS",
    "SimSession",
    "SimTrace",
    "SimulationConfig",
    "SimulationResult",
    "simulate",
]

READY, PREFILL_END, DECODE_END = 0, 1, 2


@dataclass
class SimulationResult:
    """The figures the page shows: a summary, a time series, and one record per request."""

    summary: dict
    series: dict[str, list]
    requests: dict[str, list]
    session_ids: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"summary": self.summary, "series": self.series, "requests": self.requests}


SERIES_FIELDS = (
    "time_s",
    "active_requests",
    "prefill_queue",
    "prompt_tokens_in_flight",
    "output_tokens_in_flight",
    "resident_blocks",
    "hit_tokens",
    "miss_tokens",
    *(f"evicted_{name}" for name in LAYERS),
    *(f"refetched_{name}" for name in LAYERS),
)
REQUEST_FIELDS = (
    "session",
    "turn",
    "slot",
    "ready_ms",
    "prefill_start_ms",
    "decode_start_ms",
    "decode_end_ms",
    "hit_tokens",
    "miss_tokens",
)


def _run(trace: SimTrace, blocks, config: SimulationConfig, capacity: float, record: bool):
    """Replay the sessions; returns (summary counters, series, requests)."""
    sessions = trace.num_sessions
    cache = KVCache(blocks, sessions, capacity)
    evicted, refetched = cache.evicted, cache.refetched
    first_row = trace.row_offsets.tolist()
    output_tokens = trace.output_length.tolist()
    delay_ms = trace.delay_ms.tolist()
    prompt_tokens = blocks.prompt_tokens
    prefill_tps, decode_tps = config.prefill_tps, config.decode_tps
    points: list[tuple] = []  # one per event, turned into columns at the end
    logged: list[tuple] = []  # one per request, at decode start
    events: list[tuple[float, int, int, int]] = []
    push, pop = heapq.heappush, heapq.heappop
    seq = 0
    turn_of = [0] * sessions
    slot_of = [0] * sessions
    ready_at = [0.0] * sessions
    prefill_at = [0.0] * sessions
    hits_of = [0] * sessions
    misses_of = [0] * sessions
    queue: deque[int] = deque()
    prefill_busy = False
    next_session = 0
    active = prompt_in_flight = output_in_flight = 0
    hit_total = miss_total = 0
    prefill_busy_ms = 0.0
    now = 0.0
    # the summary's peaks and means, kept as the series and requests would give them
    peak_active = peak_prompt = peak_blocks = 0
    ttft_sum = wait_sum = ttft_max = 0.0
    requests_done = 0

    def start_prefill(session: int) -> float:
        """Start the head of the queue's prefill; returns when it ends."""
        nonlocal hit_total, miss_total, prefill_busy_ms
        turn = turn_of[session]
        row = first_row[session] + turn
        hits = cache.start_prefill(session, row, turn == 0)
        misses = prompt_tokens[row] - hits
        hit_total += hits
        miss_total += misses
        hits_of[session] = hits
        misses_of[session] = misses
        prefill_at[session] = now
        duration = misses * 1000.0 / prefill_tps
        prefill_busy_ms += duration
        return now + duration

    for slot in range(min(config.concurrency, sessions)):
        slot_of[slot] = slot
        push(events, (now, seq, READY, slot))
        seq += 1
    next_session = min(config.concurrency, sessions)
    while events:
        now, _, kind, session = pop(events)
        turn = turn_of[session]
        row = first_row[session] + turn
        if kind == READY:
            ready_at[session] = now
            active += 1
            prompt_in_flight += prompt_tokens[row]
            output_in_flight += output_tokens[row]
            queue.append(session)
            if not prefill_busy:
                prefill_busy = True
                head = queue.popleft()
                push(events, (start_prefill(head), seq, PREFILL_END, head))
                seq += 1
        elif kind == PREFILL_END:
            cache.start_decode(session, row)
            decode_end = now + output_tokens[row] * 1000.0 / decode_tps
            push(events, (decode_end, seq, DECODE_END, session))
            seq += 1
            requests_done += 1
            ttft = now - ready_at[session]
            ttft_sum += ttft
            wait_sum += prefill_at[session] - ready_at[session]
            if ttft > ttft_max:
                ttft_max = ttft
            if record:
                logged.append(
                    (
                        session,
                        turn,
                        slot_of[session],
                        ready_at[session],
                        prefill_at[session],
                        now,
                        decode_end,
                        hits_of[session],
                        misses_of[session],
                    )
                )
            prefill_busy = False
            if queue:
                prefill_busy = True
                head = queue.popleft()
                push(events, (start_prefill(head), seq, PREFILL_END, head))
                seq += 1
        else:
            active -= 1
            prompt_in_flight -= prompt_tokens[row]
            output_in_flight -= output_tokens[row]
            cache.release(session, row)
            if row + 1 < first_row[session + 1]:
                turn_of[session] = turn + 1
                push(events, (now + delay_ms[row + 1], seq, READY, session))
                seq += 1
            elif next_session < sessions:
                # the next session in file order takes the freed slot, ready at once
                slot_of[next_session] = slot_of[session]
                push(events, (now, seq, READY, next_session))
                seq += 1
                next_session += 1
        if active > peak_active:
            peak_active = active
        if prompt_in_flight > peak_prompt:
            peak_prompt = prompt_in_flight
        if cache.resident_count > peak_blocks:
            peak_blocks = cache.resident_count
        if record:
            points.append(
                (
                    now / 1000.0,
                    active,
                    len(queue),
                    prompt_in_flight,
                    output_in_flight,
                    cache.resident_count,
                    hit_total,
                    miss_total,
                    *evicted,
                    *refetched,
                )
            )
    totals = {
        "end_ms": now,
        "hit_tokens": hit_total,
        "miss_tokens": miss_total,
        "prefill_busy_ms": prefill_busy_ms,
        "evicted": evicted,
        "refetched": refetched,
        "requests": requests_done,
        "ttft_sum": ttft_sum,
        "wait_sum": wait_sum,
        "ttft_max": ttft_max,
        "peak_active": peak_active,
        "peak_prompt": peak_prompt,
        "peak_blocks": peak_blocks,
    }
    return totals, _columns(SERIES_FIELDS, points), _columns(REQUEST_FIELDS, logged)


def _columns(names: tuple[str, ...], rows: list[tuple]) -> dict[str, list]:
    if not rows:
        return {name: [] for name in names}
    return {name: list(column) for name, column in zip(names, zip(*rows, strict=True), strict=True)}


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def simulate(
    sessions: SimTrace | list[SimSession], config: SimulationConfig, *, record: bool = True
) -> SimulationResult:
    """Run the simulation with the given cache, and once more unbounded for the ceiling.

    ``record=False`` keeps the summary only (empty series and requests): the same figures,
    without a point per event in memory.
    """
    problems = config.problems()
    if problems:
        raise ValueError("; ".join(problems))
    trace = sessions if isinstance(sessions, SimTrace) else SimTrace.from_sessions(sessions)
    # the run allocates a tuple per event and frees none: the cyclic GC would only rescan them
    collecting = gc.isenabled()
    gc.disable()
    try:
        blocks = layout(trace, config.block_size)
        totals, series, requests = _run(trace, blocks, config, config.capacity_blocks, record)
        unbounded, _, _ = _run(trace, blocks, config, math.inf, False)
    finally:
        if collecting:
            gc.enable()
    return SimulationResult(
        summary=summarize(trace, config, totals, unbounded),
        series=series,
        requests=requests,
        session_ids=list(trace.session_ids),
    )


def summarize(trace: SimTrace, config, totals, unbounded) -> dict:
    """The headline figures, in the order the page and the CLI print them.

    Means are left-to-right sums over requests in decode-start order, divided by the count,
    and peaks are over every event: what the page computes from its series and requests.
    """
    count = totals["requests"]
    prompt = totals["hit_tokens"] + totals["miss_tokens"]
    unbounded_prompt = unbounded["hit_tokens"] + unbounded["miss_tokens"]
    peak_blocks = totals["peak_blocks"]
    bytes_per_block = config.kv_bytes_per_token * config.block_size
    summary = {
        "sessions": trace.num_sessions,
        "restarts": int(trace.is_restart.sum()),
        "requests": count,
        "duration_s": totals["end_ms"] / 1000.0,
        "prompt_tokens": prompt,
        "hit_tokens": totals["hit_tokens"],
        "miss_tokens": totals["miss_tokens"],
        "hit_rate": _rate(totals["hit_tokens"], prompt),
        "unbounded_hit_rate": _rate(unbounded["hit_tokens"], unbounded_prompt),
        "mean_ttft_ms": totals["ttft_sum"] / count if count else 0.0,
        "max_ttft_ms": totals["ttft_max"],
        "mean_prefill_wait_ms": totals["wait_sum"] / count if count else 0.0,
        "prefill_busy_ms": totals["prefill_busy_ms"],
        "peak_active_requests": totals["peak_active"],
        "peak_prompt_tokens_in_flight": totals["peak_prompt"],
        "capacity_blocks": config.capacity_blocks,
        "peak_resident_blocks": peak_blocks,
        "peak_kv_gb": peak_blocks * bytes_per_block / 1e9,
        "peak_overflow_blocks": max(0, peak_blocks - config.capacity_blocks),
    }
    for index, name in enumerate(LAYERS):
        summary[f"evicted_{name}_blocks"] = totals["evicted"][index]
    for index, name in enumerate(LAYERS):
        summary[f"refetched_{name}_blocks"] = totals["refetched"][index]
    return summary
