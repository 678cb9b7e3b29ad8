"""What every distribution family provides: its IR model's base, its laws, and its entry in the registry.

A family (one module in this package) gives:

- ``model``: a frozen pydantic model (an :class:`IRModel`) with a ``kind`` literal defaulting
  to its name and dumped into spec.json (only the reference's lognormal leaves it out,
  since reference configs have none), ``min`` and ``max`` (``None`` when unbounded) and
  whatever parameters it takes;
- ``parameters``: its keywords in the language, each taking the slot's unit (``SLOT``: tokens
  or times) or none (``PLAIN``);
- ``exact(dist, scale)``: the law restricted to [min, max] (the fast engine samples it, and
  the fast engine's quality targets are its mean, median and quantiles);
- ``reference(dist, scale)``: the reference's own bounded law, for a family AIPerf has (the
  aiperf engine draws it, one scalar at a time from its ``drawer(normal)``, and the aiperf
  engine's targets follow it); other families raise ``ValueError`` and the aiperf engine
  refuses them;
- ``arguments(dist)``: the keywords decompile prints, which compile back to ``dist`` exactly;
- ``warnings(dist, scale)``: valid but probably unmeant parameters;
- optionally ``positional`` (the keyword a bare value stands for, ``constant(1k)``), ``table``
  with ``entries(dist)`` (a family written in braces: ``empirical { 1k: 50% }``, ``mix { … }``)
  and ``bind(union)`` (a model holding laws of any family gets the registry's union once built).

The laws of tracedsl.families.truncated restrict a continuous law to [min, max] by inverse CDF.

``scale`` multiplies the variable before the bounds apply (new tokens' ``bias``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

# How an argument's number is read: in the slot's unit (tokens, or times), or as a plain number.
SLOT = "slot"
PLAIN = "plain"

ENGINES = ("fast", "aiperf")


@dataclass(frozen=True)
class Issue:
    """One cross-field problem: a message and the field paths (relative to the model) it involves."""

    message: str
    paths: tuple[str, ...] = ()
    hint: str | None = None


class ParamsError(ValueError):
    """Raised by a model validator; carries every :class:`Issue` it found."""

    def __init__(self, issues: list[Issue]):
        self.issues = issues
        super().__init__("; ".join(issue.message for issue in issues))


class IRModel(BaseModel):
    """The base of every IR model: unknown keys refused, frozen, no type coercion."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Law:
    """A bounded law: sampled by its inverse CDF from uniforms, and its figures for quality targets.

    A family's law implements ``sample`` and ``cdf``; ``quantile`` and ``expect`` default to
    the inverse CDF itself (midpoint quadrature over the uniforms), and a family may
    override them with something more exact.
    """

    _NODES = 20001

    def sample(self, u: np.ndarray) -> np.ndarray:
        """One value per uniform in (0, 1), any shape: the inverse CDF of the bounded law (or
        of its survival function, where that keeps precision; then override ``quantile``)."""
        raise NotImplementedError

    def cdf(self, x: float) -> float:
        """P(X <= x)."""
        raise NotImplementedError

    def quantile(self, q: float) -> float:
        return float(self.sample(np.array([q], dtype=np.float64))[0])

    def quantiles(self, u: np.ndarray) -> np.ndarray:
        """The quantile function, vectorized (``sample`` itself, where that increases in ``u``)."""
        return self.sample(u)

    def cdf_before(self, x: float) -> float:
        """P(X < x): the CDF's left limit, which differs from :meth:`cdf` at an atom."""
        return self.cdf(x)

    def expect(self, transform: Callable[[np.ndarray], np.ndarray]) -> float:
        """E[transform(X)] for one draw X (transform works on arrays)."""
        u = (np.arange(self._NODES, dtype=np.float64) + 0.5) / self._NODES
        return float(np.mean(transform(self.sample(u))))

    @property
    def mean(self) -> float:
        return self.expect(lambda x: x)

    @property
    def median(self) -> float:
        return self.quantile(0.5)

    @property
    def mass(self) -> float:
        """The share of the unbounded law that lies inside the bounds (1.0 when unbounded)."""
        return 1.0


class Family:
    """One distribution family; a module in this package makes one and the registry lists it."""

    name: ClassVar[str]
    model: ClassVar[type[IRModel]]
    parameters: ClassVar[dict[str, str]]
    # The keyword a bare value stands for (``constant(1k)``), or None when every one is named.
    positional: ClassVar[str | None] = None
    # A family written as a table in braces: "values" (``value: weight`` lines, or a file of
    # values) or "laws" (``[name] weight: law`` lines); None for keyword arguments only.
    table: ClassVar[str | None] = None

    def bind(self, distribution: Any) -> None:
        """Called once with the registry's union of models, for a family whose model holds laws."""

    def exact(self, dist: Any, scale: float = 1.0) -> Law:
        raise NotImplementedError

    def reference(self, dist: Any, scale: float = 1.0) -> Law:
        raise ValueError(f"AIPerf has no {self.name} distribution")

    def law(self, dist: Any, engine: str = "fast", scale: float = 1.0) -> Law:
        """The law ``engine`` draws: the exact bounded law, or the reference's for ``aiperf``."""
        if engine not in ENGINES:
            raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
        return self.reference(dist, scale) if engine == "aiperf" else self.exact(dist, scale)

    def arguments(self, dist: Any) -> list[tuple[str, float]]:
        """(keyword, value) pairs that compile back to ``dist``, in the order they are printed."""
        raise NotImplementedError

    def entries(self, dist: Any) -> list[tuple[str, Any, Any]]:
        """A table family's lines, as decompile prints them: (name, before the colon, after it)."""
        raise NotImplementedError

    def warnings(self, dist: Any, scale: float = 1.0) -> list[Issue]:
        return []


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def fmt(value: float | None) -> str:
    """A number as a message shows it: whole numbers without a point."""
    if value is None:
        return "none"
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(value)
