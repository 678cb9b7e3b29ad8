"""Signals against a real `python -m tracedsl run`: Ctrl-C, SIGTERM and SIGKILL, at work.

Each run is a subprocess in a process group of its own; the signal goes when the run is
writing (its hidden directory holds a non-empty dataset.jsonl). Every wait is bounded, so a
hang fails the test instead of stalling the suite. 100,000 sessions is the smallest run that
uses a pool of workers (executors.IN_PROCESS_BELOW_SESSIONS); ``--workers 1`` keeps the same
run in one process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tracedsl.engine import executors
from tracedsl.output import rundir

ROOT = Path(__file__).resolve().parents[1]
POOL_SESSIONS = executors.IN_PROCESS_BELOW_SESSIONS
# `python -m tracedsl`, with Ctrl-C handled as at a terminal even when this test runner was
# started ignoring it (a background job), which the child would inherit.
LAUNCH = ("import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
          "runpy.run_module('tracedsl', run_name='__main__', alter_sys=True)")
WAIT_S = 60  # the longest any run here may take to start writing or to end


def _start(out: Path, workers: int, sessions: int = POOL_SESSIONS) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("TRACEDSL_DEBUG", None)
    return subprocess.Popen(
        [sys.executable, "-c", LAUNCH, "run", "default", "-n", str(sessions), "-o", str(out),
         "--quiet", "--no-reports", "--workers", str(workers)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, process_group=0,
    )


def _hidden(out: Path) -> list[Path]:
    return [p for p in out.iterdir() if p.name.startswith(".")] if out.is_dir() else []


def _wait_until_writing(process: subprocess.Popen, out: Path) -> Path:
    """The run's hidden directory, once its dataset.jsonl has bytes in it."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the run ended before it was signalled: {_end(process)}"
        for hidden in _hidden(out):
            dataset = hidden / "dataset.jsonl"
            if dataset.is_file() and dataset.stat().st_size > 0:
                return hidden
        time.sleep(0.005)
    process.kill()
    raise AssertionError("the run did not start writing")


def _end(process: subprocess.Popen, timeout: float = WAIT_S) -> tuple[int, str]:
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise AssertionError(f"the run hung after the signal (more than {timeout} s)") from None
    return process.returncode, stderr.decode()


def _children(pid: int) -> list[int]:
    """The live processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _gone_within(pids: list[int], seconds: float) -> list[int]:
    """The pids still alive after up to ``seconds``."""
    deadline = time.monotonic() + seconds
    while (alive := [pid for pid in pids if _alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.02)
    return alive


def _signal(process: subprocess.Popen, number: int, target: str) -> None:
    if target == "group":  # what a terminal's Ctrl-C, `timeout` and CI cancellation do
        os.killpg(process.pid, number)
    else:
        os.kill(process.pid, number)


@pytest.mark.parametrize(("number", "target", "workers"), [
    (signal.SIGINT, "group", 2),
    (signal.SIGINT, "main", 2),
    (signal.SIGTERM, "main", 2),
    (signal.SIGTERM, "group", 2),
    (signal.SIGINT, "main", 1),
    (signal.SIGTERM, "group", 1),
], ids=["ctrl-c-group-pool", "ctrl-c-main-pool", "sigterm-main-pool", "sigterm-group-pool",
        "ctrl-c-main-one-process", "sigterm-group-one-process"])
def test_a_signalled_run_stops_at_once_with_one_line_and_leaves_nothing(tmp_path, number, target,
                                                                         workers):
    out = tmp_path / "out"
    process = _start(out, workers)
    _wait_until_writing(process, out)
    workers_seen = _children(process.pid)
    if workers > 1:
        assert len(workers_seen) >= workers, "the run did not use a pool"
    sent = time.monotonic()
    _signal(process, number, target)
    code, stderr = _end(process, timeout=15)
    took = time.monotonic() - sent
    assert code == 128 + number, stderr
    expected = "tracedsl: interrupted" if number == signal.SIGINT else "tracedsl: interrupted (SIGTERM)"
    assert stderr == expected + "\n"  # one line: no traceback from the workers or their queues
    assert took < 5, f"took {took:.1f} s to stop"
    assert list(out.iterdir()) == []  # no hidden directory, part file or spill folder
    assert _gone_within(workers_seen, 2) == []


def test_workers_die_with_a_killed_parent_and_the_next_run_removes_its_directory(tmp_path):
    out = tmp_path / "out"
    process = _start(out, workers=2)
    hidden = _wait_until_writing(process, out)
    workers_seen = _children(process.pid)
    assert len(workers_seen) >= 2
    os.kill(process.pid, signal.SIGKILL)
    code, _ = _end(process, timeout=15)  # (a surviving worker would hold the pipes open)
    assert code == -signal.SIGKILL
    assert _gone_within(workers_seen, 5) == []
    assert _hidden(out) == [hidden]  # SIGKILL cannot be caught: it stays, for now

    again = subprocess.run(
        [sys.executable, "-m", "tracedsl", "run", "default", "-n", "50", "-o", str(out), "--quiet"],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=WAIT_S,
    )
    assert again.returncode == 0, again.stderr
    assert again.stderr == (f"note: removed a stale run directory {hidden.name} "
                            f"left by process {process.pid}\n")
    assert _hidden(out) == []
    assert [p.name.startswith("default_50s_") for p in out.iterdir()] == [True]


def test_a_run_leaves_a_live_runs_directory_alone(tmp_path):
    out = tmp_path / "out"
    first = _start(out, workers=1)
    try:
        live = _wait_until_writing(first, out)
        second = subprocess.run(
            [sys.executable, "-m", "tracedsl", "run", "default", "-n", "50", "-o", str(out), "--quiet"],
            env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
            timeout=WAIT_S,
        )
        assert second.returncode == 0, second.stderr
        assert second.stderr == ""
        assert live.is_dir() and first.poll() is None  # the first run goes on, untouched
    finally:
        _signal(first, signal.SIGINT, "main")
    code, stderr = _end(first, timeout=15)
    assert code == 130, stderr
    assert [p.name.startswith("default_50s_") for p in out.iterdir()] == [True]


# ----------------------------------------------------------------------------------------------
# the stale-directory rule itself


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_only_hidden_directories_of_dead_owners_on_this_host_are_removed(tmp_path):
    host = rundir._host_key()
    dead = _dead_pid()
    stale = tmp_path / f".x.tmp-{dead}-{host}-abc"
    mine = tmp_path / f".x.tmp-{os.getpid()}-{host}-abc"
    live = tmp_path / f".x.tmp-{os.getppid()}-{host}-abc"
    elsewhere = tmp_path / f".x.tmp-{dead}-{'0' * 8 if host != '0' * 8 else '1' * 8}-abc"
    unknown = tmp_path / ".x.tmp-k2j3h4g5"  # an older tracedsl's: no owner recorded
    for path in (stale, mine, live, elsewhere, unknown):
        path.mkdir()
        (path / "dataset.jsonl").write_text("{}\n")
    removed = rundir.remove_stale(tmp_path)
    assert [str(r) for r in removed] == [
        f"removed a stale run directory {stale.name} left by process {dead}"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (mine, live, elsewhere, unknown)
    )


def test_a_run_directory_names_its_owner(tmp_path):
    with rundir.RunDir(tmp_path, "x") as made:
        found = rundir._HIDDEN.match(made.path.name)
        assert found is not None and int(found["pid"]) == os.getpid()
        assert found["host"] == rundir._host_key()
        assert rundir.remove_stale(tmp_path) == [] and made.path.is_dir()
        # what an interrupted command does last removes it whatever state it is in
        assert rundir.remove_own_unfinished() == [made.path]
        assert not made.path.exists()


def test_an_interrupted_validate_leaves_no_spill_folder(tmp_path):
    # validate spills the hash ids of a long trace into the system's temporary directory; an
    # interrupted command leaves without exit hooks (os._exit), so the folder must go before:
    # as the command unwinds, or in pipeline.abandon_runs (spill.remove_all) at the latest.
    from tracedsl import pipeline

    trace = pipeline.run("default", tmp_path / "runs", num_sessions=10_000, html=False).run_dir
    spills = tmp_path / "tmp"
    spills.mkdir()
    small_segments = ("import tracedsl.output.blocks as blocks; blocks.SPILL_AT = 64; " + LAUNCH)
    process = subprocess.Popen(
        [sys.executable, "-c", small_segments, "validate", str(trace)],
        env={**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(spills)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, process_group=0,
    )
    deadline = time.monotonic() + WAIT_S
    while not list(spills.iterdir()):
        assert process.poll() is None and time.monotonic() < deadline, _end(process)
        time.sleep(0.005)
    _signal(process, signal.SIGINT, "group")
    code, stderr = _end(process, timeout=15)
    assert (code, stderr) == (130, "tracedsl: interrupted\n")
    assert list(spills.iterdir()) == []


def test_remove_all_removes_open_spill_folders(tmp_path):
    from tracedsl.spill import SpillFolder, remove_all

    folder = SpillFolder(tmp_path, ".x-")
    folder.file("a").write_bytes(b"1")
    assert len(list(tmp_path.iterdir())) == 1
    remove_all()
    assert list(tmp_path.iterdir()) == []
