"""Every figure ``tracedsl compare`` weighs, of one trace, in one streaming pass and bounded memory.

The words are issue #14's (docs/compare.md states each definition):

- **input** of a row: ``TraceChunk.request_input_length`` (a one-row session's own input);
- **new tokens**: ``input_length`` of rows after turn 0; of a chained foreign row, the prompt's
  growth over the row it extends minus that row's output, clipped at 0;
- **output**: every row's ``output_length``;
- **delay**: ``delay_ms`` of rows after turn 0; where a row has no delay but it and the row before
  it carry timestamps (a chained foreign row), the gap between the two timestamps;
- **session**: a ``session_id``, or a hash-id prefix chain (:mod:`tracedsl.analysis.chains`) for
  rows without one; its **calls** (rows), **requests** (request-opening calls, where the trace
  says which), **duration** (last row's timestamp minus the first's, or, where rows carry delays
  and not timestamps, the delays plus the latency model's estimate of every call but the last);
- **inter-arrival**: gaps between consecutive starts of primary (not continuation or subagent)
  sessions, starts sorted;
- **logical session**: a session with its restart and compaction continuations
  (sessions.jsonl's ``logical_session_id``, else its parent links);
- cache figures: :class:`~tracedsl.reports.reuse.ReuseAnalysis` fed the chunks in file order.

Each distribution keeps every value up to :data:`SAMPLE_CAP`; past it, a deterministic uniform
thinning (every k-th value in file order, k doubling each time the sample fills), so KS,
Wasserstein and percentiles are then computed on that sample. Counts and means stay exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from tracedsl.analysis.chains import chain_sessions
from tracedsl.analysis.load import AnalysisInput
from tracedsl.ir import Latency
from tracedsl.output.sessions import read_index
from tracedsl.reports.reuse import ReuseAnalysis
from tracedsl.trace import EndReason, TraceChunk

SAMPLE_CAP = 1 << 20  # values kept per distribution before thinning (8 MB of float64 each)
STARTS_CAP = 1 << 24  # session starts kept for the inter-arrival gaps (128 MB at most)
DISTRIBUTIONS = ("input", "new_tokens", "output", "delay_ms", "calls", "requests", "duration_s",
                 "interarrival_s", "logical_calls")
CALL_KINDS = ("request_opening", "tool_result")  # calls after turn 0, by extras["opens_request"]
_SPLIT_NAMES = {EndReason.RESTART_SPLIT.reference_name, EndReason.COMPACTED.reference_name}


class Sample:
    """A distribution's exact count, sum, min and max, and its values up to ``cap`` (then every
    ``stride``-th value in arrival order, the stride doubling as the sample fills)."""

    def __init__(self, cap: int = SAMPLE_CAP) -> None:
        self.cap = cap
        self.count = 0
        self.total = 0.0
        self.min = np.inf
        self.max = -np.inf
        self.stride = 1
        self._parts: list[np.ndarray] = []
        self._kept = 0

    def add(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float64)
        if values.size == 0:
            return
        self.total += float(values.sum())
        self.min = min(self.min, float(values.min()))
        self.max = max(self.max, float(values.max()))
        offset = (-self.count) % self.stride  # the first value whose arrival index the stride divides
        self.count += values.size
        kept = values[offset :: self.stride]
        self._parts.append(kept.copy() if kept.base is not None else kept)
        self._kept += kept.size
        while self._kept > self.cap:
            whole = self.values()[::2]  # kept indices 0, s, 2s, ... -> 0, 2s, 4s, ...
            self._parts, self._kept, self.stride = [whole], whole.size, self.stride * 2

    def values(self) -> np.ndarray:
        """The kept values, in arrival order."""
        if len(self._parts) != 1:
            self._parts = [np.concatenate(self._parts) if self._parts else np.zeros(0)]
        return self._parts[0]

    @property
    def thinned(self) -> bool:
        return self.stride > 1

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    def quantile(self, q: float) -> float | None:
        values = self.values()
        return float(np.quantile(values, q)) if values.size else None

    def summary(self) -> dict:
        return {"count": self.count, "mean": self.mean, "min": None if not self.count else self.min,
                "max": None if not self.count else self.max, "p50": self.quantile(0.5),
                "p90": self.quantile(0.9), "p99": self.quantile(0.99), "sample": self.values().size,
                "stride": self.stride}


@dataclass
class TraceProfile:
    """Every figure of one trace that compare weighs: distributions as samples, cache figures."""

    name: str
    dataset: str
    format: str
    block_size: int
    block_size_from: str
    sessions_from: str
    rows: int = 0
    sessions: int = 0
    samples: dict[str, Sample] = field(default_factory=lambda: {name: Sample() for name in DISTRIBUTIONS})
    # why a figure is missing, per distribution or cache figure ("no timestamps", ...)
    missing: dict[str, str] = field(default_factory=dict)
    # how a figure was obtained where a trace has a choice (duration from timestamps or delays)
    notes: dict[str, str] = field(default_factory=dict)
    has_continuations: bool = False
    reuse: dict | None = None  # ReuseAnalysis.summary()
    kind_blocks: dict[str, list[int]] = field(default_factory=dict)  # kind -> [calls, prompt, hit]

    @property
    def unbounded_hit_rate(self) -> float | None:
        return None if not self.reuse or not self.reuse["prompt_blocks"] else self.reuse["prefix_hit_rate_unbounded"]

    def lru_curve(self) -> tuple[np.ndarray, np.ndarray]:
        """The LRU hit rate by capacity in tokens."""
        if not self.reuse:
            return np.zeros(0), np.zeros(0)
        entries = self.reuse["lru_hit_rate"]
        return (np.array([e["capacity_tokens"] for e in entries], dtype=np.float64),
                np.array([e["hit_rate"] for e in entries], dtype=np.float64))

    def kind_hit_rate(self, kind: str) -> float | None:
        calls, prompt, hit = self.kind_blocks.get(kind, (0, 0, 0))
        return hit / prompt if calls and prompt else None

    def to_json(self) -> dict:
        return {
            "name": self.name, "dataset": self.dataset, "format": self.format,
            "block_size": self.block_size, "block_size_from": self.block_size_from,
            "sessions_from": self.sessions_from, "rows": self.rows, "sessions": self.sessions,
            "distributions": {name: sample.summary() for name, sample in self.samples.items()},
            "missing": dict(self.missing), "notes": dict(self.notes),
            "prefix_hit_rate_unbounded": self.unbounded_hit_rate,
            "lru_hit_rate": None if not self.reuse else self.reuse["lru_hit_rate"],
            "reuse_sample": None if not self.reuse else self.reuse["sample"],
            "hit_rate_by_call_kind": {kind: {"calls": v[0], "prompt_blocks": v[1], "hit_rate": self.kind_hit_rate(kind)}
                                      for kind, v in self.kind_blocks.items()},
        }


def profile(trace: AnalysisInput) -> TraceProfile:
    """The trace's figures, from one pass over its chunks (plus its sessions.jsonl, when it links
    continuations); PipelineError from the reader on a bad row."""
    out = TraceProfile(trace.name, str(trace.dataset), trace.format, trace.block_size,
                       trace.block_size_from, trace.sessions_from)
    latency = trace.params.latency if trace.params is not None else Latency()
    state = _State(out, ReuseAnalysis(trace.block_size), latency)
    if trace.chained:
        chains = chain_sessions(state.teed(trace.chunks()))
        state.finish_chained(chains)
    else:
        for chunk in trace.chunks():
            state.add(chunk)
        state.finish()
        index = trace.sessions_index()
        if index is not None and state.continuations:  # else every logical session is a session
            _logical_sessions(out, index)
    if not out.has_continuations:
        out.samples["logical_calls"] = out.samples["calls"]
    state.finish_reuse()
    return out


class _State:
    """The pass's running state: the profile's samples, the reuse analysis, what it has seen."""

    def __init__(self, out: TraceProfile, reuse: ReuseAnalysis, latency: Latency) -> None:
        self.out = out
        self.reuse = reuse
        self.latency = latency
        self.starts: list[np.ndarray] = []
        self.starts_kept = 0
        self.seen_opens = False
        self.continuations = False  # a restart's Session B or a compaction continuation seen
        self.duration_timestamps = 0  # sessions whose duration came from timestamps
        self.duration_modelled = 0  # ... from delays and the latency model
        self.delay_rows = 0
        self.late_rows = 0
        self.kind = np.zeros((len(CALL_KINDS), 3), dtype=np.int64)
        self.columns: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # chained: per-row columns

    # -------------------------------------------------------------- session_id traces
    def add(self, chunk: TraceChunk) -> None:
        if chunk.num_sessions == 0:
            return
        samples = self.out.samples
        self.out.rows += chunk.num_rows
        self.out.sessions += chunk.num_sessions
        isl = chunk.request_input_length
        turn = chunk.turn_index
        late = turn > 0
        samples["input"].add(isl)
        samples["new_tokens"].add(chunk.input_length[late])
        samples["output"].add(chunk.output_length)
        delay = chunk.delay_ms
        stamps = chunk.timestamp_ms
        gap = np.full(chunk.num_rows, np.nan)
        gap[1:] = stamps[1:] - stamps[:-1]  # only used on rows after turn 0, whose previous row is theirs
        delay = np.where(np.isnan(delay), gap, delay)
        self.late_rows += int(late.sum())
        finite = late & ~np.isnan(delay)
        self.delay_rows += int(finite.sum())
        samples["delay_ms"].add(delay[finite])
        turns = chunk.turns_per_session
        samples["calls"].add(turns)
        link = chunk.extras.get("link")
        self.continuations = self.continuations or bool(np.asarray(chunk.is_restart, dtype=bool).any()) or (
            link is not None and bool(np.isin(np.asarray(link), (1, 2)).any()))
        firsts = chunk.row_offsets[:-1]
        lasts = chunk.row_offsets[1:] - 1
        opens = chunk.extras.get("opens_request")
        if opens is not None:
            opens = np.asarray(opens, dtype=bool)
            self.seen_opens = True
            samples["requests"].add(np.add.reduceat(opens.astype(np.int64), firsts))
        samples["duration_s"].add(self._durations(chunk, isl, delay, late, firsts, lasts) / 1000.0)
        start = stamps[firsts][chunk.is_primary]
        self._add_starts(start[~np.isnan(start)])
        found = self.reuse.add(chunk)
        if found is not None and opens is not None:
            rows = found.rows
            self._add_kinds(opens[:rows], late[:rows], found.prompt_blocks, found.hit_blocks)

    def _durations(self, chunk, isl, delay, late, firsts, lasts) -> np.ndarray:
        stamps = chunk.timestamp_ms
        stamped = ~np.isnan(stamps[firsts]) & ~np.isnan(stamps[lasts])
        lat = self.latency.request_ms(isl.astype(np.float64), chunk.output_length.astype(np.float64))
        step = np.zeros(chunk.num_rows)
        step[1:] = lat[:-1]
        step = np.where(late, step + np.nan_to_num(delay), 0.0)
        modelled = np.add.reduceat(step, firsts)
        several = chunk.turns_per_session > 1  # a one-call session lasts 0 either way
        self.duration_timestamps += int((stamped & several).sum())
        self.duration_modelled += int((~stamped & several).sum())
        return np.where(stamped, stamps[lasts] - stamps[firsts], modelled)

    def _add_starts(self, starts: np.ndarray) -> None:
        room = STARTS_CAP - self.starts_kept
        if room > 0 and starts.size:
            self.starts.append(starts[:room])
            self.starts_kept += min(room, starts.size)

    def _add_kinds(self, opens, late, prompt, hit) -> None:
        for k, rows in enumerate((late & opens, late & ~opens)):
            self.kind[k] += (int(rows.sum()), int(prompt[rows].sum()), int(hit[rows].sum()))

    def finish(self) -> None:
        out = self.out
        if not self.seen_opens:
            out.missing["requests"] = "the trace does not say which calls open a request"
            out.missing["kind"] = out.missing["requests"]
        else:
            out.kind_blocks = {kind: self.kind[k].tolist() for k, kind in enumerate(CALL_KINDS) if self.kind[k, 0]}
        if self.late_rows and not self.delay_rows:
            out.missing["delay_ms"] = "no row after turn 0 carries a delay or timestamps"
        if self.duration_modelled and not self.duration_timestamps:
            out.notes["duration_s"] = "the delays plus the latency model's estimate of each call but the last"
        elif self.duration_modelled:
            out.notes["duration_s"] = (f"timestamps for {self.duration_timestamps:,} sessions, delays plus the "
                                       f"latency model's estimate for {self.duration_modelled:,}")
        else:
            out.notes["duration_s"] = "the last row's timestamp minus the first's"
        self._finish_starts()

    def _finish_starts(self) -> None:
        if not self.starts:
            self.out.missing["interarrival_s"] = "no session start carries a timestamp"
            return
        starts = np.sort(np.concatenate(self.starts))
        self.out.samples["interarrival_s"].add(np.diff(starts) / 1000.0)
        if self.starts_kept >= STARTS_CAP:
            self.out.notes["interarrival_s"] = f"the first {STARTS_CAP:,} session starts in file order"

    def finish_reuse(self) -> None:
        summary = self.reuse.summary()
        self.out.reuse = summary if summary["prompt_blocks"] else None
        if self.out.reuse is None:
            self.out.missing["reuse"] = "no row carries hash ids"

    # -------------------------------------------------------------- chained (id-less) traces
    def teed(self, chunks: Iterable[TraceChunk]) -> Iterator[TraceChunk]:
        """The chunks, passed on to chain_sessions once their row figures and reuse are taken."""
        for chunk in chunks:
            if chunk.num_rows == 0:
                continue
            self.out.rows += chunk.num_rows
            isl = chunk.request_input_length
            self.out.samples["input"].add(isl)
            self.out.samples["output"].add(chunk.output_length)
            self.columns.append((chunk.input_length.astype(np.int64), chunk.output_length.astype(np.int64),
                                 chunk.timestamp_ms.astype(np.float64)))
            self.reuse.add(chunk)
            yield chunk

    def finish_chained(self, chains) -> None:
        out = self.out
        out.notes["sessions"] = "hash-id prefix chains (rows carry no session_id)"
        out.missing["requests"] = "the trace does not say which calls open a request"
        out.missing["kind"] = out.missing["requests"]
        if not self.columns:
            return
        inputs, outputs, stamps = (np.concatenate(part) for part in zip(*self.columns, strict=True))
        parent = chains.parent
        linked = np.flatnonzero(parent >= 0)
        up = parent[linked]
        out.samples["new_tokens"].add(np.maximum(inputs[linked] - inputs[up] - outputs[up], 0))
        gap = stamps[linked] - stamps[up]
        gap = gap[~np.isnan(gap)]
        out.samples["delay_ms"].add(gap)
        if linked.size and not gap.size:
            out.missing["delay_ms"] = "the rows carry no timestamps"
        sessions = chains.num_sessions
        out.sessions = sessions
        out.samples["calls"].add(chains.turns_per_session())
        rows = np.arange(parent.size, dtype=np.int64)
        first = np.full(sessions, parent.size, dtype=np.int64)
        last = np.full(sessions, -1, dtype=np.int64)
        np.minimum.at(first, chains.session, rows)
        np.maximum.at(last, chains.session, rows)
        duration = stamps[last] - stamps[first]
        if np.isnan(duration).all():
            out.missing["duration_s"] = "the rows carry no timestamps"
        else:
            out.samples["duration_s"].add(duration[~np.isnan(duration)] / 1000.0)
            out.notes["duration_s"] = "the chain's last row's timestamp minus its first's"
        start = stamps[first]
        self._add_starts(start[~np.isnan(start)])
        self._finish_starts()


def _logical_sessions(out: TraceProfile, index) -> None:
    """Calls per logical session, from sessions.jsonl: a session and its restart and compaction
    continuations (``logical_session_id`` when written, else the parent links). A logical session
    is complete once a part of it ends without a split, so only open ones are held."""
    open_calls: dict[str, int] = {}
    logical_of: dict[str, str] = {}  # a split session awaiting its continuation -> its logical id
    sample = Sample()
    done: list[int] = []
    continued = False
    for _, row in read_index(index):
        if not isinstance(row, dict) or type(row.get("session_id")) is not str:
            continue
        session = row["session_id"]
        link, parent = row.get("link"), row.get("parent_session_id")
        logical = row.get("logical_session_id")
        if type(logical) is not str:
            logical = logical_of.pop(parent, session) if link in ("restart", "compaction") else session
        else:
            logical_of.pop(parent, None)
        if link in ("restart", "compaction"):
            continued = True
        turns = row.get("turns") if type(row.get("turns")) is int else 0
        open_calls[logical] = open_calls.get(logical, 0) + turns
        if row.get("end_reason") in _SPLIT_NAMES:
            logical_of[session] = logical
        else:
            done.append(open_calls.pop(logical))
            if len(done) >= 1 << 16:
                sample.add(np.array(done, dtype=np.float64))
                done.clear()
    done.extend(open_calls.values())
    sample.add(np.array(done, dtype=np.float64))
    if continued:
        out.has_continuations = True
        out.samples["logical_calls"] = sample
        out.notes["logical_calls"] = "sessions.jsonl: each session with its restart and compaction continuations"
