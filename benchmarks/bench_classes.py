"""Session classes, arrivals and non-lognormal families against `default`: time per row and memory.

    python benchmarks/bench_classes.py [--sizes 100k,1M] [--repeat 3] [--new-tokens gamma]

For each size it runs the CLI end to end (every report, --quiet) on the bundled `default`
and on the `mixed` workload (benchmarks/mixed_spec.py), alternating, and keeps each one's
run with the median wall time. The two workloads write different numbers of rows a
session, so they are compared by wall time a row; the issue asks the mixed one to stay
within 1.5x of `default` a row and under 1 GB (peak PSS of the process tree).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from measure import run_measured  # noqa: E402
from mixed_spec import write_spec  # noqa: E402
from run import SEED, TRACEDSL_ENV, parse_size  # noqa: E402

TIME_LIMIT = 1.5  # the mixed workload's wall time a row, as a multiple of default's
MEMORY_LIMIT_MB = 1024


def _once(spec: str, sessions: int, scratch: Path) -> dict:
    out = scratch / f"{Path(spec).stem}-{sessions}"
    command = [sys.executable, "-m", "tracedsl", "run", spec, "-n", str(sessions), "--seed", str(SEED),
               "--quiet", "--output", str(out)]
    measured = run_measured(command, 3600, TRACEDSL_ENV)
    manifests = list(out.glob("*/manifest.json"))
    if not measured.ok or len(manifests) != 1:
        raise SystemExit(f"failed: {' '.join(command)}\n{measured.stderr}")
    manifest = json.loads(manifests[0].read_text())
    shutil.rmtree(out, ignore_errors=True)
    return {"wall_s": measured.wall_s, "cpu_s": measured.cpu_s, "peak_mb": measured.peak_tree_pss_mb,
            "rows": manifest["rows"], "sessions": manifest["written_sessions"],
            "classes": manifest.get("classes")}


def _median(runs: list[dict]) -> dict:
    chosen = sorted(runs, key=lambda run: run["wall_s"])[(len(runs) - 1) // 2]
    return {**chosen, "walls_s": [round(run["wall_s"], 2) for run in runs]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100k,1M")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--new-tokens", choices=("weibull", "gamma"), default="weibull",
                        help="the coding class's new-tokens law (mixed_spec.py)")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="tracedsl-classes-"))
    mixed = str(write_spec(scratch / "mixed.spec.json", args.new_tokens))
    results = []
    print(f"load average at start {os.getloadavg()[0]:.2f}; median of {args.repeat} by wall time")
    print(f"{'sessions':>10}  {'spec':>8}  {'wall':>8}  {'CPU':>8}  {'peak':>8}  {'rows':>11}  "
          f"{'µs/row':>7}  {'vs default':>10}")
    try:
        for sessions in (parse_size(size) for size in args.sizes.split(",")):
            runs: dict[str, list[dict]] = {"default": [], mixed: []}
            for _ in range(args.repeat):
                for spec in runs:
                    runs[spec].append(_once(spec, sessions, scratch))
            default, mine = _median(runs["default"]), _median(runs[mixed])
            per_row = {name: run["wall_s"] / run["rows"] * 1e6 for name, run in (("default", default), ("mixed", mine))}
            ratio = per_row["mixed"] / per_row["default"]
            for name, run in (("default", default), ("mixed", mine)):
                shown = f"{ratio:.2f}x" if name == "mixed" else ""
                print(f"{sessions:>10,}  {name:>8}  {run['wall_s']:>6.2f} s  {run['cpu_s']:>6.2f} s  "
                      f"{run['peak_mb']:>5.0f} MB  {run['rows']:>11,}  {per_row[name]:>7.2f}  {shown:>10}",
                      flush=True)
            results.append({"sessions": sessions, "default": default, "mixed": mine, "ratio_per_row": ratio,
                            "within_time": ratio <= TIME_LIMIT, "within_memory": mine["peak_mb"] < MEMORY_LIMIT_MB})
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
