"""The law chooser fit uses: helper F1's ``laws`` module when present, else the interim tables."""

from __future__ import annotations

try:
    from tracedsl.analysis.fit.laws import FittedLaw, fit_count, fit_delay, fit_law
except ImportError:  # laws.py not merged into this branch yet
    from tracedsl.analysis.fit.interim import FittedLaw, fit_count, fit_delay, fit_law

__all__ = ["FittedLaw", "fit_count", "fit_delay", "fit_law"]
