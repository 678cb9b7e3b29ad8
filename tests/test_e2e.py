"""End to end through the CLI, as a user runs it: same inputs give the same bytes, manifests and
decompiled manifests reproduce their runs, worker counts do not matter, every written dataset
validates, and `report` reads the reference's fixtures and foreign Mooncake traces."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import MOONCAKE, ROOT, fixture_dir
from tracedsl.cli import cli
from tracedsl.engine import executors
from tracedsl.engine.fast import FastEngine

EXAMPLES = sorted((ROOT / "examples").glob("*.trace"))
BUNDLED = ["default", "aiperf-defaults", "inference-day-2026"]


def _cli(*args: str) -> str:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def _run(spec, parent: Path, *options: str) -> Path:
    """`tracedsl run` into an empty `parent`; returns the one run directory it published."""
    _cli("run", spec, "-o", parent, "-q", *options)
    (run_dir,) = parent.iterdir()
    return run_dir


def _dataset(run_dir: Path) -> bytes:
    return (run_dir / "dataset.jsonl").read_bytes()


def test_same_spec_seed_and_count_give_the_same_bytes_in_every_file(tmp_path):
    # inference-day-2026 has groups and restarts, so continuation placement is covered too.
    first = _run("inference-day-2026", tmp_path / "a", "-n", "60", "--seed", "9")
    second = _run("inference-day-2026", tmp_path / "b", "-n", "60", "--seed", "9")
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    for name in ("dataset.jsonl", "quality.json", "comparison.txt", "cache_structure.json",
                 "report.html", "cache_explorer.html", "simulation.html"):
        assert name in names
    # manifest.json carries no timestamp (the run directory's name does), so it is compared whole.
    manifest = json.loads((first / "manifest.json").read_text())
    assert not {"created", "created_at", "timestamp", "date"} & set(manifest)
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    other_seed = _run("inference-day-2026", tmp_path / "c", "-n", "60", "--seed", "10", "--no-reports")
    assert _dataset(other_seed) != _dataset(first)


@pytest.mark.parametrize("engine", ["fast", "aiperf"])
def test_run_of_a_written_manifest_reproduces_its_dataset(engine, tmp_path):
    original = _run("inference-day-2026", tmp_path / "a", "-n", "50", "--seed", "4", "--engine",
                    engine, "--no-reports")
    again = _run(original / "manifest.json", tmp_path / "b", "--no-reports")
    assert _dataset(again) == _dataset(original)
    manifest = json.loads((again / "manifest.json").read_text())
    assert (manifest["seed"], manifest["requested_sessions"], manifest["engine"]) == (4, 50, engine)


@pytest.mark.parametrize("fixture", ["default_s1_n300", "manifest1k_s3_n300", "turns_s5_n200"])
def test_decompiled_manifest_runs_like_the_manifest(fixture, tmp_path):
    manifest_path = fixture_dir(fixture) / "manifest.json"
    reference = json.loads(manifest_path.read_text())
    seed, count = str(reference["seed"]), "120"
    trace = tmp_path / "decompiled.trace"
    _cli("decompile", manifest_path, "-o", trace)
    from_trace = _run(trace, tmp_path / "t", "--engine", "aiperf", "--seed", seed, "-n", count,
                      "--no-reports")
    from_manifest = _run(manifest_path, tmp_path / "m", "--engine", "aiperf", "-n", count,
                         "--no-reports")
    assert _dataset(from_trace) == _dataset(from_manifest)
    params = [json.loads((d / "manifest.json").read_text())["generation_params"]
              for d in (from_trace, from_manifest)]
    assert params[0] == params[1] == reference["generation_params"]


def test_decompiled_fixture_manifest_reproduces_the_reference_dataset(tmp_path):
    # turns_s5_n200 has no restarts, so its num_sessions is also its primary count.
    folder = fixture_dir("turns_s5_n200")
    trace = tmp_path / "turns.trace"
    _cli("decompile", folder / "manifest.json", "-o", trace)
    run_dir = _run(trace, tmp_path / "r", "--engine", "aiperf", "--seed", "5", "-n", "200",
                   "--no-reports")
    assert _dataset(run_dir) == (folder / "dataset.jsonl").read_bytes()


@pytest.fixture
def small_chunks_in_a_pool(monkeypatch):
    """Force the process pool and several chunks on a run small enough for a unit test.

    Below IN_PROCESS_BELOW_SESSIONS a run stays in-process whatever --workers says, and a
    chunk holds 4,096 sessions: without this, --workers 2 at 600 sessions would prove nothing.
    """
    monkeypatch.setattr(executors, "IN_PROCESS_BELOW_SESSIONS", 0)
    monkeypatch.setattr(FastEngine.__init__, "__defaults__", (None, 128))
    chosen = []
    make = executors.make_executor

    def spy(**options):
        executor = make(**options)
        chosen.append(type(executor).__name__)
        return executor

    monkeypatch.setattr(executors, "make_executor", spy)
    return chosen


def test_one_or_two_workers_write_identical_bytes(small_chunks_in_a_pool, tmp_path):
    one = _run("inference-day-2026", tmp_path / "w1", "-n", "600", "--seed", "2", "--workers", "1",
               "--no-reports")
    two = _run("inference-day-2026", tmp_path / "w2", "-n", "600", "--seed", "2", "--workers", "2",
               "--no-reports")
    assert small_chunks_in_a_pool == ["InProcess", "ProcessPool"]
    assert _dataset(one) == _dataset(two)
    assert (one / "manifest.json").read_bytes() == (two / "manifest.json").read_bytes()


SPECS = [*BUNDLED, *(str(p) for p in EXAMPLES)]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: Path(s).stem)
def test_every_dataset_run_writes_validates_strictly(spec, tmp_path):
    result = CliRunner().invoke(cli, ["run", spec, "-o", str(tmp_path), "-q", "-n", "40", "--seed", "3",
                                      "--no-reports"])
    assert result.exit_code == 0, result.output
    (run_dir,) = tmp_path.iterdir()
    output = _cli("validate", run_dir / "dataset.jsonl", "--strict",
                  "--block-size", json.loads((run_dir / "manifest.json").read_text())
                  ["generation_params"]["block_size"])
    assert output.rstrip().endswith("valid")


def test_small_block_size_override_validates_and_says_its_size(tmp_path):
    run_dir = _run("default", tmp_path, "-n", "40", "--set", "block_size=64", "--no-reports")
    output = _cli("validate", run_dir / "dataset.jsonl", "--strict")
    assert "block size 64" in output
    assert json.loads((run_dir / "manifest.json").read_text())["generation_params"]["block_size"] == 64


@pytest.mark.parametrize("spec", ["inference-day-2026", "default"])
def test_aiperf_engine_datasets_fail_validation_exactly_when_it_reports_conflicts(spec, tmp_path):
    result = CliRunner().invoke(cli, ["run", spec, "--engine", "aiperf", "-n", "120", "--seed", "3",
                                      "-o", str(tmp_path), "--no-reports"])
    assert result.exit_code == 0, result.output
    (run_dir,) = tmp_path.iterdir()
    check = CliRunner().invoke(cli, ["validate", str(run_dir / "dataset.jsonl")])
    said = re.search(r"hash-id size conflicts: (\d+)", result.output)
    assert said, result.output
    if int(said.group(1)):  # restarts: the reference's flaw B2, reproduced
        assert check.exit_code == 1
        assert f"hash-id-size-conflict {said.group(1)}" in check.output
    else:  # no restarts: nothing to refuse, and the summary does not say otherwise
        assert check.exit_code == 0, check.output
        assert "refuses" not in result.output


@pytest.mark.parametrize("fixture", ["default_s1_n300", "manifest1k_s3_n300", "turns_s5_n200"])
def test_report_on_the_reference_fixtures(fixture, tmp_path):
    folder = fixture_dir(fixture)
    _cli("report", folder, "-o", tmp_path)
    quality = json.loads((tmp_path / "quality.json").read_text())
    assert quality  # the reference's keys are checked in test_reports.py; here: it reads
    for name in ("comparison.txt", "report.html", "cache_explorer.html", "simulation.html"):
        assert (tmp_path / name).stat().st_size > 0, name


@pytest.mark.parametrize("trace", ["conversation_trace.jsonl", "synthetic_trace.jsonl"])
def test_report_and_validate_on_foreign_mooncake_traces(trace, tmp_path):
    path = MOONCAKE / trace
    if not path.is_file():
        pytest.skip(f"foreign traces not found at {MOONCAKE}")
    _cli("report", path, "-o", tmp_path, "--no-html")
    assert json.loads((tmp_path / "quality.json").read_text())
    assert (tmp_path / "comparison.txt").read_text().strip()
    check = CliRunner().invoke(cli, ["validate", str(path)])
    assert check.exit_code == 0, check.output
