"""The distribution families: one module each, listed in one table that the IR, the language and the engines read.

Adding a family is its module (see :mod:`tracedsl.families.base` for what it provides), a
line in ``_TABLE`` below, its docs and its tests. A family from outside the package can be
added with :func:`register` before :mod:`tracedsl.ir` is first imported (the IR's union of
distribution models is built once, at import).
"""

from __future__ import annotations

from typing import Any

from tracedsl.families import (
    constant,
    empirical,
    exponential,
    gamma,
    lognormal,
    mix,
    normal,
    pareto,
    uniform,
    weibull,
)
from tracedsl.families.base import ENGINES, PLAIN, SLOT, Family, IRModel, Issue, Law, ParamsError

__all__ = [
    "ENGINES",
    "PLAIN",
    "REFERENCE_KIND",
    "SLOT",
    "Family",
    "IRModel",
    "Issue",
    "Law",
    "ParamsError",
    "family_of",
    "freeze",
    "get",
    "law",
    "names",
    "register",
]

_TABLE: dict[str, Family] = {
    family.name: family
    for family in (
        lognormal.FAMILY,
        constant.FAMILY,
        uniform.FAMILY,
        normal.FAMILY,
        gamma.FAMILY,
        exponential.FAMILY,
        pareto.FAMILY,
        weibull.FAMILY,
        empirical.FAMILY,
        mix.FAMILY,
    )
}

# The family of a distribution that names no kind: the reference's only one, so reference
# configs validate unchanged.
REFERENCE_KIND = lognormal.FAMILY.name

_frozen = False


def register(family: Family) -> None:
    """Add a family; only before the IR is built (importing tracedsl.ir freezes the table)."""
    if _frozen:
        raise RuntimeError(
            f"cannot register '{family.name}': tracedsl.ir is already imported and its "
            "distribution union is built; register families before importing it"
        )
    if family.name in _TABLE:
        raise ValueError(f"a family named '{family.name}' is already registered")
    kind = family.model.model_fields.get("kind")
    if kind is None or kind.default != family.name or kind.exclude:
        # Only the reference's family may leave its kind out of spec.json (reference configs
        # have none); any other would read back as that family.
        raise ValueError(f"family '{family.name}': its model needs a dumped kind defaulting to '{family.name}'")
    _TABLE[family.name] = family


def freeze() -> tuple[Family, ...]:
    """Every family, in table order; no more can be registered after this (the IR calls it)."""
    global _frozen
    _frozen = True
    return tuple(_TABLE.values())


def names() -> tuple[str, ...]:
    return tuple(_TABLE)


def get(name: str) -> Family | None:
    return _TABLE.get(name)


def family_of(dist: Any) -> Family:
    """The family of an IR distribution (or of its model class)."""
    return _TABLE[dist.model_fields["kind"].default if isinstance(dist, type) else dist.kind]


def law(dist: Any, engine: str = "fast", scale: float = 1.0) -> Law:
    """The bounded law that ``engine`` draws ``dist`` from (``scale`` multiplies the variable)."""
    return family_of(dist).law(dist, engine, scale)
