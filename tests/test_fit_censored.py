"""Counts cut short: the product-limit estimate fit uses for calls per request."""

from __future__ import annotations

import numpy as np

from tracedsl.analysis.fit.censored import survival, uncensored_sample


def test_cut_counts_come_back_to_the_law_they_were_cut_from():
    rng = np.random.default_rng(1)
    calls = rng.geometric(0.1, 20_000)  # mean 10
    ends = rng.integers(1, 40, 20_000)  # where each request's session stops it
    seen, cut = np.minimum(calls, ends), calls > ends
    assert seen.mean() < 8.0  # counted as they are, requests look a quarter shorter
    estimated = uncensored_sample(seen, cut)
    assert estimated.size == seen.size
    assert abs(estimated.mean() - calls.mean()) < 0.3  # 9.84 against 9.97
    assert np.median(estimated) == np.median(calls)


def test_no_cut_count_leaves_the_counts_as_they_are():
    counts = np.array([3, 1, 2, 2, 5])
    assert uncensored_sample(counts, np.zeros(5, dtype=bool)) is counts


def test_the_survival_by_hand():
    # counts 1, 2 (cut), 2, 3: P(>1) = 3/4; at 2, one of three ends: 3/4 * 2/3; at 3 the last ends
    values, left = survival(np.array([1, 2, 2, 3]), np.array([False, True, False, False]))
    assert values.tolist() == [1, 2, 3]
    assert np.allclose(left, [0.75, 0.5, 0.0])


def test_what_outlives_the_largest_count_is_drawn_at_it():
    # every session ended inside its one request: all that is known is "at least"
    counts = np.array([4, 9, 9, 20])
    assert uncensored_sample(counts, np.ones(4, dtype=bool)).tolist() == [20, 20, 20, 20]
