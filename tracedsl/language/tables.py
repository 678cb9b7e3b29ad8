"""Lowers the distributions written as tables: an empirical's values and weights (inline or from a file), a mix's weighted laws."""

from __future__ import annotations

import re
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

from tracedsl.codes import E_ARGUMENT, E_DUPLICATE, E_EMPIRICAL_FILE, E_MIXTURE
from tracedsl.diagnostics import Diagnostic, Span
from tracedsl.families.empirical import WEIGHT_TOLERANCE
from tracedsl.language import ast
from tracedsl.language.parser import parse_number
from tracedsl.language.units import PROBABILITY_UNITS

# A value line of an empirical file: a number with an optional unit, as in the language.
_VALUE = re.compile(r"[+-]?[0-9][0-9_]*(\.[0-9][0-9_]*)?([eE][+-]?[0-9]+)?[A-Za-z%]*")
_PROBABILITY = PROBABILITY_UNITS


class TableLowering:
    """Mixed into the lowering: needs its ``file``, ``errors``, ``spans``, ``error``, ``exact``."""

    file: str
    errors: list[Diagnostic]
    spans: dict[str, Span]

    def value_table(self, dist: ast.Distribution, path: str, units: dict) -> dict[str, Any]:
        """``values`` and ``weights`` from ``{ value: weight, ... }`` or from a file of values."""
        if dist.source is not None:
            return self.value_file(dist, path, units)
        values: list[float] = []
        weights: list[Decimal] = []
        numbers: list[ast.Number] = []
        self.spans[f"{path}.values"] = self.spans[f"{path}.weights"] = dist.span
        for entry in dist.entries or ():
            if entry.name or entry.key is None or not isinstance(entry.value, ast.Number):
                self.error(
                    E_ARGUMENT,
                    f"{dist.name} lines are 'value: weight' (e.g. 4k: 30%)",
                    entry.span,
                )
                continue
            value = self.exact(entry.key, f"{path}.values", units)
            weight = self.exact(entry.value, f"{path}.weights", _PROBABILITY)
            if value is None or weight is None:
                continue
            values.append(float(value))
            weights.append(weight)
            numbers.append(entry.value)
        self.spans[f"{path}.values"] = self.spans[f"{path}.weights"] = dist.span
        if not dist.entries:
            self.error(E_ARGUMENT, f"{dist.name} needs at least one 'value: weight' line", dist.span)
        self.check_weights(weights, numbers, "the weights")
        return {"values": values, "weights": [float(w) for w in weights]}

    def law_table(self, dist: ast.Distribution, path: str, units: dict) -> dict[str, Any]:
        """``components`` from ``{ [name] weight: law, ... }``; each law takes the slot's unit."""
        components: list[dict[str, Any]] = []
        weights: list[Decimal] = []
        numbers: list[ast.Number] = []
        self.spans[f"{path}.components"] = dist.span
        names: dict[str, ast.Entry] = {}
        for index, entry in enumerate(dist.entries or ()):
            where = f"{path}.components.{index}"
            if entry.key is None or not isinstance(entry.value, ast.Distribution):
                self.error(E_ARGUMENT, f"{dist.name} lines are '[name] weight: law' (e.g. 30%: pareto(...))",
                           entry.span)
                continue
            if entry.name and entry.name in names:
                self.error(E_DUPLICATE, f"'{entry.name}' is given twice", entry.span,
                           related=[names[entry.name].span], hint="name each component once")
            names[entry.name] = entry
            self.spans[where] = entry.span
            weight = self.exact(entry.key, f"{where}.weight", _PROBABILITY)
            component: dict[str, Any] = {"weight": float(weight) if weight is not None else None,
                                         "law": self.distribution(entry.value, f"{where}.law", units)}
            if entry.name:
                component = {"name": entry.name, **component}
            components.append(component)
            if weight is not None:
                weights.append(weight)
                numbers.append(entry.key)
        if not dist.entries:
            self.error(E_ARGUMENT, f"{dist.name} needs at least one 'weight: law' line", dist.span)
        self.check_weights(weights, numbers, "the components' weights")
        return {"components": components}

    def check_weights(self, weights: list[Decimal], numbers: list[ast.Number], what: str) -> None:
        if not weights or len(weights) != len(numbers):
            return
        with localcontext() as context:
            context.prec = 100
            total = sum(weights, Decimal(0))
        if abs(total - 1) > Decimal(WEIGHT_TOLERANCE):
            self.error(
                E_MIXTURE,
                f"{what} add up to {(total * 100).normalize():f}%, not 100%",
                numbers[0].span,
                related=[n.span for n in numbers[1:]],
            )

    def value_file(self, dist: ast.Distribution, path: str, units: dict) -> dict[str, Any]:
        """One value a line, in the slot's unit (a bare number is tokens, or ms); blank lines and
        ``#`` comments are skipped. The path is relative to the .trace file."""
        self.spans[f"{path}.values"] = self.spans[f"{path}.weights"] = dist.source_span
        base = Path(self.at).parent if self.at.endswith(".trace") else Path.cwd()
        where = base / dist.source
        shown = str(where) if Path(dist.source).is_absolute() or self.at.startswith("<") else str(
            Path(self.at).parent / dist.source
        )
        try:
            text = where.read_bytes().decode("utf-8")
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            self.error(E_EMPIRICAL_FILE, f"cannot read {shown}: {reason.lower()}", dist.source_span)
            return {}
        except UnicodeDecodeError:
            self.error(E_EMPIRICAL_FILE, f"{shown} is not UTF-8 text", dist.source_span)
            return {}
        counts: dict[float, int] = {}
        for number, line in enumerate(text.splitlines(), 1):
            body = line.split("#", 1)[0].strip()
            if not body:
                continue
            column = line.index(body) + 1
            span = Span(number, column, number, column + len(body))
            value = self._file_value(body, units)
            if isinstance(value, str):
                self.errors.append(
                    Diagnostic(E_EMPIRICAL_FILE, value, file=shown, span=span, source=text,
                               hint=f"{shown} holds one value a line, e.g. 4k (read by {self.at})")
                )
                return {}
            counts[value] = counts.get(value, 0) + 1
        if not counts:
            self.error(E_EMPIRICAL_FILE, f"{shown} holds no values", dist.source_span,
                       hint="one value a line; blank lines and # comments are skipped")
            return {}
        total = sum(counts.values())
        values = sorted(counts)
        return {"values": values, "weights": [counts[v] / total for v in values]}

    def _file_value(self, body: str, units: dict) -> float | str:
        """The line's value, or what is wrong with it."""
        if not _VALUE.fullmatch(body):
            return f"'{body}' is not a number"
        number = parse_number(body)
        table = units if "" in units else {"": Decimal(1), **units}  # a bare time is in ms
        if number.unit not in table:
            return f"'{body}': the unit '{number.unit}' is not one of {', '.join(u for u in table if u)}"
        value = number.digits * table[number.unit]
        if value < 0:
            return f"'{body}' is negative: values are counts or durations"
        if not value.is_finite() or value.adjusted() > 12:
            return f"'{body}' is too large"
        return float(value)
