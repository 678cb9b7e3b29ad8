"""compile, check, decompile, fmt and schema through the CLI, with their exit codes."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from tests.conftest import FIXTURE_RUNS, ROOT, fixture_dir
from tracedsl.cli import cli, exitcodes
from tracedsl.io import spec_schema
from tracedsl.loading import load_spec


def _run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.mark.parametrize("run", FIXTURE_RUNS)
def test_compiled_spec_holds_the_manifest_params(run, tmp_path):
    folder = fixture_dir(run)
    manifest = json.loads((folder / "manifest.json").read_text())
    out = tmp_path / "spec.json"
    result = _run("compile", str(folder / "config.json"), "-o", str(out))
    assert result.exit_code == 0, result.output
    spec = json.loads(out.read_text())
    assert list(spec) == [
        "format_version",
        "workload",
        "source_file",
        "source_sha256",
        "generation_params",
    ]
    assert spec["source_file"] == "config.json" and len(spec["source_sha256"]) == 64
    # Same keys in the same order, same values, same JSON types: the reference can load it.
    assert json.dumps(spec["generation_params"]) == json.dumps(manifest["generation_params"])


def test_compile_default_bundled_name_to_stdout():
    result = _run("compile", "default")
    assert result.exit_code == 0
    spec = json.loads(result.stdout)
    assert spec["workload"] == "default" and spec["source_file"] == "default.trace"


@pytest.mark.parametrize("form", ["json", "toml"])
def test_compiled_spec_loads_back_to_the_same_params(form, tmp_path):
    out = tmp_path / f"spec.{form}"
    assert (
        _run("compile", str(ROOT / "examples" / "turns-truncate.trace"), "-o", str(out)).exit_code
        == 0
    )
    again = load_spec(str(out))
    original = load_spec(str(ROOT / "examples" / "turns-truncate.trace"))
    assert (again.kind, again.name, again.params) == ("spec", "turns-truncate", original.params)
    assert original.params.reset is None  # the null TOML cannot hold came back


def test_compile_accepts_what_decompile_prints(tmp_path):
    trace = tmp_path / "x.trace"
    manifest = fixture_dir("manifest1k_s3_n300") / "manifest.json"
    assert _run("decompile", str(manifest), "-o", str(trace)).exit_code == 0
    assert load_spec(str(trace)).params == load_spec(str(manifest)).params
    assert trace.read_text().startswith("# decompiled by tracedsl from manifest.json")


def test_compile_errors_exit_input_and_write_nothing(tmp_path):
    bad = tmp_path / "bad.trace"
    bad.write_text("context 5s\n")
    out = tmp_path / "spec.json"
    result = _run("compile", str(bad), "-o", str(out))
    assert result.exit_code == exitcodes.INPUT
    assert "bad.trace:1:9: error[E104]" in result.stderr and "^^" in result.stderr
    assert not out.exists()


def test_missing_file_exits_io():
    result = _run("compile", "no-such-spec")
    assert result.exit_code == exitcodes.IO
    assert "no such file" in result.stderr


def test_check_reports_every_file_and_writes_nothing(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"block_sise": 512}')
    result = _run("check", "default", str(bad))
    assert result.exit_code == exitcodes.FAILED
    # the verdict of a spec without errors is on stdout, its warnings on stderr
    assert result.stdout == "default: ok, 2 warning(s)\n"
    assert ": ok" not in result.stderr
    assert "bad.json:1:2: error[E207]: unknown key 'block_sise'" in result.stderr
    assert "did you mean 'block_size'?" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json"]


def test_fmt_check_and_write(tmp_path):
    messy = tmp_path / "messy.trace"
    messy.write_text("reset 1%   # why\ncontext   100k\n")
    assert _run("fmt", "--check", str(messy)).exit_code == exitcodes.FAILED
    printed = _run("fmt", str(messy))
    assert printed.stdout == "context 100k\n\nreset 1%  # why\n"
    assert _run("fmt", "-w", str(messy)).exit_code == 0
    assert messy.read_text() == printed.stdout
    assert _run("fmt", "--check", str(messy)).exit_code == 0


def test_fmt_check_passes_on_bundled_specs_and_examples():
    files = [
        str(p)
        for p in sorted((ROOT / "specs").glob("*.trace"))
        + sorted((ROOT / "examples").glob("*.trace"))
    ]
    result = _run("fmt", "--check", *files)
    assert result.exit_code == 0, result.stderr


def test_fmt_syntax_error_exits_input(tmp_path):
    bad = tmp_path / "bad.trace"
    bad.write_text("contxt 1k\n")
    result = _run("fmt", str(bad))
    assert result.exit_code == exitcodes.INPUT and "did you mean 'context'?" in result.stderr


def test_schema_file_is_current():
    result = _run("schema")
    assert result.exit_code == 0
    committed = (ROOT / "specs" / "spec.schema.json").read_text()
    assert result.stdout == committed, (
        "specs/spec.schema.json is stale: run tracedsl schema -o specs/spec.schema.json"
    )
    assert json.loads(committed) == spec_schema()


def test_the_schema_validates_a_compiled_spec():
    jsonschema = pytest.importorskip("jsonschema")
    spec = json.loads(_run("compile", "inference-day-2026").stdout)
    jsonschema.validate(spec, spec_schema())


def test_the_schema_is_refused_as_a_config():
    result = _run("check", str(ROOT / "specs" / "spec.schema.json"))
    assert result.exit_code == exitcodes.FAILED and "JSON Schema" in result.stderr


@pytest.mark.skipif(shutil.which("true") is None, reason="posix only")
def test_unwritable_output_exits_io(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = _run("compile", "default", "-o", str(blocker / "spec.json"))
    assert result.exit_code == exitcodes.IO
