"""TraceLab release rows → checked numpy columns, a batch of lines at a time.

Each batch is tested column by column (types, counts, timestamps) with numpy; only a batch
that fails goes through the explaining check row by row, so the error names the first bad
row of the file, its line and its field (docs/tracelab.md lists what is read).
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain, repeat
from operator import itemgetter
from pathlib import Path

import numpy as np
import orjson

from tracedsl.codes import (
    E_NOT_TRACELAB,
    E_TRACELAB_COUNT,
    E_TRACELAB_FIELD,
    E_TRACELAB_JSON,
    E_TRACELAB_TIME,
)
from tracedsl.diagnostics import Diagnostic, DiagnosticError, Span
from tracedsl.output.lines import LineProblem, parse_line

DEFAULT_BLOCK_SIZE = 512  # tracedsl's and Mooncake's; the release itself has no blocks
# The events that bring a call's input (its prompt is complete at the latest of them); every
# other event (reasoning, text, tool_call, usage_report, ...) is the call's own output.
INPUT_EVENTS = frozenset({"user_message", "tool_result"})
OPENING_EVENT = "user_message"  # a call whose first input is the user's message opens a request
COUNTS = ("round_index", "input_tokens_total", "prefix_tokens", "output_tokens")
REQUIRED = ("session_id", *COUNTS, "timing_events")
APPEND = "newly_append_tokens"  # optional: when given, input_tokens_total - prefix_tokens
FIRST_INPUT = "first_input_event_type"  # optional: a string or null
_MISSING = object()
_KIND = {list: "an array", dict: "an object", str: "a string", int: "an integer", float: "a number",
         bool: "a boolean", type(None): "null"}


@dataclass
class Columns:
    """Checked rows in file order: per row its line, session (its name as parsed; the reader
    numbers them) and counts, and the call's start and completion (ms since the Unix epoch, NaN
    for a row without timing events)."""

    lines: np.ndarray
    sessions: list[str] | np.ndarray
    round_index: np.ndarray
    total: np.ndarray
    prefix: np.ndarray
    output: np.ndarray
    start_ms: np.ndarray
    end_ms: np.ndarray
    opens: np.ndarray
    earliest_ms: float  # the batch's earliest event, NaN without events

    @staticmethod
    def join(parts: list[Columns]) -> Columns:
        def cat(name: str, dtype) -> np.ndarray:
            return np.concatenate([getattr(p, name) for p in parts]) if parts else np.zeros(0, dtype)

        earliest = [p.earliest_ms for p in parts if not np.isnan(p.earliest_ms)]
        return Columns(cat("lines", np.int64), cat("sessions", np.int64),
                       *(cat(name, np.int64) for name in ("round_index", "total", "prefix", "output")),
                       cat("start_ms", np.float64), cat("end_ms", np.float64), cat("opens", bool),
                       min(earliest) if earliest else float("nan"))


def fail(path: Path, line: int, code: str, message: str, field: str | None = None,
         column: int | None = None, hint: str | None = None):
    raise DiagnosticError(Diagnostic(code=code, message=message, file=str(path), span=Span(line, column or 1),
                                     path=field, hint=hint))


def check_format(path: Path, line: int, row: dict) -> None:
    """The first row of a file read as TraceLab's must look like one (E229 otherwise)."""
    if "input_tokens_total" not in row and "round_index" not in row:
        mooncake = "hash_ids" in row or "input_length" in row
        fail(path, line, E_NOT_TRACELAB,
             "not a TraceLab release row (no input_tokens_total, no round_index)"
             + ("; it looks like a Mooncake trace row" if mooncake else ""),
             hint="read a Mooncake trace with tracedsl.output.reader.read_trace" if mooncake else None)


def parse_batch(path: Path, numbers: list[int], raws: list[bytes]) -> Columns:
    """The batch's rows as columns; the first bad row raises its located DiagnosticError."""
    collecting = gc.isenabled()
    gc.disable()  # fresh dicts without cycles: collecting while they are made only costs time
    try:
        rows = [orjson.loads(raw) for raw in raws]
    except orjson.JSONDecodeError:
        rows = None
    finally:
        if collecting:
            gc.enable()
    if rows is None or set(map(type, rows)) != {dict}:
        _explain(path, numbers, raws)
    columns = _fast_columns(rows, numbers)
    if columns is None:
        _explain(path, numbers, raws)
    return columns


def _fast_columns(rows: list[dict], numbers: list[int]) -> Columns | None:
    """Columns when every row passes every test; None when any fails (then the rows are explained)."""
    try:
        sessions, *counts, events = zip(*map(_REQUIRED_FIELDS, rows), strict=True)
    except KeyError:  # a row without a field the import reads
        return None
    appends = [row.get(APPEND) for row in rows]
    firsts = [row.get(FIRST_INPUT) for row in rows]
    if not (set(map(type, sessions)) <= {str} and all(set(map(type, c)) <= {int} for c in counts)
            and set(map(type, events)) <= {list} and set(map(type, appends)) <= {int, type(None)}
            and set(map(type, firsts)) <= {str, type(None)}):
        return None
    try:
        round_index, total, prefix, output = (np.asarray(c, dtype=np.int64) for c in counts)
    except OverflowError:
        return None
    if ((round_index < 0).any() or (total < 0).any() or (prefix < 0).any() or (output < 0).any()
            or (prefix > total).any()):
        return None
    if None not in appends:
        if (np.asarray(appends, dtype=np.int64) != total - prefix).any():
            return None
    elif any(a is not None and a != t - p for a, t, p in zip(appends, total.tolist(), prefix.tolist(), strict=True)):
        return None
    flat = list(chain.from_iterable(events))
    if set(map(type, flat)) - {dict}:
        return None
    try:
        kinds, stamps = zip(*map(_EVENT_FIELDS, flat), strict=True) if flat else ((), ())
    except KeyError:
        return None
    if set(map(type, kinds)) - {str} or set(map(type, stamps)) - {str}:
        return None
    try:
        times = epoch_ms_all(stamps)
    except ValueError:
        return None
    per_row = np.fromiter(map(len, events), dtype=np.int64, count=len(events))
    is_input = np.fromiter(map(INPUT_EVENTS.__contains__, kinds), dtype=bool, count=len(kinds))
    start, end = call_times(times, is_input, per_row)
    opens = np.array([first == OPENING_EVENT for first in firsts], dtype=bool)
    return Columns(np.asarray(numbers, dtype=np.int64), list(sessions), round_index, total, prefix, output,
                   start, end, opens, float(times.min()) if times.size else float("nan"))


_REQUIRED_FIELDS = itemgetter(*REQUIRED)
_EVENT_FIELDS = itemgetter("event_type", "timestamp")


def epoch_ms_all(stamps: tuple[str, ...]) -> np.ndarray:
    """:func:`epoch_ms` of every time (one call a time when all end in Z, as the release writes them)."""
    if all(map(str.endswith, stamps, repeat("Z"))):
        seconds = np.fromiter(map(datetime.timestamp, map(datetime.fromisoformat, stamps)), dtype=np.float64,
                              count=len(stamps))
        return np.round(seconds * 1000.0, 3)
    return np.fromiter(map(epoch_ms, stamps), dtype=np.float64, count=len(stamps))


def epoch_ms(text: str) -> float:
    """An ISO-8601 time as ms since the Unix epoch (a time without an offset is UTC)."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000.0, 3)


def call_times(times: np.ndarray, is_input: np.ndarray, per_row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row (its events ``per_row[r]`` long, in order): when the call starts — the latest input
    event at or before its first output event, else its earliest event — and when it completes —
    its latest output event, else its start. NaN for a row without events."""
    rows = per_row.shape[0]
    row_of = np.repeat(np.arange(rows), per_row)
    first_out = np.full(rows, np.inf)
    np.minimum.at(first_out, row_of[~is_input], times[~is_input])
    earliest = np.full(rows, np.inf)
    np.minimum.at(earliest, row_of, times)
    usable = is_input & (times <= first_out[row_of])
    start = np.full(rows, -np.inf)
    np.maximum.at(start, row_of[usable], times[usable])
    start = np.where(np.isfinite(start), start, earliest)
    end = np.full(rows, -np.inf)
    np.maximum.at(end, row_of[~is_input], times[~is_input])
    end = np.where(np.isfinite(end), end, start)
    empty = per_row == 0
    start[empty] = np.nan
    end[empty] = np.nan
    return start, end


# ---------------------------------------------------------------- explaining a bad batch
def _explain(path: Path, numbers: list[int], raws: list[bytes]) -> None:
    """Check the rows one by one and raise the first row's first problem."""
    for number, raw in zip(numbers, raws, strict=True):
        row = parse_line(raw)
        if type(row) is LineProblem:
            fail(path, number, E_TRACELAB_JSON, row.message, None, row.column)
        problem = row_problem(row)
        if problem is not None:
            code, message, field, needle = problem
            fail(path, number, code, message, field, _column(raw, needle))
    raise AssertionError("a batch failed its column tests but no row has a problem")  # pragma: no cover


def row_problem(row: dict) -> tuple[str, str, str, str] | None:
    """(code, message, field, text to point at) of a row's first problem, None when it has none."""
    for name in REQUIRED:
        value = row.get(name, _MISSING)
        wanted = {"session_id": str, "timing_events": list}.get(name, int)
        if value is _MISSING:
            return E_TRACELAB_FIELD, f"the row has no {name}", name, "{"
        if type(value) is not wanted:
            return (E_TRACELAB_FIELD, f"{name} must be {_KIND[wanted]}, found {_kind(value)}", name, f'"{name}"')
        if wanted is int and not -(2**63) <= value < 2**63:
            return E_TRACELAB_COUNT, f"{name} is out of range ({value})", name, f'"{name}"'
    for name in COUNTS:
        if row[name] < 0:
            return E_TRACELAB_COUNT, f"{name} must be >= 0, got {row[name]}", name, f'"{name}"'
    total, prefix = row["input_tokens_total"], row["prefix_tokens"]
    if prefix > total:
        return (E_TRACELAB_COUNT, f"prefix_tokens ({prefix}) is larger than input_tokens_total ({total})",
                "prefix_tokens", '"prefix_tokens"')
    append = row.get(APPEND)
    if append is not None and (type(append) is not int or append != total - prefix):
        found = _kind(append) if type(append) is not int else str(append)
        return (E_TRACELAB_COUNT, f"{APPEND} must be input_tokens_total - prefix_tokens ({total - prefix}), "
                f"found {found}", APPEND, f'"{APPEND}"')
    first = row.get(FIRST_INPUT)
    if first is not None and type(first) is not str:
        return (E_TRACELAB_FIELD, f"{FIRST_INPUT} must be a string or null, found {_kind(first)}", FIRST_INPUT,
                f'"{FIRST_INPUT}"')
    for i, event in enumerate(row["timing_events"]):
        where = f"timing_events[{i}]"
        if type(event) is not dict:
            return E_TRACELAB_FIELD, f"{where} must be an object, found {_kind(event)}", where, '"timing_events"'
        for key in ("event_type", "timestamp"):
            value = event.get(key, _MISSING)
            if value is _MISSING:
                return E_TRACELAB_FIELD, f"{where} has no {key}", f"{where}.{key}", '"timing_events"'
            if type(value) is not str:
                return (E_TRACELAB_FIELD, f"{where}.{key} must be a string, found {_kind(value)}",
                        f"{where}.{key}", '"timing_events"')
        try:
            epoch_ms(event["timestamp"])
        except ValueError:
            return (E_TRACELAB_TIME, f"{where}.timestamp {event['timestamp']!r} is not an ISO-8601 time",
                    f"{where}.timestamp", orjson.dumps(event["timestamp"]).decode())
    return None


def _kind(value) -> str:
    return _KIND.get(type(value), "a value")


def _column(raw: bytes, needle: str) -> int:
    """The column (from 1) of ``needle`` in the line, 1 when it is not there."""
    at = raw.find(needle.encode())
    return len(raw[:at].decode("utf-8", "replace")) + 1 if at >= 0 else 1
