"""Diagnostics carry their source text, so every command shows the caret; each code means one thing."""

from __future__ import annotations

import importlib
import pkgutil
import re

from click.testing import CliRunner

import tracedsl
from tracedsl import codes
from tracedsl.cli import cli, exitcodes
from tracedsl.diagnostics import Diagnostic, Span, render, with_source


def test_render_uses_the_source_the_diagnostic_carries():
    diag = Diagnostic("E104", "bad unit", file="x.trace", span=Span(2, 9, 2, 11),
                      source="workload \"w\"\ncontext 5s\n")
    assert render(diag).splitlines()[1:] == ["   2 | context 5s", "     |         ^^"]
    # a source passed in wins; without either there is no excerpt
    assert "other" in render(diag, "one\ncontext other\n")
    assert render(Diagnostic("E104", "bad unit", file="x.trace", span=Span(2, 9))).count("\n") == 0


def test_the_source_is_not_part_of_a_diagnostics_identity_or_json():
    plain = Diagnostic("E104", "bad unit", file="x.trace", span=Span(1, 1))
    (carrying,) = with_source([plain], "context 5s\n", "x.trace")
    assert carrying.source == "context 5s\n" and carrying == plain and hash(carrying) == hash(plain)
    assert carrying.to_dict() == plain.to_dict() and "source" not in repr(carrying)
    # only diagnostics about that file get its text
    (elsewhere,) = with_source([plain], "text", "y.trace")
    assert elsewhere.source is None


def _cli(args, cwd):
    import os

    here = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(cli, args)
    finally:
        os.chdir(here)


def test_run_shows_the_caret_excerpt_of_a_bad_trace(tmp_path):
    (tmp_path / "bad.trace").write_text('workload "w"\ncontext 5s\n')
    result = _cli(["run", "bad.trace", "-n", "2", "-o", "out"], tmp_path)
    assert result.exit_code == exitcodes.INPUT
    assert result.stderr.splitlines() == [
        "bad.trace:2:9: error[E104]: '5s' is not a token count (units: k, M)",
        "   2 | context 5s",
        "     |         ^^",
    ]
    assert not (tmp_path / "out").exists()


def test_run_shows_the_caret_of_a_syntax_error_and_of_a_bad_json_value(tmp_path):
    (tmp_path / "bad.trace").write_text("contxt 167k\n")
    syntax = _cli(["run", "bad.trace", "-n", "2", "-o", "out"], tmp_path)
    assert syntax.exit_code == exitcodes.INPUT
    assert "   1 | contxt 167k\n     | ^^^^^^" in syntax.stderr
    (tmp_path / "bad.json").write_text('{\n  "block_size": 0\n}\n')
    value = _cli(["run", "bad.json", "-n", "2", "-o", "out"], tmp_path)
    assert value.exit_code == exitcodes.INPUT
    assert value.stderr.startswith("bad.json:2:17: error[E106]: block_size:")
    assert '   2 |   "block_size": 0\n     |                 ^' in value.stderr


# --------------------------------------------------------------------------------------------
# One registry


def _modules():
    for info in pkgutil.walk_packages(tracedsl.__path__, "tracedsl."):
        if info.name.startswith("tracedsl.reports") or info.name == "tracedsl.__main__":
            continue  # reports have no diagnostic codes and import heavy optional modules
        yield importlib.import_module(info.name)


CODE = re.compile(r"^[EW]\d{3}$")


def test_every_code_constant_in_tracedsl_is_the_registrys():
    """A module's E_*/W_* constant is the registry's value of that name: no code means two things."""
    by_name = {entry.name: entry.code for entry in codes.REGISTRY.values()}
    seen = 0
    for module in _modules():
        for name, value in vars(module).items():
            if isinstance(value, str) and CODE.match(value) and name[:2] in ("E_", "W_"):
                assert by_name.get(name) == value, f"{module.__name__}.{name} = {value}"
                seen += 1
    assert seen >= len(codes.REGISTRY)


def test_codes_are_unique_and_retired_ones_are_not_reused():
    assert len({entry.name for entry in codes.REGISTRY.values()}) == len(codes.REGISTRY)
    assert not set(codes.RETIRED) & set(codes.REGISTRY)
    assert set(codes.RETIRED.values()) <= set(codes.REGISTRY)
    assert all(CODE.match(code) for code in codes.REGISTRY)


def test_every_code_written_in_the_source_is_a_registered_one():
    """A code spelled out anywhere in tracedsl (not imported) is still one the registry defines."""
    from pathlib import Path

    root = Path(tracedsl.__file__).parent
    literal = re.compile(r"""["']([EW]\d{3})["']""")
    unknown = {
        str(path.relative_to(root)): hits
        for path in root.rglob("*.py")
        if path.name != "codes.py"
        and (hits := [c for c in literal.findall(path.read_text()) if c not in codes.REGISTRY])
    }
    assert not unknown, unknown
