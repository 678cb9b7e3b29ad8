"""Per session class: the figures of each class's own sessions, gathered chunk by chunk.

A session's class comes from its chunk's ``class_index`` extra (the engine's, in the spec's
class order; ``tracedsl report`` fills it from sessions.jsonl). A chunk without it is counted
in the whole-trace figures only (as is a session of class -1: one sessions.jsonl does not name),
and quality.json says how many sessions no class holds.
"""

from __future__ import annotations

import numpy as np

from tracedsl.ir import GenerationParams
from tracedsl.reports.sketch import Sketch
from tracedsl.trace import EndReason, TraceChunk

CLASS_METRICS = (
    "request_isl", "initial_context", "initial_context_primary", "new_tokens", "generation_length",
    "delay_ms", "delay_unscaled_ms", "turns", "final_utilization",
)


class ClassFigures:
    """One class's sketches, endings and counts, and its share of the reuse analysis."""

    def __init__(self, name: str, fraction: float, body: GenerationParams) -> None:
        self.name = name
        self.fraction = fraction
        self.body = body
        self.sketch = {metric: Sketch() for metric in CLASS_METRICS}
        self.end_reasons: dict[EndReason, int] = dict.fromkeys(EndReason, 0)
        self.sessions = self.primaries = self.rows = 0
        self.prompt_blocks = self.hit_blocks = self.analysed_requests = 0


class ClassSplit:
    """Every class's figures; ``add`` takes the per-row columns the whole-trace collector made."""

    def __init__(self, params: GenerationParams) -> None:
        self.figures = [ClassFigures(name or "", fraction, body) for name, fraction, body in params.bodies()]
        # Each class's context limit, then the top-level one for a session of no known class (-1).
        self.limits = np.array([body.max_prompt_tokens for _, _, body in params.bodies()]
                               + [params.max_prompt_tokens], dtype=np.float64)
        self.unplaced = 0  # sessions whose class is not known (-1, or a chunk without the column)

    @staticmethod
    def of(chunk: TraceChunk) -> np.ndarray | None:
        """Each session's class index, or None when the chunk does not carry it."""
        index = chunk.extras.get("class_index")
        return None if index is None else np.asarray(index, dtype=np.int64)

    def row_limits(self, session_class: np.ndarray, turns: np.ndarray) -> np.ndarray:
        """Each row's context limit: its class's max_prompt_tokens."""
        return np.repeat(self.limits[session_class], turns)

    def add(self, chunk: TraceChunk, session_class: np.ndarray | None, rows: dict[str, np.ndarray]) -> None:
        """``rows``: per-row columns (request_isl, generation_length, delay_unscaled_ms over all
        rows, NaN on turn 0) and per-session ``final_utilization``."""
        if session_class is None:
            self.unplaced += chunk.num_sessions
            return
        turns = chunk.turns_per_session
        firsts = chunk.row_offsets[:-1]
        primary = chunk.is_primary
        row_class = np.repeat(session_class, turns)
        later = chunk.turn_index > 0
        placed = session_class >= 0
        self.unplaced += int((~placed).sum())
        present = np.bincount(session_class[placed], minlength=len(self.figures))
        for number in np.flatnonzero(present).tolist():
            figures = self.figures[number]
            mine = session_class == number
            my_rows = row_class == number
            sketch = figures.sketch
            sketch["request_isl"].add(rows["request_isl"][my_rows])
            sketch["generation_length"].add(rows["generation_length"][my_rows])
            sketch["initial_context"].add(chunk.input_length[firsts[mine]])
            sketch["initial_context_primary"].add(chunk.input_length[firsts[mine & primary]])
            my_later = my_rows & later
            sketch["new_tokens"].add(chunk.input_length[my_later])
            sketch["delay_ms"].add(chunk.delay_ms[my_later])
            sketch["delay_unscaled_ms"].add(rows["delay_unscaled_ms"][my_later])
            sketch["turns"].add(turns[mine])
            sketch["final_utilization"].add(rows["final_utilization"][mine])
            counts = np.bincount(chunk.end_reasons[mine].astype(np.int64) + 1)
            for code in np.flatnonzero(counts).tolist():
                figures.end_reasons[EndReason.of(code - 1)] += int(counts[code])
            figures.sessions += int(mine.sum())
            figures.primaries += int((mine & primary).sum())
            figures.rows += int(my_rows.sum())

    def add_reuse(self, session_class: np.ndarray | None, turns: np.ndarray, prompt: np.ndarray,
                  hit: np.ndarray) -> None:
        """The analysed rows' prompt and hit blocks (the first ``prompt.size`` rows of the chunk)."""
        if session_class is None or not prompt.size:
            return
        row_class = np.repeat(session_class, turns)[: prompt.size]
        placed = row_class >= 0
        row_class, prompt, hit = row_class[placed], prompt[placed], hit[placed]
        size = len(self.figures)
        prompts = np.bincount(row_class, weights=prompt, minlength=size)
        hits = np.bincount(row_class, weights=hit, minlength=size)
        requests = np.bincount(row_class, minlength=size)
        for figures, p, h, r in zip(self.figures, prompts.tolist(), hits.tolist(), requests.tolist(), strict=True):
            figures.prompt_blocks += int(p)
            figures.hit_blocks += int(h)
            figures.analysed_requests += int(r)
