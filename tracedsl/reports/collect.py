"""Everything the reports need, gathered chunk by chunk into bounded accumulators."""

from __future__ import annotations

import zlib

import numpy as np

from tracedsl.ir import GenerationParams
from tracedsl.reports import targets
from tracedsl.reports.reuse import LAYERS, STATUS, ReuseAnalysis, end_reason_name
from tracedsl.reports.sketch import Sketch
from tracedsl.trace import TraceChunk

PREFILL_TPS = 20_000.0  # the reference's latency estimate: prefill and decode tokens per second
DECODE_TPS = 60.0
PER_REASON_SAMPLE = 64  # explorer sessions kept per (end reason, continuation) stratum, bottom-k by id hash
ISL_EDGES = np.logspace(2, 7, 41)  # request input length bins for the hit-rate heatmap
RATE_EDGES = np.linspace(0.0, 1.0, 21)

METRICS = (
    "request_isl", "osl", "initial_context", "initial_context_primary", "new_tokens",
    "generation_length", "delay_ms", "delay_unscaled_ms", "turns", "prompt_blocks",
    "row_blocks", "latency_s", "session_minutes", "prefix_tokens", "unique_tokens",
    "prefix_ratio", "hit_rate", "final_utilization",
)


class Collector:
    """Streams chunks into sketches, end-reason counts, reuse figures and a session sample."""

    def __init__(self, params: GenerationParams | None, block_size: int) -> None:
        self.params = params
        self.block_size = block_size
        self.sketch = {name: Sketch() for name in METRICS}
        self.end_reasons: dict[str, int] = {}
        self.sessions = 0
        self.primaries = 0
        self.rows = 0
        self.reuse = ReuseAnalysis(block_size)
        self.heatmap = np.zeros((RATE_EDGES.size - 1, ISL_EDGES.size - 1), dtype=np.int64)
        self.sample: dict[str, list[tuple[int, str, dict]]] = {}

    def add(self, chunk: TraceChunk) -> None:
        if chunk.num_sessions == 0:
            return
        turns = chunk.turns_per_session
        turn = chunk.turn_index
        firsts = chunk.row_offsets[:-1]
        lasts = chunk.row_offsets[1:] - 1
        later = turn > 0
        isl = chunk.request_input_length.astype(np.float64)
        out = chunk.output_length.astype(np.float64)
        sk = self.sketch
        sk["request_isl"].add(isl)
        sk["osl"].add(out)
        sk["generation_length"].add(out)
        sk["initial_context"].add(chunk.input_length[firsts])
        sk["initial_context_primary"].add(chunk.input_length[firsts][~chunk.is_restart.astype(bool)])
        sk["new_tokens"].add(chunk.input_length[later])
        sk["turns"].add(turns)
        sk["row_blocks"].add(np.diff(chunk.hash_offsets))
        delay = chunk.delay_ms[later]
        sk["delay_ms"].add(delay)
        if self.params is not None:
            limit = self.params.max_prompt_tokens
            previous = isl[np.flatnonzero(later) - 1]
            sk["delay_unscaled_ms"].add(delay / targets.delay_scale(previous, limit))
            sk["final_utilization"].add(isl[lasts] / limit)
        latency_ms = (isl / PREFILL_TPS + out / DECODE_TPS) * 1000.0
        sk["latency_s"].add(latency_ms / 1000.0)
        spent = latency_ms + np.where(later, np.nan_to_num(chunk.delay_ms), 0.0)
        sk["session_minutes"].add(np.add.reduceat(spent, firsts) / 60_000.0)
        reasons, counts = np.unique(chunk.end_reasons, return_counts=True)
        for reason, count in zip(reasons.tolist(), counts.tolist(), strict=False):
            name = end_reason_name(reason)
            self.end_reasons[name] = self.end_reasons.get(name, 0) + count
        self.sessions += chunk.num_sessions
        self.primaries += int((~chunk.is_restart.astype(bool)).sum())
        self.rows += chunk.num_rows

        reuse = self.reuse.add(chunk)
        if reuse is None:
            return
        prompt = reuse.prompt_blocks
        hit = reuse.hit_blocks
        rate = np.where(prompt > 0, hit / np.maximum(prompt, 1), 0.0)
        prefix = np.where((hit == prompt) & (prompt > 0), isl, np.minimum(hit * self.block_size, isl))
        sk["prompt_blocks"].add(prompt)
        sk["hit_rate"].add(rate)
        sk["prefix_tokens"].add(prefix)
        sk["unique_tokens"].add(np.maximum(isl - prefix, 0))
        sk["prefix_ratio"].add(np.where(isl > 0, prefix / np.maximum(isl, 1), 0.0))
        heat, _, _ = np.histogram2d(rate, np.clip(isl, ISL_EDGES[0], ISL_EDGES[-1]), bins=(RATE_EDGES, ISL_EDGES))
        self.heatmap += heat.astype(np.int64)
        self._sample(chunk, reuse, isl, rate)

    def _sample(self, chunk: TraceChunk, reuse, isl: np.ndarray, rate: np.ndarray) -> None:
        """Keep, per stratum, the sessions with the smallest id hashes (deterministic, unbiased)."""
        strata: dict[str, list[tuple[int, int]]] = {}
        first_session = self.sessions - chunk.num_sessions
        for index, session_id in enumerate(chunk.session_ids):
            stratum = end_reason_name(chunk.end_reasons[index])
            if chunk.is_restart[index]:
                stratum += " (continuation)"
            # The session number breaks ties between equal CRCs, so the order is total.
            digest = zlib.crc32(session_id.encode()) << 32 | (first_session + index)
            strata.setdefault(stratum, []).append((digest, index))
        entry_bounds = None
        for stratum, offered in strata.items():
            kept = self.sample.setdefault(stratum, [])
            threshold = kept[-1][0] if len(kept) >= PER_REASON_SAMPLE else None
            chosen = sorted(item for item in offered if threshold is None or item[0] < threshold)
            chosen = chosen[:PER_REASON_SAMPLE]
            if not chosen:
                continue
            if entry_bounds is None:
                entry_bounds = np.searchsorted(reuse.entry_row, np.arange(chunk.num_rows + 1))
            for digest, index in chosen:
                record = _session_record(chunk, index, reuse, entry_bounds, isl, rate)
                kept.append((digest, chunk.session_ids[index], record))
            kept.sort(key=lambda item: item[0])
            del kept[PER_REASON_SAMPLE:]

    def sample_sessions(self) -> list[dict]:
        """The kept sessions, in a stable order (by hash)."""
        everything = [item for kept in self.sample.values() for item in kept]
        return [record for _, _, record in sorted(everything, key=lambda item: item[0])]


def _session_record(chunk, index, reuse, entry_bounds, isl, rate) -> dict:
    first, last = int(chunk.row_offsets[index]), int(chunk.row_offsets[index + 1])
    turns = []
    for row in range(first, last):
        lo, hi = entry_bounds[row], entry_bounds[row + 1]
        turns.append({
            "input_length": int(chunk.input_length[row]),
            "output_length": int(chunk.output_length[row]),
            "request_isl": int(isl[row]),
            "prompt_blocks": int(reuse.prompt_blocks[row]),
            "hit_rate": round(float(rate[row]), 4),
            "entering": _runs(reuse.entry_layer[lo:hi], reuse.entry_status[lo:hi]),
        })
    return {
        "session_id": chunk.session_ids[index],
        "end_reason": end_reason_name(chunk.end_reasons[index]),
        "is_restart": bool(chunk.is_restart[index]),
        "group_id": int(chunk.group_ids[index]),
        "turns": turns,
    }


def _runs(layers: np.ndarray, statuses: np.ndarray) -> list[list]:
    """Run-length encode (layer, status) along the prompt: [[layer, status, count], ...]."""
    if layers.size == 0:
        return []
    code = layers.astype(np.int64) * 4 + statuses
    change = np.flatnonzero(np.diff(code)) + 1
    starts = np.concatenate([[0], change])
    counts = np.diff(np.append(starts, code.size))
    return [[LAYERS[int(code[s]) // 4], STATUS[int(code[s]) % 4], int(n)] for s, n in zip(starts, counts, strict=False)]
