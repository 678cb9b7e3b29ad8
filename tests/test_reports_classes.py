"""Per-class reports: each class's figures against its own body, the whole trace's mixture
targets, the class table in comparison.txt and report.html, and classes read from sessions.jsonl.

Most tests use a classed trace built by hand, so each class's share is exact: each class's
body run by the fast engine, its sessions tagged with the class's index (the engine's
``class_index`` extra) and the classes' chunks interleaved. The last ones run a spec with
classes through ``tracedsl run`` and ``tracedsl report``.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import orjson
import pytest
from browser import open_page
from click.testing import CliRunner

from tracedsl.cli import cli
from tracedsl.engine import RunRequest
from tracedsl.engine.fast import FastEngine
from tracedsl.ir import GenerationParams
from tracedsl.language.lower import compile_text
from tracedsl.output.jsonl import JsonlWriter
from tracedsl.output.manifest import RunRecord, write_manifest
from tracedsl.output.sessions import SessionIndexWriter
from tracedsl.pipeline.traces import report as report_command
from tracedsl.reports import ReportSet, targets
from tracedsl.reports.comparison import class_rows
from tracedsl.reports.quality import PER_CLASS
from tracedsl.reports.targets import Draw

CHAT = "prefix { session lognormal(mean=2k, median=1k) }\nturn { output constant(300) }\nturns uniform(min=2, max=8) truncate\n"
CODING = ""  # the defaults: reset mode, lognormal output
COUNTS = (300, 700)


def classed(bodies, counts, seed=3, chunk=150):
    """(params with classes, the chunks of every class interleaved, each tagged with its class)."""
    compiled = [(name, fraction, compile_text(text, f"{name}.trace")[0].params) for name, fraction, text in bodies]
    data = compiled[-1][2].model_dump(mode="json")
    data["classes"] = [{"name": n, "fraction": f, "params": b.model_dump(mode="json")} for n, f, b in compiled]
    params = GenerationParams.model_validate(data)
    streams = []
    for number, ((name, _, body), n) in enumerate(zip(compiled, counts, strict=True)):
        streams.append([
            replace(c, session_ids=[f"{name}-{s}" for s in c.session_ids],
                    extras={**c.extras, "class_index": np.full(c.num_sessions, number)})
            for c in FastEngine(chunk_sessions=chunk).generate(RunRequest(body, n, seed + number))])
    chunks = [s[i] for i in range(max(map(len, streams))) for s in streams if i < len(s)]
    return params, chunks


@pytest.fixture(scope="module")
def trace():
    return classed([("chat", 0.3, CHAT), ("coding", 0.7, CODING)], COUNTS)


@pytest.fixture(scope="module")
def written(trace, tmp_path_factory):
    params, chunks = trace
    reports = ReportSet(params, "classed", params.block_size)
    for chunk in chunks:
        reports.add(chunk)
    out = tmp_path_factory.mktemp("classed")
    reports.write(out)
    return reports, json.loads((out / "quality.json").read_text()), out


def test_a_constant_output_class_shows_mean_300_in_its_row(written):
    _, quality, out = written
    chat = quality["classes"]["chat"]["observed_vs_target"]["generation_length"]
    assert chat["observed"]["mean"] == 300.0 and chat["observed"]["std"] == 0.0
    assert chat["expected"]["mean"] == 300.0 and chat["p90"] == {"expected": 300.0, "observed": 300.0,
                                                                 "signed_error_pct": 0.0}
    rows = {row["class"]: row for row in class_rows(quality)}
    assert rows["chat"]["mean_output"] == 300.0 and rows["coding"]["mean_output"] != 300.0
    (line,) = [x for x in (out / "comparison.txt").read_text().splitlines() if x.startswith("  chat ")]
    assert line.split()[1:8] == ["30.0%", "30.0%", "300", f"{rows['chat']['rows']:,}",
                                 f"{rows['chat']['mean_input']:,.1f}", "300.0",
                                 f"{rows['chat']['hit_rate'] * 100:.1f}%"]


def test_fractions_counts_and_endings_per_class_match_the_chunks(trace, written):
    _, chunks = trace
    _, quality, _ = written
    for number, name in enumerate(("chat", "coding")):
        mine = [c for c in chunks if c.extras["class_index"][0] == number]
        figures = quality["classes"][name]
        assert figures["sessions"] == sum(c.num_sessions for c in mine)
        assert figures["rows"] == sum(c.num_rows for c in mine)
        assert figures["primary_sessions"] == COUNTS[number]
        reasons = np.concatenate([c.end_reasons for c in mine])
        assert figures["session_end_stats"]["forced_retires"] == int((reasons == 0).sum())
        assert figures["session_end_stats"]["total_sessions"] == figures["sessions"]
        isl = np.concatenate([c.request_input_length for c in mine])
        assert figures["request_input_length"]["mean"] == pytest.approx(isl.mean(), abs=0.01)
    assert quality["classes"]["chat"]["fraction"] == {"target": 0.3, "observed": 0.3}
    assert quality["classes"]["coding"]["fraction"] == {"target": 0.7, "observed": 0.7}
    assert sum(f["sessions"] for f in quality["classes"].values()) == quality["session_end_stats"]["total_sessions"]
    assert "classes_unplaced_sessions" not in quality


def test_each_class_is_held_to_its_own_bodys_law(trace, written):
    params, _ = trace
    _, quality, _ = written
    (_, _, chat), (_, _, coding) = params.bodies()
    figures = quality["classes"]
    chat_turns = targets.turns(chat, levels=(0.9,))
    assert figures["chat"]["observed_vs_target"]["turns_per_session"]["expected"] == chat_turns.to_dict()
    assert chat_turns.quantiles == {"p90": 7.0}  # round(uniform(2, 8)) <= 7 has probability 5.5/6
    assert "expected" not in figures["coding"]["observed_vs_target"]["turns_per_session"]  # reset mode
    context = targets.initial_context(chat)
    assert figures["chat"]["observed_vs_target"]["initial_context"]["expected"]["mean"] == round(context.mean, 4)
    assert figures["chat"]["observed_vs_target"]["initial_context"]["observed_compared"]["mean"] == pytest.approx(
        context.mean, rel=0.1)
    coding_output = figures["coding"]["observed_vs_target"]["generation_length"]
    assert coding_output["expected"]["mean"] == round(targets.generation_length(coding).mean, 4)
    assert coding_output["target_mean"] == 500.0  # the reference's configured value, of the class's body
    assert figures["chat"]["end_reason_targets"]["target_turn_count"] is None  # truncating turns mode
    assert figures["coding"]["end_reason_targets"]["target_turn_count"] == 0


def test_whole_trace_targets_are_the_mixture_where_exact_and_per_class_elsewhere(trace, written):
    params, _ = trace
    _, quality, _ = written
    (_, _, chat), (_, _, coding) = params.bodies()
    metrics = quality["observed_vs_target"]
    context = metrics["initial_context"]
    mean = 0.3 * targets.initial_context(chat).mean + 0.7 * targets.initial_context(coding).mean
    assert context["expected"]["mean"] == pytest.approx(mean)
    # the mixture's median against 400k draws of the mixture itself
    rng = np.random.default_rng(0)
    draws = []
    for fraction, body in ((0.3, chat), (0.7, coding)):
        draw = targets.initial_context_draw(body)
        draws.append(draw.transform(draw.law.sample(rng.random(int(400_000 * fraction)))))
    assert context["expected"]["median"] == pytest.approx(np.median(np.concatenate(draws)), rel=2e-3)
    assert context["target_mean"] is None  # the top-level defaults are no class's
    for name in ("generation_length", "new_tokens_per_turn", "inter_turn_delay_ms", "turns_per_session"):
        assert metrics[name]["expected"] == PER_CLASS and "signed_error_mean_pct" not in metrics[name]
    assert metrics["generation_length"]["observed"]["count"] == quality["kv_reuse"]["sample"]["of_requests"]
    assert quality["end_reason_targets"]["note"].startswith(PER_CLASS)


def test_mixture_quantiles_on_one_class_and_on_atoms(trace):
    params, _ = trace
    chat = params.bodies()[0][2]
    one = targets.initial_context_draw(chat)
    for q in (0.5, 0.9):  # a law whose median (1k) is an integer: the quantile sits on a step
        assert targets.mixture_quantile([(1.0, one)], q) == one.quantile(q)
        assert targets.mixture_quantile([(0.5, one), (0.5, one)], q) == one.quantile(q)
    atoms = [(0.3, Draw(targets.law(compile_text("turn { output constant(100) }", "a")[0].params.generation_length),
                        lambda x: x)),
             (0.7, Draw(targets.law(compile_text("turn { output constant(500) }", "b")[0].params.generation_length),
                        lambda x: x))]
    assert targets.mixture_quantile(atoms, 0.2) == 100.0
    assert targets.mixture_quantile(atoms, 0.5) == 500.0
    assert targets.mixture(atoms, "t").mean == pytest.approx(380.0)


def test_the_classes_hit_rates_add_up_to_the_whole_traces(written):
    reports, quality, _ = written
    split = reports.collector.classes
    assert sum(f.prompt_blocks for f in split.figures) == quality["kv_reuse"]["prompt_blocks"]
    hits = sum(f.hit_blocks for f in split.figures)
    assert hits / quality["kv_reuse"]["prompt_blocks"] == pytest.approx(quality["kv_reuse"]["prefix_hit_rate_unbounded"],
                                                                          abs=1e-4)
    for figures in split.figures:
        assert 0 < figures.hit_blocks <= figures.prompt_blocks


def test_a_trace_without_classes_has_no_class_figures(tmp_path):
    params = compile_text(CHAT, "c.trace")[0].params
    reports = ReportSet(params, "plain", params.block_size)
    for chunk in FastEngine().generate(RunRequest(params, 60, 1)):
        reports.add(chunk)
    reports.write(tmp_path)
    quality = json.loads((tmp_path / "quality.json").read_text())
    assert "classes" not in quality and reports.collector.classes is None
    assert quality["observed_vs_target"]["generation_length"]["expected"]["mean"] == 300.0
    assert "p90" not in quality["observed_vs_target"]["generation_length"]
    assert "Session classes" not in (tmp_path / "comparison.txt").read_text()
    assert 'id="classes"' not in (tmp_path / "report.html").read_text()


def _run_dir(trace, path, drop: str | None = None):
    """dataset.jsonl, sessions.jsonl naming each session's class (but ``drop``'s) and a manifest."""
    params, chunks = trace
    path.mkdir()
    with JsonlWriter(path / "dataset.jsonl") as writer, SessionIndexWriter(path / "sessions.jsonl") as index:
        for chunk in chunks:
            writer.write(chunk)
            index.write(chunk)
    rows = [orjson.loads(line) for line in (path / "sessions.jsonl").read_bytes().splitlines()]
    for row in rows:
        row["class"] = row["session_id"].split("-")[0]  # the ids start with the class's name
        if row["session_id"] == drop:
            row["class"] = "nobody"
    (path / "sessions.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    record = RunRecord(seed=3, config_name="classed", params=params, engine="fast",
                       requested_sessions=sum(COUNTS), written_sessions=writer.sessions, rows=writer.rows,
                       dataset_sha256="0" * 64, spec_source=None, spec_sha256=None)
    write_manifest(path, record)
    return path


def test_tracedsl_report_reads_each_sessions_class_from_sessions_jsonl(trace, written, tmp_path):
    _, in_process, _ = written
    run = _run_dir(trace, tmp_path / "run")
    report_command(run, tmp_path / "out", html=False)
    quality = json.loads((tmp_path / "out" / "quality.json").read_text())
    for name in ("chat", "coding"):
        ours, theirs = quality["classes"][name], in_process["classes"][name]
        for key in ("fraction", "sessions", "rows", "primary_sessions", "request_input_length"):
            assert ours[key] == theirs[key], key
        # the rows do not say why a session ended (tracedsl report counts them not recorded)
        assert ours["session_end_stats"]["total_sessions"] == theirs["session_end_stats"]["total_sessions"]
        assert ours["observed_vs_target"]["generation_length"] == theirs["observed_vs_target"]["generation_length"]


def test_a_session_no_class_holds_is_counted_apart(trace, tmp_path):
    _, chunks = trace
    dropped = chunks[0].session_ids[0]
    run = _run_dir(trace, tmp_path / "run", drop=dropped)
    report_command(run, tmp_path / "out", html=False)
    quality = json.loads((tmp_path / "out" / "quality.json").read_text())
    assert quality["classes_unplaced_sessions"] == 1
    assert quality["classes"]["chat"]["sessions"] + quality["classes"]["coding"]["sessions"] == (
        quality["session_end_stats"]["total_sessions"] - 1)


@pytest.mark.browser
def test_report_html_shows_the_class_table_and_charts(written):
    _, quality, out = written
    with open_page(out / "report.html", width=1400) as page:
        assert page.errors == [] and page.blocked == []
        table = page.eval("""[...document.querySelectorAll('#classes tbody tr')].map(
            tr => [...tr.querySelectorAll('td')].map(td => td.textContent))""")
        head = page.eval("[...document.querySelectorAll('#classes thead th')].map(th => th.textContent)")
        assert [row[0] for row in table] == ["chat", "coding"]
        chat = dict(zip(head, table[0], strict=True))
        assert chat["mean output"] == "300.0" and chat["fraction target / observed"] == "30.0% / 30.0%"
        assert chat["sessions"] == f"{quality['classes']['chat']['sessions']:,}"
        assert chat["target-turn completions"] == f"{quality['classes']['chat']['session_end_stats']['target_turn_completions']:,}"
        titles = page.eval("[...document.querySelectorAll('.card h2')].map(h => h.textContent)")
        assert "Output length by class" in titles and "Request input length by class" in titles
        lines = page.eval("""(() => { const card = [...document.querySelectorAll('.card')].find(
            c => c.querySelector('h2').textContent === 'Output length by class');
            return [...card.querySelectorAll('polyline title')].map(t => t.textContent); })()""")
        assert lines == ["chat", "coding"]


SPEC = """arrivals poisson(rate=4/s)
class chat 30% { turn { output constant(300) }  turns uniform(min=2, max=8) truncate }
class coding 70% { prefix { session lognormal(mean=8k, median=5k) } }
"""


def test_a_run_with_classes_reports_each_class_and_report_reads_them_back(tmp_path):
    spec = tmp_path / "c.trace"
    spec.write_text(SPEC)
    result = CliRunner().invoke(cli, ["run", str(spec), "-n", "1500", "--seed", "5", "-o", str(tmp_path), "-q"])
    assert result.exit_code == 0, result.output
    (run,) = [path.parent for path in tmp_path.glob("*/quality.json")]
    quality = json.loads((run / "quality.json").read_text())
    chat, coding = quality["classes"]["chat"], quality["classes"]["coding"]
    index = [orjson.loads(line) for line in (run / "sessions.jsonl").read_bytes().splitlines()]
    for name, figures in (("chat", chat), ("coding", coding)):
        mine = [row for row in index if row["class"] == name]
        assert figures["sessions"] == len(mine) and figures["rows"] == sum(row["turns"] for row in mine)
    assert chat["observed_vs_target"]["generation_length"]["observed"]["mean"] == 300.0
    share = chat["primary_sessions"] / (chat["primary_sessions"] + coding["primary_sessions"])
    assert chat["fraction"]["observed"] == round(share, 4) and abs(share - 0.3) < 4 * (0.21 / 1500) ** 0.5
    body = compile_text(SPEC, "c.trace")[0].params.bodies()[1][2]
    assert coding["observed_vs_target"]["initial_context"]["expected"]["mean"] == round(
        targets.initial_context(body).mean, 4)
    assert quality["arrivals"]["rate_per_s"]["target"] == 4.0
    html = (run / "report.html").read_text()
    assert 'id="classes"' in html and "Arrivals: sessions started per second" in html
    result = CliRunner().invoke(cli, ["report", str(run), "-o", str(tmp_path / "again"), "--no-html"])
    assert result.exit_code == 0, result.output
    again = json.loads((tmp_path / "again" / "quality.json").read_text())
    for name in ("chat", "coding"):
        ours, theirs = again["classes"][name], quality["classes"][name]
        for key in ("fraction", "sessions", "rows", "request_input_length"):
            assert ours[key] == theirs[key], (name, key)
        for metric, figures in theirs["observed_vs_target"].items():
            if metric == "inter_turn_delay_ms":  # the file holds the delays rounded
                assert ours["observed_vs_target"][metric]["observed"]["mean"] == pytest.approx(
                    figures["observed"]["mean"], rel=1e-4)
            else:
                assert ours["observed_vs_target"][metric] == figures, (name, metric)
