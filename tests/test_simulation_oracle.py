"""The fast simulation (counts per session) against a plain block-by-block replay of the model."""

from __future__ import annotations

import heapq
from collections import OrderedDict, deque

import numpy as np
import pytest

from tracedsl.reports.simulation_model import LAYERS, SimSession, SimulationConfig, simulate


def oracle(sessions: list[SimSession], config: SimulationConfig, capacity: float):
    """docs/simulation.md read literally: every block refcounted, one OrderedDict as the LRU."""
    size = config.block_size
    users: dict[int, int] = {}
    for s in sessions:
        for block in {int(i) for ids in s.hash_ids for i in ids}:
            users[block] = users.get(block, 0) + 1

    def layer(block):
        if block[0] == "out":
            return 3
        count = users[block[1]]
        return 2 if count < 2 else (0 if count * 2 >= len(sessions) else 1)

    prompts = []  # per session, per turn: (prompt blocks with tokens, output blocks)
    for n, s in enumerate(sessions):
        held, seen, turns = [], set(), []
        for t, ids in enumerate(s.hash_ids):
            for j, raw in enumerate(int(i) for i in ids):
                if raw not in seen:
                    seen.add(raw)
                    held.append((("id", raw), min(size, max(0, s.input_length[t] - j * size))))
            outputs = [
                (("out", n, t, j), min(size, s.output_length[t] - j * size))
                for j in range(-(-s.output_length[t] // size))
            ]
            turns.append((list(held), outputs))
            held += outputs
        prompts.append(turns)
    refcount: dict = {}
    resident: set = set()
    ever_evicted: set = set()
    lru: OrderedDict = OrderedDict()
    evicted, refetched = [0] * 4, [0] * 4

    def acquire(blocks):
        for block in blocks:
            if block not in resident:
                resident.add(block)
                if block in ever_evicted:
                    refetched[layer(block)] += 1
            lru.pop(block, None)
            refcount[block] = refcount.get(block, 0) + 1
        while len(resident) > capacity and lru:
            block, _ = lru.popitem(last=False)
            resident.discard(block)
            ever_evicted.add(block)
            evicted[layer(block)] += 1

    events, queue, seq = [], deque(), 0
    turn_of, slot_of = [0] * len(sessions), [0] * len(sessions)
    busy, next_session, hits_log = False, 0, []

    def push(time, kind, n):
        nonlocal seq
        heapq.heappush(events, (time, seq, kind, n))
        seq += 1

    def prefill(n, now):
        prompt, _ = prompts[n][turn_of[n]]
        hit = 0
        for block, tokens in prompt:
            if block not in resident:
                break
            hit += tokens
        total = sum(sessions[n].input_length[: turn_of[n] + 1]) + sum(
            sessions[n].output_length[: turn_of[n]]
        )
        hits_log.append((n, turn_of[n], hit, total - hit))
        acquire([block for block, _ in prompt])
        push(now + (total - hit) * 1000.0 / config.prefill_tps, 1, n)

    for slot in range(min(config.concurrency, len(sessions))):
        slot_of[slot], next_session = slot, slot + 1
        push(0.0, 0, slot)
    while events:
        now, _, kind, n = heapq.heappop(events)
        t = turn_of[n]
        if kind == 0:
            queue.append(n)
            if not busy:
                busy = True
                prefill(queue.popleft(), now)
        elif kind == 1:
            acquire([block for block, _ in prompts[n][t][1]])
            push(now + sessions[n].output_length[t] * 1000.0 / config.decode_tps, 2, n)
            busy = bool(queue)
            if queue:
                prefill(queue.popleft(), now)
        else:
            prompt, outputs = prompts[n][t]
            blocks = [block for block, _ in prompt + outputs]
            for block in blocks:
                refcount[block] -= 1
            for block in reversed(blocks):
                if refcount[block] == 0:
                    lru[block] = True
            if t + 1 < len(sessions[n].input_length):
                turn_of[n] = t + 1
                push(now + sessions[n].delay_ms[t + 1], 0, n)
            elif next_session < len(sessions):
                slot_of[next_session] = slot_of[n]
                push(now, 0, next_session)
                next_session += 1
    return sorted(hits_log), evicted, refetched, now


def random_sessions(rng: np.random.Generator, count: int) -> list[SimSession]:
    """Shared heads, group prefixes, ids repeated within a session, short ids, zero outputs."""
    sessions, next_id = [], 10_000
    for n in range(count):
        rows = []
        for t in range(int(rng.integers(1, 5))):
            blocks = int(rng.integers(0, 5))
            ids = list(range(next_id, next_id + blocks))
            next_id += blocks
            if t == 0:
                group = [100 + n % 3] * int(rng.random() < 0.6)
                ids = [0, 1][: int(rng.integers(0, 3))] + group + ids
            if rng.random() < 0.2 and ids:
                ids.append(ids[0])  # a repeat names a block the session holds
            if rng.random() < 0.15:
                ids.append(int(rng.integers(100, 103)))  # a shared id late in a prompt
            length = max(1, len(ids) * 16 - int(rng.integers(0, 20)))
            rows.append((length, int(rng.integers(0, 40)), float(rng.integers(0, 300))))
            rows[-1] += (ids,)
        sessions.append(
            SimSession(
                f"s{n}",
                False,
                [r[0] for r in rows],
                [r[1] for r in rows],
                [r[2] for r in rows],
                [np.asarray(r[3], dtype=np.int64) for r in rows],
            )
        )
    return sessions


@pytest.mark.parametrize("seed", range(40))
def test_counts_per_session_replay_the_block_model_exactly(seed):
    rng = np.random.default_rng(seed)
    sessions = random_sessions(rng, int(rng.integers(1, 25)))
    config = SimulationConfig(
        concurrency=int(rng.integers(1, 6)),
        prefill_tps=1000.0,
        decode_tps=50.0,
        kv_gb=float(rng.integers(2, 40)),
        kv_bytes_per_token=62_500_000,  # 1 GB per block of 16: kv_gb is the capacity in blocks
        block_size=16,
    )
    capacity = config.capacity_blocks
    result = simulate(sessions, config)
    hits, evicted, refetched, end_ms = oracle(sessions, config, capacity)
    got = sorted(
        zip(
            result.requests["session"],
            result.requests["turn"],
            result.requests["hit_tokens"],
            result.requests["miss_tokens"],
            strict=True,
        )
    )
    assert got == hits
    summary = result.summary
    assert [summary[f"evicted_{layer}_blocks"] for layer in LAYERS] == evicted
    assert [summary[f"refetched_{layer}_blocks"] for layer in LAYERS] == refetched
    assert summary["duration_s"] == end_ms / 1000.0
    unbounded_hits, *_ = oracle(sessions, config, float("inf"))
    hit = sum(h for _, _, h, _ in unbounded_hits)
    assert summary["unbounded_hit_rate"] == hit / sum(h + m for _, _, h, m in unbounded_hits)
