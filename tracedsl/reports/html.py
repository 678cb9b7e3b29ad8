"""report.html and cache_explorer.html: jinja2 pages with inline SVG and inline vanilla JS."""

from __future__ import annotations

import json
from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from tracedsl.reports import charts
from tracedsl.reports.collect import ISL_EDGES, RATE_EDGES, Collector
from tracedsl.reports.comparison import class_rows
from tracedsl.reports.sketch import Sketch
from tracedsl.reports.timeline import target_rate
from tracedsl.trace import EndReason

GROWTH_SESSIONS = 16  # sample sessions drawn in the line charts


@cache
def _environment() -> Environment:
    return Environment(loader=PackageLoader("tracedsl.reports", "templates"),
                       autoescape=select_autoescape(default=True, default_for_string=True),
                       undefined=StrictUndefined)


def script_json(value: object) -> Markup:
    """JSON safe inside a <script> element: no '</' can close it."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return Markup(text.replace("</", "<\\/").replace("<!--", "<\\!--"))


def _range(sketch: Sketch, unit: charts.Unit) -> tuple[float, float, str]:
    """Histogram range: the full range unless a long tail would squash the bars (said in the unit)."""
    hi = sketch.max
    note = ""
    tail = sketch.quantile(0.995)
    if sketch.count and hi > 2 * tail > 0:
        hi, note = tail, f"x axis cut at p99.5 ({unit.figure(tail)}); max {unit.figure(sketch.max)}"
    return sketch.min, hi, note


def _hist(collector: Collector, key: str, title: str, unit: charts.Unit) -> dict | None:
    """A histogram card; its caption's figures are in the unit its x axis shows."""
    sketch = collector.sketch[key]
    if sketch.count == 0:
        return None
    stats = sketch.stats(None)
    summary = (f"n={sketch.count:,} · mean {unit.figure(stats['mean'])} · "
               f"median {unit.figure(stats['median'])} · p99 {unit.figure(stats['p99'])}")
    if sketch.min == sketch.max:  # one value: a lone bar would say less than a sentence
        return {"title": title, "svg": charts.message(charts.constant_text(sketch.min, unit), title),
                "note": f"n={sketch.count:,}", "wide": False}
    lo, hi, note = _range(sketch, unit)
    bins = 40
    if unit.integer and hi - lo < 40:
        lo, hi, bins = lo - 0.5, hi + 0.5, int(hi - lo) + 1
    edges, counts = sketch.histogram(bins, lo, hi)
    return {"title": title, "svg": charts.histogram(edges * unit.scale, counts, unit, title),
            "note": summary + (f" · {note}" if note else ""), "wide": False}


def _sample_lines(collector: Collector) -> tuple[list, list]:
    sessions = collector.sample_sessions()[:GROWTH_SESSIONS]
    growth, hit = [], []
    for record in sessions:
        name = record["session_id"]
        turns = record["turns"]
        x = list(range(len(turns)))
        growth.append((name, x, [t["request_isl"] for t in turns]))
        blocks = [t["prompt_blocks"] for t in turns]
        local = [0.0] + [blocks[i - 1] / blocks[i] if blocks[i] else 0.0 for i in range(1, len(blocks))]
        hit.append((name, x, local))
    return growth, hit


def cards(collector: Collector, report: dict) -> list[dict]:
    """Every chart of report.html, in reading order."""
    delay = charts.duration_unit(_range(collector.sketch["delay_ms"], charts.SECONDS)[1])
    out = [
        _hist(collector, "request_isl", "Request input length (whole prompt, tokens)", charts.TOKENS),
        _hist(collector, "generation_length", "Output length (generation, tokens)", charts.TOKENS),
        _hist(collector, "initial_context", "Initial context (turn 0 input, tokens)", charts.TOKENS),
        _hist(collector, "new_tokens", "New tokens per turn (turns ≥ 1)", charts.TOKENS),
        _hist(collector, "delay_ms", f"Inter-turn delay ({delay.symbol})", delay),
        _hist(collector, "turns", "Turns per session", charts.TURNS),
        _hist(collector, "prompt_blocks", "Hash-id blocks per request (whole prompt)", charts.BLOCKS),
        _hist(collector, "latency_s", "Estimated request latency (s)", charts.SECONDS),
        _hist(collector, "session_minutes", "Estimated session duration (min)", charts.MINUTES),
        _hist(collector, "prefix_tokens", "Cached prefix length (tokens, unbounded cache)", charts.TOKENS),
        _hist(collector, "unique_tokens", "Uncached prompt length (tokens)", charts.TOKENS),
        _hist(collector, "prefix_ratio", "Prefix ratio (cached / prompt tokens)", charts.RATIO),
        _hist(collector, "hit_rate", "Prefix cache hit rate per request (unbounded)", charts.RATE),
    ]
    growth, hit = _sample_lines(collector)
    if growth:
        out.append({"title": f"Context growth ({len(growth)} sample sessions)", "wide": True,
                    "svg": charts.lines(growth, charts.TURN_INDEX, charts.Unit("request input length (tokens)"),
                                        "context growth"),
                    "note": "each request's whole prompt: earlier inputs and outputs plus its own input"})
        out.append({"title": f"Per-session cache hit rate by turn ({len(hit)} sample sessions)", "wide": True,
                    "svg": charts.lines(hit, charts.TURN_INDEX, charts.RATE, "per-session hit rate", (0.0, 1.0)),
                    "note": "a cache holding only this session's earlier requests: |P(t-1)| / |P(t)| blocks"})
    if collector.heatmap.any():
        out.append({"title": "Cache hit rate vs request input length", "wide": True,
                    "svg": charts.heatmap(collector.heatmap, RATE_EDGES, ISL_EDGES, charts.TOKENS, charts.RATE,
                                          "hit rate vs input length", x_label="request input length (tokens)"),
                    "note": "requests per cell, shaded by log count"})
    reuse = report["kv_reuse"]
    if reuse["prompt_blocks"]:
        caps = [e["capacity_tokens"] for e in reuse["lru_hit_rate"]]
        rates = [e["hit_rate"] for e in reuse["lru_hit_rate"]]
        unbounded = reuse["prefix_hit_rate_unbounded"]
        out.append({"title": "Hit rate of an LRU block cache by capacity", "wide": True,
                    "svg": charts.lines([("LRU", caps, rates), ("unbounded", [caps[0], caps[-1]], [unbounded] * 2)],
                                        charts.TOKENS, charts.RATE, "LRU hit rate", (0.0, 1.0), log_x=True,
                                        legend=True, x_label="capacity (tokens)"),
                    "note": f"serial replay, exact (stack distances); {reuse['sample']['sessions']:,} of "
                            f"{reuse['sample']['of_sessions']:,} sessions ({reuse['sample']['requests']:,} of "
                            f"{reuse['sample']['of_requests']:,} requests"
                            + ("" if reuse["sample"]["method"] == "all" else ", the first in file order")
                            + f"); unbounded {unbounded * 100:.1f}%"})
        shares = list(reuse["layer_token_share"].items())
        out.append({"title": "Prompt tokens by layer", "wide": False,
                    "svg": charts.bars(shares, charts.SHARE, "layer shares"),
                    "note": "L1 global, L1.5 shared, L2 first turn, L3 later turns, outputs"})
    out.extend(_class_cards(collector))
    out.extend(_agent_cards(collector, report))
    arrivals = _arrivals_card(collector, report)
    if arrivals is not None:
        out.append(arrivals)
    ends = report["session_end_stats"]
    endings = [(reason.label, ends[reason.count_key]) for reason in EndReason if ends.get(reason.count_key)]
    if endings:
        out.append({"title": "Session endings", "wide": False,
                    "svg": charts.bars(endings, charts.SESSIONS, "session endings"), "note": ""})
    return [card for card in out if card is not None]


def _class_cards(collector: Collector) -> list[dict]:
    """Per class, the share of its requests in each bin of input length and of output length
    (the whole trace's bins, so the classes read against each other)."""
    if collector.classes is None:
        return []
    out = []
    for key, title, unit in (("request_isl", "Request input length by class", charts.TOKENS),
                             ("generation_length", "Output length by class", charts.TOKENS)):
        whole = collector.sketch[key]
        if whole.count == 0 or whole.min == whole.max:
            continue
        lo, hi, note = _range(whole, unit)
        series = []
        for figures in collector.classes.figures:
            sketch = figures.sketch[key]
            if sketch.count == 0:
                continue
            edges, counts = sketch.histogram(40, lo, hi)
            middles = ((edges[:-1] + edges[1:]) / 2).tolist()
            series.append((figures.name, middles, (counts / sketch.count).tolist()))
        if series:
            out.append({"title": title, "wide": True,
                        "svg": charts.lines(series, unit, charts.Unit("share of the class's requests", percent=True),
                                            title.lower(), x_label=f"{unit.axis} (40 bins)"),
                        "note": "each class's requests per bin over its own requests" + (f" · {note}" if note else "")})
    return out


def _gap_name(lo: float, hi: float | None) -> str:
    def short(ms: float) -> str:
        if ms < 1000:
            return f"{ms:g}ms"
        if ms < 60_000:
            return f"{ms / 1000:g}s"
        if ms < 3_600_000:
            return f"{ms / 60_000:g}m"
        return f"{ms / 3_600_000:g}h"

    return f">{short(lo)}" if hi is None else f"{short(lo)}–{short(hi)}"


def _agent_cards(collector: Collector, report: dict) -> list[dict]:
    """Requests, compactions and subagents: sample sessions on a time axis, and the hit rate by
    the idle gap before a call and by call kind (only for a spec that has them)."""
    figures = report.get("agent")
    if collector.agent is None or figures is None:
        return []
    lanes = collector.agent.samples
    hosts = sum(1 for lane in lanes if lane["host"])
    out = [{"title": "Agent structure: sample sessions on a time axis", "wide": True,
            "svg": charts.agent_timeline(lanes, "agent timeline"),
            "note": f"the first {hosts} host sessions with two calls or more, each with the subagents it spawns "
            f"({len(lanes)} rows); call lengths from the latency model; orange: request-opening calls, green: "
            "tool calls, blue: subagents' calls; red triangle: a compaction; dashed: a spawn · broken axis "
            f"(idle stretches over {charts.fmt(charts.BREAK_MS / 1000)} s drawn that long, their length below)"}]
    gaps = figures.get("hit_rate_by_gap") or []
    named = [(_gap_name(entry["gap_ms_from"], entry["gap_ms_to"]), entry["hit_rate"] or 0.0) for entry in gaps]
    if named:
        out.append({"title": "Hit rate by the idle gap before the call", "wide": True,
                    "svg": charts.bars(named, charts.RATE, "hit rate by idle gap", width=charts.WIDE, top=1.1),
                    "note": "prefix hit rate (unbounded cache, the reuse sample) of the calls after turn 0, "
                    "binned by their delay; " + ", ".join(f"{name}: {entry['calls']:,} calls"
                                                           for (name, _), entry in zip(named, gaps, strict=True))})
    kinds = figures.get("hit_rate_by_call_kind") or {}
    if kinds:
        out.append({"title": "Hit rate by call kind", "wide": False,
                    "svg": charts.bars([(name.replace("_", "-"), entry["hit_rate"]) for name, entry in kinds.items()],
                                       charts.RATE, "hit rate by call kind", top=1.1),
                    "note": "unbounded cache: " + ", ".join(f"{name.replace('_', ' ')} {entry['calls']:,} calls"
                                                            for name, entry in kinds.items())})
    return out


def _arrivals_card(collector: Collector, report: dict) -> dict | None:
    """Primary sessions started per second over the run, the spec's target rate drawn over them;
    only for a trace whose starts are spread over time."""
    if not collector.timeline.spread:
        return None
    edges, counts = collector.timeline.shown()
    process = collector.params.arrivals if collector.params is not None else None
    target = target_rate(process, edges) if process is not None else None
    width = charts.duration_unit(float(edges[1] - edges[0]))
    note = f"{int(counts.sum()):,} primary sessions in bins of {width.figure(float(edges[1] - edges[0]))}"
    figures = report.get("arrivals")
    if figures is not None:
        rate, cv = figures["rate_per_s"], figures["interarrival_cv"]
        note += (f" · {figures['process']} · rate target {_figure(rate['target'])}/s, observed "
                 f"{_figure(rate['observed'])}/s · gap CV target {_figure(cv['target'])}, observed "
                 f"{_figure(cv['observed'])} · dashed line: the target rate")
    note += " · the last bin ends after the last start"
    return {"title": "Arrivals: sessions started per second", "wide": True,
            "svg": charts.timeline(edges, counts, target, "arrivals timeline"), "note": note}


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def render_report(collector: Collector, report: dict, name: str) -> str:
    summary = report["config_summary"]
    reuse = report["kv_reuse"]
    headline = [
        ("sessions", f"{collector.sessions:,}"),
        ("requests", f"{collector.rows:,}"),
        ("block size", f"{collector.block_size}"),
        ("mean request input", charts.fmt(report["request_input_length"]["mean"])),
        ("prefix hit rate (unbounded)" if reuse["sample"]["method"] == "all" else
         f"prefix hit rate (unbounded; first {reuse['sample']['sessions']:,} sessions)",
         f"{reuse['prefix_hit_rate_unbounded'] * 100:.1f}%"),
    ]
    params = [(key, "-" if value is None else value) for key, value in summary.items()]
    return _environment().get_template("report.html.j2").render(
        name=name, headline=headline, params=params, cards=cards(collector, report),
        classes=_class_table(report))


def _class_table(report: dict) -> list[dict]:
    """The per-class table's rows as shown (figures formatted), empty without classes."""
    rows = []
    for row in class_rows(report):
        rows.append({
            "name": row["class"],
            "fraction": f"{row['fraction_target'] * 100:.1f}% / " + (
                "-" if row["fraction_observed"] is None else f"{row['fraction_observed'] * 100:.1f}%"),
            "sessions": f"{row['sessions']:,}",
            "requests": f"{row['rows']:,}",
            "mean_input": "-" if row["mean_input"] is None else f"{row['mean_input']:,.0f}",
            "mean_output": "-" if row["mean_output"] is None else f"{row['mean_output']:,.1f}",
            "hit_rate": "-" if row["hit_rate"] is None else f"{row['hit_rate'] * 100:.1f}%",
            "endings": row["endings"],
        })
    return rows


def render_cache_explorer(structure: dict, name: str) -> str:
    return _environment().get_template("cache_explorer.html.j2").render(
        name=name, data_json=script_json(structure), sample=structure["sample"])


