"""What a new user tripped on, through the CLI: help text, check's verdict, fmt's diff, run --strict, block sizes."""

from __future__ import annotations

import re
import stat

import orjson
import pytest
from click.testing import CliRunner

from tests.conftest import ROOT
from tracedsl import pipeline
from tracedsl.cli import cli, exitcodes
from tracedsl.cli.run_commands import SET_HELP
from tracedsl.files import write_atomic


def _cli(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


# --------------------------------------------------------------------------------------------
# --help


def test_help_lists_every_command_with_its_whole_summary():
    text = _cli("--help").output
    listed = text.split("Commands:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert len(listed) == len(cli.commands)
    for line in listed:
        name, summary = line.split(None, 1)
        whole = cli.commands[name].get_short_help_str(limit=1000)
        assert summary == whole and not summary.endswith("..."), line


def test_set_help_shows_the_path_syntax_with_examples_that_work():
    help_text = " ".join(_cli("run", "--help").output.split())
    assert "--set PATH=VALUE" in help_text and "--set turn.output.mean=2k" in help_text
    examples = re.findall(r"--set (\S+=\S+?)(?=[ ,;)]|$)", SET_HELP)
    assert len(examples) == 4
    base = pipeline.plan_run(pipeline.RunOptions()).params
    # each language path's spec field, and the value its unit gives
    fields = {"turn.output.mean": ("generation_length.mean", 2000), "context": ("max_prompt_tokens", 128_000),
              "turn.delay.agentic.mean": ("inter_turn_delay.agentic_delay.mean", 3000),
              "cache.layer2.mean": ("cache.layer2.mean", 20000)}
    for example in examples:
        path, _ = example.split("=")
        params = pipeline.plan_run(pipeline.RunOptions(overrides=(example,))).params.generation_params()
        node, before = params, base.generation_params()
        field, value = fields[path]
        for part in field.split("."):
            node, before = node[part], before[part]
        assert node == value and node != before


def test_run_help_says_spec_defaults_to_default():
    help_text = " ".join(_cli("run", "--help").output.split())
    assert "[SPEC]" in help_text and "it defaults to `default`" in help_text


# --------------------------------------------------------------------------------------------
# check prints ok on stdout


def test_check_prints_ok_on_stdout_for_each_good_spec(tmp_path):
    good = tmp_path / "good.trace"
    good.write_text('workload "good"\ncontext 100k\n')
    bad = tmp_path / "bad.trace"
    bad.write_text("contxt 1\n")
    result = _cli("check", good, bad, good)
    assert result.exit_code == exitcodes.FAILED
    assert result.stdout == f"{good}: ok\n{good}: ok\n"
    assert "bad.trace:1:1: error" in result.stderr and ": ok" not in result.stderr
    alone = _cli("check", good)
    assert (alone.exit_code, alone.stdout, alone.stderr) == (0, f"{good}: ok\n", "")


# --------------------------------------------------------------------------------------------
# fmt --check shows a diff; fmt -w rewrites atomically


def test_fmt_check_prints_a_unified_diff_and_changes_nothing(tmp_path):
    messy = tmp_path / "messy.trace"
    messy.write_text("reset 1%   # why\ncontext   100k\n")
    result = _cli("fmt", "--check", messy)
    assert result.exit_code == exitcodes.FAILED
    assert result.stdout.startswith(f"--- {messy}\n+++ {messy} (formatted)\n@@ ")
    diff_lines = result.stdout.splitlines()
    assert "-reset 1%   # why" in diff_lines and "+context 100k" in diff_lines
    assert "+reset 1%  # why" in diff_lines
    assert f"{messy}: not canonically formatted" in result.stderr
    assert messy.read_text() == "reset 1%   # why\ncontext   100k\n"
    canonical = _cli("fmt", "--check", ROOT / "specs" / "default.trace")
    assert (canonical.exit_code, canonical.stdout) == (0, "")


def test_fmt_write_keeps_the_files_mode_and_leaves_no_temporary(tmp_path):
    messy = tmp_path / "messy.trace"
    messy.write_text("context   100k\n")
    messy.chmod(0o640)
    assert _cli("fmt", "-w", messy).exit_code == 0
    assert messy.read_text() == "context 100k\n"
    assert stat.S_IMODE(messy.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["messy.trace"]


def test_atomic_write_leaves_the_old_file_when_it_fails(tmp_path, monkeypatch):
    target = tmp_path / "spec.json"
    target.write_text("old")

    def broken_replace(source, destination):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("tracedsl.files.os.replace", broken_replace)
    with pytest.raises(OSError):
        write_atomic(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["spec.json"]


def test_compile_to_an_unwritable_place_is_a_located_io_error(tmp_path):
    (tmp_path / "afile").write_text("x")
    result = _cli("compile", "default", "-o", tmp_path / "afile" / "spec.json")
    assert result.exit_code == exitcodes.IO
    assert f"{tmp_path / 'afile' / 'spec.json'}: error[E403]: cannot write" in result.stderr


# --------------------------------------------------------------------------------------------
# run --engine aiperf: conflicts are said, and --strict refuses them


def test_run_says_written_with_conflicts_not_validated_and_strict_fails(tmp_path):
    args = ["run", "inference-day-2026", "--engine", "aiperf", "-n", "120", "--seed", "3",
            "--no-reports"]
    lenient = _cli(*args, "-o", tmp_path / "a")
    assert lenient.exit_code == 0, lenient.output
    conflicts = int(re.search(r"hash-id size conflicts: (\d+)", lenient.stdout).group(1))
    assert conflicts > 0
    assert f"  written with {conflicts} hash-id conflicts: " in lenient.stdout
    assert "validated" not in lenient.stdout
    strict = _cli(*args, "--strict", "-o", tmp_path / "b")
    assert strict.exit_code == exitcodes.FAILED
    assert f"error[E503]: the dataset holds {conflicts} hash-id size conflicts" in strict.stderr
    (kept,) = (tmp_path / "b").iterdir()  # the run is kept: it is the reference's file, flaws and all
    assert (kept / "dataset.jsonl").read_bytes() == \
        (next((tmp_path / "a").iterdir()) / "dataset.jsonl").read_bytes()


def test_strict_passes_a_run_without_conflicts(tmp_path):
    result = _cli("run", "default", "--engine", "aiperf", "-n", "20", "--strict", "--no-reports",
                  "-o", tmp_path)
    assert result.exit_code == 0, result.output
    assert "  validated: " in result.stdout


# --------------------------------------------------------------------------------------------
# run a run directory again


def test_run_of_a_run_directory_reruns_it(tmp_path):
    first = _cli("run", "default", "-n", "7", "--seed", "11", "-q", "--no-reports", "-o", tmp_path / "a")
    assert first.exit_code == 0
    (run_dir,) = (tmp_path / "a").iterdir()
    again = _cli("run", run_dir, "-q", "--no-reports", "-o", tmp_path / "b")
    assert again.exit_code == 0, again.output
    (rerun,) = (tmp_path / "b").iterdir()
    assert (rerun / "dataset.jsonl").read_bytes() == (run_dir / "dataset.jsonl").read_bytes()
    empty = tmp_path / "empty"
    empty.mkdir()
    refused = _cli("run", empty, "-o", tmp_path / "c")
    assert refused.exit_code == exitcodes.IO and "not a run directory" in refused.stderr


# --------------------------------------------------------------------------------------------
# block size: report and simulate settle it by one rule; all three commands take --block-size

# One hash id per row and inputs of 1000 and 900 tokens: every block size from 1000 fits.
FOREIGN = (
    '{"session_id":"a","input_length":1000,"output_length":5,"hash_ids":[1],"timestamp":0.0}\n'
    '{"session_id":"b","input_length":900,"output_length":5,"hash_ids":[2],"timestamp":1.0}\n'
)


def test_simulate_infers_the_block_size_of_a_trace_without_a_manifest(tmp_path):
    trace = tmp_path / "foreign.jsonl"
    trace.write_text(FOREIGN)
    simulated = _cli("simulate", trace, "--json")
    assert simulated.exit_code == 0, simulated.output
    inferred = orjson.loads(simulated.stdout)["config"]["block_size"]
    assert inferred != 512 and inferred >= 1000  # not a fixed default: what the rows allow
    reported = _cli("report", trace, "-o", tmp_path / "r", "--no-html")
    assert reported.exit_code == 0, reported.output
    assert f"block size {inferred} from the rows" in reported.stdout


@pytest.mark.parametrize("command", ["validate", "report", "simulate"])
def test_every_trace_command_takes_block_size(command, tmp_path):
    trace = tmp_path / "foreign.jsonl"
    trace.write_text(FOREIGN)
    extra = ["-o", tmp_path / "r", "--no-html"] if command == "report" else []
    result = _cli(command, trace, "--block-size", "2048", *extra)
    assert result.exit_code == 0, result.output
    assert "block size 2048" in result.stdout
    refused = _cli(command, trace, "--block-size", "0", *extra)
    assert refused.exit_code == exitcodes.USAGE and "--block-size" in refused.output


def test_simulate_of_a_run_directory_reads_the_manifests_block_size(tmp_path):
    run = _cli("run", "default", "-n", "5", "--set", "block_size=64", "-q", "--no-reports",
               "-o", tmp_path)
    assert run.exit_code == 0, run.output
    (run_dir,) = tmp_path.iterdir()
    for target in (run_dir, run_dir / "dataset.jsonl"):
        simulated = _cli("simulate", target, "--json")
        assert orjson.loads(simulated.stdout)["config"]["block_size"] == 64


# --------------------------------------------------------------------------------------------
# every command prints its diagnostics the same way: with the source excerpt


@pytest.mark.parametrize("command", [["run", "-n", "2"], ["compile"], ["check"], ["decompile"]])
def test_every_spec_command_shows_the_caret_excerpt(command, tmp_path):
    spec = tmp_path / "w.trace"
    spec.write_text('workload "x"\nreset 150%\n')
    name, *options = command
    out = ["-o", tmp_path / "out"] if name == "run" else []
    result = _cli(name, spec, *options, *out)
    assert result.exit_code in (exitcodes.INPUT, exitcodes.FAILED), result.output
    assert f"{spec}:2:7: error[" in result.stderr
    assert "   2 | reset 150%\n     |       ^^^^" in result.stderr


def test_a_run_that_fails_its_own_checks_says_why_and_publishes_nothing(tmp_path, monkeypatch):
    from tracedsl.output.chunkcheck import ChunkChecker

    finish = ChunkChecker.finish

    def broken(self):
        report = finish(self)
        report.add("block-count", "row 1 has too few hash ids", 1, None, "hash_ids")
        return report

    monkeypatch.setattr(ChunkChecker, "finish", broken)
    result = _cli("run", "default", "-n", "3", "--no-reports", "-o", tmp_path)
    assert result.exit_code == exitcodes.FAILED
    # The run's hidden directory is gone: the finding names the dataset, not its path there.
    assert "the written dataset:1:1: error[block-count]: row 1 has too few hash ids" in result.stderr
    assert ".tmp-" not in result.stderr
    assert "default: error[E502]: the written dataset failed validation; no run directory was " \
           "published" in result.stderr
    assert list(tmp_path.iterdir()) == []
