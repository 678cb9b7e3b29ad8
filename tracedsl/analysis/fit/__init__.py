"""``tracedsl fit``: a commented .trace whose run resembles a given trace (docs/fit.md).

:func:`fit_trace` observes the trace (:mod:`.structure`), fits the statements calibration does
not touch and drafts the rest (:mod:`.writer`), calibrates the shared layers, the session
layer's scale and the arrival rate on runs of the draft (:mod:`.calibrate`), and returns the
text with what the last round measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from tracedsl.analysis.fit.calibrate import Round, calibrate, measured_by, within_margins
from tracedsl.analysis.fit.classes import cluster, subset
from tracedsl.analysis.fit.structure import (
    Figures,
    Layers,
    Observed,
    observe,
    shared_layers,
    zipf_skew,
)
from tracedsl.analysis.fit.writer import ClassPlan, Knobs, draft, figures_lines, plan, render
from tracedsl.analysis.load import AnalysisInput

MIN_GROUPED = 0.02  # first rows that must share a group run for a groups layer


@dataclass
class FitOutcome:
    text: str
    target: Figures
    achieved: Figures
    rounds: list[Round]
    layers: Layers
    notes: list[str] = field(default_factory=list)


def fit_trace(trace: AnalysisInput, *, seed: int, name: str | None = None, classes: int | None = None) -> FitOutcome:
    """Fit ``trace``; every calibration run uses ``seed`` and the input's number of sessions."""
    observed = observe(trace)
    layers = shared_layers(observed.first_ids)
    fitted = plan(observed)
    knobs = initial_knobs(observed, layers)
    name = name or f"{trace.name}-fit"
    source = (f"{trace.name} ({trace.format}, {observed.figures.sessions:,} sessions from "
              f"{trace.sessions_from}, {observed.figures.rows:,} rows; block size from {trace.block_size_from})")

    found = class_plans(observed, classes) if classes and classes > 1 else None

    def text_of(k: Knobs, header: list[str] | None = None, tables: bool = True) -> str:
        return render(draft(observed, fitted, k, name, header or [], tables, found))

    typical = int(np.median([ids.size for ids in observed.first_ids])) if observed.first_ids else 1
    measure = measured_by(text_of, seed, observed.block_size)
    knobs, achieved, rounds = calibrate(observed, knobs, measure, max(typical - knobs.global_blocks, 1))
    # The chooser's laws for the session layer and the output, at the calibrated scales, when
    # their run still meets the must-holds within half their margins; else the tables stay.
    chosen = measured_by(lambda k: text_of(k, tables=False), seed, observed.block_size)(knobs, observed.figures.sessions)
    tables = not within_margins(chosen, observed.figures, 0.5)
    if not tables:
        achieved = chosen
    header = [f"Fitted by `tracedsl fit` from {source}.",
              f"Calibrated in {len(rounds)} rounds of runs (seed {seed}, at most {rounds[-1].sessions:,} "
              "sessions); a run of this file measured:",
              *(f"  {line}" for line in figures_lines(observed.figures, achieved)),
              *(f"Not fitted: {note}." for note in fitted.notes)]
    return FitOutcome(text_of(knobs, header, tables), observed.figures, achieved, rounds, layers, fitted.notes)


def class_plans(observed: Observed, k: int) -> list[ClassPlan]:
    """The K session classes (docs/fit.md): each one's values fitted apart; the shared layers,
    the context, compactions, restarts and arrivals stay the whole trace's."""
    labels = cluster(observed, k)
    primaries = labels[observed.primary_session]
    found = []
    for number in range(int(labels.max()) + 1):
        keep = labels == number
        part = replace(subset(observed, keep), compactions=None,
                       restart_turns=np.zeros(0, dtype=np.int64))
        if not part.outputs.size or not (primaries == number).any():
            continue
        fitted = plan(part)
        found.append(ClassPlan(f"c{len(found) + 1}", float((primaries == number).mean()), part, fitted,
                               int((primaries == number).sum())))
    return found


def initial_knobs(observed: Observed, layers: Layers) -> Knobs:
    grouped = layers.grouped_share >= MIN_GROUPED and layers.group_blocks > 0
    groups = int(layers.group_sizes.size) if grouped else 1
    zipf = zipf_skew(layers.group_sizes) if grouped else 0.0
    return Knobs(layers.global_blocks, groups, layers.group_blocks if grouped else 0, zipf,
                 rate=observed.figures.arrival_rate)
