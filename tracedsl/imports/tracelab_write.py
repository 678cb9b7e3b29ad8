"""TraceChunks → TraceLab release rows: the inverse of the import, to test it and to give ``fit`` a
large input in TraceLab's format made from a tracedsl run.

A TraceLab session is a logical session (a primary and its restart and compaction
continuations, from sessions.jsonl); its calls are numbered in file order. A later call's
prefix is the prompt before it; a session's first prompt reports as cached the leading blocks
that any earlier row holds. Times start at ``ORIGIN``: a call starts at its session's timestamp
plus the delays and latencies before it, completes ``latency_ms`` later, and a call followed by
a tool-result call emits one tool whose result comes back when that call starts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import orjson

from tracedsl.imports.tracelab_rows import DEFAULT_BLOCK_SIZE
from tracedsl.output.sessions import read_index
from tracedsl.trace import TraceChunk

ORIGIN = np.datetime64("2026-01-01T00:00:00", "ms")  # the written times' zero
PROVIDER = "tracedsl"
_CONTINUATIONS = ("restart", "compaction")
MAX_ID = 1 << 32  # the writer's seen-id flags: a byte each


def logical_sessions(index: str | Path) -> dict[str, str]:
    """Each continuation's logical session (the primary its restart and compaction links lead
    back to), from a run's sessions.jsonl; sessions not listed are their own."""
    root: dict[str, str] = {}
    for _, row in read_index(Path(index)):
        if not isinstance(row, dict):
            continue
        parent = row.get("parent_session_id")
        if row.get("link") in _CONTINUATIONS and isinstance(parent, str):
            root[row["session_id"]] = root.get(parent, parent)
    return root


def write_run(run_dir: str | Path, path: str | Path, *, block_size: int = DEFAULT_BLOCK_SIZE,
              latency_ms: float = 0.0) -> int:
    """A tracedsl run directory's dataset.jsonl as TraceLab rows (its sessions.jsonl gives the
    continuations' logical sessions and the request openings); the number of rows written."""
    # late: the reader and the index's extras pull in the IR (pydantic), which reading TraceLab rows never needs
    from tracedsl.output.reader import read_trace
    from tracedsl.reports.regenerate import with_index

    dataset, index = Path(run_dir) / "dataset.jsonl", Path(run_dir) / "sessions.jsonl"
    found = index if index.is_file() else None
    return write_tracelab(with_index(read_trace(dataset), None, found), path,
                          logical=logical_sessions(found) if found else None,
                          block_size=block_size, latency_ms=latency_ms)


def write_tracelab(chunks: Iterable[TraceChunk], path: str | Path, *, logical: Mapping[str, str] | None = None,
                   block_size: int = DEFAULT_BLOCK_SIZE, latency_ms: float = 0.0) -> int:
    """Write the chunks as TraceLab release rows to ``path``; the number of rows written.

    ``logical`` maps a session id to its logical session's (``logical_sessions`` of the run's
    sessions.jsonl); without it every session is its own TraceLab session.
    """
    logical = logical or {}
    writer = _Writer(block_size, float(latency_ms))
    rows = 0
    with open(path, "wb") as handle:
        for chunk in chunks:
            if chunk.num_rows:
                handle.write(writer.lines(chunk, logical))
                rows += chunk.num_rows
    return rows


class _Writer:
    def __init__(self, block_size: int, latency_ms: float) -> None:
        self.block_size = block_size
        self.latency_ms = latency_ms
        self.seen = np.zeros(1 << 16, dtype=bool)  # every hash id written so far
        self.rounds: dict[str, int] = {}  # calls written per TraceLab session

    def lines(self, chunk: TraceChunk, logical: Mapping[str, str]) -> bytes:
        turns = chunk.turns_per_session
        firsts = chunk.row_offsets[:-1]
        turn = chunk.turn_index
        prompt = chunk.request_input_length
        prefix = np.empty(chunk.num_rows, dtype=np.int64)
        prefix[1:] = prompt[:-1]
        prefix[firsts] = np.minimum(self._cached_leads(chunk, firsts) * self.block_size, prompt[firsts])

        delay = np.nan_to_num(chunk.delay_ms)
        delay[firsts] = 0.0
        waited = np.cumsum(delay)
        waited -= np.repeat(waited[firsts], turns)
        opened = np.repeat(np.nan_to_num(chunk.timestamp_ms[firsts]), turns)
        start = np.rint(opened + waited + turn * self.latency_ms).astype(np.int64)
        end = np.rint(opened + waited + (turn + 1) * self.latency_ms).astype(np.int64)
        opens = chunk.extras.get("opens_request")
        opens = np.asarray(opens, dtype=bool) if opens is not None else turn == 0
        tool = np.zeros(chunk.num_rows, dtype=bool)  # the next call of the session brings its result
        tool[:-1] = (turn[1:] > 0) & ~opens[1:]
        start_at = _iso(start)
        end_at = _iso(end)
        result_at = start_at[1:] + [""]

        base = []
        for sid, count in zip(chunk.session_ids, turns.tolist(), strict=True):
            name = logical.get(sid, sid)
            done = self.rounds.get(name, 0)
            self.rounds[name] = done + count
            base.extend([(name, done)] * count)
        out = []
        dumps = orjson.dumps
        for r, (name, done) in enumerate(base):
            index = done + int(turn[r])
            total, cached = int(prompt[r]), int(prefix[r])
            events = [{"event_type": "user_message" if opens[r] else "tool_result", "timestamp": start_at[r]},
                      {"event_type": "text", "timestamp": end_at[r]}]
            tools = []
            if tool[r]:
                events.append({"event_type": "tool_call", "timestamp": end_at[r], "tool_name": "tool",
                               "tool_index": 0})
                tools.append({"tool_index": 0, "tool_name": "tool", "emitted_at": end_at[r],
                              "result_at": result_at[r], "tool_wall_latency_ms": int(start[r + 1] - end[r]),
                              "tool_internal_latency_ms": None, "is_error": False})
            out.append(dumps({
                "provider": PROVIDER, "session_id": f"{PROVIDER}:{name}", "round_index": index,
                "round_id": f"{name}:{index}", "model": PROVIDER, "input_tokens_total": total,
                "prefix_tokens": cached, "newly_append_tokens": total - cached,
                "output_tokens": int(chunk.output_length[r]), "reasoning_output_tokens": None,
                "timing_events": events, "tools": tools,
                "first_input_event_type": "user_message" if opens[r] else "tool_result",
            }, option=orjson.OPT_APPEND_NEWLINE))
        return b"".join(out)

    def _cached_leads(self, chunk: TraceChunk, firsts: np.ndarray) -> np.ndarray:
        """Per session: how many leading ids of its first row an earlier row holds (this chunk's
        earlier rows included)."""
        ids = chunk.hash_ids
        top = int(ids.max()) + 1 if ids.size else 0
        if top > MAX_ID:
            raise ValueError(f"hash id {top - 1} is above {MAX_ID:,}: write_tracelab keeps a flag a hash id "
                             "and is meant for tracedsl runs, whose ids are dense")
        if top > self.seen.shape[0]:
            grown = np.zeros(max(top, 2 * self.seen.shape[0]), dtype=bool)
            grown[: self.seen.shape[0]] = self.seen
            self.seen = grown
        offsets = chunk.hash_offsets
        _, first_at, inverse = np.unique(ids, return_index=True, return_inverse=True)
        row_of = np.repeat(np.arange(chunk.num_rows), np.diff(offsets))
        earlier = self.seen[ids] | (row_of[first_at][inverse] < row_of)
        counts = np.diff(offsets)[firsts]
        leads = np.zeros(firsts.shape[0], dtype=np.int64)
        for s, (lo, count) in enumerate(zip(offsets[firsts].tolist(), counts.tolist(), strict=True)):
            if count:
                missing = np.flatnonzero(~earlier[lo:lo + count])
                leads[s] = missing[0] if missing.size else count
        self.seen[ids] = True
        return leads


def _iso(ms: np.ndarray) -> list[str]:
    return [f"{text}Z" for text in np.datetime_as_string(ORIGIN + ms.astype("timedelta64[ms]"), unit="ms").tolist()]
