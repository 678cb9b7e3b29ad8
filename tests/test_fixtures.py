"""The copied fixtures are the shared ones: md5 as their README states, bytes as the originals."""

from __future__ import annotations

import hashlib
import re

import pytest

from tests.conftest import FIXTURE_ROOT, FIXTURE_RUNS, FIXTURES, MOONCAKE, SHARED, TOOLS


def test_each_reference_dataset_has_the_md5_its_readme_states():
    table = dict(re.findall(r"^\| (\w+) \|.*\| ([0-9a-f]{32}) \|$", (FIXTURES / "README.md").read_text(), re.M))
    assert sorted(table) == sorted(FIXTURE_RUNS)
    for run, md5 in table.items():
        assert hashlib.md5((FIXTURES / run / "dataset.jsonl").read_bytes()).hexdigest() == md5, run


def test_the_mooncake_traces_have_the_rows_their_readme_states():
    table = re.findall(r"^\| (\S+\.jsonl) \| ([\d,]+) \|", (MOONCAKE / "README.md").read_text(), re.M)
    assert len(table) == 2
    for name, rows in table:
        assert (MOONCAKE / name).read_bytes().count(b"\n") == int(rows.replace(",", "")), name


def test_the_copies_equal_the_shared_originals_when_present():
    original = SHARED / "fixtures"
    if not original.is_dir():
        pytest.skip(f"no shared fixtures at {original} to compare with")
    # the folders that are copies (tracelab/ is written by hand, not copied: its README says so)
    copies = [FIXTURE_ROOT / folder.name for folder in original.iterdir() if folder.is_dir()]
    copied = sorted(p.relative_to(FIXTURE_ROOT) for folder in copies for p in folder.rglob("*") if p.is_file())
    shared = sorted(p.relative_to(original) for p in original.rglob("*") if p.is_file())
    assert copied == shared
    for path in copied:
        assert (FIXTURE_ROOT / path).read_bytes() == (original / path).read_bytes(), path


def test_the_replay_tools_have_the_md5_their_readme_states():
    table = re.findall(r"^\| (\S+) \| ([0-9a-f]{32}) \|", (TOOLS / "README.md").read_text(), re.M)
    assert {name for name, _ in table} == {"replay.sh", "mock_openai.py"}
    for name, md5 in table:
        assert hashlib.md5((TOOLS / name).read_bytes()).hexdigest() == md5, name
