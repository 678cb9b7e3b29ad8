"""Any Mooncake JSONL trace → TraceChunks, sessions gathered in order of first appearance.

Rows without ``session_id`` are sessions of their own (named ``row-<line>``). A session's
rows are gathered even when they are not contiguous, in file order; to do that without
holding the file, a first pass learns each session's last line and the second pass hands
a session on as soon as it is complete. The first bad row raises a located
:class:`DiagnosticError` (file, line, field).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from tracedsl.diagnostics import Diagnostic, DiagnosticError, Span
from tracedsl.output.lines import LineProblem, parsed_lines
from tracedsl.output.rows import check_row
from tracedsl.trace import EndReason, TraceChunk

CHUNK_ROWS = 16384


def read_trace(path: str | Path, chunk_rows: int = CHUNK_ROWS) -> Iterator[TraceChunk]:
    """Yield the trace's sessions as chunks of about ``chunk_rows`` rows, in first-appearance order."""
    path = Path(path)
    last_line = _last_lines(path)
    open_sessions: dict[str, list[tuple]] = {}
    order: deque[str] = deque()  # sessions begun, not yet handed on, in first-appearance order
    done: set[str] = set()
    builder = _ChunkBuilder()
    with open(path, "rb") as handle:
        for number, row, _ in parsed_lines(handle):
            if isinstance(row, LineProblem):
                _fail(path, number, row.kind, row.message, None, row.column)
            for problem in check_row(row):
                _fail(path, number, problem.kind, problem.message, problem.field)
            if row.get("input_length") is None:
                _fail(path, number, "prompt-fields",
                      "only rows with input_length can be read as token counts", "input_length")
            key = row.get("session_id")
            key = f"row-{number}" if key is None else key
            if key not in open_sessions:
                open_sessions[key] = []
                order.append(key)
            open_sessions[key].append(_row_tuple(row))
            if last_line[key] == number:
                done.add(key)
            while order and order[0] in done:
                finished = order.popleft()
                done.discard(finished)
                builder.add(finished, open_sessions.pop(finished))
                if builder.rows >= chunk_rows:
                    yield builder.build()
    if builder.rows:
        yield builder.build()


def _last_lines(path: Path) -> dict[str, int]:
    """Each session's last line (the first pass); bad lines are left to the second pass."""
    last: dict[str, int] = {}
    with open(path, "rb") as handle:
        for number, row, _ in parsed_lines(handle):
            if isinstance(row, dict):
                key = row.get("session_id")
                last[f"row-{number}" if key is None or type(key) is not str else key] = number
    return last


def _row_tuple(row: dict) -> tuple:
    timestamp, delay = row.get("timestamp"), row.get("delay")
    return (
        row["input_length"],
        row.get("output_length") or 0,
        row.get("hash_ids") or [],
        math.nan if timestamp is None else float(timestamp),
        math.nan if delay is None else float(delay),
        row.get("group_id"),
        row.get("is_restart") is True,
    )


def _fail(path: Path, line: int, kind: str, message: str, field: str | None, column: int | None = None):
    raise DiagnosticError(
        Diagnostic(code=kind, message=message, file=str(path), span=Span(line, column or 1), path=field)
    )


class _ChunkBuilder:
    """Whole sessions collected as rows, turned into one TraceChunk of columns."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.session_ids: list[str] = []
        self.group_ids: list[int] = []
        self.restarts: list[bool] = []
        self.turns: list[int] = []
        self.row_values: list[tuple] = []
        self.rows = 0

    def add(self, session_id: str, rows: list[tuple]) -> None:
        first = rows[0]
        group = first[5]
        self.session_ids.append(session_id)
        self.group_ids.append(group if type(group) is int and group >= 0 else -1)
        self.restarts.append(first[6])
        self.turns.append(len(rows))
        self.row_values.extend(rows)
        self.rows += len(rows)

    def build(self) -> TraceChunk:
        values = self.row_values
        row_offsets = np.zeros(len(self.turns) + 1, dtype=np.int64)
        np.cumsum(self.turns, out=row_offsets[1:])
        id_counts = np.fromiter((len(v[2]) for v in values), dtype=np.int64, count=len(values))
        hash_offsets = np.zeros(len(values) + 1, dtype=np.int64)
        np.cumsum(id_counts, out=hash_offsets[1:])
        hash_ids = np.fromiter((h for v in values for h in v[2]), dtype=np.int64, count=int(hash_offsets[-1]))
        chunk = TraceChunk(
            session_ids=self.session_ids,
            group_ids=np.asarray(self.group_ids, dtype=np.int64),
            is_restart=np.asarray(self.restarts, dtype=bool),
            end_reasons=np.full(len(self.session_ids), EndReason.UNKNOWN, dtype=np.int8),
            row_offsets=row_offsets,
            input_length=np.fromiter((v[0] for v in values), dtype=np.int64, count=len(values)),
            output_length=np.fromiter((v[1] for v in values), dtype=np.int64, count=len(values)),
            delay_ms=np.fromiter((v[4] for v in values), dtype=np.float64, count=len(values)),
            timestamp_ms=np.fromiter((v[3] for v in values), dtype=np.float64, count=len(values)),
            hash_offsets=hash_offsets,
            hash_ids=hash_ids,
        )
        self._reset()
        return chunk
