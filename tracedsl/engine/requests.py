"""Requests made of LLM calls: which rows open a user request, and what those rows draw.

With ``request { calls … message … think … }`` a session's rows are LLM calls. Turn 0 opens
request 0; request j holds ``calls`` calls (drawn from the session's "request.calls" stream at
counter j, rounded half-even, at least 1), so the calls that open requests are at the running
sums of those counts. An opening call after turn 0 appends the user's ``message`` (stream
"request.message") after the human's ``think`` wait (stream "request.think"); every other call
appends a tool result from the turn's ``new_tokens`` after the turn's ``delay`` (the tool
latency), exactly as a turn does without requests. Without ``request`` nothing here runs.

The openings are found a window at a time, like the turns they mark (sessions.py): for each
running session the next opening's turn and request index are kept, and a window of request
lengths is drawn at once (each is at least one call, so a window of W turns holds at most W
openings). Draws are counter-based, so the window size changes nothing but speed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tracedsl.engine.samplers import stream, token_counts, uniforms
from tracedsl.families import Law
from tracedsl.limits import MAX_TURNS

CALLS = stream("request.calls")
MESSAGE = stream("request.message")
THINK = stream("request.think")


@dataclass(frozen=True)
class RequestModel:
    """The request laws as the fast engine draws them (plain numbers, for the workers)."""

    calls: Law
    calls_min: int
    calls_max: int
    message: Law
    think: Law

    @classmethod
    def build(cls, request, law) -> RequestModel:
        low = getattr(request.calls, "min", None)
        high = getattr(request.calls, "max", None)
        return cls(
            law(request.calls),
            int(low) if low is not None else 1,
            int(high) if high is not None else MAX_TURNS,
            law(request.message),
            law(request.think),
        )

    def calls_at(self, keys: np.ndarray, requests: np.ndarray) -> np.ndarray:
        """The call count of request ``requests`` of each session (broadcast against ``keys``)."""
        draw = self.calls.sample(uniforms(keys, requests, CALLS))
        return np.clip(np.rint(draw), self.calls_min, self.calls_max).astype(np.int64)


class Openings:
    """Per session of a ``grow`` call: the turn of its next request-opening call, and that
    request's index. Turn 0 opens request 0, so the first later opening is request 1's."""

    def __init__(self, model: RequestModel, keys: np.ndarray):
        self.model = model
        self.next_turn = model.calls_at(keys, np.zeros(keys.shape[0], dtype=np.uint64))
        self.next_request = np.ones(keys.shape[0], dtype=np.int64)

    def window(self, active: np.ndarray, keys: np.ndarray, first_turn: int, width: int) -> np.ndarray:
        """Which candidate turns ``first_turn .. first_turn + width - 1`` of the ``active``
        sessions (``keys`` shaped (S, 1)) open a request: a bool (S, width). Moves each active
        session's next opening past the window."""
        start = self.next_turn[active]
        request = self.next_request[active]
        count = self.model.calls_at(keys, request[:, None] + np.arange(width, dtype=np.int64)[None, :])
        # positions[:, i] is the turn that request (request + i) opens
        positions = np.empty((active.size, width + 1), dtype=np.int64)
        positions[:, 0] = start
        np.cumsum(count, axis=1, out=positions[:, 1:])
        positions[:, 1:] += start[:, None]
        end = first_turn + width
        inside = positions[:, :width] < end
        opening = np.zeros((active.size, width), dtype=bool)
        rows, cols = np.nonzero(inside)
        opening[rows, positions[rows, cols] - first_turn] = True
        taken = inside.sum(axis=1)
        self.next_turn[active] = positions[np.arange(active.size), taken]
        self.next_request[active] = request + taken
        return opening


def messages(model: RequestModel, keys: np.ndarray, turns: np.ndarray) -> np.ndarray:
    """New tokens of request-opening calls (at least 1, as every row's)."""
    return token_counts(model.message.sample(uniforms(keys, turns, MESSAGE)), 1)


def thinks(model: RequestModel, keys: np.ndarray, turns: np.ndarray) -> np.ndarray:
    """The human's wait before request-opening calls, ms: the law as given (its own bounds;
    neither the turn delay's max nor its context scaling applies to a person)."""
    return model.think.sample(uniforms(keys, turns, THINK))
