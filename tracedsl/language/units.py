"""The unit tables of the language's values: what one unit is worth in the IR's unit, and what
kind of value the table is for, which a unit error names. Every module takes its tables from
here, so an error about any value can say what kind it is."""

from __future__ import annotations

from decimal import Decimal


class Units(dict):
    """A unit table (unit text -> its worth in the IR's unit) with the kind of value it is for."""

    def __init__(self, kind: str, table: dict[str, Decimal]):
        super().__init__(table)
        self.kind = kind


TOKEN_UNITS = Units("a token count (units: k, M)", {"": Decimal(1), "k": Decimal(1000), "M": Decimal(1_000_000)})
TIME_UNITS = Units("a time (units: ms, s, min)", {"ms": Decimal(1), "s": Decimal(1000), "min": Decimal(60_000)})
PROBABILITY_UNITS = Units("a probability (a fraction, or a percentage with %)",
                          {"%": Decimal("0.01"), "": Decimal(1)})
PLAIN = Units("a plain number (no unit)", {"": Decimal(1)})
# Sessions per second; tokens per second; how long a stage lasts.
RATE_UNITS = Units("a rate (a number per unit of time: 2/s, 30/min)", {
    "/ms": Decimal(1000), "/s": Decimal(1), "/min": Decimal(1) / Decimal(60), "/h": Decimal(1) / Decimal(3600)})
TOKEN_RATE_UNITS = Units("tokens per second (20k/s, 60/s)",
                         {"/s": Decimal(1), "k/s": Decimal(1000), "M/s": Decimal(1_000_000)})
DURATION_UNITS = Units("a duration (units: ms, s, min, h)", {
    "ms": Decimal(1), "s": Decimal(1000), "min": Decimal(60_000), "h": Decimal(3_600_000)})
