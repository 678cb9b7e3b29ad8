"""Everything the reports need, gathered chunk by chunk into bounded accumulators."""

from __future__ import annotations

import numpy as np

from tracedsl.ir import GenerationParams, Latency
from tracedsl.reports import agent, targets
from tracedsl.reports.classes import ClassSplit
from tracedsl.reports.reuse import LAYERS, STATUS, ReuseAnalysis
from tracedsl.reports.sketch import Sketch
from tracedsl.reports.timeline import Timeline
from tracedsl.trace import EndReason, TraceChunk

# The latency model's defaults (the reference's estimate), for importers; a run reads its spec's.
PREFILL_TPS = Latency().prefill_tokens_per_s
DECODE_TPS = Latency().decode_tokens_per_s
PER_REASON_SAMPLE = 64  # explorer sessions kept per (end reason, continuation) stratum, bottom-k by id hash
ISL_EDGES = np.logspace(2, 7, 41)  # request input length bins for the hit-rate heatmap
RATE_EDGES = np.linspace(0.0, 1.0, 21)

METRICS = (
    "request_isl", "initial_context", "initial_context_primary", "new_tokens",
    "generation_length", "delay_ms", "delay_unscaled_ms", "turns", "prompt_blocks",
    "row_blocks", "latency_s", "session_minutes", "prefix_tokens", "unique_tokens",
    "prefix_ratio", "hit_rate", "final_utilization",
)


class Collector:
    """Streams chunks into sketches, end-reason counts, reuse figures and a session sample."""

    def __init__(self, params: GenerationParams | None, block_size: int) -> None:
        self.params = params
        self.block_size = block_size
        self.latency = params.latency if params is not None else Latency()  # the one latency model
        self.sketch = {name: Sketch() for name in METRICS}
        self.end_reasons: dict[EndReason, int] = dict.fromkeys(EndReason, 0)
        self.sessions = 0
        self.primaries = 0
        self.rows = 0
        self.reuse = ReuseAnalysis(block_size)
        self.heatmap = np.zeros((RATE_EDGES.size - 1, ISL_EDGES.size - 1), dtype=np.int64)
        self.sample: dict[str, list[tuple[int, int, dict]]] = {}  # (id hash, session number, record)
        self._labelled: tuple[int, list[dict]] | None = None
        # Primary sessions' starts in file order: first, last, and the gaps' count, sum, sum of squares.
        self.arrival_first: float | None = None
        self.arrival_last: float | None = None
        self.arrival_gaps = np.zeros(3)
        self.timeline = Timeline()  # primary sessions started per time bin
        self.classes = ClassSplit(params) if params is not None and params.classes else None
        # requests, compaction, subagents: only for a spec that has them (quality.json ``agent``)
        self.agent = agent.AgentFigures(params, self.latency) if agent.present(params) else None

    def _add_arrivals(self, starts: np.ndarray) -> None:
        if not starts.size:
            return
        if self.arrival_first is None:
            self.arrival_first = float(starts[0])
        gaps = np.diff(starts if self.arrival_last is None else np.concatenate([[self.arrival_last], starts]))
        self.arrival_gaps += (gaps.size, gaps.sum(), (gaps * gaps).sum())
        self.arrival_last = float(starts[-1])

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
        sk["generation_length"].add(out)
        sk["initial_context"].add(chunk.input_length[firsts])
        sk["initial_context_primary"].add(chunk.input_length[firsts][chunk.is_primary])
        sk["new_tokens"].add(chunk.input_length[later])
        sk["turns"].add(turns)
        sk["row_blocks"].add(np.diff(chunk.hash_offsets))
        delay = chunk.delay_ms[later]
        sk["delay_ms"].add(delay)
        session_class = ClassSplit.of(chunk) if self.classes is not None else None
        unscaled_rows = None
        if self.params is not None:
            previous = isl[np.flatnonzero(later) - 1]
            if session_class is None:
                limit = self.params.max_prompt_tokens
                unscaled = delay / targets.delay_scale(previous, limit)
                utilization = isl[lasts] / limit
            else:  # each row's own class's context limit
                limits = self.classes.row_limits(session_class, turns)
                unscaled = delay / targets.delay_scale(previous, limits[later])
                utilization = isl[lasts] / limits[lasts]
            sk["delay_unscaled_ms"].add(unscaled)
            if self.agent is not None:  # each later row's context scaling of its delay
                unscaled_rows = np.full(isl.size, np.nan)
                unscaled_rows[later] = targets.delay_scale(
                    previous, limit if session_class is None else limits[later])
            sk["final_utilization"].add(utilization)
            if self.classes is not None:
                every_row = np.full(isl.size, np.nan)
                every_row[later] = unscaled
                self.classes.add(chunk, session_class, {
                    "request_isl": isl, "generation_length": out, "delay_unscaled_ms": every_row,
                    "final_utilization": utilization})
        latency_ms = self.latency.request_ms(isl, out)
        sk["latency_s"].add(latency_ms / 1000.0)
        spent = latency_ms + np.where(later, np.nan_to_num(chunk.delay_ms), 0.0)
        sk["session_minutes"].add(np.add.reduceat(spent, firsts) / 60_000.0)
        starts = chunk.timestamp_ms[firsts][chunk.is_primary]
        self._add_arrivals(starts)
        self.timeline.add(starts)
        reason_counts = np.bincount(chunk.end_reasons.astype(np.int64) + 1)  # UNKNOWN (-1) first
        for code in np.flatnonzero(reason_counts).tolist():
            self.end_reasons[EndReason.of(code - 1)] += int(reason_counts[code])
        self.sessions += chunk.num_sessions
        self.primaries += int((~chunk.is_restart.astype(bool)).sum())
        self.rows += chunk.num_rows

        reuse = self.reuse.add(chunk)
        if self.agent is not None:
            self.agent.add(chunk, isl, unscaled_rows, reuse)
        if reuse is None:
            return
        analysed = reuse.rows  # the reuse sample may end inside this chunk
        isl = isl[:analysed]
        prompt = reuse.prompt_blocks
        hit = reuse.hit_blocks
        rate = np.where(prompt > 0, hit / np.maximum(prompt, 1), 0.0)
        prefix = cached_tokens(chunk, reuse)
        sk["prompt_blocks"].add(prompt)
        sk["hit_rate"].add(rate)
        if self.classes is not None:
            self.classes.add_reuse(session_class, turns, prompt, hit)
        sk["prefix_tokens"].add(prefix)
        sk["unique_tokens"].add(isl - prefix)
        sk["prefix_ratio"].add(np.where(isl > 0, prefix / np.maximum(isl, 1), 0.0))
        self.heatmap += _heat(rate, isl)
        sessions = int(np.searchsorted(chunk.row_offsets, analysed))
        self._sample(chunk, sessions, self.sessions - chunk.num_sessions, reuse, isl, rate)

    def _sample(self, chunk: TraceChunk, sessions: int, first_number: int, reuse, isl, rate) -> None:
        """Keep, per stratum, the sessions with the smallest id hashes (deterministic, unbiased)."""
        digest = id_hashes(chunk.session_ids[:sessions])
        number = first_number + np.arange(sessions, dtype=np.int64)
        stratum = (chunk.end_reasons[:sessions].astype(np.int64) + 1) * 2 + chunk.is_restart[:sessions]
        for code in np.flatnonzero(np.bincount(stratum)).tolist():
            name = EndReason.name_of(code // 2 - 1) + (" (continuation)" if code % 2 else "")
            kept = self.sample.setdefault(name, [])
            members = np.flatnonzero(stratum == code)
            if len(kept) >= PER_REASON_SAMPLE:  # only sessions below the current k-th hash compete
                members = members[digest[members] <= kept[-1][0]]
            order = np.lexsort((number[members], digest[members]))[:PER_REASON_SAMPLE]
            for index in members[order].tolist():
                record = _session_record(chunk, index, reuse, isl, rate)
                kept.append((int(digest[index]), int(number[index]), record))
            kept.sort(key=lambda item: item[:2])
            del kept[PER_REASON_SAMPLE:]

    def sample_sessions(self) -> list[dict]:
        """The kept sessions in a stable order (by hash), their blocks labelled from the whole sample."""
        if self._labelled is None or self._labelled[0] != self.sessions:
            everything = sorted((item for kept in self.sample.values() for item in kept), key=lambda item: item[:2])
            self._labelled = (self.sessions, _labelled([record for _, _, record in everything], self.reuse))
        return self._labelled[1]


def id_hashes(session_ids: list[str]) -> np.ndarray:
    """A 64-bit FNV-1a hash of each id's code points, column by column (no loop over sessions)."""
    if not session_ids:
        return np.zeros(0, dtype=np.uint64)
    text = np.array(session_ids, dtype=str)
    points = text.view(np.uint32).reshape(len(session_ids), -1).astype(np.uint64)
    digest = np.full(len(session_ids), 0xCBF29CE484222325, dtype=np.uint64)
    for column in points.T:
        digest = (digest ^ column) * np.uint64(0x100000001B3)
    # A final mix so ids that differ only in their last characters spread over the whole range.
    digest ^= digest >> np.uint64(33)
    digest *= np.uint64(0xFF51AFD7ED558CCD)
    digest ^= digest >> np.uint64(33)
    return digest


def cached_tokens(chunk: TraceChunk, reuse) -> np.ndarray:
    """Each analysed request's cached prefix in tokens with an unbounded cache.

    The tokens its hit blocks hold in their rows (a partly full last block counts what it
    holds), plus the outputs of the session's earlier requests: the server produced them,
    so they are cached, and they sit inside the prefix before this request's own input.
    Never more than the request's prompt.
    """
    rows = reuse.rows
    outputs = chunk.output_length[:rows].astype(np.int64)
    before = np.cumsum(outputs) - outputs
    turns = np.diff(chunk.row_offsets[: np.searchsorted(chunk.row_offsets, rows) + 1])
    earlier_outputs = before - np.repeat(before[chunk.row_offsets[: turns.size]], turns)
    return (reuse.hit_tokens(chunk.row_offsets) + earlier_outputs).astype(np.float64)


def _heat(rate: np.ndarray, isl: np.ndarray) -> np.ndarray:
    """Requests per (hit-rate bin, log input-length bin): both bin sets are uniform, so no search."""
    rate_bins = RATE_EDGES.size - 1
    isl_bins = ISL_EDGES.size - 1
    rate_index = np.clip((rate * rate_bins).astype(np.int64), 0, rate_bins - 1)
    logs = np.log10(np.clip(isl, ISL_EDGES[0], ISL_EDGES[-1]))
    low, high = np.log10(ISL_EDGES[0]), np.log10(ISL_EDGES[-1])
    isl_index = np.clip(((logs - low) / (high - low) * isl_bins).astype(np.int64), 0, isl_bins - 1)
    cells = np.bincount(rate_index * isl_bins + isl_index, minlength=rate_bins * isl_bins)
    return cells.reshape(rate_bins, isl_bins)


def _session_record(chunk, index, reuse, isl, rate) -> dict:
    first, last = int(chunk.row_offsets[index]), int(chunk.row_offsets[index + 1])
    lo, hi = int(reuse.entry_start[first]), int(reuse.entry_start[last])
    columns = zip(chunk.input_length[first:last].tolist(), chunk.output_length[first:last].tolist(),
                  isl[first:last].astype(np.int64).tolist(), reuse.prompt_blocks[first:last].tolist(),
                  np.round(rate[first:last], 4).tolist(), strict=True)
    keys = ("input_length", "output_length", "request_isl", "prompt_blocks", "hit_rate")
    return {
        "session_id": chunk.session_ids[index],
        "end_reason": EndReason.name_of(chunk.end_reasons[index]),
        "is_restart": bool(chunk.is_restart[index]),
        "group_id": int(chunk.group_ids[index]),
        "turns": [dict(zip(keys, values, strict=True)) for values in columns],
        # Entering blocks stay raw until the end: their layers depend on sessions still to come.
        "_entries": (reuse.entry_id[lo:hi].copy(), reuse.entry_code[lo:hi].copy(),
                     reuse.entry_start[first : last + 1] - lo),
    }


def _labelled(records: list[dict], reuse: ReuseAnalysis) -> list[dict]:
    """Label every sampled block at once, then run-length encode (layer, status) within each turn."""
    if not records:
        return []
    ids = np.concatenate([record["_entries"][0] for record in records])
    codes = np.concatenate([record["_entries"][1] for record in records])
    turn_sizes = np.concatenate([np.diff(record["_entries"][2]) for record in records])
    turn_number = np.concatenate([np.arange(len(record["turns"])) for record in records])
    late = np.repeat(turn_number > 0, turn_sizes)
    layers, statuses = reuse.label(ids, codes, late)
    code = layers.astype(np.int64) * 4 + statuses
    turn_start = np.concatenate([[0], np.cumsum(turn_sizes)])
    run_start = np.zeros(ids.size, dtype=bool)
    run_start[turn_start[:-1][turn_sizes > 0]] = True
    run_start[1:] |= code[1:] != code[:-1]
    starts = np.flatnonzero(run_start)
    lengths = np.diff(np.append(starts, ids.size)).tolist()
    run_turn = (np.searchsorted(turn_start, starts, side="right") - 1).tolist()
    names = [[LAYERS[c // 4], STATUS[c % 4]] for c in code[starts].tolist()]
    entering: list[list] = [[] for _ in range(turn_sizes.size)]
    for turn, name, length in zip(run_turn, names, lengths, strict=True):
        entering[turn].append([*name, length])
    out, turn = [], 0
    for record in records:
        turns = []
        for details in record["turns"]:
            turns.append({**details, "entering": entering[turn]})
            turn += 1
        out.append({**{k: v for k, v in record.items() if k != "_entries"}, "turns": turns})
    return out
