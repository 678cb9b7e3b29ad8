"""The candidate laws of one quantity: each family's parameters estimated from the data, its level set so the engine's mean is the data's, written as text and as the IR model that text compiles to."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tracedsl import families
from tracedsl.analysis.fit.laws_text import number, whole
from tracedsl.limits import MAX_TURNS

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


@dataclass(frozen=True)
class Candidate:
    family: str
    parameters: int
    text: str
    model: object


def engine_mean(model, slot: Slot) -> float:
    law = families.law(model, "fast")
    return law.expect(lambda x: slot.engine(x, model))


def _matched(build: Callable[[float], object | None], level: float, target: float, slot: Slot) -> float | None:
    """The level (a scale, or a location) at which the engine's mean is ``target``: a fixed
    point of level x target / mean first (exact for an unbounded scale family), then bisection
    on log(level) when that does not settle."""
    def mean_at(value: float) -> float | None:
        model = build(value)
        return None if model is None else engine_mean(model, slot)

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
        words, lo, hi = self.bounds(low, high)
        arguments = {keyword: value for keyword, _text, value in shown}
        if hi is not None:
            arguments["max"] = hi
        if lo is not None and name != "pareto":
            arguments["min"] = lo
        model = _model(name, **arguments)
        if model is None:
            return None
        if name == "constant":
            text = f"constant({shown[0][1]})"
        else:
            text = f"{name}({', '.join([f'{keyword}={text}' for keyword, text, _v in shown] + words)})"
        return Candidate(name, len(shown), text, model)


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


def candidates(sample: Sample, slot: Slot) -> list[Candidate]:
    """Every family's fitted law for the sample; a family whose estimate or whose mean the
    bounds cannot reach is left out."""
    writer, exact = Writer(slot), Writer(slot, rounded=False)
    x = sample.estimate
    positive = x[x > 0]
    if not positive.size:
        positive = np.array([1e-3])
    logs = np.log(positive)
    target = sample.mean
    counts = slot.unit == "count"
    # Count laws always carry the data's range (a law of calls must not draw below 1).
    low = max(1.0, sample.low) if counts else None

    def tail_bound(model) -> float | None:
        if counts:
            return sample.high
        if model is None:
            return None
        survival = 1.0 - families.law(model, "fast").cdf(sample.high)
        return sample.high if survival > TAIL_SLACK / sample.n else None

    out: list[Candidate] = []

    def add(name: str, shown_at: Shown, level: float) -> None:
        """``shown_at(writer, level)``: the family's (keyword, text, value) at a level (a
        scale, or a location), which moves its mean."""
        high = tail_bound(_unrounded(name, shown_at(exact, level), None, None))
        matched = _matched(lambda value: _unrounded(name, shown_at(exact, value), low, high), level, target, slot)
        if matched is None:
            return
        candidate = writer.law(name, shown_at(writer, matched), low, high)
        if candidate is not None:
            out.append(candidate)

    whole_value = counts or slot.unit == "tokens"
    constant = writer.law("constant", [("value", *(writer.whole(target) if whole_value else writer.value(target)))],
                          None, None)
    if constant is not None:
        out.append(constant)

    mean = float(np.mean(x))
    add("exponential", lambda w, m: [("mean", *w.value(m))], mean)

    sigma = float(np.std(logs))
    if sigma > 0:
        spread = math.exp(sigma * sigma / 2.0)

        def lognormal(w: Writer, median: float) -> list[tuple[str, str, float]]:
            if slot.whole_lognormal:
                return [("mean", *w.whole(median * spread)), ("median", *w.whole(median))]
            return [("mean", *w.value(median * spread)), ("median", *w.value(median))]

        add("lognormal", lognormal, math.exp(float(np.mean(logs))))

    shape = _gamma_shape(positive)
    if shape < 1e5:
        add("gamma", lambda w, m: [("shape", *w.plain(shape)), ("mean", *w.value(m))], mean)

    k = _weibull_shape(positive)
    if k < 50:
        scale = float(np.mean((positive / positive.max()) ** k)) ** (1.0 / k) * float(positive.max())
        add("weibull", lambda w, s: [("shape", *w.plain(k)), ("scale", *w.value(s))], scale)

    sd = float(np.std(x))
    if sd > 0:
        add("normal", lambda w, m: [("mean", *w.value(m)), ("sd", *w.value(sd))], mean)

    # The engine floors tokens, so a uniform reaching the largest count ends one above it.
    span_high = sample.high + (1.0 if slot.unit == "tokens" else 0.0)
    if span_high > sample.low:
        end = writer.whole if counts else writer.value
        uniform = writer.law("uniform", [("min", *end(sample.low)), ("max", *end(span_high, up=True))], None, None)
        if uniform is not None:
            out.append(uniform)

    if sample.low > 0:
        # Its min is the smallest value as written: every draw of the law lies above it.
        floor = sample.low
        alpha = positive.size / max(float(np.sum(np.log(np.maximum(positive, floor) / floor))), 1e-12)
        add("pareto", lambda w, inverse: [("alpha", *w.plain(1.0 / inverse)), ("min", *w.value(floor))], 1.0 / alpha)
    return out


Shown = Callable[[Writer, float], list[tuple[str, str, float]]]


def _unrounded(name: str, shown: list[tuple[str, str, float]], low, high):
    """The model of the parameters as estimated, with the bounds as given."""
    arguments = {keyword: value for keyword, _text, value in shown}
    if high is not None:
        arguments["max"] = high
    if low is not None and name != "pareto":
        arguments["min"] = low
    return _model(name, **arguments)
