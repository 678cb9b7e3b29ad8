"""Validates any Mooncake trace: strict row rules, then the cross-row rules AIPerf replay relies on.

Errors (exit 1): rows that break the row rules (``rows.py``); a row whose hash-id count is
not ceil(input_length / block_size); a hash id used at two different block sizes anywhere in
the file (replay refuses it); files that are empty or not JSONL. Warnings (exit 0, or 1
under --strict): a session's later row without ``delay``, a first row without ``timestamp``,
a session whose rows are not contiguous, a session that looks cumulative rather than
incremental, blank lines, and a key given twice in a row. The block size, when not given,
is the rule's (``blocksize.py``). A run's dataset.jsonl is cross-checked against the
sessions.jsonl beside it (``sessions.py``). One streaming pass; the per-id sizes live in numpy columns
(``blocks.py``).
"""

from __future__ import annotations

import gc
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import orjson

from tracedsl.diagnostics import Diagnostic, Severity, Span
from tracedsl.output.blocks import BlockLedger
from tracedsl.output.blocksize import (
    BlockSizeEvidence,
    BlockSizeFinding,
    fitting_rows,
    rows_fitting_in_file,
)
from tracedsl.output.lines import LineProblem, line_blocks, parse_line, parsed_lines
from tracedsl.output.names import SessionMemory
from tracedsl.output.plain import PlainBlock, plain_padded, will_read
from tracedsl.output.rows import (
    MAX_COUNT,
    check_row,
    duplicate_keys,
    hash_id_problem,
    ids_array,
    plain_row_ok,
)
from tracedsl.output.sessions import IndexChecker, index_beside, params_beside

DEFAULT_MAX_ERRORS = 50
_BATCH_ROWS = 8192


@dataclass
class ValidationReport:
    """What the validator found: counts by kind, the first findings, and what it inferred."""

    file: str
    max_errors: int = DEFAULT_MAX_ERRORS
    rows: int = 0
    sessions: int = 0
    block_size: int | None = None
    block_size_note: str = ""
    block_size_finding: BlockSizeFinding | None = None  # None when the size was given
    hash_conflicts: int = 0
    sessions_index: str | None = None  # the sessions.jsonl cross-checked, if any
    error_counts: Counter = field(default_factory=Counter)
    warning_counts: Counter = field(default_factory=Counter)
    errors: list[Diagnostic] = field(default_factory=list)
    warnings: list[Diagnostic] = field(default_factory=list)
    _latest_line: dict = field(default_factory=dict, repr=False)  # severity -> latest listed line

    @property
    def ok(self) -> bool:
        return not self.error_counts

    def passed(self, strict: bool = False) -> bool:
        return self.ok and not (strict and self.warning_counts)

    def add(self, kind: str, message: str, line: int | None, column: int | None = None,
            field_path: str | None = None, warning: bool = False, file: str | None = None) -> None:
        """Count a finding; list it if it is among the ``max_errors`` earliest lines of its severity.

        ``file``: a finding in another file than the trace (its sessions.jsonl).
        """
        counts, listed = (
            (self.warning_counts, self.warnings) if warning else (self.error_counts, self.errors)
        )
        counts[kind] += 1
        if self.max_errors <= 0:
            return
        if len(listed) >= self.max_errors:
            # Findings can arrive out of line order (some checks run in batches): keep the earliest.
            if line is None or line >= self._latest_line[warning]:
                return
            del listed[max(range(len(listed)), key=lambda i: _line_of(listed[i]))]
        listed.append(
            Diagnostic(
                code=kind,
                message=message,
                severity=Severity.WARNING if warning else Severity.ERROR,
                file=self.file if file is None else file,
                span=Span(line, column or 1) if line is not None else None,
                path=field_path,
            )
        )
        if len(listed) >= self.max_errors:
            self._latest_line[warning] = max(_line_of(d) for d in listed)

    def sort(self) -> None:
        """List the findings by line."""
        self.errors.sort(key=_line_of)
        self.warnings.sort(key=_line_of)

    def add_counted(self, kind: str, count: int, listed: list[tuple[int, str]], field_path: str) -> None:
        """Errors counted in bulk (``count`` of them), of which ``listed`` are located."""
        if count == 0:
            return
        for line, message in listed:
            self.add(kind, message, line, None, field_path)
        self.error_counts[kind] += count - len(listed)

    def to_dict(self) -> dict:
        return {
            "file": self.file,
            "valid": self.ok,
            "rows": self.rows,
            "sessions": self.sessions,
            "block_size": self.block_size,
            "block_size_note": self.block_size_note,
            "block_size_range": _range_of(self.block_size_finding),
            "hash_id_size_conflicts": self.hash_conflicts,
            "sessions_index": self.sessions_index,
            "error_counts": dict(sorted(self.error_counts.items())),
            "warning_counts": dict(sorted(self.warning_counts.items())),
            "errors": [d.to_dict() for d in self.errors],
            "warnings": [d.to_dict() for d in self.warnings],
        }


def _line_of(diagnostic: Diagnostic) -> int:
    return diagnostic.span.line if diagnostic.span else 0


def _range_of(finding: BlockSizeFinding | None) -> list | None:
    """The sizes every row allows, [low, high] (high null: no end), or null when the size was given."""
    return None if finding is None else [finding.low, finding.high]


def validate_file(path: str | Path, block_size: int | None = None,
                  max_errors: int = DEFAULT_MAX_ERRORS) -> ValidationReport:
    """Validate a Mooncake JSONL file. Raises OSError only when it cannot be opened or read."""
    path = Path(path)
    report = ValidationReport(file=str(path), max_errors=max_errors)
    checker = _Checker(report, block_size, index_beside(path))
    try:
        with open(path, "rb") as handle:
            will_read(handle)
            next_line = 1  # the line after the last non-blank one: a gap before the next is blank lines
            for block in line_blocks(handle):
                plain = plain_padded(block.padded) if block.padded is not None else None
                if plain is not None:
                    block.known_count(plain.rows)
                if plain is not None and checker.plain(block.first, plain):
                    if block.first > next_line:
                        checker.blank(next_line, block.first - 1)
                    next_line = block.first + plain.rows
                    continue
                numbers, raws, _ = block.batch()
                if not raws:
                    continue
                # The rows are fresh acyclic dicts: collecting while they are made only costs time.
                collecting = gc.isenabled()
                gc.disable()
                try:
                    next_line = _read_block(checker, numbers, raws, next_line)
                finally:
                    if collecting:
                        gc.enable()
            blank = _trailing_blank_lines(handle, after_a_row=next_line > 1)
            if blank:
                checker.blank(next_line, next_line + blank - 1)
        checker.finish(path)
    finally:
        checker.close()
    return report


def _read_block(checker: _Checker, numbers, raws: list, next_line: int) -> int:
    """Check one block of lines (see raw_line_batches); return the line after its last."""
    report = checker.report
    keys = 0  # of the block's rows, for the repeated-key test
    loads, row = orjson.loads, checker.row
    if type(numbers) is range:  # the common block: consecutive lines, each starting with "{"
        if numbers.start > next_line:
            checker.blank(next_line, numbers.start - 1)
        for number, raw in zip(numbers, raws, strict=True):
            try:
                parsed = loads(raw)
            except orjson.JSONDecodeError:
                parsed = None
            if type(parsed) is not dict:
                problem = parse_line(raw)
                report.add(problem.kind, problem.message, number, problem.column)
                continue
            keys += len(parsed)
            row(number, parsed, raw)
        next_line = numbers.stop
    else:
        for number, raw in zip(numbers, raws, strict=True):
            if number > next_line:
                checker.blank(next_line, number - 1)
            next_line = max(next_line, number + 1)
            parsed = raw if type(raw) is LineProblem else parse_line(raw)
            if type(parsed) is LineProblem:
                report.add(parsed.kind, parsed.message, number, parsed.column)
                continue
            keys += len(parsed)
            row(number, parsed, raw)
    _repeated_keys(report, numbers, raws, keys)
    return next_line


def _repeated_keys(report: ValidationReport, numbers, raws: list, keys: int) -> None:
    """Warn of keys given twice in a row: one byte count for the block, a closer look only if it is off.

    Every key in JSON text is followed by one colon, so a block holding exactly as many colons
    as its rows have keys has no key twice. Colons inside strings or nested objects make the
    count higher; then each row is looked at: as many colons as keys at every depth, or one
    ``":`` per key (a key's end, since a quote inside a string is escaped) with no key spaced
    from its colon, rules a repeat out; only a row failing both is read again with the
    standard library.
    """
    texts = [raw for raw in raws if type(raw) is bytes]
    if not texts or b"".join(texts).count(b":") == keys:
        return
    for number, raw in zip(numbers, raws, strict=True):
        if type(raw) is not bytes:
            continue
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if type(parsed) is not dict:
            continue
        count = _keys_in(parsed)
        if raw.count(b":") == count or (
            raw.count(b'":') == count and not any(spaced in raw for spaced in _SPACED_KEY)
        ):
            continue
        for key, in_row in duplicate_keys(raw):
            if in_row:
                message = (f"key {key!r} is given more than once in this row; orjson, like AIPerf's "
                           "loader, keeps the last value and drops the others without a word")
            else:
                message = f"key {key!r} is given more than once in an object inside this row; the last one is kept"
            report.add("duplicate-key", message, number, None, key if in_row else None, warning=True)


_SPACED_KEY = (b'" ', b'"\t', b'"\r')  # a key's quote, then whitespace before its colon


def _keys_in(row: dict) -> int:
    """The keys of a parsed row and of every object nested in it."""
    total = 0
    pending: list = [row]
    while pending:
        value = pending.pop()
        if type(value) is dict:
            total += len(value)
            pending.extend(v for v in value.values() if type(v) is dict or type(v) is list)
        else:
            pending.extend(v for v in value if type(v) is dict or type(v) is list)
    return total


def _trailing_blank_lines(handle, after_a_row: bool) -> int:
    """How many blank lines end the file (raw_line_batches skips them; nothing follows to show a gap)."""
    if not handle.seekable():  # a pipe: its end is gone by now
        return 0
    size = handle.seek(0, 2)
    tail = b""
    while len(tail) < size:
        step = min(size - len(tail), 1 << 16)
        handle.seek(size - len(tail) - step)
        tail = handle.read(step) + tail
        if not tail.isspace():
            break
    space = len(tail) - len(tail.rstrip())  # bytes.isspace and rstrip agree on what is blank
    run = tail[len(tail) - space:]
    if b"\n" not in run:
        return 0
    last_piece = run[run.rfind(b"\n") + 1:]
    return run.count(b"\n") - (1 if after_a_row else 0) + (1 if last_piece else 0)


class _Checker:
    """The streaming state: row rules now; hash ids and session starts in batches."""

    def __init__(self, report: ValidationReport, block_size: int | None, index: Path | None = None):
        self.report = report
        self.index: IndexChecker | None = None
        if index is not None:
            report.sessions_index = str(index)
            self.index = IndexChecker(index, partial(report.add, column=None, file=str(index)), params_beside(index))
        self.given_block_size = block_size
        self.evidence = BlockSizeEvidence()
        # Without --block-size, the ledger starts at the size the first batch suggests; if the
        # whole file suggests another, finish() reads the file's hash ids again at that size.
        self.ledger = BlockLedger(block_size, report.max_errors) if block_size is not None else None
        self.sessions = SessionMemory()
        self.anonymous_sessions = 0
        self.current: str | None = None
        self.previous: tuple[int, int | None, list] | None = None  # input, output, hash ids
        self.cumulative_pairs = 0
        self.cumulative_warned = False
        # rows waiting for their hash ids to be checked as one numpy batch of _BATCH_ROWS
        self.pending = PendingIds()
        # rows starting a named session (name, line, has timestamp, has delay), resolved in batches
        self.start_names: list[str] = []
        self.start_lines: list[int] = []
        self.start_timestamps: list[bool] = []
        self.start_delays: list[bool] = []

    def row(self, number: int, row: dict, raw: bytes) -> None:
        report = self.report
        report.rows += 1
        session_id = row.get("session_id")
        input_length = row.get("input_length")
        hash_ids = row.get("hash_ids")
        if not plain_row_ok(row):
            for problem in check_row(row, check_hash_ids=False, raw=raw):
                report.add(problem.kind, problem.message, number, None, problem.field)
            if type(session_id) is not str:
                session_id = None
        self._session(number, session_id, row, input_length, hash_ids)
        if type(hash_ids) is list and hash_ids and type(input_length) is int and 1 <= input_length <= MAX_COUNT:
            self.pending.add_row(number, input_length, hash_ids, raw)
            if self.pending.rows >= _BATCH_ROWS:
                self._flush()
        elif type(hash_ids) is list:
            problem = hash_id_problem(hash_ids, raw)
            if problem is not None:
                report.add(problem.kind, problem.message, number, None, problem.field)
        if len(self.start_names) >= _BATCH_ROWS:
            self._resolve_starts()

    def plain(self, first: int, block: PlainBlock) -> bool:
        """Check a plain block's rows as columns, exactly as ``row`` would one by one.

        False (nothing done) when a row breaks a rule or a pair of rows looks cumulative: the
        block is then read row by row, which words those findings.
        """
        inputs, outputs, counts, ids = block.input_length, block.output_length, block.id_counts, block.ids
        if (inputs < 1).any() or (outputs < 1).any():
            return False
        rows = block.rows
        continues = block.session_names[0] == self.current
        start_rows = block.session_starts[1:] if continues else block.session_starts
        names = block.session_names[1:] if continues else block.session_names
        offsets = np.zeros(rows + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        if self._looks_cumulative(block, offsets, continues):
            return False
        report = self.report
        before = report.rows
        report.rows += rows
        starting = np.zeros(rows, dtype=bool)
        starting[start_rows] = True
        untimed = np.isnan(block.delay) & np.isnan(block.timestamp) & ~starting
        with_ids = counts > 0
        filled = np.cumsum(with_ids) + self.pending.rows
        full = with_ids & (filled % _BATCH_ROWS == 0)
        lines = first + np.arange(rows, dtype=np.int64)
        if untimed.any() or (self.index is not None and not self.index.start_many(
                names, before + start_rows, first + start_rows, block.is_restart[start_rows],
                lambda k: ids[offsets[start_rows[k]] : offsets[start_rows[k] + 1]])):
            self._events(first, block, before, names, starting, untimed, full, lines, offsets)
        else:
            self._events_in_bulk(first, block, start_rows, names, full, lines, offsets)
        # where the cumulative-input test stands after the block's last row
        last_start = int(start_rows[-1]) if start_rows.shape[0] else None
        if last_start is None:
            if not self.cumulative_warned and (self.previous is not None or rows >= 2):
                self.cumulative_pairs = -(10**9)  # every pair looked incremental
        else:
            self.cumulative_warned = False
            self.cumulative_pairs = 0 if last_start == rows - 1 else -(10**9)
        self.current = block.session_names[-1]
        self.previous = (int(inputs[-1]), int(outputs[-1]), ids[offsets[-2]:].tolist())
        return True

    def _events(self, first: int, block: PlainBlock, before: int, names: list[str], starting, untimed, full,
                lines, offsets) -> None:
        """A plain block's rows one event at a time: what a clean row triggers (a session start, a
        later row without a delay nor timestamp, the batch of hash ids filling up), in row order."""
        rows, inputs, counts, ids = block.rows, block.input_length, block.id_counts, block.ids
        with_ids = counts > 0
        events = np.flatnonzero(starting | untimed | full).tolist()
        is_start, is_untimed, is_full = starting[events].tolist(), untimed[events].tolist(), full[events].tolist()
        has_timestamp = (~np.isnan(block.timestamp[events])).tolist()
        has_delay = (~np.isnan(block.delay[events])).tolist()
        restarts = block.is_restart[events].tolist()
        next_name = iter(names)
        added = 0  # rows of the block given to self.pending
        for index, row in enumerate(events):
            number = first + row
            if is_start[index]:
                name = next(next_name)
                self._start(name, number, has_timestamp[index], has_delay[index])
                if self.index is not None:  # its turn-0 ids as a view: copied only if kept
                    self.index.start(name, before + row, number, restarts[index], ids[offsets[row]:offsets[row + 1]])
            elif is_untimed[index]:
                self._timing(number, False, False, False)
            if is_full[index]:
                self._add_checked(lines, inputs, counts, ids, offsets, with_ids, added, row + 1)
                added = row + 1
                self._flush()
            if len(self.start_names) >= _BATCH_ROWS:
                self._resolve_starts()
        self._add_checked(lines, inputs, counts, ids, offsets, with_ids, added, rows)

    def _events_in_bulk(self, first: int, block: PlainBlock, start_rows, names: list[str], full, lines,
                        offsets) -> None:
        """``_events`` for a block with no untimed row whose index rows are already checked: the
        same steps in the same order, taken between the few rows where the batch of hash ids
        fills up or the session starts waiting fill theirs."""
        rows, inputs, counts, ids = block.rows, block.input_length, block.id_counts, block.ids
        with_ids = counts > 0
        numbers = (first + start_rows).tolist()
        has_timestamp = (~np.isnan(block.timestamp[start_rows])).tolist()
        has_delay = (~np.isnan(block.delay[start_rows])).tolist()
        resolving = start_rows[_BATCH_ROWS - len(self.start_names) - 1 :: _BATCH_ROWS]
        taken = 0  # of the block's session starts
        added = 0  # rows of the block given to self.pending
        for row in np.union1d(resolving, np.flatnonzero(full)).tolist():
            upto = int(np.searchsorted(start_rows, row, side="right"))
            self._starts(names[taken:upto], numbers[taken:upto], has_timestamp[taken:upto], has_delay[taken:upto])
            taken = upto
            if full[row]:
                self._add_checked(lines, inputs, counts, ids, offsets, with_ids, added, row + 1)
                added = row + 1
                self._flush()
            if len(self.start_names) >= _BATCH_ROWS:
                self._resolve_starts()
        self._starts(names[taken:], numbers[taken:], has_timestamp[taken:], has_delay[taken:])
        self._add_checked(lines, inputs, counts, ids, offsets, with_ids, added, rows)

    def _start(self, name: str, number: int, has_timestamp: bool, has_delay: bool) -> None:
        """A row starting a named session: whether it is the session's first row is known once the
        batch's names are looked up (``_resolve_starts``)."""
        self.start_names.append(name)
        self.start_lines.append(number)
        self.start_timestamps.append(has_timestamp)
        self.start_delays.append(has_delay)

    def _starts(self, names: list[str], numbers: list[int], has_timestamp: list[bool], has_delay: list[bool]) -> None:
        self.start_names += names
        self.start_lines += numbers
        self.start_timestamps += has_timestamp
        self.start_delays += has_delay

    def _add_checked(self, lines, inputs, counts, ids, offsets, with_ids, start: int, end: int) -> None:
        """Rows ``start`` to ``end`` of a plain block, those with ids, to the rows waiting."""
        if end <= start:
            return
        mine = np.flatnonzero(with_ids[start:end]) + start
        self.pending.add_checked(lines[mine], inputs[mine], counts[mine], ids[offsets[start]:offsets[end]])

    def _looks_cumulative(self, block: PlainBlock, offsets: np.ndarray, continues: bool) -> bool:
        """Whether some pair of rows of one session would count towards the cumulative-input warning."""
        inputs, outputs, counts, ids = block.input_length, block.output_length, block.id_counts, block.ids
        if continues and self.previous is not None and not self.cumulative_warned:
            prev_input, prev_output, prev_ids = self.previous
            first_ids = ids[: offsets[1]].tolist()
            grows = int(inputs[0]) >= prev_input + (prev_output if type(prev_output) is int else 0)
            whole = len(prev_ids) - 1
            if (whole >= 1 and len(first_ids) > whole and first_ids[:whole] == prev_ids[:whole]) or (
                grows and not prev_ids
            ):
                return True
        # each row against the one before, as whole shifted columns (no gathers): entry r is the
        # pair of rows r and r + 1, counted when row r + 1 continues a session
        later = np.ones(block.rows, dtype=bool)
        later[block.session_starts] = False
        later = later[1:]
        if not later.any():
            return False
        counts_before = counts[:-1]
        if (later & (counts_before == 0) & (inputs[1:] >= inputs[:-1] + outputs[:-1])).any():
            return True
        # a repeated prefix starts with the same first id: compare those few in full
        whole = counts_before - 1
        candidates = np.flatnonzero(later & (whole >= 1) & (counts[1:] > whole))
        same_first = ids[offsets[candidates + 1]] == ids[offsets[candidates]]
        for row, length in zip((candidates[same_first] + 1).tolist(), whole[candidates[same_first]].tolist(),
                               strict=True):
            start, earlier = int(offsets[row]), int(offsets[row - 1])
            if np.array_equal(ids[start : start + length], ids[earlier : earlier + length]):
                return True
        return False

    def blank(self, first: int, last: int) -> None:
        """Lines ``first`` to ``last`` hold nothing but whitespace."""
        where = f"line {first} is blank" if first == last else f"lines {first} to {last} are blank"
        self.report.add("blank-line", f"{where}; AIPerf's loader skips blank lines, but a JSONL row "
                        "is one object a line (a file joined or edited by hand?)", first, None, warning=True)
        self.report.warning_counts["blank-line"] += last - first

    def _session(self, number: int, session_id: str | None, row: dict, input_length, hash_ids) -> None:
        if session_id is None:
            self.anonymous_sessions += 1
            self.current = None
            self.previous = None
            if row.get("timestamp") is None:
                self._timing(number, True, False, False)
        elif session_id == self.current:
            if row.get("delay") is None and row.get("timestamp") is None:
                self._timing(number, False, False, False)
        else:
            self._start(session_id, number, row.get("timestamp") is not None, row.get("delay") is not None)
            if self.index is not None:
                self.index.start(session_id, self.report.rows - 1, number, row.get("is_restart") is True, hash_ids)
            self.current = session_id
            self.previous = None
            self.cumulative_pairs = 0
            self.cumulative_warned = False
        if session_id is not None:
            self._cumulative(number, row, input_length, hash_ids)

    def _timing(self, number: int, first: bool, has_timestamp: bool, has_delay: bool) -> None:
        if first and not has_timestamp:
            self.report.add(
                "missing-timestamp",
                "a session's first row has no timestamp; AIPerf then sends it at once",
                number, None, "timestamp", warning=True,
            )
        if not first and not has_delay and not has_timestamp:
            self.report.add(
                "missing-delay",
                "a session's later row has no delay (nor timestamp); AIPerf sends it the moment "
                "the previous turn returns",
                number, None, "delay", warning=True,
            )

    def _resolve_starts(self) -> None:
        if not self.start_names:
            return
        seen = self.sessions.seen_before(self.start_names)
        # only a start seen before, or one without a timestamp, has a finding
        flagged = np.flatnonzero(seen | ~np.asarray(self.start_timestamps, dtype=bool)).tolist()
        for index in flagged:
            again, number = bool(seen[index]), self.start_lines[index]
            if again:
                self.report.add(
                    "session-not-contiguous",
                    f"session {self.start_names[index]!r} continues here after other sessions' rows; replay "
                    "gathers it, but the file is probably a concatenation or a shuffle",
                    number, None, "session_id", warning=True,
                )
            self._timing(number, not again, self.start_timestamps[index], self.start_delays[index])
        self.start_names, self.start_lines, self.start_timestamps, self.start_delays = [], [], [], []

    def _cumulative(self, number: int, row: dict, input_length, hash_ids) -> None:
        # Incremental rows carry only the turn's new tokens and fresh ids. A row that holds
        # the previous row's whole context (its ids as a prefix, its input plus output) is
        # the cumulative convention, which AIPerf replay would double-count.
        if type(input_length) is not int:
            self.previous = None
            return
        output_length = row.get("output_length")
        if type(hash_ids) is not list:
            hash_ids = []
        if self.previous is not None and not self.cumulative_warned:
            prev_input, prev_output, prev_ids = self.previous
            grows = input_length >= prev_input + (prev_output if type(prev_output) is int else 0)
            whole = len(prev_ids) - 1  # the last block may be partial and get rewritten
            repeats = whole >= 1 and len(hash_ids) > whole and hash_ids[:whole] == prev_ids[:whole]
            if repeats or (grows and not prev_ids):
                self.cumulative_pairs += 1
            else:
                self.cumulative_pairs = -(10**9)  # one incremental-looking pair settles it
            if repeats or self.cumulative_pairs >= 2:
                self.cumulative_warned = True
                self.report.add(
                    "cumulative-input",
                    f"input_length {input_length} looks cumulative (the previous row's context "
                    "repeated: "
                    + ("its hash ids as a prefix" if repeats else "it grows by the previous input and output")
                    + "); Mooncake rows carry only the turn's new tokens",
                    number, None, "input_length", warning=True,
                )
        self.previous = (input_length, output_length, hash_ids)

    def _flush(self) -> None:
        """Check the first _BATCH_ROWS rows waiting (all of them at the end)."""
        if not self.pending.rows:
            return
        parts = self.pending.take(_BATCH_ROWS)
        lines = np.concatenate([part.lines for part in parts])
        counts = np.concatenate([part.counts for part in parts])
        inputs = np.concatenate([part.inputs for part in parts])
        if self.given_block_size is None:
            # every row with ids is evidence, as in blocksize.file_block_size, so report agrees
            self.evidence.add(inputs, counts)
        held, kept = [], []
        for part in parts:  # rows read one by one: their ids may not all be int64s
            ids = part.ids if part.raws is None else ids_array(part.ids)
            keep = None
            if ids is None:
                ids, keep = _checked_slowly(part.ids, part.counts, part.lines, self.report, part.raws)
            held.append(ids)
            kept.append(np.ones(part.lines.shape[0], dtype=bool) if keep is None else keep)
        ids = np.concatenate(held) if len(held) > 1 else held[0]
        keep = np.concatenate(kept)
        if not keep.all():
            counts, inputs, lines = counts[keep], inputs[keep], lines[keep]
        self._to_ledger(lines, inputs, counts, ids)

    def _to_ledger(self, lines, inputs, counts, ids) -> None:
        if self.ledger is None:
            first = self.evidence.finding(lambda size: fitting_rows(inputs, counts, size))
            self.ledger = BlockLedger(first.closest, self.report.max_errors)
        offsets = np.zeros(counts.shape[0] + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        self.ledger.add_rows(lines, inputs, offsets, ids)

    def close(self) -> None:
        """Remove the ledger's spilled segments (its findings stay); close the index."""
        if self.ledger is not None:
            self.ledger.close()
        if self.index is not None:
            self.index.close()

    def finish(self, path: Path) -> None:
        while self.pending.rows:
            self._flush()
        self._resolve_starts()
        if self.index is not None:
            self.index.finish(self.report.rows)
        report = self.report
        report.sessions = self.sessions.distinct + self.anonymous_sessions
        if report.rows == 0 and not report.error_counts:
            report.add("empty-file", "the file holds no rows", None)
        block_size = self.given_block_size
        if block_size is None:
            finding = self.evidence.finding(lambda size: rows_fitting_in_file(path, size))
            # when no size fits every row, the rows are checked at the one most of them fit
            block_size, note = finding.closest, finding.note
            report.block_size_finding = finding
        else:
            note = f"block size {block_size} (given)"
        ledger = self.ledger
        if ledger is None or ledger.block_size != block_size:
            self.close()
            ledger = self.ledger = BlockLedger(block_size, report.max_errors)
            for lines, inputs, counts, ids in _id_batches(path):
                offsets = np.zeros(counts.shape[0] + 1, dtype=np.int64)
                np.cumsum(counts, out=offsets[1:])
                ledger.add_rows(lines, inputs, offsets, ids)
        report.block_size, report.block_size_note = block_size, note
        count, listed = ledger.block_count_errors()
        report.add_counted("block-count", count, listed, "hash_ids")
        count, listed = ledger.size_conflicts()
        report.hash_conflicts = count
        report.add_counted("hash-id-size-conflict", count, listed, "hash_ids")
        # Hash ids and session starts are checked in batches, so their findings arrive late.
        report.sort()


class _IdRows:
    """Rows with hash ids, in file order: lines, inputs, ids per row (``counts``) and all the ids.

    Rows read one by one keep their ids as the parsed list and their raw text (``raws``), to be
    checked when their batch is; rows of a plain block come checked, as numpy columns.
    """

    __slots__ = ("lines", "inputs", "counts", "ids", "raws")

    def __init__(self, lines, inputs, counts, ids, raws) -> None:
        self.lines, self.inputs, self.counts, self.ids, self.raws = lines, inputs, counts, ids, raws


class PendingIds:
    """The rows waiting for their hash ids to be checked, as parts in file order."""

    def __init__(self) -> None:
        self.parts: list[_IdRows] = []
        self.rows = 0
        self._lines: list[int] = []  # the rows read one by one since the last part
        self._inputs: list[int] = []
        self._counts: list[int] = []
        self._ids: list = []
        self._raws: list[bytes] = []

    def add_row(self, line: int, input_length: int, hash_ids: list, raw: bytes) -> None:
        self._lines.append(line)
        self._inputs.append(input_length)
        self._counts.append(len(hash_ids))
        self._ids.extend(hash_ids)
        self._raws.append(raw)
        self.rows += 1

    def add_checked(self, lines: np.ndarray, inputs: np.ndarray, counts: np.ndarray, ids: np.ndarray) -> None:
        if lines.shape[0] == 0:
            return
        self._close()
        self.parts.append(_IdRows(lines, inputs, counts, ids, None))
        self.rows += int(lines.shape[0])

    def take(self, limit: int) -> list[_IdRows]:
        """The parts holding the first ``limit`` rows (all, if fewer), removed."""
        self._close()
        taken: list[_IdRows] = []
        room = limit
        while self.parts and room > 0:
            part = self.parts[0]
            count = int(part.lines.shape[0])
            if count > room:  # only checked parts are ever split: a batch ends where one is added
                cut = int(part.counts[:room].sum())
                taken.append(_IdRows(part.lines[:room], part.inputs[:room], part.counts[:room],
                                     part.ids[:cut], None))
                self.parts[0] = _IdRows(part.lines[room:], part.inputs[room:], part.counts[room:],
                                        part.ids[cut:], None)
                count = room
            else:
                taken.append(self.parts.pop(0))
            room -= count
            self.rows -= count
        return taken

    def _close(self) -> None:
        if self._lines:
            self.parts.append(_IdRows(np.asarray(self._lines, dtype=np.int64),
                                      np.asarray(self._inputs, dtype=np.int64),
                                      np.asarray(self._counts, dtype=np.int64), self._ids, self._raws))
            self._lines, self._inputs, self._counts, self._ids, self._raws = [], [], [], [], []


def _checked_slowly(batch_ids: list, counts: np.ndarray, lines: np.ndarray,
                    report: ValidationReport | None, raws: list[bytes] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ids of the rows whose ids are all integers in range; the others reported (when given)."""
    keep = np.ones(lines.shape[0], dtype=bool)
    start = 0
    good: list[int] = []
    for index, count in enumerate(counts.tolist()):
        row_ids = batch_ids[start : start + count]
        start += count
        problem = hash_id_problem(row_ids, raws[index] if raws is not None else None)
        if problem is None:
            good.extend(row_ids)
        else:
            keep[index] = False
            if report is not None:
                report.add(problem.kind, problem.message, int(lines[index]), None, problem.field)
    return np.asarray(good, dtype=np.int64), keep


def _id_batches(path: Path):
    """The file's rows with well-formed hash ids again, as (lines, inputs, counts, ids) batches.

    Read only when the block size inferred from the whole file differs from the one the
    first batch suggested (rare: a file whose rows disagree on the block size).
    """
    lines: list[int] = []
    inputs: list[int] = []
    counts: list[int] = []
    ids: list = []

    def batch():
        arrays = (np.asarray(lines, dtype=np.int64), np.asarray(inputs, dtype=np.int64),
                  np.asarray(counts, dtype=np.int64))
        held, keep = _checked_slowly(ids, arrays[2], arrays[0], None)
        return arrays[0][keep], arrays[1][keep], arrays[2][keep], held

    with open(path, "rb") as handle:
        for number, row, _ in parsed_lines(handle):
            if isinstance(row, LineProblem):
                continue
            hash_ids, input_length = row.get("hash_ids"), row.get("input_length")
            if type(hash_ids) is list and hash_ids and type(input_length) is int and 1 <= input_length <= MAX_COUNT:
                lines.append(number)
                inputs.append(input_length)
                counts.append(len(hash_ids))
                ids.extend(hash_ids)
                if len(lines) >= _BATCH_ROWS:
                    yield batch()
                    for column in (lines, inputs, counts, ids):
                        column.clear()
    if lines:
        yield batch()

