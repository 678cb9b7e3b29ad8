"""Regenerate ``cases.json`` (and the small ``*.jsonl`` goldens) by running the real reference.

Usage, from the repository root, with AIPerf 0.13.0 installed in its own virtualenv:
``python tests/golden/aiperf/make_golden.py /tmp/aiperf-venv/bin/aiperf``.
Each case runs ``aiperf synthesize agentic-code`` once and records what it wrote (row count,
sha256 of dataset.jsonl, a few first rows) or, for the crash cases, that it failed and how.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parents[1] / "fixtures" / "aiperf-0.13.0"  # the copies in tests/fixtures

# name: (config: None = model defaults, "fixture:DIR" = a shared fixture's config.json,
#        otherwise a file in configs/), seed, --num-sessions, keep the whole jsonl?
CASES = {
    "model_defaults_s42_n20": (None, 42, 20, False),
    "default_s42_n20": ("fixture:default_s1_n300", 42, 20, False),
    "manifest_s42_n200": ("fixture:manifest1k_s3_n300", 42, 200, False),
    "manifest_s11_n1000": ("fixture:manifest1k_s3_n300", 11, 1000, False),
    "default_s9_n2000": ("fixture:default_s1_n300", 9, 2000, False),
    "manifest_s5_n10000": ("fixture:manifest1k_s3_n300", 5, 10000, False),
    "model_defaults_s123456789012_n60": (None, 123456789012, 60, False),
    "turns_retry_s4_n80": ("turns_retry", 4, 80, False),
    "restart_heavy_b128_s2_n150": ("restart_heavy_b128", 2, 150, False),
    "tiny_tokens_b64_s6_n40": ("tiny_tokens_b64", 6, 40, True),
    "no_reset_mu_sigma_s8_n30": ("no_reset_mu_sigma", 8, 30, False),
    "zipf_delaymax_s7_n100": ("zipf_delaymax", 7, 100, False),
    "model_defaults_s0_n1": (None, 0, 1, True),
    "cursor_overrun_s42_n3": ("cursor_overrun", 42, 3, False),
    "crash_session_blocks_s42_n50": ("crash_session_blocks", 42, 50, False),
    "crash_group_blocks_s42_n5": ("crash_group_blocks", 42, 5, False),
    "crash_groups_s42_n5": ("crash_groups", 42, 5, False),
    "crash_turns_exhausted_s42_n5": ("crash_turns_exhausted", 42, 5, False),
}


def config_path(config: str | None) -> Path | None:
    if config is None:
        return None
    if config.startswith("fixture:"):
        return FIXTURES / config.removeprefix("fixture:") / "config.json"
    return HERE / "configs" / f"{config}.json"


def run_case(aiperf: str, name: str, config: str | None, seed: int, sessions: int, keep: bool) -> dict:
    with tempfile.TemporaryDirectory() as out:
        command = [aiperf, "synthesize", "agentic-code", "--num-sessions", str(sessions),
                   "--seed", str(seed), "--output", out]
        path = config_path(config)
        if path is not None:
            command += ["--config", str(path)]
        done = subprocess.run(command, capture_output=True, text=True)
        datasets = list(Path(out).glob("*/dataset.jsonl"))
        record = {"config": config, "seed": seed, "num_sessions": sessions}
        if done.returncode != 0 and not datasets:
            lines = [line for line in done.stderr.splitlines() if "Error" in line]
            record["reference_fails"] = lines[-1].strip() if lines else done.stderr[-300:]
            return record
        data = datasets[0].read_bytes()
        rows = data.splitlines()
        record.update(rows=len(rows), sha256=hashlib.sha256(data).hexdigest(),
                      first_rows=[row.decode() for row in rows[:3]] if len(rows) < 2000 else [])
        if keep:
            (HERE / f"{name}.jsonl").write_bytes(data)
        return record


def main(aiperf: str) -> None:
    cases = {name: run_case(aiperf, name, *spec) for name, spec in CASES.items()}
    (HERE / "cases.json").write_text(json.dumps(cases, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "aiperf")
