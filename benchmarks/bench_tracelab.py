"""Reading TraceLab's release format: a tracedsl run written as release rows, then imported.

    python benchmarks/bench_tracelab.py [--sessions 43000] [--keep DIR]

Runs an agent spec (requests and compaction, about 25 calls a session: 43,000 sessions give
about 1.1M rows), writes its calls with ``write_tracelab``, then reads them back with
``read_tracelab`` in a child process, and prints rows, wall and CPU seconds, rows a second
and the reader's peak RSS. docs/tracelab.md quotes the figures.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SPEC = ROOT / "tests" / "fixtures" / "tracelab" / "agent.trace"  # the round-trip test's workload

READ = """\
import re, sys, time
from pathlib import Path
from tracedsl.imports.tracelab import read_tracelab
wall, cpu = time.perf_counter(), time.process_time()
rows = sessions = 0
for chunk in read_tracelab(sys.argv[1]):
    rows += chunk.num_rows
    sessions += chunk.num_sessions
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
# VmHWM, not ru_maxrss: Linux carries the forking parent's peak into a child's ru_maxrss
peak = int(re.search(r"VmHWM:\\s+(\\d+)", Path("/proc/self/status").read_text()).group(1)) / 1024
print(f"read:  {rows:,} rows, {sessions:,} sessions, {wall:.1f} s wall, {cpu:.1f} s CPU, "
      f"{rows / wall:,.0f} rows/s wall, {rows / cpu:,.0f} rows/s CPU, peak RSS {peak:.0f} MB")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=43_000)
    parser.add_argument("--keep", type=Path, help="write into this directory and keep the files")
    args = parser.parse_args()
    from tracedsl import pipeline
    from tracedsl.imports.tracelab import logical_sessions, write_tracelab
    from tracedsl.output.reader import read_trace
    from tracedsl.reports.regenerate import with_index

    with tempfile.TemporaryDirectory() as scratch:
        where = args.keep or Path(scratch)
        where.mkdir(parents=True, exist_ok=True)
        spec = where / "bench.trace"
        spec.write_text(SPEC.read_text())
        result = pipeline.run(spec, where / "runs", num_sessions=args.sessions, seed=1, html=False)
        dataset, index = result.run_dir / "dataset.jsonl", result.run_dir / "sessions.jsonl"
        path = where / "tracelab.jsonl"
        wall, cpu = time.perf_counter(), time.process_time()
        rows = write_tracelab(with_index(read_trace(dataset), None, index), path, logical=logical_sessions(index))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        size = path.stat().st_size / 1e6
        print(f"write: {rows:,} rows ({size:,.0f} MB), {wall:.1f} s wall, {cpu:.1f} s CPU "
              "(reading the run's dataset included)")
        subprocess.run([sys.executable, "-c", READ, str(path)], check=True, env={"PYTHONPATH": str(ROOT)})


if __name__ == "__main__":
    main()
