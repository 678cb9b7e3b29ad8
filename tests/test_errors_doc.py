"""docs/errors.md lists every diagnostic code, and each example there gives the code and message shown.

Under each ``### CODE`` heading the doc gives one or more examples: input blocks, then a
``text`` block with what tracedsl prints. A ``trace``/``json``/``toml`` block is a file named
``spec.trace``/``spec.json``/``spec.toml``; a ``console`` block holds commands (``$ tracedsl …``
runs the CLI, any other ``$`` line runs in bash); with no commands the example runs
``tracedsl check`` on its file. Each example runs in a fresh directory, and its ``text`` block
must appear, line for line, in what the commands print; a ``…`` in it stands for any text
within its line (a run directory's time stamp). A code that no short example gives has, in
place of examples, a note "Tested by `test_name` in [`tests/test_x.py`](…)", naming a test
that gives the code.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import ROOT
from tracedsl import codes
from tracedsl.cli import cli

DOC_PATH = ROOT / "docs" / "errors.md"
DOC = DOC_PATH.read_text()
_HEADING = re.compile(r"^### ([EW]\d{3})\b(.*)$", re.MULTILINE)
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
_TESTED_BY = re.compile(r"Tested by\s+`(test_\w+)`\s+in\s+\[`(tests/[\w/]+\.py)`\]")
FILE_KINDS = ("trace", "json", "toml")


@dataclass
class Example:
    code: str
    files: dict[str, str] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)
    expected: str = ""


def sections() -> dict[str, str]:
    """Each code's section of the doc, by code."""
    found = list(_HEADING.finditer(DOC))
    ends = [m.start() for m in found[1:]] + [len(DOC)]
    out: dict[str, str] = {}
    for match, end in zip(found, ends, strict=True):
        assert match.group(1) not in out, f"{match.group(1)} has two sections"
        out[match.group(1)] = DOC[match.end():end].split("\n## ")[0]
    return out


def examples(code: str, section: str) -> list[Example]:
    found, current = [], Example(code)
    for kind, body in _FENCE.findall(section):
        if kind in FILE_KINDS:
            current.files[f"spec.{kind}"] = body
        elif kind == "console":
            current.commands += [line[2:] for line in body.splitlines() if line.startswith("$ ")]
        elif kind == "text":
            current.expected = body
            if not current.commands:
                assert len(current.files) == 1, f"{code}: which file to check?"
                current.commands = [f"tracedsl check {next(iter(current.files))}"]
            found.append(current)
            current = Example(code)
    return found


def run(example: Example, directory: Path) -> str:
    """Run the example's commands in ``directory``; what they print, stdout and stderr."""
    for name, text in example.files.items():
        (directory / name).write_text(text)
    printed = []
    here = os.getcwd()
    os.chdir(directory)
    try:
        for command in example.commands:
            if command.startswith("tracedsl "):
                result = CliRunner().invoke(cli, shlex.split(command)[1:])
                assert not isinstance(result.exception, AssertionError), result.exception
                printed.append(result.output)
            else:
                subprocess.run(["bash", "-c", command], check=True, cwd=directory)
    finally:
        os.chdir(here)
    return "".join(printed)


SECTIONS = sections()
EXAMPLES = [
    pytest.param(example, id=f"{code}-{i}")
    for code, section in SECTIONS.items()
    for i, example in enumerate(examples(code, section))
]


def named_test(section: str) -> tuple[str, str] | None:
    """(test name, test file) of a section's "Tested by" note; None without one."""
    found = _TESTED_BY.search(section)
    return (found.group(1), found.group(2)) if found else None


def function_source(name: str, file: str) -> str | None:
    """The source of test function ``name`` in ``file``; None when there is none."""
    path = ROOT / file
    if not path.is_file():
        return None
    source = path.read_text()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return ast.get_source_segment(source, node)
    return None


def matches(expected: str, printed: str) -> bool:
    """``expected`` appears in ``printed``, each ``…`` standing for any text within a line."""
    pattern = "[^\n]*".join(re.escape(part) for part in expected.split("…"))
    return re.search(pattern, printed) is not None


def test_every_registered_code_has_a_section_with_an_example_or_its_test():
    assert sorted(SECTIONS) == sorted(codes.REGISTRY)
    for code, section in SECTIONS.items():
        assert examples(code, section) or named_test(section), f"{code}: no example and no test named"


@pytest.mark.parametrize("code", [code for code, section in SECTIONS.items() if named_test(section)])
def test_a_code_without_an_example_names_a_test_that_gives_it(code):
    name, file = named_test(SECTIONS[code])
    source = function_source(name, file)
    assert source is not None, f"{code}: no test {name} in {file}"
    assert f"[{code}]" in source, f"{code}: {name} does not check for the code"


def test_the_note_and_the_wildcard_can_fail():
    assert named_test("Tested by `test_x` in [`tests/test_x.py`](../tests/test_x.py)") == \
        ("test_x", "tests/test_x.py")
    assert named_test("tested somewhere") is None
    assert function_source("test_no_such_test", "tests/test_errors_doc.py") is None
    assert matches("a…/x: error", "ab/c/x: error") and not matches("a…/x: error", "a\n/x: error")


def test_each_sections_heading_says_what_the_registry_says():
    for match in _HEADING.finditer(DOC):
        code, title = match.group(1), match.group(2)
        assert f"`{codes.REGISTRY[code].name}`" in title, title
        assert codes.REGISTRY[code].meaning in title, title


def test_the_retired_codes_are_listed_with_their_replacements():
    for old, new in codes.RETIRED.items():
        assert re.search(rf"\b{old}\b.*\b{new}\b", DOC), old


@pytest.mark.parametrize("example", EXAMPLES)
def test_each_example_gives_its_code_and_the_message_shown(example, tmp_path):
    printed = run(example, tmp_path)
    assert f"[{example.code}]" in example.expected
    assert matches(example.expected, printed), printed
