"""quality.json and comparison.txt: observed figures against the IR's targets."""

from __future__ import annotations

import math

import numpy as np

from tracedsl.engine.arrivals import stage_times, start_times, target_rate_cv
from tracedsl.ir import GenerationParams
from tracedsl.reports import targets
from tracedsl.reports.collect import Collector
from tracedsl.reports.sketch import Sketch
from tracedsl.reports.targets import Expected
from tracedsl.trace import EndReason


def config_summary(params: GenerationParams | None, block_size: int) -> dict:
    """The reference's flat summary, then what it leaves out (bias, bounds, restarts)."""
    if params is None:
        return {"block_size": block_size}
    cache, delay = params.cache, params.inter_turn_delay
    out: dict = {
        "initial_context_mean": _plus(cache.layer1_tokens + cache.layer1_5_tokens, targets.stated(cache.layer2, "mean")),
        "initial_context_median": _plus(cache.layer1_tokens + cache.layer1_5_tokens, targets.stated(cache.layer2, "median")),
        "layer1_tokens": cache.layer1_tokens,
        "layer1_5_tokens": cache.layer1_5_tokens,
        "layer2_mean": targets.stated(cache.layer2, "mean"),
        "layer2_median": targets.stated(cache.layer2, "median"),
        "num_groups": cache.layer1_5_groups.num_groups,
        "zipf_alpha": cache.layer1_5_groups.zipf_alpha,
        "new_tokens_per_turn_mean": targets.stated(params.new_tokens_per_turn, "mean"),
        "new_tokens_per_turn_median": targets.stated(params.new_tokens_per_turn, "median"),
        "generation_length_mean": targets.stated(params.generation_length, "mean"),
        "generation_length_median": targets.stated(params.generation_length, "median"),
        "max_prompt_tokens": params.max_prompt_tokens,
        "block_size": params.block_size,
        "inter_turn_delay_agentic_fraction": delay.agentic_fraction,
        "inter_turn_delay_agentic_mean_ms": targets.stated(delay.agentic_delay, "mean"),
        "inter_turn_delay_human_mean_ms": targets.stated(delay.human_delay, "mean"),
        "turn_mode_enabled": int(params.turns is not None),
    }
    if params.reset is not None:
        out["reset_base_probability"] = params.reset.base_probability
        out["reset_context_scaling"] = params.reset.context_scaling
    if params.turns is not None:
        turns = params.turns
        out.update(turns_mean=turns.mean, turns_median=turns.median, turns_min=turns.min,
                   turns_max=turns.max, turns_allow_truncation=int(turns.allow_truncation))
        if turns.max_session_attempts is not None:
            out["turns_max_session_attempts"] = turns.max_session_attempts
    # Beyond the reference: what its summary omits.
    out["new_tokens_per_turn_bias"] = params.new_tokens_per_turn.bias
    for name, dist in (("new_tokens_per_turn", params.new_tokens_per_turn),
                       ("generation_length", params.generation_length), ("layer2", cache.layer2),
                       ("inter_turn_delay_agentic", delay.agentic_delay),
                       ("inter_turn_delay_human", delay.human_delay)):
        out[f"{name}_min"] = dist.min
        out[f"{name}_max"] = dist.max
    out["inter_turn_delay_agentic_median_ms"] = targets.stated(delay.agentic_delay, "median")
    out["inter_turn_delay_human_median_ms"] = targets.stated(delay.human_delay, "median")
    out["inter_turn_delay_max_ms"] = delay.max
    out["output_floor"] = params.output_floor
    out["fixed_prefix_tokens"] = params.fixed_prefix_tokens
    out["restart_initial_probability"] = params.restart_initial_probability
    out["restart_turn_range"] = list(params.restart_turn_range)
    return out


def _plus(fixed: int, value: float | None) -> float | None:
    return None if value is None else fixed + value


def expectations(params: GenerationParams | None, engine: str = "fast") -> dict[str, Expected | None]:
    """What the spec leads to, by the law ``engine`` draws from (the fast engine's exact
    truncated law, or the reference's reject-then-clip law for ``aiperf``)."""
    if params is None:
        return dict.fromkeys(("initial_context", "generation_length", "new_tokens_per_turn",
                              "inter_turn_delay_ms", "turns_per_session"))
    return {
        "initial_context": targets.initial_context(params, engine),
        "generation_length": targets.generation_length(params, engine),
        "new_tokens_per_turn": targets.new_tokens(params, engine),
        "inter_turn_delay_ms": targets.delay_mixture(params, engine),
        "turns_per_session": targets.turns(params, engine),
    }


def _reference_targets(params: GenerationParams | None) -> dict[str, tuple]:
    if params is None:
        return {}
    cache = params.cache
    fixed = cache.layer1_tokens + cache.layer1_5_tokens
    turns = params.turns
    return {
        "initial_context": (_plus(fixed, targets.stated(cache.layer2, "mean")),
                            _plus(fixed, targets.stated(cache.layer2, "median"))),
        "generation_length": (targets.stated(params.generation_length, "mean"),
                              targets.stated(params.generation_length, "median")),
        "new_tokens_per_turn": (targets.stated(params.new_tokens_per_turn, "mean"),
                                targets.stated(params.new_tokens_per_turn, "median")),
        "inter_turn_delay_ms": (None, None),
        "turns_per_session": (turns.mean, turns.median) if turns else (None, None),
    }


def _pct_error(observed: float, target: float | None) -> float | None:
    """The reference's error: unsigned, from the rounded observation."""
    if target is None:
        return None
    return 0.0 if target == 0 else round(abs(observed - target) / target * 100, 2)


def _signed(observed: float, expected: float | None) -> float | None:
    if expected is None:
        return None
    return 0.0 if expected == 0 else round((observed - expected) / expected * 100, 3)


# Each metric's sketch, and the sample its expected figures describe (one mechanism each).
SKETCH_OF = {
    "initial_context": "initial_context",
    "generation_length": "generation_length",
    "new_tokens_per_turn": "new_tokens",
    "inter_turn_delay_ms": "delay_ms",
    "turns_per_session": "turns",
}
COMPARED_WITH = {"initial_context": "initial_context_primary", "inter_turn_delay_ms": "delay_unscaled_ms"}
PER_CLASS = "per class"  # a whole-trace target of a trace with classes that no one law gives


def metrics(sketches: dict[str, Sketch], reference: dict[str, tuple], expected: dict,
            levels: tuple[float, ...] = ()) -> dict:
    """observed_vs_target's metrics from the sketches; ``expected`` maps a metric to an
    Expected, None, or PER_CLASS; ``levels`` adds, per metric, expected against observed at
    those quantiles (``p90``)."""
    out = {}
    for name, key in SKETCH_OF.items():
        sketch = sketches[key]
        if sketch.count == 0:
            continue
        stats = sketch.stats()
        target_mean, target_median = reference.get(name, (None, None))
        metric = {
            "target_mean": target_mean,
            "target_median": target_median,
            "observed": stats,
            "pct_error_mean": _pct_error(stats["mean"], target_mean),
            "pct_error_median": _pct_error(stats["median"], target_median),
        }
        exp = expected.get(name)
        if exp == PER_CLASS:
            metric["expected"] = PER_CLASS
        elif exp is not None:
            against = sketches[COMPARED_WITH.get(name, key)]
            metric["expected"] = exp.to_dict()
            if against is not sketch:
                metric["observed_compared"] = against.stats()
            metric["signed_error_mean_pct"] = _signed(against.mean, exp.mean)
            metric["signed_error_median_pct"] = _signed(against.quantile(0.5), exp.median)
            for q in levels:
                level = f"p{round(q * 100):02d}"
                target = (exp.quantiles or {}).get(level)
                observed = round(against.quantile(q), 2) if against.count else None
                metric[level] = {"expected": None if target is None else round(float(target), 4),
                                 "observed": observed,
                                 "signed_error_pct": _signed(against.quantile(q), target)
                                 if against.count and target is not None else None}
        out[name] = metric
    return out


def observed_vs_target(collector: Collector, engine: str = "fast") -> dict:
    if collector.classes is not None:
        return metrics(collector.sketch, {}, mixture_expectations(collector.params, engine))
    return metrics(collector.sketch, _reference_targets(collector.params), expectations(collector.params, engine))


def mixture_expectations(params: GenerationParams, engine: str = "fast") -> dict:
    """A trace with classes: per-session quantities drawn once per primary (turn-0 context, the
    turns target) are the fraction-weighted mixture of the classes' laws, exactly; per-row
    quantities weigh each class by its rows, which the draws decide: PER_CLASS."""
    bodies = params.bodies()
    out: dict = dict.fromkeys(SKETCH_OF, PER_CLASS)
    out["initial_context"] = targets.mixture(
        [(fraction, targets.initial_context_draw(body, engine)) for _, fraction, body in bodies],
        "fraction-weighted mixture of the classes' laws: " + targets.INITIAL_CONTEXT_BASIS)
    turn_draws = [(fraction, targets.turns_draw(body, engine)) for _, fraction, body in bodies]
    if all(draw is not None for _, draw in turn_draws):
        out["turns_per_session"] = targets.mixture(
            turn_draws, "fraction-weighted mixture of the classes' laws: " + targets.TURNS_BASIS)
    elif all(draw is None for _, draw in turn_draws):
        out["turns_per_session"] = None  # reset mode throughout: no turns target, as without classes
    return out


def session_end_stats(collector: Collector) -> dict:
    """The reference's keys in its order (counts, then fractions), then sessions nobody recorded."""
    return _end_stats(collector.end_reasons, collector.sessions, collector.sketch["final_utilization"])


def _end_stats(counts: dict[EndReason, int], total: int, utilization: Sketch) -> dict:
    out: dict = {"total_sessions": total}
    for reason in EndReason.recorded():
        out[reason.count_key] = counts[reason]
    for reason in EndReason.recorded():
        out[reason.fraction_key] = round(counts[reason] / max(total, 1), 4)
    for reason in EndReason.extended():  # not the reference's: only when the trace has them
        if counts[reason]:
            out[reason.count_key] = counts[reason]
            out[reason.fraction_key] = round(counts[reason] / max(total, 1), 4)
    out["final_context_utilization"] = utilization.stats()
    if counts[EndReason.UNKNOWN]:  # foreign traces do not say why a session ended
        out[EndReason.UNKNOWN.count_key] = counts[EndReason.UNKNOWN]
    return out


def end_reason_targets(params: GenerationParams | None, primaries: int) -> dict:
    """What the IR alone says about each ending (None where it depends on the draws)."""
    if params is None:
        return {}
    if params.classes is not None:
        return {"note": f"{PER_CLASS}: each class's end_reason_targets are under classes.<name>"}
    if params.turns is not None:
        truncating = params.turns.allow_truncation
        return {
            EndReason.FORCED_RETIRE.reference_name: None if truncating else 0,
            EndReason.PROBABILISTIC_RESET.reference_name: 0,
            EndReason.TARGET_TURN_COUNT.reference_name: None if truncating else primaries,
            EndReason.RESTART_SPLIT.reference_name: 0,
            "note": "turns mode: without truncation every session reaches its target (retries); "
            "with truncation sessions that reach the context end as forced retires",
        }
    return {
        EndReason.FORCED_RETIRE.reference_name: None,
        EndReason.PROBABILISTIC_RESET.reference_name:
            0 if params.reset is None or params.reset.base_probability == 0 else None,
        EndReason.TARGET_TURN_COUNT.reference_name: 0,
        f"{EndReason.RESTART_SPLIT.reference_name}_at_most":
            round(targets.expected_restart_injections(params, primaries), 2),
        "note": "reset mode: retires and resets depend on the draws; restart splits are at most "
        "the expected number of sessions chosen to split (a chosen session may end first)",
    }


def arrival_figures(collector: Collector) -> dict:
    """The arrival process: rate (primary sessions a second) and the gaps' coefficient of
    variation, target (where the process defines one) against observed."""
    assert collector.params is not None and collector.params.arrivals is not None
    process = collector.params.arrivals
    count, total, squares = collector.arrival_gaps.tolist()
    rate, cv = _run_target(process, int(count) + 1)
    observed_rate = observed_cv = None
    if count and total > 0:
        mean = total / count
        observed_rate = 1000.0 / mean
        observed_cv = math.sqrt(max(squares / count - mean * mean, 0.0)) / mean
    return {
        "process": collector.params.arrivals.kind,
        "rate_per_s": {"target": rate, "observed": observed_rate, "pct_error": _pct_error(observed_rate, rate)
                       if observed_rate is not None else None},
        "interarrival_cv": {"target": cv, "observed": observed_cv},
        "span_s": ((collector.arrival_last or 0.0) - (collector.arrival_first or 0.0)) / 1000.0,
    }


CLASS_LEVELS = (0.9,)  # a class's targets: mean, median and p90 of its body's exact bounded law


def class_figures(collector: Collector, engine: str = "fast") -> dict:
    """quality.json ``classes``: per class (spec order), its fraction target against observed
    (a share of the primary sessions), its counts, and every quantity's target against observed
    from the class's own body, shaped as the whole trace's figures."""
    split = collector.classes
    assert split is not None
    primaries = sum(figures.primaries for figures in split.figures)
    out = {}
    for figures in split.figures:
        body = figures.body
        expected = {
            "initial_context": targets.initial_context(body, engine, CLASS_LEVELS),
            "generation_length": targets.generation_length(body, engine, CLASS_LEVELS),
            "new_tokens_per_turn": targets.new_tokens(body, engine, CLASS_LEVELS),
            "inter_turn_delay_ms": targets.delay_mixture(body, engine, CLASS_LEVELS),
            "turns_per_session": targets.turns(body, engine, CLASS_LEVELS),
        }
        sketch = figures.sketch
        out[figures.name] = {
            "fraction": {"target": figures.fraction,
                         "observed": round(figures.primaries / primaries, 4) if primaries else None},
            "sessions": figures.sessions,
            "primary_sessions": figures.primaries,
            "rows": figures.rows,
            "observed_vs_target": metrics(sketch, _reference_targets(body), expected, CLASS_LEVELS),
            "session_stats": sketch["turns"].stats(),
            "session_end_stats": _end_stats(figures.end_reasons, figures.sessions, sketch["final_utilization"]),
            "end_reason_targets": end_reason_targets(body, figures.primaries),
            "request_input_length": sketch["request_isl"].stats(),
            "prefix_hit_rate_unbounded": round(figures.hit_blocks / figures.prompt_blocks, 4)
            if figures.prompt_blocks else None,
            "reuse_requests": figures.analysed_requests,
        }
    return out


def _run_target(process, starts: int) -> tuple[float | None, float | None]:
    """The rate and gap CV the process gives a run of ``starts`` primary sessions: poisson,
    gamma and constant their own; stages the mean rate up to the time their cumulative rate
    reaches the run's last start (past the stages the engine goes on at the end rate), no CV;
    file its own first times (extended past its end at its mean gap, as the engine does)."""
    if process.kind == "stages" and starts > 1:
        span_ms = float(stage_times(process.stages or [], np.array([starts - 1.0]))[0])
        return ((starts - 1) / (span_ms / 1000.0) if span_ms > 0 else None), None
    if process.kind == "file" and starts > 1:
        gaps = np.diff(start_times(process, starts, 0))
        mean = float(gaps.mean())
        return (1000.0 / mean, float(gaps.std()) / mean) if mean > 0 else (None, None)
    return target_rate_cv(process)


def quality(collector: Collector, name: str, engine: str = "fast") -> dict:
    """The whole quality.json: the reference's four keys first, then tracedsl's additions."""
    turns_stats = collector.sketch["turns"].stats() if collector.sessions else Sketch().stats()
    return {
        "config_summary": config_summary(collector.params, collector.block_size),
        "observed_vs_target": observed_vs_target(collector, engine),
        "session_stats": turns_stats,
        "session_end_stats": session_end_stats(collector),
        "spec_name": name,
        "end_reason_targets": end_reason_targets(collector.params, collector.primaries),
        "kv_reuse": collector.reuse.summary(),
        "request_input_length": collector.sketch["request_isl"].stats(),
        "estimates": {
            "prefill_tps": collector.latency.prefill_tokens_per_s,
            "decode_tps": collector.latency.decode_tokens_per_s,
            "session_duration_min": collector.sketch["session_minutes"].stats(),
        },
        **({"arrivals": arrival_figures(collector)} if collector.params and collector.params.arrivals else {}),
        **({"classes": class_figures(collector, engine)} if collector.classes is not None else {}),
        **({"agent": collector.agent.figures(engine)} if collector.agent is not None else {}),
        **({"classes_unplaced_sessions": collector.classes.unplaced}
           if collector.classes is not None and collector.classes.unplaced else {}),
        "percentile_method": "numpy linear interpolation; exact while a quantity has at most 4096 "
        "distinct values, else from log-linear buckets under 0.1% wide (each bucket's mean value)",
    }
