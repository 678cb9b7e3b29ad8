"""simulation.html in a real headless Chromium: offline, escaped, equal to `tracedsl simulate`."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from browser import open_page
from click.testing import CliRunner
from conftest import MOONCAKE, ROOT, fixture_dir

from tracedsl.cli import cli
from tracedsl.output.reader import read_trace
from tracedsl.reports.simulation import SimulationSample, write_simulation_html

pytestmark = pytest.mark.browser
HOSTILE_NAME = "<script>alert(1)</script>"
SMALL_INPUTS = {
    "concurrency": "3",
    "prefill_tps": "20000",
    "decode_tps": "45.5",
    "kv_gb": "0.004",
    "kv_bytes_per_token": "1000",
    "block_size": "16",
}


def small_trace(path):
    """Sessions with a common prefix, a group prefix, partial blocks, delays, and bare rows."""
    rng = np.random.default_rng(7)
    rows, next_id = [], 1000
    for s in range(14):
        turns = int(rng.integers(1, 6))
        for t in range(turns):
            length = int(rng.integers(5, 120))
            blocks = -(-length // 16)
            ids = list(range(next_id, next_id + blocks))
            next_id += blocks
            if t == 0:
                group = [100 + s % 3, 110 + s % 3]  # 3 groups of 2 blocks
                ids = [0, 1, *group, *ids]
                length += 64
            row = {
                "session_id": f"s{s}",
                "input_length": length,
                "output_length": int(rng.integers(1, 70)),
                "hash_ids": ids,
            }
            row.update(
                {"timestamp": 0.0} if t == 0 else {"delay": float(rng.integers(0, 9000)) / 10}
            )
            rows.append(row)
    for _ in range(4):  # foreign-style rows: no session_id, each its own session
        rows.append(
            {"timestamp": 5, "input_length": 40, "output_length": 3, "hash_ids": [0, 1, 7777]}
        )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def write_page(dataset, out, name, block_size):
    sample = SimulationSample()
    for chunk in read_trace(dataset):
        sample.add(chunk)
    return write_simulation_html(out, sample, name=name, block_size=block_size)


def cli_json(dataset, inputs=None):
    args = ["simulate", str(dataset), "--json"]
    for key, value in (inputs or {}).items():
        args += [f"--{key.replace('_', '-')}", value]
    out = CliRunner().invoke(cli, args)
    assert out.exit_code == 0, out.output
    return json.loads(out.output)


def page_figures(page):
    """The figures as the page shows them: the DOM table's raw values, and the JS global."""
    shown = page.eval(
        "Object.fromEntries([...document.querySelectorAll('#figures tr')]"
        ".map(tr => [tr.dataset.key, JSON.parse(tr.dataset.value)]))"
    )
    return shown, page.eval("window.simulationResult")


def assert_same(page, expected):
    shown, result = page_figures(page)
    assert shown == expected["summary"]
    assert result["summary"] == expected["summary"]
    assert result["series"] == expected["series"]
    assert result["requests"] == expected["requests"]


def test_page_equals_cli_and_reruns_with_new_inputs(tmp_path):
    dataset = small_trace(tmp_path / "small.jsonl")
    html = write_page(dataset, tmp_path / "simulation.html", HOSTILE_NAME, 16)
    with open_page(html) as page:
        assert page.errors == [] and page.blocked == []
        assert_same(page, cli_json(dataset, {"block_size": "16"}))
        for key, value in SMALL_INPUTS.items():
            page.fill(f"#in-{key}", value)
        page.click("#run")
        expected = cli_json(dataset, SMALL_INPUTS)
        assert (
            expected["summary"]["evicted_private_blocks"] > 0
        )  # the small cache is under pressure
        assert_same(page, expected)
        assert page.errors == []


def test_page_is_escaped_drawn_and_runs_on_enter_only_inside_inputs(tmp_path):
    dataset = small_trace(tmp_path / "small.jsonl")
    html = write_page(dataset, tmp_path / "simulation.html", HOSTILE_NAME, 16)
    text = html.read_text()
    assert HOSTILE_NAME not in text  # escaped in the HTML and in the embedded JSON
    with open_page(html) as page:
        assert HOSTILE_NAME in page.text("h1")
        assert page.dialogs == []
        assert page.count("#charts figure.chart") == 7
        assert page.count("#charts svg path.line") >= 7
        assert page.count("#gantt rect.session") == 18
        assert page.count("#gantt rect.decode") == page.eval(
            "window.simulationResult.summary.requests"
        )
        page.eval("window.simulationResult = null")
        page.press("body", "Enter")
        assert page.eval("window.simulationResult") is None
        page.press("#in-concurrency", "Enter")
        assert page.eval("window.simulationResult") is not None
        page.fill("#in-kv_gb", "-3")
        page.click("#run")
        assert "kv_gb: must be a positive number" in page.text("#status")
        assert page.errors == []


def test_reference_run_page_equals_cli_and_screenshot(tmp_path):
    run = fixture_dir("default_s1_n300")
    html = write_page(
        run / "dataset.jsonl", tmp_path / "simulation.html", "default (reference run)", 512
    )
    inputs = {"kv_gb": "5"}
    with open_page(html) as page:
        page.fill("#in-kv_gb", inputs["kv_gb"])
        page.click("#run")
        assert_same(page, cli_json(run, inputs))
        assert page.errors == []
        if os.environ.get("TRACEDSL_SCREENSHOTS"):
            page.screenshot(ROOT / "docs" / "simulation.png")


def test_foreign_trace_page_loads_and_stays_small(tmp_path):
    path = MOONCAKE / "conversation_trace.jsonl"
    if not path.exists():
        pytest.skip("mooncake fixtures missing")
    html = write_page(path, tmp_path / "simulation.html", "mooncake conversation", 512)
    assert html.stat().st_size < 3_000_000
    with open_page(html) as page:
        assert page.errors == [] and page.blocked == []
        shown, result = page_figures(page)
        assert shown["sessions"] == 2000  # the page's sample: the first 2000 rows, in file order
        assert "the first 2,000 of 12,031 sessions" in page.text(".sample")
        assert shown == cli_json(path)["summary"]
