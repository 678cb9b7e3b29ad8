"""Locates the grammar and the bundled specs, installed or in a source checkout."""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


@cache
def data_dir(name: str) -> Path:
    """The directory ``grammars`` or ``specs``: inside the wheel, else the checkout's top level."""
    installed = _PACKAGE_DIR / "_data" / name
    if installed.is_dir():
        return installed
    checkout = _PACKAGE_DIR.parent / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"tracedsl cannot find its {name}/ directory (looked in {installed} and {checkout})")


def grammar_path() -> Path:
    return data_dir("grammars") / "tracedsl.lark"


def bundled_spec_names() -> list[str]:
    """Names of the bundled ``.trace`` specs, e.g. ``default``."""
    return sorted(p.stem for p in data_dir("specs").glob("*.trace"))


def bundled_spec_path(name: str) -> Path | None:
    """The bundled spec called ``name`` (with or without ``.trace``), or None."""
    stem = name[: -len(".trace")] if name.endswith(".trace") else name
    if "/" in stem or "\\" in stem or not stem:
        return None
    path = data_dir("specs") / f"{stem}.trace"
    return path if path.is_file() else None
