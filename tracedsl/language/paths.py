"""The language's own paths (``turn.output.mean``) as spec field paths, their values read by the language's unit rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tracedsl import families
from tracedsl.families import SLOT
from tracedsl.language.lower import PLAIN, PROBABILITY_UNITS, TIME_UNITS, TOKEN_UNITS, convert
from tracedsl.language.validate import did_you_mean


@dataclass(frozen=True)
class Field:
    path: tuple[str, ...]  # the spec field
    units: dict
    whole: bool = False


# A statement's value or option: the language's path → the spec field it writes.
VALUES: dict[tuple[str, ...], Field] = {
    ("context",): Field(("max_prompt_tokens",), TOKEN_UNITS, whole=True),
    ("block",): Field(("block_size",), TOKEN_UNITS, whole=True),
    ("prefix", "global"): Field(("cache", "layer1_tokens"), TOKEN_UNITS, whole=True),
    ("prefix", "groups"): Field(("cache", "layer1_5_groups", "num_groups"), PLAIN, whole=True),
    ("prefix", "groups", "of"): Field(("cache", "layer1_5_tokens"), TOKEN_UNITS, whole=True),
    ("prefix", "groups", "zipf"): Field(("cache", "layer1_5_groups", "zipf_alpha"), PLAIN),
    ("turn", "new_tokens", "bias"): Field(("new_tokens_per_turn", "bias"), PLAIN),
    ("turn", "delay", "max"): Field(("inter_turn_delay", "max"), TIME_UNITS),
    ("turn", "delay", "agentic", "fraction"): Field(("inter_turn_delay", "agentic_fraction"), PROBABILITY_UNITS),
    ("turns", "retry"): Field(("turns", "max_session_attempts"), PLAIN, whole=True),
    ("reset",): Field(("reset", "base_probability"), PROBABILITY_UNITS),
    ("reset", "scaling"): Field(("reset", "context_scaling"), PLAIN),
    ("restart",): Field(("restart_initial_probability",), PROBABILITY_UNITS),
    ("compact", "at"): Field(("compaction", "threshold"), PROBABILITY_UNITS),
    ("compact", "max"): Field(("compaction", "max_compactions"), PLAIN, whole=True),
    ("compact", "instruction"): Field(("compaction", "instruction_tokens"), TOKEN_UNITS, whole=True),
    ("subagent",): Field(("subagent", "probability"), PROBABILITY_UNITS),
}
# A distribution slot: ``SLOT.KEYWORD`` sets one of its keywords (``turn.output.mean``).
LAWS: dict[tuple[str, ...], Field] = {
    ("prefix", "session"): Field(("cache", "layer2"), TOKEN_UNITS),
    ("turn", "new_tokens"): Field(("new_tokens_per_turn",), TOKEN_UNITS),
    ("turn", "output"): Field(("generation_length",), TOKEN_UNITS),
    ("turn", "delay", "agentic"): Field(("inter_turn_delay", "agentic_delay"), TIME_UNITS),
    ("turn", "delay", "human"): Field(("inter_turn_delay", "human_delay"), TIME_UNITS),
    ("turn", "delay"): Field(("inter_turn_delay", "law"), TIME_UNITS),  # a delay of one law
    ("turns",): Field(("turns",), PLAIN, whole=True),
    ("request", "calls"): Field(("request", "calls"), PLAIN),
    ("request", "message"): Field(("request", "message"), TOKEN_UNITS),
    ("request", "think"): Field(("request", "think"), TIME_UNITS),
    ("compact", "to"): Field(("compaction", "summary"), TOKEN_UNITS),
    ("subagent", "fanout"): Field(("subagent", "fanout"), PLAIN),
    ("subagent", "returns"): Field(("subagent", "returns"), TOKEN_UNITS),
}
SUBAGENT_WORD = "subagent"  # subagent.PATH: a path of the subagent's body (subagent.turns.max=40)
# spec.json's own words under subagent: such a path is the spec's, not the language's
SUBAGENT_SPEC_FIELDS = frozenset({"params", "probability", "shares_global", "shares_groups"})
TURNS_KEYWORDS = ("mean", "median", "min", "max")
STATEMENT_WORDS = frozenset(path[0] for path in (*VALUES, *LAWS))


class PathProblem(ValueError):
    """A language path that names nothing, or a value its field does not take: message and hint."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


CLASS_WORD = "class"  # class.NAME.PATH: a path of that class's body
# What a class's path may set besides its body's, and the statements a class cannot give.
CLASS_VALUES: dict[tuple[str, ...], Field] = {("fraction",): Field(("fraction",), PROBABILITY_UNITS)}
TRACE_WIDE = frozenset({"block", "arrivals", "latency"})


def is_language_path(path: tuple[str, ...]) -> bool:
    """Whether ``path`` is written in the language's words (else it is a spec.json path).

    ``turns`` and ``reset`` are both: ``turns.mean`` means the same either way, and
    ``reset.base_probability`` is the spec's word, ``reset.scaling`` the language's.
    ``class.NAME.…`` is a path of a class's body.
    """
    if path[0] == CLASS_WORD:
        return True
    if path[0] == SUBAGENT_WORD and len(path) > 1 and path[1] in SUBAGENT_SPEC_FIELDS:
        return False
    if path in VALUES:
        return True
    if path[0] in ("turns", "reset"):
        return path[:-1] in LAWS and path[-1] in TURNS_KEYWORDS
    return path[0] in STATEMENT_WORDS


def translate(path: tuple[str, ...], text: str, current: Any) -> tuple[tuple[str, ...], Any]:
    """The spec field a language path writes and its value; ``current`` is the spec's params
    (a distribution keyword takes its unit from the family the slot holds). Raises PathProblem.

    ``class.NAME.PATH`` writes ``classes.<i>.params.PATH`` (``class.NAME.fraction`` the class's
    fraction), its units by the class's own families.
    """
    if path[0] == CLASS_WORD:
        return _class_path(path, text, current)
    if text.lower() == "none" and path in (("reset",), ("turns",)):
        return (path[0],), None
    field = VALUES.get(path)
    if field is not None:
        return field.path, _value(text, field.units, field.whole, path)
    slot, keyword = path[:-1], path[-1]
    law = LAWS.get(slot)
    if law is None and path[0] == SUBAGENT_WORD and len(path) > 1:
        return _subagent_path(path, text, current)
    if law is None:
        known = [".".join(p) for p in (*VALUES, *(s + ("…",) for s in LAWS))]
        raise PathProblem(f"no such path '{'.'.join(path)}'", did_you_mean(".".join(path), known)
                          or "e.g. context, turn.output.mean, prefix.session.median, turns.max, reset")
    if slot == ("turns",):
        turn_law = getattr(getattr(current, "turns", None), "law", None)
        if turn_law is not None:  # turns uniform(...): the keyword is the law's own
            family = families.family_of(turn_law)
            if keyword not in family.parameters:
                raise PathProblem(f"turns is {family.name}: it takes {', '.join(family.parameters)}; "
                                  f"not '{keyword}'", did_you_mean(keyword, tuple(family.parameters)))
            return (*law.path, "law", keyword), _value(text, PLAIN, False, path)
        if keyword not in TURNS_KEYWORDS:
            raise PathProblem(f"turns takes {', '.join(TURNS_KEYWORDS)}; not '{keyword}'",
                              did_you_mean(keyword, TURNS_KEYWORDS))
        return (*law.path, keyword), _value(text, PLAIN, True, path)
    dist = _held(current, law.path)
    if dist is None:
        raise PathProblem(f"the spec has no {'.'.join(slot)} to set '{keyword}' of")
    family = families.family_of(dist)
    if keyword not in family.parameters:
        raise PathProblem(f"{'.'.join(slot)} is {family.name}: it takes {', '.join(family.parameters)}; not '{keyword}'",
                          did_you_mean(keyword, tuple(family.parameters)))
    units = law.units if family.parameters[keyword] == SLOT else PLAIN
    return (*law.path, keyword), _value(text, units, False, path)


def _class_path(path: tuple[str, ...], text: str, current: Any) -> tuple[tuple[str, ...], Any]:
    classes = getattr(current, "classes", None) or []
    names = [session_class.name for session_class in classes]
    if len(path) < 3:
        raise PathProblem(f"'{'.'.join(path)}' names no field: a class's path is class.NAME.PATH",
                          "e.g. class.chat.turns.max=12, class.chat.turn.output.mean=2k")
    name, rest = path[1], path[2:]
    if not names:
        raise PathProblem(f"the spec has no classes, so no class '{name}'",
                          "set the top-level value instead (without class.NAME.)")
    if name not in names:
        raise PathProblem(f"no class '{name}'", did_you_mean(name, names) or f"its classes: {', '.join(names)}")
    index = names.index(name)
    if rest in CLASS_VALUES:
        field = CLASS_VALUES[rest]
        return ("classes", str(index), *field.path), _value(text, field.units, field.whole, rest)
    if rest[0] in TRACE_WIDE:
        raise PathProblem(f"'{rest[0]}' is one for the whole trace, not a class's", f"set {'.'.join(rest)} instead")
    field, value = translate(rest, text, classes[index].params)
    return ("classes", str(index), "params", *field), value


def _subagent_path(path: tuple[str, ...], text: str, current: Any) -> tuple[tuple[str, ...], Any]:
    """``subagent.PATH`` writes ``subagent.params.PATH``: a path of the subagent's body."""
    subagent = getattr(current, "subagent", None)
    if subagent is None:
        raise PathProblem(f"the spec has no subagent to set '{'.'.join(path[1:])}' of",
                          "write a subagent P% fanout LAW { ... } statement first")
    rest = path[1:]
    if rest[0] in TRACE_WIDE or rest[0] == CLASS_WORD:
        raise PathProblem(f"'{rest[0]}' is not a subagent body's", f"set {'.'.join(rest)} instead")
    field, value = translate(rest, text, subagent.params)
    return ("subagent", "params", *field), value


def inherited_by(top: dict, field: tuple[str, ...]) -> list[int]:
    """The classes (indices) of the spec dict ``top`` that inherit the top-level statement which
    sets ``field``: those whose value for all that statement sets is the top level's.

    A compiled spec keeps no record of who wrote what, so a class that writes the very value it
    would inherit counts as inheriting it.
    """
    if field[0] in ("arrivals", "classes"):
        return []  # the trace's own, never a class's
    units = _statement_fields(field)
    return [index for index, session_class in enumerate(top.get("classes") or ())
            if all(_get(session_class.get("params", {}), unit) == _get(top, unit) for unit in units)]


def subagents_inheriting(top: dict, base: tuple[str, ...], field: tuple[str, ...]) -> list[tuple[str, ...]]:
    """The subagent bodies (their paths) under the body at ``base`` of the spec dict ``top`` that
    inherit the statement setting ``field``: each whose value for it is its enclosing body's
    (the block size and the latency model, one for the whole trace, always), down the chain."""
    if not field or field[0] in ("arrivals", "classes", "subagent"):
        return []
    body, found = top, []
    for part in base:  # classes.<i>.params: a list, then the class's object
        body = body[int(part)] if isinstance(body, list) and part.isdigit() and int(part) < len(body) else (
            body.get(part) if isinstance(body, dict) else None)
    while isinstance(body, dict) and isinstance(body.get("subagent"), dict):
        child = body["subagent"].get("params")
        if not isinstance(child, dict):
            break
        if field[0] not in ("block_size", "latency") and not all(
                _get(child, unit) == _get(body, unit) for unit in _statement_fields(field)):
            break  # it writes its own, and what it encloses inherits that
        base = (*base, "subagent", "params")
        found.append(base)
        body = child
    return found


def _statement_fields(field: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    """The fields the one statement that sets ``field`` writes (a law is one statement, so is a
    ``groups``, a ``reset``, a ``restart``)."""
    head = field[0]
    if head == "cache" and len(field) > 1:
        if field[1] in ("layer1_5_tokens", "layer1_5_groups"):
            return (("cache", "layer1_5_tokens"), ("cache", "layer1_5_groups"))
        return (field[:2],)
    if head in ("restart_initial_probability", "restart_turn_range"):
        return (("restart_initial_probability",), ("restart_turn_range",))
    return ((head,),)


def _get(data: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def _value(text: str, units: dict, whole: bool, path: tuple[str, ...]) -> int | float:
    value, problem = convert(text, units, whole)
    if problem is not None:
        raise PathProblem(problem.message, problem.hint)
    return value


def _held(params: Any, path: tuple[str, ...]) -> Any:
    node = params
    for part in path:
        node = getattr(node, part, None)
        if node is None:
            return None
    return node if hasattr(node, "kind") else None
