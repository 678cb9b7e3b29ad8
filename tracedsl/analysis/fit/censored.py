"""Counts cut short: the Kaplan–Meier estimate of a count's law when some observations are only
lower bounds.

A request's calls are counted up to its session's end, so each session's last request is
censored: it would have made at least that many calls. Fitting the counts as they are makes
requests too short (and too many); the product-limit estimator uses the censored ones as what
they are, and ``uncensored_sample`` gives values whose distribution is that estimate, for the
law chooser. Mass the estimate leaves beyond the largest count (requests that ran to their
session's end every time) goes to that count: the engine's session ending cuts them there too.
"""

from __future__ import annotations

import numpy as np


def survival(counts: np.ndarray, censored: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(values, S): the distinct counts and the estimated P(count > value) after each."""
    counts = np.asarray(counts, dtype=np.int64)
    censored = np.asarray(censored, dtype=bool)
    values = np.unique(counts)
    ended = np.bincount(np.searchsorted(values, counts[~censored]), minlength=values.size)
    seen = np.bincount(np.searchsorted(values, counts), minlength=values.size)
    at_risk = np.cumsum(seen[::-1])[::-1]  # counts at least this value
    return values, np.cumprod(1.0 - ended / at_risk)


def uncensored_sample(counts: np.ndarray, censored: np.ndarray) -> np.ndarray:
    """As many values as ``counts``, at evenly spaced quantiles of the product-limit estimate."""
    counts = np.asarray(counts, dtype=np.int64)
    if counts.size == 0 or not np.asarray(censored, dtype=bool).any():
        return counts
    values, left = survival(counts, censored)
    cdf = 1.0 - left
    cdf[-1] = 1.0  # what outlives the largest count is drawn at it
    quantiles = (np.arange(counts.size) + 0.5) / counts.size
    return values[np.minimum(np.searchsorted(cdf, quantiles, side="left"), values.size - 1)]
