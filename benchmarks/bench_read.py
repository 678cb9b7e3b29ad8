"""Reading speed: `tracedsl validate` and the shared reader (report, simulate), this checkout vs another.

    python benchmarks/bench_read.py --sessions 100000                      # this checkout alone
    python benchmarks/bench_read.py --trace RUN/dataset.jsonl --baseline /work/main --repeat 2

The trace is a run of ``default`` (seed 42) made with this checkout into --workdir, unless
--trace names one (a run's dataset.jsonl is validated with the sessions.jsonl beside it, as
``tracedsl validate`` does). Two cases, each in its own child process (measure.py): validate,
and read_trace over the whole file (what report and simulate read through). With --baseline,
every repeat runs the baseline's case right after this checkout's, so both meet the same load
on a shared machine; each figure is the best of --repeat by CPU time. Rows per second are
rows over CPU seconds. The file is read once before timing, so the page cache holds it.
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

from measure import Measurement, run_measured  # noqa: E402

SEED = 42
# ``python -c`` puts the working directory first on sys.path, ahead of PYTHONPATH: dropped, so
# each child imports the checkout it was given, not the one the benchmark runs in.
VALIDATE = (
    "import sys\n"
    "del sys.path[0]\n"
    "from tracedsl.__main__ import main\n"
    "sys.argv = ['tracedsl', 'validate', sys.argv[1]]\n"
    "main()\n"
)
READ_ALL = (
    "import sys\n"
    "del sys.path[0]\n"
    "from tracedsl.output.reader import read_trace\n"
    "rows = sum(chunk.num_rows for chunk in read_trace(sys.argv[1]))\n"
    "print(rows)\n"
)


def _env(checkout: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(checkout)}


def _cases(checkout: Path, trace: Path) -> dict[str, list[str]]:
    return {
        "validate": [sys.executable, "-c", VALIDATE, str(trace)],
        "read_trace": [sys.executable, "-c", READ_ALL, str(trace)],
    }


def _rows(trace: Path) -> int:
    lines = 0
    with open(trace, "rb") as handle:  # also brings the file into the page cache
        while block := handle.read(1 << 24):
            lines += block.count(b"\n")
    return lines


def _make_trace(sessions: int, workdir: Path) -> Path:
    out = workdir / f"default-{sessions}"
    if not any(out.glob("*/dataset.jsonl")):
        made = run_measured([sys.executable, "-m", "tracedsl", "run", "default", "-n", str(sessions),
                             "--seed", str(SEED), "-o", str(out), "--quiet"], env=_env(HERE.parent))
        if not made.ok:
            raise SystemExit(f"tracedsl run failed:\n{made.stderr}")
    return next(out.glob("*/dataset.jsonl"))


def _best(runs: list[Measurement]) -> Measurement:
    return min(runs, key=lambda run: run.cpu_s)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", type=Path, help="a Mooncake JSONL trace (default: a run of default)")
    parser.add_argument("--sessions", type=int, default=100_000, help="size of the run made without --trace")
    parser.add_argument("--workdir", type=Path, help="where the run goes (default: a temporary folder)")
    parser.add_argument("--baseline", type=Path, help="another tracedsl checkout, measured side by side")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)

    scratch = None
    if args.trace is None and args.workdir is None:
        scratch = Path(tempfile.mkdtemp(prefix="bench-read-"))
    try:
        trace = args.trace or _make_trace(args.sessions, args.workdir or scratch)
        rows, size = _rows(trace), trace.stat().st_size
        checkouts = {"this": HERE.parent}
        if args.baseline is not None:
            checkouts["baseline"] = args.baseline.resolve()
        runs: dict[tuple[str, str], list[Measurement]] = {}
        for _ in range(args.repeat):
            for case in ("validate", "read_trace"):
                for name, checkout in checkouts.items():
                    measured = run_measured(_cases(checkout, trace)[case], env=_env(checkout))
                    if not measured.ok:
                        raise SystemExit(f"{name} {case} failed:\n{measured.stderr[-2000:]}")
                    runs.setdefault((case, name), []).append(measured)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)

    print(f"{trace}: {rows:,} rows, {size / 1e9:.2f} GB; best of {args.repeat} by CPU")
    print(f"{'case':<11} {'checkout':<9} {'wall s':>8} {'CPU s':>8} {'rows/s (CPU)':>13} {'peak RSS MB':>12}")
    results = []
    for (case, name), measured in runs.items():
        best = _best(measured)
        rate = rows / best.cpu_s
        print(f"{case:<11} {name:<9} {best.wall_s:>8.1f} {best.cpu_s:>8.1f} {rate:>13,.0f} {best.peak_rss_mb:>12.0f}")
        results.append({"case": case, "checkout": name, "rows": rows, "wall_s": best.wall_s,
                        "cpu_s": best.cpu_s, "rows_per_cpu_s": rate, "peak_rss_mb": best.peak_rss_mb,
                        "all_cpu_s": [m.cpu_s for m in measured]})
    if args.baseline is not None:
        for case in ("validate", "read_trace"):
            ratio = _best(runs[(case, "baseline")]).cpu_s / _best(runs[(case, "this")]).cpu_s
            print(f"{case}: {ratio:.2f}x less CPU than the baseline")
    if args.out is not None:
        args.out.write_text(json.dumps({"trace": str(trace), "rows": rows, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
