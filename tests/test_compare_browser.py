"""compare.html in headless Chromium, offline: both hit-rate curves drawn, CDFs overlaid, names escaped."""

from __future__ import annotations

import pytest
from browser import open_page
from conftest import MOONCAKE, ROOT

from tracedsl import pipeline

HOSTILE = "<script>alert(1)</script> & co"


@pytest.fixture(scope="module")
def page_path(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    spec = out / "hostile.trace"
    spec.write_text((ROOT / "specs" / "default.trace").read_text().replace(
        'workload "default"', f'workload "{HOSTILE}"', 1))
    run_dir = pipeline.run(str(spec), out / "run", num_sessions=200, seed=3, html=False).run_dir
    page = out / "compare.html"
    comparison = pipeline.compare(run_dir, MOONCAKE / "conversation_trace.jsonl", html=page)
    assert comparison.a_name == HOSTILE and not comparison.passed
    return page


def test_page_is_self_contained_and_escaped(page_path):
    text = page_path.read_text()
    assert "<script>alert(1)" not in text
    assert "https://" not in text and "http://" not in text.replace("http://www.w3.org/2000/svg", "")


@pytest.mark.browser
def test_compare_page_draws_both_curves_offline(page_path):
    with open_page(page_path, width=1400) as page:
        assert page.errors == [] and page.blocked == [] and page.dialogs == []
        assert page.text("#a-name") == HOSTILE
        assert page.text("#b-name") == "conversation_trace"
        assert page.text("#verdict") == "FAIL"
        lines = page.eval("[...document.querySelectorAll('#lru svg polyline')].map(l => l.querySelector('title').textContent)")
        assert lines == [f"A: {HOSTILE}", "B: conversation_trace", "A unbounded", "B unbounded"]
        # each curve has one point per capacity of the grid, drawn inside the plot
        points = page.eval("[...document.querySelectorAll('#lru svg polyline')].map(l => l.points.length)")
        assert points[:2] == [17, 17]
        boxes = page.eval("[...document.querySelectorAll('#lru svg polyline')].slice(0, 2).map(l => l.getBBox().width)")
        assert all(width > 300 for width in boxes)
        cdfs = page.eval("[...document.querySelectorAll('section.card[id^=cdf-]')].map(c => [c.id, "
                         "c.querySelectorAll('polyline').length])")
        assert dict(cdfs)["cdf-input"] == 2 and dict(cdfs)["cdf-delay_ms"] == 2
        assert len(cdfs) >= 7
        failing = page.eval("document.querySelectorAll('#figures tr.fail').length")
        assert failing > 10
