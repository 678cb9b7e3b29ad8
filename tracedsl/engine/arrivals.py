"""When sessions start: the arrival process's start time of every primary session, and the
estimated start of each continuation after its parent.

Session 0 starts at 0 and session i at the sum of the gaps 1..i. Gap i is drawn from the
session's own ``session.arrival`` stream (one uniform, a new stream name, so no other draw
moves), and the times are one prefix sum over all N sessions, made once before any chunk is
stitched: a session's start depends neither on the chunking nor on the workers. N float64s
(8 MB at 1M sessions).
"""

from __future__ import annotations

import numpy as np

from tracedsl import families
from tracedsl.engine.columns import SessionColumns
from tracedsl.engine.samplers import session_keys, stream, uniforms
from tracedsl.families.gamma import Gamma
from tracedsl.ir import Arrivals, ArrivalStage, Latency

# The uniform each session's gap is drawn from (primary sessions' keys, turn 0).
ARRIVAL = stream("session.arrival")
_BLOCK = 1 << 20  # sessions a draw handles at once, so memory stays a few arrays of N


def start_times(arrivals: Arrivals, num_sessions: int, run_key: int) -> np.ndarray:
    """The start (ms from 0) of primary sessions 0 .. num_sessions - 1, non-decreasing."""
    n = num_sessions
    if arrivals.kind == "file":
        return _file_times(arrivals.times_ms or (), n)
    if arrivals.kind == "constant":
        return np.arange(n, dtype=np.float64) * (1000.0 / float(arrivals.rate or 1.0))
    u = _gap_uniforms(n, run_key)
    if arrivals.kind == "gamma":
        gaps = gamma_gap_law(arrivals).sample(u)
    else:
        gaps = -np.log(u)  # unit-rate exponential gaps
        if arrivals.kind == "poisson":
            gaps *= 1000.0 / float(arrivals.rate or 1.0)
    if n:
        gaps[0] = 0.0  # session 0 starts at 0
    times = np.cumsum(gaps)
    return stage_times(arrivals.stages or (), times) if arrivals.kind == "stages" else times


def gamma_gap_law(arrivals: Arrivals):
    """Gamma gaps (ms): mean 1000/rate, sd / mean = cv, so shape 1/cv²."""
    shape = 1.0 / float(arrivals.cv or 1.0) ** 2
    return families.law(Gamma(shape=shape, mean=1000.0 / float(arrivals.rate or 1.0)), "fast")


def _gap_uniforms(n: int, run_key: int) -> np.ndarray:
    """Session i's uniform for its gap (session 0's is drawn but unused: it starts at 0)."""
    u = np.empty(n, dtype=np.float64)
    for first in range(0, n, _BLOCK):
        index = np.arange(first, min(first + _BLOCK, n), dtype=np.int64)
        u[first:first + index.shape[0]] = uniforms(session_keys(run_key, 2 * index), 0, ARRIVAL)
    return u


def stage_times(stages: list[ArrivalStage] | tuple, work: np.ndarray) -> np.ndarray:
    """Times (ms) at which the stages' cumulative rate reaches ``work`` (the unit-rate Poisson
    process's times): the inverse of Λ(t) = ∫ rate, piecewise quadratic. Past the last stage
    the rate stays at its end rate (or, if that is 0, the span's mean rate)."""
    starts, cumulative = [0.0], [0.0]
    for stage in stages:
        seconds = stage.duration_ms / 1000.0
        starts.append(starts[-1] + seconds)
        cumulative.append(cumulative[-1] + (stage.rate + stage.end_rate) / 2.0 * seconds)
    edges = np.asarray(cumulative)
    times = np.empty_like(work)
    which = np.searchsorted(edges, work, side="right") - 1  # the stage each session falls in
    for k, stage in enumerate(stages):
        mask = which == k
        if not mask.any():
            continue
        seconds = stage.duration_ms / 1000.0
        s = work[mask] - edges[k]
        slope = (stage.end_rate - stage.rate) / (2.0 * seconds)
        # tau solves rate·tau + slope·tau² = s; this form is stable for any slope, and r0 = 0
        root = np.sqrt(stage.rate**2 + 4.0 * slope * s)
        tau = np.divide(2.0 * s, stage.rate + root, out=np.zeros_like(s), where=(stage.rate + root) > 0)
        times[mask] = starts[k] + np.minimum(tau, seconds)
    beyond = which >= len(stages)
    if beyond.any():
        tail = stages[-1].end_rate if stages else 0.0
        tail = tail if tail > 0 else edges[-1] / starts[-1]
        times[beyond] = starts[-1] + (work[beyond] - edges[-1]) / tail
    return times * 1000.0


def _file_times(times: list[float] | tuple, n: int) -> np.ndarray:
    """The file's times; sessions past its end follow at its mean gap (1 s for a single time)."""
    given = np.asarray(times[:n], dtype=np.float64)
    if n <= given.shape[0]:
        return given
    gap = (times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else 1000.0
    extra = times[-1] + gap * np.arange(1, n - given.shape[0] + 1, dtype=np.float64)
    return np.concatenate([given, extra])


def expected_sessions(arrivals: Arrivals) -> float | None:
    """How many sessions the process holds in its own time span (stages, file); None: unbounded."""
    if arrivals.kind == "file":
        return float(len(arrivals.times_ms or ()))
    if arrivals.kind == "stages":
        return sum((s.rate + s.end_rate) / 2.0 * s.duration_ms / 1000.0 for s in arrivals.stages or ())
    return None


def shortfall(arrivals: Arrivals, num_sessions: int) -> str | None:
    """What a run of ``num_sessions`` gets when the stages or the file hold fewer; None if they hold enough."""
    held = expected_sessions(arrivals)
    if held is None or held >= num_sessions:
        return None
    if arrivals.kind == "file":
        return (f"arrivals: the file holds {int(held)} start times and the run asks for {num_sessions} "
                f"sessions; the other {num_sessions - int(held)} start after its last, at its mean gap")
    span = sum(s.duration_ms for s in arrivals.stages or ()) / 60_000.0
    last = (arrivals.stages or [None])[-1]
    after = f"at {last.end_rate:g}/s" if last is not None and last.end_rate > 0 else "at the stages' mean rate"
    return (f"arrivals: the stages' {span:g} min hold about {held:.0f} sessions and the run asks for "
            f"{num_sessions}; about {num_sessions - held:.0f} start after the last stage ends, {after}")


def target_rate_cv(arrivals: Arrivals) -> tuple[float | None, float | None]:
    """The process's mean rate (sessions/s) and its gaps' coefficient of variation, where defined."""
    if arrivals.kind == "poisson":
        return float(arrivals.rate or 0.0), 1.0
    if arrivals.kind == "gamma":
        return float(arrivals.rate or 0.0), float(arrivals.cv or 0.0)
    if arrivals.kind == "constant":
        return float(arrivals.rate or 0.0), 0.0
    if arrivals.kind == "stages":
        span = sum(s.duration_ms for s in arrivals.stages or ()) / 1000.0
        return (expected_sessions(arrivals) or 0.0) / span if span else None, None
    return None, None


def session_durations_ms(latency: Latency, sessions: SessionColumns) -> np.ndarray:
    """Each session's estimated duration (ms): every request's latency (its whole prompt, as
    replayed, and its output) plus every delay between turns. A continuation starts this long
    after its parent did."""
    if sessions.num_sessions == 0:
        return np.zeros(0)
    return np.add.reduceat(_call_costs(latency, sessions), sessions.row_offsets[:-1])


def call_ends_ms(latency: Latency, sessions: SessionColumns) -> np.ndarray:
    """Per row: when the call ends (ms after its session started), by the same estimate as
    :func:`session_durations_ms` (each call's latency and every delay up to it)."""
    if sessions.num_sessions == 0:
        return np.zeros(0)
    ends = np.cumsum(_call_costs(latency, sessions))
    before = np.concatenate([[0.0], ends])[sessions.row_offsets[:-1]]
    return ends - np.repeat(before, sessions.turns)


def _call_costs(latency: Latency, sessions: SessionColumns) -> np.ndarray:
    """Per row: the delay before the call plus its latency (its prompt as replayed, its output)."""
    offsets = sessions.row_offsets
    inputs = np.cumsum(sessions.input_length, dtype=np.int64)
    outputs = np.cumsum(sessions.output_length, dtype=np.int64) - sessions.output_length
    firsts = offsets[:-1]
    turns = np.diff(offsets)
    prompt = (inputs - np.repeat(inputs[firsts] - sessions.input_length[firsts], turns)
              + outputs - np.repeat(outputs[firsts], turns))
    spent = latency.request_ms(prompt.astype(np.float64), sessions.output_length.astype(np.float64))
    return spent + np.nan_to_num(sessions.delay_ms)
