"""``fit --classes K``: the sessions clustered into K populations, each fitted as a session class.

Each file session is a point of four features, in log space and standardized: its number of
calls, its first prompt, its mean new tokens after turn 0 and its mean output, and a fifth, its
requests, when the trace says which calls open one. k-means
(Lloyd's iterations from centres at the quantiles of the first principal component, so the same
input gives the same classes) splits them; the classes are ordered by their mean first prompt
and named ``c1`` … ``cK``, and each one's values go through the same fit as the whole trace
(:func:`subset` gives its :class:`~tracedsl.analysis.fit.structure.Observed`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from tracedsl.analysis.fit.structure import Observed

ITERATIONS = 50


def cluster(observed: Observed, k: int) -> np.ndarray:
    """Each file session's class, 0 .. k-1 (classes ordered by mean first prompt)."""
    sessions = observed.num_file_sessions
    rows = observed.row_session
    turns = np.bincount(rows, minlength=sessions).astype(np.float64)
    first_row = np.flatnonzero(~observed.later)
    first = np.zeros(sessions)
    first[rows[first_row]] = observed.prompts[first_row]
    output = np.bincount(rows, weights=observed.outputs, minlength=sessions) / np.maximum(turns, 1)
    later_rows = rows[observed.later]
    growth = np.bincount(later_rows, weights=observed.new_tokens, minlength=sessions) / np.maximum(turns - 1, 1)
    features = [turns, first, growth, output]
    if observed.call_session is not None:  # the trace says which calls open a request
        features.append(np.bincount(observed.call_session, minlength=sessions).astype(np.float64))
    points = np.log1p(np.column_stack(features))
    spread = points.std(axis=0)
    points = (points - points.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    k = max(1, min(k, sessions))
    _, _, axes = np.linalg.svd(points - points.mean(axis=0), full_matrices=False)
    score = points @ axes[0]
    order = np.argsort(score, kind="stable")
    centres = points[order[((np.arange(k) + 0.5) / k * sessions).astype(np.int64)]]
    labels = np.zeros(sessions, dtype=np.int64)
    for _ in range(ITERATIONS):
        distance = ((points[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        moved = np.argmin(distance, axis=1)
        if np.array_equal(moved, labels) and _ > 0:
            break
        labels = moved
        for c in range(k):
            members = points[labels == c]
            if members.size:
                centres[c] = members.mean(axis=0)
    means = np.array([first[labels == c].mean() if (labels == c).any() else np.inf for c in range(k)])
    rank = np.empty(k, dtype=np.int64)
    rank[np.argsort(means, kind="stable")] = np.arange(k)
    return rank[labels]


def subset(observed: Observed, keep: np.ndarray) -> Observed:
    """The observed values of the file sessions ``keep`` (a bool per file session) only."""
    row = keep[observed.row_session]
    later = row[observed.later]
    primary = keep[observed.primary_session]
    opens = observed.opens_request[later] if observed.opens_request is not None else None
    calls = call_session = None
    if observed.calls is not None and observed.call_session is not None:
        kept_calls = keep[observed.call_session]
        calls, call_session = observed.calls[kept_calls], observed.call_session[kept_calls]
    first_ids = [ids for ids, kept in zip(observed.first_ids, primary, strict=False) if kept]
    return replace(
        observed, first_ids=first_ids, first_input=observed.first_input[primary], turns=observed.turns[primary],
        new_tokens=observed.new_tokens[later], outputs=observed.outputs[row], delays_ms=observed.delays_ms[later],
        history=observed.history[later], opens_request=opens, calls=calls, prompts=observed.prompts[row],
        reset_at=observed.reset_at[row], row_session=observed.row_session[row], later=observed.later[row],
        primary_session=observed.primary_session[primary], call_session=call_session,
        # a class inherits the top level's subagent statement; its calls taking results stay out
        subagents=None, answers=observed.answers[later] if observed.answers is not None else None)
