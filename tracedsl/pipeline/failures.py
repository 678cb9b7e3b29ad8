"""How the pipeline fails: one exception, a DiagnosticError, with the kind of failure it is.

Every pipeline function turns what went wrong (a bad spec, an engine limit, a run that failed
its own checks, a lost Dask worker, a file that cannot be written) into diagnostics and
raises :class:`PipelineError`, a :class:`~tracedsl.diagnostics.DiagnosticError` whose
``category`` the CLI maps to an exit code. Nothing here prints or exits.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from enum import Enum

# The codes of the diagnostics the pipeline itself makes, importable from here as before; each
# is defined, with what it means, in tracedsl/codes.py.
from tracedsl.codes import (
    E_BLOCK_SIZE,
    E_EMPTY_TRACE,
    E_ENGINE_LIMIT,
    E_EXECUTOR,
    E_NOT_A_RUN,
    E_OPTION,
    E_OPTIONS,
    E_RUN_CHECK,
    E_STRICT,
    E_UNREADABLE,
    E_UNWRITABLE,
)
from tracedsl.diagnostics import Diagnostic, DiagnosticError

__all__ = ["E_BLOCK_SIZE", "E_EMPTY_TRACE", "E_ENGINE_LIMIT", "E_EXECUTOR", "E_NOT_A_RUN", "E_OPTION",
           "E_OPTIONS", "E_RUN_CHECK", "E_STRICT", "E_UNREADABLE", "E_UNWRITABLE", "Category",
           "PipelineError", "categorised", "category_of", "fail", "io_failure"]


class Category(str, Enum):
    """What kind of failure: the CLI gives each one exit code (tracedsl/cli/exitcodes.py)."""

    FAILED = "failed"  # the command ran and found problems (check, fmt --check, run --strict)
    USAGE = "usage"  # options that cannot be used together
    INPUT = "input"  # a spec, config, manifest or trace that is malformed or invalid
    IO = "io"  # a file that cannot be read or written, an executor out of reach
    LIMIT = "limit"  # a valid spec that the chosen engine cannot run


class PipelineError(DiagnosticError):
    """A DiagnosticError that says what kind of failure it is."""

    def __init__(self, diagnostics: list[Diagnostic] | Diagnostic, category: Category = Category.INPUT):
        super().__init__(diagnostics)
        self.category = category


def category_of(error: DiagnosticError) -> Category:
    """The failure's category; a stage's own DiagnosticError is I/O when every error is E4xx."""
    category = getattr(error, "category", None)
    if isinstance(category, Category):
        return category
    errors = [d for d in error.diagnostics if d.is_error]
    return Category.IO if errors and all(d.code.startswith("E4") for d in errors) else Category.INPUT


def fail(code: str, message: str, category: Category, *, file: str | None = None,
         path: str | None = None, hint: str | None = None) -> PipelineError:
    """One diagnostic as a PipelineError, to raise."""
    return PipelineError(Diagnostic(code, message, file=file, path=path, hint=hint), category)


def io_failure(error: OSError, file: str | None = None, *, writing: bool, what: str = "") -> PipelineError:
    """An OSError as an I/O diagnostic on ``file`` (else the file the error names)."""
    reason = error.strerror or str(error)
    shown = file if file is not None else (str(error.filename) if error.filename else None)
    return fail(E_UNWRITABLE if writing else E_UNREADABLE, f"{what}: {reason}" if what else reason,
                Category.IO, file=shown)


@contextlib.contextmanager
def categorised(category: Category | None = None) -> Iterator[None]:
    """Give a stage's plain DiagnosticError a category (``category``, else by its codes)."""
    try:
        yield
    except PipelineError:
        raise
    except DiagnosticError as error:
        raise PipelineError(error.diagnostics, category or category_of(error)) from error
