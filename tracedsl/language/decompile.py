"""Turns an IR back into a syntax tree (and so into canonical .trace text) that compiles to it exactly."""

from __future__ import annotations

import math
from decimal import Decimal, localcontext

from tracedsl import families
from tracedsl.codes import E_UNPRINTABLE
from tracedsl.diagnostics import Diagnostic, DiagnosticError
from tracedsl.families import SLOT
from tracedsl.ir import (
    Compaction,
    Delay,
    DelayMixture,
    GenerationParams,
    Latency,
    Lognormal,
    NewTokens,
    SessionClass,
    Subagent,
    TurnLaw,
    Turns,
    Workload,
)
from tracedsl.language import ast
from tracedsl.language.arrivals import DURATION_UNITS, RATE_UNITS, TOKEN_RATE_UNITS
from tracedsl.language.format import format_spec, statement_text
from tracedsl.language.lower import PROBABILITY_UNITS, TIME_UNITS, TOKEN_UNITS


def decompile(workload: Workload, header: str | None = None) -> str:
    """Canonical .trace text for a workload; ``header`` becomes a comment at the top."""
    spec = workload_tree(workload)
    text = format_spec(spec)
    if header:
        lines = [f"# {line}".rstrip() for line in header.splitlines()]
        text = "\n".join(lines) + "\n\n" + text
    return text


def workload_tree(workload: Workload) -> ast.Spec:
    params = workload.params
    statements = [
        ast.Statement("workload", workload.name),
        ast.Statement("context", _integer(params.max_prompt_tokens, TOKEN_UNITS)),
        ast.Statement("block", _integer(params.block_size, TOKEN_UNITS)),
        _prefix(params),
        _turn(params),
    ]
    if params.turns is not None:
        statements.append(_turns(params.turns))
    if params.reset is not None:
        statements.append(_reset(params))
    elif params.turns is None:
        statements.append(ast.Statement("reset", "none"))
    default_range = GenerationParams.model_fields["restart_turn_range"].default
    if (
        params.turns is None
        or params.restart_initial_probability
        or params.restart_turn_range != default_range
    ):
        statements.append(_restart(params))
    if params.request is not None:
        statements.append(_request(params))
    if params.compaction is not None:
        statements.append(_compact(params.compaction))
    if params.subagent is not None:
        statements.append(_subagent(params, params.subagent))
    statements.extend(_arrivals_and_latency(params))
    statements.extend(_class(params, session_class) for session_class in params.classes or ())
    return ast.Spec(tuple(statements))


def _class(top: GenerationParams, session_class: SessionClass) -> ast.Statement:
    """A class block that writes only what its body does not inherit from the top level (with
    ``global`` and ``groups`` when it has blocks of its own), so it compiles back to the body."""
    body = session_class.params
    items = _body_items(top, body, session_class.shares_global, session_class.shares_groups)
    # An inherited subagent's body inherits the class's: it is left out only when nothing else differs.
    if body.subagent is not None and (items or body.subagent != top.subagent):
        items.append(_subagent(body, body.subagent))
    elif body.subagent is None and top.subagent is not None:
        items.append(ast.Statement("subagent", "none"))
    return ast.Statement("class", _probability(session_class.fraction), items=tuple(items), name=session_class.name)


def _body_items(top: GenerationParams, body: GenerationParams, shares_global: bool,
                shares_groups: bool) -> list[ast.Statement]:
    """What a body (a class's, a subagent's) writes: all it does not inherit from ``top``."""
    items: list[ast.Statement] = []
    if body.max_prompt_tokens != top.max_prompt_tokens:
        items.append(ast.Statement("context", _integer(body.max_prompt_tokens, TOKEN_UNITS)))
    for block, own in (("prefix", {"global": not shares_global, "groups": not shares_groups}),
                       ("turn", {}), ("request", {})):
        if block == "request" and body.request is None:
            continue
        mine = _block(body, block)
        inherited = _block(top, block) if block != "request" or top.request is not None else None
        written = tuple(item for index, item in enumerate(mine.items)
                        if inherited is None or own.get(item.keyword)
                        or statement_text(item) != statement_text(inherited.items[index]))
        if written:
            items.append(ast.Statement(block, items=written))
    if body.request is None and top.request is not None:
        items.append(ast.Statement("request", "none"))
    if body.compaction is None and top.compaction is not None:
        items.append(ast.Statement("compact", "none"))
    if body.compaction is not None and body.compaction != top.compaction:
        items.append(_compact(body.compaction))
    writes_turns = body.turns is not None and (
        top.turns is None or statement_text(_turns(body.turns)) != statement_text(_turns(top.turns)))
    if writes_turns:
        items.append(_turns(body.turns))
    # A body's turns switch the inherited reset off, its reset the inherited turns (language/classes.py).
    writes_reset = body.turns is None and top.turns is not None
    inherited_reset = None if writes_turns and not writes_reset else top.reset
    if writes_reset or body.reset != inherited_reset:
        items.append(_reset(body) or ast.Statement("reset", "none"))
    if (body.restart_initial_probability, body.restart_turn_range) != (
            top.restart_initial_probability, top.restart_turn_range):
        items.append(_restart(body))
    return items


def _request(params: GenerationParams) -> ast.Statement:
    request = params.request
    return ast.Statement("request", items=(
        ast.Statement("calls", _distribution(request.calls, {"": Decimal(1)})),
        ast.Statement("message", _distribution(request.message, TOKEN_UNITS)),
        ast.Statement("think", _distribution(request.think, TIME_UNITS)),
    ))


def _compact(compaction: Compaction) -> ast.Statement:
    options = [ast.Option("at", _probability(compaction.threshold))]
    if compaction.max_compactions is not None:
        options.append(ast.Option("max", _integer(compaction.max_compactions, {"": Decimal(1)})))
    if compaction.instruction_tokens != Compaction.model_fields["instruction_tokens"].default:
        options.append(ast.Option("instruction", _integer(compaction.instruction_tokens, TOKEN_UNITS)))
    return ast.Statement("compact", _distribution(compaction.summary, TOKEN_UNITS), tuple(options))


def _subagent(enclosing: GenerationParams, subagent: Subagent) -> ast.Statement:
    """A subagent that writes only what its body does not inherit from the enclosing body (which
    it inherits but its subagent), and its returns."""
    body = subagent.params
    items = _body_items(enclosing, body, subagent.shares_global, subagent.shares_groups)
    items.append(ast.Statement("returns", _distribution(subagent.returns, TOKEN_UNITS)))
    if body.subagent is not None:
        items.append(_subagent(body, body.subagent))
    fanout = ast.Option("fanout", _distribution(subagent.fanout, {"": Decimal(1)}))
    return ast.Statement("subagent", _probability(subagent.probability), (fanout,), tuple(items))


def _block(params: GenerationParams, keyword: str) -> ast.Statement:
    return {"prefix": _prefix, "turn": _turn, "request": _request}[keyword](params)


def _reset(params: GenerationParams) -> ast.Statement | None:
    reset = params.reset
    if reset is None:
        return None
    scaling = ast.Option("scaling", _number(reset.context_scaling))
    return ast.Statement("reset", _probability(reset.base_probability), (scaling,))


def _restart(params: GenerationParams) -> ast.Statement:
    first, last = params.restart_turn_range
    span = ast.TurnRange(_integer(first, {"": Decimal(1)}), _integer(last, {"": Decimal(1)}), True, False)
    return ast.Statement("restart", _probability(params.restart_initial_probability), (ast.Option("at turn", span),))


def _turns(turns: Turns | TurnLaw) -> ast.Statement:
    """The reference's lognormal of whole numbers, or a law of any other family."""
    ending = (
        ast.Option("truncate", None)
        if turns.allow_truncation
        else ast.Option("retry", _integer(turns.max_session_attempts, {"": Decimal(1)}))
    )
    if isinstance(turns, TurnLaw):
        return ast.Statement("turns", _distribution(turns.law, {"": Decimal(1)}), (ending,))
    counts = {"mean": turns.mean, "median": turns.median, "min": turns.min, "max": turns.max}
    arguments = tuple(ast.Argument(k, _integer(v, {"": Decimal(1)})) for k, v in counts.items())
    turns_family = families.family_of(Lognormal).name
    return ast.Statement("turns", ast.Distribution(turns_family, arguments), (ending,))


def _arrivals_and_latency(params: GenerationParams) -> list[ast.Statement]:
    found = []
    arrivals = params.arrivals
    if arrivals is not None and arrivals.kind == "stages":
        stages = []
        for index, stage in enumerate(arrivals.stages or ()):
            before = arrivals.stages[index - 1].end_rate if index else 0.0
            duration = _number(stage.duration_ms, DURATION_UNITS)
            if stage.rate == stage.end_rate:  # a hold (a ramp from the same rate would read back as one)
                stages.append(ast.Statement("hold", duration, (ast.Option("at", _number(stage.rate, RATE_UNITS)),)))
                continue
            if stage.rate != before:  # a ramp starts where the stage before ended: a jump is a 0-length hold
                raise DiagnosticError(Diagnostic(
                    E_UNPRINTABLE, f"arrival stage {index} ramps from {stage.rate}/s, not from where the stage "
                    f"before it ended ({before}/s): a .trace file cannot write that"))
            stages.append(ast.Statement("ramp", duration, (ast.Option("ramp to", _number(stage.end_rate, RATE_UNITS)),)))
        found.append(ast.Statement("arrivals", "stages", items=tuple(stages)))
    elif arrivals is not None and arrivals.kind == "file":
        found.append(ast.Statement("arrivals", ast.Distribution("file", (), source=arrivals.source or "")))
    elif arrivals is not None:
        arguments = [ast.Argument("rate", _number(arrivals.rate, RATE_UNITS))]
        if arrivals.cv is not None:
            arguments.append(ast.Argument("cv", _number(arrivals.cv)))
        found.append(ast.Statement("arrivals", ast.Distribution(arrivals.kind, tuple(arguments))))
    if params.latency != Latency():
        latency = params.latency
        found.append(ast.Statement("latency", items=(
            ast.Statement("prefill", _number(latency.prefill_tokens_per_s, TOKEN_RATE_UNITS)),
            ast.Statement("decode", _number(latency.decode_tokens_per_s, TOKEN_RATE_UNITS)),
        )))
    return found


def _prefix(params: GenerationParams) -> ast.Statement:
    cache = params.cache
    groups = ast.Statement(
        "groups",
        _integer(cache.layer1_5_groups.num_groups, {"": Decimal(1)}),
        (
            ast.Option("of", _integer(cache.layer1_5_tokens, TOKEN_UNITS)),
            ast.Option("zipf", _number(cache.layer1_5_groups.zipf_alpha)),
        ),
    )
    return ast.Statement(
        "prefix",
        items=(
            ast.Statement("global", _integer(cache.layer1_tokens, TOKEN_UNITS)),
            groups,
            ast.Statement("session", _distribution(cache.layer2, TOKEN_UNITS)),
        ),
    )


def _turn(params: GenerationParams) -> ast.Statement:
    new_tokens: NewTokens = params.new_tokens_per_turn
    mixture = _delay(params.inter_turn_delay)
    return ast.Statement(
        "turn",
        items=(
            ast.Statement(
                "new_tokens",
                _distribution(new_tokens, TOKEN_UNITS),
                (ast.Option("bias", _number(new_tokens.bias)),),
            ),
            ast.Statement("output", _distribution(params.generation_length, TOKEN_UNITS)),
            mixture,
        ),
    )


def _delay(delay: DelayMixture | Delay) -> ast.Statement:
    """The reference's mixture, a mix of named components, or one law."""
    options = (ast.Option("max", _number(delay.max, TIME_UNITS)),) if delay.max is not None else ()
    if isinstance(delay, Delay):
        law = _distribution(delay.law, TIME_UNITS)
        if law.entries is not None and families.get(law.name).table == "laws":
            components = tuple(ast.Component(e.name, e.key, e.value) for e in law.entries)
            return ast.Statement("delay", options=options, items=components)
        return ast.Statement("delay", law, options)
    with localcontext() as context:
        context.prec = 100
        human_fraction = 1 - _decimal(delay.agentic_fraction)
    components = (
        ast.Component(
            "agentic", _probability(delay.agentic_fraction), _distribution(delay.agentic_delay, TIME_UNITS)
        ),
        ast.Component("human", _percent(human_fraction), _distribution(delay.human_delay, TIME_UNITS)),
    )
    return ast.Statement("delay", options=options, items=components)


def _distribution(dist, units: dict) -> ast.Distribution:
    """A distribution as its family prints it; keywords in the slot's unit get the best unit."""
    family = families.family_of(dist)
    entries = None
    if family.table == "values":
        entries = tuple(
            ast.Entry(name, _number(value, units), _probability(weight))
            for name, value, weight in family.entries(dist)
        )
    elif family.table == "laws":
        entries = tuple(
            ast.Entry(name, _probability(weight), _distribution(law, units))
            for name, weight, law in family.entries(dist)
        )
    arguments = tuple(
        ast.Argument(
            "" if name == family.positional else name,
            _number(value, units if family.parameters[name] == SLOT else None),
        )
        for name, value in family.arguments(dist)
    )
    return ast.Distribution(family.name, arguments, entries=entries)


# ---------------------------------------------------------------------------------------------
# Numbers: the shortest text, in the best unit, that reads back to exactly the same value


def _decimal(value: float | int) -> Decimal:
    if isinstance(value, float) and not math.isfinite(value):
        raise DiagnosticError(
            Diagnostic(E_UNPRINTABLE, f"{value} cannot be written in a .trace file")
        )
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def _number(value: float | int, units: dict | None = None) -> ast.Number:
    exact = _decimal(value)
    candidates = []
    with localcontext() as context:
        context.prec = 100
        for unit, scale in (units or {"": Decimal(1)}).items():
            if unit == "%":
                continue
            digits = exact / scale
            candidates.append(_decimal_text(digits) + unit)
    # Shortest text wins; on a tie, a whole number (200k, not 0.2M), then the larger unit.
    best = min(candidates, key=lambda text: (len(text), "." in text, -candidates.index(text)))
    return _as_number(best)


def _integer(value: int, units: dict) -> ast.Number:
    return _number(int(value), units)


def _probability(value: float) -> ast.Number:
    return _percent(_decimal(value))


def _percent(fraction: Decimal) -> ast.Number:
    with localcontext() as context:
        context.prec = 100
        return _as_number(_decimal_text(fraction / PROBABILITY_UNITS["%"]) + "%")


def _decimal_text(value: Decimal) -> str:
    value = value.normalize()
    if value == 0:
        return "0"
    if -7 <= value.adjusted() < 21:
        return format(value, "f")
    return str(value).replace("E+", "e").replace("E", "e")


def _as_number(text: str) -> ast.Number:
    from tracedsl.language.parser import parse_number

    return parse_number(text)
