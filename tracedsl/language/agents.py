"""Lowers the agent structure: ``request { }``, ``compact at … to …`` and ``subagent P% fanout … { }``.

A subagent's body is a body like a class's: the enclosing body's statements (the top level's,
or the class's it is in) except its ``subagent``, overridden by the subagent's own.
"""

from __future__ import annotations

from typing import Any

from tracedsl.codes import E_AGENT_PLACE, E_INVALID, E_SUBAGENT_STATEMENT
from tracedsl.diagnostics import Diagnostic, Span
from tracedsl.language import ast
from tracedsl.language.classes import body_statements
from tracedsl.language.units import PLAIN, PROBABILITY_UNITS, TIME_UNITS, TOKEN_UNITS
from tracedsl.limits import MAX_SUBAGENT_DEPTH

_PLAIN, _TOKENS, _PERCENT = PLAIN, TOKEN_UNITS, PROBABILITY_UNITS
# What a subagent's body cannot give, and why.
NOT_IN_A_SUBAGENT = {
    "block": "the block size is one for the whole trace",
    "arrivals": "a subagent starts when its parent's call spawns it, not by the arrival process",
    "latency": "the latency model is one for the whole trace",
    "workload": "the workload's name is one for the whole trace",
    "include": "an include reads statements at the top level only",
    "let": "a let is top-level only (a subagent's body may use its name)",
    "class": "a subagent runs the body it gives, not classes",
}
# A statement of the language and the IR field it lowers to (for messages in the language's words).
CONSTRUCTS = {"request": "request", "compaction": "compact", "subagent": "subagent"}


def subagent_body(enclosing: list[ast.Statement], own: list[ast.Statement]) -> list[ast.Statement]:
    """A subagent's whole body: the enclosing body's statements but its ``subagent`` (a
    subagent spawns subagents only when its own body says so), overridden by its own."""
    return body_statements([s for s in enclosing if s.keyword != "subagent"], own)


class AgentLowering:
    """Mixed into the lowering: needs its ``file``, ``at``, ``scope``, ``spans``, ``error``,
    ``distribution``, ``number``, ``integer``, ``_unique``, ``statements`` and ``subagent_depth``."""

    file: str
    errors: list[Diagnostic]

    def agent_statement(self, statement: ast.Statement, enclosing: list[ast.Statement], data: dict) -> None:
        word = statement.keyword
        if statement.value == "none":  # request none, compact none, subagent none: a body without it
            key = {"request": "request", "compact": "compaction", "subagent": "subagent"}[word]
            self.spans[key] = statement.span
            data[key] = None
        elif word == "request":
            self.spans["request"] = statement.span
            data["request"] = self.request(statement.items or ())
        elif word == "compact":
            self.spans["compaction"] = statement.span
            data["compaction"] = self.compact(statement)
        elif word == "subagent":
            data["subagent"] = self.subagent(statement, enclosing)
        elif not self.subagent_depth:  # returns: its subagent's, read by subagent()
            self.error(E_AGENT_PLACE, "'returns' is only valid inside a subagent's body: it is what a "
                       "subagent returns to its parent", statement.span,
                       hint="move it into a subagent P% fanout LAW { ... } block")

    def request(self, items) -> dict[str, Any]:

        slots = {"calls": _PLAIN, "message": TOKEN_UNITS, "think": TIME_UNITS}
        request: dict[str, Any] = {}
        for item in self._unique(items):
            self.at = item.file or self.file
            request[item.keyword] = self.distribution(item.value, f"request.{item.keyword}", slots[item.keyword])
        return request

    def compact(self, statement: ast.Statement) -> dict[str, Any]:
        data = {"summary": self.distribution(statement.value, "compaction.summary", _TOKENS)}
        for option in self._unique(statement.options):
            if option.keyword == "at":
                threshold = self.number(option.value, "compaction.threshold", _PERCENT)
                if threshold is not None and not 0 < threshold <= 1:
                    self.error(E_INVALID, f"compact at {option.value.text}: the threshold is the share of the "
                               "context a call's prompt would reach, above 0% and at most 100%", option.value.span,
                               hint="e.g. compact at 83% to ..." if threshold <= 0 else
                               "a number without % is a share of 1 (0.83 is 83%)")
                data["threshold"] = threshold
            elif option.keyword == "max":
                data["max_compactions"] = self.integer(option.value, "compaction.max_compactions", _PLAIN)
            else:
                data["instruction_tokens"] = self.integer(option.value, "compaction.instruction_tokens", _TOKENS)
        return data

    def subagent(self, statement: ast.Statement, enclosing: list[ast.Statement]) -> dict[str, Any]:
        fanout = statement.options[0].value
        self.spans["subagent"] = statement.span
        header = Span(statement.span.line, statement.span.column, fanout.span.end_line, fanout.span.end_column)
        self.spans["subagent.params"] = header
        data: dict[str, Any] = {
            "probability": self.number(statement.value, "subagent.probability", _PERCENT),
            "fanout": self.distribution(fanout, "subagent.fanout", _PLAIN),
        }
        if self.subagent_depth >= MAX_SUBAGENT_DEPTH:  # the level too deep, where it is written
            self.error(E_INVALID, f"this subagent nests {self.subagent_depth + 1} deep: subagents nest at most "
                       f"{MAX_SUBAGENT_DEPTH} levels", header, hint="give the innermost subagents none of their own")
            return data
        own = [item for item in statement.items or () if self._in_subagent(item)]
        body = subagent_body(enclosing, own)
        returns = [item for item in body if item.keyword == "returns"]
        if returns:
            self.at = returns[-1].file or self.file
            data["returns"] = self.distribution(returns[-1].value, "subagent.returns", _TOKENS)
        else:
            self.at = statement.file or self.file
            self.error(E_AGENT_PLACE, "a subagent's body needs 'returns': the tokens each subagent returns "
                       "to its parent", header, hint="add returns LAW to the subagent's body")
        prefix = next((item for item in own if item.keyword == "prefix"), None)
        written = {item.keyword for item in (prefix.items or ())} if prefix is not None else set()
        data["shares_global"] = "global" not in written
        data["shares_groups"] = "groups" not in written
        scope = self.scope
        self.scope = f"{scope}subagent.params."
        self.subagent_depth += 1
        try:
            data["params"], _ = self.statements(body)
        finally:
            self.scope = scope
            self.subagent_depth -= 1
        return data

    def _in_subagent(self, item: ast.Statement) -> bool:
        why = NOT_IN_A_SUBAGENT.get(item.keyword)
        if why is None:
            return True
        self.at = item.file or self.file
        self.error(E_SUBAGENT_STATEMENT, f"a subagent's body cannot give '{item.keyword}': {why}", item.span,
                   hint="move it to the top level" if item.keyword not in ("class", "workload", "arrivals") else None)
        return False


# Messages in the language's words: an IR field path of the agent structure → what the file wrote.
_WORDS = (
    ("compaction.threshold", "compact at"),
    ("compaction.summary", "compact … to (the summary)"),
    ("compaction.max_compactions", "compact … max"),
    ("compaction.instruction_tokens", "compact … instruction"),
    ("subagent.probability", "subagent (its probability)"),
    ("subagent.params.", "subagent's body: "),
    ("compaction:", "compact:"),
)


def in_language_words(message: str) -> str:
    """An IR message about the agent structure, its field paths in the words the file wrote."""
    for path, words in _WORDS:
        message = message.replace(path, words)
    return message


def count_problems(params, at: str = "") -> list[tuple[str, str]]:
    """(field path, message) of each law of counts (calls, fan-out) that can draw below 1: a
    request makes at least one call, a spawning call starts at least one subagent."""
    from tracedsl import families

    found = []
    slots = []
    if params.request is not None:
        slots.append(("request.calls", params.request.calls, "calls", "a request makes at least one LLM call"))
    if params.subagent is not None:
        slots.append(("subagent.fanout", params.subagent.fanout, "fanout",
                      "a spawning call starts at least one subagent"))
    for path, law, word, why in slots:
        family = families.family_of(law)
        values = [value for name, value in family.arguments(law) if name == family.positional]
        if family.table == "values":
            values += [value for _name, value, _weight in family.entries(law)]
        low = [value for value in values if value < 1]
        if low and getattr(law, "min", None) is None:
            found.append((f"{at}{path}", f"{word} draws {low[0]:g}, below 1: {why}"))
    for session_class_index, session_class in enumerate(params.classes or ()):
        found += count_problems(session_class.params, f"{at}classes.{session_class_index}.params.")
    if params.subagent is not None:
        found += count_problems(params.subagent.params, f"{at}subagent.params.")
    return found
