"""comparison.txt: a plain-text table of configured, expected and observed figures."""

from __future__ import annotations

from tracedsl.reports.collect import DECODE_TPS, PREFILL_TPS
from tracedsl.trace import EndReason

RULE = "-" * 92


def _num(value, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _row(label: str, configured, expected, observed, digits: int = 1) -> str:
    error = "-"
    if expected is not None and observed is not None:
        error = "0.0%" if expected == 0 and observed == 0 else (
            f"{(observed - expected) / expected * 100:+.1f}%" if expected else "-")
    return (f"  {label:<34}{_num(configured, 0):>14}{_num(expected, digits):>14}"
            f"{_num(observed, digits):>14}{error:>12}")


def class_rows(quality: dict) -> list[dict]:
    """The per-class table (comparison.txt and report.html): one row per class, spec order."""
    classes = quality.get("classes") or {}
    # every ending any class has, so the table's columns are the same for each class
    reasons = [reason for reason in EndReason
               if any(reason.count_key in figures["session_end_stats"] for figures in classes.values())]
    rows = []
    for name, figures in classes.items():
        ends = figures["session_end_stats"]
        output = figures["observed_vs_target"].get("generation_length")
        rows.append({
            "class": name,
            "fraction_target": figures["fraction"]["target"],
            "fraction_observed": figures["fraction"]["observed"],
            "sessions": figures["sessions"],
            "rows": figures["rows"],
            "mean_input": figures["request_input_length"]["mean"] if figures["rows"] else None,
            "mean_output": output["observed"]["mean"] if output else None,
            "hit_rate": figures["prefix_hit_rate_unbounded"],
            "endings": {reason.label: ends.get(reason.count_key, 0) for reason in reasons},
        })
    return rows


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _class_table(quality: dict) -> list[str]:
    rows = class_rows(quality)
    if not rows:
        return []
    reasons = [reason.label for reason in EndReason if any(reason.label in row["endings"] for row in rows)]
    # forced, probabilistic, target, restart, compactions, unknown
    short = {label: "unknown" if label == EndReason.UNKNOWN.label else label.split(" ")[0].split("-")[0]
             for label in reasons}
    head = (f"  {'class':<16}{'target':>8}{'observed':>9}{'sessions':>10}{'requests':>10}{'mean input':>12}"
            f"{'mean output':>12}{'hit rate':>9}" + "".join(f"{short[label]:>14}" for label in reasons))
    lines = ["Session classes (fraction of the primary sessions: target, observed; hit rate unbounded; "
             "endings: " + ", ".join(reasons) + ")", head]
    for row in rows:
        lines.append(f"  {row['class'][:15]:<16}{_percent(row['fraction_target']):>8}"
                     f"{_percent(row['fraction_observed']):>9}{row['sessions']:>10,}{row['rows']:>10,}"
                     f"{_num(row['mean_input']):>12}{_num(row['mean_output']):>12}{_percent(row['hit_rate']):>9}"
                     + "".join(f"{row['endings'].get(label, 0):>14,}" for label in reasons))
    lines.append("")
    for name, figures in quality["classes"].items():
        lines.append(f"Class {name}: expected from its own body, observed over its sessions")
        for title, key in (("turn-0 context", "initial_context"), ("new tokens per turn", "new_tokens_per_turn"),
                           ("output length", "generation_length"), ("delay unscaled, ms", "inter_turn_delay_ms"),
                           ("turns per session", "turns_per_session")):
            metric = figures["observed_vs_target"].get(key)
            if metric is None:
                continue
            expected = metric.get("expected") if isinstance(metric.get("expected"), dict) else {}
            observed = metric.get("observed_compared", metric["observed"])
            configured = {"mean": metric["target_mean"], "median": metric["target_median"]}
            for q in ("mean", "median", "p90"):
                if q != "p90":
                    lines.append(_row(f"{title} {q}", configured[q], expected.get(q), observed[q]))
                elif "p90" in metric:
                    lines.append(_row(f"{title} p90", None, metric["p90"]["expected"], metric["p90"]["observed"]))
        lines.append("")
    return lines


def comparison_text(quality: dict, name: str, sessions: int, rows: int, block_size: int) -> str:
    """Every sampled quantity and every ending: configured, expected from the IR, observed."""
    metrics = quality["observed_vs_target"]
    lines = [
        f"tracedsl trace profile: {name}",
        "=" * 92,
        "",
        f"{sessions:,} sessions | {rows:,} requests | block_size={block_size}",
        "Configured = the spec's value; Expected = what the generator's mechanics produce (IR, "
        "quadrature);",
        "Error = signed (observed - expected) / expected.",
        "",
        f"  {'':<34}{'Configured':>14}{'Expected':>14}{'Observed':>14}{'Error':>12}",
        RULE,
    ]

    def block(title: str, key: str, quantiles=("mean", "median"), use_compared=False) -> None:
        metric = metrics.get(key)
        if metric is None:
            return
        lines.append(title + (" — expected per class (see above)" if metric.get("expected") == "per class" else ""))
        expected = metric.get("expected") if isinstance(metric.get("expected"), dict) else {}
        observed = metric.get("observed_compared") if use_compared and "observed_compared" in metric else metric["observed"]
        configured = {"mean": metric["target_mean"], "median": metric["target_median"]}
        for q in quantiles:
            exp = expected.get(q) if q in ("mean", "median") else (expected.get("quantiles") or {}).get(q)
            lines.append(_row(q, configured.get(q), exp, observed[q]))
        lines.append("")

    block("Initial context, tokens (primary sessions' turn 0)", "initial_context", use_compared=True)
    block("New tokens per turn (turns >= 1)", "new_tokens_per_turn")
    block("Generation length, tokens", "generation_length", ("mean", "median", "p05", "p99"))
    block("Inter-turn delay before context scaling, ms", "inter_turn_delay_ms", use_compared=True)
    block("Turns per session", "turns_per_session", ("mean", "median", "p05", "p25", "p75", "p95", "p99"))

    isl = quality["request_input_length"]
    limit = quality["config_summary"].get("max_prompt_tokens")
    lines.append("Request input length, tokens (the whole prompt when replayed)")
    lines.append(_row("mean", None, None, isl["mean"]))
    lines.append(_row("p99", None, None, isl["p99"]))
    lines.append(_row("max_prompt_tokens (limit) / p99 use", limit, None,
                      isl["p99"] / limit * 100 if limit else None))
    lines.append("")

    ends = quality["session_end_stats"]
    targets = quality.get("end_reason_targets") or {}
    lines.append("Session endings (sessions)")
    for reason in EndReason:
        if reason.count_key not in ends:  # UNKNOWN appears only for foreign traces
            continue
        label, target = reason.label, targets.get(reason.reference_name)
        at_most = f"{reason.reference_name}_at_most"
        if at_most in targets:
            label, target = f"{label} (expected at most)", targets[at_most]
        lines.append(_row(label, None, target, ends[reason.count_key], 0))
    lines.append("")
    links = quality.get("session_links")
    if links is not None:
        lines.append("Session links (sessions.jsonl: continuations by link kind)")
        for kind, count in links.items():
            lines.append(_row(kind, None, None, count, 0))
        lines.append("")

    lines.extend(_class_table(quality))
    lines.extend(agent_lines(quality.get("agent")))
    arrivals = quality.get("arrivals")
    if arrivals is not None:
        rate, cv = arrivals["rate_per_s"], arrivals["interarrival_cv"]
        lines.append(f"Arrivals ({arrivals['process']}; primary sessions' starts over "
                     f"{arrivals['span_s']:,.1f} s)")
        lines.append(_row("rate, sessions/s", None, rate["target"], rate["observed"], 3))
        lines.append(_row("inter-arrival CV (sd / mean gap)", None, cv["target"], cv["observed"], 3))
        lines.append("")

    reuse = quality["kv_reuse"]
    sample = reuse["sample"]
    lines.append("KV-cache reuse when replayed (serial, file order; see docs/reports.md)")
    scope = "exact, all requests" if sample["method"] == "all" else (
        f"exact on the first {sample['sessions']:,} of {sample['of_sessions']:,} sessions: "
        f"{sample['requests']:,} of {sample['of_requests']:,} requests")
    lines.append(f"  {'prefix hit rate, unbounded cache':<34}{reuse['prefix_hit_rate_unbounded'] * 100:>41.1f}%   ({scope})")
    for entry in reuse["lru_hit_rate"]:
        # Capacities up to the first that holds every reuse: larger ones all read the same.
        full = entry["hit_rate"] >= reuse["prefix_hit_rate_unbounded"]
        tokens = entry["capacity_tokens"]
        size = f"{tokens / 1e6:.3g}M" if tokens >= 1e6 else f"{tokens / 1e3:.3g}k"
        label = f"LRU {entry['capacity_blocks']:,} blocks ({size} tok)" + (" and up" if full else "")
        lines.append(f"  {label:<34}{entry['hit_rate'] * 100:>41.1f}%   ({scope})")
        if full:
            break
    shares = ", ".join(f"{k} {v * 100:.1f}%" for k, v in reuse["layer_token_share"].items())
    lines.append(f"  prompt tokens by layer: {shares}")
    lines.append("")
    estimates = quality["estimates"]
    duration = estimates["session_duration_min"]
    # the spec's latency model, as the estimates used it (quality.json records its rates)
    prefill = estimates.get("prefill_tps", PREFILL_TPS)
    decode = estimates.get("decode_tps", DECODE_TPS)
    lines.append(f"Session duration, minutes (estimated @ {prefill:,.0f} prefill tok/s, "
                 f"{decode:,.0f} decode tok/s, whole prompt prefilled)")
    lines.append(_row("mean", None, None, duration["mean"]))
    lines.append(_row("median", None, None, duration["median"]))
    return "\n".join(lines) + "\n"


def _figure_rows(title: str, figure: dict | None, digits: int = 1) -> list[str]:
    """A figure of quality.json ``agent``: mean, median and p90, expected against observed."""
    if figure is None or figure.get("observed") is None:
        return []
    expected = figure.get("expected") or {}
    observed = figure.get("observed_compared") or figure["observed"]
    out = [title]
    for q in ("mean", "median"):
        out.append(_row(q, None, expected.get(q), observed[q], digits))
    if "p90" in figure:
        out.append(_row("p90", None, figure["p90"]["expected"], figure["p90"]["observed"], digits))
    return out


def agent_lines(figures: dict | None) -> list[str]:
    """Requests, compactions, subagents and the hit rate by call kind (only when the spec has them)."""
    if not figures:
        return []
    lines: list[str] = []
    requests = figures.get("requests")
    if requests is not None:
        lines.append("Requests (the hosts' LLM calls; see docs/reports.md)")
        for title, key in (("requests per session", "requests_per_session"),
                           ("calls per request (whole requests)", "calls_per_request"),
                           ("message tokens (request-opening calls)", "message_tokens"),
                           ("think gap, ms (request-opening calls)", "think_ms"),
                           ("tool latency before scaling, ms (tool calls)", "tool_latency_ms"),
                           ("tool result tokens (tool calls)", "tool_new_tokens")):
            lines.extend("  " + line if i == 0 else line
                         for i, line in enumerate(_figure_rows(title, requests.get(key))))
        lines.append("")
    compaction = figures.get("compaction")
    if compaction is not None:
        lines.append("Compactions")
        lines.append(_row("logical sessions", None, None, compaction["logical_sessions"], 0))
        lines.append(_row("share that compact", None, None, compaction["share_compacting"], 4))
        per = compaction["compactions_per_compacting_session"]
        lines.append(_row("compactions per compacting session", per["at_most"], None, per["observed_mean"], 3))
        before = compaction["prompt_before"]
        if before.get("observed") is not None:
            lines.append(_row("prompt before (max) vs threshold", before["threshold_tokens"], None,
                              before["observed"]["p99"], 0) + "   (configured: threshold; observed: p99)")
        for title, key in (("prompt after (continuation's turn 0)", "prompt_after"),
                           ("summary tokens", "summary_tokens")):
            lines.extend("  " + line if i == 0 else line
                         for i, line in enumerate(_figure_rows(title, compaction.get(key))))
        lines.append("")
    subagents = figures.get("subagents")
    if subagents is not None:
        lines.append("Subagents")
        rate = subagents["spawn_rate"]
        lines.append(_row("spawn rate per eligible call", None, rate["target"], rate["observed"], 4))
        lines.append(_row("spawns / eligible calls", None, None, subagents["spawns"], 0)
                     + f"   of {subagents['eligible_calls']:,}")
        lines.append(_row("children", None, None, subagents["children"], 0))
        for title, key in (("fan-out (children per spawn)", "fanout"), ("calls per child", "calls_per_child")):
            lines.extend("  " + line if i == 0 else line
                         for i, line in enumerate(_figure_rows(title, subagents.get(key))))
        lines.append("")
    kinds = figures.get("hit_rate_by_call_kind") or {}
    if kinds:
        lines.append("Prefix hit rate by call kind (unbounded cache, the reuse sample)")
        for name, entry in kinds.items():
            lines.append(f"  {name.replace('_', '-'):<34}{entry['hit_rate'] * 100:>41.1f}%   "
                         f"({entry['calls']:,} calls)")
        lines.append("")
    return lines
