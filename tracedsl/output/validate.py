"""Validates any Mooncake trace: strict row rules, then the cross-row rules AIPerf replay relies on.

Errors (exit 1): rows that break the row rules (``rows.py``); a row whose hash-id count is
not ceil(input_length / block_size); a hash id used at two different block sizes anywhere in
the file (replay refuses it); files that are empty or not JSONL. Warnings (exit 0, or 1
under --strict): a session's later row without ``delay``, a first row without ``timestamp``,
a session whose rows are not contiguous, and a session that looks cumulative rather than
incremental. One streaming pass; the per-id sizes live in numpy columns (``blocks.py``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tracedsl.diagnostics import Diagnostic, Severity, Span
from tracedsl.output.blocks import BlockLedger
from tracedsl.output.lines import LineProblem, parsed_lines
from tracedsl.output.rows import check_row, hash_id_problem

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
    hash_conflicts: int = 0
    error_counts: Counter = field(default_factory=Counter)
    warning_counts: Counter = field(default_factory=Counter)
    errors: list[Diagnostic] = field(default_factory=list)
    warnings: list[Diagnostic] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.error_counts

    def passed(self, strict: bool = False) -> bool:
        return self.ok and not (strict and self.warning_counts)

    def add(self, kind: str, message: str, line: int | None, column: int | None = None,
            field_path: str | None = None, warning: bool = False) -> None:
        counts, listed = (
            (self.warning_counts, self.warnings) if warning else (self.error_counts, self.errors)
        )
        counts[kind] += 1
        if len(listed) < self.max_errors:
            listed.append(
                Diagnostic(
                    code=kind,
                    message=message,
                    severity=Severity.WARNING if warning else Severity.ERROR,
                    file=self.file,
                    span=Span(line, column or 1) if line is not None else None,
                    path=field_path,
                )
            )

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
            "hash_id_size_conflicts": self.hash_conflicts,
            "error_counts": dict(sorted(self.error_counts.items())),
            "warning_counts": dict(sorted(self.warning_counts.items())),
            "errors": [d.to_dict() for d in self.errors],
            "warnings": [d.to_dict() for d in self.warnings],
        }


def validate_file(path: str | Path, block_size: int | None = None,
                  max_errors: int = DEFAULT_MAX_ERRORS) -> ValidationReport:
    """Validate a Mooncake JSONL file. Raises OSError only when it cannot be opened or read."""
    path = Path(path)
    report = ValidationReport(file=str(path), max_errors=max_errors)
    checker = _Checker(report)
    with open(path, "rb") as handle:
        for number, parsed, raw in parsed_lines(handle):
            if isinstance(parsed, LineProblem):
                report.add(parsed.kind, parsed.message, number, parsed.column)
                continue
            checker.row(number, parsed, raw)
    checker.finish(block_size)
    return report


_PLAIN_KEYS = frozenset(
    ("session_id", "input_length", "output_length", "hash_ids", "timestamp", "delay", "group_id", "is_restart")
)


def _plain_row_ok(row: dict, session_id, input_length, hash_ids) -> bool:
    """The common row (lengths, ids, timestamp or delay) passing every row rule: checked fast."""
    output_length = row.get("output_length")
    timestamp = row.get("timestamp")
    delay = row.get("delay")
    return (
        type(input_length) is int and input_length >= 1
        and (output_length is None or (type(output_length) is int and output_length >= 1))
        and (hash_ids is None or type(hash_ids) is list)
        and (session_id is None or type(session_id) is str)
        and (timestamp is None or ((type(timestamp) is float or type(timestamp) is int) and timestamp >= 0))
        and (delay is None or ((type(delay) is float or type(delay) is int) and delay >= 0))
        and row.keys() <= _PLAIN_KEYS
    )


class _Checker:
    """The streaming state: row rules now, hash ids in batches, sessions as they come."""

    def __init__(self, report: ValidationReport):
        self.report = report
        self.ledger = BlockLedger()
        self.seen_sessions: set[str] = set()
        self.anonymous_sessions = 0
        self.current: str | None = None
        self.previous: tuple[int, int | None, list] | None = None  # input, output, hash ids
        self.cumulative_pairs = 0
        self.cumulative_warned = False
        # rows waiting for their hash ids to be checked as one numpy batch
        self.batch_lines: list[int] = []
        self.batch_inputs: list[int] = []
        self.batch_counts: list[int] = []
        self.batch_ids: list = []
        self.batch_suspect: list[bool] = []

    def row(self, number: int, row: dict, raw: bytes) -> None:
        report = self.report
        report.rows += 1
        session_id = row.get("session_id")
        input_length = row.get("input_length")
        hash_ids = row.get("hash_ids")
        if not _plain_row_ok(row, session_id, input_length, hash_ids):
            for problem in check_row(row, check_hash_ids=False):
                report.add(problem.kind, problem.message, number, None, problem.field)
            if type(session_id) is not str:
                session_id = None
        self._session(number, session_id, row)
        if type(hash_ids) is list and hash_ids and type(input_length) is int and input_length >= 1:
            self.batch_lines.append(number)
            self.batch_inputs.append(input_length)
            self.batch_counts.append(len(hash_ids))
            self.batch_ids.extend(hash_ids)
            # true/false anywhere in the row could be a boolean among the ids (numpy reads them as 1/0)
            self.batch_suspect.append(b"true" in raw or b"false" in raw)
            if len(self.batch_lines) >= _BATCH_ROWS:
                self._flush()
        elif type(hash_ids) is list:
            problem = hash_id_problem(hash_ids)
            if problem is not None:
                report.add(problem.kind, problem.message, number, None, problem.field)

    def _session(self, number: int, session_id: str | None, row: dict) -> None:
        report = self.report
        if session_id is None:
            self.anonymous_sessions += 1
            first = True
            self.current = None
            self.previous = None
        elif session_id == self.current:
            first = False
        else:
            first = session_id not in self.seen_sessions
            if not first:
                report.add(
                    "session-not-contiguous",
                    f"session {session_id!r} continues here after other sessions' rows; replay "
                    "gathers it, but the file is probably a concatenation or a shuffle",
                    number, None, "session_id", warning=True,
                )
            self.seen_sessions.add(session_id)
            self.current = session_id
            self.previous = None
            self.cumulative_pairs = 0
            self.cumulative_warned = False
        if first and row.get("timestamp") is None:
            report.add(
                "missing-timestamp",
                "a session's first row has no timestamp; AIPerf then sends it at once",
                number, None, "timestamp", warning=True,
            )
        if not first and row.get("delay") is None and row.get("timestamp") is None:
            report.add(
                "missing-delay",
                "a session's later row has no delay (nor timestamp); AIPerf sends it the moment "
                "the previous turn returns",
                number, None, "delay", warning=True,
            )
        if session_id is not None:
            self._cumulative(number, row)

    def _cumulative(self, number: int, row: dict) -> None:
        # Incremental rows carry only the turn's new tokens and fresh ids. A row that holds
        # the previous row's whole context (its ids as a prefix, its input plus output) is
        # the cumulative convention, which AIPerf replay would double-count.
        input_length, output_length = row.get("input_length"), row.get("output_length")
        hash_ids = row.get("hash_ids") if type(row.get("hash_ids")) is list else []
        if type(input_length) is not int:
            self.previous = None
            return
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
        if not self.batch_lines:
            return
        lines = np.asarray(self.batch_lines, dtype=np.int64)
        counts = np.asarray(self.batch_counts, dtype=np.int64)
        inputs = np.asarray(self.batch_inputs, dtype=np.int64)
        ids = None
        if not any(self.batch_suspect):
            try:
                ids = np.asarray(self.batch_ids)
            except (ValueError, OverflowError, TypeError):
                ids = None
            if ids is not None and (ids.dtype != np.int64 or (ids.size and ids.min() < 0)):
                ids = None
        keep = np.ones(lines.shape[0], dtype=bool)
        if ids is None:
            ids, keep = self._checked_slowly(lines, counts)
        offsets = np.zeros(counts.shape[0] + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        if not keep.all():
            # the slow check already dropped the ids of the rows it rejected
            counts, inputs, lines = counts[keep], inputs[keep], lines[keep]
            offsets = np.zeros(counts.shape[0] + 1, dtype=np.int64)
            np.cumsum(counts, out=offsets[1:])
        self.ledger.add_rows(lines, inputs, offsets, ids)
        for name in ("batch_lines", "batch_inputs", "batch_counts", "batch_ids", "batch_suspect"):
            getattr(self, name).clear()

    def _checked_slowly(self, lines: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        keep = np.ones(lines.shape[0], dtype=bool)
        start = 0
        good: list[int] = []
        for index, count in enumerate(counts.tolist()):
            row_ids = self.batch_ids[start : start + count]
            start += count
            problem = hash_id_problem(row_ids)
            if problem is None:
                good.extend(row_ids)
            else:
                keep[index] = False
                self.report.add(problem.kind, problem.message, int(lines[index]), None, problem.field)
        return np.asarray(good, dtype=np.int64), keep

    def finish(self, block_size: int | None) -> None:
        self._flush()
        report = self.report
        report.sessions = len(self.seen_sessions) + self.anonymous_sessions
        if report.rows == 0 and not report.error_counts:
            report.add("empty-file", "the file holds no rows", None)
        if block_size is None:
            block_size, note = self.ledger.infer_block_size()
        else:
            note = f"block size {block_size} (given)"
        report.block_size, report.block_size_note = block_size, note
        limit = report.max_errors
        count, listed = self.ledger.block_count_errors(block_size, limit)
        report.add_counted("block-count", count, listed, "hash_ids")
        count, listed = self.ledger.size_conflicts(block_size, limit)
        report.hash_conflicts = count
        report.add_counted("hash-id-size-conflict", count, listed, "hash_ids")
        # Hash ids are checked in batches, so their errors arrive late: list by line.
        report.errors.sort(key=lambda d: d.span.line if d.span else 0)
