"""`tracedsl run`: run directories, manifests that reproduce, the reference's bytes, and bad arguments."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys

import orjson
import pytest
from click.testing import CliRunner

from tests.conftest import ROOT, fixture_dir
from tracedsl.cli import cli
from tracedsl.output.validate import validate_file

NAME = re.compile(r"^default_(\d+)s_seed(\d+)_\d{8}-\d{6}(-\d+)?$")


@pytest.fixture(autouse=True)
def _without_reports(monkeypatch):
    """These tests are about the dataset, manifest and run directory; reports have their own tests."""
    monkeypatch.setattr("tracedsl.pipeline._open_reports", lambda plan: None)


def _run(args):
    return CliRunner().invoke(cli, ["run", *args])


def _only_dir(parent):
    (found,) = [p for p in parent.iterdir()]
    return found


def test_run_writes_a_valid_published_run(tmp_path):
    result = _run(["-n", "40", "--seed", "7", "-o", str(tmp_path), "--no-reports"])
    assert result.exit_code == 0, result.output
    run_dir = _only_dir(tmp_path)
    assert NAME.match(run_dir.name) and run_dir.name.startswith("default_40s_seed7_")
    dataset = run_dir / "dataset.jsonl"
    manifest = orjson.loads((run_dir / "manifest.json").read_bytes())
    assert list(manifest)[:4] == ["seed", "num_sessions", "config_name", "generation_params"]
    assert manifest["seed"] == 7 and manifest["requested_sessions"] == 40
    assert manifest["num_sessions"] == manifest["written_sessions"] >= 40
    assert manifest["rows"] == len(dataset.read_bytes().splitlines())
    assert manifest["dataset_sha256"] == hashlib.sha256(dataset.read_bytes()).hexdigest()
    assert manifest["engine"] == "fast" and manifest["spec_sha256"]
    assert not (run_dir / "manifest.json").read_bytes().endswith(b"\n")  # as the reference
    assert validate_file(dataset).passed(strict=True)
    assert "sessions by end reason" in result.output and "dataset.jsonl" in result.output


def test_manifest_reproduces_the_dataset_and_dirs_are_never_reused(tmp_path):
    first = tmp_path / "a"
    assert _run(["-n", "30", "--seed", "3", "-o", str(first), "-q", "--no-reports"]).exit_code == 0
    run_dir = _only_dir(first)
    again = _run([str(run_dir / "manifest.json"), "-o", str(first), "-q", "--no-reports"])
    assert again.exit_code == 0, again.output
    dirs = sorted(first.iterdir())
    assert len(dirs) == 2  # the same second gives a "-2" suffix, never the same directory
    data = [(d / "dataset.jsonl").read_bytes() for d in dirs]
    assert data[0] == data[1]
    flags_win = _run([str(run_dir / "manifest.json"), "--seed", "4", "-o", str(tmp_path / "b"), "-q", "--no-reports"])
    assert flags_win.exit_code == 0
    assert (_only_dir(tmp_path / "b") / "dataset.jsonl").read_bytes() != data[0]


def test_aiperf_engine_reproduces_the_reference_fixture(tmp_path):
    fixture = fixture_dir("manifest1k_s3_n300")
    result = _run([str(fixture / "config.json"), "--engine", "aiperf", "-n", "300", "--seed", "3",
                   "-o", str(tmp_path), "--no-reports"])
    assert result.exit_code == 0, result.output
    dataset = _only_dir(tmp_path) / "dataset.jsonl"
    assert dataset.read_bytes() == (fixture / "dataset.jsonl").read_bytes()
    assert "hash-id size conflicts: 161" in result.output  # counted by the validator, shown not hidden


def test_reference_manifest_count_is_explained(tmp_path):
    fixture = fixture_dir("turns_s5_n200")
    result = CliRunner().invoke(cli, ["run", str(fixture / "manifest.json"), "-o", str(tmp_path),
                                      "--engine", "aiperf", "--no-reports"])
    assert result.exit_code == 0, result.output
    assert "counts restart continuations" in result.output
    assert (_only_dir(tmp_path) / "dataset.jsonl").read_bytes() == (fixture / "dataset.jsonl").read_bytes()


@pytest.mark.parametrize(
    "args, code, words",
    [
        (["-n", "-5"], 2, "--num-sessions"),
        (["-n", "0"], 2, "--num-sessions"),
        (["--seed", "-1"], 2, "--seed"),
        (["--max-isl", "0"], 2, "--max-isl"),
        (["--engine", "slow"], 2, "--engine"),
        (["--set", "cache.nope=3"], 3, "--set"),
        (["--set", "block_size=abc"], 3, "block_size"),
        (["--set", "nonsense"], 3, "PATH=VALUE"),
        (["--max-isl", "1000"], 3, "--max-isl"),
        (["no-such-spec.trace"], 4, "no-such-spec"),
        (["--engine", "aiperf", "--set", "cache.layer1_5_groups.num_groups=2000"], 5,
         "cache.layer1_5_groups.num_groups"),
    ],
)
def test_bad_arguments_are_located_and_leave_nothing(tmp_path, args, code, words):
    out = tmp_path / "out"
    result = _run([*args, "-n", "5", "-o", str(out)] if "-n" not in args else [*args, "-o", str(out)])
    assert result.exit_code == code, result.output
    assert words in result.output
    assert "Traceback" not in result.output
    assert not out.exists() or not any(out.iterdir())


def test_module_entry_point_never_shows_a_traceback(tmp_path):
    bad = subprocess.run(
        [sys.executable, "-m", "tracedsl", "run", "--seed", "-1", "-o", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert bad.returncode == 2 and "--seed" in bad.stderr and "Traceback" not in bad.stderr
    assert not any(tmp_path.iterdir())
    fixture = fixture_dir("default_s1_n300") / "dataset.jsonl"
    good = subprocess.run(
        [sys.executable, "-m", "tracedsl", "validate", str(fixture)], cwd=ROOT, capture_output=True,
        text=True, timeout=60,
    )
    assert good.returncode == 0 and good.stdout.rstrip().endswith("valid")
    missing = subprocess.run(
        [sys.executable, "-m", "tracedsl", "validate", str(tmp_path)], cwd=ROOT, capture_output=True,
        text=True, timeout=60,
    )
    assert missing.returncode == 4 and "Traceback" not in missing.stderr
