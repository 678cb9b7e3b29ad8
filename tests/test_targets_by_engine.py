"""Each engine's quality targets follow the law that engine draws, and the reports state the spec's own latency model.

The fast engine draws a bounded lognormal's exact truncated law; the aiperf engine draws the
reference's reject-100-then-clip law, which piles the mass it gives up on onto the bound. An
output lognormal whose bounds keep ~2.5% of its mass makes the two laws' means differ by ~3%.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tracedsl.cli import cli

SPEC = """workload "clip"
turn {
  output lognormal(mean=1000, median=500, min=5k)
}
"""


def _generation_length(tmp_path: Path, engine: str) -> dict:
    spec = tmp_path / "clip.trace"
    spec.write_text(SPEC)
    out = tmp_path / engine
    result = CliRunner().invoke(cli, ["run", str(spec), "-n", "1500", "--seed", "3", "-o", str(out),
                                      "--engine", engine, "-q", "--no-reports"])
    assert result.exit_code == 0, result.output
    (run_dir,) = out.iterdir()
    report = CliRunner().invoke(cli, ["report", str(run_dir), "--no-html"])
    assert report.exit_code == 0, report.output
    quality = json.loads((run_dir / "quality.json").read_text())
    return quality["observed_vs_target"]["generation_length"]


@pytest.fixture(scope="module")
def figures(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("engines")
    return {engine: _generation_length(tmp, engine) for engine in ("fast", "aiperf")}


def test_the_two_engines_targets_differ_by_their_laws(figures):
    fast, aiperf = figures["fast"]["expected"], figures["aiperf"]["expected"]
    assert aiperf["mean"] < fast["mean"] * 0.99  # the clip's atom at 5000 pulls the mean down
    assert aiperf["quantiles"]["p05"] == 5000.0 < fast["quantiles"]["p05"]


@pytest.mark.parametrize("engine", ["fast", "aiperf"])
def test_each_engines_output_meets_its_own_target(figures, engine):
    observed, expected = figures[engine]["observed"], figures[engine]["expected"]
    # ~15k draws with sd ~5.5k: the mean's standard error is ~0.5%
    assert observed["mean"] == pytest.approx(expected["mean"], rel=0.02)
    assert observed["p05"] == pytest.approx(expected["quantiles"]["p05"], rel=0.01)


def test_comparison_states_the_specs_own_latency_model(tmp_path):
    spec = tmp_path / "slow.trace"
    spec.write_text('workload "slow"\nlatency {\n  prefill 5k/s\n  decode 25/s\n}\n')
    out = tmp_path / "runs"
    result = CliRunner().invoke(cli, ["run", str(spec), "-n", "30", "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    (run_dir,) = out.iterdir()
    text = (run_dir / "comparison.txt").read_text()
    assert "estimated @ 5,000 prefill tok/s, 25 decode tok/s" in text
    estimates = json.loads((run_dir / "quality.json").read_text())["estimates"]
    assert (estimates["prefill_tps"], estimates["decode_tps"]) == (5000, 25)
