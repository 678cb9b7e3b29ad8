"""quality.json and comparison.txt: observed figures against the IR's targets."""

from __future__ import annotations

import math

from tracedsl.engine.arrivals import target_rate_cv
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


def observed_vs_target(collector: Collector, engine: str = "fast") -> dict:
    sketches = {
        "initial_context": collector.sketch["initial_context"],
        "generation_length": collector.sketch["generation_length"],
        "new_tokens_per_turn": collector.sketch["new_tokens"],
        "inter_turn_delay_ms": collector.sketch["delay_ms"],
        "turns_per_session": collector.sketch["turns"],
    }
    # The expected figures describe one mechanism each; compare them with the matching sample.
    compared = {
        "initial_context": collector.sketch["initial_context_primary"],
        "inter_turn_delay_ms": collector.sketch["delay_unscaled_ms"],
    }
    reference = _reference_targets(collector.params)
    expected = expectations(collector.params, engine)
    out = {}
    for name, sketch in sketches.items():
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
        if exp is not None:
            against = compared.get(name, sketch)
            metric["expected"] = exp.to_dict()
            if against is not sketch:
                metric["observed_compared"] = against.stats()
            metric["signed_error_mean_pct"] = _signed(against.mean, exp.mean)
            metric["signed_error_median_pct"] = _signed(against.quantile(0.5), exp.median)
        out[name] = metric
    return out


def session_end_stats(collector: Collector) -> dict:
    """The reference's keys in its order (counts, then fractions), then sessions nobody recorded."""
    total = collector.sessions
    counts = collector.end_reasons
    out: dict = {"total_sessions": total}
    for reason in EndReason.recorded():
        out[reason.count_key] = counts[reason]
    for reason in EndReason.recorded():
        out[reason.fraction_key] = round(counts[reason] / max(total, 1), 4)
    for reason in EndReason.extended():  # not the reference's: only when the trace has them
        if counts[reason]:
            out[reason.count_key] = counts[reason]
            out[reason.fraction_key] = round(counts[reason] / max(total, 1), 4)
    out["final_context_utilization"] = collector.sketch["final_utilization"].stats()
    if counts[EndReason.UNKNOWN]:  # foreign traces do not say why a session ended
        out[EndReason.UNKNOWN.count_key] = counts[EndReason.UNKNOWN]
    return out


def end_reason_targets(params: GenerationParams | None, primaries: int) -> dict:
    """What the IR alone says about each ending (None where it depends on the draws)."""
    if params is None:
        return {}
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
    rate, cv = target_rate_cv(collector.params.arrivals)
    count, total, squares = collector.arrival_gaps.tolist()
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
        "percentile_method": "numpy linear interpolation; exact while a quantity has at most 4096 "
        "distinct values, else from log-linear buckets under 0.1% wide (each bucket's mean value)",
    }
