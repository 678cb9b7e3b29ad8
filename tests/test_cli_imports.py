"""The CLI's import rule: tracedsl/cli imports nothing of tracedsl but the pipeline, the diagnostics and itself.

Every `import` and `from … import` in every module of tracedsl/cli counts, at the top of a
module or inside a function, so a late import cannot slip past. docs/architecture.md names
this rule.
"""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from tests.conftest import ROOT

CLI = ROOT / "tracedsl" / "cli"
ALLOWED = ("tracedsl.pipeline", "tracedsl.diagnostics", "tracedsl.cli")


def _imported(tree: ast.AST, package: str) -> list[tuple[int, str]]:
    """(line, dotted name) of every tracedsl module the tree imports; ``package`` is its package."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            # `from tracedsl import loading` imports tracedsl.loading
            found += [(node.lineno, f"{base}.{alias.name}" if base == "tracedsl" else base)
                      for alias in node.names]
    return [(line, name) for line, name in found if name == "tracedsl" or name.startswith("tracedsl.")]


def _breaks_the_rule(name: str) -> bool:
    return not any(name == allowed or name.startswith(allowed + ".") for allowed in ALLOWED)


def _violations(source: str, file: str, package: str = "tracedsl.cli") -> list[str]:
    return [f"{file}:{line}: imports {name}"
            for line, name in _imported(ast.parse(source), package) if _breaks_the_rule(name)]


CLI_MODULES = sorted(CLI.rglob("*.py"))


def test_the_scan_sees_the_cli_modules():
    names = {path.name for path in CLI_MODULES}
    assert {"__init__.py", "run_commands.py", "spec_commands.py", "simulate_commands.py",
            "report_commands.py"} <= names


@pytest.mark.parametrize("path", CLI_MODULES, ids=lambda p: p.name)
def test_cli_module_imports_only_the_front_door(path):
    package = ".".join(path.relative_to(ROOT).parent.parts)
    assert _violations(path.read_text(encoding="utf-8"), str(path), package) == []


@pytest.mark.parametrize("source, bad", [
    ("import tracedsl.loading\n", "tracedsl.loading"),
    ("from tracedsl import loading\n", "tracedsl.loading"),
    ("from tracedsl.engine.executors import ExecutorError\n", "tracedsl.engine.executors"),
    ("def f():\n    from tracedsl.io import read_source\n", "tracedsl.io"),
    ("class C:\n    def m(self):\n        import tracedsl.reports.regenerate as r\n",
     "tracedsl.reports.regenerate"),
    ("from .. import loading\n", "tracedsl.loading"),
    ("from ..output.manifest import MAX_SEED\n", "tracedsl.output.manifest"),
])
def test_the_scan_catches_what_breaks_the_rule(source, bad):
    (violation,) = _violations(source, "some_commands.py")
    assert violation.endswith(f"imports {bad}")


@pytest.mark.parametrize("source", [
    "from tracedsl import pipeline\n",
    "from tracedsl.pipeline import RunOptions\n",
    "from tracedsl.diagnostics import render\n",
    "from tracedsl.cli import exitcodes\n",
    "from . import exitcodes\n",
    "import click\nimport orjson\n",
])
def test_the_scan_allows_the_front_door(source):
    assert _violations(source, "some_commands.py") == []


def test_cli_start_up_loads_no_heavy_module():
    """`tracedsl --help` imports every command module: they must not load the stages."""
    code = (
        "import sys, tracedsl.cli; "
        "print(sorted(m for m in sys.modules if m in ('numpy', 'pydantic', 'jinja2', "
        "'tracedsl.ir', 'tracedsl.loading', 'tracedsl.pipeline.runs', 'tracedsl.pipeline.specs', "
        "'tracedsl.pipeline.traces', 'tracedsl.engine', 'tracedsl.output.reader')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT)
    assert out.stdout.strip() == "[]"
