"""The figures docs/presets.md quotes for a run of a preset: what a run of it achieves.

``figures(run_dir)`` reads a run directory (quality.json, sessions.jsonl, dataset.jsonl) and
returns each figure the table names, already written as the table writes it, so the doc's
achieved column can be compared as text. Run this file to print the achieved rows:

    PYTHONPATH=$PWD python tests/preset_figures.py claude-code codex
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

from tracedsl import pipeline
from tracedsl.output.reader import read_trace

SESSIONS = 10_000
SEED = 42
FIVE_MIN_MS = 5 * 60 * 1000


def _count(value: float) -> str:
    return f"{value:,.0f}"


def _mean(value: float) -> str:
    return f"{value:.2f}"


def _share(value: float) -> str:
    return f"{100 * value:.1f}%"


def _seconds(value_ms: float) -> str:
    seconds = value_ms / 1000
    return f"{seconds:.3g} s" if seconds < 100 else f"{seconds:,.0f} s"


def _session_counts(run_dir: Path) -> tuple[np.ndarray, np.ndarray, dict[str, list[int]]]:
    """Calls and requests per logical session (compaction continuations merged), and each
    session's request-opening rows."""
    calls: dict[str, int] = defaultdict(int)
    requests: dict[str, int] = defaultdict(int)
    openings: dict[str, list[int]] = {}
    with open(run_dir / "sessions.jsonl") as index:
        for line in index:
            session = json.loads(line)
            logical = session["logical_session_id"]
            calls[logical] += session["turns"]
            opened = session["requests"]
            if session["link"] is not None and opened[:1] == [0]:
                opened = opened[1:]  # a continuation's turn 0 goes on with its parent's request
            requests[logical] += len(opened)
            openings[session["session_id"]] = session["requests"]
    order = list(calls)
    return (np.array([calls[s] for s in order]), np.array([requests[s] for s in order]), openings)


def _row_figures(run_dir: Path, openings: dict[str, list[int]]) -> dict[str, np.ndarray]:
    """Per call after turn 0: the tokens it appends to the cache (its new tokens plus the
    previous call's output, which no earlier prompt held), the prefix it shares with the
    previous call, and the human waits."""
    appended, prefixes, waits = [], [], []
    for chunk in read_trace(run_dir / "dataset.jsonl"):
        later = chunk.turn_index > 0
        previous_output = np.concatenate([[0], chunk.output_length[:-1]])
        grown = (chunk.input_length + previous_output)[later]
        appended.append(grown)
        prefixes.append(chunk.request_input_length[later] - grown)
        opening = np.zeros(chunk.num_rows, dtype=bool)
        for s, session_id in enumerate(chunk.session_ids):
            rows = np.asarray(openings[session_id], dtype=np.int64)
            opening[chunk.row_offsets[s] + rows[rows > 0]] = True
        waits.append(chunk.delay_ms[opening])
    return {"appended": np.concatenate(appended), "prefix": np.concatenate(prefixes),
            "waits": np.concatenate(waits)}


def figures(run_dir: Path) -> dict[str, str]:
    """Every figure of the presets table, as the table writes it: a spec's laws as it ran them,
    and for a spec with requests the agent figures too."""
    quality = json.loads((run_dir / "quality.json").read_text())
    found = _law_figures(quality) | _trace_figures(quality)
    if "agent" in quality:
        found.update(_agent_figures(run_dir, quality))
    return found


def _law_figures(quality: dict) -> dict[str, str]:
    """The sampled quantities against what the spec's laws give (quality.json ``expected``)."""
    found = {}
    names = {"initial_context": ("initial context", _count), "new_tokens_per_turn":
             ("new tokens per turn", _count), "generation_length": ("output tokens per call", _count),
             "inter_turn_delay_ms": ("delay", _seconds)}
    for key, (name, written) in names.items():
        figure = quality["observed_vs_target"].get(key, {})
        expected = figure.get("expected")
        if not isinstance(expected, dict):  # none where no one law gives it (classes)
            continue
        observed = figure.get("observed_compared", figure["observed"])
        for stat, label in (("mean", "mean"), ("median", "p50")):
            found[f"{name}, {label}"] = written(observed[stat])
            found[f"{name}, {label}, expected"] = written(expected[stat])
    return found


def _trace_figures(quality: dict) -> dict[str, str]:
    """What any trace shows, with or without requests: per-request means, the unbounded prefix
    hit rate, and the rate at which sessions start."""
    found = {
        "input tokens per request, mean": _count(quality["request_input_length"]["mean"]),
        "output tokens per request, mean": _count(
            quality["observed_vs_target"]["generation_length"]["observed"]["mean"]),
        "prefix hit rate, all calls": _share(quality["kv_reuse"]["prefix_hit_rate_unbounded"]),
    }
    arrivals = quality.get("arrivals")
    if arrivals:
        found["sessions started per second"] = f"{arrivals['rate_per_s']['observed']:.2f}"
    return found


def _agent_figures(run_dir: Path, quality: dict) -> dict[str, str]:
    """The agent figures TraceLab publishes, as a run of a spec with requests gives them."""
    agent = quality["agent"]
    calls, requests, openings = _session_counts(run_dir)
    rows = _row_figures(run_dir, openings)
    appended = rows["appended"]
    waits = rows["waits"]
    compaction = agent["compaction"]
    by_kind = agent["hit_rate_by_call_kind"]
    tool_ms = agent["requests"]["tool_latency_ms"]["observed"]
    think_ms = agent["requests"]["think_ms"]["observed"]
    return {
        "cached prefix per call, p50": _count(np.median(rows["prefix"])),
        "appended tokens per call, p50": _count(np.median(appended)),
        "appended tokens from calls appending 10k or more": _share(
            appended[appended >= 10_000].sum() / appended.sum()),
        "output tokens per call, p50": _count(quality["observed_vs_target"]["generation_length"]
                                              ["observed"]["median"]),
        "calls per session, mean": _mean(calls.mean()),
        "calls per request, mean": _mean(calls.sum() / requests.sum()),
        "requests per session, mean": _mean(requests.mean()),
        "requests per session, p50": _count(np.median(requests)),
        "sessions of one request": _share(float(np.mean(requests == 1))),
        "tool latency, p50": _seconds(tool_ms["median"]),
        "tool latency, mean": _seconds(tool_ms["mean"]),
        "human wait, p50": _seconds(think_ms["median"]),
        "human wait, mean": _seconds(think_ms["mean"]),
        "human waits within 5 min": _share(float(np.mean(waits <= FIVE_MIN_MS))),
        "sessions that compact": _share(compaction["share_compacting"]),
        "compactions per compacting session, mean": _mean(
            compaction["compactions_per_compacting_session"]["observed_mean"]),
        "prefix hit rate, tool-result calls": _share(by_kind["tool"]["hit_rate"]),
        "prefix hit rate, request-opening calls": _share(by_kind["request_opening"]["hit_rate"]),
    }


def run_preset(name: str, output: Path, seed: int = SEED) -> Path:
    """A run of the bundled preset ``name`` at the table's size, without the HTML reports."""
    result = pipeline.run(name, output, num_sessions=SESSIONS, seed=seed, html=False)
    return Path(result.run_dir)


if __name__ == "__main__":
    seed = SEED
    names = sys.argv[1:]
    if names and names[0].startswith("--seed="):
        seed = int(names.pop(0).split("=", 1)[1])
    for name in names:
        with tempfile.TemporaryDirectory() as temp:
            found = figures(run_preset(name, Path(temp), seed))
        print(f"## {name} (seed {seed})")
        for figure, value in found.items():
            print(f"| {figure} | {value} |")
