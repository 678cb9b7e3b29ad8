"""report.html and cache_explorer.html in headless Chromium, offline: drawn, escaped, bounded."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from browser import open_page
from conftest import ROOT, fixture_dir

from tracedsl.ir import GenerationParams
from tracedsl.output.reader import read_trace
from tracedsl.reports import ReportSet, charts
from tracedsl.reports.html import cards
from tracedsl.trace import TraceChunk

HOSTILE = "<script>alert(1)</script>"
FIGURES = r"(?:mean |median |p99 |\(|max )([0-9.,]+[kM]?)( s)?"  # a caption's figures and their unit


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
        assert page.count(".card svg") == 19
        titles = page.eval("[...document.querySelectorAll('.card h2')].map(h => h.textContent)")
        assert sum("Output length" in t or "Generation length" in t for t in titles) == 1
        # every axis ticks at round numbers: equal steps of 1, 2 or 5 x 10^k
        axes = page.eval("""[...document.querySelectorAll('.card svg')].flatMap(svg => ['x', 'y'].map(
            axis => [...svg.querySelectorAll('text.tick.' + axis)].map(t => t.textContent)))""")
        linear = [labels for labels in axes if len(labels) >= 2 and not _is_log(labels)]
        assert len(linear) > 25
        for labels in linear:
            _assert_round(labels)
        # the delay card: its caption's figures are in the seconds its axis shows, with the unit
        delay = page.eval("""(() => { const card = [...document.querySelectorAll('.card')].find(
            c => c.querySelector('h2').textContent.startsWith('Inter-turn delay'));
            return [card.querySelector('h2').textContent, card.querySelector('text.axis').textContent,
                    card.querySelector('p').textContent]; })()""")
        assert delay[0] == "Inter-turn delay (s)" and delay[1] == "seconds"
        figures = re.findall(FIGURES, delay[2])
        assert len(figures) >= 3 and all(unit == " s" for _, unit in figures), delay[2]
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


def _number(label: str) -> float:
    scale = {"k": 1e3, "M": 1e6, "G": 1e9, "%": 0.01}
    value, factor = label, 1.0
    while value and value[-1] in scale:
        factor *= scale[value[-1]]
        value = value[:-1]
    return float(value) * factor


def _is_log(labels: list[str]) -> bool:
    values = [_number(label) for label in labels]
    return len(values) > 2 and all(b == a * 10 for a, b in zip(values, values[1:], strict=False))


def _assert_round(labels: list[str]) -> None:
    values = [_number(label) for label in labels]
    steps = {round(b - a, 9) for a, b in zip(values, values[1:], strict=False)}
    assert len(steps) == 1, labels
    (step,) = steps
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert round(mantissa, 6) in (1, 2, 5), labels
    assert all(abs(v / step - round(v / step)) < 1e-6 for v in values), labels


def _chunk(delays: list[list[float]], output: int = 10) -> TraceChunk:
    """Sessions whose later turns wait the given delays (ms); 100-token rows, one block each."""
    turns = [len(d) + 1 for d in delays]
    rows = sum(turns)
    return TraceChunk(
        session_ids=[f"s{n}" for n in range(len(delays))], group_ids=np.full(len(delays), -1),
        is_restart=np.zeros(len(delays), dtype=bool), end_reasons=np.zeros(len(delays), dtype=np.int8),
        row_offsets=np.concatenate([[0], np.cumsum(turns)]).astype(np.int64),
        input_length=np.full(rows, 100), output_length=np.full(rows, output),
        delay_ms=np.array([v for d in delays for v in [np.nan, *d]], dtype=np.float64),
        timestamp_ms=np.full(rows, np.nan), hash_offsets=np.arange(rows + 1, dtype=np.int64),
        hash_ids=np.arange(rows, dtype=np.int64))


def _cards(chunk: TraceChunk) -> dict[str, dict]:
    reports = ReportSet(None, "hand", 512)
    reports.add(chunk)
    return {card["title"]: card for card in cards(reports.collector, reports.quality())}


@pytest.mark.parametrize(("lo", "hi"), [(0, 119.7), (32_800, 167_000), (0.0127, 89.2), (999, 1009),
                                        (-0.5, 18.5), (0, 1), (9400, 10_600), (0, 4718), (3e-6, 7e-6)])
def test_ticks_are_round_numbers(lo, hi):
    ticks, step = charts.nice_ticks(lo, hi)
    assert 2 <= len(ticks) <= charts.MAX_TICKS
    assert all(lo <= t <= hi for t in ticks)
    _assert_round(charts.tick_labels(ticks, step))


def test_tick_labels_share_one_suffix_and_the_steps_precision():
    assert charts.tick_labels(*charts.nice_ticks(9400, 10_600)) == ["9.5k", "10.0k", "10.5k"]
    assert charts.tick_labels(*charts.nice_ticks(0, 4718)) == ["0", "1k", "2k", "3k", "4k"]
    assert charts.tick_labels(*charts.nice_ticks(0, 1), charts.RATE) == ["0%", "20%", "40%", "60%", "80%", "100%"]
    assert charts.nice_ticks(-0.5, 2.5, integer=True)[0] == [0, 1, 2]  # turns never tick at 0.5
    assert charts.nice_ceiling(114) == 150 and charts.nice_ceiling(4718) == 5000 and charts.nice_ceiling(1) == 1
    # the old frame divided the range in four: 38.1 / 76.1 / 114
    svg = charts.histogram(np.linspace(0, 152.2, 41), np.arange(40) * 3, charts.TOKENS, "t")
    assert re.findall(r'class="tick y"[^>]*>([^<]*)<', svg) == ["0", "50", "100", "150"]


def test_delay_caption_is_in_the_axis_unit_even_past_the_cut():
    rng = np.random.default_rng(3)
    delays = rng.lognormal(np.log(1500), 0.6, (50, 20))  # seconds-scale delays, in ms ...
    delays[0, 0] = 249_000  # ... and one long tail the axis cuts off
    card = _cards(_chunk(delays.tolist()))["Inter-turn delay (s)"]
    assert "x axis cut at p99.5" in card["note"]
    figures = re.findall(FIGURES, card["note"])
    assert len(figures) == 5 and all(unit == " s" for _, unit in figures), card["note"]
    assert "max 249 s" in card["note"]  # the milliseconds would read 249k
    assert re.search(r'class="axis"[^>]*>seconds<', card["svg"])
    quick = _cards(_chunk([[120.0, 300.0, 80.0]] * 3))  # all under a second: milliseconds throughout
    assert "mean 167 ms" in quick["Inter-turn delay (ms)"]["note"]


def test_an_all_zero_series_says_so():
    by_title = _cards(_chunk([[0.0, 0.0], [0.0]]))
    delay = by_title["Inter-turn delay (ms)"]
    assert "all values are 0" in delay["svg"] and 'class="bar"' not in delay["svg"]
    assert "all values are 10" in by_title["Output length (generation, tokens)"]["svg"]
    assert not any(title.startswith("Generation length") for title in by_title)
    flat = charts.lines([("a", [0, 1, 2], [0.0, 0.0, 0.0])], charts.TURN_INDEX, charts.RATE, "flat")
    assert "all values are 0" in flat and "<polyline" not in flat
    assert "all values are 0" in charts.bars([("a", 0.0), ("b", 0.0)], charts.SESSIONS, "none")


@pytest.mark.browser
def test_an_all_zero_report_page_says_so(tmp_path):
    reports = ReportSet(None, "zeros", 512)
    reports.add(_chunk([[0.0, 0.0, 0.0]] * 4))
    reports.write(tmp_path)
    with open_page(tmp_path / "report.html") as page:
        assert page.errors == [] and page.blocked == []
        said = page.eval("""[...document.querySelectorAll('.card')].filter(
            c => c.querySelector('h2').textContent.startsWith('Inter-turn delay'))
            .map(c => c.querySelector('svg text.empty').textContent)""")
        assert said == ["all values are 0"]


@pytest.mark.browser
def test_the_arrivals_timeline_renders_with_its_target_rate(tmp_path):
    from tracedsl.engine import RunRequest
    from tracedsl.engine.fast import FastEngine
    from tracedsl.language.lower import compile_text

    text = "arrivals stages {\n  1min at 1/s\n  2min ramp to 8/s\n  1min at 8/s\n}\n"
    params = compile_text(text, "t.trace")[0].params
    reports = ReportSet(params, HOSTILE, params.block_size)
    for chunk in FastEngine(chunk_sessions=500).generate(RunRequest(params, 1200, 4)):
        reports.add(chunk)
    reports.write(tmp_path)
    with open_page(tmp_path / "report.html", width=1400) as page:
        assert page.errors == [] and page.blocked == []
        card = """[...document.querySelectorAll('.card')].find(
            c => c.querySelector('h2').textContent.startsWith('Arrivals'))"""
        drawn = page.eval(f"""(() => {{ const card = {card}; const svg = card.querySelector('svg');
            const box = svg.getBoundingClientRect();
            return {{bars: [...svg.querySelectorAll('rect.bar title')].map(t => t.textContent),
                     target: svg.querySelector('polyline.target').getAttribute('points').split(' ').length,
                     width: box.width, height: box.height, wide: card.classList.contains('wide'),
                     axis: svg.querySelector('text.axis').textContent}}; }})()""")
        assert drawn["wide"] and drawn["width"] > 800 and drawn["height"] > 150
        starts = sum(int(t.split(": ")[1].split(" ")[0].replace(",", "")) for t in drawn["bars"])
        assert starts == 1200 and len(drawn["bars"]) > 30
        assert drawn["target"] >= 6  # the stages' corners: flat, ramp, flat, then the tail
        assert drawn["axis"] == "time since the first start (s)"


AGENT_SPEC = {
    **GenerationParams().generation_params(),
    "reset": {"base_probability": 0.004, "context_scaling": 1.0},
    "request": {"calls": {"kind": "constant", "value": 5.0},
                "message": {"kind": "constant", "value": 3000.0},
                "think": {"kind": "uniform", "min": 100000.0, "max": 200000.0}},
    "compaction": {"threshold": 0.5, "summary": {"kind": "constant", "value": 5000.0}, "max_compactions": 2},
}


@pytest.mark.browser
def test_the_agent_timeline_and_hit_rate_by_gap_render_with_their_counts(tmp_path):
    from tracedsl.engine import RunRequest
    from tracedsl.engine.fast import FastEngine

    params = GenerationParams.model_validate(AGENT_SPEC)
    reports = ReportSet(params, HOSTILE, params.block_size)
    for chunk in FastEngine(chunk_sessions=7).generate(RunRequest(params, 40, 2)):
        reports.add(chunk)
    reports.write(tmp_path)
    lanes = reports.collector.agent.samples
    gaps = reports.quality()["agent"]["hit_rate_by_gap"]
    assert len(lanes) == 4 and sum(lane["compacts"] for lane in lanes) >= 1
    text = (tmp_path / "report.html").read_text()
    assert HOSTILE not in text
    with open_page(tmp_path / "report.html", width=1400) as page:
        assert page.errors == [] and page.blocked == []
        card = """(title => [...document.querySelectorAll('.card')].find(
            c => c.querySelector('h2').textContent.startsWith(title)))"""
        drawn = page.eval(f"""(() => {{ const svg = {card}('Agent structure').querySelector('svg');
            return {{calls: svg.querySelectorAll('rect.call').length,
                     openings: svg.querySelectorAll('rect.call.opening').length,
                     compactions: svg.querySelectorAll('path.compaction').length,
                     lanes: svg.querySelectorAll('text.lane').length,
                     breaks: svg.querySelectorAll('g.break').length,
                     width: svg.getBoundingClientRect().width}}; }})()""")
        assert drawn["lanes"] == len(lanes)
        assert drawn["calls"] == sum(len(lane["start_ms"]) for lane in lanes)
        assert drawn["openings"] == sum(sum(lane["opens"]) for lane in lanes)
        assert drawn["compactions"] == sum(lane["compacts"] for lane in lanes)
        assert drawn["breaks"] >= 1 and drawn["width"] > 800  # think waits of 100-200 s are broken
        bars = page.eval(f"""[...{card}('Hit rate by the idle gap').querySelectorAll('rect.bar title')]
            .map(t => t.textContent)""")
        assert len(bars) == len(gaps)
        assert [float(b.split(": ")[1].rstrip("%")) for b in bars] == [round(g["hit_rate"] * 100, 1) for g in gaps]
        kinds = page.eval(f"""[...{card}('Hit rate by call kind').querySelectorAll('rect.bar title')]
            .map(t => t.textContent.split(':')[0])""")
        assert kinds == ["first", "request-opening", "tool"]
