"""Reading speed: `tracedsl validate`, the shared reader and `tracedsl report`, this checkout vs another.

    python benchmarks/bench_read.py --sessions 100000                      # this checkout alone
    python benchmarks/bench_read.py --trace RUN100K/dataset.jsonl --trace RUN1M/dataset.jsonl \\
        --baseline /path/to/other/checkout --repeat 1 --out read.json

Each trace is a run of ``default`` (seed 42) made with this checkout into --workdir for each
--sessions, unless --trace names them (a run's dataset.jsonl is validated with the
sessions.jsonl beside it, as ``tracedsl validate`` does). Five cases, each in its own child
process (measure.py): validate; read_trace over the whole file (what report, simulate, compare
and fit read through); ``tracedsl report --no-html`` into a scratch folder (the reader and
the reports' collector: quality.json, comparison.txt, cache_structure.json); ``tracedsl compare
T T`` (the trace against itself: twice its rows read, and counted so); and ``tracedsl fit T
--no-check`` (reading and fitting, no check run: its rows per second count the input's rows once,
though fit reads them twice). With --baseline,
every repeat runs the baseline's case right after this checkout's, so both meet the same load
on a shared machine; each figure is the best of --repeat by CPU time, and the ratio is the
baseline's CPU over this checkout's. Rows per second are rows over CPU seconds, start-up
included. The file is read once before timing, so the page cache holds it.
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

from machine import describe_machine  # noqa: E402
from measure import Measurement, run_measured  # noqa: E402

SEED = 42
CASES = ("validate", "read_trace", "report", "compare", "fit")
ROWS_READ = {"compare": 2}  # compare reads the trace as A and as B: twice its rows
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
REPORT = (
    "import sys\n"
    "del sys.path[0]\n"
    "from tracedsl.__main__ import main\n"
    "sys.argv = ['tracedsl', 'report', sys.argv[1], '-o', sys.argv[2], '--no-html']\n"
    "main()\n"
)
COMPARE = (
    "import sys\n"
    "del sys.path[0]\n"
    "from tracedsl.__main__ import main\n"
    "sys.argv = ['tracedsl', 'compare', sys.argv[1], sys.argv[1]]\n"
    "main()\n"
)
FIT = (
    "import os, sys\n"
    "del sys.path[0]\n"
    "from tracedsl.__main__ import main\n"
    "os.makedirs(sys.argv[2], exist_ok=True)\n"
    "sys.argv = ['tracedsl', 'fit', sys.argv[1], '--no-check', '-o', os.path.join(sys.argv[2], 'fit.trace')]\n"
    "main()\n"
)


def _env(checkout: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(checkout)}


def _command(case: str, trace: Path, scratch: Path) -> list[str]:
    if case == "validate":
        return [sys.executable, "-c", VALIDATE, str(trace)]
    if case == "read_trace":
        return [sys.executable, "-c", READ_ALL, str(trace)]
    if case == "compare":
        return [sys.executable, "-c", COMPARE, str(trace)]
    if case == "fit":
        return [sys.executable, "-c", FIT, str(trace), str(scratch)]
    return [sys.executable, "-c", REPORT, str(trace), str(scratch)]


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
    parser.add_argument("--trace", type=Path, action="append", help="a Mooncake JSONL trace (repeatable; "
                        "default: a run of default for each --sessions)")
    parser.add_argument("--sessions", type=int, action="append", help="size of a run made without --trace "
                        "(repeatable; default 100000)")
    parser.add_argument("--workdir", type=Path, help="where the runs go (default: a temporary folder)")
    parser.add_argument("--baseline", type=Path, help="another tracedsl checkout, measured side by side")
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)

    scratch = Path(tempfile.mkdtemp(prefix="bench-read-"))
    try:
        traces = args.trace or [_make_trace(sessions, args.workdir or scratch)
                                for sessions in (args.sessions or [100_000])]
        checkouts = {"this": HERE.parent}
        if args.baseline is not None:
            checkouts["baseline"] = args.baseline.resolve()
        sizes = {trace: (_rows(trace), trace.stat().st_size) for trace in traces}
        runs: dict[tuple[Path, str, str], list[Measurement]] = {}
        for trace in traces:
            for _ in range(args.repeat):
                for case in args.cases:
                    for name, checkout in checkouts.items():
                        reports = scratch / "reports"
                        shutil.rmtree(reports, ignore_errors=True)
                        measured = run_measured(_command(case, trace, reports), env=_env(checkout))
                        if not measured.ok:
                            raise SystemExit(f"{name} {case} failed:\n{measured.stderr[-2000:]}")
                        runs.setdefault((trace, case, name), []).append(measured)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    machine = describe_machine()
    print(f"{machine['cpu_model']}, {machine['nproc']} cores, load {machine['load_average_1m']}; "
          f"best of {args.repeat} by CPU")
    print(f"{'trace':<12} {'case':<11} {'checkout':<9} {'wall s':>8} {'CPU s':>8} {'rows/s (CPU)':>13} "
          f"{'peak RSS MB':>12} {'ratio':>6}")
    results = []
    for (trace, case, name), measured in runs.items():
        rows, size = sizes[trace]
        best = _best(measured)
        rate = rows * ROWS_READ.get(case, 1) / best.cpu_s
        ratio = ""
        if name == "this" and (trace, case, "baseline") in runs:
            ratio = f"{_best(runs[(trace, case, 'baseline')]).cpu_s / best.cpu_s:.2f}x"
        print(f"{rows / 1e6:>5.1f}M rows  {case:<11} {name:<9} {best.wall_s:>8.1f} {best.cpu_s:>8.1f} "
              f"{rate:>13,.0f} {best.peak_rss_mb:>12.0f} {ratio:>6}")
        results.append({"trace": str(trace), "rows": rows, "bytes": size, "case": case, "checkout": name,
                        "wall_s": best.wall_s, "cpu_s": best.cpu_s, "rows_per_cpu_s": rate,
                        "peak_rss_mb": best.peak_rss_mb, "all_cpu_s": [m.cpu_s for m in measured]})
    if args.out is not None:
        args.out.write_text(json.dumps({"machine": machine, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
