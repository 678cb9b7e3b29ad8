"""Phases of a tracedsl run timed inside one process: sampling, sampling + writing, and the floor.

Run by benchmarks/run.py as a child process; prints one JSON line with what it timed:

    python benchmarks/cases.py sampling     --engine fast --sessions N
    python benchmarks/cases.py sample-write --engine fast --sessions N --output DIR [--workers W]
    python benchmarks/cases.py floor        --dataset FILE --output DIR

The floor is the limit the engines chase: the same rows, already in memory as dicts,
serialized with orjson and written, nothing else. Reading them back from a dataset.jsonl
is not timed.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

SEED = 42
FLOOR_BATCH_ROWS = 65_536


class _Clock:
    """Wall and CPU time of the timed sections only."""

    def __init__(self) -> None:
        self.wall_s = 0.0
        self.cpu_s = 0.0

    def __enter__(self) -> _Clock:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall_s += time.perf_counter() - self._wall
        self.cpu_s += time.process_time() - self._cpu


def _request(sessions: int):
    from tracedsl.engine import RunRequest
    from tracedsl.loading import load_spec

    return RunRequest(load_spec("default").params, sessions, SEED)


def _engine(name: str, workers: int | None):
    from tracedsl.engine import get_engine

    if workers is None:
        return get_engine(name), None
    from tracedsl.engine.executors import ProcessPool
    from tracedsl.engine.fast import FastEngine

    pool = ProcessPool(workers)
    return FastEngine(map_fn=pool), pool


def sampling(engine_name: str, sessions: int) -> dict:
    request = _request(sessions)
    engine, _ = _engine(engine_name, None)
    rows = 0
    with _Clock() as clock:
        for chunk in engine.generate(request):
            rows += chunk.num_rows
    return {"rows": rows, "timed_wall_s": clock.wall_s, "timed_cpu_s": clock.cpu_s}


def sample_write(engine_name: str, sessions: int, output: Path, workers: int | None) -> dict:
    from tracedsl.output.jsonl import JsonlWriter

    request = _request(sessions)
    engine, pool = _engine(engine_name, workers)
    output.mkdir(parents=True, exist_ok=True)
    with _Clock() as clock, JsonlWriter(output / "dataset.jsonl") as writer:
        for chunk in engine.generate(request):
            writer.write(chunk)
    if pool is not None:
        pool.close()
    return {"rows": writer.rows, "timed_wall_s": clock.wall_s, "timed_cpu_s": clock.cpu_s}


def floor(dataset: Path, output: Path) -> dict:
    import orjson

    output.mkdir(parents=True, exist_ok=True)
    clock = _Clock()
    rows = 0
    with open(dataset, "rb") as source, open(output / "floor.jsonl", "wb") as sink:
        while True:
            lines = source.readlines(FLOOR_BATCH_ROWS * 230)  # ~230 bytes a row
            if not lines:
                break
            batch = [orjson.loads(line) for line in lines]
            with clock:
                sink.write(b"\n".join(map(orjson.dumps, batch)) + b"\n")
            rows += len(batch)
    return {"rows": rows, "timed_wall_s": clock.wall_s, "timed_cpu_s": clock.cpu_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", choices=("sampling", "sample-write", "floor"))
    parser.add_argument("--engine", default="fast")
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--output", type=Path)
    parser.add_argument("--dataset", type=Path)
    parser.add_argument("--workers", type=int)
    args = parser.parse_args()
    if args.case == "sampling":
        result = sampling(args.engine, args.sessions)
    elif args.case == "sample-write":
        result = sample_write(args.engine, args.sessions, args.output, args.workers)
    else:
        result = floor(args.dataset, args.output)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
