"""What a trace shows, measured once: its figures, its sessions' shared layers and its quantities.

:func:`observe` reads an :class:`~tracedsl.analysis.load.AnalysisInput` (twice when its sessions
come from hash-id chains) into an :class:`Observed`: the per-session and per-row values the laws
are fitted to, and the figures a fitted run must reproduce (:class:`Figures`, measured by
:func:`figures` for the input and for every calibration run alike). :func:`shared_layers` finds
the global prefix and the group prefixes in the sessions' first rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from tracedsl.analysis.chains import chain_sessions
from tracedsl.analysis.load import AnalysisInput
from tracedsl.engine.columns import LINK_COMPACTION, LINK_SUBAGENT
from tracedsl.reports.reuse import ReuseAnalysis
from tracedsl.trace import EndReason, TraceChunk

MAX_SESSIONS = 200_000  # sessions whose first-row ids are kept for the layer search
GLOBAL_SHARE = 0.5  # a leading block held by at least this share of first rows is global


@dataclass(frozen=True)
class Figures:
    """The must-hold figures of one trace."""

    sessions: int  # primary sessions (chains for id-less rows)
    rows: int
    hit_rate: float  # unbounded prefix hit rate (ReuseAnalysis)
    mean_input: float  # mean request input, as replayed
    mean_output: float
    arrival_rate: float | None  # sessions started per second, None without timestamps

    def table(self) -> dict[str, float | None]:
        return {"hit rate": self.hit_rate, "mean input": self.mean_input,
                "mean output": self.mean_output, "arrival rate /s": self.arrival_rate}


@dataclass
class Observed:
    """The values a fit is made of, all in file order."""

    figures: Figures
    block_size: int
    first_ids: list[np.ndarray]  # turn-0 hash ids of the first MAX_SESSIONS primary sessions
    first_input: np.ndarray  # turn-0 prompt of each primary session
    turns: np.ndarray  # rows of each primary session (its logical session's, continuations apart)
    new_tokens: np.ndarray  # rows after turn 0
    outputs: np.ndarray
    delays_ms: np.ndarray  # rows after turn 0 (NaN where a row carries none)
    history: np.ndarray  # rows after turn 0: the prompt before the row's own input (the delay's context)
    opens_request: np.ndarray | None  # rows after turn 0: the row opens a request (None: unknown)
    calls: np.ndarray | None  # calls per request, when requests are known
    prompts: np.ndarray  # every row's request input
    reset_at: np.ndarray  # per row: the row is the last of a session that ended by a reset
    end_counts: dict[str, int] = field(default_factory=dict)  # session end reasons, when recorded
    restart_turns: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    starts_ms: np.ndarray = field(default_factory=lambda: np.zeros(0))
    compactions: Compactions | None = None
    # Where each value comes from, for session classes: file session numbers in file order.
    row_session: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # per row
    later: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))  # per row: turn > 0
    primary_session: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # per primary
    call_session: np.ndarray | None = None  # per request, with calls
    subagents: Subagents | None = None  # when sessions.jsonl says which sessions are subagents
    answers: np.ndarray | None = None  # rows after turn 0: the row takes subagents' results

    @property
    def num_file_sessions(self) -> int:
        return int(self.row_session.max()) + 1 if self.row_session.size else 0


@dataclass
class Subagents:
    """The subagent sessions a run's sessions.jsonl names, and the calls that spawned them."""

    turns: np.ndarray  # rows of each subagent session
    first_ids: list[np.ndarray]  # turn-0 hash ids of the first MAX_SESSIONS of them
    fanouts: np.ndarray  # per spawning call with a next call: how many subagents it spawned
    returns: np.ndarray  # ... and the new tokens of that next call (the sum of their results)
    spawning: int  # the calls that spawned subagents
    calls: int  # the calls that could spawn: after turn 0, of a session that is not a subagent, and
    # followed by a tool call of the same session (not a request's opening, not a summarization call)


@dataclass
class Compactions:
    """The summarization calls of sessions that ended compacted."""

    history: np.ndarray  # the prompt each compacted (its history: inputs and outputs so far)
    instruction: np.ndarray  # the summarization call's own input
    summary: np.ndarray  # its output
    most: int  # the most compactions one logical session made


def figures(chunks: Iterable[TraceChunk], block_size: int, *, sessions: int | None = None,
            starts_ms: np.ndarray | None = None) -> Figures:
    """The must-hold figures of a trace given as chunks (its sessions as written).

    ``sessions`` and ``starts_ms`` override what the chunks say (chains of id-less rows).
    """
    reuse = ReuseAnalysis(block_size)
    rows = primaries = 0
    inputs = outputs = 0.0
    starts: list[np.ndarray] = []
    for chunk in chunks:
        reuse.add(chunk)
        rows += chunk.num_rows
        inputs += float(chunk.request_input_length.sum())
        outputs += float(chunk.output_length.sum())
        primary = chunk.is_primary
        primaries += int(primary.sum())
        starts.append(chunk.timestamp_ms[chunk.row_offsets[:-1][primary]])
    if starts_ms is None:
        starts_ms = np.concatenate(starts) if starts else np.zeros(0)
    hit = float(reuse.summary()["prefix_hit_rate_unbounded"] or 0.0)
    return Figures(sessions if sessions is not None else primaries, rows, hit,
                   inputs / rows if rows else 0.0, outputs / rows if rows else 0.0, arrival_rate(starts_ms))


def arrival_rate(starts_ms: np.ndarray) -> float | None:
    """Sessions started per second over the span of their starts; None when they do not spread."""
    starts = np.sort(starts_ms[np.isfinite(starts_ms)])
    if starts.size < 2 or starts[-1] <= starts[0]:
        return None
    return float((starts.size - 1) / ((starts[-1] - starts[0]) / 1000.0))


def observe(trace: AnalysisInput) -> Observed:
    """Measure ``trace``: chains first when its rows carry no session ids."""
    return _observe_chained(trace) if trace.chained else _observe_sessions(trace)


def _observe_sessions(trace: AnalysisInput) -> Observed:
    first_ids: list[np.ndarray] = []
    parts: dict[str, list[np.ndarray]] = {key: [] for key in (
        "first_input", "turns", "new_tokens", "outputs", "delays", "before", "opens", "prompts", "reset_at",
        "restart_turns", "starts", "calls", "history", "instruction", "summary", "row_session", "later",
        "primary_session", "call_session", "answers")}
    ends: dict[str, int] = {}
    primary_ids: list[tuple[str, object]] = []  # each primary's key in the continuations' tallies
    chunk_continued: dict[tuple[str, object], int] = {}
    known_opens = True
    sessions = 0
    spawns = _Spawns()
    for chunk in trace.chunks():
        turn = chunk.turn_index
        firsts = chunk.row_offsets[:-1]
        primary = chunk.is_primary
        later = turn > 0
        parts["answers"].append(spawns.add(chunk)[later])
        numbers = sessions + np.repeat(np.arange(chunk.num_sessions, dtype=np.int64), chunk.turns_per_session)
        parts["row_session"].append(numbers)
        parts["later"].append(later)
        parts["primary_session"].append(sessions + np.flatnonzero(primary))
        sessions += chunk.num_sessions
        parts["first_input"].append(chunk.input_length[firsts[primary]])
        parts["turns"].append(chunk.turns_per_session[primary])
        link, root = chunk.extras.get("link"), chunk.extras.get("primary_index")
        if link is not None and root is not None:  # an import's chunks say which sessions continue which
            root = np.asarray(root, dtype=np.int64)
            primary_ids.extend(("root", r) for r in root[primary].tolist())
            carried = np.asarray(link) == LINK_COMPACTION
            for r, n in zip(root[carried].tolist(), chunk.turns_per_session[carried].tolist(), strict=True):
                chunk_continued[("root", r)] = chunk_continued.get(("root", r), 0) + n
        else:
            primary_ids.extend(("id", chunk.session_ids[int(s)]) for s in np.flatnonzero(primary))
        parts["new_tokens"].append(chunk.input_length[later])
        parts["outputs"].append(chunk.output_length)
        parts["delays"].append(chunk.delay_ms[later])
        parts["before"].append((chunk.request_input_length - chunk.input_length)[later])
        opens = chunk.extras.get("opens_request")
        if opens is None:
            known_opens = False
        else:
            opens = np.asarray(opens, dtype=bool)
            parts["opens"].append(opens[later])
            # calls per request: the rows from one opening to the next (turn 0 opens one)
            at = np.flatnonzero(opens | (turn == 0))
            parts["calls"].append(np.diff(np.append(at, chunk.num_rows)))
            parts["call_session"].append(numbers[at])
        parts["prompts"].append(chunk.request_input_length)
        last = chunk.row_offsets[1:] - 1
        reset = np.zeros(chunk.num_rows, dtype=bool)
        reset[last[chunk.end_reasons == int(EndReason.PROBABILISTIC_RESET)]] = True
        parts["reset_at"].append(reset)
        compacted = last[chunk.end_reasons == int(EndReason.COMPACTED)]
        prompts = chunk.request_input_length
        parts["history"].append(prompts[compacted] - chunk.input_length[compacted])
        parts["instruction"].append(chunk.input_length[compacted])
        parts["summary"].append(chunk.output_length[compacted])
        split = chunk.end_reasons == int(EndReason.RESTART_SPLIT)
        parts["restart_turns"].append(chunk.turns_per_session[split])
        parts["starts"].append(chunk.timestamp_ms[firsts[primary]])
        for code, count in zip(*np.unique(chunk.end_reasons, return_counts=True), strict=True):
            name = EndReason.name_of(int(code))
            ends[name] = ends.get(name, 0) + int(count)
        for s in np.flatnonzero(primary)[: max(0, MAX_SESSIONS - len(first_ids))]:
            first_ids.append(chunk.row_hash_ids(int(firsts[s])).astype(np.int64))
    with_opens, with_calls = known_opens and bool(parts["opens"]), known_opens and bool(parts["calls"])
    # each column joined as its pieces are let go, so the trace's rows are held once, not twice
    joined = {key: np.concatenate(parts.pop(key)) if parts[key] else np.zeros(0) for key in list(parts)}
    starts = joined["starts"]
    found = figures(trace.chunks(), trace.block_size, starts_ms=starts)
    if "unknown" in ends:
        ends = {}
    compactions = None
    if joined["history"].size:
        most, continued = _compaction_chains(trace)
        continued = {("id", key): n for key, n in continued.items()} | chunk_continued
        compactions = Compactions(joined["history"].astype(np.int64), joined["instruction"].astype(np.int64),
                                  joined["summary"].astype(np.int64), most)
        if continued:  # a turn target counts a logical session's rows, its continuations' too
            joined["turns"] = joined["turns"] + np.array([continued.get(s, 0) for s in primary_ids], dtype=np.int64)
    def column(key: str, dtype) -> np.ndarray:
        return joined[key].astype(dtype, copy=False)

    return Observed(
        figures=found, block_size=trace.block_size, first_ids=first_ids,
        first_input=column("first_input", np.int64), turns=column("turns", np.int64),
        new_tokens=column("new_tokens", np.int64), outputs=column("outputs", np.int64),
        delays_ms=column("delays", np.float64), history=column("before", np.int64),
        opens_request=column("opens", bool) if with_opens else None,
        calls=column("calls", np.int64) if with_calls else None,
        prompts=column("prompts", np.int64), reset_at=column("reset_at", bool),
        end_counts=ends, restart_turns=column("restart_turns", np.int64), starts_ms=starts,
        compactions=compactions, row_session=column("row_session", np.int64),
        later=column("later", bool), primary_session=column("primary_session", np.int64),
        call_session=column("call_session", np.int64) if with_calls else None, subagents=spawns.found(),
        answers=column("answers", bool) if spawns.seen else None)


def _could_spawn(chunk: TraceChunk) -> np.ndarray:
    """Per row: a call the engine lets spawn (engine/spawns.py): after turn 0, with a next call
    in its session that opens no request and is not a compacted session's summarization call."""
    turn, turns = chunk.turn_index, np.repeat(chunk.turns_per_session, chunk.turns_per_session)
    could = (turn > 0) & (turn + 1 < turns)
    opens = chunk.extras.get("opens_request")
    if opens is not None:
        could[:-1] &= ~np.asarray(opens, dtype=bool)[1:]
    compacted = chunk.end_reasons == int(EndReason.COMPACTED)
    if compacted.any():
        could[chunk.row_offsets[1:][compacted] - 2] = False  # (a session of one call has none)
    return could


class _Spawns:
    """The subagents of a trace's chunks (``link`` 3, with their ``spawned_at`` and
    ``parent_position`` from sessions.jsonl), gathered as the chunks go by."""

    def __init__(self) -> None:
        self.turns: list[np.ndarray] = []
        self.first_ids: list[np.ndarray] = []
        self.fanouts: list[np.ndarray] = []
        self.returns: list[np.ndarray] = []
        self.calls = 0
        self.spawning = 0
        self.seen = False

    def add(self, chunk: TraceChunk) -> np.ndarray:
        """Take the chunk's subagents; per row, whether it is a call that takes their results."""
        answers = np.zeros(chunk.num_rows, dtype=bool)
        link = chunk.extras.get("link")
        spawned, parent = chunk.extras.get("spawned_at"), chunk.extras.get("parent_position")
        if link is None or spawned is None or parent is None:
            self.calls += int(np.count_nonzero(_could_spawn(chunk)))
            return answers
        link, spawned, parent = np.asarray(link), np.asarray(spawned), np.asarray(parent)
        sub = link == LINK_SUBAGENT
        host = np.repeat(~sub, chunk.turns_per_session)
        self.calls += int(np.count_nonzero(host & _could_spawn(chunk)))
        if not sub.any():
            return answers
        self.seen = True
        self.turns.append(chunk.turns_per_session[sub])
        firsts = chunk.row_offsets[:-1]
        for s in np.flatnonzero(sub)[: max(0, MAX_SESSIONS - len(self.first_ids))]:
            self.first_ids.append(chunk.row_hash_ids(int(firsts[s])).astype(np.int64))
        # the spawning calls: a subagent's parent (not itself a subagent) and the call it came from
        placed = sub & (parent >= 0) & (spawned >= 0)
        placed[placed] &= ~sub[parent[placed]]
        if not placed.any():
            return answers
        events, fanouts = np.unique(np.stack([parent[placed], spawned[placed]], axis=1), axis=0, return_counts=True)
        hosts, at = events[:, 0], events[:, 1]
        self.spawning += int(hosts.size)
        answered = at + 1 < chunk.turns_per_session[hosts]  # the parent's next call carries the results
        self.fanouts.append(fanouts[answered])
        rows = firsts[hosts[answered]] + at[answered] + 1
        self.returns.append(chunk.input_length[rows])
        answers[rows] = True
        return answers

    def found(self) -> Subagents | None:
        if not self.seen:
            return None

        def joined(parts: list[np.ndarray]) -> np.ndarray:
            return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)

        return Subagents(joined(self.turns), self.first_ids, joined(self.fanouts), joined(self.returns),
                         self.spawning, self.calls)


def _compaction_chains(trace: AnalysisInput) -> tuple[int, dict[str, int]]:
    """From sessions.jsonl: the most compacted sessions of one logical session (1 without an
    index), and the rows of each logical session's compaction continuations, by its root."""
    index = trace.sessions_index()
    if index is None:
        return 1, {}
    from tracedsl.output.sessions import read_index

    counts: dict[str, int] = {}
    continued: dict[str, int] = {}
    for _, row in read_index(index):
        if not row:
            continue
        key = str(row.get("logical_session_id") or row.get("session_id"))
        if row.get("end_reason") == "compacted":
            counts[key] = counts.get(key, 0) + 1
        if row.get("link") == "compaction" and isinstance(row.get("turns"), int):
            continued[key] = continued.get(key, 0) + row["turns"]
    return max(counts.values(), default=1), continued


def _observe_chained(trace: AnalysisInput) -> Observed:
    chains = chain_sessions(trace.chunks())
    inputs, outputs, stamps, first_ids = [], [], [], []
    first = chains.turn == 0
    row = 0
    for chunk in trace.chunks():
        inputs.append(chunk.input_length.astype(np.int64))
        outputs.append(chunk.output_length.astype(np.int64))
        stamps.append(chunk.timestamp_ms.astype(np.float64))
        for r in range(chunk.num_rows):
            if first[row + r] and len(first_ids) < MAX_SESSIONS:
                first_ids.append(chunk.row_hash_ids(r).astype(np.int64))
        row += chunk.num_rows
    prompt = np.concatenate(inputs) if inputs else np.zeros(0, dtype=np.int64)
    output = np.concatenate(outputs) if outputs else np.zeros(0, dtype=np.int64)
    stamp = np.concatenate(stamps) if stamps else np.zeros(0)
    later = ~first
    parent = chains.parent[later]
    new_tokens = np.maximum(prompt[later] - prompt[parent] - output[parent], 0)
    gaps = stamp[later] - stamp[parent]
    starts = stamp[first]
    found = figures(trace.chunks(), trace.block_size, sessions=chains.num_sessions, starts_ms=starts)
    return Observed(
        figures=found, block_size=trace.block_size, first_ids=first_ids,
        first_input=prompt[first], turns=chains.turns_per_session().astype(np.int64),
        new_tokens=new_tokens, outputs=output, delays_ms=np.maximum(gaps, 0),
        history=prompt[parent] + output[parent],
        opens_request=None, calls=None, prompts=prompt, reset_at=np.zeros(prompt.size, dtype=bool),
        end_counts={}, starts_ms=starts, row_session=chains.session.astype(np.int64), later=later,
        primary_session=np.arange(chains.num_sessions, dtype=np.int64))


@dataclass(frozen=True)
class Layers:
    """The shared prefix layers the first rows show, in blocks."""

    global_blocks: int
    global_share: float  # share of first rows holding the whole global prefix
    group_sizes: np.ndarray  # sessions per group, largest first (one-session groups included)
    group_blocks: int  # the typical run of blocks a group's sessions share past the global prefix
    grouped_share: float  # share of first rows in a group of two or more


def shared_layers(first_ids: list[np.ndarray]) -> Layers:
    """The global prefix (leading blocks held by most first rows) and the group prefixes
    (runs past it that several first rows share, keyed by their first block)."""
    if not first_ids:
        return Layers(0, 0.0, np.zeros(0, dtype=np.int64), 0, 0.0)
    lengths = np.fromiter(map(len, first_ids), dtype=np.int64, count=len(first_ids))
    flat = np.concatenate(first_ids).astype(np.int64, copy=False)
    starts = np.cumsum(lengths) - lengths
    longest = int(lengths.max())
    holding = np.ones(len(first_ids), dtype=bool)
    global_blocks = 0
    for k in range(longest):
        # each first row's k-th id, -1 where it has fewer
        column = np.where(lengths > k, flat[np.minimum(starts + k, max(flat.size - 1, 0))], -1) \
            if flat.size else np.full(len(first_ids), -1, dtype=np.int64)
        values, counts = np.unique(column[holding & (column >= 0)], return_counts=True)
        if not values.size:
            break
        modal = values[np.argmax(counts)]
        keep = holding & (column == modal)
        if keep.sum() < GLOBAL_SHARE * len(first_ids):
            break
        holding, global_blocks = keep, k + 1
    share = float(holding.mean()) if global_blocks else 0.0
    sizes, runs, weights = _groups(flat, starts, lengths, global_blocks)
    group_blocks = int(round(_weighted_median(runs, weights))) if runs.size else 0
    grouped = float(sizes[sizes >= 2].sum() / len(first_ids)) if sizes.size else 0.0
    return Layers(global_blocks, share, sizes, group_blocks, grouped)


def _groups(flat: np.ndarray, starts: np.ndarray, lengths: np.ndarray,
            past: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The groups of first rows by their id just past the global prefix (``past`` blocks): every
    group's size, largest first; and for each group of two or more, in order of first appearance,
    the median run of blocks its later members share with its first (past the prefix), and its size."""
    members = np.flatnonzero(lengths > past)
    if not members.size:
        return np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0, dtype=np.int64)
    keys = flat[starts[members] + past]
    _, first, group, counts = np.unique(keys, return_index=True, return_inverse=True, return_counts=True)
    sizes = np.sort(counts)[::-1]
    head = members[first[group]]  # each member's group's first member
    later = members != head
    ours, theirs = starts[members] + past, starts[head] + past
    room = np.minimum(lengths[members], lengths[head]) - past
    shared = np.zeros(members.size, dtype=np.int64)
    alive = np.flatnonzero(later & (room > 0))
    offset = 0
    while alive.size:  # one block further along every pair still agreeing
        same = flat[ours[alive] + offset] == flat[theirs[alive] + offset]
        shared[alive[same]] += 1
        offset += 1
        alive = alive[same & (room[alive] > offset)]
    # each group's median over its later members
    order = np.lexsort((shared[later], group[later]))
    values, owners = shared[later][order], group[later][order]
    bounds = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1], True]) if owners.size else np.zeros(1, np.int64)
    lo, hi = bounds[:-1], bounds[1:]
    medians = (values[lo + (hi - lo - 1) // 2] + values[lo + (hi - lo) // 2]) / 2.0
    several = owners[lo] if owners.size else np.zeros(0, dtype=np.int64)
    appearance = np.argsort(first[several], kind="stable")
    return sizes, medians[appearance], counts[several][appearance]


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, cumulative[-1] / 2)])


def zipf_skew(sizes: np.ndarray) -> float:
    """The Zipf exponent whose weights 1/k^s over len(sizes) groups best explain the sessions
    per group (maximum likelihood, rank by size; golden-section search on [0, 4])."""
    if sizes.size < 2:
        return 0.0
    ranks = np.log(np.arange(1, sizes.size + 1, dtype=np.float64))
    counts = sizes.astype(np.float64)
    total = counts.sum()

    def loss(s: float) -> float:
        return s * float(counts @ ranks) + total * float(np.log(np.exp(-s * ranks).sum()))

    lo, hi = 0.0, 4.0
    ratio = (5 ** 0.5 - 1) / 2
    for _ in range(60):
        a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        if loss(a) < loss(b):
            hi = b
        else:
            lo = a
    return round((lo + hi) / 2, 2)
