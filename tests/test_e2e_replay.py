"""tracedsl's datasets replay in the real AIPerf 0.13.0 client; the reference's own layout does not.

Needs an AIPerf install, so it runs only when AIPERF_VENV names one (CI has none):

    AIPERF_VENV=/tmp/aiperf-venv python3 -m pytest tests/test_e2e_replay.py

Each case writes a run with `tracedsl run`, then hands its dataset.jsonl to
tests/tools/replay.sh (docs/replay.md), which starts a mock OpenAI server, has `aiperf profile` load
every row (REPLAY_WHOLE=1: a hash id used at two block sizes anywhere in the file is
refused) and send the first sessions, and checks each row was sent exactly once.
About 20-40 s per case.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import ROOT, TOOLS
from tracedsl.cli import cli

AIPERF_VENV = os.environ.get("AIPERF_VENV")
REPLAY = TOOLS / "replay.sh"
SENT_SESSIONS = "6"

pytestmark = pytest.mark.skipif(
    not AIPERF_VENV or not REPLAY.is_file(),
    reason="replay needs AIPerf 0.13.0: set AIPERF_VENV",
)


def _write_run(tmp_path: Path, spec: str, *options: str) -> Path:
    parent = tmp_path / "run"
    result = CliRunner().invoke(cli, ["run", spec, "-n", "60", "--seed", "11", "-o", str(parent),
                                      "-q", "--no-reports", *options])
    assert result.exit_code == 0, result.output
    (run_dir,) = parent.iterdir()
    return run_dir / "dataset.jsonl"


def _replay(dataset: Path, mode: str = "concurrency") -> subprocess.CompletedProcess:
    # --fixed-schedule sends every session the file holds (--num-sessions does not bound it),
    # so that replay gets the trimmed trace only
    whole = "1" if mode == "concurrency" else "0"
    env = {**os.environ, "REPLAY_WHOLE": whole, "AIPERF_VENV": AIPERF_VENV or "", "REPLAY_MODE": mode}
    return subprocess.run(["bash", str(REPLAY), str(dataset), SENT_SESSIONS], env=env,
                          capture_output=True, text=True, timeout=600)


def _first_sessions_rows(dataset: Path, sessions: int) -> int:
    """Rows of the first `sessions` sessions: what replay.sh must see sent."""
    kept: set[str] = set()
    rows = 0
    for line in dataset.read_text().splitlines():
        sid = re.search(r'"session_id":"([^"]*)"', line).group(1)
        if sid not in kept and len(kept) < sessions:
            kept.add(sid)
        rows += sid in kept
    return rows


REPLAYS = [
    ("default", []),
    ("aiperf-defaults", []),  # 50 groups in L1.5
    ("inference-day-2026", []),  # restart continuations sharing their parent's blocks
    (str(ROOT / "examples" / "turns-truncate.trace"), []),
    (str(ROOT / "examples" / "turns-retry.trace"), []),
    ("default", ["--set", "block_size=64"]),
    # session classes with their own prefix regions; requests, compaction continuations and
    # subagent sessions (each its own session in the file, sharing only its prefix)
    (str(ROOT / "examples" / "classes.trace"), []),
    (str(ROOT / "examples" / "compaction.trace"), []),
    (str(ROOT / "examples" / "subagents.trace"), []),
    (str(ROOT / "examples" / "coding-agent.trace"), []),
    ("claude-code", []),  # the presets calibrated to TraceLab: classes, requests, compaction
    ("codex", []),
    ("mooncake-conversation", []),  # fitted from the FAST'25 trace: empirical tables, gamma arrivals
]


@pytest.mark.parametrize("spec, options", REPLAYS,
                         ids=["default", "aiperf-defaults", "inference-day-2026", "turns-truncate",
                              "turns-retry", "block-64", "classes", "compaction", "subagents",
                              "coding-agent", "claude-code", "codex", "mooncake-conversation"])
def test_default_engine_datasets_replay_in_aiperf(spec, options, tmp_path):
    dataset = _write_run(tmp_path, spec, *options)
    done = _replay(dataset)
    expected = _first_sessions_rows(dataset, int(SENT_SESSIONS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"replayed {expected} requests, 0 errors" in done.stdout, done.stdout


def test_arrival_timestamps_replay_with_fixed_schedule(tmp_path):
    # AIPerf's --fixed-schedule sends each session at its turn-0 timestamp (2 sessions/s here,
    # so the first few are sent over about 3 s), every row exactly once.
    dataset = _write_run(tmp_path, str(ROOT / "examples" / "arrivals.trace"))
    starts = [float(m) for m in re.findall(r'"timestamp":([0-9.]+)', dataset.read_text())]
    assert starts[0] == 0.0 and starts == sorted(starts) and starts[-1] > 10_000
    done = _replay(dataset, "fixed")
    expected = _first_sessions_rows(dataset, int(SENT_SESSIONS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"replayed {expected} requests, 0 errors" in done.stdout, done.stdout
    # the schedule was kept: the benchmark lasted at least until the last session's start
    firsts = [float(m) for m in re.findall(r'"timestamp":([0-9.]+)', dataset.read_text())]
    benchmark = float(re.search(r"benchmark ([0-9.]+) s", done.stdout).group(1))
    assert benchmark >= firsts[int(SENT_SESSIONS) - 1] / 1000.0, done.stdout


def test_aiperf_engine_layout_is_refused_by_aiperf_and_the_fast_engine_is_not(tmp_path):
    # The same spec, seed and count: the reference's layout reuses a partial block's id at a
    # second size (flaw B2); AIPerf's own loader refuses the whole file.
    flawed = _write_run(tmp_path / "aiperf", "inference-day-2026", "--engine", "aiperf")
    check = CliRunner().invoke(cli, ["validate", str(flawed), "--max-errors", "100000"])
    assert check.exit_code == 1 and "hash-id-size-conflict" in check.output
    conflicts = set(re.findall(r"hash id (\d+) is a ", check.output))
    refused = _replay(flawed)
    assert refused.returncode == 1
    assert "replayed 0 requests" in refused.stdout
    named = re.search(r"hash_id (\d+) requested at \d+ tokens but was already materialized",
                      refused.stdout)
    assert named, refused.stdout
    assert named.group(1) in conflicts  # AIPerf refuses an id tracedsl validate had flagged
    clean = _write_run(tmp_path / "fast", "inference-day-2026")
    assert _replay(clean).returncode == 0
