"""Any Mooncake JSONL trace → TraceChunks, sessions gathered in order of first appearance.

Rows without ``session_id`` are sessions of their own (named ``row-<line>``). A session's
rows are gathered even when they are not contiguous, in file order; to do that without
holding the file, a first pass learns which sessions come in more than one run of rows, and
their last lines, and the second pass hands a session on as soon as it is complete. The first bad row raises a located
:class:`DiagnosticError` (file, line, field).

Speed: the first pass reads the session id straight from the bytes when the row is plain
(tracedsl and AIPerf write ``{"session_id":"...",`` first), the second checks each row with
one fast test (``plain_row_ok``) and every row's hash ids of a batch as one numpy array;
only a row that fails goes through the full, explaining rule check.
"""

from __future__ import annotations

import gc
import os
import re
from collections.abc import Iterator
from itertools import chain
from pathlib import Path

import numpy as np
import orjson

from tracedsl.diagnostics import Diagnostic, DiagnosticError, Span
from tracedsl.output.blocksize import BlockSizeEvidence, plain_evidence, row_evidence
from tracedsl.output.lines import BOM, LineProblem, line_blocks, parse_line
from tracedsl.output.names import SessionMemory
from tracedsl.output.plain import PlainBlock, flat_session_runs, plain_padded, will_read
from tracedsl.output.rows import PLAIN_KEYS, check_row, hash_id_problem, ids_array, plain_row_ok
from tracedsl.trace import EndReason, TraceChunk

CHUNK_ROWS = 16384
_BATCH_ROWS = 4096
_BATCH_RUNS = 16384  # runs of one session the first pass looks up at once
_SESSION_KEY = b'{"session_id":"'
_SESSION_IDS = re.compile(rb'\{"session_id":"([^"]*)"')


def read_trace(path: str | Path, chunk_rows: int = CHUNK_ROWS) -> Iterator[TraceChunk]:
    """Yield the trace's sessions as chunks of about ``chunk_rows`` rows, in first-appearance order."""
    path = Path(path)
    gatherer = _Gatherer(_first_pass(path))
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


def survey(path: str | Path) -> BlockSizeEvidence:
    """The block-size evidence of every row (``blocksize.file_block_size``'s), from read_trace's
    first pass: what that pass learns is kept for the file's next read_trace, so a command that
    infers the block size and then reads the trace reads the file twice, not three times.

    The pass reads each plain block's columns (``plain.plain_padded``) instead of its session
    ids alone, and other blocks' rows one by one, as file_block_size does; the file is known
    again by its device, inode, size and modification time, and at most _SURVEYS_KEPT surveys
    wait (a compare surveys both its traces before it reads either).
    """
    path = Path(path)
    evidence = BlockSizeEvidence()
    key = _file_key(path)
    again = _repeated_sessions(path, evidence)
    if key is not None:
        _SURVEYS[key] = again
        while len(_SURVEYS) > _SURVEYS_KEPT:
            del _SURVEYS[next(iter(_SURVEYS))]
    return evidence


_SURVEYS: dict[tuple, dict[str, int]] = {}  # a surveyed file's key -> its first pass, until it is read
_SURVEYS_KEPT = 4


def _file_key(path: Path) -> tuple | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _first_pass(path: Path) -> dict[str, int]:
    """The surveyed first pass of this file, if it is unchanged since; else the pass itself."""
    key = _file_key(path)
    again = _SURVEYS.pop(key, None) if key is not None else None
    return again if again is not None else _repeated_sessions(path)


def _repeated_sessions(path: Path, evidence: BlockSizeEvidence | None = None) -> dict[str, int]:
    """The last line of each session seen in more than one run of rows (the first pass); bad lines
    are left to the second pass.

    A session all of whose rows are one run of lines is not kept by name: the second pass hands
    it on where its run ends. So the names held are those of the sessions a shuffle or a
    concatenation interleaves (a run that a block boundary cuts is still one run), and the rest
    cost 8 bytes a session (``SessionMemory``, for the engines' names) whatever the trace's
    length. Rows without a session id are sessions of their own, never repeated: not kept.

    Whole blocks of lines are read at once when every line is one flat object that begins
    with its session_id and holds no escapes (one "{", one "session_id", no backslash in
    the block): the id is then the bytes up to the next quote, as orjson would read it
    (plain.flat_session_runs finds them, and the runs of one session, in bulk).
    (A line not starting that way while the counts still agree is not a JSON object at all,
    and the second pass stops there.) With ``evidence`` (``survey``), each block's block-size
    evidence is added to it as well.
    """
    ends = _RepeatedSessions()
    with open(path, "rb") as handle:
        will_read(handle)
        for block in line_blocks(handle):
            number = block.first - 1  # physical lines before the block
            if block.padded is None:  # a line too long (the second pass reports it), or the last one
                numbers, raws, _ = block.batch()
                if evidence is not None:
                    evidence.add(*row_evidence(raws))
                for line, raw in zip(numbers, raws, strict=True):
                    if type(raw) is not LineProblem:
                        ends.lines(*_keys_slowly([raw], line - 1))
                continue
            padded = block.padded
            if evidence is not None:
                plain = plain_padded(padded)
                if plain is not None:
                    evidence.add(*plain_evidence(plain))
                    last_rows = np.append(plain.session_starts[1:], plain.rows) + number
                    ends.runs(plain.session_names, last_rows.tolist(), number + 1)
                    continue
                evidence.add(*row_evidence(block.batch()[1]))
            runs = flat_session_runs(padded)
            if runs is not None:  # the common block, read in bulk: one step per run of a session
                last_rows, names = runs
                ends.runs(names, (last_rows + number + 1).tolist(), number + 1)
                continue
            count = block.count
            braces = int(np.count_nonzero(np.frombuffer(padded, dtype=np.uint8) == 123))
            flat = braces == count and b"\\" not in padded and padded.count(b'"session_id"') == count
            block_text = block.text
            keys = _SESSION_IDS.findall(block_text) if braces == count else None
            if flat and len(keys) == count and block_text.startswith(_SESSION_KEY):
                ends.lines([key.decode("utf-8", "replace") for key in keys], range(number + 1, number + count + 1))
            else:
                ends.lines(*_keys_slowly(block_text.split(b"\n"), number))
    return ends.again


class _RepeatedSessions:
    """The first pass's memory: every session id seen, compactly, and the last line of those seen again.

    Runs are looked up a batch of ``_BATCH_RUNS`` at a time (several blocks'), in file order.
    """

    def __init__(self) -> None:
        self.memory = SessionMemory()
        self._again: dict[str, int] = {}
        self.names: list[str] = []
        self.last_lines: list[int] = []
        self._last_name: str | None = None  # the last run's session and last line
        self._last_line = -1

    @property
    def again(self) -> dict[str, int]:
        """The last line of each session seen in more than one run (once every run is in)."""
        self._look_up()
        return self._again

    def runs(self, names: list[str], last_lines: list[int], first_line: int) -> None:
        """Runs of rows of one session, in file order: their ids and last lines, and the first
        run's first line. A first run that goes on from the last run before (the same session,
        the next line: a block boundary cut the run) is that run."""
        if not names:
            return
        if names[0] == self._last_name and first_line == self._last_line + 1:
            if self.names:
                self.last_lines[-1] = last_lines[0]
            elif names[0] in self._again:  # looked up already, and seen in an earlier run
                self._again[names[0]] = last_lines[0]
            self._last_line = last_lines[0]
            names, last_lines = names[1:], last_lines[1:]
            if not names:
                return
        self._last_name, self._last_line = names[-1], last_lines[-1]
        self.names += names
        self.last_lines += last_lines
        if len(self.names) >= _BATCH_RUNS:
            self._look_up()

    def _look_up(self) -> None:
        names, last_lines = self.names, self.last_lines
        if not names:
            return
        seen = self.memory.seen_before(names)
        if seen.any():
            for index in np.flatnonzero(seen).tolist():
                self._again[names[index]] = last_lines[index]
        self.names, self.last_lines = [], []

    def lines(self, keys: list[str | None], lines) -> None:
        """Rows in file order: their session ids (None: a session of its own) and line numbers."""
        names: list[str] = []
        last_lines: list[int] = []
        first_line = -1
        for key, line in zip(keys, lines, strict=True):
            if key is None:
                continue
            if names and names[-1] == key and last_lines[-1] == line - 1:
                last_lines[-1] = line
            else:
                if not names:
                    first_line = line
                names.append(key)
                last_lines.append(line)
        self.runs(names, last_lines, first_line)


def _keys_slowly(lines: list[bytes], number: int) -> tuple[list[str | None], list[int]]:
    """The session id of each line that is a JSON object (None for one without a string id), and its number."""
    keys: list[str | None] = []
    numbers: list[int] = []
    for offset, raw in enumerate(lines, start=number + 1):
        if not raw or raw.isspace():
            continue
        row = parse_line(raw[len(BOM):] if offset == 1 and raw.startswith(BOM) else raw)
        if isinstance(row, dict):
            key = row.get("session_id")
            keys.append(key if type(key) is str else None)
            numbers.append(offset)
    return keys, numbers


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
    """Sessions numbered by first appearance; rows handed on once every earlier session is complete.

    A session the first pass saw in more than one run (``repeated``: its last line) is complete
    at that line; any other is complete where its one run ends, which is known once a later run
    follows it (in the same part, or at the next part's start: a run may go on across parts).
    """

    def __init__(self, repeated: dict[str, int]):
        self.repeated = repeated
        self.open: dict[str, int] = {}  # session name -> sequence number, while rows may come
        self.first_row: dict[int, tuple[str, int, bool]] = {}  # sequence -> name, group, restart
        self.complete = bytearray()
        self.frontier = 0  # every session numbered below this is complete
        self.pending: _Rows | None = None
        self.tail: tuple[str, int] | None = None  # a one-run session the last part ended in: name, sequence

    def add(self, part: _Part) -> _Rows | None:
        count, complete = part.rows, self.complete
        if self.tail is not None and part.run_keys and part.run_keys[0] != self.tail[0]:
            complete[self.tail[1]] = 1  # its run ended with the last part
            del self.open[self.tail[0]]
            self.tail = None
        run_ends = np.append(part.run_starts[1:], count)
        # each run's first row's group and restart, as its JSON gave them (numbers as Python's)
        groups, restarts = part.groups[part.run_starts].tolist(), part.restarts[part.run_starts].tolist()
        if self.repeated.keys().isdisjoint(part.run_keys):
            run_sequences = self._one_run_each(part.run_keys, groups, restarts)
        else:
            run_sequences = self._runs(part, run_ends, groups, restarts)
        sequence = np.repeat(np.asarray(run_sequences, dtype=np.int64), run_ends - part.run_starts)
        incomplete = complete.find(0, self.frontier)
        self.frontier = len(complete) if incomplete < 0 else incomplete
        rows = part.columns(sequence)
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

    def _one_run_each(self, keys: list[str], groups: list, restarts: list) -> np.ndarray | list[int]:
        """The runs' sequence numbers when no run is of a session the first pass saw again (the
        common part): each is a new session complete where the next begins, but the first,
        which may go on the tail of the part before, and the last, the new tail."""
        if not keys:
            return []
        complete, first = self.complete, []
        if self.tail is not None:  # the first run goes on with it (else add() ended it)
            key, seq = self.tail
            if len(keys) == 1:
                return [seq]
            complete[seq] = 1
            del self.open[key]
            self.tail = None
            first, keys, groups, restarts = [seq], keys[1:], groups[1:], restarts[1:]
        base = len(complete)
        numbers = range(base, base + len(keys))
        self.first_row.update(zip(numbers, zip(keys, groups, restarts, strict=True), strict=True))
        complete.extend(b"\x01" * (len(keys) - 1) + b"\x00")
        self.open[keys[-1]] = numbers[-1]
        self.tail = (keys[-1], numbers[-1])
        sequences = np.arange(base, base + len(keys), dtype=np.int64)
        return np.concatenate([first, sequences]) if first else sequences

    def _runs(self, part: _Part, run_ends: np.ndarray, groups: list, restarts: list) -> list[int]:
        """The runs' sequence numbers, one step per run of rows of the same session."""
        open_sessions, repeated, complete, first_row = self.open, self.repeated, self.complete, self.first_row
        last_numbers = part.numbers[run_ends - 1].tolist()
        run_sequences = []
        final = len(part.run_keys) - 1
        for index, (key, last_number, group, restart) in enumerate(
                zip(part.run_keys, last_numbers, groups, restarts, strict=True)):
            end = repeated.get(key)
            # complete here: at its last line, or a one-run session whose run another follows
            done = end == last_number if end is not None else index != final
            seq = open_sessions.get(key)
            if seq is None:  # a session's first run: most sessions are whole in it, and never open
                seq = len(complete)
                first_row[seq] = (key, group, restart)
                complete.append(done)
                if not done:
                    open_sessions[key] = seq
            elif done:
                complete[seq] = 1
                del open_sessions[key]
            if not done and end is None:
                self.tail = (key, seq)
            elif self.tail is not None and index == 0:
                self.tail = None  # the session it held is done
            run_sequences.append(seq)
        return run_sequences

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
        names, groups, restarts = zip(*map(self.first_row.pop, rows.sequence[starts].tolist()), strict=True)
        # a plain block's groups are ints and its restarts bools: whole columns; any other JSON
        # value (rows read one by one) is no group and no restart
        if _types(groups) <= _INT:
            group_ids = np.asarray(groups, dtype=np.int64)
            group_ids[group_ids < 0] = -1
        else:
            group_ids = np.asarray([g if type(g) is int and g >= 0 else -1 for g in groups], dtype=np.int64)
        if _types(restarts) <= _BOOL:
            is_restart = np.asarray(restarts, dtype=bool)
        else:
            is_restart = np.asarray([r is True for r in restarts], dtype=bool)
        hash_offsets = np.zeros(rows.rows + 1, dtype=np.int64)
        np.cumsum(rows.id_counts, out=hash_offsets[1:])
        return TraceChunk(
            session_ids=list(names),
            group_ids=group_ids,
            is_restart=is_restart,
            end_reasons=np.full(len(names), EndReason.UNKNOWN, dtype=np.int8),
            row_offsets=row_offsets,
            input_length=rows.inputs,
            output_length=rows.outputs,
            delay_ms=rows.delays,
            timestamp_ms=rows.timestamps,
            hash_offsets=hash_offsets,
            hash_ids=rows.ids,
        )


class _Part:
    """Checked rows as numpy columns, with their runs of one session and each row's group and restart.

    ``groups`` and ``restarts`` hold the rows' own values (any JSON value for rows read one by
    one, so an object array), read only at a session's first row.
    """

    __slots__ = ("numbers", "run_starts", "run_keys", "groups", "restarts", "inputs", "outputs",
                 "timestamps", "delays", "id_counts", "ids")

    _COLUMNS = ("numbers", "groups", "restarts", "inputs", "outputs", "timestamps", "delays", "id_counts")

    def __init__(self, numbers, run_starts, run_keys, groups, restarts, inputs, outputs, timestamps, delays,
                 id_counts, ids):
        self.numbers, self.run_starts, self.run_keys = numbers, run_starts, run_keys
        self.groups, self.restarts = groups, restarts
        self.inputs, self.outputs, self.timestamps, self.delays = inputs, outputs, timestamps, delays
        self.id_counts, self.ids = id_counts, ids

    @property
    def rows(self) -> int:
        return int(self.numbers.shape[0])

    @staticmethod
    def of_plain(first: int, block: PlainBlock) -> _Part:
        groups = np.where(block.group_id >= 0, block.group_id, -1)
        return _Part(first + np.arange(block.rows, dtype=np.int64), block.session_starts, block.session_names,
                     groups, block.is_restart, block.input_length, block.output_length, block.timestamp,
                     block.delay, block.id_counts, block.ids)

    def columns(self, sequence: np.ndarray) -> _Rows:
        return _Rows(sequence, self.inputs, self.outputs, self.timestamps, self.delays, self.id_counts, self.ids)

    def split(self, cut: int) -> tuple[_Part, _Part]:
        """The first ``cut`` rows and the rest (a run that spans the cut is one run in each)."""
        id_cut = int(self.id_counts[:cut].sum())
        inside = int(np.searchsorted(self.run_starts, cut, side="left"))
        continued = inside == len(self.run_keys) or int(self.run_starts[inside]) != cut
        tail_from = inside - 1 if continued else inside
        tail_starts = self.run_starts[tail_from:] - cut
        if continued:  # the rest starts inside a run
            tail_starts[0] = 0
        head = _Part(self.numbers[:cut], self.run_starts[:inside], self.run_keys[:inside],
                     *(getattr(self, name)[:cut] for name in self._COLUMNS[1:]), self.ids[:id_cut])
        tail = _Part(self.numbers[cut:], tail_starts, self.run_keys[tail_from:],
                     *(getattr(self, name)[cut:] for name in self._COLUMNS[1:]), self.ids[id_cut:])
        return head, tail

    @staticmethod
    def join(parts: list[_Part]) -> _Part:
        if len(parts) == 1:
            return parts[0]
        offsets = np.cumsum([0] + [part.rows for part in parts[:-1]])
        numbers, groups, restarts, *values = (np.concatenate([getattr(part, name) for part in parts])
                                              for name in _Part._COLUMNS)
        starts: list[np.ndarray] = []
        keys: list[str] = []
        for part, offset in zip(parts, offsets, strict=True):
            part_starts, part_keys = part.run_starts + offset, part.run_keys
            if keys and part_keys and part_keys[0] == keys[-1]:  # one run across the parts
                part_starts, part_keys = part_starts[1:], part_keys[1:]
            starts.append(part_starts)
            keys += part_keys
        return _Part(numbers, np.concatenate(starts), keys, groups, restarts, *values,
                     np.concatenate([part.ids for part in parts]))


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

    def part(self) -> _Part:
        count = len(self.numbers)
        arrays = self.arrays if self.arrays is not None else self._arrays()
        keys = np.asarray(self.keys)
        run_starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
        groups = np.empty(count, dtype=object)
        groups[:] = [row.get("group_id") for row in self.rows]
        restarts = np.empty(count, dtype=object)
        restarts[:] = [row.get("is_restart") for row in self.rows]
        return _Part(
            np.asarray(self.numbers, dtype=np.int64), run_starts, [self.keys[i] for i in run_starts.tolist()],
            groups, restarts, *arrays,
            np.fromiter(map(len, self.id_lists), dtype=np.int64, count=count),
            self.ids,
        )


_INT = {int}
_BOOL = {bool}
_INT_OR_NONE = {int, type(None)}
_LIST = {list}
_STR = {str}
_NUMBER_OR_NONE = {int, float, type(None)}


def _types(column: list) -> set:
    return set(map(type, column))


_NO_IDS: list = []


def _row_batches(path: Path, batch_rows: int) -> Iterator[_Part]:
    """The file's rows, checked, in batches of ``batch_rows``; the first bad row raises its located error.

    A plain block (plain.py) comes as columns at once; other lines are parsed and checked row
    by row, in order, so the first bad row is still the one reported.
    """
    numbers: list[int] = []  # rows not yet checked
    raws: list[bytes] = []
    parts: list[_Part] = []  # rows checked, not yet handed on
    held = 0
    with open(path, "rb") as handle:
        will_read(handle)
        for block in line_blocks(handle):
            plain = plain_padded(block.padded) if block.padded is not None else None
            if plain is not None:
                block.known_count(plain.rows)
            if plain is not None and _rules_hold(plain):
                if raws:
                    parts.append(_checked_batch(path, numbers, raws).part())
                    held += len(raws)
                    numbers, raws = [], []
                parts.append(_Part.of_plain(block.first, plain))
                held += plain.rows
            else:
                block_numbers, block_raws, problems = block.batch()
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
            while held + len(raws) >= batch_rows:
                if held < batch_rows:  # the batch ends among the rows read one by one
                    need = batch_rows - held
                    parts.append(_checked_batch(path, numbers[:need], raws[:need]).part())
                    del numbers[:need], raws[:need]
                    held = batch_rows
                batch, parts, held = _cut(parts, batch_rows)
                yield batch
    if raws:
        parts.append(_checked_batch(path, numbers, raws).part())
    if parts:
        yield _Part.join(parts)


def _cut(parts: list[_Part], rows: int) -> tuple[_Part, list[_Part], int]:
    """The first ``rows`` rows of ``parts`` as one part, the parts left and their row count."""
    taken: list[_Part] = []
    room = rows
    while room:
        part = parts.pop(0)
        if part.rows > room:
            part, rest = part.split(room)
            parts.insert(0, rest)
        taken.append(part)
        room -= part.rows
    return _Part.join(taken), parts, sum(part.rows for part in parts)


def _rules_hold(block: PlainBlock) -> bool:
    """The row rules a plain block's types leave open: lengths of at least one."""
    return not ((block.input_length < 1).any() or (block.output_length < 1).any())


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
