"""A law that must compile in its slot: the chooser's, else an equal-mass table of the values.

The chooser (:mod:`.laws`) writes each law's text itself; fit compiles it once in a spec of
its own slot before it goes into the fitted file, and on an error falls back to an ``empirical``
table of the means of equal-count bins (its mean is the data's, exactly), saying so.
"""

from __future__ import annotations

import numpy as np

from tracedsl.analysis.fit.laws import FittedLaw
from tracedsl.diagnostics import DiagnosticError

BINS = 20
_SLOTS = {  # a spec of each slot, the law written where {law} stands
    "session": "prefix {{\n  session {law}\n}}\n",
    "new_tokens": "turn {{\n  new_tokens {law}\n}}\n",
    "output": "turn {{\n  output {law}\n}}\n",
    "delay": "turn {{\n  delay {law}\n}}\n",
    "turns": "turns {law} truncate\n",
    "calls": "request {{\n  calls {law}\n  message constant(1)\n  think constant(0ms)\n}}\n",
    "message": "request {{\n  calls constant(1)\n  message {law}\n  think constant(0ms)\n}}\n",
    "think": "request {{\n  calls constant(1)\n  message constant(1)\n  think {law}\n}}\n",
}
_UNITS = {"session": "tokens", "new_tokens": "tokens", "output": "tokens", "delay": "ms", "turns": "count",
          "calls": "count", "message": "tokens", "think": "ms", "summary": "tokens"}


def checked(law: FittedLaw, values: np.ndarray, slot: str) -> FittedLaw:
    """``law`` when its text compiles in ``slot``, else the table of ``values``."""
    from tracedsl.language import compile_source

    template = _SLOTS.get(slot, _SLOTS["output"])
    try:
        compile_source(template.format(law=law.text), f"<{slot}>")
    except DiagnosticError as error:
        first = error.diagnostics[0].message if error.diagnostics else "does not compile"
        table = equal_mass(values, _UNITS.get(slot, "tokens"))
        return FittedLaw(table, "empirical", 1.0 / BINS,
                         f"equal-mass table of {len(values):,} values (the chooser's {law.family} "
                         f"did not compile: {first})")
    return law


def equal_mass(values: np.ndarray, unit: str) -> str:
    """``empirical { … }``: the means of BINS equal-count bins of the sorted values."""
    data = np.sort(np.asarray(values, dtype=np.float64))
    data = data[np.isfinite(data)]
    if not data.size or data[0] == data[-1]:
        return f"constant({_number(data[0] if data.size else 0.0, unit)})"
    if unit == "count":
        values_, counts = np.unique(np.rint(data).astype(np.int64), return_counts=True)
        if values_.size <= 2 * BINS:  # few counts: each one with its share
            weights = _hundredths(counts)
            return "empirical { " + ", ".join(
                f"{max(v, 1)}: {w / 100:g}%" for v, w in zip(values_.tolist(), weights, strict=True) if w) + " }"
    parts = [p for p in np.array_split(data, min(BINS, data.size)) if p.size]
    cells: dict[str, int] = {}
    for part, weight in zip(parts, _hundredths(np.array([p.size for p in parts])), strict=True):
        key = _number(float(part.mean()), unit)
        cells[key] = cells.get(key, 0) + weight
    return "empirical { " + ", ".join(f"{k}: {w / 100:g}%" for k, w in cells.items() if w) + " }"


def _hundredths(counts: np.ndarray) -> list[int]:
    """Weights in hundredths of a percent adding up to 100% (largest remainders)."""
    share = counts / counts.sum() * 10_000
    whole = np.floor(share).astype(np.int64)
    for i in np.argsort(-(share - whole), kind="stable")[: 10_000 - int(whole.sum())]:
        whole[i] += 1
    return whole.tolist()


def _number(value: float, unit: str) -> str:
    return f"{round(value)}ms" if unit == "ms" else str(max(int(round(value)), 1 if unit == "count" else 0))
