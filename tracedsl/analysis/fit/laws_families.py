"""The candidate laws of one quantity: each family's parameters estimated from the data, its level set so the engine's mean is the data's, written as text and as the IR model that text compiles to."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tracedsl import families
from tracedsl.analysis.fit.laws_text import number, whole
from tracedsl.families import constant as constant_family
from tracedsl.families import empirical as empirical_family
from tracedsl.families import exponential as exponential_family
from tracedsl.families import gamma as gamma_family
from tracedsl.families import lognormal as lognormal_family
from tracedsl.families import mix as mix_family
from tracedsl.families import normal as normal_family
from tracedsl.families import pareto as pareto_family
from tracedsl.families import uniform as uniform_family
from tracedsl.families import weibull as weibull_family
from tracedsl.limits import MAX_TURNS

# Each family by its own module's name for it (no other module spells a family's name).
CONSTANT, EMPIRICAL, EXPONENTIAL, GAMMA, LOGNORMAL, MIX, NORMAL, PARETO, UNIFORM, WEIBULL = (
    module.FAMILY.name for module in (constant_family, empirical_family, exponential_family, gamma_family,
                                      lognormal_family, mix_family, normal_family, pareto_family,
                                      uniform_family, weibull_family))

# A bound from the data's largest value is written when the fitted law puts more than this
# many times 1/n beyond it: data drawn from the law itself exceed that about once in e^10.
TAIL_SLACK = 10.0
# The mean is matched to this relative error before the numbers are rounded for the text.
MEAN_RTOL = 2e-4


@dataclass(frozen=True)
class Slot:
    """How the engine turns a law's draw into the value a trace holds."""

    unit: str  # "tokens" | "ms" | "count"
    floor: int = 1  # tokens: the smallest count the engine writes (30 for outputs)
    whole_lognormal: bool = False  # count laws for `turns`: a lognormal's mean and median whole

    def engine(self, draws: np.ndarray, model) -> np.ndarray:
        if self.unit == "tokens":
            return np.maximum(np.floor(draws), self.floor)
        if self.unit == "count":
            low = getattr(model, "min", None)
            high = getattr(model, "max", None)
            return np.clip(np.rint(draws), low if low is not None else 1, high if high is not None else MAX_TURNS)
        return draws


@dataclass(frozen=True)
class Sample:
    """What the estimators see: the scored subsample (sorted, in the slot's values), and
    figures of the whole input."""

    values: np.ndarray  # sorted subsample as the trace holds them
    estimate: np.ndarray  # the same, as continuous draws (tokens: +0.5 undoes the floor)
    n: int  # values in the whole input
    mean: float
    low: float
    high: float
    below: float = 0.0  # tokens: the share of the values under the engine's floor (raised to it)


@dataclass(frozen=True)
class Candidate:
    family: str
    parameters: int
    text: str
    model: object
    parts: tuple = ()  # a mix's (name, share, law) components, so an enclosing mix can take them in


# The engine's mean, for matching, by quadrature over the uniforms: midpoints of the body up
# to 1 - 1e-3, then each decade of 1 - u down to 1e-15 (a heavy tail still counts), coarser
# than the families' own (a tenth of their nodes: the search calls it hundreds of times).
_BODY = 2000
_TAIL = 24


@functools.cache
def _nodes() -> tuple[np.ndarray, np.ndarray]:
    edge = 1e-3
    u = [(np.arange(_BODY) + 0.5) / _BODY * (1.0 - edge)]
    weights = [np.full(_BODY, (1.0 - edge) / _BODY)]
    for decade in range(3, 15):
        upper, lower = 10.0**-decade, 10.0 ** -(decade + 1)
        step = (upper - lower) / _TAIL
        u.append(1.0 - (upper - (np.arange(_TAIL) + 0.5) * step))
        weights.append(np.full(_TAIL, step))
    weights = np.concatenate(weights)
    return np.concatenate(u), weights / weights.sum()


def engine_mean(model, slot: Slot) -> float:
    law = families.law(model, "fast")
    if families.family_of(model).table is not None:  # a mix draws through a hash: its own expect
        return law.expect(lambda x: slot.engine(x, model))
    u, weights = _nodes()
    return float(np.sum(slot.engine(law.sample(u), model) * weights))


def _matched(build: Callable[[float], object | None], level: float, target: float, slot: Slot) -> float | None:
    """The level (a scale, or a location) at which the engine's mean is ``target``: a fixed
    point of level x target / mean first (exact for an unbounded scale family), then bisection
    on log(level) when that does not settle."""
    def mean_at(value: float) -> float | None:
        model = build(value)
        return None if model is None else engine_mean(model, slot)

    if target <= 0.0:
        return None  # only a constant 0 has that mean
    for _ in range(8):
        mean = mean_at(level)
        if mean is None or not mean > 0 or not math.isfinite(mean):
            return None
        if abs(mean / target - 1.0) <= MEAN_RTOL:
            return level
        level *= target / mean
    low, high = level, level
    for _ in range(60):
        mean_low, mean_high = mean_at(low), mean_at(high)
        if mean_low is None or mean_high is None:
            return None
        if mean_low <= target <= mean_high:
            break
        low, high = (low / 2, high) if mean_low > target else (low, high * 2)
    else:
        return None
    for _ in range(60):
        middle = math.sqrt(low * high)
        mean = mean_at(middle)
        if mean is None:
            return None
        if abs(mean / target - 1.0) <= MEAN_RTOL:
            return middle
        low, high = (middle, high) if mean < target else (low, middle)
    return math.sqrt(low * high)


def _model(name: str, **arguments):
    try:
        return families.get(name).model(**{key: value for key, value in arguments.items() if value is not None})
    except ValueError:  # pydantic's ValidationError is one: parameters the family refuses
        return None


class Writer:
    """Writes a family's numbers in the slot's unit and builds the model the text compiles to."""

    def __init__(self, slot: Slot, rounded: bool = True):
        self.slot = slot
        self.rounded = rounded  # False: the numbers as estimated, for matching the mean

    def value(self, value: float, *, up: bool = False) -> tuple[str, float]:
        return number(value, self.slot.unit, up=up) if self.rounded else (repr(value), value)

    def plain(self, value: float) -> tuple[str, float]:
        return number(value, self.slot.unit, plain=True) if self.rounded else (repr(value), value)

    def whole(self, value: float, *, up: bool = False) -> tuple[str, float]:
        return whole(value, up=up) if self.rounded else (repr(value), value)

    def bounds(self, low: float | None, high: float | None) -> tuple[list[str], float | None, float | None]:
        words, lo, hi = [], None, None
        if low is not None:
            text, lo = whole(low) if self.slot.unit == "count" else self.value(low)
            words.append(f"min={text}")
        if high is not None:
            text, hi = whole(high, up=True) if self.slot.unit == "count" else self.value(high, up=True)
            words.append(f"max={text}")
        return words, lo, hi

    def law(self, name: str, shown: list[tuple[str, str, float]], low, high) -> Candidate | None:
        """``shown``: (keyword, text, value) of the family's own parameters."""
        words, lo, hi = self.bounds(None if name == PARETO else low, high)  # a pareto's min is its own
        arguments = {keyword: value for keyword, _text, value in shown}
        if hi is not None:
            arguments["max"] = hi
        if lo is not None and name != PARETO:
            arguments["min"] = lo
        model = _model(name, **arguments)
        if model is None:
            return None
        if name == CONSTANT:
            text = f"{name}({shown[0][1]})"
        else:
            text = f"{name}({', '.join([f'{keyword}={text}' for keyword, text, _v in shown] + words)})"
        # Every number written counts, bounds too: a uniform is simpler than an exponential
        # held between the same two bounds (which a count law always has).
        return Candidate(name, len(shown) + len(words), text, model)


def _gamma_shape(x: np.ndarray) -> float:
    """Maximum likelihood shape: Minka's start, then Newton on log k - digamma(k) = s."""
    from scipy import special  # heavy: only when a gamma is tried

    s = math.log(float(np.mean(x))) - float(np.mean(np.log(x)))
    if not s > 1e-12:
        return 1e6
    k = (3.0 - s + math.sqrt((s - 3.0) ** 2 + 24.0 * s)) / (12.0 * s)
    for _ in range(20):
        step = (math.log(k) - float(special.digamma(k)) - s) / (1.0 / k - float(special.polygamma(1, k)))
        k = max(k - step, k / 10)
        if abs(step) < 1e-10 * k:
            break
    return k


def _weibull_shape(x: np.ndarray) -> float:
    """Maximum likelihood shape: the root of sum(x^k log x)/sum(x^k) - 1/k = mean(log x), by
    bisection on log k (x scaled by its geometric mean, so x^k stays finite)."""
    logs = np.log(x) - float(np.mean(np.log(x)))

    def excess(k: float) -> float:
        weights = np.exp(k * (logs - logs.max()))
        return float(np.sum(weights * logs) / np.sum(weights)) - 1.0 / k

    low, high = 0.02, 50.0
    if excess(high) < 0:
        return high
    for _ in range(60):
        middle = math.sqrt(low * high)
        low, high = (middle, high) if excess(middle) < 0 else (low, middle)
    return math.sqrt(low * high)


# The law's side of the KS distance: its draws at this many evenly spaced uniforms.
GRID = 1 << 16
# A shape is searched for (see refine) when the estimate misses the data by more than this...
REFINE_ABOVE = 0.01
# ...with this many evaluations of a golden-section search over log(shape) in [1/4, 4] times
# the estimate, each scored on a coarser grid.
_REFINE_STEPS = 12
# A search still above this KS after this many steps stops: no shape of the family fits.
GIVE_UP = 0.1
_GIVE_UP_AFTER = 4
_REFINE_GRID = 1 << 12


def engine_draws(model, slot: Slot, grid: int = GRID) -> np.ndarray:
    """The law's draws at evenly spaced uniforms, as the engine writes them, sorted."""
    u = (np.arange(grid, dtype=np.float64) + 0.5) / grid
    return np.sort(slot.engine(families.law(model, "fast").sample(u), model))


def ks_distance(sorted_a: np.ndarray, sorted_b: np.ndarray) -> float:
    """The two-sample KS statistic of two sorted samples (exact with ties: both step CDFs at every jump)."""
    points = np.concatenate([sorted_a, sorted_b])
    cdf_a = np.searchsorted(sorted_a, points, side="right") / sorted_a.size
    cdf_b = np.searchsorted(sorted_b, points, side="right") / sorted_b.size
    return float(np.max(np.abs(cdf_a - cdf_b)))


Shown = Callable[["Writer", float, float], list[tuple[str, str, float]]]


@dataclass(frozen=True)
class Proposal:
    """One family's estimate: its (keyword, text, value) at a level (a scale or location, which
    moves its mean) and a shape (None for a family with none to search)."""

    name: str
    shown: Shown
    level: float
    shape: float | None


class Fitter:
    """Turns a family's estimate into the candidate law: the tail bound, the level that keeps
    the mean, the rounded text; and searches a shape when the estimate misses."""

    def __init__(self, sample: Sample, slot: Slot, within: tuple[float | None, float | None]):
        self.sample, self.slot, self.within = sample, slot, within
        self.writer, self.exact = Writer(slot), Writer(slot, rounded=False)
        self.counts = slot.unit == "count"
        # Count laws always carry the data's range (a law of calls must not draw below 1).
        self.low = max(1.0, sample.low) if self.counts else within[0]

    def tail_bound(self, model) -> float | None:
        if self.counts:
            return self.sample.high
        if self.within[1] is not None:
            return self.within[1]
        if model is None:
            return None
        survival = 1.0 - families.law(model, "fast").cdf(self.sample.high)
        return self.sample.high if survival > TAIL_SLACK / self.sample.n else None

    def candidate(self, proposal: Proposal, shape: float | None) -> Candidate | None:
        name, shown = proposal.name, proposal.shown
        high = self.tail_bound(_unrounded(name, shown(self.exact, proposal.level, shape), None, None))
        matched = _matched(lambda value: _unrounded(name, shown(self.exact, value, shape), self.low, high),
                           proposal.level, self.sample.mean, self.slot)
        if matched is None:
            return None
        return self.writer.law(name, shown(self.writer, matched, shape), self.low, high)

    def ks(self, candidate: Candidate | None, grid: int = GRID) -> float:
        if candidate is None:
            return math.inf
        return ks_distance(self.sample.values, engine_draws(candidate.model, self.slot, grid))

    def refine(self, proposal: Proposal) -> Candidate | None:
        """The shape whose mean-matched law is nearest the data in KS: a golden-section search
        on log(shape), for data the maximum-likelihood estimate misreads (whole counts piled on
        a bound, values cut at a bound)."""
        ratio = (math.sqrt(5.0) - 1.0) / 2.0
        low, high = math.log(proposal.shape / 4.0), math.log(proposal.shape * 4.0)

        def loss(log_shape: float) -> float:
            return self.ks(self.candidate(proposal, math.exp(log_shape)), _REFINE_GRID)

        a, b = high - ratio * (high - low), low + ratio * (high - low)
        loss_a, loss_b = loss(a), loss(b)
        for step in range(_REFINE_STEPS):
            if step == _GIVE_UP_AFTER and min(loss_a, loss_b) > GIVE_UP:
                return None  # heading nowhere near a fit: not worth the remaining steps
            if loss_a <= loss_b:
                high, b, loss_b = b, a, loss_a
                a = high - ratio * (high - low)
                loss_a = loss(a)
            else:
                low, a, loss_a = a, b, loss_b
                b = low + ratio * (high - low)
                loss_b = loss(b)
        return self.candidate(proposal, math.exp(a if loss_a <= loss_b else b))


def proposals(sample: Sample, slot: Slot, within: tuple[float | None, float | None]) -> list[Proposal]:
    """Each family's maximum-likelihood estimate (the mean's own for the exponential)."""
    x = sample.estimate
    positive = x[x > 0]
    if not positive.size:
        positive = np.array([1e-3])
    logs = np.log(positive)
    mean = float(np.mean(x))
    out = [Proposal(EXPONENTIAL, lambda w, m, _s: [("mean", *w.value(m))], mean, None)]

    sigma = float(np.std(logs))
    if sigma > 0:
        def lognormal(w: Writer, median: float, sd: float) -> list[tuple[str, str, float]]:
            spread = math.exp(sd * sd / 2.0)
            if slot.whole_lognormal:
                return [("mean", *w.whole(median * spread)), ("median", *w.whole(median))]
            return [("mean", *w.value(median * spread)), ("median", *w.value(median))]

        out.append(Proposal(LOGNORMAL, lognormal, math.exp(float(np.mean(logs))), sigma))

    shape = _gamma_shape(positive)
    if shape < 1e5:
        out.append(Proposal(GAMMA, lambda w, m, k: [("shape", *w.plain(k)), ("mean", *w.value(m))], mean, shape))

    k = _weibull_shape(positive)
    if k < 50:
        scale = float(np.mean((positive / positive.max()) ** k)) ** (1.0 / k) * float(positive.max())
        out.append(Proposal(WEIBULL, lambda w, c, k: [("shape", *w.plain(k)), ("scale", *w.value(c))], scale, k))

    sd = float(np.std(x))
    if sd > 0:
        out.append(Proposal(NORMAL, lambda w, m, d: [("mean", *w.value(m)), ("sd", *w.value(d))], mean, sd))

    if sample.low > 0:
        # Its min is the smallest value as written: every draw of the law lies above it.
        floor = max(sample.low, within[0] or 0.0)
        alpha = positive.size / max(float(np.sum(np.log(np.maximum(positive, floor) / floor))), 1e-12)
        out.append(Proposal(PARETO, lambda w, inverse, _s: [("alpha", *w.plain(1.0 / inverse)),
                                                              ("min", *w.value(floor))], 1.0 / alpha, None))
    return out


# Of the families with a shape, this many (the nearest by their estimate's KS) are searched.
_REFINED = 4


def candidates(sample: Sample, slot: Slot, within: tuple[float | None, float | None] = (None, None)) -> list[Candidate]:
    """Every family's fitted law for the sample; a family whose estimate or whose mean the
    bounds cannot reach is left out. ``within``: bounds every law must carry (one population
    of a delay split at a cut)."""
    fitter = Fitter(sample, slot, within)
    writer = fitter.writer
    out: list[Candidate] = []
    whole_value = fitter.counts or slot.unit == "tokens"
    target = sample.mean
    constant = writer.law(CONSTANT, [("value", *(writer.whole(target) if whole_value else writer.value(target)))],
                          None, None)
    if constant is not None:
        out.append(constant)

    # The engine floors tokens, so a uniform reaching the largest count ends one above it.
    span_high = sample.high + (1.0 if slot.unit == "tokens" else 0.0)
    if span_high > sample.low:
        end = writer.whole if fitter.counts else writer.value
        uniform = writer.law(UNIFORM, [("min", *end(sample.low)), ("max", *end(span_high, up=True))], None, None)
        if uniform is not None:
            out.append(uniform)

    estimated = []
    for proposal in proposals(sample, slot, within):
        candidate = fitter.candidate(proposal, proposal.shape)
        if candidate is not None:
            estimated.append((fitter.ks(candidate), proposal, candidate))
    estimated.sort(key=lambda item: item[0])
    searched = [item for item in estimated if item[1].shape is not None][:_REFINED]
    for ks, proposal, candidate in estimated:
        if ks > REFINE_ABOVE and any(proposal is item[1] for item in searched):
            better = fitter.refine(proposal)
            if better is not None and fitter.ks(better) < ks:
                candidate = better
        out.append(candidate)
    return out


def _unrounded(name: str, shown: list[tuple[str, str, float]], low, high):
    """The model of the parameters as estimated, with the bounds as given."""
    arguments = {keyword: value for keyword, _text, value in shown}
    if high is not None:
        arguments["max"] = high
    if low is not None and name != PARETO:
        arguments["min"] = low
    return _model(name, **arguments)
