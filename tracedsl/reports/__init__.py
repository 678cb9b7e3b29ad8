"""Reports of a trace: quality.json, comparison.txt, report.html, cache_explorer.html, simulation.html.

Importing the package costs nothing: ``ReportSet`` (numpy, pydantic) loads on first use, so
commands that only need a light submodule (the simulation's option parsing) start fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tracedsl.reports.reportset import ReportSet

__all__ = ["ReportSet"]


def __getattr__(name: str):
    if name == "ReportSet":
        from tracedsl.reports.reportset import ReportSet

        return ReportSet
    raise AttributeError(f"module 'tracedsl.reports' has no attribute {name!r}")
