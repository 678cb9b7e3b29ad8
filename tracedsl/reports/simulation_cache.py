"""The simulation's KV cache: refcounted blocks, LRU eviction, hits measured at prefill start.

Semantics are docs/simulation.md's, block by block (and ``static/sim_engine.js`` runs them
that way), but most of the work here is done on counts, not blocks:

* A *private* block (one session's input or output) is only ever pinned by its own session,
  which has one request in flight at a time, and every request pins the whole of its
  session's earlier blocks. So when a request ends, all of its session's private blocks are
  released together, tail first; eviction eats that batch from the tail; the next request
  pins them all again. A session's resident private blocks are therefore always its first
  ``k`` private blocks (in prompt order): one number per session, and hits, pins, releases
  and evictions of private blocks are O(1) per request, not per block.
* A *shared* block (used by 2+ sessions) is tracked one by one (numpy over the session's
  shared blocks), as the model says.

The LRU list holds one batch per release: its session's private blocks (valid while the
session has not pinned them again) and the shared blocks the release freed, each valid while
it is resident, unpinned and not released again since.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from tracedsl.reports.simulation_blocks import OUTPUT, PRIVATE, Layout


class KVCache:
    """Resident blocks for one simulation run (``capacity`` in blocks, ``math.inf`` unbounded)."""

    def __init__(self, layout: Layout, num_sessions: int, capacity: float) -> None:
        self.layout = layout
        self.capacity = capacity
        self.bounded = capacity != float("inf")
        size = layout.num_blocks
        self.resident = np.zeros(size, dtype=bool)  # read for shared blocks only
        self.refcount = np.zeros(size, dtype=np.int32)
        self.ever_evicted = np.zeros(size, dtype=bool)
        self.release_tick = np.full(size, -1, dtype=np.int64)
        self.private_resident = [0] * num_sessions  # k: its first k private blocks are resident
        self.live_tick = [-1] * num_sessions  # the tick of its batch in the LRU, -1 when pinned
        # batches, oldest first: [session, tick, freed shared ids and their private-before
        # counts (both tail first), next shared index]
        self.lru: deque[list] = deque()
        self.tick = 0
        self.resident_count = 0
        self.evicted = [0, 0, 0, 0]
        self.refetched = [0, 0, 0, 0]

    def start_prefill(self, session: int, row: int, first_turn: bool) -> int:
        """Measure the request's hit (in tokens), then pin its prompt; evicts if over capacity."""
        layout = self.layout
        prompt = layout.prompt_blocks[row]
        prompt_private = layout.prompt_private[row]
        start = layout.private_start[session]
        k = self.private_resident[session]
        hit = int(layout.private_position[start + k]) if k < prompt_private else prompt
        count = layout.prompt_shared[row]
        # unbounded, the session's earlier blocks are all still resident: look at its new ones
        checked = 0 if self.bounded or first_turn else layout.prompt_shared[row - 1]
        if count > checked:
            first = layout.shared_start[session] + checked
            ids = layout.shared_ids[first : first + count - checked]
            resident = self.resident[ids]
            if np.count_nonzero(resident) < len(ids):  # (C-level; .all() goes through Python)
                miss = int(resident.argmin())
                hit = min(hit, int(layout.shared_position[first + miss]))
                missing = ids[~resident]
                self.resident[missing] = True
                self.resident_count += len(missing)
                again = missing[self.ever_evicted[missing]]
                if len(again):
                    for layer, number in enumerate(np.bincount(layout.layer[again], minlength=4)):
                        self.refetched[layer] += int(number)
            if self.bounded:
                self.refcount[ids] += 1
        # private blocks k..: those the session had before this turn were evicted, the rest new
        before = 0 if first_turn else layout.request_private[row - 1]
        if before > k:
            outputs = int(layout.outputs_before[start + before] - layout.outputs_before[start + k])
            self.refetched[OUTPUT] += outputs
            self.refetched[PRIVATE] += before - k - outputs
        self.resident_count += prompt_private - k
        self.private_resident[session] = prompt_private
        self.live_tick[session] = -1
        self.evict()
        block_start = layout.block_start[session]
        return int(layout.tokens_before[block_start + hit] - layout.tokens_before[block_start])

    def start_decode(self, session: int, row: int) -> None:
        """Pin the request's new output blocks (private, after its prompt)."""
        outputs = self.layout.request_private[row] - self.layout.prompt_private[row]
        self.resident_count += outputs
        self.private_resident[session] += outputs
        self.evict()

    def release(self, session: int, row: int) -> None:
        """Unpin a finished request's blocks; the prompt's tail becomes least recently used."""
        if not self.bounded:
            return  # nothing is ever evicted: no refcounts or LRU order needed
        layout = self.layout
        count = layout.prompt_shared[row]
        freed_ids: list[int] = []
        freed_before: list[int] = []
        if count:
            first = layout.shared_start[session]
            ids = layout.shared_ids[first : first + count]
            held = self.refcount[ids] - 1
            self.refcount[ids] = held
            if np.count_nonzero(held) < count:
                freed = (held == 0).nonzero()[0][::-1]
                freed_ids = ids[freed].tolist()
                freed_before = layout.shared_private_before[first + freed].tolist()
        if not freed_ids and not self.private_resident[session]:
            return
        self.tick += 1
        if freed_ids:
            self.release_tick[freed_ids] = self.tick
        self.live_tick[session] = self.tick
        self.lru.append([session, self.tick, freed_ids, freed_before, 0])

    def evict(self) -> None:
        """Evict least recently released blocks until resident blocks fit the capacity."""
        need = self.resident_count - self.capacity
        lru = self.lru
        while need > 0 and lru:
            batch = lru[0]
            session, tick, freed_ids, freed_before, index = batch
            if self.live_tick[session] != tick:
                lru.popleft()  # its session pinned every block of it again
                continue
            k = self.private_resident[session]
            while need > 0:
                # in the batch's order (tail first), shared block `index` comes once the
                # private blocks after it are gone
                floor = freed_before[index] if index < len(freed_ids) else 0
                if k > floor:
                    take = min(need, k - floor)
                    self._evict_private(session, k - take, k)
                    k -= take
                    need -= take
                elif index < len(freed_ids):
                    block = freed_ids[index]
                    index += 1
                    if (
                        self.refcount[block] == 0
                        and self.resident[block]
                        and self.release_tick[block] == tick
                    ):
                        self.resident[block] = False
                        self.ever_evicted[block] = True
                        self.resident_count -= 1
                        self.evicted[self.layout.layer[block]] += 1
                        need -= 1
                else:
                    break
            self.private_resident[session] = k
            batch[4] = index
            if k == 0 and index == len(freed_ids):
                lru.popleft()

    def _evict_private(self, session: int, low: int, high: int) -> None:
        start = self.layout.private_start[session]
        before = self.layout.outputs_before
        outputs = int(before[start + high] - before[start + low])
        self.evicted[OUTPUT] += outputs
        self.evicted[PRIVATE] += high - low - outputs
        self.resident_count -= high - low
