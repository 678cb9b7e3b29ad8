"""`tracedsl compare`: two traces' figures side by side, with a verdict at stated tolerances.

A and B are anything :func:`tracedsl.analysis.load.load` reads (a run directory, an AIPerf
dataset, a foreign Mooncake trace, TraceLab rows). Nothing here prints or exits; bad input is a
located :class:`~tracedsl.pipeline.PipelineError` (a bad tolerance E216, a bad row the reader's code).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tracedsl.analysis.tolerances import TOLERANCE_HELP, Tolerances
from tracedsl.codes import E_TOLERANCE
from tracedsl.diagnostics import Diagnostic
from tracedsl.pipeline.failures import Category, PipelineError, categorised, fail, io_failure

if TYPE_CHECKING:  # numpy and the analysis load when a comparison runs, not at start-up
    from tracedsl.analysis.compare import Comparison

__all__ = ["TOLERANCE_HELP", "Tolerances", "compare"]


def compare(a: str | Path, b: str | Path, *, block_size: int | tuple[int | None, int | None] | None = None,
            tolerances: Tolerances | None = None, html: str | Path | None = None) -> Comparison:
    """Compare trace ``a`` with trace ``b``; write the HTML page to ``html`` when given.

    ``block_size``: one size for both traces, or ``(for_a, for_b)``; None (or a None side) takes
    each trace's own (its manifest's, else inferred from its rows)."""
    from tracedsl.analysis.compare import compare as compare_profiles
    from tracedsl.analysis.load import load
    from tracedsl.analysis.profile import profile

    tolerances = tolerances if tolerances is not None else Tolerances()
    if not isinstance(tolerances, Tolerances):
        raise fail(E_TOLERANCE, f"tolerances must be a Tolerances, not {type(tolerances).__name__}", Category.USAGE)
    problems = tolerances.problems()
    if problems:
        raise PipelineError([Diagnostic(E_TOLERANCE, message, file=where,
                                        hint="a tolerance is a distance: 0 or more (docs/compare.md)")
                             for where, message in problems], Category.USAGE)
    size_a, size_b = block_size if isinstance(block_size, tuple) else (block_size, block_size)
    profiles = []
    for target, size in ((a, size_a), (b, size_b)):
        trace = load(target, size)
        with categorised(Category.INPUT):
            try:
                profiles.append(profile(trace))
            except OSError as error:
                raise io_failure(error, str(trace.dataset), writing=False, what="cannot read") from error
    comparison = compare_profiles(profiles[0], profiles[1], tolerances)
    if html is not None:
        _write_html(comparison, profiles, Path(html))
    return comparison


def _write_html(comparison: Comparison, profiles: list, path: Path) -> None:
    from tracedsl.analysis.compare_html import render_comparison

    page = render_comparison(comparison, profiles[0], profiles[1])
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as error:
        raise io_failure(error, str(path), writing=True, what="cannot write the HTML page") from error
