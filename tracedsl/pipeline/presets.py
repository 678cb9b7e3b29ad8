"""The bundled specs (presets): each one's name, file and one-line description."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tracedsl.resources import bundled_spec_names, bundled_spec_path


@dataclass(frozen=True)
class Preset:
    """A bundled spec: ``tracedsl run NAME`` runs it."""

    name: str
    path: Path
    description: str  # the spec's first comment line

    def to_json(self) -> dict:
        return {"name": self.name, "description": self.description, "path": str(self.path)}


def description_of(text: str) -> str:
    """A spec's one-line description: its first line when that is a comment, else ""."""
    first = text.split("\n", 1)[0].strip()
    return first.lstrip("#").strip() if first.startswith("#") else ""


def list_presets() -> list[Preset]:
    """Every bundled spec, by name."""
    found = []
    for name in bundled_spec_names():
        path = bundled_spec_path(name)
        found.append(Preset(name, path, description_of(path.read_text(encoding="utf-8"))))
    return found
