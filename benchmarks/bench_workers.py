"""Where a pool of workers starts to pay: `tracedsl run` in one process vs a pool, by size.

    python benchmarks/bench_workers.py [--sizes 10k,20k,50k,100k,200k] [--workers 2] [--repeat 3]

For each size it runs the CLI end to end (all reports, --quiet) in one process
(`--workers 1`) and with a pool (`--workers N`, forced below the threshold by
cli_timed.py), alternating, best of --repeat by wall time. Prints wall time, the CPU of the
tracedsl process alone and of every process, and the pool's speed-up: the figures that set
IN_PROCESS_BELOW_SESSIONS in tracedsl/engine/executors.py.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from measure import run_measured  # noqa: E402
from run import TRACEDSL_ENV, parse_size  # noqa: E402


def _once(sessions: int, workers: int, scratch: Path) -> dict:
    out = scratch / f"{sessions}-{workers}"
    command = [sys.executable, str(HERE / "cli_timed.py"), "--pool-below-threshold", "run",
               "default", "-n", str(sessions), "--seed", "42", "--quiet", "--output", str(out),
               "--workers", str(workers)]
    measured = run_measured(command, 3600, TRACEDSL_ENV)
    shutil.rmtree(out, ignore_errors=True)
    if not measured.ok:
        raise SystemExit(f"failed: {' '.join(command)}\n{measured.stderr}")
    return {"wall": measured.wall_s, "cpu": measured.cpu_s, "main": measured.phases["main_cpu_s"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10k,20k,50k,100k,200k")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="tracedsl-workers-"))
    print(f"load average at start {os.getloadavg()[0]:.2f}; best of {args.repeat} by wall time")
    print(f"{'sessions':>10}  {'1 process: wall / main CPU / all CPU':>38}  "
          f"{f'pool of {args.workers}: wall / main CPU / all CPU':>38}  {'speed-up':>8}")
    try:
        for sessions in (parse_size(size) for size in args.sizes.split(",")):
            runs: dict[int, list[dict]] = {1: [], args.workers: []}
            for _ in range(args.repeat):
                for workers in runs:
                    runs[workers].append(_once(sessions, workers, scratch))
            one, pool = (min(runs[w], key=lambda r: r["wall"]) for w in runs)
            print(f"{sessions:>10,}  {_cells(one):>38}  {_cells(pool):>38}  "
                  f"{one['wall'] / pool['wall']:>7.2f}x", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    return 0


def _cells(run: dict) -> str:
    return f"{run['wall']:.2f} s / {run['main']:.2f} s / {run['cpu']:.2f} s"


if __name__ == "__main__":
    sys.exit(main())
