"""Parses .trace text into the syntax tree (grammars/tracedsl.lark, LALR, built once)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from functools import cache

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import LarkError, UnexpectedInput

from tracedsl import resources
from tracedsl.diagnostics import DiagnosticError, Span, normalise_newlines, position
from tracedsl.language import ast
from tracedsl.language.errors import syntax_diagnostic

_NUMBER_PARTS = re.compile(
    r"([+-]?[0-9][0-9_]*(?:\.[0-9][0-9_]*)?(?:[eE][+-]?[0-9]+)?)(.*)", re.DOTALL
)
# The grammar's NUMBER token, for a number written outside a file (``--set turn.output.mean=2k``).
NUMBER_TEXT = re.compile(r"[+-]?[0-9][0-9_]*(\.[0-9][0-9_]*)?([eE][+-]?[0-9]+)?[A-Za-z%]*")
# Only real comments: skip string literals so a '#' inside a workload name is not one.
_COMMENTS = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*')


@cache
def grammar_parser() -> Lark:
    """The LALR parser, built once per process (no parse-table cache on disk)."""
    return Lark(
        resources.grammar_path().read_text(encoding="utf-8"),
        parser="lalr",
        propagate_positions=True,
        maybe_placeholders=False,
    )


def parse(text: str, file: str = "<input>") -> ast.Spec:
    """Parse text into a Spec; a syntax error raises DiagnosticError (the first one only).

    ``\\r\\n``, ``\\r`` and ``\\n`` each end a line (lark counts ``\\n`` alone, so the others
    become ``\\n`` first; lines and columns stay those of the text as given). Nothing else
    ends a line: a form feed or U+2028 is a character of its line, as the excerpt shows it.
    """
    text = normalise_newlines(text)
    try:
        tree = grammar_parser().parse(text)
    except UnexpectedInput as exc:
        raise DiagnosticError(syntax_diagnostic(exc, text, file)) from None
    except (LarkError, RecursionError) as exc:  # pragma: no cover - defensive
        raise DiagnosticError(syntax_diagnostic(exc, text, file)) from None
    statements = _ToAst().transform(tree)
    return ast.Spec(tuple(statements), tuple(_comments(text)))


def parse_number(text: str, span: Span = ast.NO_SPAN) -> ast.Number:
    match = _NUMBER_PARTS.fullmatch(text)
    try:
        digits = Decimal(match.group(1).replace("_", "")) if match else Decimal("NaN")
    except InvalidOperation:  # pragma: no cover - the token pattern guarantees digits
        digits = Decimal("NaN")
    return ast.Number(text, digits, match.group(2) if match else "", span)


def _comments(text: str) -> list[ast.Comment]:
    found = []
    for match in _COMMENTS.finditer(text):
        if match.group().startswith("#"):
            line, column = position(text, match.start())
            found.append(ast.Comment(match.group().rstrip(), line, column))
    return found


def _span(meta) -> Span:
    return Span(meta.line, meta.column, meta.end_line, meta.end_column)


def _token_span(token: Token) -> Span:
    return Span(token.line, token.column, token.end_line, token.end_column)


_rule = v_args(meta=True)


class _ToAst(Transformer):
    """Builds AST nodes named after the grammar rules; validates nothing (lower does)."""

    @_rule
    def start(self, meta, children):
        return children

    def NUMBER(self, token):  # noqa: N802 - lark names terminal callbacks after the terminal
        return parse_number(str(token), _token_span(token))

    @_rule
    def workload(self, meta, children):
        (name,) = children
        return ast.Statement("workload", _unquote(str(name)), span=_span(meta))

    @_rule
    def context(self, meta, children):
        return ast.Statement("context", children[0], span=_span(meta))

    @_rule
    def block(self, meta, children):
        return ast.Statement("block", children[0], span=_span(meta))

    @_rule
    def prefix(self, meta, children):
        return ast.Statement("prefix", items=tuple(children), span=_span(meta))

    @_rule
    def turn(self, meta, children):
        return ast.Statement("turn", items=tuple(children), span=_span(meta))

    @_rule
    def groups(self, meta, children):
        count, *options = children
        return ast.Statement("groups", count, tuple(options), span=_span(meta))

    @_rule
    def group_size(self, meta, children):
        return ast.Option("of", children[0], _span(meta))

    @_rule
    def zipf(self, meta, children):
        return ast.Option("zipf", children[0], _span(meta))

    @_rule
    def session(self, meta, children):
        return ast.Statement("session", children[0], span=_span(meta))

    @_rule
    def new_tokens(self, meta, children):
        dist, *options = children
        return ast.Statement("new_tokens", dist, tuple(options), span=_span(meta))

    @_rule
    def bias(self, meta, children):
        return ast.Option("bias", children[0], _span(meta))

    @_rule
    def output(self, meta, children):
        return ast.Statement("output", children[0], span=_span(meta))

    @_rule
    def delay(self, meta, children):
        components = tuple(c for c in children if isinstance(c, ast.Component))
        options = tuple(c for c in children if isinstance(c, ast.Option))
        return ast.Statement("delay", None, options, components, _span(meta))

    @_rule
    def delay_law(self, meta, children):
        dist, *options = children
        return ast.Statement("delay", dist, tuple(options), span=_span(meta))

    @_rule
    def component(self, meta, children):
        *head, dist = children
        role = next((str(c) for c in head if isinstance(c, Token)), "")
        fraction = next((c for c in head if isinstance(c, ast.Number)), None)
        return ast.Component(role, fraction, dist, _span(meta))

    @_rule
    def role(self, meta, children):
        return children[0]

    @_rule
    def delay_max(self, meta, children):
        return ast.Option("max", children[0], _span(meta))

    @_rule
    def turns(self, meta, children):
        dist, *options = children
        return ast.Statement("turns", dist, tuple(options), span=_span(meta))

    @_rule
    def truncate(self, meta, children):
        return ast.Option("truncate", None, _span(meta))

    @_rule
    def retry(self, meta, children):
        return ast.Option("retry", children[0], _span(meta))

    @_rule
    def reset(self, meta, children):
        first, *options = children
        value = "none" if isinstance(first, Token) else first
        return ast.Statement("reset", value, tuple(options), span=_span(meta))

    @_rule
    def scaling(self, meta, children):
        return ast.Option("scaling", children[0], _span(meta))

    @_rule
    def restart(self, meta, children):
        probability, *options = children
        return ast.Statement("restart", probability, tuple(options), span=_span(meta))

    @_rule
    def turn_range(self, meta, children):
        opening, first, last, closing = children
        found = ast.TurnRange(first, last, str(opening) == "[", str(closing) == "]", _span(meta))
        return ast.Option("at turn", found, _span(meta))

    @_rule
    def arrivals(self, meta, children):
        return ast.Statement("arrivals", children[0], span=_span(meta))

    @_rule
    def arrival_stages(self, meta, children):
        return ast.Statement("arrivals", "stages", items=tuple(children), span=_span(meta))

    @_rule
    def stage_hold(self, meta, children):
        duration, rate = children
        return ast.Statement("hold", duration, (ast.Option("at", rate, rate.span),), span=_span(meta))

    @_rule
    def stage_ramp(self, meta, children):
        duration, rate = children
        return ast.Statement("ramp", duration, (ast.Option("ramp to", rate, rate.span),), span=_span(meta))

    @_rule
    def latency(self, meta, children):
        return ast.Statement("latency", items=tuple(children), span=_span(meta))

    @_rule
    def latency_item(self, meta, children):
        name, value = children
        return ast.Statement(str(name), value, span=_span(meta))

    @_rule
    def distribution(self, meta, children):
        name, *arguments = children
        return ast.Distribution(str(name), tuple(arguments), _span(meta), _token_span(name))

    @_rule
    def distribution_file(self, meta, children):
        name, path = children
        return ast.Distribution(
            str(name), (), _span(meta), _token_span(name),
            source=_unquote(str(path)), source_span=_token_span(path),
        )

    @_rule
    def distribution_table(self, meta, children):
        name, *items = children
        entries = tuple(item for item in items if isinstance(item, ast.Entry))
        arguments = tuple(item for item in items if isinstance(item, ast.Argument))
        return ast.Distribution(str(name), arguments, _span(meta), _token_span(name), entries=entries)

    @_rule
    def entry(self, meta, children):
        *head, value = children
        name = next((str(c) for c in head if isinstance(c, Token)), "")
        key = next((c for c in head if isinstance(c, ast.Number)), None)
        return ast.Entry(name, key, value, _span(meta))

    @_rule
    def argument(self, meta, children):
        *name, value = children  # no name: a positional value (``constant(1k)``)
        return ast.Argument(str(name[0]) if name else "", value, _span(meta))


    # Agent structure ------------------------------------------------------------------

    @_rule
    def request(self, meta, children):
        return ast.Statement("request", items=tuple(children), span=_span(meta))

    @_rule
    def request_none(self, meta, children):
        return ast.Statement("request", "none", span=_span(meta))

    @_rule
    def compact_none(self, meta, children):
        return ast.Statement("compact", "none", span=_span(meta))

    @_rule
    def subagent_none(self, meta, children):
        return ast.Statement("subagent", "none", span=_span(meta))

    @_rule
    def calls(self, meta, children):
        return ast.Statement("calls", children[0], span=_span(meta))

    @_rule
    def message(self, meta, children):
        return ast.Statement("message", children[0], span=_span(meta))

    @_rule
    def think(self, meta, children):
        return ast.Statement("think", children[0], span=_span(meta))

    @_rule
    def compact(self, meta, children):
        threshold, summary, *options = children
        at = ast.Option("at", threshold, threshold.span)
        return ast.Statement("compact", summary, (at, *options), span=_span(meta))

    @_rule
    def compact_max(self, meta, children):
        return ast.Option("max", children[0], _span(meta))

    @_rule
    def instruction(self, meta, children):
        return ast.Option("instruction", children[0], _span(meta))

    @_rule
    def subagent(self, meta, children):
        probability, fanout, *statements = children
        option = ast.Option("fanout", fanout, fanout.span)
        return ast.Statement("subagent", probability, (option,), tuple(statements), _span(meta))

    @_rule
    def returns(self, meta, children):
        return ast.Statement("returns", children[0], span=_span(meta))

    # Reuse ----------------------------------------------------------------------------

    @_rule
    def reference(self, meta, children):
        (name,) = children
        return ast.Reference(str(name), _token_span(name))

    @_rule
    def let(self, meta, children):
        name, value = children
        return ast.Statement("let", value, span=_span(meta), name=str(name))

    @_rule
    def session_class(self, meta, children):
        name, fraction, *statements = children
        return ast.Statement("class", fraction, items=tuple(statements), span=_span(meta),
                             name=str(name), name_span=_token_span(name))

    @_rule
    def include(self, meta, children):
        (path,) = children
        return ast.Statement("include", _unquote(str(path)), span=_span(meta))


# ``global`` is a Python keyword; lark looks the callback up by the rule's name.
def _global(self, meta, children):
    return ast.Statement("global", children[0], span=_span(meta))


setattr(_ToAst, "global", _rule(_global))


def _unquote(literal: str) -> str:
    body = literal[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "r": "\r"}.get(m.group(1), m.group(1)), body)
