"""A normally installed (non-editable) tracedsl finds its grammar and bundled specs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def _run(args: list, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600)


def test_wheel_installs_and_compiles_a_bundled_spec_outside_the_checkout(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is needed to copy the tracked sources")
    # Build from a copy of the tracked files only, so stray local files cannot help.
    source = tmp_path / "src"
    files = _run(["git", "ls-files", "-z"], ROOT).stdout.split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    dist = tmp_path / "dist"
    built = _run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(source)], tmp_path)
    assert built.returncode == 0, built.stdout + built.stderr
    wheel = next(dist.glob("tracedsl-*.whl"))

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    installed = _run([str(python), "-m", "pip", "install", "-q", str(wheel)], tmp_path)
    assert installed.returncode == 0, installed.stdout + installed.stderr

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": ""}
    compiled = subprocess.run(
        [str(env_dir / "bin" / "tracedsl"), "compile", "default", "-o", "spec.json"],
        cwd=elsewhere, capture_output=True, text=True, env=env, timeout=120,
    )
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    assert (elsewhere / "spec.json").stat().st_size > 0
    where = subprocess.run(
        [str(python), "-c", "import tracedsl.resources as r; print(r.grammar_path())"],
        cwd=elsewhere, capture_output=True, text=True, env=env,
    )
    assert "site-packages" in where.stdout, where.stdout + where.stderr
