"""The KV-cache pressure simulation: closed-loop sessions, one FIFO prefill server, block LRU.

The model is defined in docs/simulation.md; ``static/sim_engine.js`` runs the same algorithm
in the browser, step for step, so both give identical figures. Keep the two in lockstep:
same event order, same tie-breaking, same arithmetic (integers for tokens and blocks, one
float expression per duration).
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

LAYERS = ("common", "shared", "private", "output")
READY, PREFILL_END, DECODE_END = 0, 1, 2


@dataclass(frozen=True)
class SimulationConfig:
    """The simulation's inputs (the page's controls have the same names and defaults)."""

    concurrency: int = 50
    prefill_tps: float = 64000.0
    decode_tps: float = 30.0
    kv_gb: float = 300.0
    kv_bytes_per_token: int = 35136
    block_size: int = 512

    def problems(self) -> list[str]:
        """What is wrong with these inputs, as ``field: message`` strings (empty when valid)."""
        out = []
        if self.concurrency < 1:
            out.append("concurrency: must be at least 1")
        for name in ("prefill_tps", "decode_tps", "kv_gb"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                out.append(f"{name}: must be a positive number")
        if self.kv_bytes_per_token < 1:
            out.append("kv_bytes_per_token: must be at least 1")
        if self.block_size < 1:
            out.append("block_size: must be at least 1")
        return out

    @property
    def capacity_blocks(self) -> int:
        """Whole KV blocks that fit in the cache: floor(GB·1e9 / (bytes per token · block size))."""
        return math.floor(self.kv_gb * 1e9 / (self.kv_bytes_per_token * self.block_size))


@dataclass(frozen=True)
class SimSession:
    """One session as the simulation sees it: per-turn lengths, delays and hash ids."""

    session_id: str
    is_restart: bool
    input_length: list[int]
    output_length: list[int]
    delay_ms: list[float]  # before each turn; turn 0's is ignored (closed loop)
    hash_ids: list[np.ndarray]


@dataclass
class SimulationResult:
    """The figures the page shows: a summary, a time series, and one record per request."""

    summary: dict
    series: dict[str, list]
    requests: dict[str, list]
    session_ids: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"summary": self.summary, "series": self.series, "requests": self.requests}


@dataclass
class _Blocks:
    """Per-session block lists ([input 0, output 0, input 1, ...]) with dense ids and layers."""

    blocks: list[np.ndarray]  # per session: dense block ids, in prompt order
    tokens: list[np.ndarray]  # per session: tokens held by each block position
    prompt_end: list[list[int]]  # per session, per turn: end of turn t's prompt in blocks
    request_end: list[list[int]]  # per session, per turn: end of its prompt + output blocks
    prompt_tokens: list[list[int]]  # per session, per turn: the request's whole prompt
    layer: np.ndarray  # per dense block id
    num_blocks: int


def _block_ceil(tokens: int, block_size: int) -> int:
    return -(-tokens // block_size)


def _prepare(sessions: list[SimSession], block_size: int) -> _Blocks:
    """Give every hash id and every output block a dense id and a layer taken from the data."""
    all_ids = [ids for s in sessions for ids in s.hash_ids]
    flat = np.concatenate(all_ids).astype(np.int64) if all_ids else np.zeros(0, np.int64)
    uniques, dense = np.unique(flat, return_inverse=True)
    next_output = len(uniques)
    out = _Blocks([], [], [], [], [], np.zeros(0, np.int8), 0)
    distinct_per_session = []
    cursor = 0
    for session in sessions:
        turns = len(session.input_length)
        counts = np.fromiter((len(ids) for ids in session.hash_ids), np.int64, turns)
        inputs = np.asarray(session.input_length, dtype=np.int64)
        produced = np.asarray(session.output_length, dtype=np.int64)
        ids = dense[cursor : cursor + int(counts.sum())]
        cursor += len(ids)
        row = np.repeat(np.arange(turns), counts)
        position = np.arange(len(ids)) - np.repeat(np.cumsum(counts) - counts, counts)
        # an id repeated within a session names a block it already holds: keep the first
        distinct, first = np.unique(ids, return_index=True)
        distinct_per_session.append(distinct)
        keep = np.zeros(len(ids), dtype=bool)
        keep[first] = True
        kept_rows = row[keep]
        kept = np.bincount(kept_rows, minlength=turns)
        outputs = -(-produced // block_size)
        # blocks in prompt order: [input 0, output 0, input 1, output 1, ...]
        input_start = np.cumsum(kept + outputs) - kept - outputs
        output_start = input_start + kept
        blocks = np.empty(int((kept + outputs).sum()), dtype=np.int64)
        tokens = np.empty_like(blocks)
        rank = np.arange(len(kept_rows)) - np.repeat(np.cumsum(kept) - kept, kept)
        where = input_start[kept_rows] + rank
        blocks[where] = ids[keep]
        # tokens no kept block holds (repeats, ids short of the length) are always misses
        tokens[where] = np.clip(inputs[kept_rows] - position[keep] * block_size, 0, block_size)
        out_rows = np.repeat(np.arange(turns), outputs)
        out_rank = np.arange(len(out_rows)) - np.repeat(np.cumsum(outputs) - outputs, outputs)
        where = output_start[out_rows] + out_rank
        blocks[where] = np.arange(next_output, next_output + len(out_rows))
        tokens[where] = np.clip(produced[out_rows] - out_rank * block_size, 0, block_size)
        next_output += len(out_rows)
        out.blocks.append(blocks)
        out.tokens.append(tokens)
        out.prompt_end.append(output_start.tolist())
        out.request_end.append((output_start + outputs).tolist())
        out.prompt_tokens.append((np.cumsum(inputs) + np.cumsum(produced) - produced).tolist())
    sessions_per_id = np.bincount(
        np.concatenate(distinct_per_session) if sessions else np.zeros(0, np.int64),
        minlength=len(uniques),
    )
    layer = np.full(next_output, 3, dtype=np.int8)
    shared = sessions_per_id >= 2
    common = shared & (sessions_per_id * 2 >= len(sessions))
    layer[: len(uniques)] = np.where(common, 0, np.where(shared, 1, 2))
    out.layer = layer
    out.num_blocks = next_output
    return out


class _Cache:
    """Resident blocks with refcounts; blocks no request holds wait in LRU order for eviction."""

    def __init__(self, prepared: _Blocks, capacity: float) -> None:
        size = prepared.num_blocks
        self.layer = prepared.layer
        self.capacity = capacity
        self.refcount = np.zeros(size, dtype=np.int32)
        self.resident = np.zeros(size, dtype=bool)
        self.ever_evicted = np.zeros(size, dtype=bool)
        self.release_tick = np.full(size, -1, dtype=np.int64)
        self.lru: deque[tuple[np.ndarray, int]] = deque()
        self.tick = 0
        self.resident_count = 0
        self.evicted = [0, 0, 0, 0]
        self.refetched = [0, 0, 0, 0]

    def acquire(self, blocks: np.ndarray) -> None:
        """Pin blocks for a request, making missing ones resident (counting re-fetches)."""
        missing = blocks[~self.resident[blocks]]
        if len(missing):
            self.resident[missing] = True
            self.resident_count += len(missing)
            again = missing[self.ever_evicted[missing]]
            if len(again):
                counts = np.bincount(self.layer[again], minlength=4)
                for index in range(4):
                    self.refetched[index] += int(counts[index])
        self.refcount[blocks] += 1
        self.evict()

    def release(self, blocks: np.ndarray) -> None:
        """Unpin a finished request's blocks; the prompt's tail becomes least recently used."""
        self.refcount[blocks] -= 1
        backwards = blocks[::-1]
        freed = backwards[self.refcount[backwards] == 0]
        if len(freed):
            self.tick += 1
            self.release_tick[freed] = self.tick
            self.lru.append((freed, self.tick))

    def evict(self) -> None:
        need = self.resident_count - self.capacity
        while need > 0 and self.lru:
            batch, tick = self.lru[0]
            still = (
                (self.refcount[batch] == 0)
                & self.resident[batch]
                & (self.release_tick[batch] == tick)
            )
            valid = batch[still]
            take = valid[: int(need)]
            if len(valid) > len(take):
                self.lru[0] = (valid[len(take) :], tick)
            else:
                self.lru.popleft()
            if len(take):
                self.resident[take] = False
                self.ever_evicted[take] = True
                self.resident_count -= len(take)
                need -= len(take)
                gone = np.bincount(self.layer[take], minlength=4)
                for index in range(4):
                    self.evicted[index] += int(gone[index])


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


def _run(sessions, prepared, config, capacity, record):
    """Replay the sessions; returns (summary counters, series, requests)."""
    cache = _Cache(prepared, capacity)
    points: list[tuple] = []  # one per event, turned into columns at the end
    logged: list[tuple] = []  # one per request, at decode start
    events: list[tuple[float, int, int, int]] = []
    seq = 0
    turn_of = [0] * len(sessions)
    slot_of = [0] * len(sessions)
    ready_at = [0.0] * len(sessions)
    prefill_at = [0.0] * len(sessions)
    hits_of = [0] * len(sessions)
    misses_of = [0] * len(sessions)
    queue: deque[int] = deque()
    prefill_busy = False
    next_session = 0
    active = prompt_in_flight = output_in_flight = 0
    hit_total = miss_total = 0
    prefill_busy_ms = 0.0
    now = 0.0

    def push(time: float, kind: int, session: int) -> None:
        nonlocal seq
        heapq.heappush(events, (time, seq, kind, session))
        seq += 1

    def start_prefill(session: int) -> None:
        nonlocal prefill_busy, hit_total, miss_total, prefill_busy_ms
        turn = turn_of[session]
        blocks = prepared.blocks[session]
        end = prepared.prompt_end[session][turn]
        prompt = blocks[:end]
        resident = cache.resident[prompt]
        hit_blocks = end if resident.all() else int(np.argmin(resident))
        hits = int(prepared.tokens[session][:hit_blocks].sum())
        misses = prepared.prompt_tokens[session][turn] - hits
        hit_total += hits
        miss_total += misses
        hits_of[session] = hits
        misses_of[session] = misses
        cache.acquire(prompt)
        prefill_busy = True
        prefill_at[session] = now
        duration = misses * 1000.0 / config.prefill_tps
        prefill_busy_ms += duration
        push(now + duration, PREFILL_END, session)

    def start_session(slot: int) -> None:
        nonlocal next_session
        session = next_session
        next_session += 1
        slot_of[session] = slot
        turn_of[session] = 0
        push(now, READY, session)

    for slot in range(min(config.concurrency, len(sessions))):
        start_session(slot)
    while events:
        now, _, kind, session = heapq.heappop(events)
        turn = turn_of[session]
        if kind == READY:
            ready_at[session] = now
            active += 1
            prompt_in_flight += prepared.prompt_tokens[session][turn]
            output_in_flight += sessions[session].output_length[turn]
            queue.append(session)
            if not prefill_busy:
                start_prefill(queue.popleft())
        elif kind == PREFILL_END:
            blocks = prepared.blocks[session]
            turn_range = prepared.request_end[session][turn]
            cache.acquire(blocks[prepared.prompt_end[session][turn] : turn_range])
            produced = sessions[session].output_length[turn]
            decode_end = now + produced * 1000.0 / config.decode_tps
            push(decode_end, DECODE_END, session)
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
                start_prefill(queue.popleft())
        else:
            active -= 1
            prompt_in_flight -= prepared.prompt_tokens[session][turn]
            output_in_flight -= sessions[session].output_length[turn]
            cache.release(prepared.blocks[session][: prepared.request_end[session][turn]])
            if turn + 1 < len(sessions[session].input_length):
                turn_of[session] = turn + 1
                delay = sessions[session].delay_ms[turn + 1]
                push(now + delay, READY, session)
            elif next_session < len(sessions):
                start_session(slot_of[session])
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
                    *cache.evicted,
                    *cache.refetched,
                )
            )
    totals = {
        "end_ms": now,
        "hit_tokens": hit_total,
        "miss_tokens": miss_total,
        "prefill_busy_ms": prefill_busy_ms,
        "evicted": cache.evicted,
        "refetched": cache.refetched,
    }
    return totals, _columns(SERIES_FIELDS, points), _columns(REQUEST_FIELDS, logged)


def _columns(names: tuple[str, ...], rows: list[tuple]) -> dict[str, list]:
    if not rows:
        return {name: [] for name in names}
    return {name: list(column) for name, column in zip(names, zip(*rows, strict=True), strict=True)}


def _sum(values: list[float]) -> float:
    """Left-to-right float sum, as JS does (Python 3.12's sum() compensates; JS cannot)."""
    total = 0.0
    for value in values:
        total += value
    return total


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def simulate(sessions: list[SimSession], config: SimulationConfig) -> SimulationResult:
    """Run the simulation with the given cache, and once more unbounded for the ceiling."""
    problems = config.problems()
    if problems:
        raise ValueError("; ".join(problems))
    prepared = _prepare(sessions, config.block_size)
    totals, series, requests = _run(sessions, prepared, config, config.capacity_blocks, True)
    unbounded, _, _ = _run(sessions, prepared, config, math.inf, False)
    return SimulationResult(
        summary=summarize(sessions, config, totals, unbounded, series, requests),
        series=series,
        requests=requests,
        session_ids=[s.session_id for s in sessions],
    )


def summarize(sessions, config, totals, unbounded, series, requests) -> dict:
    """The headline figures, in the order the page and the CLI print them."""
    count = len(requests["session"])
    ttft = [s - r for r, s in zip(requests["ready_ms"], requests["decode_start_ms"], strict=True)]
    waits = [p - r for r, p in zip(requests["ready_ms"], requests["prefill_start_ms"], strict=True)]
    prompt = totals["hit_tokens"] + totals["miss_tokens"]
    unbounded_prompt = unbounded["hit_tokens"] + unbounded["miss_tokens"]
    peak_blocks = max(series["resident_blocks"], default=0)
    bytes_per_block = config.kv_bytes_per_token * config.block_size
    summary = {
        "sessions": len(sessions),
        "restarts": sum(1 for s in sessions if s.is_restart),
        "requests": count,
        "duration_s": totals["end_ms"] / 1000.0,
        "prompt_tokens": prompt,
        "hit_tokens": totals["hit_tokens"],
        "miss_tokens": totals["miss_tokens"],
        "hit_rate": _rate(totals["hit_tokens"], prompt),
        "unbounded_hit_rate": _rate(unbounded["hit_tokens"], unbounded_prompt),
        "mean_ttft_ms": _sum(ttft) / count if count else 0.0,
        "max_ttft_ms": max(ttft, default=0.0),
        "mean_prefill_wait_ms": _sum(waits) / count if count else 0.0,
        "prefill_busy_ms": totals["prefill_busy_ms"],
        "peak_active_requests": max(series["active_requests"], default=0),
        "peak_prompt_tokens_in_flight": max(series["prompt_tokens_in_flight"], default=0),
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
