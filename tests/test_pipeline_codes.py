"""The pipeline's diagnostics carry the registry's codes: one registry, and a lost executor is E404."""

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


def test_an_unreachable_scheduler_is_an_io_error_of_the_run(tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr("tracedsl.engine.executors.SCHEDULER_TIMEOUT_S", 1.0)
    result = _cli("run", "default", "-n", "2", "--executor", "dask", "--scheduler",
                  "tcp://127.0.0.1:9", "-o", tmp_path / "out")
    assert result.exit_code == exitcodes.IO
    assert "--executor: error[E404]: cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'" \
        in result.stderr
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
