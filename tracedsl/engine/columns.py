"""Sessions as columns before hash ids are assigned: selecting, joining and reordering them.

A :class:`SessionColumns` is what a chunk body produces and what the stitching pass
reorders; hash ids are added last, when the final file order is known (see prefix.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# How a session is linked to the one it continues or was spawned by (sessions.jsonl's
# ``link``; the chunks' "link" extra): 0 none (a primary), then a restart's Session B, a
# compaction continuation, a subagent.
LINK_RESTART, LINK_COMPACTION, LINK_SUBAGENT = 1, 2, 3


def ragged_gather(offsets: np.ndarray, picks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For runs ``offsets[i]:offsets[i+1]`` picked in order ``picks``: (new offsets, flat positions)."""
    starts = offsets[:-1][picks]
    lengths = offsets[1:][picks] - starts
    new_offsets = np.zeros(len(picks) + 1, dtype=np.int64)
    np.cumsum(lengths, out=new_offsets[1:])
    positions = np.repeat(starts - new_offsets[:-1], lengths) + np.arange(
        new_offsets[-1], dtype=np.int64
    )
    return new_offsets, positions


def with_blocks(order: np.ndarray, block_offsets: np.ndarray, base: int):
    """Items ``order`` each followed by its block (``block_offsets[i]:block_offsets[i+1]`` of a
    second array placed after ``base`` items): (picks into the two arrays joined, where each
    item went, where each block member went, and which member of the second array it is)."""
    inner = np.diff(block_offsets)[order]
    size = 1 + inner
    item = np.cumsum(size) - size
    picks = np.empty(int(size.sum()), dtype=np.int64)
    picks[item] = order
    inner_offsets, flat = ragged_gather(block_offsets, order)
    slot = np.repeat(item + 1 - inner_offsets[:-1], inner) + np.arange(int(inner_offsets[-1]), dtype=np.int64)
    picks[slot] = base + flat
    return picks, item, slot, flat


@dataclass(frozen=True)
class SessionColumns:
    """Whole sessions; per-session columns of length S, per-row columns of length R.

    ``index`` is the primary index (a continuation carries its parent's); ``number`` is
    the session id before formatting; ``delay_ms`` is NaN on turn 0; ``class_index`` is
    each session's class (None when the run has no classes, so that path carries nothing).
    """

    index: np.ndarray
    number: np.ndarray
    group: np.ndarray
    is_restart: np.ndarray
    end_reason: np.ndarray
    row_offsets: np.ndarray
    input_length: np.ndarray
    output_length: np.ndarray
    delay_ms: np.ndarray
    class_index: np.ndarray | None = None
    # per row, with requests: whether the call opens a user request (turn 0 always does)
    opens_request: np.ndarray | None = None
    # with subagents: each session's body (0 the top level, d a depth-d subagent's; prefix.py)
    # and the key its streams were drawn from (the chunk spawns children from it)
    body: np.ndarray | None = None
    key: np.ndarray | None = None

    _SESSION_FIELDS = ("index", "number", "group", "is_restart", "end_reason")
    _ROW_FIELDS = ("input_length", "output_length", "delay_ms")
    _OPTIONAL_SESSION_FIELDS = ("class_index", "body", "key")

    @property
    def num_sessions(self) -> int:
        return int(self.index.shape[0])

    @property
    def turns(self) -> np.ndarray:
        return np.diff(self.row_offsets)

    def take(self, picks: np.ndarray) -> SessionColumns:
        """The sessions ``picks`` (indices), in that order."""
        picks = np.asarray(picks, dtype=np.int64)
        row_offsets, rows = ragged_gather(self.row_offsets, picks)
        fields = {name: getattr(self, name)[picks] for name in self._SESSION_FIELDS}
        fields.update({name: getattr(self, name)[rows] for name in self._ROW_FIELDS})
        for name in self._OPTIONAL_SESSION_FIELDS:
            if getattr(self, name) is not None:
                fields[name] = getattr(self, name)[picks]
        opens = self.opens_request[rows] if self.opens_request is not None else None
        return SessionColumns(row_offsets=row_offsets, opens_request=opens, **fields)

    @staticmethod
    def concat(parts: list[SessionColumns]) -> SessionColumns:
        if len(parts) == 1:
            return parts[0]
        fields = {
            name: np.concatenate([getattr(p, name) for p in parts])
            for name in SessionColumns._SESSION_FIELDS + SessionColumns._ROW_FIELDS
        }
        turns = np.concatenate([p.turns for p in parts])
        row_offsets = np.zeros(len(turns) + 1, dtype=np.int64)
        np.cumsum(turns, out=row_offsets[1:])
        if parts[0].class_index is not None:
            fields["class_index"] = np.concatenate([p.class_index for p in parts])
        if any(p.body is not None for p in parts):  # the top level's sessions carry none
            fields["body"] = np.concatenate([p.body if p.body is not None else np.zeros(p.num_sessions, np.int8)
                                             for p in parts])
        if all(p.key is not None for p in parts):
            fields["key"] = np.concatenate([p.key for p in parts])
        opens = None
        if any(p.opens_request is not None for p in parts):
            opens = np.concatenate([p.opens_request if p.opens_request is not None
                                    else np.zeros(p.input_length.shape[0], dtype=bool) for p in parts])
        return SessionColumns(row_offsets=row_offsets, opens_request=opens, **fields)
