"""sessions.jsonl: what each run writes beside its dataset, and validate's cross-check of it."""

from __future__ import annotations

import json
import shutil
from collections import Counter

import orjson
import pytest

from tracedsl import pipeline
from tracedsl.output.sessions import FIELDS, SESSIONS_NAME, index_beside
from tracedsl.trace import EndReason

RESTARTS = "inference-day-2026"  # a bundled spec with restart splits


@pytest.fixture(scope="module", params=["fast", "aiperf"])
def restart_run(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param)
    result = pipeline.run(RESTARTS, out, num_sessions=300, seed=42, engine=request.param, html=False)
    return result


def _dataset_sessions(path):
    """(session id, first row index, rows, turn-0 row) of each session, from the dataset alone."""
    sessions = []
    with open(path, "rb") as handle:
        for index, line in enumerate(handle):
            row = orjson.loads(line)
            if sessions and sessions[-1][0] == row["session_id"]:
                sessions[-1][2] += 1
            else:
                sessions.append([row["session_id"], index, 1, row])
    return sessions


def _index(path):
    return [orjson.loads(line) for line in open(path, "rb")]


def test_one_row_per_session_in_file_order(restart_run):
    run_dir = restart_run.run_dir
    assert run_dir / SESSIONS_NAME in restart_run.files
    index = _index(run_dir / SESSIONS_NAME)
    sessions = _dataset_sessions(run_dir / "dataset.jsonl")
    assert len(index) == len(sessions) == restart_run.sessions
    for row, (name, first, turns, turn0) in zip(index, sessions, strict=True):
        assert tuple(row) == FIELDS
        assert row["session_id"] == name and row["first_row"] == first and row["turns"] == turns
        assert row["group_id"] == turn0.get("group_id")
        assert row["class"] is None
        assert (row["link"] == "restart") == bool(turn0.get("is_restart"))
        assert (row["parent_session_id"] is not None) == bool(turn0.get("is_restart"))


def test_end_reasons_agree_with_quality(restart_run):
    run_dir = restart_run.run_dir
    quality = json.loads((run_dir / "quality.json").read_text())
    counted = Counter(row["end_reason"] for row in _index(run_dir / SESSIONS_NAME))
    ends = quality["session_end_stats"]
    for reason in EndReason.recorded():
        assert counted[reason.reference_name] == ends[reason.count_key]
    restarts = sum(1 for _, _, _, turn0 in _dataset_sessions(run_dir / "dataset.jsonl")
                   if turn0.get("is_restart"))
    assert restarts > 0
    assert quality["session_links"] == {"restart": restarts, "compaction": 0, "subagent": 0}


def test_each_continuation_names_its_real_parent(restart_run):
    """The parent, found without the index: the earlier session sharing most turn-0 hash ids.

    A continuation's turn 0 reuses its parent's turn-0 blocks; when the parent had no block of
    its own beyond the group's, it ties with the group's other sessions and must be one of them.
    """
    run_dir = restart_run.run_dir
    index = _index(run_dir / SESSIONS_NAME)
    sessions = _dataset_sessions(run_dir / "dataset.jsonl")
    position = {row["session_id"]: at for at, row in enumerate(index)}
    continuations = [at for at, row in enumerate(index) if row["link"] == "restart"]
    assert len(continuations) >= 5  # the spec restarts: the test has something to check
    firsts = [set(turn0["hash_ids"]) for _, _, _, turn0 in sessions]
    parents, unique = [], 0
    for at in continuations:
        shared = [len(firsts[at] & firsts[earlier]) for earlier in range(at)]
        best = max(shared)
        parent = index[at]["parent_session_id"]
        assert position[parent] < at and shared[position[parent]] == best
        unique += shared.count(best) == 1
        assert index[position[parent]]["end_reason"] == EndReason.RESTART_SPLIT.reference_name
        parents.append(parent)
    assert unique >= len(continuations) // 2  # most parents are told apart by their own blocks
    splits = [row["session_id"] for row in index if row["end_reason"] == "restart_split"]
    assert sorted(parents) == sorted(splits)  # every split continues exactly once


def test_comparison_counts_the_links(restart_run):
    text = (restart_run.run_dir / "comparison.txt").read_text()
    links = sum(1 for row in _index(restart_run.run_dir / SESSIONS_NAME) if row["link"])
    line = next(line for line in text.splitlines() if line.strip().startswith("restart "))
    assert line.split()[-2] == str(links)


def test_a_run_validates_against_its_index(restart_run):
    report = pipeline.validate(restart_run.run_dir)
    assert report.sessions_index == str(restart_run.run_dir / SESSIONS_NAME)
    assert not any(kind.startswith("sessions-index") for kind in report.error_counts)


def test_without_restarts(tmp_path):
    result = pipeline.run("default", tmp_path, num_sessions=40, seed=3, html=False)
    index = _index(result.run_dir / SESSIONS_NAME)
    assert len(index) == 40
    assert all(row["link"] is None and row["parent_session_id"] is None for row in index)
    assert sum(row["turns"] for row in index) == result.rows
    quality = json.loads((result.run_dir / "quality.json").read_text())
    assert quality["session_links"] == {"restart": 0, "compaction": 0, "subagent": 0}
    assert pipeline.validate(result.run_dir).passed(strict=True)


def test_workers_write_the_same_index(tmp_path):
    one = pipeline.run(RESTARTS, tmp_path / "one", num_sessions=200, seed=5, workers=1, html=False)
    two = pipeline.run(RESTARTS, tmp_path / "two", num_sessions=200, seed=5, workers=2, html=False)
    assert (one.run_dir / SESSIONS_NAME).read_bytes() == (two.run_dir / SESSIONS_NAME).read_bytes()


# --- tampering: each change is found, by name, at its line of sessions.jsonl ------------------

def _first(rows, test):
    return next(at for at, row in enumerate(rows) if test(row))


def _unlink(rows):
    at = _first(rows, lambda r: r["link"])
    rows[at]["link"] = rows[at]["parent_session_id"] = None
    return at


def _later_parent(rows):
    at = _first(rows, lambda r: r["link"])
    rows[at]["parent_session_id"] = rows[at + 1]["session_id"]
    return at


def _unknown_parent(rows):
    at = _first(rows, lambda r: r["link"])
    rows[at]["parent_session_id"] = "sess-000000000000"
    return at


def _link_a_primary(rows):
    at = _first(rows, lambda r: not r["link"] and r is not rows[0])
    rows[at]["link"], rows[at]["parent_session_id"] = "restart", rows[0]["session_id"]
    return at


def _turns(rows):
    rows[3]["turns"] += 1
    return 3


def _first_row(rows):
    rows[4]["first_row"] -= 1
    return 4


def _swap(rows):
    rows[5], rows[6] = rows[6], rows[5]
    return 5


def _drop_last(rows):
    rows.pop()
    return None


def _extra(rows):
    rows.append(dict(rows[-1], session_id="sess-ffffffffffff"))
    return len(rows) - 1


def _bad_row(rows):
    del rows[2]["turns"]
    return 2


TAMPERS = [
    (_unlink, "sessions-index-link"), (_link_a_primary, "sessions-index-link"),
    (_later_parent, "sessions-index-parent"), (_unknown_parent, "sessions-index-parent"),
    (_turns, "sessions-index-turns"), (_first_row, "sessions-index-first-row"),
    (_swap, "sessions-index-order"), (_drop_last, "sessions-index-count"),
    (_extra, "sessions-index-count"), (_bad_row, "sessions-index-row"),
]


@pytest.fixture(scope="module")
def fast_restart_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tamper")
    return pipeline.run(RESTARTS, out, num_sessions=300, seed=42, html=False).run_dir


@pytest.mark.parametrize(("tamper", "kind"), TAMPERS, ids=[t.__name__ for t, _ in TAMPERS])
def test_validate_finds_a_tampered_index(fast_restart_run, tmp_path, tamper, kind):
    run_dir = tmp_path / "run"
    shutil.copytree(fast_restart_run, run_dir)
    index = run_dir / SESSIONS_NAME
    rows = _index(index)
    at = tamper(rows)
    index.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    report = pipeline.validate(run_dir)
    found = [d for d in report.errors if d.code.startswith("sessions-index")]
    assert [d.code for d in found] == [kind]
    assert found[0].file == str(index)
    if at is not None:
        assert found[0].span.line == at + 1
    assert not report.ok


def test_only_a_runs_dataset_has_an_index(fast_restart_run, tmp_path):
    """Another trace in the run's folder is not checked against the run's index."""
    copy = tmp_path / "run"
    shutil.copytree(fast_restart_run, copy)
    other = copy / "other.jsonl"
    other.write_bytes(b"".join(open(copy / "dataset.jsonl", "rb").readlines()[:5]))
    assert index_beside(other) is None
    report = pipeline.validate(other)
    assert report.sessions_index is None and report.ok


@pytest.mark.parametrize("read_bytes", [7, 64, 1 << 20])
def test_read_index_numbers_every_line_as_a_line_by_line_reading_does(tmp_path, monkeypatch, read_bytes):
    """read_index reads a block at a time: blank lines skipped, non-objects None, line numbers kept."""
    from tracedsl.output import sessions as sessions_module

    monkeypatch.setattr(sessions_module, "_INDEX_READ_BYTES", read_bytes)
    lines = [b'{"session_id":"a","turns":2}', b"", b'{"session_id":"b"}\r', b"[1,2]", b"   ",
             b'{"session_id":"c", "broken"', b'{"session_id":"d","link":"restart"}', b"7",
             b'{"session_id":"e","link":7}', b'{"session_id":"f","link":"subagent"}']
    for tail in (b"", b"\n", b"\n\n"):
        path = tmp_path / "sessions.jsonl"
        path.write_bytes(b"\n".join(lines) + tail)
        expected = []
        for number, line in enumerate(path.read_bytes().split(b"\n"), start=1):
            if line.strip():
                try:
                    row = orjson.loads(line)
                except orjson.JSONDecodeError:
                    row = None
                expected.append((number, row if type(row) is dict else None))
        assert list(sessions_module.read_index(path)) == expected
        assert list(sessions_module.index_objects(path)) == [row for _, row in expected if row is not None]
        counts = sessions_module.link_counts(path)  # a link that is not a kind's name is none
        assert counts == {**dict.fromkeys(sessions_module.LINK_KINDS, 0), "restart": 1, "subagent": 1}


@pytest.mark.parametrize("order", ["same", "shuffled", "some missing", "reversed runs"])
def test_each_chunk_gets_its_own_sessions_index_rows_in_any_index_order(restart_run, tmp_path, order):
    """with_index matches rows by name: in file order a chunk's rows are taken at once, otherwise
    one name at a time; either way each session gets its own row's end reason ({} when absent)."""
    import random

    from tracedsl.output.reader import read_trace
    from tracedsl.reports.regenerate import with_index

    rows = _index(restart_run.run_dir / SESSIONS_NAME)
    if order == "shuffled":
        random.Random(7).shuffle(rows)
    elif order == "some missing":
        rows = [row for k, row in enumerate(rows) if k % 5 != 3]
    elif order == "reversed runs":
        rows = [row for k in range(0, len(rows), 40) for row in reversed(rows[k : k + 40])]
    index = tmp_path / SESSIONS_NAME
    index.write_bytes(b"\n".join(map(orjson.dumps, rows)) + b"\n")
    reasons = {row["session_id"]: row["end_reason"] for row in rows}
    codes = {reason.reference_name: int(reason) for reason in EndReason}
    seen = 0
    for chunk in with_index(read_trace(restart_run.run_dir / "dataset.jsonl", chunk_rows=97), None, index):
        expected = [codes.get(reasons.get(name), int(EndReason.UNKNOWN)) for name in chunk.session_ids]
        assert chunk.end_reasons.tolist() == expected
        seen += chunk.num_sessions
    assert seen == len(_index(restart_run.run_dir / SESSIONS_NAME))
    if order == "some missing":
        assert len(reasons) < seen


@pytest.mark.parametrize("field, value", [("end_reason", ["x"]), ("link", {"kind": "restart"}),
                                          ("parent_session_id", [1]), ("class", {})])
def test_an_index_row_with_a_structured_value_is_a_located_error_for_its_readers(restart_run, tmp_path,
                                                                                 field, value):
    """report, compare and fit read sessions.jsonl as it is: a field that should be a name and is a
    list or an object stops them at its line (exit 3), with nothing written."""
    from click.testing import CliRunner

    from tracedsl.cli import cli

    run = tmp_path / "run"
    shutil.copytree(restart_run.run_dir, run)
    rows = _index(run / SESSIONS_NAME)
    rows[7][field] = value
    (run / SESSIONS_NAME).write_bytes(b"\n".join(map(orjson.dumps, rows)) + b"\n")
    for args in (["report", str(run), "-o", str(tmp_path / "out"), "--no-html"],
                 ["compare", str(run), str(run)],
                 ["fit", str(run), "--no-check", "-o", str(tmp_path / "fit.trace")]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 3, (args, result.output)
        assert f"sessions.jsonl:8:1: error[sessions-index-row]: {field} must be null" in result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "fit.trace").exists()
