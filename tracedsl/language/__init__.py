"""The .trace language: text to IR (parse, lower) and IR back to canonical text (format)."""

from __future__ import annotations


def compile_source(text: str, file: str):
    """Compile .trace text into a Workload and its warnings; errors raise DiagnosticError."""
    from tracedsl.language.lower import compile_text

    return compile_text(text, file)
