"""The syntax tree of a .trace file: frozen dataclasses, each node with the span it came from."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from tracedsl.diagnostics import Span

NO_SPAN = Span(0, 0)  # nodes built by decompile, not read from a file


@dataclass(frozen=True)
class Number:
    """A number as written, with its unit: ``32k``, ``2.5s``, ``70%``, ``1_000``."""

    text: str
    digits: Decimal  # the numeric part, exact (underscores removed)
    unit: str  # "", "k", "M", "ms", "s", "min", "%" (or a misspelling, caught by lower)
    span: Span = NO_SPAN


@dataclass(frozen=True)
class Argument:
    """``name=value`` inside a distribution's parentheses (``name`` is "" for a bare value)."""

    name: str
    value: Number
    span: Span = NO_SPAN


@dataclass(frozen=True)
class Entry:
    """One line of a table: ``1k: 50%`` (empirical) or ``tool 80%: pareto(...)`` (mix).

    ``name`` is "" when none is given; ``key`` is the number before the colon, ``value`` what follows it.
    """

    name: str
    key: Number | None
    value: Number | Distribution
    span: Span = NO_SPAN


@dataclass(frozen=True)
class Distribution:
    """A distribution by name: with keyword arguments (``lognormal(mean=6k, median=4k)``), a file
    (``empirical("sizes.csv")``, ``source``) or a table in braces (``entries``, with ``arguments``
    such as ``max=`` among them)."""

    name: str
    arguments: tuple[Argument, ...]
    span: Span = NO_SPAN
    name_span: Span = NO_SPAN
    entries: tuple[Entry, ...] | None = None
    source: str | None = None
    source_span: Span = NO_SPAN


@dataclass(frozen=True)
class TurnRange:
    """``[5, 15)``: brackets include an end, parentheses exclude it."""

    first: Number
    last: Number
    first_included: bool
    last_included: bool
    span: Span = NO_SPAN


@dataclass(frozen=True)
class Option:
    """A modifier after a statement's value: ``bias 1.1``, ``zipf 0.6``, ``at turn [5, 15)``,
    ``truncate``. ``value`` is None for a bare keyword."""

    keyword: str
    value: Number | TurnRange | None
    span: Span = NO_SPAN


@dataclass(frozen=True)
class Component:
    """One component of a delay mix: ``agentic 70%: lognormal(...)``, ``tool 80%: pareto(...)``."""

    role: str  # its name: "agentic" or "human" (the reference's mixture), any other, or ""
    fraction: Number | None
    distribution: Distribution
    span: Span = NO_SPAN


@dataclass(frozen=True)
class Reference:
    """A name standing for the value a ``let`` gave it: ``context ctx``, ``output chat_output``."""

    name: str
    span: Span = NO_SPAN

    @property
    def text(self) -> str:  # printed where a number's text would be
        return self.name


@dataclass(frozen=True)
class Statement:
    """``keyword value options...`` or ``keyword { items }``.

    ``value`` is a Number, a Distribution, a Reference (a ``let``'s name), a string (the
    workload name, an include's path), ``"none"`` (for ``reset none``) or None; ``items`` holds
    a block's statements or the mixture's components. ``name`` is a ``let``'s or a ``class``'s
    name (``name_span`` where a class's is written); ``file`` is the file an included statement
    came from (None: the file being compiled). A ``class``'s value is its fraction.
    """

    keyword: str
    value: Number | Distribution | str | None = None
    options: tuple[Option, ...] = ()
    items: tuple[Statement | Component, ...] | None = None
    span: Span = NO_SPAN
    name: str = ""
    file: str | None = None
    name_span: Span = NO_SPAN


@dataclass(frozen=True)
class Comment:
    """A ``#`` comment, kept for ``fmt``."""

    text: str
    line: int
    column: int


@dataclass(frozen=True)
class Spec:
    """A whole .trace file."""

    statements: tuple[Statement, ...]
    comments: tuple[Comment, ...] = ()
