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
    monkeypatch.setattr("tracedsl.pipeline.runs._open_reports", lambda plan: None)


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


def test_the_bundled_inference_day_spec_names_its_runs_after_itself(tmp_path):
    result = _run(["inference-day-2026", "-n", "5", "-o", str(tmp_path), "-q", "--no-reports"])
    assert result.exit_code == 0, result.output
    run_dir = _only_dir(tmp_path)
    assert run_dir.name.startswith("inference-day-2026_5s_seed42_"), run_dir.name
    manifest = orjson.loads((run_dir / "manifest.json").read_bytes())
    assert manifest["config_name"] == "inference-day-2026"
    # Its generation_params are still the reference's bundled manifest's (test_language checks
    # the compiled spec; here: the run records the same).
    reference = orjson.loads((fixture_dir("manifest1k_s3_n300") / "config.json").read_bytes())
    assert manifest["generation_params"] == reference["generation_params"]


def test_manifest_records_the_spec_file_name_not_its_path(tmp_path):
    spec = tmp_path / "specs" / "mine.trace"
    spec.parent.mkdir()
    spec.write_text('workload "mine"\ncontext 100k\n')
    for source, name in ((str(spec), "mine.trace"), ("default", "default.trace")):
        out = tmp_path / name
        assert _run([source, "-n", "3", "-o", str(out), "-q", "--no-reports"]).exit_code == 0
        manifest = orjson.loads((_only_dir(out) / "manifest.json").read_bytes())
        assert manifest["spec_source"] == name
        assert str(tmp_path) not in (_only_dir(out) / "manifest.json").read_text()
    manifest = orjson.loads((_only_dir(tmp_path / "mine.trace") / "manifest.json").read_bytes())
    assert manifest["spec_sha256"] == hashlib.sha256(spec.read_bytes()).hexdigest()


def test_summary_words_hash_id_conflicts_by_whether_there_are_any(tmp_path):
    none = _run(["default", "--engine", "aiperf", "-n", "20", "-o", str(tmp_path / "a")])
    assert none.exit_code == 0, none.output
    line = next(x for x in none.output.splitlines() if "hash-id size conflicts" in x)
    assert line.strip() == ("hash-id size conflicts: 0 (every hash id has one block size; "
                            "AIPerf replay accepts that)")
    some = _run(["inference-day-2026", "--engine", "aiperf", "-n", "120", "--seed", "3",
                 "-o", str(tmp_path / "b")])
    assert some.exit_code == 0, some.output
    line = next(x for x in some.output.splitlines() if "hash-id size conflicts" in x)
    assert re.search(r"conflicts: [1-9]\d* \(the reference's flaw, reproduced; AIPerf replay "
                     r"refuses such a file", line), line


# default.trace's two constant lognormals (mean == median) warn W101: intended in the bundled
# spec, so `run default` stays quiet; in a user's file `run` shows them once each, on one line.
CONSTANT = re.compile(r"warning\[W101\]")


def test_run_does_not_show_a_bundled_specs_warnings_but_check_does(tmp_path):
    result = CliRunner().invoke(cli, ["run", "default", "-n", "3", "--no-reports", "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert not CONSTANT.search(result.stderr), result.stderr
    check = CliRunner().invoke(cli, ["check", "default"])
    assert len(CONSTANT.findall(check.stderr)) == 2
    assert "   14 |   new_tokens lognormal(mean=6k, median=6k" in check.stderr  # the excerpt


def test_run_shows_a_user_files_warnings_once_each_on_one_line(tmp_path):
    spec = tmp_path / "mine.trace"
    spec.write_text((ROOT / "specs" / "default.trace").read_text())
    result = _run([str(spec), "-n", "3", "-o", str(tmp_path / "out"), "--no-reports"])
    assert result.exit_code == 0, result.output
    warnings = [x for x in result.stderr.splitlines() if CONSTANT.search(x)]
    assert [w.split(": warning")[0] for w in warnings] == [f"{spec}:14:29", f"{spec}:15:25"]
    assert " | " not in result.stderr and "= help" not in result.stderr
    check = CliRunner().invoke(cli, ["check", str(spec)])
    assert len(CONSTANT.findall(check.stderr)) == 2 and "   14 | " in check.stderr
    compile_ = CliRunner().invoke(cli, ["compile", str(spec)])
    assert compile_.exit_code == 0 and "   15 | " in compile_.stderr


def test_each_warning_is_shown_once_even_when_repeated(tmp_path, monkeypatch):
    from tracedsl import pipeline

    plan_run = pipeline.plan_run

    def doubled(options):
        plan = plan_run(options)
        plan.warnings = plan.warnings * 2
        return plan

    monkeypatch.setattr(pipeline, "plan_run", doubled)
    spec = tmp_path / "mine.trace"
    spec.write_text((ROOT / "specs" / "default.trace").read_text())
    result = _run([str(spec), "-n", "3", "-o", str(tmp_path / "out"), "--no-reports"])
    assert len(CONSTANT.findall(result.stderr)) == 2, result.stderr


def test_an_override_that_makes_a_lognormal_constant_warns_even_on_a_bundled_spec(tmp_path):
    result = _run(["inference-day-2026", "-n", "3", "--set", "cache.layer2.median=15000",
                   "-o", str(tmp_path), "--no-reports"])
    assert result.exit_code == 0, result.output
    (line,) = [x for x in result.stderr.splitlines() if "warning" in x]
    assert line.startswith("--set: cache.layer2.mean: warning[W101]: cache.layer2: mean == median")


@pytest.mark.parametrize("changes, option", [
    ({"seed": 2**64}, "--seed"), ({"seed": -1}, "--seed"),
    ({"num_sessions": 10**9 + 1}, "--num-sessions"), ({"num_sessions": 0}, "--num-sessions"),
    ({"max_isl": 10**20}, "--max-isl"), ({"max_osl": 10**400}, "--max-osl"),
])
def test_plan_run_checks_run_numbers_for_callers_other_than_the_cli(changes, option):
    from tracedsl import pipeline
    from tracedsl.diagnostics import DiagnosticError

    with pytest.raises(DiagnosticError) as error:
        pipeline.plan_run(pipeline.RunOptions(**changes))
    assert [d.file for d in error.value.diagnostics] == [option]
