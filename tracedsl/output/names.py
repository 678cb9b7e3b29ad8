"""Session names kept compactly: the engines' ``sess-`` + 12 hex digits as 48-bit integers."""

from __future__ import annotations

import numpy as np

from tracedsl.output.blocks import KeySet


class SessionMemory:
    """The session ids seen so far, kept compact: which names in a batch were seen before.

    The engines' and the reference's names (``sess-`` and 12 hex digits) are kept exactly as
    48-bit integers in sorted arrays (8 bytes a session); any other name is kept as itself in a set, as foreign traces rarely name
    sessions at all.
    """

    def __init__(self) -> None:
        self.keys = KeySet()
        self.other_names: set[str] = set()
        self.distinct = 0

    def seen_before(self, names: list[str]) -> np.ndarray:
        """For each name: was it seen earlier (before this call or earlier in ``names``)? Then remember them."""
        seen = np.zeros(len(names), dtype=bool)
        keys, ours = _engine_keys(names)
        if keys.shape[0]:
            order = np.argsort(keys, kind="stable")
            ordered = keys[order]
            again = np.zeros(ordered.shape[0], dtype=bool)
            again[1:] = ordered[1:] == ordered[:-1]
            again |= self.keys.contains(ordered)
            mine = np.flatnonzero(ours)
            seen[mine[order[again]]] = True
            self.keys.add(ordered[~again])
        if not ours.all():
            for index in np.flatnonzero(~ours).tolist():
                name = names[index]
                seen[index] = name in self.other_names
                self.other_names.add(name)
        self.distinct += int(np.count_nonzero(~seen))
        return seen

    def holds(self, names: list[str]) -> np.ndarray:
        """For each name: was it remembered already? (Remembers nothing.)"""
        held = np.zeros(len(names), dtype=bool)
        keys, ours = _engine_keys(names)
        if keys.shape[0]:
            order = np.argsort(keys, kind="stable")
            found = np.zeros(keys.shape[0], dtype=bool)
            found[order] = self.keys.contains(keys[order])
            held[np.flatnonzero(ours)] = found
        for index in np.flatnonzero(~ours).tolist():
            held[index] = names[index] in self.other_names
        return held


_HEX_VALUE = np.full(256, -1, dtype=np.int64)
_HEX_VALUE[np.frombuffer(b"0123456789", np.uint8)] = np.arange(10)
_HEX_VALUE[np.frombuffer(b"abcdef", np.uint8)] = np.arange(10, 16)
_HEX_WEIGHTS = 16 ** np.arange(11, -1, -1, dtype=np.int64)
_ENGINE_NAME_LENGTH = 17  # "sess-" and 12 lowercase hex digits


def _engine_keys(names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The 48-bit numbers of the names shaped ``sess-`` + 12 lowercase hex digits, and which those are."""
    count = len(names)
    lengths = np.fromiter(map(len, names), dtype=np.int64, count=count)
    ours = lengths == _ENGINE_NAME_LENGTH
    if not ours.any():
        return np.zeros(0, dtype=np.int64), ours
    candidates = names if ours.all() else [names[i] for i in np.flatnonzero(ours).tolist()]
    text = "".join(candidates).encode("utf-8", "replace")
    if len(text) != _ENGINE_NAME_LENGTH * len(candidates):  # some name is not plain ASCII
        ours[:] = False
        return np.zeros(0, dtype=np.int64), ours
    table = np.frombuffer(text, dtype=np.uint8).reshape(-1, _ENGINE_NAME_LENGTH)
    digits = _HEX_VALUE[table[:, 5:]]
    valid = (table[:, :5] == np.frombuffer(b"sess-", np.uint8)).all(axis=1) & (digits >= 0).all(axis=1)
    ours[np.flatnonzero(ours)[~valid]] = False
    return digits[valid] @ _HEX_WEIGHTS, ours
