"""The benchmark still runs end to end (at a tiny size), so it does not rot between releases."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT


def test_benchmark_runs_every_case_at_a_tiny_size(tmp_path):
    completed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "run.py"),
            "--sizes",
            "200",
            "--workers-sizes",
            "200",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != "AIPERF_VENV"},  # no reference here
    )
    assert completed.returncode == 0, completed.stderr
    report = json.loads((tmp_path / "latest.json").read_text())
    cases = {(result["case"], result["engine"]): result for result in report["results"]}
    failed = {key: result.get("error") for key, result in cases.items() if not result["ok"]}
    assert not failed, failed
    expected = {
        ("tracedsl run (CLI, end to end)", "fast"),
        ("tracedsl run (CLI, end to end)", "aiperf"),
        ("sampling only", "fast"),
        ("sampling + dataset.jsonl", "aiperf"),
        ("write-only floor (orjson)", "-"),
        ("tracedsl run --workers 1", "fast"),
        ("tracedsl run --workers 2", "fast"),
    }
    assert expected <= set(cases)
    # Every case wrote the same trace: the same number of rows for the same spec and seed.
    fast_rows = {result["rows"] for key, result in cases.items() if key[1] in ("fast", "-")}
    assert len(fast_rows) == 1 and fast_rows.pop() > 200
    assert "ratios (same run):" in completed.stdout
    assert "--workers 2 vs 1 (end to end)" in completed.stdout
    for workers in ("1", "2"):  # the tracedsl process's own CPU, apart from its workers
        main_cpu = cases[(f"tracedsl run --workers {workers}", "fast")]["main_cpu_s"]
        assert 0 < main_cpu <= cases[(f"tracedsl run --workers {workers}", "fast")]["cpu_s"]
    assert report["machine"]["nproc"] >= 1
