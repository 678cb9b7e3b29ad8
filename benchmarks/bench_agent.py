"""An agent workload (requests, compaction, subagents) against `default`, end to end, per row.

    python benchmarks/bench_agent.py [--sessions 1M] [--repeats 1] [--no-html]

Runs `tracedsl run default -n N` and `tracedsl run AGENT -n N` (AGENT: the spec below,
written as spec.json into a temporary directory), each in its own child process, and
prints, for each, the rows written, wall and CPU time, µs a row, the largest process's peak
RSS and the whole tree's peak PSS, then the agent's time a row over default's (issue #13:
within 2x, in flat memory under 1 GB). N counts primary sessions, each a logical session
with its compaction continuations; subagents come on top of them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from measure import run_measured  # noqa: E402
from run import TRACEDSL_ENV, parse_size  # noqa: E402

SEED = 42
MINUTE = 60_000.0
# The example shapes: requests of LLM calls (tool results and tool latency between
# them, a human's think time between requests), compaction at 83%, and 2% of calls spawning
# one to four subagents with a 12k system prompt of their own.
AGENT = {
    "new_tokens_per_turn": {"mean": 900, "median": 400, "max": 30_000},
    "generation_length": {"mean": 400, "median": 200, "max": 8000},
    "inter_turn_delay": {"law": {"mean": 2000, "median": 400, "max": 120_000}},
    # a call ends the logical session with 5%: about 20 calls (two or three requests) each,
    # and about one in twenty compacts
    "reset": {"base_probability": 0.05, "context_scaling": 1.0},
    "request": {
        "calls": {"kind": "lognormal", "mean": 8.8, "median": 2, "max": 300},
        "message": {"mean": 3000, "median": 400, "max": 80_000},
        "think": {"mean": 10 * MINUTE, "median": 80_000, "max": 14 * 60 * MINUTE},
    },
    "compaction": {"threshold": 0.83, "summary": {"mean": 30_000, "median": 25_000, "max": 60_000},
                   "max_compactions": 8},
    "subagent": {
        "probability": 0.02,
        "fanout": {"kind": "uniform", "min": 1, "max": 4},
        "returns": {"mean": 2000, "median": 1000, "max": 20_000},
        "shares_global": False,
        "shares_groups": False,
        "params": {
            "cache": {"layer1_tokens": 12_000, "layer1_5_tokens": 0, "layer2": {"mean": 3000, "median": 2000},
                      "layer1_5_groups": {"num_groups": 1, "zipf_alpha": 1.0}},
            "reset": None,
            "turns": {"mean": 15, "median": 10, "min": 1, "max": 80, "allow_truncation": True},
            "new_tokens_per_turn": {"mean": 900, "median": 400, "max": 30_000},
            "generation_length": {"mean": 400, "median": 200, "max": 8000},
            "inter_turn_delay": {"law": {"mean": 2000, "median": 400, "max": 120_000}},
        },
    },
}


def spec_file(directory: Path) -> Path:
    path = directory / "agent.spec.json"
    path.write_text(json.dumps({"format_version": 1, "workload": "agent", "generation_params": AGENT}))
    return path


def _rows(out: Path) -> tuple[int, int]:
    manifest = json.loads(next(out.glob("*/manifest.json")).read_text())
    return int(manifest["rows"]), int(manifest["written_sessions"])


def measure(spec: str, sessions: int, html: bool, scratch: Path, label: str) -> dict:
    out = scratch / label
    command = [sys.executable, "-m", "tracedsl", "run", spec, "-n", str(sessions), "--seed", str(SEED),
               "-o", str(out)] + ([] if html else ["--no-reports"])
    done = run_measured(command, env=TRACEDSL_ENV)
    if not done.ok:
        raise SystemExit(f"{label} failed:\n{done.stderr[-3000:]}")
    rows, written = _rows(out)
    for path in sorted(out.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    return {"case": label, "sessions": sessions, "written_sessions": written, "rows": rows,
            "wall_s": done.wall_s, "cpu_s": done.cpu_s, "us_per_row": done.wall_s / rows * 1e6,
            "peak_rss_mb": done.peak_rss_mb, "peak_tree_pss_mb": done.peak_tree_pss_mb}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=parse_size, default=100_000)
    parser.add_argument("--repeats", type=int, default=1, help="runs of each; the median wall is kept")
    parser.add_argument("--no-html", action="store_true", help="skip the HTML reports in both runs")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-agent-") as tmp:
        scratch = Path(tmp)
        specs = {"default": "default", "agent": str(spec_file(scratch))}
        results = []
        for label, spec in specs.items():
            runs = [measure(spec, args.sessions, not args.no_html, scratch, label) for _ in range(args.repeats)]
            results.append(min(runs, key=lambda r: abs(r["wall_s"] - statistics.median(x["wall_s"] for x in runs))))
    print("| case | sessions | written sessions | rows | wall s | CPU s | µs/row | peak MB | tree MB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['case']} | {r['sessions']:,} | {r['written_sessions']:,} | {r['rows']:,} | {r['wall_s']:.2f} | "
              f"{r['cpu_s']:.2f} | {r['us_per_row']:.2f} | {r['peak_rss_mb']:.0f} | {r['peak_tree_pss_mb']:.0f} |")
    ratio = results[1]["us_per_row"] / results[0]["us_per_row"]
    print(f"agent / default time a row: {ratio:.2f}x")
    print(json.dumps({"results": results, "ratio_per_row": ratio, "cpus": os.cpu_count()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
