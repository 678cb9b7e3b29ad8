"""Choosing a law: the `.trace` expression whose draws, as the engine makes them, resemble measured values of one quantity.

``fit_law`` tries every family (laws_families), scores each by the KS distance between the
data and the law as the fast engine samples it (its bounds, its rounding to whole tokens or
counts), keeps those within the threshold whose mean is the data's, and takes the simplest
within a whisker of the best; when none is, an ``empirical`` table of the data's quantiles.
``fit_delay`` adds the delay's structure (one law, or two populations of gaps as a ``mix``;
with request-opening flags, the think time and the tool latency apart), ``fit_count`` the
laws of counts (turns, calls per request). docs/fit-laws.md says why each rule is what it is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

import tracedsl.ir  # noqa: F401 - binds the mix family's union of component laws
from tracedsl import families
from tracedsl.analysis.fit.laws_families import (
    CONSTANT,
    EMPIRICAL,
    LOGNORMAL,
    MIX,
    Candidate,
    Sample,
    Slot,
    candidates,
    engine_draws,
    engine_mean,
    ks_distance,
)
from tracedsl.analysis.fit.laws_mixture import split as mixture_split
from tracedsl.analysis.fit.laws_text import UNITS, number, percents, whole
from tracedsl.limits import MAX_VALUE

__all__ = [
    "KS_THRESHOLD", "MEAN_TOLERANCE", "PARSIMONY", "SUBSAMPLE", "DelaySplit", "FittedLaw",
    "fit_count", "fit_delay", "fit_law", "ks_distance",
]

# A family fits when its KS distance is at most this, or within the sampling noise of a
# sample this small (1.36 / sqrt(n), the 5% critical value), whichever is larger.
KS_THRESHOLD = 0.05
_NOISE = 1.36
# Of the families that fit, the one with the fewest parameters among those within this of
# the lowest KS (so exponential data come back as exponential, not as a gamma of shape 1.01).
PARSIMONY = 0.005
# A fitting law's mean (as the engine draws it) is within this of the data's.
MEAN_TOLERANCE = 0.02
# Values scored (and estimated from) at most: a deterministic draw of that many beyond it.
SUBSAMPLE = 50_000
_SUBSAMPLE_SEED = 14
# The empirical table's cumulative levels: 26 steps of 3.5%, then finer ones in the tail.
_TABLE_LEVELS = tuple(k * 0.035 for k in range(27)) + (0.94, 0.96, 0.98, 0.99, 0.999, 1.0)
_TABLE_LIMIT = len(_TABLE_LEVELS) - 1
# Delays: an atom at 0 ms of at least this share is its own component, constant(0ms).
ZERO_SHARE = 0.005


@dataclass(frozen=True)
class DelaySplit:
    """A delay split by the kind of call it comes before, for ``request { think … }`` and ``turn { delay … }``."""

    think: FittedLaw  # before a request-opening call: the human's wait
    tool: FittedLaw  # before a tool-result call: the tool's latency
    think_share: float  # the share of delays that open a request


@dataclass(frozen=True)
class FittedLaw:
    text: str  # a language expression: "lognormal(mean=6k, median=4k, max=30k)", "mix {...}", "empirical {...}"
    family: str
    ks: float  # KS distance between the law as the engine samples it and the data
    comment: str  # one line for the .trace: the family, KS, n, the runner-up
    n: int = 0
    mean: float = math.nan  # the law's mean as the engine draws it
    data_mean: float = math.nan
    model: object = field(default=None, compare=False, repr=False)  # the IR the text compiles to
    split: DelaySplit | None = None


def _prepare(values, unit: str) -> np.ndarray:
    if unit not in UNITS:
        raise ValueError(f"unknown unit {unit!r}; one of {', '.join(UNITS)}")
    data = np.asarray(values, dtype=np.float64).ravel()
    data = data[np.isfinite(data)]
    if not data.size:
        raise ValueError("no finite values to fit")
    # Every slot holds a count or a duration, at most the largest value a law may take.
    return np.clip(data, 1.0 if unit == "count" else 0.0, MAX_VALUE)


def _sample(data: np.ndarray, slot: Slot) -> Sample:
    if data.size > SUBSAMPLE:
        chosen = data[np.random.default_rng(_SUBSAMPLE_SEED).integers(0, data.size, SUBSAMPLE)]
    else:
        chosen = data
    chosen = np.sort(chosen)
    below = 0.0
    if slot.unit == "tokens":
        # No law makes the engine write fewer tokens than its floor: the laws are compared
        # with the data as the engine would write them (the comment says how many that moves).
        below = float(np.mean(chosen < slot.floor))
        chosen = np.maximum(chosen, slot.floor)
    estimate = chosen + 0.5 if slot.unit == "tokens" else chosen
    low = max(float(data.min()), slot.floor) if slot.unit == "tokens" else float(data.min())
    return Sample(chosen, estimate, int(data.size), float(np.mean(data)), low, float(data.max()), below)


@dataclass(frozen=True)
class _Scored:
    candidate: Candidate
    ks: float
    mean: float


def _score(candidate: Candidate, sample: Sample, slot: Slot) -> _Scored:
    return _Scored(candidate, ks_distance(sample.values, engine_draws(candidate.model, slot)),
                   engine_mean(candidate.model, slot))


def mean_error(mean: float, target: float) -> float:
    """|mean / target - 1|; a target of 0 is met by 0 alone."""
    if target == 0.0:
        return 0.0 if mean == 0.0 else math.inf
    return abs(mean / target - 1.0)


def threshold(n: int) -> float:
    return max(KS_THRESHOLD, _NOISE / math.sqrt(n))


def _fits(scored: _Scored, sample: Sample, limit: float) -> bool:
    return scored.ks <= limit and mean_error(scored.mean, sample.mean) <= MEAN_TOLERANCE


def _scale_note(sample: Sample) -> str:
    scored = sample.values.size
    note = f"n={sample.n:,}" + (f", KS on {scored:,} drawn" if scored < sample.n else "")
    return note + (f", {sample.below:.1%} below the engine's floor" if sample.below else "")


def _fitted(scored: _Scored, sample: Sample, comment: str) -> FittedLaw:
    return FittedLaw(scored.candidate.text, scored.candidate.family, scored.ks, comment, sample.n,
                     scored.mean, sample.mean, scored.candidate.model)


def _choose(data: np.ndarray, sample: Sample, slot: Slot, within=(None, None)) -> FittedLaw:
    scored = sorted((_score(c, sample, slot) for c in candidates(sample, slot, within)), key=lambda s: s.ks)
    limit = threshold(sample.values.size)
    fitting = [s for s in scored if _fits(s, sample, limit)]
    if fitting:
        best = fitting[0].ks
        chosen = min((s for s in fitting if s.ks <= best + PARSIMONY), key=lambda s: (s.candidate.parameters, s.ks))
        others = [s for s in scored if s.candidate.family != chosen.candidate.family]
        runner = f"; {others[0].candidate.family} {others[0].ks:.3f}" if others else ""
        return _fitted(chosen, sample, f"# {chosen.candidate.family} (KS {chosen.ks:.3f}, {_scale_note(sample)}{runner})")
    table = _score(_table(data, sample, slot), sample, slot)
    nearest = f" ({scored[0].candidate.family} {scored[0].ks:.3f})" if scored else ""
    return _fitted(table, sample, f"# empirical: no family within KS {limit:.3f}{nearest}; "
                                  f"table KS {table.ks:.3f}, {_scale_note(sample)}")


def _table(data: np.ndarray, sample: Sample, slot: Slot) -> Candidate:
    """At most 32 entries: the distinct values when there are that few, else the mean of each
    quantile bin (so the table's mean is the data's) with its share."""
    distinct = np.unique(sample.values)
    if distinct.size <= _TABLE_LIMIT:
        values, counts = np.unique(data, return_counts=True)
    if distinct.size > _TABLE_LIMIT or values.size > _TABLE_LIMIT:
        cuts = sorted({int(round(level * data.size)) for level in _TABLE_LEVELS})
        inner = [cut for cut in cuts if 0 < cut < data.size]
        ordered = np.partition(data, inner) if inner else data.copy()
        starts = np.array([0, *inner])
        counts = np.diff(np.append(starts, data.size))
        values = np.add.reduceat(ordered, starts) / counts
        if data.size >= 1000:
            # Every level then has a cut of its own: each bin's share as its levels say (3.5%,
            # not 3.500212%), which its size misses by under one value.
            counts = np.diff(np.array(_TABLE_LEVELS))
    entries: dict[float, tuple[str, float]] = {}
    for value, count in zip(values, counts, strict=True):
        text, read = whole(value) if slot.unit != "ms" else number(value, "ms")
        if slot.unit == "tokens":
            text, read = number(read, "tokens")
        kept = entries.get(read)
        entries[read] = (text, (kept[1] if kept else 0.0) + float(count))
    ordered_entries = sorted(entries.items())
    weights = percents([share for _read, (_text, share) in ordered_entries])
    text = "empirical { " + ", ".join(
        f"{shown}: {weight}" for (_read, (shown, _share)), (weight, _w) in zip(ordered_entries, weights, strict=True)
    ) + " }"
    model = families.get(EMPIRICAL).model(values=[read for read, _ in ordered_entries],
                                            weights=[fraction for _weight, fraction in weights])
    return Candidate(EMPIRICAL, len(ordered_entries), text, model)


def fit_law(values, *, unit: str, name: str) -> FittedLaw:
    """The law of one quantity (``unit``: "tokens", "ms" or "count"). ``name`` is the slot's:
    "output" gets the engine's 30-token floor on outputs."""
    data = _prepare(values, unit)
    floor = 30 if unit == "tokens" and name == "output" else 1
    slot = Slot(unit, floor=floor, whole_lognormal=unit == "count")
    return _choose(data, _sample(data, slot), slot)


def _one_delay(data: np.ndarray) -> FittedLaw:
    return _choose(data, _sample(data, _DELAY), _DELAY)


def fit_count(values, *, slot: str = "turns") -> FittedLaw:
    """The law of a count (turns per session, calls per request): bounded by the data's range,
    rounded half-even as the engine rounds it. For ``turns`` a lognormal's mean and median
    are whole numbers, as the language requires there; ``calls`` takes any."""
    if slot not in ("turns", "calls"):
        raise ValueError(f"unknown count slot {slot!r}; one of turns, calls")
    data = np.rint(_prepare(values, "count"))
    count_slot = Slot("count", whole_lognormal=slot == "turns")
    return _choose(data, _sample(data, count_slot), count_slot)


_DELAY = Slot("ms")


def fit_delay(values_ms, opens_request: Sequence[bool] | np.ndarray | None = None) -> FittedLaw:
    """The delay law: one law, or a two-component ``mix`` when the log-gaps are clearly two
    populations (laws_mixture). With ``opens_request`` (one flag per delay), the result's
    ``split`` holds the think time and the tool latency fitted apart."""
    data = _prepare(values_ms, "ms")
    fitted = _delay(data)
    if opens_request is None:
        return fitted
    flags = np.asarray(opens_request, dtype=bool).ravel()
    raw = np.asarray(values_ms, dtype=np.float64).ravel()
    if flags.size != raw.size:
        raise ValueError(f"{raw.size} delays but {flags.size} opens_request flags")
    finite = np.isfinite(raw)
    flags, raw = flags[finite], np.maximum(raw[finite], 0.0)
    if not flags.any() or flags.all():
        return fitted
    think, tool = _delay(raw[flags]), _delay(raw[~flags])
    return replace(fitted, split=DelaySplit(think, tool, float(flags.mean())))


def _mix(parts: list[tuple[str, float, FittedLaw | Candidate]]) -> Candidate:
    """``mix { name P%: law, … }`` of (name, share, law) with shares that add up to 100%."""
    weights = percents([share for _name, share, _law in parts], places=2)
    text = "mix { " + ", ".join(
        f"{name} {weight}: {law.text}" for (name, _share, law), (weight, _f) in zip(parts, weights, strict=True)
    ) + " }"
    components = [{"name": name, "weight": fraction, "law": law.model}
                  for (name, _share, law), (_weight, fraction) in zip(parts, weights, strict=True)]
    return Candidate(MIX, sum(2 for _ in parts), text, families.get(MIX).model(components=components), tuple(parts))


def _zero_delay() -> Candidate:
    return Candidate(CONSTANT, 1, f"{CONSTANT}(0ms)", families.get(CONSTANT).model(value=0.0))


def _delay(data: np.ndarray) -> FittedLaw:
    zero = float(np.mean(data == 0))
    if zero < ZERO_SHARE:
        return _gaps(data)[0]
    sample = _sample(data, _DELAY)
    if zero == 1.0:
        scored = _score(_zero_delay(), sample, _DELAY)
        return _fitted(scored, sample, f"# constant (every delay 0 ms, {_scale_note(sample)})")
    rest, parts = _gaps(data[data > 0])
    # Two populations beside the zeros are three components of one mix, not a mix in a mix.
    inside = [(name, (1.0 - zero) * share, law) for name, share, law in parts] or [("rest", 1.0 - zero, rest)]
    scored = _score(_mix([("zero", zero, _zero_delay()), *inside]), sample, _DELAY)
    return _fitted(scored, sample, f"# {zero:.1%} of delays 0 ms, the rest {rest.comment[2:]}; "
                                   f"mix KS {scored.ks:.3f}, {_scale_note(sample)}")


def _gaps(data: np.ndarray) -> tuple[FittedLaw, tuple]:
    """Positive gaps (a few zeros at most): one law, or two populations when they clearly are
    (with the mix's components)."""
    single = _one_delay(data)
    sample = _sample(data, _DELAY)
    positive = sample.values[sample.values > 0]
    found = mixture_split(np.log(positive)) if positive.size else None
    if found is None or not found.two:
        note = (f"; one population (D {found.separation:.2f}, medians x{found.median_ratio:.2f})"
                if found is not None else "")
        return replace(single, comment=single.comment + note), ()
    _text, cut = number(math.exp(found.threshold), "ms")
    lower, upper = data[data <= cut], data[data > cut]
    share = lower.size / data.size
    # Each population on its side of the cut, bounded there: the mix then follows the data on
    # both sides, however much the two overlap.
    options = [_mix([("short", share, _choose(lower, _sample(lower, _DELAY), _DELAY, (None, cut))),
                     ("long", 1.0 - share, _choose(upper, _sample(upper, _DELAY), _DELAY, (cut, None)))])]
    options.append(_lognormal_pair(found, sample))
    scored = [_score(option, sample, _DELAY) for option in options if option is not None]
    scored = sorted((s for s in scored if mean_error(s.mean, sample.mean) <= MEAN_TOLERANCE), key=lambda s: s.ks)
    # The mix wins when it fits better than the one law, or when it fits and the one law is
    # the fallback table (a law reads better, and fitting is the test the table failed).
    fits = bool(scored) and scored[0].ks <= threshold(sample.values.size)
    if not scored or not (scored[0].ks < single.ks or (fits and single.family == EMPIRICAL)):
        return replace(single, comment=single.comment + f"; two populations (D {found.separation:.2f}) fit no better"), ()
    best = scored[0]
    comment = (f"# mix of 2 populations (log-gap mixture D {found.separation:.2f}, BIC gain "
               f"{found.bic_gain:,.0f}; KS {best.ks:.3f}, {_scale_note(sample)}; one law: {single.family} {single.ks:.3f})")
    return _fitted(best, sample, comment), best.candidate.parts


def _lognormal_pair(found, sample: Sample) -> Candidate | None:
    """The mixture's own two lognormals, both medians scaled by one factor so the engine's mean
    is the data's."""
    factor = 1.0
    for _ in range(8):
        pair = _pair(found, factor, sample.high)
        if pair is None:
            return None
        mean = engine_mean(pair.model, _DELAY)
        if mean_error(mean, sample.mean) <= 2e-4:
            break
        factor *= sample.mean / mean
    return _pair(found, factor, sample.high, rounded=True)


def _pair(found, factor: float, high: float, rounded: bool = False) -> Candidate | None:
    parts = []
    for name, weight, mu, sd in zip(("short", "long"), found.weights, found.means, found.sds, strict=True):
        median = math.exp(mu) * factor
        mean = median * math.exp(sd * sd / 2.0)
        words, arguments = [], {}
        for keyword, value in (("mean", mean), ("median", median)):
            text, read = number(value, "ms") if rounded else (repr(value), value)
            words.append(f"{keyword}={text}")
            arguments[keyword] = read
        if name == "long":
            text, read = number(high, "ms", up=True) if rounded else (repr(high), high)
            words.append(f"max={text}")
            arguments["max"] = read
        try:
            model = families.get(LOGNORMAL).model(**arguments)
        except ValueError:
            return None
        parts.append((name, weight, Candidate(LOGNORMAL, 2, f"{LOGNORMAL}({', '.join(words)})", model)))
    try:
        return _mix(parts)
    except ValueError:
        return None
