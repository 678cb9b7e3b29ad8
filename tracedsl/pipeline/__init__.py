"""The front door: every command calls these functions, and so can any Python program.

One module per command family: :mod:`~tracedsl.pipeline.specs` (compile, check, decompile,
fmt, schema), :mod:`~tracedsl.pipeline.runs` (run), :mod:`~tracedsl.pipeline.sweeps` (run --sweep) and :mod:`~tracedsl.pipeline.traces`
(validate, report, simulate). Each function returns data (a workload, a report, paths and
counts) and never prints or exits; bad input raises :class:`PipelineError`, a
:class:`~tracedsl.diagnostics.DiagnosticError` whose ``category`` says what kind of failure it
is (docs/api.md).

Importing this package costs almost nothing (the CLI's start-up is a large part of a small
run): the defaults and the failure types load now, each command family's module on first
use of one of its names, and pydantic, numpy and jinja2 only when a function needs them.
"""

from __future__ import annotations

import importlib

from tracedsl.diagnostics import DiagnosticError
from tracedsl.pipeline.defaults import (
    DEFAULT_MAX_ERRORS,
    DEFAULT_SEED,
    DEFAULT_SESSIONS,
    DEFAULT_SPEC,
    ENGINES,
    MAX_SEED,
    MAX_SESSIONS,
    MAX_TOKENS,
    SIMULATION_DEFAULTS,
    SIMULATION_LAYERS,
    SIMULATION_MAX_SESSIONS,
    VERSION,
    SimulationConfig,
)
from tracedsl.pipeline.failures import Category, PipelineError, category_of

# The names each command family's module gives the package, loaded on first use.
_FAMILIES = {
    "comparing": ("TOLERANCE_HELP", "Tolerances", "compare"),
    "fitting": ("FitResult", "MustHold", "fit"),
    "presets": ("Preset", "list_presets"),
    "runs": ("E_OPTION", "OPTION_FIELDS", "RunFailed", "RunOptions", "RunPlan", "RunResult",
             "abandon_runs", "execute_run", "option_problem", "plan_run", "run", "run_rows"),
    "specs": ("Checked", "Compiled", "Formatted", "check", "compile_document", "compile_file",
              "compile_text", "decompile_text", "format_file", "format_files", "schema_text",
              "write_text"),
    "sweeps": ("SweepResult", "parse_sweeps", "run_sweep"),
    "traces": ("ReportResult", "SimulationRun", "TraceInput", "open_trace", "report", "simulate",
               "validate"),
}
_MODULE_OF = {name: module for module, names in _FAMILIES.items() for name in names}

__all__ = [
    "DEFAULT_MAX_ERRORS", "DEFAULT_SEED", "DEFAULT_SESSIONS", "DEFAULT_SPEC", "ENGINES",
    "MAX_SEED", "MAX_SESSIONS", "MAX_TOKENS", "SIMULATION_DEFAULTS", "SIMULATION_LAYERS",
    "SIMULATION_MAX_SESSIONS", "VERSION", "Category", "DiagnosticError", "PipelineError",
    "SimulationConfig", "category_of", *_MODULE_OF,
]


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'tracedsl.pipeline' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"tracedsl.pipeline.{module}"), name)
    globals()[name] = value  # once loaded, an ordinary attribute (monkeypatch can replace it)
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
