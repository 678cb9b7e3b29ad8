"""The columnar form of a trace: whole sessions in file order, as numpy arrays.

Engines yield :class:`TraceChunk` objects; the JSONL writer, the validator's cross-row
checks and the reports all consume them, and the JSONL reader produces them from any
Mooncake file. Nothing downstream of an engine sees per-turn Python objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np


class EndReason(IntEnum):
    """Why a session ended: the one list every engine writes and every report reads.

    Members are declared in the reference's report order (quality.json's
    ``session_end_stats`` keys, comparison.txt's rows, the report's bars); the values are
    the codes engines store in ``TraceChunk.end_reasons`` and never change. Each member
    carries its quality.json count key, its fraction key (None for UNKNOWN, which the
    reference does not have) and a short label.
    """

    count_key: str
    fraction_key: str | None
    label: str

    def __new__(cls, code: int, count_key: str, fraction_key: str | None, label: str) -> EndReason:
        member = int.__new__(cls, code)
        member._value_ = code
        member.count_key = count_key
        member.fraction_key = fraction_key
        member.label = label
        return member

    FORCED_RETIRE = (0, "forced_retires", "retire_fraction", "forced retires")
    PROBABILISTIC_RESET = (1, "probabilistic_resets", "reset_fraction", "probabilistic resets")
    TARGET_TURN_COUNT = (3, "target_turn_completions", "target_turn_fraction", "target-turn completions")
    RESTART_SPLIT = (2, "restart_splits", "restart_split_fraction", "restart splits")
    # Not the reference's: listed in quality.json only when a trace has them.
    COMPACTED = (4, "compactions", "compaction_fraction", "compactions")
    UNKNOWN = (-1, "unknown_end_reason", None, "not recorded")  # a foreign trace: nobody recorded why

    @property
    def reference_name(self) -> str:
        """The reference's name: ``forced_retire``, ..., and ``unknown``."""
        return self.name.lower()

    @classmethod
    def of(cls, code: int) -> EndReason:
        """The member for a stored code; UNKNOWN for a code no engine writes."""
        try:
            return cls(int(code))
        except ValueError:
            return cls.UNKNOWN

    @classmethod
    def name_of(cls, code: int) -> str:
        return cls.of(code).reference_name

    @classmethod
    def recorded(cls) -> tuple[EndReason, ...]:
        """The reference's reasons, in its report order (quality.json always lists them)."""
        return tuple(reason for reason in cls if reason not in (cls.UNKNOWN, cls.COMPACTED))

    @classmethod
    def extended(cls) -> tuple[EndReason, ...]:
        """tracedsl's own reasons (listed only when a trace has them)."""
        return (cls.COMPACTED,)


@dataclass(frozen=True)
class TraceChunk:
    """A run of whole sessions, in the order they appear in the file.

    Per session (length S): ``session_ids``, ``group_ids`` (-1 when absent), ``is_restart``,
    ``end_reasons`` (EndReason values), ``row_offsets`` (length S+1; the rows of session s
    are ``row_offsets[s]:row_offsets[s+1]``, turn 0 first).

    Per row (length R): ``input_length`` (incremental, as written), ``output_length``,
    ``delay_ms`` (NaN where the row carries no delay, e.g. turn 0), ``timestamp_ms`` (NaN
    where absent), ``hash_offsets`` (length R+1) into the flat ``hash_ids``.

    ``request_input_length`` derives each request's real prompt size when replayed (all
    earlier inputs and outputs of the session plus the row's own input).
    """

    session_ids: list[str]
    group_ids: np.ndarray
    is_restart: np.ndarray
    end_reasons: np.ndarray
    row_offsets: np.ndarray
    input_length: np.ndarray
    output_length: np.ndarray
    delay_ms: np.ndarray
    timestamp_ms: np.ndarray
    hash_offsets: np.ndarray
    hash_ids: np.ndarray
    # engine-specific columns (primary_index, class_index, hash runs; docs/architecture.md)
    extras: dict = field(default_factory=dict)

    @property
    def num_sessions(self) -> int:
        return len(self.session_ids)

    @property
    def num_rows(self) -> int:
        return int(self.input_length.shape[0])

    @property
    def turns_per_session(self) -> np.ndarray:
        return np.diff(self.row_offsets)

    @property
    def is_primary(self) -> np.ndarray:
        """Per session: not a continuation of another (a restart's Session B, a compaction's)."""
        primary = ~np.asarray(self.is_restart, dtype=bool)
        link = self.extras.get("link")
        return primary if link is None else primary & (np.asarray(link) == 0)

    @property
    def turn_index(self) -> np.ndarray:
        """Each row's turn index within its session."""
        starts = np.repeat(self.row_offsets[:-1], self.turns_per_session)
        return np.arange(self.num_rows, dtype=np.int64) - starts

    @property
    def request_input_length(self) -> np.ndarray:
        """Each row's full prompt when replayed: all earlier inputs and outputs of the session plus its own input."""
        inputs = np.cumsum(self.input_length, dtype=np.int64)
        outputs = np.cumsum(self.output_length, dtype=np.int64) - self.output_length
        firsts = self.row_offsets[:-1]
        base_in = np.repeat(inputs[firsts] - self.input_length[firsts], self.turns_per_session)
        base_out = np.repeat(outputs[firsts], self.turns_per_session)
        return inputs - base_in + outputs - base_out

    def row_hash_ids(self, row: int) -> np.ndarray:
        return self.hash_ids[self.hash_offsets[row] : self.hash_offsets[row + 1]]

    def validate_shape(self) -> None:
        """Assert the columns are consistent (for tests and engine development)."""
        sessions, rows = self.num_sessions, self.num_rows
        assert self.group_ids.shape == (sessions,)
        assert self.is_restart.shape == (sessions,)
        assert self.end_reasons.shape == (sessions,)
        assert self.row_offsets.shape == (sessions + 1,) and self.row_offsets[0] == 0
        assert self.row_offsets[-1] == rows
        for column in (self.output_length, self.delay_ms, self.timestamp_ms):
            assert column.shape == (rows,)
        assert self.hash_offsets.shape == (rows + 1,) and self.hash_offsets[0] == 0
        assert self.hash_offsets[-1] == self.hash_ids.shape[0]


def empty_chunk() -> TraceChunk:
    zero = np.zeros(0, dtype=np.int64)
    return TraceChunk(
        session_ids=[],
        group_ids=zero,
        is_restart=np.zeros(0, dtype=bool),
        end_reasons=np.zeros(0, dtype=np.int8),
        row_offsets=np.zeros(1, dtype=np.int64),
        input_length=zero,
        output_length=zero,
        delay_ms=np.zeros(0, dtype=np.float64),
        timestamp_ms=np.zeros(0, dtype=np.float64),
        hash_offsets=np.zeros(1, dtype=np.int64),
        hash_ids=zero,
    )
