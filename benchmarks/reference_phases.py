"""The reference's synthesis and JSONL-writing phases, timed in-process (aiperf-measured.md §2e).

Runs under the reference's own virtualenv (``$AIPERF_VENV/bin/python``), never under
tracedsl's: tracedsl does not import AIPerf. Prints one JSON line with the timings.

    $AIPERF_VENV/bin/python benchmarks/reference_phases.py --sessions N --output DIR
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

SEED = 42


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, required=True)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()

    started = time.perf_counter()
    from aiperf.dataset.agentic_code_gen.config import load_config
    from aiperf.dataset.agentic_code_gen.session_synthesizer import SessionSynthesizer
    from aiperf.dataset.agentic_code_gen.writer import _write_jsonl

    imported = time.perf_counter()
    config = load_config("default")
    wall0, cpu0 = time.perf_counter(), time.process_time()
    sessions = SessionSynthesizer(config, seed=SEED).synthesize_sessions(args.sessions)
    wall1 = time.perf_counter()
    args.output.mkdir(parents=True, exist_ok=True)
    _write_jsonl(sessions, args.output / "dataset.jsonl", config.block_size)
    wall2, cpu2 = time.perf_counter(), time.process_time()
    print(
        json.dumps(
            {
                "rows": sum(len(session.turns) for session in sessions),
                "import_s": imported - started,
                "synthesis_s": wall1 - wall0,
                "write_s": wall2 - wall1,
                "timed_wall_s": wall2 - wall0,
                "timed_cpu_s": cpu2 - cpu0,
            }
        )
    )


if __name__ == "__main__":
    main()
