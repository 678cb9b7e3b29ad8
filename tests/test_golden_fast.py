"""The fast engine's bytes for every bundled spec and example are pinned (tests/golden/fast)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden" / "fast"
_spec = importlib.util.spec_from_file_location("make_golden", GOLDEN / "make_golden.py")
assert _spec is not None and _spec.loader is not None
make_golden = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_golden)

DOCUMENT = json.loads((GOLDEN / "digests.json").read_text())
PINNED: dict[str, str] = DOCUMENT["dataset_sha256"]
ON_PURPOSE = (
    "if this change of the fast engine's bytes is on purpose, run "
    "`PYTHONPATH=$PWD python tests/golden/fast/make_golden.py` and say why in the commit "
    "(tests/golden/fast/README.md)"
)


def test_the_digests_were_made_at_the_scripts_seed_and_size():
    assert (DOCUMENT["seed"], DOCUMENT["sessions"]) == (make_golden.SEED, make_golden.SESSIONS)


def test_every_bundled_spec_and_example_has_a_digest():
    files = {path.relative_to(make_golden.ROOT).as_posix() for path in make_golden.spec_files()}
    assert files == set(PINNED), f"specs and digests differ: {sorted(files ^ set(PINNED))}; {ON_PURPOSE}"
    assert any(name.startswith("specs/") for name in files)
    assert any(name.startswith("examples/") for name in files)


@pytest.mark.parametrize("name", sorted(PINNED))
def test_fast_engine_bytes_are_unchanged(name):
    actual = make_golden.digest(make_golden.ROOT / name)
    assert actual == PINNED[name], f"{name}: the fast engine's dataset.jsonl changed; {ON_PURPOSE}"


def test_the_cli_writes_the_pinned_bytes(tmp_path):
    # The digests are made in process; the file `tracedsl run` writes must be the same bytes.
    name = "specs/default.trace"
    command = [sys.executable, "-m", "tracedsl", "run", str(make_golden.ROOT / name),
               "-n", str(make_golden.SESSIONS), "--seed", str(make_golden.SEED),
               "-o", str(tmp_path), "--quiet", "--no-reports"]
    environment = {**os.environ, "PYTHONPATH": str(make_golden.ROOT)}
    result = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
    assert result.returncode == 0, result.stderr
    (dataset,) = tmp_path.glob("*/dataset.jsonl")
    assert hashlib.sha256(dataset.read_bytes()).hexdigest() == PINNED[name]
