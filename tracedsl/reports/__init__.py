"""Reports of a trace: quality.json, comparison.txt, report.html, cache_explorer.html, simulation.html."""

from tracedsl.reports.reportset import ReportSet

__all__ = ["ReportSet"]
