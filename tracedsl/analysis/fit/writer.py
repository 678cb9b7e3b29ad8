"""A fitted spec as .trace text: each statement from the observed values and the calibrated
knobs, each with a comment saying how it was fitted and how well.

:func:`plan` makes the decisions that calibration does not touch (context, endings, laws of
outputs, new tokens, delays, requests, the arrival family); :func:`draft` adds the knobs'
statements (the prefix layers, the session layer's law, the new tokens' bias, the arrival rate);
:func:`render` writes the text in canonical form.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from tracedsl.analysis.fit import laws
from tracedsl.analysis.fit.censored import uncensored_sample
from tracedsl.analysis.fit.fallback import checked, equal_mass
from tracedsl.analysis.fit.laws_mixture import split as mixture_split
from tracedsl.analysis.fit.laws_text import number
from tracedsl.analysis.fit.structure import Figures, Observed, shared_layers
from tracedsl.language.format import format_text
from tracedsl.trace import EndReason

# Requests are inferred from the gaps of a trace without markers only with this many of both,
# and when the two populations' medians lie this far apart: a human's wait is minutes where a
# tool's is under a second or two (TraceLab: 79 s against 0.125 s), while a mix of similar gaps
# (AIPerf's agentic and human delays, medians 2 s and 15 s) is one per-call law, not requests.
MIN_INFERRED_GAPS = 200
MIN_INFERRED_REQUESTS = 30
MIN_INFERRED_RATIO = 30.0
TURNS_SHARE = 0.5  # sessions ending at their target turn count above this share: explicit turns
POISSON_CV = (0.8, 1.25)  # inter-arrival CVs taken as Poisson


MAX_FANOUT_TABLE = 16  # distinct fanouts written as a table of their shares


@dataclass(frozen=True)
class Statement:
    text: str
    comment: str = ""


@dataclass
class Knobs:
    """What calibration adjusts: the shared layers, the session layer's scale, the growth's bias
    and the arrival rate."""

    global_blocks: int
    groups: int
    group_blocks: int
    zipf: float
    session_scale: float = 1.0
    output_scale: float = 1.0
    bias: float = 1.0
    rate: float | None = None  # sessions per second


@dataclass
class Plan:
    """The fitted statements calibration leaves alone."""

    block_size: int
    context: Statement
    turn: list[Statement]  # the delay (new tokens and output come with their knobs)
    new_tokens: object  # its FittedLaw, the bias goes on when drafted
    request: list[Statement] | None
    endings: list[Statement]
    arrivals: tuple[str, str] | None  # family text with {rate}, comment
    notes: list[str] = field(default_factory=list)  # what could not be fitted
    subagent: list[str] | None = None  # the ``subagent`` block's lines, when the trace has subagents


def plan(observed: Observed) -> Plan:
    """Context, endings and the per-row laws (calibration does not change them)."""
    notes: list[str] = []
    size = observed.block_size
    context, endings = _endings(observed, notes)
    if observed.answers is not None and observed.answers.any():
        # a call that takes subagents' results draws neither new tokens (the results are) nor a
        # delay (it waits for the longest child): the per-row laws are of the other calls
        keep = ~observed.answers
        observed = dataclasses.replace(
            observed, new_tokens=observed.new_tokens[keep], delays_ms=observed.delays_ms[keep],
            history=observed.history[keep],
            opens_request=None if observed.opens_request is None else observed.opens_request[keep])
    limit = int(context.text.split()[1])
    # The engine scales each tool delay by max(0.2, 1 - 0.8 * history / context): undo it, so
    # the law is of the drawn values (a request's think time is not scaled).
    unscaled = observed.delays_ms / np.maximum(0.2, 1.0 - 0.8 * observed.history / limit)
    opens, calls_seen, call_session, inferred = observed.opens_request, observed.calls, observed.call_session, ""
    if opens is None:
        opens, calls_seen, call_session, inferred = _inferred_requests(observed)
    later_new = observed.new_tokens
    later_delay = unscaled
    request = None
    if opens is not None and calls_seen is not None and opens.any():
        whole, cut_short = calls_seen, ""
        if call_session is not None and call_session.size == calls_seen.size and calls_seen.size:
            # each session's last request ends with its session: it would have made at least that many calls
            last = np.append(call_session[1:] != call_session[:-1], True)
            whole = uncensored_sample(calls_seen, last)
            cut_short = (f"calls per request estimated with each session's last request as cut short "
                         f"(Kaplan-Meier; mean {calls_seen.mean():.2f} as counted, {whole.mean():.2f} estimated)")
        calls = checked(laws.fit_count(whole, slot="calls"), whole, "calls")
        said = "; ".join(part for part in (inferred, cut_short) if part)
        if said:
            calls = dataclasses.replace(calls, comment=f"# {said}; {_bare(calls.comment)}")
        message = checked(laws.fit_law(later_new[opens], unit="tokens", name="message"), later_new[opens], "message")
        thinks = _finite(observed.delays_ms[opens])
        think = checked(laws.fit_delay(thinks), thinks, "think")
        request = [Statement(f"calls {calls.text}", calls.comment),
                   Statement(f"message {message.text}", message.comment),
                   Statement(f"think {think.text}", think.comment)]
        later_new, later_delay = later_new[~opens], later_delay[~opens]
    new_tokens = (checked(laws.fit_law(later_new, unit="tokens", name="new tokens"), later_new, "new_tokens")
                  if later_new.size else laws.FittedLaw("constant(1)", "constant", 0.0, "no call after turn 0"))
    delays = _finite(later_delay)
    turn = []
    if delays.size:
        delay = checked(laws.fit_delay(delays), delays, "delay")
        turn.append(Statement(f"delay {delay.text}", delay.comment))
    subagent = _subagent(observed) if observed.subagents is not None else None
    return Plan(size, context, turn, new_tokens, request, endings, _arrivals(observed), notes, subagent)


def _subagent(observed: Observed) -> list[str] | None:
    """``subagent P% fanout LAW { … }`` from the subagents sessions.jsonl names: P the share of
    the calls the engine lets spawn (``structure._could_spawn``) that spawned; the fanout as a
    table, the subagents' turns and (a result each: the parent's next call's new tokens over the
    fanout) their returns through the chooser; their own global prefix when their first rows do
    not open with the parents' (else they inherit it, and the rest of the top level's body)."""
    found = observed.subagents
    if not found.calls or not found.spawning or not found.turns.size or not found.fanouts.size:
        return None
    share = found.spawning / found.calls
    fanout = _fanout(found.fanouts)
    turns = checked(laws.fit_count(found.turns, slot="turns"), found.turns, "turns")
    each = np.maximum(np.rint(found.returns / found.fanouts), 1)
    returns = checked(laws.fit_law(each, unit="tokens", name="returns"), each, "returns")
    own = shared_layers(found.first_ids)
    body_prefix = []
    if own.global_blocks and _leading(found.first_ids) != _leading(observed.first_ids):
        body_prefix.append(Statement(f"global {layer_tokens(own.global_blocks, observed.block_size)}",
                                     f"{own.global_blocks} leading blocks held by most subagents' first rows, "
                                     "not their parents'"))
    lines = [f"# {found.turns.size:,} subagent sessions (sessions.jsonl), spawned by {found.spawning:,} of the "
             f"{found.calls:,} calls that could spawn; fanout: {_bare(fanout.comment)}",
             f"subagent {_percent(share)} fanout {fanout.text} {{"]
    if body_prefix:
        lines += ["  " + line for line in _block("prefix", body_prefix)]
    lines += _statement(Statement(f"turns {turns.text} truncate", f"subagents' rows; {_bare(turns.comment)}"), "  ")
    lines += _statement(Statement(f"returns {returns.text}",
                                  f"each subagent's result: its parent's next call's new tokens over the "
                                  f"fanout; {_bare(returns.comment)}"), "  ")
    return [*lines, "}"]


def _fanout(fanouts: np.ndarray) -> laws.FittedLaw:
    """A few distinct fanouts (the common case: a handful of children) are written as the table
    of their shares, which the engine draws exactly; more go through the count chooser."""
    values, counts = np.unique(fanouts, return_counts=True)
    if values.size > MAX_FANOUT_TABLE:
        return checked(laws.fit_count(fanouts, slot="calls"), fanouts, "fanout")
    shares = _percents((counts / counts.sum()).tolist())
    table = ", ".join(f"{value}: {share}" for value, share in zip(values.tolist(), shares, strict=True))
    return laws.FittedLaw(f"empirical {{ {table} }}", "empirical", 0.0,
                          f"the fanouts seen, as a table (n={fanouts.size:,})")


def _leading(first_ids: list[np.ndarray]) -> int | None:
    """The block most first rows open with."""
    heads = np.array([ids[0] for ids in first_ids if ids.size], dtype=np.int64)
    if not heads.size:
        return None
    values, counts = np.unique(heads, return_counts=True)
    return int(values[np.argmax(counts)])


def _inferred_requests(observed: Observed) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None, str]:
    """For a trace that does not say which calls open a request: when its gaps are clearly two
    populations (laws_mixture), a gap in the upper one is a human's think time and opens a
    request. (openings of the rows after turn 0, calls per request, each request's session, the
    comment), or Nones and ""."""
    delays = observed.delays_ms
    positive = delays[np.isfinite(delays) & (delays > 0)]
    none = None, None, None, ""
    if positive.size < MIN_INFERRED_GAPS:
        return none
    found = mixture_split(np.log(positive))
    if found is None or not found.two or found.median_ratio < MIN_INFERRED_RATIO:
        return none
    cut = math.exp(found.threshold)
    opens = np.isfinite(delays) & (delays > cut)
    if opens.sum() < MIN_INFERRED_REQUESTS or opens.all():
        return none
    # every row in its session's order (a chained trace interleaves them): turn 0 opens a
    # request, as does each row after a think; a request's calls run to the next opening
    rows = ~observed.later
    rows[observed.later] = opens
    order = np.argsort(observed.row_session, kind="stable")
    ordered = rows[order]
    at = np.flatnonzero(ordered)
    calls = np.diff(np.append(at, ordered.size))
    cut_text, _ = number(cut, "ms")
    return opens, calls, observed.row_session[order][at], (f"requests inferred from the gaps: two populations (D {found.separation:.2f}, medians "
                          f"x{found.median_ratio:.0f}), "
                          f"a gap above {cut_text} is a think and opens a request")


def _finite(values: np.ndarray) -> np.ndarray:
    return values[np.isfinite(values)]


def _endings(observed: Observed, notes: list[str]) -> tuple[Statement, list[Statement]]:
    ends = observed.end_counts
    # a compacted session's ending is its continuation's: only the chains' last sessions count
    total = sum(count for reason, count in ends.items() if reason != EndReason.COMPACTED.reference_name)
    top = int(observed.prompts.max()) if observed.prompts.size else 0
    peak = int((observed.prompts + observed.outputs).max()) if observed.prompts.size else 0
    turns = checked(laws.fit_count(observed.turns, slot="turns"), observed.turns, "turns")
    retired = ends.get(EndReason.FORCED_RETIRE.reference_name, 0)
    if total and ends.get(EndReason.TARGET_TURN_COUNT.reference_name, 0) <= TURNS_SHARE * total:
        # reset-driven: the context is where retired sessions stopped growing
        context = _round_up(peak + 1, 1000)
        comment = (f"largest prompt + output seen {peak:,} tokens; {retired:,} of {total:,} sessions "
                   "were retired at the context")
        endings = [_reset(observed, context)]
        splits = observed.restart_turns
        if splits.size:
            primaries = observed.turns.size
            share = splits.size / primaries
            endings.append(Statement(
                f"restart {_percent(share)} at turn [{int(splits.min())}, {int(splits.max()) + 1})",
                f"{splits.size:,} restart splits in {primaries:,} sessions, at turns "
                f"{int(splits.min())}..{int(splits.max())}"))
        if observed.compactions is not None:
            endings.append(_compact(observed, context))
        return Statement(f"context {context}", comment), endings
    context = _round_up(int(peak * 1.05) + 1, 1000)
    why = ("sessions end at their target turn count" if total else
           "no end reasons are recorded, so the turn counts are the sessions' lengths")
    if not total:
        notes.append("end reasons: none recorded; turn counts fitted as targets (truncate)")
    comment = f"5% above the largest prompt + output seen ({peak:,}); the largest prompt {top:,}"
    endings = [Statement(f"turns {turns.text} truncate", f"{why}; {_bare(turns.comment)}")]
    if observed.compactions is not None:  # sessions that ran to their turn count can compact on the way
        endings.append(_compact(observed, context))
    return Statement(f"context {context}", comment), endings


def _compact(observed: Observed, context: int) -> Statement:
    """compact at P% to LAW max N instruction I: P where the compacted sessions' next call would
    have reached (their history plus half a typical new-tokens draw), of the context."""
    found = observed.compactions
    step = float(np.median(observed.new_tokens)) if observed.new_tokens.size else 0.0
    threshold = min((float(np.median(found.history)) + step / 2) / context, 1.0)
    summary = checked(laws.fit_law(found.summary, unit="tokens", name="summary"), found.summary, "output")
    instruction = int(np.median(found.instruction))
    return Statement(
        f"compact at {_percent(threshold)} to {summary.text} max {found.most} instruction {instruction}",
        f"{found.history.size:,} compactions, at a median history of {int(np.median(found.history)):,} tokens; "
        f"at most {found.most} in one logical session; {_bare(summary.comment)}")


def _reset(observed: Observed, context: int) -> Statement:
    """reset P scaling S: a linear fit of reset events on prompt / context, per row."""
    events = observed.reset_at.astype(np.float64)
    if not events.any():
        return Statement("reset none", "no session ended by a reset")
    x = observed.prompts / context
    slope, intercept = np.polyfit(x, events, 1) if np.ptp(x) > 0 else (0.0, events.mean())
    if intercept <= 0 or slope < 0:
        base, scaling = float(events.mean()), 1.0
    else:
        base, scaling = float(intercept), float(min(1 + slope / intercept, 20.0))
    return Statement(
        f"reset {_percent(base)} scaling {scaling:.3g}",
        f"{int(events.sum()):,} resets in {events.size:,} calls; linear fit of reset on prompt/context")


def _arrivals(observed: Observed) -> tuple[str, str] | None:
    starts = np.sort(observed.starts_ms[np.isfinite(observed.starts_ms)])
    if starts.size < 3 or starts[-1] <= starts[0]:
        return None
    gaps = np.diff(starts)
    cv = float(gaps.std() / gaps.mean())
    n = f"{starts.size:,} session starts over {(starts[-1] - starts[0]) / 1000:,.1f} s"
    if cv < 0.05:
        return "constant(rate={rate})", f"{n}; gaps all but equal (CV {cv:.2f})"
    if POISSON_CV[0] <= cv <= POISSON_CV[1]:
        return "poisson(rate={rate})", f"{n}; gap CV {cv:.2f}, taken as Poisson"
    return f"gamma(rate={{rate}}, cv={cv:.3g})", f"{n}; gap CV {cv:.2f}, gamma gaps"


@dataclass
class Draft:
    """A fitted spec's statements, ready to render."""

    header: list[str]
    name: str
    plan: Plan
    prefix: list[Statement]
    turn: list[Statement]
    arrivals: Statement | None
    classes: list[list[str]] = field(default_factory=list)  # each class block's lines
    context: Statement | None = None  # the plan's, unless the shared layers need more


@dataclass
class ClassPlan:
    """One session class of ``fit --classes``: its share of the sessions, values and plan."""

    name: str
    share: float
    observed: Observed
    plan: Plan
    sessions: int


def session_values(observed: Observed, knobs: Knobs) -> np.ndarray:
    """The session layer: each first row's prompt past the shared layers, times the scale."""
    shared = layer_tokens(knobs.global_blocks, observed.block_size)
    if knobs.groups > 1:
        shared += layer_tokens(knobs.group_blocks, observed.block_size)
    return np.maximum((observed.first_input - shared) * knobs.session_scale, 1)


def layer_tokens(blocks: int, block_size: int) -> int:
    """A shared layer of ``blocks`` blocks, in tokens: half a block short of them, which the
    engine rounds up to the same blocks (the observed blocks say only that the layer's tokens
    lie within the last one; ``global 32k`` at block 512 is 63 blocks and comes back as 32k)."""
    return round((blocks - 0.5) * block_size) if blocks > 0 else 0


def draft(observed: Observed, fitted: Plan, knobs: Knobs, name: str, header: list[str],
          tables: bool = False, classes: list[ClassPlan] | None = None) -> Draft:
    """The spec of ``knobs``; with ``tables`` the two laws the knobs rescale (the session layer,
    the output) are equal-mass tables, as the calibration rounds use them: they keep the mean
    exactly and cost nothing to refit."""
    size = observed.block_size
    values = session_values(observed, knobs)
    layer = _law(values, "tokens", "session layer", "session", tables)
    blocks = "block" if knobs.global_blocks == 1 else "blocks"
    global_comment = (f"{knobs.global_blocks} leading {blocks} held by most sessions' first rows"
                      if knobs.global_blocks else "no leading block is held by most sessions")
    prefix = [Statement(f"global {layer_tokens(knobs.global_blocks, size)}", global_comment)]
    if knobs.groups > 1 and knobs.group_blocks > 0:
        prefix.append(Statement(
            f"groups {knobs.groups} of {layer_tokens(knobs.group_blocks, size)} zipf {knobs.zipf:g}",
            "groups: first rows sharing a run past the global prefix; count and skew from the "
            "groups' sizes, the run's length calibrated on the hit rate"))
    else:
        prefix.append(Statement("groups 1 of 0", "no run past the global prefix is shared by several sessions"))
    scale = f", values scaled by {knobs.session_scale:.3g} to keep the mean input" if knobs.session_scale != 1 else ""
    prefix.append(Statement(f"session {layer.text}", f"first rows past the shared layers{scale}; {_bare(layer.comment)}"))
    new_tokens = fitted.new_tokens
    bias = f" bias {knobs.bias:.3g}" if abs(knobs.bias - 1) > 1e-9 else ""
    output = _law(observed.outputs * knobs.output_scale, "tokens", "output", "output", tables)
    scaled = f"; values scaled by {knobs.output_scale:.3g} to keep the mean" if knobs.output_scale != 1 else ""
    turn = [Statement(f"new_tokens {new_tokens.text}{bias}", new_tokens.comment),
            Statement(f"output {output.text}", output.comment + scaled), *fitted.turn]
    arrivals = None
    if fitted.arrivals is not None and knobs.rate:
        family, comment = fitted.arrivals
        arrivals = Statement(f"arrivals {family.format(rate=_rate(knobs.rate))}", comment)
    shares = _percents([c.share for c in classes or []])
    blocks = [_class_block(c, share, knobs, tables) for c, share in zip(classes or [], shares, strict=True)]
    # the engine holds the shared layers as whole blocks below the context, with an L2 beside
    floor = (knobs.global_blocks + (knobs.group_blocks if knobs.groups > 1 else 0)) * size + int(values.max()) + 1
    context = fitted.context
    if floor >= int(context.text.split()[1]):
        context = Statement(f"context {_round_up(floor + 1, 1000)}",
                            f"{context.comment}; raised to hold the shared layers' blocks and the largest session layer")
    return Draft(header, name, fitted, prefix, turn, arrivals, blocks, context)


def _class_block(found: ClassPlan, share: str, knobs: Knobs, tables: bool) -> list[str]:
    """``class NAME P% { … }``: the class's own laws of the session layer, the turn and the
    requests, and its own ending (the shared layers, context, compaction, restarts and arrivals
    are the top level's)."""
    values = session_values(found.observed, knobs)
    layer = _law(values, "tokens", "session layer", "session", tables)
    output = _law(found.observed.outputs * knobs.output_scale, "tokens", "output", "output", tables)
    bias = f" bias {knobs.bias:.3g}" if abs(knobs.bias - 1) > 1e-9 else ""
    turn = [Statement(f"new_tokens {found.plan.new_tokens.text}{bias}", found.plan.new_tokens.comment),
            Statement(f"output {output.text}", output.comment), *found.plan.turn]
    lines = [f"# {found.sessions:,} sessions clustered together (calls, first prompt, growth, output)",
             f"class {found.name} {share} {{"]
    lines += ["  " + line for line in _block("prefix", [Statement(f"session {layer.text}", layer.comment)])]
    lines += ["  " + line for line in _block("turn", turn)]
    if found.plan.request:
        lines += ["  " + line for line in _block("request", found.plan.request)]
    for statement in found.plan.endings:
        if statement.text.startswith(("turns", "reset")):
            lines += _statement(statement, "  ")
    return [*lines, "}"]


def _percents(shares: list[float]) -> list[str]:
    """Shares as percentages of two decimals adding up to exactly 100% (largest remainders)."""
    if not shares:
        return []
    scaled = np.array(shares) / sum(shares) * 10_000
    whole = np.floor(scaled).astype(np.int64)
    for i in np.argsort(-(scaled - whole), kind="stable")[: 10_000 - int(whole.sum())]:
        whole[i] += 1
    return [f"{w / 100:g}%" for w in whole.tolist()]


def _law(values: np.ndarray, unit: str, name: str, slot: str, table: bool):
    if table:
        return laws.FittedLaw(equal_mass(values, unit), "empirical", 0.0,
                              f"equal-mass table of {values.size:,} values, mean kept")
    return checked(laws.fit_law(values, unit=unit, name=name), values, slot)


def render(spec: Draft) -> str:
    lines = [*(f"# {line}".rstrip() for line in spec.header), f'workload "{spec.name}"', ""]
    lines += _statement(spec.context or spec.plan.context)
    lines += _statement(Statement(f"block {spec.plan.block_size}", "block size of the input's hash ids"))
    lines += _block("prefix", spec.prefix)
    lines += _block("turn", spec.turn)
    if spec.plan.request:
        lines += _block("request", spec.plan.request)
    for statement in spec.plan.endings:
        lines += _statement(statement)
    if spec.plan.subagent:
        lines += spec.plan.subagent
    if spec.arrivals is not None:
        lines += _statement(spec.arrivals)
    for block in spec.classes:
        lines += ["", *block]
    return format_text("\n".join(lines) + "\n", f"{spec.name}.trace")


def _statement(statement: Statement, indent: str = "") -> list[str]:
    comment = [f"{indent}# {_bare(statement.comment)}"] if statement.comment else []
    return [*comment, f"{indent}{statement.text}"]


def _bare(comment: str) -> str:
    """A law's comment inside another: without its own ``# ``."""
    return comment.removeprefix("# ")


def _block(keyword: str, statements: list[Statement]) -> list[str]:
    lines = [f"{keyword} {{"]
    for statement in statements:
        lines += _statement(statement, "  ")
    return [*lines, "}"]


def figures_lines(target: Figures, achieved: Figures | None) -> list[str]:
    """The header's table: each must-hold figure of the input and of the fitted run."""
    lines = [f"{'figure':<16}{'input':>12}{'fitted run':>12}"]
    for (label, a), b in zip(target.table().items(),
                             (achieved.table().values() if achieved else [None] * 4), strict=True):
        lines.append(f"{label:<16}{_shown(a):>12}{_shown(b):>12}")
    return lines


def _shown(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if value < 10 else f"{value:,.0f}"


def _percent(share: float) -> str:
    return f"{share * 100:.4g}%"


def _rate(per_second: float) -> str:
    if per_second >= 0.1:
        return f"{per_second:.5g}/s"
    return f"{per_second * 3600:.5g}/h"


def _round_up(value: int, step: int) -> int:
    return int(math.ceil(value / step) * step)
