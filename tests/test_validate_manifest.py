"""validate takes a run's block size from its manifest, as report and simulate do."""

from __future__ import annotations

import json

from click.testing import CliRunner

from tracedsl import pipeline
from tracedsl.cli import cli


def _run(tmp_path, block: int):
    out = tmp_path / "runs"
    result = CliRunner().invoke(cli, ["run", "default", "-n", "20", "--seed", "1", "-o", str(out),
                                      "-q", "--no-reports", "--set", f"block_size={block}"])
    assert result.exit_code == 0, result.output
    (run_dir,) = out.iterdir()
    return run_dir


def test_a_run_directory_validates_at_its_manifests_block_size(tmp_path):
    run_dir = _run(tmp_path, 64)
    report = pipeline.validate(run_dir)
    assert report.block_size == 64 and "the manifest" in report.block_size_note
    assert report.passed(strict=True)


def test_the_option_overrides_the_manifest_and_a_wrong_size_is_found(tmp_path):
    run_dir = _run(tmp_path, 64)
    result = CliRunner().invoke(cli, ["validate", str(run_dir / "dataset.jsonl"), "--block-size", "128",
                                      "--json"])
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["block_size"] == 128 and data["error_counts"].get("block-count", 0) > 0


def test_without_a_manifest_the_rows_decide(tmp_path):
    run_dir = _run(tmp_path, 64)
    alone = tmp_path / "alone.jsonl"
    alone.write_bytes((run_dir / "dataset.jsonl").read_bytes())
    report = pipeline.validate(alone)
    assert "manifest" not in report.block_size_note and report.block_size == 64
