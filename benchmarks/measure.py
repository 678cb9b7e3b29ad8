"""Run one benchmark case as a child process and measure its wall time, CPU time and memory."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Measurement:
    """What one child process cost; ``phases`` is what the child timed itself, if anything."""

    command: list[str]
    exit_code: int
    wall_s: float
    cpu_s: float  # user + system of the child and every descendant it waited for
    peak_rss_mb: float  # the largest single process of the tree (getrusage ru_maxrss)
    peak_tree_pss_mb: float  # the whole tree at its sampled peak (PSS, so shared pages count once)
    stdout: str
    stderr: str
    phases: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def as_dict(self) -> dict:
        data = asdict(self)
        data["stdout"] = self.stdout[-2000:]
        data["stderr"] = self.stderr[-2000:]
        return data


def run_measured(
    command: list[str], timeout_s: float = 3600, env: dict | None = None
) -> Measurement:
    """Run ``command`` to completion; the last stdout line that is a JSON object becomes ``phases``."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=err, env=env)
        sampler = _TreeMemorySampler(child.pid)
        sampler.start()
        killer = threading.Timer(timeout_s, child.kill)
        killer.start()
        try:
            # wait4 gives this child's own resource use (and that of the processes it
            # reaped), not the sum over every child this benchmark ever ran.
            _, status, usage = os.wait4(child.pid, 0)
        finally:
            killer.cancel()
            sampler.stop()
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    return Measurement(
        command=command,
        exit_code=child.returncode,
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=usage.ru_maxrss / 1024,  # Linux reports kilobytes
        peak_tree_pss_mb=sampler.peak_kb / 1024,
        stdout=stdout,
        stderr=stderr,
        phases=_last_json_line(stdout),
    )


def _last_json_line(stdout: str) -> dict:
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return {}


class _TreeMemorySampler:
    """Samples the summed PSS of a process and its descendants, every 50 ms rising to 250 ms.

    Reading smaps_rollup of a large process walks its page tables; sampling a long run
    less often keeps the sampler from taking a noticeable share of a 2-core machine.
    """

    def __init__(self, pid: int, interval_s: float = 0.05, longest_s: float = 0.25):
        self.pid = pid
        self.interval_s = interval_s
        self.longest_s = longest_s
        self.peak_kb = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._done.is_set():
            total = sum(_pss_kb(pid) for pid in _tree(self.pid))
            self.peak_kb = max(self.peak_kb, total)
            self._done.wait(self.interval_s)
            self.interval_s = min(self.longest_s, self.interval_s * 1.1)


def _tree(root: int) -> list[int]:
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        for children in Path(f"/proc/{pid}/task").glob("*/children"):
            try:
                todo.extend(int(child) for child in children.read_text().split())
            except OSError:
                pass
    return pids


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass  # the process ended between listing and reading
    return 0
