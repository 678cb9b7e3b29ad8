"""Lowers ``arrivals`` (when sessions start) and ``latency`` (how long a request is estimated to take)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tracedsl.codes import E_ARGUMENT, E_ARRIVALS_FILE, E_UNKNOWN_DISTRIBUTION
from tracedsl.diagnostics import Diagnostic, Span
from tracedsl.language import ast
from tracedsl.language.units import DURATION_UNITS, PLAIN, RATE_UNITS, TOKEN_RATE_UNITS

__all__ = ["DURATION_UNITS", "RATE_UNITS", "TOKEN_RATE_UNITS", "ArrivalLowering"]

# The processes written with arguments, and the arguments each takes.
PROCESSES = {"poisson": ("rate",), "gamma": ("rate", "cv"), "constant": ("rate",)}
LATENCY_ITEMS = {"prefill": "prefill_tokens_per_s", "decode": "decode_tokens_per_s"}


class ArrivalLowering:
    """Mixed into the lowering: needs its ``file``, ``errors``, ``spans``, ``error``, ``number``,
    ``_unique`` and the empirical files' ``_file_value``."""

    file: str
    errors: list[Diagnostic]
    spans: dict[str, Span]

    def arrivals(self, statement: ast.Statement) -> dict[str, Any] | None:
        self.spans["arrivals"] = statement.span
        if statement.value == "stages":
            stages = [self.stage(s, i) for i, s in enumerate(statement.items or ())]
            for i, stage in enumerate(stages):  # a ramp starts where the stage before it ended (or at 0)
                if stage["rate"] is None:
                    stage["rate"] = stages[i - 1]["end_rate"] if i else 0.0
            return {"kind": "stages", "stages": stages}
        dist = statement.value
        assert isinstance(dist, ast.Distribution)
        if dist.name == "file" and dist.source is not None:
            return self.arrival_file(dist)
        if dist.name not in PROCESSES or dist.source is not None or dist.entries is not None:
            self.error(E_UNKNOWN_DISTRIBUTION, f"'{dist.name}' is not an arrival process", dist.name_span,
                       hint='one of poisson(rate=2/s), gamma(rate=2/s, cv=3), constant(rate=30/min), '
                            'stages { ... }, file("times.txt")')
            return None
        self.spans["arrivals.kind"] = dist.name_span
        data: dict[str, Any] = {"kind": dist.name}
        for argument in dist.arguments:
            if argument.name not in PROCESSES[dist.name] or argument.name in data:
                self.error(E_ARGUMENT, f"{dist.name} arrivals take {', '.join(PROCESSES[dist.name])}",
                           argument.span)
                continue
            units = RATE_UNITS if argument.name == "rate" else PLAIN
            data[argument.name] = self.number(argument.value, f"arrivals.{argument.name}", units)
        return data

    def stage(self, stage: ast.Statement, index: int) -> dict[str, Any]:
        path = f"arrivals.stages.{index}"
        self.spans[path] = stage.span
        (option,) = stage.options
        assert isinstance(stage.value, ast.Number) and isinstance(option.value, ast.Number)
        duration = self.number(stage.value, f"{path}.duration_ms", DURATION_UNITS)
        rate = self.number(option.value, f"{path}.end_rate", RATE_UNITS)
        self.spans[f"{path}.rate"] = option.span
        start = rate if stage.keyword == "hold" else None
        return {"duration_ms": duration, "rate": start, "end_rate": rate}

    def arrival_file(self, dist: ast.Distribution) -> dict[str, Any]:
        """Start times, ms, one a line (a unit may be written: 1.5s); blank lines and ``#``
        comments skipped; the path is relative to the .trace file."""
        self.spans["arrivals.times_ms"] = dist.source_span
        assert dist.source is not None
        base = Path(self.file).parent if self.file.endswith(".trace") else Path.cwd()
        where = base / dist.source
        shown = str(where) if Path(dist.source).is_absolute() or self.file.startswith("<") else str(
            Path(self.file).parent / dist.source)
        try:
            text = where.read_bytes().decode("utf-8")
        except OSError as exc:
            self.error(E_ARRIVALS_FILE, f"cannot read {shown}: {(exc.strerror or type(exc).__name__).lower()}",
                       dist.source_span)
            return {}
        except UnicodeDecodeError:
            self.error(E_ARRIVALS_FILE, f"{shown} is not UTF-8 text", dist.source_span)
            return {}
        times: list[float] = []
        for number, line in enumerate(text.splitlines(), 1):
            body = line.split("#", 1)[0].strip()
            if not body:
                continue
            column = line.index(body) + 1
            value = self._file_value(body, DURATION_UNITS)  # type: ignore[attr-defined]
            problem = value if isinstance(value, str) else None
            if problem is None and times and value < times[-1]:
                problem = f"'{body}' is earlier than the line before it: the times must be sorted"
            if problem is not None:
                self.errors.append(Diagnostic(
                    E_ARRIVALS_FILE, problem, file=shown, span=Span(number, column, number, column + len(body)),
                    source=text, hint=f"{shown} holds one start time a line, in ms or with a unit (read by {self.file})"))
                return {}
            times.append(float(value))
        if not times:
            self.error(E_ARRIVALS_FILE, f"{shown} holds no times", dist.source_span,
                       hint="one start time a line; blank lines and # comments are skipped")
            return {}
        return {"kind": "file", "source": dist.source, "times_ms": times}

    def latency(self, statement: ast.Statement) -> dict[str, Any]:
        self.spans["latency"] = statement.span
        data: dict[str, Any] = {}
        for item in self._unique(statement.items or ()):  # type: ignore[attr-defined]
            field = LATENCY_ITEMS.get(item.keyword)
            if field is None:
                self.error(E_ARGUMENT, f"latency has no '{item.keyword}'", item.span,
                           hint="latency { prefill 20k/s  decode 60/s }")
                continue
            data[field] = self.number(item.value, f"latency.{field}", TOKEN_RATE_UNITS)
        return data
