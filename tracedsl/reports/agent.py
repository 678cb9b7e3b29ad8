"""Agent structure figures: requests and their calls, compactions, subagents, hit rate by call kind.

Read from a chunk's extras (docs/architecture.md): ``opens_request`` (per row), ``link`` (per
session: 0 primary, 1 restart, 2 compaction, 3 subagent), ``spawned_at`` and
``parent_position`` (per session: the spawning call's turn and the chunk position of the
session a subagent, or a subagent's compaction continuation, comes from; -1 elsewhere), and
the end reasons. ``tracedsl report`` of a run directory rebuilds the same extras from
sessions.jsonl (regenerate.py), so both give the same figures.

A subagent, its descendants and their compaction continuations form the block of sessions
right after the session that spawned them (its host): the figures of requests (think, tool
latency) are the hosts' calls, a block's calls are "subagent" calls.
"""

from __future__ import annotations

import numpy as np

from tracedsl.ir import GenerationParams, Latency
from tracedsl.limits import MAX_FANOUT, MAX_TURNS
from tracedsl.reports import targets
from tracedsl.reports.sketch import Sketch
from tracedsl.reports.targets import Draw, Expected
from tracedsl.trace import EndReason, TraceChunk

LINK_PRIMARY, LINK_RESTART, LINK_COMPACTION, LINK_SUBAGENT = 0, 1, 2, 3
LINK_NAMES = {LINK_PRIMARY: "primary", LINK_RESTART: "restart", LINK_COMPACTION: "compaction",
              LINK_SUBAGENT: "subagent"}
KINDS = ("first", "request_opening", "tool", "subagent")
KIND_LABELS = {"first": "first calls (turn 0)", "request_opening": "request-opening calls",
               "tool": "tool calls", "subagent": "subagent calls"}
# Idle gap before a call (its delay), ms: bin edges for the hit rate against the gap.
GAP_EDGES_MS = (0.0, 100.0, 300.0, 1e3, 3e3, 1e4, 3e4, 6e4, 3e5, 6e5, 1.8e6, 3.6e6, float("inf"))
SAMPLE_HOSTS = 4  # sample sessions for the time axis: the first hosts of the file with 2+ calls
SAMPLE_LANES = 12  # at most this many sessions (hosts and their subagents) drawn
SAMPLE_CALLS = 400  # calls drawn per session at most

SKETCHES = ("requests_per_session", "calls_per_request", "message_tokens", "think_ms", "tool_latency_ms",
            "tool_latency_unscaled_ms", "tool_new_tokens", "prompt_before", "prompt_after",
            "summary_tokens", "fanout", "calls_per_child", "subagent_wait_ms")


def present(params: GenerationParams | None) -> bool:
    """Whether a spec uses requests, compaction or subagents (else quality.json has no ``agent``)."""
    if params is None:
        return False
    return any(body.request is not None or body.compaction is not None or body.subagent is not None
               for _, _, body in params.bodies())


def _spawning_depths(params: GenerationParams) -> list[bool]:
    """Per nesting depth (0 the top-level body), whether that body has ``subagent``."""
    out, body = [], params
    while body is not None:
        out.append(body.subagent is not None)
        body = body.subagent.params if body.subagent is not None else None
    return out


class AgentFigures:
    """Streams chunks into the agent figures (bounded: sketches, counts, a few sample sessions)."""

    def __init__(self, params: GenerationParams, latency: Latency | None = None) -> None:
        self.params = params
        self.latency = latency or params.latency
        self.sketch = {name: Sketch() for name in SKETCHES}
        self.spawning = _spawning_depths(params)
        self.has_requests = any(body.request is not None for _, _, body in params.bodies())
        self.has_compaction = any(body.compaction is not None for _, _, body in params.bodies())
        self.has_subagents = params.subagent is not None
        self.logical = 0  # logical sessions: every session but compaction continuations
        self.compacting = 0  # logical sessions that compact (the first compaction of each)
        self.compactions = 0
        self.eligible = 0  # calls that may spawn (a tool call follows in the same session)
        self.spawns = 0  # spawns at those calls
        self.spawns_elsewhere = 0
        self.children = 0
        self.kind_prompt = np.zeros(len(KINDS), dtype=np.int64)
        self.kind_hit = np.zeros(len(KINDS), dtype=np.int64)
        self.kind_rows = np.zeros(len(KINDS), dtype=np.int64)
        bins = len(GAP_EDGES_MS) - 1
        self.gap_prompt = np.zeros(bins, dtype=np.int64)
        self.gap_hit = np.zeros(bins, dtype=np.int64)
        self.gap_rows = np.zeros(bins, dtype=np.int64)
        self.samples: list[dict] = []
        self._hosts_sampled = 0
        self._lats: dict[int, np.ndarray] = {}

    # ---------------------------------------------------------------- per chunk
    def add(self, chunk: TraceChunk, isl: np.ndarray, scale: np.ndarray | None, reuse) -> None:
        """``isl``: each row's prompt; ``scale``: each row's context scaling of its delay (NaN at
        turn 0; None without a spec); ``reuse``: the chunk's reuse figures (or None).

        Delays are taken as dataset.jsonl prints them (tenths of a ms), so a run's figures and
        ``tracedsl report``'s of its directory are the same."""
        count = chunk.num_sessions
        if count == 0:
            return
        extras = chunk.extras
        turns = chunk.turns_per_session
        firsts = chunk.row_offsets[:-1]
        lasts = chunk.row_offsets[1:] - 1
        turn = chunk.turn_index
        later = turn > 0
        link = np.asarray(extras.get("link", np.asarray(chunk.is_restart, dtype=np.int8)), dtype=np.int64)
        parent = np.asarray(extras.get("parent_position", np.full(count, -1)), dtype=np.int64)
        spawned_at = np.asarray(extras.get("spawned_at", np.full(count, -1)), dtype=np.int64)
        opens = extras.get("opens_request")
        opens = np.asarray(opens, dtype=bool) if opens is not None else None
        reasons = np.asarray(chunk.end_reasons)
        delay_ms = np.round(chunk.delay_ms, 1)
        session_of = np.repeat(np.arange(count), turns)

        in_block = (link == LINK_SUBAGENT) | ((link == LINK_COMPACTION) & (parent >= 0))
        if len(self.spawning) > 2:  # nested subagents: each session's depth from its parent's
            depth = np.zeros(count, dtype=np.int64)
            for s in np.flatnonzero(in_block).tolist():  # a parent comes before its children
                depth[s] = depth[parent[s]] + (1 if link[s] == LINK_SUBAGENT else 0)
        else:  # only the top level spawns: every session of a block is a child's
            depth = in_block.astype(np.int64)
        block_row = in_block[session_of]
        compacted = reasons == int(EndReason.COMPACTED)
        summarizing = np.zeros(chunk.num_rows, dtype=bool)
        summarizing[lasts[compacted]] = True

        # Subagents: each spawn (parent, turn) and the parent's next call, which waits for them.
        child = np.flatnonzero(link == LINK_SUBAGENT)
        returning = np.zeros(chunk.num_rows, dtype=bool)
        if child.size:
            pairs, fan = np.unique(np.stack([parent[child], spawned_at[child]], axis=1), axis=0,
                                   return_counts=True)
            spawn_row = firsts[pairs[:, 0]] + pairs[:, 1]
            has_next = pairs[:, 1] + 1 < turns[pairs[:, 0]]
            returning[spawn_row[has_next] + 1] = True
            self.sketch["fanout"].add(fan.astype(np.float64))
            self.sketch["calls_per_child"].add(turns[child].astype(np.float64))
            self.children += int(child.size)
        else:
            spawn_row = np.zeros(0, dtype=np.int64)
        if self.has_subagents:
            nxt = np.zeros(chunk.num_rows, dtype=bool)  # the next row is a tool call of the same session
            nxt[:-1] = later[1:] & ~summarizing[1:]
            if opens is not None:
                nxt[:-1] &= ~opens[1:]
            spawning = np.asarray(self.spawning + [False] * 8)[np.minimum(depth, len(self.spawning) + 7)]
            eligible = later & nxt & spawning[session_of]
            self.eligible += int(eligible.sum())
            at_eligible = int(eligible[spawn_row].sum()) if spawn_row.size else 0
            self.spawns += at_eligible
            self.spawns_elsewhere += int(spawn_row.size) - at_eligible
            self.sketch["subagent_wait_ms"].add(delay_ms[returning])

        # Requests: the hosts' calls.
        host_later = later & ~block_row
        if opens is not None:
            host = ~in_block
            per_session = np.add.reduceat(opens.astype(np.int64), firsts)
            self.sketch["requests_per_session"].add(per_session[host].astype(np.float64))
            at = np.flatnonzero(opens & ~block_row)
            whole = session_of[at[:-1]] == session_of[at[1:]]  # a request followed by another opening
            self.sketch["calls_per_request"].add(np.diff(at)[whole].astype(np.float64))
            opening = opens & host_later
            self.sketch["think_ms"].add(delay_ms[opening])
            self.sketch["message_tokens"].add(chunk.input_length[opening].astype(np.float64))
            tool = host_later & ~opens & ~returning & ~summarizing
            self.sketch["tool_latency_ms"].add(delay_ms[tool])
            if scale is not None:
                self.sketch["tool_latency_unscaled_ms"].add(delay_ms[tool] / scale[tool])
            self.sketch["tool_new_tokens"].add(chunk.input_length[tool].astype(np.float64))

        # Compactions.
        self.logical += int((link != LINK_COMPACTION).sum())
        self.compacting += int((compacted & (link != LINK_COMPACTION)).sum())
        self.compactions += int(compacted.sum())
        if compacted.any():
            self.sketch["prompt_before"].add(isl[lasts[compacted]])
            self.sketch["summary_tokens"].add(chunk.output_length[lasts[compacted]].astype(np.float64))
        continuing = link == LINK_COMPACTION
        if continuing.any():
            self.sketch["prompt_after"].add(chunk.input_length[firsts[continuing]].astype(np.float64))

        # Hit rate by call kind and by the idle gap before the call (the analysed rows).
        if reuse is not None and reuse.rows:
            rows = reuse.rows
            kind = np.where(block_row, 3, np.where(~later, 0, 2))
            if opens is not None:
                kind = np.where(~block_row & later & opens, 1, kind)
            kind = kind[:rows]
            prompt = np.asarray(reuse.prompt_blocks, dtype=np.int64)
            hit = np.asarray(reuse.hit_blocks, dtype=np.int64)
            self.kind_prompt += np.bincount(kind, prompt, minlength=len(KINDS)).astype(np.int64)
            self.kind_hit += np.bincount(kind, hit, minlength=len(KINDS)).astype(np.int64)
            self.kind_rows += np.bincount(kind, minlength=len(KINDS))
            gap_rows = np.flatnonzero(later[:rows])
            gap = np.nan_to_num(delay_ms[gap_rows])
            where = np.clip(np.searchsorted(GAP_EDGES_MS, gap, side="right") - 1, 0, len(GAP_EDGES_MS) - 2)
            bins = len(GAP_EDGES_MS) - 1
            self.gap_prompt += np.bincount(where, prompt[gap_rows], minlength=bins).astype(np.int64)
            self.gap_hit += np.bincount(where, hit[gap_rows], minlength=bins).astype(np.int64)
            self.gap_rows += np.bincount(where, minlength=bins)

        if self._hosts_sampled < SAMPLE_HOSTS:
            self._sample(chunk, delay_ms, isl, link, in_block, parent, spawned_at, depth, opens, summarizing)

    def _sample(self, chunk, delay_ms, isl, link, in_block, parent, spawned_at, depth, opens, summarizing) -> None:
        """Keep the first hosts with two calls or more and their blocks: each call's start and
        length on the host's clock (the latency model; a subagent starts when its spawning call
        ends)."""
        turns = chunk.turns_per_session
        firsts = chunk.row_offsets[:-1]
        latency = self.latency.request_ms(isl, chunk.output_length.astype(np.float64))
        delay = np.nan_to_num(delay_ms)
        starts: dict[int, np.ndarray] = {}
        for s in range(chunk.num_sessions):
            if self._hosts_sampled >= SAMPLE_HOSTS and not in_block[s]:
                break
            if in_block[s]:
                if parent[s] not in starts:
                    continue
            elif turns[s] < 2 or link[s] == LINK_COMPACTION:
                continue
            else:
                self._hosts_sampled += 1
            lo, hi = int(firsts[s]), int(firsts[s] + turns[s])
            lat = latency[lo:hi]
            gaps = delay[lo:hi].copy()
            gaps[0] = 0.0
            begin = np.cumsum(gaps + np.concatenate([[0.0], lat[:-1]]))
            if in_block[s]:
                p = int(parent[s])
                at = int(spawned_at[s]) if link[s] == LINK_SUBAGENT else int(turns[p]) - 1
                pl = starts[p]
                begin = begin + pl[min(at, pl.size - 1)] + (self._lat_of(p, at) or 0.0)
            starts[s] = begin
            self._lats[s] = lat
            if len(self.samples) >= SAMPLE_LANES:
                continue
            shown = min(int(turns[s]), SAMPLE_CALLS)
            opening = opens[lo:hi] if opens is not None else np.zeros(hi - lo, dtype=bool)
            self.samples.append({
                "session_id": chunk.session_ids[s],
                "link": LINK_NAMES.get(int(link[s]), "primary"),
                "depth": int(depth[s]),
                "host": not bool(in_block[s]),
                "end_reason": EndReason.name_of(int(chunk.end_reasons[s])),
                "spawned_at": int(spawned_at[s]) if link[s] == LINK_SUBAGENT else None,
                "parent_id": chunk.session_ids[int(parent[s])] if in_block[s] else None,
                "calls": int(turns[s]),
                "start_ms": [round(float(v), 1) for v in begin[:shown].tolist()],
                "latency_ms": [round(float(v), 1) for v in lat[:shown].tolist()],
                "gap_ms": [round(float(v), 1) for v in gaps[:shown].tolist()],
                "opens": [bool(v) for v in opening[:shown].tolist()],
                "compacts": bool(summarizing[hi - 1]),
            })
        self._lats.clear()

    def _lat_of(self, s: int, turn: int) -> float | None:
        lat = self._lats.get(s)
        return None if lat is None or not lat.size else float(lat[min(turn, lat.size - 1)])

    # ---------------------------------------------------------------- figures
    def figures(self, engine: str = "fast") -> dict:
        params = self.params
        classes = params.classes is not None
        out: dict = {}
        if self.has_requests:
            request = params.request
            out["requests"] = {
                "requests_per_session": _figure(self.sketch["requests_per_session"], None),
                "calls_per_request": _figure(self.sketch["calls_per_request"],
                                             None if classes or request is None else _calls(request, engine)),
                "message_tokens": _figure(self.sketch["message_tokens"], None if classes or request is None
                                          else _expected(Draw(targets.law(request.message, engine), _tokens),
                                                         "max(int(draw), 1), the draw within its bounds")),
                "think_ms": _figure(self.sketch["think_ms"], None if classes or request is None
                                    else _expected(Draw(targets.law(request.think, engine), _same),
                                                   "the think law as given (no context scaling, no delay max)")),
                "tool_latency_ms": _figure(
                    self.sketch["tool_latency_ms"], None if classes else targets.delay_mixture(params, engine, (0.9,)),
                    compared=self.sketch["tool_latency_unscaled_ms"]),
                "tool_new_tokens": _figure(self.sketch["tool_new_tokens"],
                                           None if classes else targets.new_tokens(params, engine, (0.9,))),
                "note": "the hosts' calls (not subagents'); a request is whole when another opening "
                "follows it in the session (sessions cut long requests short, so whole ones lean "
                "short unless calls is constant); tool calls exclude a subagent's return and the "
                "summarization call",
            }
        if self.has_compaction:
            spec = params.compaction
            threshold = spec.threshold * params.max_prompt_tokens if spec is not None and not classes else None
            summary = None if spec is None or classes else Draw(targets.law(spec.summary, engine), _tokens)
            fixed = params.fixed_prefix_tokens
            out["compaction"] = {
                "logical_sessions": self.logical,
                "compacting_logical_sessions": self.compacting,
                "share_compacting": round(self.compacting / self.logical, 4) if self.logical else None,
                "compactions": self.compactions,
                "compactions_per_compacting_session": {
                    "observed_mean": round(self.compactions / self.compacting, 4) if self.compacting else None,
                    "at_most": spec.max_compactions if spec is not None else None,
                },
                "prompt_before": {**_figure(self.sketch["prompt_before"], None),
                                  "threshold_tokens": threshold,
                                  "note": "the summarization call's prompt (the context + the instruction)"},
                "prompt_after": _figure(self.sketch["prompt_after"], None if summary is None else _expected(
                    Draw(summary.law, lambda x: fixed + _tokens(x)),
                    "the continuation's turn 0: (ceil(L1/bs)+ceil(L1.5/bs))*bs + max(int(summary), 1)")),
                "summary_tokens": _figure(self.sketch["summary_tokens"], None if summary is None else _expected(
                    summary, "the summarization call's output: max(int(summary), 1)")),
            }
        if self.has_subagents:
            sub = params.subagent
            calls = targets.turns(sub.params, engine, (0.9,))
            out["subagents"] = {
                "eligible_calls": self.eligible,
                "spawns": self.spawns,
                "spawns_elsewhere": self.spawns_elsewhere,
                "children": self.children,
                "spawn_rate": {"target": sub.probability,
                               "observed": round(self.spawns / self.eligible, 6) if self.eligible else None},
                "fanout": _figure(self.sketch["fanout"], _fanout(sub, engine)),
                "calls_per_child": _figure(self.sketch["calls_per_child"], calls),
                "wait_ms": _figure(self.sketch["subagent_wait_ms"], None),
                "note": "eligible: a call after turn 0, of a body with subagent, whose next call is a "
                "tool call of the same session; a spawn makes that next call longer (the returns), so "
                "a session ends there a little more often: the observed rate leans low",
            }
        kinds = {}
        for i, name in enumerate(KINDS):
            if self.kind_rows[i]:
                kinds[name] = {"calls": int(self.kind_rows[i]), "prompt_blocks": int(self.kind_prompt[i]),
                               "hit_rate": round(float(self.kind_hit[i] / max(self.kind_prompt[i], 1)), 4)}
        out["hit_rate_by_call_kind"] = kinds
        out["hit_rate_by_gap"] = [
            {"gap_ms_from": GAP_EDGES_MS[i], "gap_ms_to": None if np.isinf(GAP_EDGES_MS[i + 1]) else GAP_EDGES_MS[i + 1],
             "calls": int(self.gap_rows[i]),
             "hit_rate": round(float(self.gap_hit[i] / self.gap_prompt[i]), 4) if self.gap_prompt[i] else None}
            for i in range(len(GAP_EDGES_MS) - 1) if self.gap_rows[i]
        ]
        return out


def _tokens(x: np.ndarray) -> np.ndarray:
    return np.maximum(np.trunc(x), 1)


def _same(x: np.ndarray) -> np.ndarray:
    return x


def _expected(draw: Draw, basis: str) -> Expected:
    return Expected(draw.mean, draw.quantile(0.5), basis, {"p90": draw.quantile(0.9)})


def _count_draw(dist, engine: str, low_default: int, high_default: int) -> Draw:
    low = getattr(dist, "min", None)
    high = getattr(dist, "max", None)
    low = int(low) if low is not None else low_default
    high = int(high) if high is not None else high_default
    return Draw(targets.law(dist, engine), lambda x: np.clip(np.rint(x), low, high))


def _calls(request, engine: str) -> Expected:
    return _expected(_count_draw(request.calls, engine, 1, MAX_TURNS),
                     "calls: round-half-even of a draw within its bounds, at least 1")


def _fanout(sub, engine: str) -> Expected:
    return _expected(_count_draw(sub.fanout, engine, 1, MAX_FANOUT),
                     f"fanout: round-half-even of a draw within [1, {MAX_FANOUT}] (or its bounds)")


def _signed(observed: float, expected: float | None) -> float | None:
    if expected is None or not np.isfinite(expected):
        return None
    return 0.0 if expected == 0 else round((observed - expected) / expected * 100, 3)


def _figure(sketch: Sketch, expected: Expected | None, compared: Sketch | None = None) -> dict:
    """Observed stats, and with a target its expected mean/median/p90 and signed errors."""
    out: dict = {"observed": sketch.stats() if sketch.count else None}
    if expected is None:
        return out
    against = compared if compared is not None else sketch
    out["expected"] = expected.to_dict()
    if compared is not None:
        out["observed_compared"] = against.stats() if against.count else None
    if against.count:
        out["signed_error_mean_pct"] = _signed(against.mean, expected.mean)
        out["signed_error_median_pct"] = _signed(against.quantile(0.5), expected.median)
        p90 = (expected.quantiles or {}).get("p90")
        if p90 is not None:
            out["p90"] = {"expected": round(float(p90), 4), "observed": round(against.quantile(0.9), 2),
                          "signed_error_pct": _signed(against.quantile(0.9), p90)}
    return out
