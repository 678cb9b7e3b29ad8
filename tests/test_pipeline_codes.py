"""The pipeline's diagnostics carry the registry's codes and say where: --set warnings, decompile, a lost executor."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from tests.conftest import ROOT
from tracedsl import codes
from tracedsl.cli import cli, exitcodes
from tracedsl.pipeline import failures


def _cli(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_the_pipelines_codes_are_the_registrys():
    for name in failures.__all__:
        if name.startswith("E_"):
            code = getattr(failures, name)
            assert codes.REGISTRY[code].name == name, name


def test_no_code_is_defined_outside_the_registry():
    literal = re.compile(r"""["'][EW]\d{3}["']""")
    defined = [f"{path.relative_to(ROOT)}:{number}"
               for path in sorted((ROOT / "tracedsl").rglob("*.py")) if path.name != "codes.py"
               for number, line in enumerate(path.read_text().splitlines(), 1) if literal.search(line)]
    assert defined == []


@pytest.mark.parametrize("override, where, code", [
    # bounds that keep almost none of the mass
    ("generation_length.max=1", "generation_length.max", "W102"),
    ("inter_turn_delay.max=0", "inter_turn_delay.max", "W103"),  # a delay max of 0
    # the spec's mean is 2k: an equal median makes the lognormal a constant
    ("generation_length.median=2000", "generation_length.mean", "W101"),
])
def test_a_warning_that_set_brings_in_keeps_its_own_code(tmp_path, override, where, code):
    spec = tmp_path / "spec.trace"
    spec.write_text("turn { output lognormal(mean=2k, median=1k) }\n")
    result = _cli("run", spec, "-n", "2", "--no-reports", "--set", override, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    (line,) = [line for line in result.stderr.splitlines() if "warning[" in line]
    assert line.startswith(f"--set: {where}: warning[{code}]: "), line


def test_decompile_says_which_file_and_field_cannot_be_printed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "spec.toml").write_text(
        'format_version = 1\nworkload = "w"\n\n[generation_params.cache.layer1_5_groups]\n'
        "zipf_alpha = inf\n"
    )
    result = _cli("decompile", "spec.toml")
    assert result.exit_code == exitcodes.INPUT
    assert result.stderr == ("spec.toml: cache.layer1_5_groups.zipf_alpha: error[E108]: "
                             "inf cannot be written in a .trace file\n")


def test_an_unreachable_scheduler_is_an_io_error_of_the_run(tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr("tracedsl.engine.executors.SCHEDULER_TIMEOUT_S", 1.0)
    result = _cli("run", "default", "-n", "2", "--executor", "dask", "--scheduler",
                  "tcp://127.0.0.1:9", "-o", tmp_path / "out")
    assert result.exit_code == exitcodes.IO
    assert "--executor: error[E404]: cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'" \
        in result.stderr
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
