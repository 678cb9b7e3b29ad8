"""Lowers the syntax tree to the IR: units, defaults, duplicates, and located semantic errors."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

from tracedsl import families
from tracedsl.codes import (
    E_ARGUMENT,
    E_DUPLICATE,
    E_INVALID,
    E_MIXTURE,
    E_NUMBER,
    E_UNIT,
    E_UNKNOWN_DISTRIBUTION,
    W_CONSTANT,
    W_NOT_AIPERF,
)
from tracedsl.diagnostics import Diagnostic, DiagnosticError, Severity, Span
from tracedsl.families import SLOT
from tracedsl.ir import REFERENCE_COMPONENTS, Lognormal, Workload
from tracedsl.language import ast
from tracedsl.language.arrivals import ArrivalLowering
from tracedsl.language.classes import ClassLowering, body_message, class_of_path
from tracedsl.language.parser import NUMBER_TEXT, parse, parse_number
from tracedsl.language.reuse import attach_sources, resolve
from tracedsl.language.tables import TableLowering
from tracedsl.language.units import PLAIN, PROBABILITY_UNITS, TIME_UNITS, TOKEN_UNITS, Units
from tracedsl.language.validate import (
    FieldProblem,
    aiperf_issues,
    did_you_mean,
    validate_params,
    warnings_for,
)

# Units each kind of value takes, and what one unit is worth in the IR's unit (units.py).
DISTRIBUTIONS = families.names()  # the registry's; kept under this name for importers
# ``turns lognormal(...)`` is the reference's, given by whole numbers only; any other family is
# a law of plain numbers under ``turns.law``.
TURNS_FAMILY = families.family_of(Lognormal).name
TURNS_ARGUMENTS = ("mean", "median", "min", "max")
_AIPERF_HINT = "spec.json's generation_params will not load in AIPerf, and --engine aiperf refuses it"
_MAX_EXPONENT = 30  # beyond 1e30 a number is a typo, and huge exponents are slow to expand


def compile_text(text: str, file: str = "<input>") -> tuple[Workload, list[Diagnostic]]:
    """Compile .trace text to a Workload and its warnings; errors raise DiagnosticError.

    Includes and lets are resolved first (language/reuse.py); a diagnostic pointing into an
    included file carries that file's text.
    """
    spec = parse(text, file)
    try:
        resolved = resolve(spec, file)
    except DiagnosticError as error:
        raise DiagnosticError(attach_sources(error.diagnostics, {file: text})) from None
    sources = {file: text, **resolved.sources}
    try:
        workload, warnings = lower(resolved.spec, file)
    except DiagnosticError as error:
        raise DiagnosticError(attach_sources(resolved.noted(error.diagnostics), sources)) from None
    return workload, attach_sources(resolved.noted(warnings), sources)


def lower(spec: ast.Spec, file: str = "<input>") -> tuple[Workload, list[Diagnostic]]:
    lowering = _Lowering(file)
    data, name = lowering.spec(spec)
    if lowering.errors:
        # a class's body re-lowers the top-level statements it inherits: each error once
        raise DiagnosticError(list(dict.fromkeys(lowering.errors)))
    params, problems = validate_params(data)
    if problems:
        raise DiagnosticError(lowering.located(problems, Severity.ERROR, E_INVALID))
    found = warnings_for(params) + [
        FieldProblem(issue.paths, issue.message, _AIPERF_HINT, code=W_NOT_AIPERF) for issue in aiperf_issues(params)
    ]
    warnings = lowering.located(found, Severity.WARNING, W_CONSTANT)
    default_name = Path(file).stem if file.endswith(".trace") else "default"
    return Workload(name=name or default_name, params=params), warnings


def convert(text: str, units: Units, whole: bool = False) -> tuple[int | float | None, Diagnostic | None]:
    """A number written as in a .trace file (``2k``, ``1.5s``, ``70%``), in the IR's unit, by
    the rules of a field taking ``units``: the value, or None and the problem."""
    lowering = _Lowering("--set")
    if not NUMBER_TEXT.fullmatch(text):
        hint = f"a value such as 2k, 1.5s or 70% ({units.kind})"
        return None, Diagnostic(E_NUMBER, f"'{text}' is not a number", file="--set", hint=hint)
    number = parse_number(text)
    value = lowering.integer(number, "", units) if whole else lowering.number(number, "", units)
    return value, (lowering.errors[0] if lowering.errors else None)


class _Lowering(TableLowering, ArrivalLowering, ClassLowering):
    """Walks the statements, building the reference-shaped dict and a map from field path to span."""

    def __init__(self, file: str):
        self.file = file
        self.at = file  # the file the statement being lowered came from (an include's, or file)
        self.scope = ""  # the field path a class's body lies under: "classes.N.params."
        self.class_sources: list = []
        self.errors: list[Diagnostic] = []
        self.spans = _Spans(self)

    # Statements -------------------------------------------------------------------------

    def spec(self, spec: ast.Spec) -> tuple[dict[str, Any], str | None]:
        top = [s for s in spec.statements if s.keyword != "class"]
        data, name = self.statements(top)
        classes = [s for s in spec.statements if s.keyword == "class"]
        if classes:
            data["classes"] = self.classes(top, classes)
        return data, name

    def statements(self, statements) -> tuple[dict[str, Any], str | None]:
        """The reference-shaped dict of a list of statements (the top level's, or a class's body)."""
        data: dict[str, Any] = {}
        name = None
        for statement in self._unique(statements):
            self.at = statement.file or self.file
            word = statement.keyword
            if word == "workload":
                name = statement.value
                if not name:
                    self.error(E_INVALID, "the workload name is empty", statement.span)
            elif word == "context":
                data["max_prompt_tokens"] = self.integer(
                    statement.value, "max_prompt_tokens", TOKEN_UNITS
                )
            elif word == "block":
                data["block_size"] = self.integer(statement.value, "block_size", TOKEN_UNITS)
            elif word == "prefix":
                self.spans["cache"] = statement.span
                data["cache"] = self.prefix(statement.items or ())
            elif word == "turn":
                self.turn(statement.items or (), data)
            elif word == "turns":
                self.spans["turns"] = statement.span
                data["turns"] = self.turns(statement)
            elif word == "reset":
                self.spans["reset"] = statement.span
                data["reset"] = self.reset(statement)
            elif word == "restart":
                self.restart(statement, data)
            elif word == "arrivals":
                data["arrivals"] = self.arrivals(statement)
            elif word == "latency":
                data["latency"] = self.latency(statement)
        return data, name

    def prefix(self, items) -> dict[str, Any]:
        cache: dict[str, Any] = {}
        for item in self._unique(items):
            self.at = item.file or self.file
            if item.keyword == "global":
                cache["layer1_tokens"] = self.integer(
                    item.value, "cache.layer1_tokens", TOKEN_UNITS
                )
            elif item.keyword == "groups":
                self.spans["cache.layer1_5_groups"] = item.span
                groups = {
                    "num_groups": self.integer(
                        item.value, "cache.layer1_5_groups.num_groups", PLAIN
                    )
                }
                for option in item.options:
                    if option.keyword == "of":
                        cache["layer1_5_tokens"] = self.integer(
                            option.value, "cache.layer1_5_tokens", TOKEN_UNITS
                        )
                    else:
                        groups["zipf_alpha"] = self.number(
                            option.value, "cache.layer1_5_groups.zipf_alpha", PLAIN
                        )
                cache["layer1_5_groups"] = groups
            elif item.keyword == "session":
                cache["layer2"] = self.distribution(item.value, "cache.layer2", TOKEN_UNITS)
        return cache

    def turn(self, items, data: dict[str, Any]) -> None:
        for item in self._unique(items):
            self.at = item.file or self.file
            if item.keyword == "new_tokens":
                tokens = self.distribution(item.value, "new_tokens_per_turn", TOKEN_UNITS)
                for option in item.options:  # only ``bias``
                    tokens["bias"] = self.number(option.value, "new_tokens_per_turn.bias", PLAIN)
                data["new_tokens_per_turn"] = tokens
            elif item.keyword == "output":
                data["generation_length"] = self.distribution(
                    item.value, "generation_length", TOKEN_UNITS
                )
            elif item.keyword == "delay":
                self.spans["inter_turn_delay"] = item.span
                data["inter_turn_delay"] = self.delay(item)

    def delay(self, statement: ast.Statement) -> dict[str, Any]:
        components = statement.items or ()
        if isinstance(statement.value, ast.Distribution) or not all(
            c.role in REFERENCE_COMPONENTS for c in components
        ):
            return self.delay_law(statement)
        mixture: dict[str, Any] = {}
        fractions: dict[str, tuple[Decimal, ast.Number]] = {}
        for component in self._unique(components, key=lambda c: c.role):
            path = f"inter_turn_delay.{component.role}_delay"
            mixture[f"{component.role}_delay"] = self.distribution(
                component.distribution, path, TIME_UNITS
            )
            if component.fraction is not None:
                exact = self.exact(component.fraction, f"{path}.fraction", PROBABILITY_UNITS)
                if exact is not None:
                    fractions[component.role] = (exact, component.fraction)
        if "agentic" in fractions and "human" in fractions:
            (agentic, agentic_number), (human, human_number) = (
                fractions["agentic"],
                fractions["human"],
            )
            if agentic + human != 1:
                self.error(
                    E_MIXTURE,
                    f"the mixture's fractions add up to {_percent(agentic + human)}, not 100%",
                    agentic_number.span,
                    related=[human_number.span],
                    hint="give the agentic fraction only; the human one is the rest",
                )
        if "agentic" in fractions or "human" in fractions:
            role = "agentic" if "agentic" in fractions else "human"
            exact, number = fractions[role]
            value = exact if role == "agentic" else 1 - exact
            self.spans["inter_turn_delay.agentic_fraction"] = number.span
            mixture["agentic_fraction"] = float(value)
        for option in statement.options:  # only ``max``
            mixture["max"] = self.number(option.value, "inter_turn_delay.max", TIME_UNITS)
        return mixture

    def delay_law(self, statement: ast.Statement) -> dict[str, Any]:
        """``delay LAW``, or a ``delay mix`` whose components are not the reference's two: one law."""
        dist = statement.value
        if not isinstance(dist, ast.Distribution):
            entries = tuple(ast.Entry(c.role, c.fraction, c.distribution, c.span) for c in statement.items)
            mix = next(f for f in map(families.get, families.names()) if f.table == "laws")
            dist = ast.Distribution(mix.name, (), statement.span, statement.span, entries=entries)
        delay = {"law": self.distribution(dist, "inter_turn_delay.law", TIME_UNITS)}
        for option in statement.options:  # only ``max``
            delay["max"] = self.number(option.value, "inter_turn_delay.max", TIME_UNITS)
        return delay

    def turns(self, statement: ast.Statement) -> dict[str, Any]:
        dist = statement.value
        if dist.name == TURNS_FAMILY:
            turns = self.distribution_arguments(dist, "turns", TURNS_ARGUMENTS, whole=True)
        else:
            turns = {"law": self.distribution(dist, "turns.law", PLAIN)}
        for option in statement.options:
            if option.keyword == "truncate":
                self.spans["turns.allow_truncation"] = option.span
                turns["allow_truncation"] = True
            else:
                turns["max_session_attempts"] = self.integer(
                    option.value, "turns.max_session_attempts", PLAIN
                )
                self.spans["turns.allow_truncation"] = option.span
        if len(statement.options) > 1:
            self.error(
                E_INVALID,
                "give either truncate or retry, not both",
                statement.options[1].span,
                related=[statement.options[0].span],
            )
        return turns

    def reset(self, statement: ast.Statement) -> dict[str, Any] | None:
        if statement.value == "none":
            return None
        reset = {
            "base_probability": self.number(
                statement.value, "reset.base_probability", PROBABILITY_UNITS
            )
        }
        for option in statement.options:  # only ``scaling``
            reset["context_scaling"] = self.number(option.value, "reset.context_scaling", PLAIN)
        return reset

    def restart(self, statement: ast.Statement, data: dict[str, Any]) -> None:
        data["restart_initial_probability"] = self.number(
            statement.value, "restart_initial_probability", PROBABILITY_UNITS
        )
        for option in statement.options:  # only ``at turn``
            found: ast.TurnRange = option.value
            first = self.integer(found.first, "restart_turn_range", PLAIN)
            last = self.integer(found.last, "restart_turn_range", PLAIN)
            self.spans["restart_turn_range"] = found.span
            if first is not None and last is not None:
                # The IR, like the reference, holds [first, last): turn indices, end excluded.
                data["restart_turn_range"] = [
                    first if found.first_included else first + 1,
                    last + 1 if found.last_included else last,
                ]

    # Distributions ----------------------------------------------------------------------

    def distribution(self, dist: ast.Distribution, path: str, units: Units) -> dict[str, Any]:
        """A distribution in a slot whose values take ``units``; the family says which keywords."""
        family = self.family(dist, path)
        if family is None:
            return {}
        tabled = dist.entries is not None or dist.source is not None
        if tabled != (family.table is not None) or (dist.source is not None and family.table != "values"):
            form = f"{family.name}(...)" if family.table is None else f"{family.name} {{ ... }}"
            self.error(E_ARGUMENT, f"{family.name} is written {form}", dist.span)
            return {}

        def value(name: str, number: ast.Number) -> float | None:
            unit = units if family.parameters[name] == SLOT else PLAIN
            return self.number(number, f"{path}.{name}", unit)

        data = {"kind": family.name, **self.arguments(dist, tuple(family.parameters), value)}
        if family.table == "values":
            data.update(self.value_table(dist, path, units))
        elif family.table == "laws":
            data.update(self.law_table(dist, path, units))
        return data

    def distribution_arguments(
        self,
        dist: ast.Distribution,
        path: str,
        allowed: tuple[str, ...],
        *,
        units: Units | None = None,
        whole: bool = False,
    ) -> dict[str, Any]:
        """The turn-count target (``whole``) or a distribution (kept for importers)."""
        if not whole:
            return self.distribution(dist, path, units or PLAIN)
        if self.family(dist, path, only=TURNS_FAMILY) is None:
            return {}
        return self.arguments(
            dist, allowed, lambda name, number: self.integer(number, f"{path}.{name}", PLAIN)
        )

    def family(self, dist: ast.Distribution, path: str, only: str | None = None):
        self.spans[path] = dist.span
        known = (only,) if only else families.names()
        family = families.get(dist.name) if dist.name in known else None
        if family is None:
            if only and families.get(dist.name) is not None:
                message = f"'{dist.name}' cannot be used here: this takes {only} only"
            else:
                message = f"unknown distribution '{dist.name}'"
            self.error(
                E_UNKNOWN_DISTRIBUTION,
                message,
                dist.name_span,
                hint=did_you_mean(dist.name, known) or f"known: {', '.join(known)}",
            )
        return family

    def arguments(self, dist: ast.Distribution, allowed: tuple[str, ...], value) -> dict[str, Any]:
        """``value(keyword, number)`` of each argument given once by a keyword ``allowed``."""
        values: dict[str, Any] = {}
        positional = getattr(families.get(dist.name), "positional", None)
        for argument in self._unique(dist.arguments, key=lambda a: a.name or positional or ""):
            if not argument.name:
                if positional is None or positional not in allowed:
                    self.error(
                        E_ARGUMENT,
                        f"{dist.name} takes named arguments only ({', '.join(allowed)})",
                        argument.span,
                        hint=f"write {allowed[0]}={argument.value.text}" if allowed else None,
                    )
                    continue
                argument = ast.Argument(positional, argument.value, argument.span)
            if argument.name not in allowed:
                self.error(
                    E_ARGUMENT,
                    f"{dist.name} here takes {', '.join(allowed)}; not '{argument.name}'",
                    argument.span,
                    hint=did_you_mean(argument.name, allowed),
                )
                continue
            values[argument.name] = value(argument.name, argument.value)
        return values

    # Numbers ----------------------------------------------------------------------------

    def exact(self, number: ast.Number, path: str, units: Units) -> Decimal | None:
        """The value in the IR's unit, exactly; None (and an error) when it cannot be."""
        self.spans[path] = number.span
        if number.unit not in units:
            kind = units.kind
            hint = did_you_mean(number.unit, [u for u in units if u]) if number.unit else None
            if number.unit == "" and units is TIME_UNITS:
                hint = f"write {number.text}ms, or a value in s or min"
            self.error(E_UNIT, f"'{number.text}' is not {kind}", number.span, hint=hint)
            return None
        if not number.digits.is_finite() or number.digits.adjusted() > _MAX_EXPONENT:
            self.error(E_NUMBER, f"'{number.text}' is too large", number.span)
            return None
        with localcontext() as context:
            context.prec = 100
            return number.digits * units[number.unit]

    def number(self, number: ast.Number, path: str, units: Units) -> float | None:
        exact = self.exact(number, path, units)
        return None if exact is None else float(exact)

    def integer(self, number: ast.Number, path: str, units: Units) -> int | None:
        exact = self.exact(number, path, units)
        if exact is None:
            return None
        if exact != exact.to_integral_value():
            self.error(E_NUMBER, f"'{number.text}' must be a whole number here", number.span)
            return None
        return int(exact)

    # Diagnostics ------------------------------------------------------------------------

    def error(
        self, code: str, message: str, span: Span, *, related=(), hint: str | None = None
    ) -> None:
        others = tuple(Diagnostic(code, "(and here)", file=self.at, span=s) for s in related)
        self.errors.append(
            Diagnostic(code, message, file=self.at, span=span, hint=hint, related=others)
        )

    def located(self, problems: list[FieldProblem], severity: Severity, code: str) -> list[Diagnostic]:
        """The IR's problems, each at its source; a class's named, and each said once."""
        found = []
        for problem in problems:
            index = class_of_path(problem.path)
            if index is not None:
                problem = replace(problem, message=body_message(problem.message))
            found.append((self.problem(problem, severity, problem.code or code), index[0] if index else None))
        return self.for_classes(found)

    def problem(self, problem: FieldProblem, severity: Severity, code: str) -> Diagnostic:
        """An IR problem, pointing at the source of each field path it involves (a class's
        problem first at what the class wrote itself, else at its header)."""
        places: list[tuple[str, Span]] = []
        for path in problem.paths:
            place = self.place_of(path)
            if place is not None and place not in places:
                places.append(place)
        in_class = class_of_path(problem.path)
        if in_class is not None and in_class[0] < len(self.class_sources):
            source = self.class_sources[in_class[0]]
            places.sort(key=lambda place: not source.holds(*place))  # stable: the IR's order otherwise
            if not places:
                places = [(source.file, self.spans[f"classes.{in_class[0]}"])]
        # a place that only encloses another (a prefix block around its global) adds nothing
        places = places[:1] + [p for p in places[1:] if not any(q != p and _encloses(p, q) for q in places)]
        file, main = places[0] if places else (self.file, None)
        if severity is Severity.WARNING:
            places = places[:1]  # a warning needs one place to look, not every field it involves
        related = tuple(
            Diagnostic(code, "(and here)", severity, file=f, span=s) for f, s in places[1:]
        )
        return Diagnostic(
            code, problem.message, severity, file, main, problem.hint, problem.path, related
        )

    def span_of(self, path: str) -> Span | None:
        place = self.place_of(path)
        return place[1] if place else None

    def place_of(self, path: str) -> tuple[str, Span] | None:
        """The file and span a field path was written at (its nearest written ancestor's)."""
        parts = path.split(".")
        while parts:
            key = ".".join(parts)
            body = class_of_path(key)
            if key != path and body is not None and not body[1]:
                return None  # a class's body field nobody wrote: not the class's header
            span = self.spans.get(key)
            if span is not None:
                return self.spans.files.get(key, self.file), span
            parts.pop()
        return None

    def _unique(self, nodes, key=lambda node: node.keyword):
        """The nodes, each keyword once; a repeat is an error pointing at both."""
        seen: dict[str, Any] = {}
        for node in nodes:
            name = key(node)
            if name in seen:
                self.error(
                    E_DUPLICATE,
                    f"'{name}' is given twice",
                    node.span,
                    related=[seen[name].span],
                    hint="remove one of them",
                )
                continue
            seen[name] = node
            yield node


class _Spans(dict):
    """Field path to the span it was written at, remembering the file of each (an include's)."""

    def __init__(self, lowering: _Lowering):
        super().__init__()
        self.lowering = lowering
        self.files: dict[str, str] = {}

    def __setitem__(self, path: str, span: Span) -> None:
        path = self.lowering.scope + path
        super().__setitem__(path, span)
        self.files[path] = self.lowering.at


def _encloses(outer: tuple[str, Span], inner: tuple[str, Span]) -> bool:
    """Whether the span of ``outer`` holds that of ``inner`` (both in one file, spans complete)."""
    (outer_file, a), (inner_file, b) = outer, inner
    if outer_file != inner_file or None in (a.end_line, a.end_column, b.end_line, b.end_column):
        return False
    return (a.line, a.column) <= (b.line, b.column) and (b.end_line, b.end_column) <= (a.end_line, a.end_column)


def _percent(value: Decimal) -> str:
    return f"{(value * 100).normalize():f}%"
