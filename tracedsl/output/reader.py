"""Any Mooncake JSONL trace → TraceChunks, sessions gathered in order of first appearance.

Rows without ``session_id`` are sessions of their own (named ``row-<line>``). A session's
rows are gathered even when they are not contiguous, in file order; to do that without
holding the file, a first pass learns each session's last line and the second pass hands
a session on as soon as it is complete. The first bad row raises a located
:class:`DiagnosticError` (file, line, field).

Speed: the first pass reads the session id straight from the bytes when the row is plain
(tracedsl and AIPerf write ``{"session_id":"...",`` first), the second checks each row with
one fast test (``plain_row_ok``) and every row's hash ids of a batch as one numpy array;
only a row that fails goes through the full, explaining rule check.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterator
from itertools import chain
from pathlib import Path

import numpy as np
import orjson

from tracedsl.diagnostics import Diagnostic, DiagnosticError, Span
from tracedsl.output.lines import BOM, MAX_LINE_BYTES, LineProblem, parse_line, raw_line_batches
from tracedsl.output.rows import PLAIN_KEYS, check_row, hash_id_problem, ids_array, plain_row_ok
from tracedsl.trace import EndReason, TraceChunk

CHUNK_ROWS = 16384
_BATCH_ROWS = 4096
_SESSION_KEY = b'{"session_id":"'
_FIRST_PASS_BYTES = 1 << 22
_SESSION_IDS = re.compile(rb'\{"session_id":"([^"]*)"')


def read_trace(path: str | Path, chunk_rows: int = CHUNK_ROWS) -> Iterator[TraceChunk]:
    """Yield the trace's sessions as chunks of about ``chunk_rows`` rows, in first-appearance order."""
    path = Path(path)
    gatherer = _Gatherer(_last_lines(path))
    parts: list[_Rows] = []
    held = 0
    for batch in _row_batches(path, min(_BATCH_ROWS, max(chunk_rows, 1))):
        ready = gatherer.add(batch)
        if ready is not None:
            parts.append(ready)
            held += ready.rows
            if held >= chunk_rows:
                yield gatherer.chunk(parts)
                parts, held = [], 0
    rest = gatherer.rest()
    if rest is not None:
        parts.append(rest)
    if parts:
        yield gatherer.chunk(parts)


def _last_lines(path: Path) -> dict[str, int]:
    """Each session's last line (the first pass); bad lines are left to the second pass.

    Whole blocks of lines are read at once when every line is one flat object that begins
    with its session_id and holds no escapes (one "{", one "session_id", no backslash in
    the block): the id is then the bytes up to the next quote, as orjson would read it.
    (A line not starting that way while the counts still agree is not a JSON object at all,
    and the second pass stops there.)
    """
    last: dict[str, int] = {}
    last_bytes: dict[bytes, int] = {}  # from the plain blocks, decoded once per session at the end
    number = 0  # physical lines before the block, as raw_lines counts them
    carry = b""
    skipping = False
    with open(path, "rb") as handle:
        while True:
            block = handle.read(_FIRST_PASS_BYTES)
            if not block:
                break
            if skipping:  # the rest of a line too long to read (the second pass reports it)
                end = block.find(b"\n")
                if end < 0:
                    continue
                block, skipping, number = block[end + 1 :], False, number + 1
            block = carry + block
            cut = block.rfind(b"\n") + 1
            if cut == 0:
                carry = block
                if len(carry) > MAX_LINE_BYTES:
                    carry, skipping = b"", True
                continue
            block, carry = block[:cut - 1], block[cut:]
            lines = block.split(b"\n")
            count = len(lines)
            keys = _SESSION_IDS.findall(block) if block.count(b"{") == count else None
            if keys is not None and len(keys) == count and block.startswith(_SESSION_KEY) and (
                b"\\" not in block and block.count(b'"session_id"') == count
            ):
                last_bytes.update(zip(keys, range(number + 1, number + count + 1), strict=True))
            else:
                _last_lines_slowly(lines, number, last)
            number += count
    if carry:
        _last_lines_slowly([carry], number, last)
    for key, line in last_bytes.items():
        name = key.decode("utf-8", "replace")
        if last.get(name, 0) < line:
            last[name] = line
    return last


def _last_lines_slowly(lines: list[bytes], number: int, last: dict[str, int]) -> None:
    for offset, raw in enumerate(lines, start=number + 1):
        if not raw or raw.isspace():
            continue
        row = parse_line(raw[len(BOM):] if offset == 1 and raw.startswith(BOM) else raw)
        if isinstance(row, dict):
            key = row.get("session_id")
            last[f"row-{offset}" if key is None or type(key) is not str else key] = offset


class _Rows:
    """A batch of checked rows as columns, each row tagged with its session's sequence number."""

    __slots__ = ("sequence", "inputs", "outputs", "timestamps", "delays", "id_counts", "ids")

    def __init__(self, sequence, inputs, outputs, timestamps, delays, id_counts, ids):
        self.sequence, self.inputs, self.outputs = sequence, inputs, outputs
        self.timestamps, self.delays, self.id_counts, self.ids = timestamps, delays, id_counts, ids

    @property
    def rows(self) -> int:
        return int(self.sequence.shape[0])

    def take(self, picked: np.ndarray, in_order: bool) -> _Rows:
        """The rows ``picked`` (ascending, or any order when not ``in_order``) with their ids."""
        offsets = np.zeros(self.id_counts.shape[0] + 1, dtype=np.int64)
        np.cumsum(self.id_counts, out=offsets[1:])
        counts = self.id_counts[picked]
        if in_order and picked.shape[0] and picked[-1] - picked[0] + 1 == picked.shape[0]:
            ids = self.ids[offsets[picked[0]] : offsets[picked[-1] + 1]]
        else:
            starts = offsets[:-1][picked]
            ids = self.ids[np.repeat(starts - (np.cumsum(counts) - counts), counts)
                           + np.arange(int(counts.sum()), dtype=np.int64)]
        return _Rows(self.sequence[picked], self.inputs[picked], self.outputs[picked],
                     self.timestamps[picked], self.delays[picked], counts, ids)

    @staticmethod
    def join(parts: list[_Rows]) -> _Rows:
        if len(parts) == 1:
            return parts[0]
        return _Rows(*(np.concatenate([getattr(p, name) for p in parts]) for name in _Rows.__slots__))


class _Gatherer:
    """Sessions numbered by first appearance; rows handed on once every earlier session is complete."""

    def __init__(self, last_line: dict[str, int]):
        self.last_line = last_line
        self.open: dict[str, int] = {}  # session name -> sequence number, while rows may come
        self.first_row: dict[int, tuple[str, int, bool]] = {}  # sequence -> name, group, restart
        self.complete = bytearray()
        self.frontier = 0  # every session numbered below this is complete
        self.pending: _Rows | None = None

    def add(self, batch: _Batch) -> _Rows | None:
        count = len(batch.keys)
        sequence = np.empty(count, dtype=np.int64)
        open_sessions, last_line, complete = self.open, self.last_line, self.complete
        numbers, rows = batch.numbers, batch.rows
        # one step per run of rows of the same session, not per row
        keys = np.asarray(batch.keys)
        run_starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1]))).tolist()
        for start, end in zip(run_starts, run_starts[1:] + [count], strict=True):
            key = batch.keys[start]
            seq = open_sessions.get(key)
            if seq is None:
                seq = open_sessions[key] = len(complete)
                complete.append(0)
                row = rows[start]
                self.first_row[seq] = (key, row.get("group_id"), row.get("is_restart"))
            sequence[start:end] = seq
            if last_line.get(key) == numbers[end - 1]:
                complete[seq] = 1
                del open_sessions[key]
        while self.frontier < len(complete) and complete[self.frontier]:
            self.frontier += 1
        rows = batch.columns(sequence)
        if self.pending is not None:
            rows = _Rows.join([self.pending, rows])
        done = rows.sequence < self.frontier
        if done.all():
            self.pending = None
        else:
            self.pending = rows.take(np.flatnonzero(~done), in_order=True)
            rows = rows.take(np.flatnonzero(done), in_order=True)
        if rows.rows == 0:
            return None
        if (rows.sequence[1:] < rows.sequence[:-1]).any():  # a session's rows were not contiguous
            rows = rows.take(np.argsort(rows.sequence, kind="stable"), in_order=False)
        return rows

    def rest(self) -> _Rows | None:
        """At the end of the file every session is complete (the first pass only said when)."""
        rows, self.pending = self.pending, None
        if rows is None or rows.rows == 0:
            return None
        return rows.take(np.argsort(rows.sequence, kind="stable"), in_order=False)

    def chunk(self, parts: list[_Rows]) -> TraceChunk:
        rows = _Rows.join(parts)
        starts = np.flatnonzero(np.concatenate(([True], rows.sequence[1:] != rows.sequence[:-1])))
        row_offsets = np.append(starts, rows.rows).astype(np.int64)
        names, groups, restarts = [], [], []
        for seq in rows.sequence[starts].tolist():
            name, group, restart = self.first_row.pop(seq)
            names.append(name)
            groups.append(group if type(group) is int and group >= 0 else -1)
            restarts.append(restart is True)
        hash_offsets = np.zeros(rows.rows + 1, dtype=np.int64)
        np.cumsum(rows.id_counts, out=hash_offsets[1:])
        return TraceChunk(
            session_ids=names,
            group_ids=np.asarray(groups, dtype=np.int64),
            is_restart=np.asarray(restarts, dtype=bool),
            end_reasons=np.full(len(names), EndReason.UNKNOWN, dtype=np.int8),
            row_offsets=row_offsets,
            input_length=rows.inputs,
            output_length=rows.outputs,
            delay_ms=rows.delays,
            timestamp_ms=rows.timestamps,
            hash_offsets=hash_offsets,
            hash_ids=rows.ids,
        )


class _Batch:
    """Checked rows as Python columns, before numpy."""

    def __init__(self, numbers: list[int], rows: list[dict], raws: list[bytes]) -> None:
        self.numbers = numbers
        self.rows = rows
        get = [row.get for row in rows]
        self.keys = [key if key is not None else f"row-{number}"
                     for key, number in zip([g("session_id") for g in get], numbers, strict=True)]
        self.inputs = [g("input_length") for g in get]
        self.outputs = [g("output_length") for g in get]
        self.timestamps = [g("timestamp") for g in get]
        self.delays = [g("delay") for g in get]
        self.id_lists = [g("hash_ids") or _NO_IDS for g in get]
        self.ids: np.ndarray | None = None  # every row's ids, once checked
        self.arrays: tuple[np.ndarray, ...] | None = None  # inputs, outputs, timestamps, delays

    def plain(self, rows: list[dict]) -> bool:
        """Every row passes ``plain_row_ok``: tested column by column."""
        if not (
            set().union(*rows) <= PLAIN_KEYS
            and _types(self.inputs) <= _INT
            and _types(self.outputs) <= _INT_OR_NONE
            and _types(self.id_lists) <= _LIST
            and _types(self.keys) <= _STR
            and _types(self.timestamps) <= _NUMBER_OR_NONE
            and _types(self.delays) <= _NUMBER_OR_NONE
        ):
            return False
        try:
            columns = self._arrays()
        except OverflowError:  # an integer beyond int64: let the row check say which
            return False
        inputs, outputs, timestamps, delays = columns
        given_outputs = outputs if None not in self.outputs else np.asarray(self.outputs, dtype=np.float64)
        if inputs.shape[0] and (inputs.min() < 1 or (given_outputs < 1).any()
                                or (timestamps < 0).any() or (delays < 0).any()):
            return False
        self.arrays = columns
        return True

    def _arrays(self) -> tuple[np.ndarray, ...]:
        outputs = self.outputs if None not in self.outputs else [value or 0 for value in self.outputs]
        return (
            np.asarray(self.inputs, dtype=np.int64),
            np.asarray(outputs, dtype=np.int64),
            np.asarray(self.timestamps, dtype=np.float64),  # None becomes NaN
            np.asarray(self.delays, dtype=np.float64),
        )

    def columns(self, sequence: np.ndarray) -> _Rows:
        count = len(self.numbers)
        arrays = self.arrays if self.arrays is not None else self._arrays()
        return _Rows(
            sequence, *arrays,
            np.fromiter(map(len, self.id_lists), dtype=np.int64, count=count),
            self.ids,
        )


_INT = {int}
_INT_OR_NONE = {int, type(None)}
_LIST = {list}
_STR = {str}
_NUMBER_OR_NONE = {int, float, type(None)}


def _types(column: list) -> set:
    return set(map(type, column))


_NO_IDS: list = []


def _row_batches(path: Path, batch_rows: int) -> Iterator[_Batch]:
    """The file's rows, checked, in batches; the first bad row raises its located error."""
    numbers: list[int] = []
    raws: list[bytes] = []
    with open(path, "rb") as handle:
        for block_numbers, block_raws, problems in raw_line_batches(handle):
            if problems:
                bad = next(i for i, raw in enumerate(block_raws) if type(raw) is LineProblem)
                numbers.extend(block_numbers[:bad])
                raws.extend(block_raws[:bad])
                if raws:
                    _checked_batch(path, numbers, raws)  # an earlier bad row is reported first
                problem = block_raws[bad]
                _fail(path, block_numbers[bad], problem.kind, problem.message, None, problem.column)
            numbers.extend(block_numbers)
            raws.extend(block_raws)
            while len(raws) >= batch_rows:
                yield _checked_batch(path, numbers[:batch_rows], raws[:batch_rows])
                del numbers[:batch_rows], raws[:batch_rows]
    if raws:
        yield _checked_batch(path, numbers, raws)


def _checked_batch(path: Path, numbers: list[int], raws: list[bytes]) -> _Batch:
    loads = orjson.loads
    # The rows are fresh dicts and lists without cycles: collecting while they are made only
    # costs time (about a tenth of the read), so the collector waits until the batch is parsed.
    collecting = gc.isenabled()
    gc.disable()
    try:
        rows = [loads(raw) for raw in raws]
    except orjson.JSONDecodeError:
        rows = None
    finally:
        if collecting:
            gc.enable()
    if rows is None or _types(rows) != {dict}:
        first_bad = next(i for i, raw in enumerate(raws) if not isinstance(parse_line(raw), dict))
        if first_bad:
            _checked_batch(path, numbers[:first_bad], raws[:first_bad])
        problem = parse_line(raws[first_bad])
        _fail(path, numbers[first_bad], problem.kind, problem.message, None, problem.column)
    batch = _Batch(numbers, rows, raws)
    if not batch.plain(rows):
        for index, row in enumerate(rows):
            if plain_row_ok(row):
                continue
            problems = check_row(row, raw=raws[index])
            if problems or row.get("input_length") is None:
                _check_ids(path, batch, index, raws)  # an earlier row's bad ids come first
            for problem in problems:
                _fail(path, numbers[index], problem.kind, problem.message, problem.field)
            if row.get("input_length") is None:
                _fail(path, numbers[index], "prompt-fields",
                      "only rows with input_length can be read as token counts", "input_length")
    _check_ids(path, batch, len(rows), raws)
    return batch


def _check_ids(path: Path, batch: _Batch, end: int, raws: list[bytes]) -> None:
    """The first ``end`` rows' hash ids all integers in [0, 2**63): one numpy test, rows one by one if not."""
    id_lists = batch.id_lists if end == len(batch.id_lists) else batch.id_lists[:end]
    ids = ids_array(list(chain.from_iterable(id_lists)))
    if ids is None:
        for number, hash_ids, raw in zip(batch.numbers, id_lists, raws, strict=False):
            _raise_id_problem(path, number, hash_ids, raw)
    batch.ids = ids


def _raise_id_problem(path: Path, number: int, hash_ids: list, raw: bytes) -> None:
    problem = hash_id_problem(hash_ids, raw)
    if problem is not None:
        _fail(path, number, problem.kind, problem.message, problem.field)


def _fail(path: Path, line: int, kind: str, message: str, field: str | None, column: int | None = None):
    raise DiagnosticError(
        Diagnostic(code=kind, message=message, file=str(path), span=Span(line, column or 1), path=field)
    )
