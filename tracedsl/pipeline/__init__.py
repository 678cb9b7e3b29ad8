"""The front door: every command calls these functions, and so can any Python program.

One module per command family: :mod:`~tracedsl.pipeline.specs` (compile, check, decompile,
fmt, schema), :mod:`~tracedsl.pipeline.runs` (run) and :mod:`~tracedsl.pipeline.traces`
(validate, report, simulate). Each function returns data (a workload, a report, paths and
counts) and never prints or exits; bad input raises :class:`PipelineError`, a
:class:`~tracedsl.diagnostics.DiagnosticError` whose ``category`` says what kind of failure it
is (docs/api.md). Importing this package is cheap: pydantic, numpy and jinja2 load when a
function needs them.
"""

from __future__ import annotations

from tracedsl import __version__ as VERSION
from tracedsl.diagnostics import DiagnosticError
from tracedsl.pipeline.failures import Category, PipelineError, category_of
from tracedsl.pipeline.runs import (
    DEFAULT_SEED,
    DEFAULT_SESSIONS,
    DEFAULT_SPEC,
    E_OPTION,
    ENGINES,
    MAX_SEED,
    MAX_SESSIONS,
    OPTION_FIELDS,
    RunFailed,
    RunOptions,
    RunPlan,
    RunResult,
    execute_run,
    option_problem,
    plan_run,
    run,
    run_rows,
)
from tracedsl.pipeline.specs import (
    Checked,
    Compiled,
    Formatted,
    check,
    compile_document,
    compile_file,
    compile_text,
    decompile_text,
    format_file,
    format_files,
    schema_text,
    write_text,
)
from tracedsl.pipeline.traces import (
    DEFAULT_MAX_ERRORS,
    MAX_TOKENS,
    SIMULATION_DEFAULTS,
    SIMULATION_LAYERS,
    SIMULATION_MAX_SESSIONS,
    ReportResult,
    SimulationConfig,
    SimulationRun,
    TraceInput,
    open_trace,
    report,
    simulate,
    validate,
)

__all__ = [
    "Category", "Checked", "Compiled", "DEFAULT_MAX_ERRORS", "DEFAULT_SEED", "DEFAULT_SESSIONS",
    "DEFAULT_SPEC", "DiagnosticError", "E_OPTION", "ENGINES", "Formatted", "MAX_SEED",
    "MAX_SESSIONS", "MAX_TOKENS", "OPTION_FIELDS", "PipelineError", "ReportResult", "RunFailed",
    "RunOptions", "RunPlan", "RunResult", "SIMULATION_DEFAULTS", "SIMULATION_LAYERS",
    "SIMULATION_MAX_SESSIONS", "SimulationConfig", "SimulationRun", "TraceInput", "VERSION",
    "category_of", "check", "compile_document", "compile_file", "compile_text", "decompile_text",
    "execute_run", "format_file", "format_files", "open_trace", "option_problem", "plan_run", "report", "run",
    "run_rows", "schema_text", "simulate", "validate", "write_text",
]
