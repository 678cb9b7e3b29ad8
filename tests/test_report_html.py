"""report.html and cache_explorer.html in headless Chromium, offline: drawn, escaped, bounded."""

from __future__ import annotations

import json

import pytest
from browser import open_page
from conftest import ROOT, fixture_dir

from tracedsl.ir import GenerationParams
from tracedsl.output.reader import read_trace
from tracedsl.reports import ReportSet

HOSTILE = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    fixture = fixture_dir("manifest1k_s3_n300")
    params = GenerationParams.model_validate(json.loads((fixture / "manifest.json").read_text())["generation_params"])
    reports = ReportSet(params, HOSTILE, params.block_size)
    for chunk in read_trace(fixture / "dataset.jsonl"):
        reports.add(chunk)
    out = tmp_path_factory.mktemp("reports")
    reports.write(out)
    return out


def test_pages_are_self_contained(run_dir):
    for name in ("report.html", "cache_explorer.html"):
        text = (run_dir / name).read_text()
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
        assert "https://" not in text
        assert HOSTILE not in text  # escaped everywhere, including the embedded JSON


@pytest.mark.browser
def test_report_draws_every_chart_offline(run_dir):
    with open_page(run_dir / "report.html", width=1400) as page:
        assert page.errors == [] and page.blocked == [] and page.dialogs == []
        assert page.text("#spec-name") == HOSTILE
        assert page.count(".card svg") >= 20
        assert page.count(".card svg .bar") > 300
        assert page.count(".card svg polyline") >= 2 * 11  # more than 10 sample sessions per line chart
        page.screenshot(ROOT / "docs" / "report.png")
        page.click(".card")
        assert page.count("#overlay.open svg") == 1
        page.press("body", "Escape")
        assert page.count("#overlay.open") == 0


@pytest.mark.browser
def test_cache_explorer_search_and_hover(run_dir):
    structure = json.loads((run_dir / "cache_structure.json").read_text())
    with open_page(run_dir / "cache_explorer.html", width=1400) as page:
        assert page.errors == [] and page.blocked == [] and page.dialogs == []
        assert page.text("#spec-name") == HOSTILE
        assert page.count("#sessions .row") == len(structure["sessions"]) > 50
        assert page.count("#turns svg rect.seg") > 10
        target = structure["sessions"][7]["session_id"]
        page.fill("#search", target)
        assert page.count("#sessions .row") == 1
        page.click("#sessions .row")
        assert target in page.text("#detail-title")
        page.raw.hover("#turns svg rect.seg >> nth=3")
        assert "blocks" in page.text("#tip")
        page.fill("#search", "")
        page.screenshot(ROOT / "docs" / "cache_explorer.png", full_page=False)
