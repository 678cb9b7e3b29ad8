"""The validator's rules applied to TraceChunks as they are written, so `run` checks every row fast.

Row types cannot go wrong in columns, so what is checked is what can: positive lengths,
non-negative delays, a timestamp on each first row and a delay on each later one, session
ids unique across the file, non-negative hash ids, the block-count rule and one size per
hash id (the same :class:`BlockLedger` the file validator uses). Line numbers are the rows'
lines in the written file. Memory is bounded but for the session ids, kept as 48-bit
numbers (``SessionMemory``, 8 bytes a session): the ledger moves its partial ids to disk
as they pile up (into ``spill_dir``, removed by :meth:`finish` or :meth:`close`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tracedsl.output.blocks import BlockLedger
from tracedsl.output.validate import DEFAULT_MAX_ERRORS, SessionMemory, ValidationReport
from tracedsl.trace import TraceChunk


class ChunkChecker:
    def __init__(self, file: str, block_size: int, max_errors: int = DEFAULT_MAX_ERRORS,
                 spill_dir: str | Path | None = None):
        self.block_size = block_size
        self.report = ValidationReport(file=file, max_errors=max_errors)
        self.ledger = BlockLedger(block_size, max_errors, spill_dir)
        # The engines make session ids unique by construction (an invertible permutation of
        # the session numbers), but this is the check that they did: exact, not a hash.
        self.sessions = SessionMemory()

    def add(self, chunk: TraceChunk) -> None:
        report = self.report
        lines = report.rows + 1 + np.arange(chunk.num_rows, dtype=np.int64)
        first = np.zeros(chunk.num_rows, dtype=bool)
        first[chunk.row_offsets[:-1][chunk.turns_per_session > 0]] = True
        self._flag(lines, chunk.input_length < 1, "not-positive", "input_length must be >= 1", "input_length")
        self._flag(lines, chunk.output_length < 1, "not-positive", "output_length must be >= 1", "output_length")
        self._flag(lines, first & np.isnan(chunk.timestamp_ms), "missing-timestamp",
                   "a session's first row has no timestamp", "timestamp", warning=True)
        later = ~first
        self._flag(lines, later & np.isnan(chunk.delay_ms), "missing-delay",
                   "a session's later row has no delay", "delay", warning=True)
        self._flag(lines, later & (chunk.delay_ms < 0), "negative", "delay must be >= 0 ms", "delay")
        self._flag(lines, first & (chunk.timestamp_ms < 0), "negative", "timestamp must be >= 0 ms", "timestamp")
        again = self.sessions.seen_before(chunk.session_ids)
        for index in np.flatnonzero(again).tolist():
            start = int(chunk.row_offsets[index])
            report.add("session-not-contiguous", f"session {chunk.session_ids[index]!r} appears twice",
                       int(lines[start]) if start < chunk.num_rows else None, None, "session_id",
                       warning=True)
        counts = np.diff(chunk.hash_offsets)
        hash_ids = chunk.hash_ids.astype(np.int64, copy=False)
        if hash_ids.size and hash_ids.min() < 0:
            row_of_id = np.repeat(np.arange(chunk.num_rows), counts)
            negative = np.zeros(chunk.num_rows, dtype=bool)
            negative[row_of_id[hash_ids < 0]] = True
            self._flag(lines, negative, "out-of-range", "hash ids must be >= 0", "hash_ids")
        with_ids = counts > 0
        if with_ids.all():
            offsets = chunk.hash_offsets
            inputs = chunk.input_length
        else:
            offsets = np.zeros(int(with_ids.sum()) + 1, dtype=np.int64)
            np.cumsum(counts[with_ids], out=offsets[1:])
            lines, inputs = lines[with_ids], chunk.input_length[with_ids]
        self.ledger.add_rows(lines, inputs.astype(np.int64, copy=False), offsets.astype(np.int64, copy=False),
                             hash_ids)
        report.rows += chunk.num_rows

    def _flag(self, lines, bad, kind, message, field, warning=False) -> None:
        if not bad.any():
            return
        for line in lines[bad][: self.report.max_errors].tolist():
            self.report.add(kind, message, line, None, field, warning=warning)
        extra = int(bad.sum()) - min(int(bad.sum()), self.report.max_errors)
        (self.report.warning_counts if warning else self.report.error_counts)[kind] += extra

    def close(self) -> None:
        self.ledger.close()

    def finish(self) -> ValidationReport:
        self.close()
        report = self.report
        report.sessions = self.sessions.distinct
        if report.rows == 0:
            report.add("empty-file", "the file holds no rows", None)
        report.block_size = self.block_size
        report.block_size_note = f"block size {self.block_size} (the spec's)"
        count, listed = self.ledger.block_count_errors()
        report.add_counted("block-count", count, listed, "hash_ids")
        count, listed = self.ledger.size_conflicts()
        report.hash_conflicts = count
        report.add_counted("hash-id-size-conflict", count, listed, "hash_ids")
        report.sort()
        return report
