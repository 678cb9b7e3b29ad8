"""The bundled specs: `tracedsl presets` lists each with one line, and docs/presets.md's tables
hold for a 10k-session run of each preset (every row within its tolerance, the achieved column
the run's own figures)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import ROOT
from tests.preset_figures import SEED, SESSIONS, figures, run_preset
from tracedsl import pipeline
from tracedsl.cli import cli
from tracedsl.pipeline.presets import description_of
from tracedsl.resources import bundled_spec_names

DOC = ROOT / "docs" / "presets.md"
HEADER = "| figure | target | achieved | tolerance | why |"
UNITS = {"%": 1.0, " s": 1.0, "k": 1e3, "M": 1e6}


def _tables() -> dict[str, list[dict[str, str]]]:
    """Each preset's table rows, keyed by the preset of the `### \\`name\\`` heading above it."""
    tables: dict[str, list[dict[str, str]]] = {}
    name, rows = None, None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        heading = re.fullmatch(r"### `([a-z0-9-]+)`", line)
        if heading:
            name, rows = heading.group(1), None
        elif line == HEADER and name is not None:
            rows = tables[name] = []
        elif rows is not None and line.startswith("| "):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            rows.append(dict(zip(("figure", "target", "achieved", "tolerance", "why"), cells, strict=True)))
        elif not line.startswith("|---"):
            rows = None  # the table has ended
    return tables


def _number(text: str) -> float:
    """A table's figure as a number: `1,234`, `98.7%`, `0.125 s`, `116k`."""
    text = text.replace(",", "").strip()
    for unit, scale in UNITS.items():
        if text.endswith(unit):
            return float(text[: -len(unit)]) * scale
    return float(text)


def within(tolerance: str, target: str, achieved: str) -> bool:
    """Whether ``achieved`` meets ``target`` under the table's ``tolerance``."""
    goal, value = _number(target), _number(achieved)
    if tolerance == "exact":
        return value == goal
    if tolerance.startswith("up to "):
        return goal <= value <= _number(tolerance[len("up to "):])
    relative = re.fullmatch(r"±([0-9.]+)%", tolerance)
    if relative:
        return abs(value - goal) <= float(relative.group(1)) / 100 * abs(goal)
    points = re.fullmatch(r"±([0-9.]+) pt", tolerance)
    if points:
        return abs(value - goal) <= float(points.group(1))
    raise ValueError(f"docs/presets.md: unknown tolerance {tolerance!r}")


TABLES = _tables()


@pytest.fixture(scope="module")
def achieved(tmp_path_factory) -> dict[str, dict[str, str]]:
    """Each tabled preset's figures from one run at the table's size and seed."""
    output = tmp_path_factory.mktemp("presets")
    return {name: figures(run_preset(name, output)) for name in TABLES}


def test_the_doc_states_the_runs_size_and_seed():
    text = DOC.read_text(encoding="utf-8")
    assert f"{SESSIONS:,} sessions, seed {SEED}" in text


def test_every_bundled_spec_has_a_table():
    assert set(TABLES) == set(bundled_spec_names())
    assert all(TABLES.values())


@pytest.mark.parametrize("name", sorted(TABLES))
def test_every_row_is_within_its_tolerance(name, achieved):
    misses = [f"{row['figure']}: {row['achieved']} against {row['target']} ({row['tolerance']})"
              for row in TABLES[name] if not within(row["tolerance"], row["target"], row["achieved"])]
    assert not misses, misses


@pytest.mark.parametrize("name", sorted(TABLES))
def test_the_achieved_column_is_the_runs(name, achieved):
    run = achieved[name]
    for row in TABLES[name]:
        assert row["figure"] in run, f"{name}: no figure '{row['figure']}' in a run"
        assert row["achieved"] == run[row["figure"]], row["figure"]
        expected = run.get(f"{row['figure']}, expected")  # a target that is the spec's own law
        if expected is not None:
            assert row["target"] == expected, row["figure"]


def test_the_tolerances_can_fail():
    assert within("±5%", "857", "899")
    assert not within("±5%", "857", "901")
    assert not within("±2 pt", "18.4%", "20.5%")
    assert within("up to 99.4%", "97.9%", "98.9%")
    assert not within("up to 99.4%", "97.9%", "99.5%")
    assert not within("up to 99.4%", "97.9%", "97.8%")
    assert not within("exact", "1", "2")
    with pytest.raises(ValueError):
        within("about right", "1", "1")


def test_presets_lists_every_bundled_spec_with_one_line():
    result = CliRunner().invoke(cli, ["presets"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split()[0] for line in lines] == bundled_spec_names()
    for preset, line in zip(pipeline.list_presets(), lines, strict=True):
        assert preset.description and line.endswith(preset.description)


def test_presets_json():
    result = CliRunner().invoke(cli, ["presets", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)["presets"]
    assert [preset["name"] for preset in listed] == bundled_spec_names()
    assert all(Path(preset["path"]).is_file() and preset["description"] for preset in listed)


def test_every_bundled_specs_first_line_is_a_one_line_description():
    for preset in pipeline.list_presets():
        first = preset.path.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("# "), preset.name
        assert len(first) <= 100 and preset.description.endswith((".", ")")), preset.name


def test_description_of():
    assert description_of("# One line.\n# More.\nworkload \"x\"\n") == "One line."
    assert description_of("workload \"x\"  # not a header\n") == ""
    assert description_of("") == ""
