"""The .trace language: text to IR (parse, lower) and IR back to canonical text (format)."""

from __future__ import annotations


def compile_source(text: str, file: str):
    """Compile .trace text into a Workload and its warnings; errors raise DiagnosticError."""
    from tracedsl.diagnostics import DiagnosticError, with_source
    from tracedsl.language.lower import compile_text

    try:
        workload, warnings = compile_text(text, file)
    except DiagnosticError as error:
        raise DiagnosticError(with_source(error.diagnostics, text, file)) from None
    return workload, with_source(warnings, text, file)
