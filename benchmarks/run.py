"""Side-by-side benchmark: tracedsl's engines, the write-only floor and the reference, one table.

    python benchmarks/run.py                                  # 1k, 10k, 100k sessions
    python benchmarks/run.py --sizes 1k,10k,100k,1M --aiperf-venv /tmp/aiperf-venv

Every case runs in its own child process, so wall time, CPU time and peak memory are that
case's alone. Ratios are computed from cases measured in this same run, never from older
figures. The table is printed and the full results are written as JSON under --out.
Not part of the test suite (tests/test_scale_smoke.py only runs it at a tiny size).
"""

from __future__ import annotations

import argparse
import datetime
import functools
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
from table import markdown, print_report  # noqa: E402

SEED = 42
ENGINES = ("fast", "aiperf")
# The children measure this checkout's tracedsl, whether or not it is installed.
TRACEDSL_ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")])),
}


def parse_size(text: str) -> int:
    text = text.strip().lower().replace("_", "")
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * scale)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1k,10k,100k,1M",
                        help="session counts (default: the four the issue asks for; 1M takes a few minutes)")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument(
        "--aiperf-venv",
        default=os.environ.get("AIPERF_VENV"),
        help="the reference's virtualenv (or env AIPERF_VENV); omitted: no reference",
    )
    parser.add_argument(
        "--reference-max",
        type=parse_size,
        default=10_000,
        help="largest size the reference runs at (it needs 1.3 GB at 10k)",
    )
    parser.add_argument(
        "--aiperf-engine-max",
        type=parse_size,
        help="largest size the aiperf engine runs at (default: every size)",
    )
    parser.add_argument(
        "--workers-sizes",
        help="sizes for the --workers 1 vs 2 comparison, e.g. 100k,1M (default: the sizes of "
        "--sizes from 100k up, else the largest; below the pool threshold both stay in one "
        "process by design)",
    )
    parser.add_argument("--no-workers", action="store_true", help="skip the workers comparison")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run the two end-to-end CLI cases (tracedsl and the reference) this many times "
        "each, alternating, and report the run with the median wall time (a shared machine's "
        "noise hits short runs hardest)",
    )
    parser.add_argument("--out", type=Path, default=HERE / "out")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per case")
    args = parser.parse_args(argv)

    sizes = [parse_size(size) for size in args.sizes.split(",") if size.strip()]
    engines = [name for name in args.engines.split(",") if name]
    reference = Path(args.aiperf_venv) if args.aiperf_venv else None
    if reference is not None and not (reference / "bin" / "aiperf").exists():
        print(f"benchmark: no reference at {reference} (bin/aiperf missing); skipping it")
        reference = None

    load_at_start = round(os.getloadavg()[0], 2)
    results: list[dict] = []
    scratch = Path(tempfile.mkdtemp(prefix="tracedsl-bench-"))
    try:
        for sessions in sizes:
            results += _size(sessions, engines, reference, args, scratch)
        if not args.no_workers:
            for workers_size in _workers_sizes(args.workers_sizes, sizes):
                results += _workers(workers_size, args.timeout, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    machine = describe_machine()
    machine["load_average_1m_at_start"] = load_at_start
    report = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine,
        "seed": SEED,
        "spec": "default",
        "repeat": args.repeat,
        "results": results,
    }
    print_report(report)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = report["date_utc"].replace(":", "").replace("-", "")[:15]
    for name in (f"bench-{stamp}.json", "latest.json"):
        (args.out / name).write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "latest.md").write_text(markdown(report))
    print(f"\nresults: {args.out / 'latest.json'}")
    return 0


def _size(sessions: int, engines: list[str], reference: Path | None, args, scratch: Path) -> list:
    """Every case at one size; its outputs live under one folder, removed at the end."""
    here = scratch / str(sessions)
    out: list[dict] = []
    floor_sources: list[Path] = []
    for engine in engines:
        if engine == "aiperf" and args.aiperf_engine_max and sessions > args.aiperf_engine_max:
            continue
        cli = _median_run(
            functools.partial(_tracedsl_run, engine, sessions),
            here / f"cli-{engine}",
            args,
            TRACEDSL_ENV,
        )
        dataset = _only_dataset(here / f"cli-{engine}")
        out.append(_record("tracedsl run (CLI, end to end)", engine, sessions, cli, dataset))
        sampled = run_measured(_case("sampling", engine, sessions), args.timeout, TRACEDSL_ENV)
        out.append(_record("sampling only", engine, sessions, sampled, timed=True))
        written = here / f"write-{engine}"
        both = run_measured(
            _case("sample-write", engine, sessions, "--output", str(written)),
            args.timeout,
            TRACEDSL_ENV,
        )
        out.append(_record("sampling + dataset.jsonl", engine, sessions, both, timed=True))
        floor_sources += [path for path in (dataset, written / "dataset.jsonl") if path]

    existing = [path for path in floor_sources if path.exists()]
    if existing:
        floor = run_measured(
            [
                sys.executable,
                str(HERE / "cases.py"),
                "floor",
                "--dataset",
                str(existing[0]),
                "--output",
                str(here / "floor"),
            ],
            args.timeout,
        )
        out.append(_record("write-only floor (orjson)", "-", sessions, floor, timed=True))

    if reference is not None and sessions <= args.reference_max:
        ref = _median_run(
            lambda out: [
                str(reference / "bin" / "aiperf"),
                "synthesize",
                "agentic-code",
                "--config",
                "default",
                "--num-sessions",
                str(sessions),
                "--seed",
                str(SEED),
                "--output",
                str(out),
            ],
            here / "reference",
            args,
        )
        out.append(
            _record(
                "reference CLI (aiperf 0.13.0)",
                "reference",
                sessions,
                ref,
                _only_dataset(here / "reference"),
            )
        )
        phases = run_measured(
            [
                str(reference / "bin" / "python"),
                str(HERE / "reference_phases.py"),
                "--sessions",
                str(sessions),
                "--output",
                str(here / "reference-phases"),
            ],
            args.timeout,
        )
        out.append(
            _record("reference synthesis + write", "reference", sessions, phases, timed=True)
        )
    shutil.rmtree(here, ignore_errors=True)
    return out


def _median_run(command, output: Path, args, env: dict | None = None) -> Measurement:
    """``command(output)`` run ``args.repeat`` times; the run with the median wall time.

    Each run starts from an empty ``output``; the chosen run's files are left there. Every
    run's wall and CPU time are kept in the chosen one's ``phases["runs"]``.
    """
    runs = []
    for attempt in range(args.repeat):
        attempt_dir = output.with_name(f"{output.name}-{attempt}")
        shutil.rmtree(attempt_dir, ignore_errors=True)
        runs.append((run_measured(command(attempt_dir), args.timeout, env), attempt_dir))
    failed = [run for run in runs if not run[0].ok]
    by_wall = sorted(runs, key=lambda run: run[0].wall_s)
    chosen, chosen_dir = failed[0] if failed else by_wall[(len(by_wall) - 1) // 2]
    for _, attempt_dir in runs:
        if attempt_dir != chosen_dir:
            shutil.rmtree(attempt_dir, ignore_errors=True)
    shutil.rmtree(output, ignore_errors=True)
    if chosen_dir.exists():
        chosen_dir.rename(output)
    chosen.phases["runs"] = [{"wall_s": m.wall_s, "cpu_s": m.cpu_s} for m, _ in runs]
    return chosen


def _workers_sizes(given: str | None, sizes: list[int]) -> list[int]:
    if given:
        return [parse_size(size) for size in given.split(",") if size.strip()]
    return [size for size in sizes if size >= 100_000] or [max(sizes)]


def _workers(sessions: int, timeout: float, scratch: Path) -> list[dict]:
    sys.path.insert(0, str(HERE.parent))
    from tracedsl.engine.executors import IN_PROCESS_BELOW_SESSIONS

    forced = sessions < IN_PROCESS_BELOW_SESSIONS
    if forced:
        print(
            f"benchmark: note: {sessions:,} sessions is below the pool threshold "
            f"({IN_PROCESS_BELOW_SESSIONS:,}); --workers 2 is given a pool anyway, to show why"
        )
    out = []
    for workers in (1, 2):
        run_dir = scratch / f"workers-{workers}"
        # Through cli_timed.py, which also reports the CPU of the tracedsl process alone.
        command = _tracedsl_run("fast", sessions, run_dir, "--workers", str(workers))
        command[1:3] = [str(HERE / "cli_timed.py")] + (["--pool-below-threshold"] if forced else [])
        measured = run_measured(command, timeout, TRACEDSL_ENV)
        out.append(
            _record(
                f"tracedsl run --workers {workers}",
                "fast",
                sessions,
                measured,
                _only_dataset(run_dir),
            )
        )
        shutil.rmtree(run_dir, ignore_errors=True)
    return out


def _tracedsl_run(engine: str, sessions: int, run_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tracedsl",
        "run",
        "default",
        "--num-sessions",
        str(sessions),
        "--seed",
        str(SEED),
        "--output",
        str(run_dir),
        "--engine",
        engine,
        "--quiet",
        *extra,
    ]


def _case(case: str, engine: str, sessions: int, *extra: str) -> list[str]:
    return [
        sys.executable,
        str(HERE / "cases.py"),
        case,
        "--engine",
        engine,
        "--sessions",
        str(sessions),
        *extra,
    ]


def _only_dataset(parent: Path) -> Path | None:
    found = sorted(parent.glob("*/dataset.jsonl")) if parent.is_dir() else []
    return found[0] if len(found) == 1 else None


def _record(
    case: str,
    engine: str,
    sessions: int,
    measured: Measurement,
    dataset: Path | None = None,
    timed: bool = False,
) -> dict:
    """One row of the table; ``timed`` cases report the section the child timed itself."""
    rows = measured.phases.get("rows")
    if rows is None and dataset is not None:
        rows = _count_rows(dataset)
    wall = measured.phases.get("timed_wall_s", measured.wall_s) if timed else measured.wall_s
    cpu = measured.phases.get("timed_cpu_s", measured.cpu_s) if timed else measured.cpu_s
    record = {
        "case": case,
        "engine": engine,
        "sessions": sessions,
        "ok": measured.ok and (not timed or "timed_wall_s" in measured.phases),
        "rows": rows,
        "wall_s": wall,
        "cpu_s": cpu,
        "process_wall_s": measured.wall_s,
        "peak_rss_mb": measured.peak_rss_mb,
        "peak_tree_pss_mb": measured.peak_tree_pss_mb,
        "rows_per_s": rows / wall if rows and wall > 0 else None,
        "main_cpu_s": measured.phases.get("main_cpu_s"),
        "dataset_bytes": dataset.stat().st_size if dataset is not None else None,
        "measurement": measured.as_dict(),
    }
    if not record["ok"]:
        lines = (measured.stderr or measured.stdout).strip().splitlines()
        record["error"] = lines[-1] if lines else f"exit {measured.exit_code}"
    return record


def _count_rows(path: Path) -> int:
    rows = 0
    with open(path, "rb") as source:
        while block := source.read(1 << 24):
            rows += block.count(b"\n")
    return rows


if __name__ == "__main__":
    sys.exit(main())
