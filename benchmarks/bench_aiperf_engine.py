"""Side by side: the reference's synthesis + JSONL write against ``--engine aiperf`` (same bytes).

    python benchmarks/bench_aiperf_engine.py --sessions 10000 --aiperf-venv /tmp/aiperf-venv

Runs the reference's phases in its own virtualenv (benchmarks/reference_phases.py, bundled
``default``, seed 42), then tracedsl's engine and writer in this process on the same config,
seed and count, checks the two files are identical and prints both timings and the ratio.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import tempfile
import time
from pathlib import Path

from tracedsl.engine import RunRequest
from tracedsl.engine.aiperf import AiperfEngine
from tracedsl.ir import GenerationParams
from tracedsl.output.jsonl import JsonlWriter

HERE = Path(__file__).resolve().parent
DEFAULT_CONFIG = (
    HERE.parent / "tests" / "fixtures" / "aiperf-0.13.0" / "default_s1_n300" / "config.json"
)
SEED = 42


def time_engine(params: GenerationParams, sessions: int, path: Path) -> tuple[float, float]:
    started = time.perf_counter()
    chunks = AiperfEngine().generate(RunRequest(params, sessions, SEED))
    sampled = time.perf_counter()
    with JsonlWriter(path) as writer:
        for chunk in chunks:
            writer.write(chunk)
    return sampled - started, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--aiperf-venv", type=Path, default=Path("/tmp/aiperf-venv"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    params = GenerationParams.model_validate(json.loads(DEFAULT_CONFIG.read_text()))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        reference = json.loads(
            subprocess.run(
                [
                    str(args.aiperf_venv / "bin" / "python"),
                    str(HERE / "reference_phases.py"),
                    "--sessions",
                    str(args.sessions),
                    "--output",
                    str(out / "reference"),
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.splitlines()[-1]
        )
        best = min(
            (time_engine(params, args.sessions, out / "engine.jsonl") for _ in range(args.repeat)),
            key=lambda timing: timing[1],
        )
        same = (
            hashlib.sha256((out / "engine.jsonl").read_bytes()).digest()
            == hashlib.sha256((out / "reference" / "dataset.jsonl").read_bytes()).digest()
        )
    reference_total = reference["synthesis_s"] + reference["write_s"]
    print(f"sessions {args.sessions}, rows {reference['rows']}, identical bytes: {same}")
    print(
        f"reference   synthesis {reference['synthesis_s']:.3f} s + write {reference['write_s']:.3f} s"
        f" = {reference_total:.3f} s"
    )
    print(f"aiperf eng. sampling+layout {best[0]:.3f} s, with write {best[1]:.3f} s")
    print(f"speed-up (synthesis+write): {reference_total / best[1]:.1f}x")


if __name__ == "__main__":
    main()
