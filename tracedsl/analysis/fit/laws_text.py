"""Numbers as a fitted law writes them: a few significant digits in the slot's unit, read back exactly as the compiler reads them."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np

from tracedsl.language.units import PROBABILITY_UNITS, TIME_UNITS, TOKEN_UNITS

# Significant digits of every fitted number: enough that rounding moves a mean by under 0.05%.
DIGITS = 4
# Weights are written in steps of 1e-4 percent (a mix's in hundredths), so they add up to
# 100% exactly.
WEIGHT_PLACES = 4

UNITS = ("tokens", "ms", "count")


def digits(value: float, places: int = DIGITS) -> str:
    """``value`` with ``places`` significant digits, positional (no exponent, which reads badly)."""
    return np.format_float_positional(float(value), precision=places, unique=False, fractional=False, trim="-")


def _unit_of(value: float, unit: str) -> str:
    if unit == "tokens":
        return "M" if value >= 1e6 else "k" if value >= 1e3 else ""
    if unit == "ms":
        return "h" if value >= 7_200_000 else "min" if value >= 120_000 else "s" if value >= 1000 else "ms"
    return ""


def _worth(unit: str, suffix: str) -> Decimal:
    if unit == "tokens":
        return TOKEN_UNITS[suffix]
    if unit == "ms":
        return TIME_UNITS[suffix]
    return Decimal(1)


def number(value: float, unit: str, *, plain: bool = False, up: bool = False) -> tuple[str, float]:
    """(text, the value the compiler reads from it) of a value in the slot's unit (``plain``:
    a shape parameter, no unit). ``up`` rounds up, so a bound from the data's largest value
    still holds it."""
    if plain or unit == "count":
        suffix, worth = "", Decimal(1)
    else:
        suffix = _unit_of(value, unit)
        worth = _worth(unit, suffix)
    shown = float(Decimal(repr(float(value))) / worth)
    text = digits(shown)
    if up and float(Decimal(text)) < shown:
        text = digits(_next_up(shown))
    return text + suffix, float(Decimal(text) * worth)


def _next_up(shown: float) -> float:
    """The next number of DIGITS significant digits above ``shown``."""
    step = 10.0 ** (math.floor(math.log10(abs(shown))) - DIGITS + 1) if shown else 1.0
    return (math.floor(shown / step) + 1) * step


def whole(value: float, *, up: bool = False) -> tuple[str, float]:
    """A whole number (a token count, or a bound on counts)."""
    rounded = math.ceil(value) if up else round(value)
    return str(int(rounded)), float(rounded)


def percents(shares: list[float], places: int = WEIGHT_PLACES) -> list[tuple[str, float]]:
    """Shares as percentages that add up to exactly 100%: (text, the fraction the compiler
    reads). Each is rounded to ``places`` decimals of a percent and the largest takes the
    remainder; a share too small to show is given one step, taken from the largest as well."""
    whole_steps = 100 * 10**places
    total = math.fsum(shares)
    steps = [max(int(round(share / total * whole_steps)), 1) for share in shares]
    largest = max(range(len(steps)), key=lambda index: steps[index])
    steps[largest] += whole_steps - sum(steps)
    out = []
    for step in steps:
        text = digits_exact(Decimal(step) / Decimal(10**places))
        out.append((text + "%", float(Decimal(text) * PROBABILITY_UNITS["%"])))
    return out


def digits_exact(value: Decimal) -> str:
    """A decimal without trailing zeros or exponent."""
    text = format(value.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
