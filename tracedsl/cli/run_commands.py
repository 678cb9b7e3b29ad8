"""CLI commands: run."""

from __future__ import annotations

COMMANDS: list = []
