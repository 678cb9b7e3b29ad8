"""CLI commands: spec."""

from __future__ import annotations

COMMANDS: list = []
