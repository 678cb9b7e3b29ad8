"""Micro-benchmark of the JSONL writer: floor, writer, sampling, and sampling + writer, one process.

    python benchmarks/bench_write.py [--sessions 10000 100000] [--repeat 5]

For each session count it generates ``default`` (seed 42) with the fast engine once,
keeps the chunks in memory, and times (CPU seconds, best of ``--repeat``):

- floor: every row as a dict (made untimed, one chunk at a time), serialized with orjson
  and written, nothing else (the limit issue 6 chases);
- writer: ``JsonlWriter.write`` of the kept chunks;
- sampling: the fast engine's chunks, not written;
- sampling + writer: both, streamed as ``tracedsl run`` does.

All files go to a temporary directory, /dev/shm when it exists (the disk is not under test).
The writer's output is checked byte for byte against the floor's before anything is timed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from tracedsl.engine import RunRequest  # noqa: E402
from tracedsl.engine.fast import FastEngine  # noqa: E402
from tracedsl.loading import load_spec  # noqa: E402
from tracedsl.output.jsonl import JsonlWriter, row_dicts  # noqa: E402

SEED = 42


def _best_cpu(action, repeat: int) -> float:
    """The least CPU time of ``repeat`` calls; ``action`` may return its own timed CPU seconds."""
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        timed = action()
        best = min(best, timed if timed is not None else time.process_time() - started)
    return best


def measure(sessions: int, repeat: int, folder: Path) -> dict:
    request = RunRequest(load_spec("default").params, sessions, SEED)
    chunks = list(FastEngine().generate(request))
    floor_path, writer_path = folder / "floor.jsonl", folder / "writer.jsonl"

    def floor() -> float:
        # the rows of one chunk at a time as dicts (not timed), then orjson + write (timed)
        spent = 0.0
        with open(floor_path, "wb") as sink:
            for chunk in chunks:
                rows = list(row_dicts(chunk))
                started = time.process_time()
                sink.write(b"\n".join(map(orjson.dumps, rows)) + b"\n")
                spent += time.process_time() - started
        return spent

    def writer() -> None:
        with JsonlWriter(writer_path) as out:
            for chunk in chunks:
                out.write(chunk)

    def sampling() -> None:
        for _ in FastEngine().generate(request):
            pass

    def sampling_and_writer() -> None:
        with JsonlWriter(writer_path) as out:
            for chunk in FastEngine().generate(request):
                out.write(chunk)

    floor()
    writer()
    if floor_path.read_bytes() != writer_path.read_bytes():
        raise SystemExit(f"{sessions} sessions: the writer's bytes differ from orjson's")
    result = {
        "sessions": sessions,
        "rows": sum(c.num_rows for c in chunks),
        "mb": floor_path.stat().st_size / 1e6,
    }
    for name, action in (
        ("floor", floor),
        ("writer", writer),
        ("sampling", sampling),
        ("sampling+writer", sampling_and_writer),
    ):
        result[name] = _best_cpu(action, repeat)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    scratch = "/dev/shm" if os.path.isdir("/dev/shm") else None
    header = f"{'sessions':>9} {'rows':>9} {'MB':>7} {'floor':>7} {'writer':>7} {'sampling':>9} {'samp+wr':>8} {'x floor':>8}"
    print("CPU seconds, best of", args.repeat)
    print(header)
    for sessions in args.sessions:
        with tempfile.TemporaryDirectory(dir=scratch) as folder:
            r = measure(sessions, args.repeat, Path(folder))
        ratio = r["sampling+writer"] / r["floor"]
        print(
            f"{r['sessions']:>9} {r['rows']:>9} {r['mb']:>7.1f} {r['floor']:>7.3f} {r['writer']:>7.3f}"
            f" {r['sampling']:>9.3f} {r['sampling+writer']:>8.3f} {ratio:>8.2f}"
        )


if __name__ == "__main__":
    main()
