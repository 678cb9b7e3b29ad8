"""Runs the tracedsl CLI in this process and prints the CPU time of this process alone.

    python benchmarks/cli_timed.py [--pool-below-threshold] run default -n N ...

The last stdout line is JSON: ``main_cpu_s``, user + system time of the tracedsl process
itself (every thread of it) without its worker processes, which the benchmark's own
``cpu_s`` (of the whole tree) includes. ``--pool-below-threshold`` lets ``--workers N`` use
a pool at any size, to measure where the threshold should sit.
"""

from __future__ import annotations

import atexit
import json
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout


def _report() -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    sys.stdout.write(json.dumps({"main_cpu_s": usage.ru_utime + usage.ru_stime}) + "\n")
    sys.stdout.flush()


def main() -> None:
    arguments = sys.argv[1:]
    if arguments[:1] == ["--pool-below-threshold"]:
        from tracedsl.engine import executors

        executors.IN_PROCESS_BELOW_SESSIONS = 0
        arguments = arguments[1:]
    from tracedsl.cli import main as tracedsl_main

    atexit.register(_report)  # the CLI leaves through sys.exit; forked workers never run atexit
    tracedsl_main(arguments)


if __name__ == "__main__":
    main()
