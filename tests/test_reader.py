"""Reading any Mooncake trace into TraceChunks: sessions gathered, foreign traces, located errors."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import MOONCAKE, fixture_dir
from tracedsl.diagnostics import DiagnosticError
from tracedsl.output.reader import read_trace


def _write(tmp_path, text: str):
    path = tmp_path / "t.jsonl"
    path.write_text(text)
    return path


def test_reference_fixture_reads_whole_sessions():
    path = fixture_dir("manifest1k_s3_n300") / "dataset.jsonl"
    chunks = list(read_trace(path, chunk_rows=500))
    assert sum(c.num_rows for c in chunks) == 3863
    assert sum(c.num_sessions for c in chunks) == 318
    assert sum(int(c.is_restart.sum()) for c in chunks) == 18  # the README's 18 continuations
    for chunk in chunks:
        chunk.validate_shape()
        first = chunk.row_offsets[:-1]
        assert np.all(chunk.timestamp_ms[first] == 0.0)
        assert not np.isnan(np.delete(chunk.delay_ms, first)).any()


def test_foreign_trace_rows_are_sessions_of_their_own():
    path = MOONCAKE / "synthetic_trace.jsonl"
    if not path.exists():
        pytest.skip("mooncake fixtures missing")
    chunks = list(read_trace(path))
    assert sum(c.num_sessions for c in chunks) == sum(c.num_rows for c in chunks) == 3993
    assert chunks[0].session_ids[0] == "row-1"
    assert chunks[0].timestamp_ms[2] == 40.0  # timestamps on every row, as integers in the file
    assert np.all(chunks[0].group_ids == -1)


def test_non_contiguous_session_rows_are_gathered_in_file_order(tmp_path):
    path = _write(tmp_path, "\n".join([
        '{"session_id":"a","input_length":10,"output_length":1,"hash_ids":[0],"timestamp":0.0}',
        '{"session_id":"b","input_length":20,"output_length":2,"hash_ids":[1],"timestamp":0.0}',
        '{"session_id":"a","input_length":30,"output_length":3,"hash_ids":[2],"delay":5.5}',
        "",
    ]))
    (chunk,) = list(read_trace(path))
    assert chunk.session_ids == ["a", "b"]
    assert chunk.input_length.tolist() == [10, 30, 20]
    assert chunk.row_offsets.tolist() == [0, 2, 3]
    assert chunk.hash_ids.tolist() == [0, 2, 1]


@pytest.mark.parametrize(
    "line, field",
    [
        ('{"session_id":"a","input_length":"10","output_length":1}', "input_length"),
        ('{"session_id":"a","input_length":10,"output_length":1,"hash_ids":[1,true]}', "hash_ids[1]"),
        ('{"session_id":"a","text_input":"hi"}', "input_length"),
        ('{"session_id":"a","input_length":10,"delay":-1}', "delay"),
    ],
)
def test_bad_row_is_located(tmp_path, line, field):
    good = '{"session_id":"z","input_length":10,"output_length":1,"hash_ids":[0],"timestamp":0.0}'
    path = _write(tmp_path, good + "\n" + line + "\n")
    with pytest.raises(DiagnosticError) as caught:
        list(read_trace(path))
    diag = caught.value.diagnostics[0]
    assert diag.span.line == 2 and diag.path == field and diag.file == str(path)


def test_bad_json_is_located(tmp_path):
    path = _write(tmp_path, '{"input_length":1}\n{"input_length": 1,,}\n')
    with pytest.raises(DiagnosticError) as caught:
        list(read_trace(path))
    diag = caught.value.diagnostics[0]
    assert diag.code == "bad-json" and diag.span.line == 2 and diag.span.column > 1


def _plain_reading(path):
    """The trace read the obvious way: every row parsed, sessions gathered in first-appearance order."""
    import orjson

    sessions: dict[str, list[dict]] = {}
    for number, line in enumerate(path.read_bytes().splitlines(), 1):
        if line.strip():
            row = orjson.loads(line)
            sessions.setdefault(row.get("session_id") or f"row-{number}", []).append(row)
    return sessions


@pytest.mark.parametrize("chunk_rows", [1, 700, 16384])
def test_reader_agrees_with_a_plain_reading(chunk_rows):
    path = fixture_dir("manifest1k_s3_n300") / "dataset.jsonl"
    expected = _plain_reading(path)
    chunks = list(read_trace(path, chunk_rows=chunk_rows))
    names = [name for c in chunks for name in c.session_ids]
    assert names == list(expected)
    rows = [row for session in expected.values() for row in session]
    assert np.concatenate([c.input_length for c in chunks]).tolist() == [r["input_length"] for r in rows]
    assert np.concatenate([c.hash_ids for c in chunks]).tolist() == [i for r in rows for i in r["hash_ids"]]
    delays = np.concatenate([c.delay_ms for c in chunks])
    assert np.array_equal(delays, [r.get("delay", np.nan) for r in rows], equal_nan=True)
    restarts = np.concatenate([c.is_restart for c in chunks]).tolist()
    assert restarts == [s[0].get("is_restart") is True for s in expected.values()]


def test_rows_that_are_not_plain_are_read_too(tmp_path, monkeypatch):
    from tracedsl.output import lines as lines_module
    from tracedsl.output import reader

    monkeypatch.setattr(reader, "_BATCH_ROWS", 2)
    monkeypatch.setattr(lines_module, "_BLOCK_BYTES", 64)  # both passes read blocks of lines.py
    path = _write(tmp_path, "\n".join([
        # a nested object naming another session: the first pass must not take its id
        '{"session_id":"a","input_length":10,"hash_ids":[0],"timestamp":0,"extra":{"session_id":"x"}}',
        '{"input_length":5,"type":"mooncake_trace","hash_ids":[7]}',
        '{"session_id":"b","input_length":20,"hash_ids":[1],"timestamp":0,"is_restart":true}',
        '{"session_id":"a","input_length":30,"hash_ids":[2,3],"delay":1}',
        '{"session_id":"b","input_length":40,"hash_ids":[4],"delay":2}',
        "",
    ]))
    chunks = list(read_trace(path, chunk_rows=1))
    assert [n for c in chunks for n in c.session_ids] == ["a", "row-2", "b"]
    assert np.concatenate([c.input_length for c in chunks]).tolist() == [10, 30, 5, 20, 40]
    assert np.concatenate([c.is_restart for c in chunks]).tolist() == [False, False, True]
    assert np.concatenate([c.hash_ids for c in chunks]).tolist() == [0, 2, 3, 7, 1, 4]


@pytest.mark.parametrize(
    "line, field",
    [
        ('{"session_id":"a","input_length":10,"hash_ids":[1,false],"is_restart":true}', "hash_ids[1]"),
        ('{"session_id":"a","input_length":10,"hash_ids":[1,2.0]}', "hash_ids[1]"),
        ('{"session_id":"a","input_length":10,"hash_ids":[9223372036854775808]}', "hash_ids[0]"),
        ('{"session_id":"a","input_length":9223372036854775808}', "input_length"),
        ('{"session_id":"a","input_length":10,"output_length":0}', "output_length"),
    ],
)
def test_first_bad_row_of_a_batch_is_the_one_reported(tmp_path, line, field):
    good = '{"session_id":"z","input_length":10,"output_length":1,"hash_ids":[0],"timestamp":0.0}'
    later = '{"session_id":"y","input_length":"10"}'  # also bad, but after
    path = _write(tmp_path, "\n".join([good] * 5 + [line, good, later]) + "\n")
    with pytest.raises(DiagnosticError) as caught:
        list(read_trace(path))
    diag = caught.value.diagnostics[0]
    assert diag.span.line == 6 and diag.path == field


def test_a_short_last_line_is_a_located_error_not_a_crash(tmp_path):
    # the first pass reads a few words past each session id: the padding must hold them
    path = _write(tmp_path, '{"session_id":"a","input_length":5,"hash_ids":[1]}\n{"session_id":""}\n')
    with pytest.raises(DiagnosticError) as caught:
        list(read_trace(path))
    assert caught.value.diagnostics[0].span.line == 2


@pytest.mark.parametrize("block_bytes, batch_rows", [(1500, 7), (40_000, 300), (1 << 21, 4096)])
@pytest.mark.parametrize("chunk_rows", [1, 500])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_interleaved_sessions_are_gathered_whole_whatever_the_blocks(tmp_path, monkeypatch, block_bytes,
                                                                      batch_rows, chunk_rows, seed):
    """Rows moved elsewhere, rows of no session, blank and spaced-out lines: every session comes whole,
    once, in first-appearance order, however the file's blocks and batches cut its runs."""
    import random

    from tracedsl.output import lines as lines_module
    from tracedsl.output import reader as reader_module

    monkeypatch.setattr(lines_module, "_BLOCK_BYTES", block_bytes)
    monkeypatch.setattr(reader_module, "_BATCH_ROWS", batch_rows)
    rng = random.Random(seed)
    lines = (fixture_dir("manifest1k_s3_n300") / "dataset.jsonl").read_bytes().splitlines()
    for _ in range(40):  # a row moved: its session now comes in two or three runs
        row = lines.pop(rng.randrange(len(lines)))
        lines.insert(rng.randrange(len(lines)), row)
    for _ in range(5):
        lines.insert(rng.randrange(len(lines)), b'{"input_length":3,"output_length":1,"hash_ids":[5],"timestamp":1}')
        lines.insert(rng.randrange(len(lines)), b"")
        at = rng.randrange(len(lines))
        lines[at] = lines[at].replace(b'","input_length"', b'", "input_length"')  # not plain
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    expected = _plain_reading(path)
    chunks = list(read_trace(path, chunk_rows=chunk_rows))
    names = [name for c in chunks for name in c.session_ids]
    assert names == list(expected)  # each session once: whole in one chunk
    for chunk in chunks:
        for index, name in enumerate(chunk.session_ids):
            start, end = chunk.row_offsets[index], chunk.row_offsets[index + 1]
            assert chunk.input_length[start:end].tolist() == [r["input_length"] for r in expected[name]]


@pytest.mark.parametrize("block_bytes", [700, 1 << 21])
@pytest.mark.parametrize("seed", [1, 2])
def test_a_survey_is_the_first_pass_and_the_block_size_evidence_in_one_reading(tmp_path, monkeypatch,
                                                                               block_bytes, seed):
    """reader.survey (report's and compare's block-size inference) learns what read_trace's first
    pass does, and file_block_size's evidence; the next read_trace of the file uses it, once."""
    import random

    from tracedsl.output import blocksize
    from tracedsl.output import lines as lines_module
    from tracedsl.output import reader as reader_module

    monkeypatch.setattr(lines_module, "_BLOCK_BYTES", block_bytes)
    monkeypatch.setattr(reader_module, "_SURVEYS", {})  # other tests' surveys left waiting
    rng = random.Random(seed)
    lines = (fixture_dir("manifest1k_s3_n300") / "dataset.jsonl").read_bytes().splitlines()
    for _ in range(60):
        row = lines.pop(rng.randrange(len(lines)))
        lines.insert(rng.randrange(len(lines)), row)
    for _ in range(4):
        lines.insert(rng.randrange(len(lines)), b'{"input_length":3,"output_length":1,"hash_ids":[5],"timestamp":1}')
        at = rng.randrange(len(lines))
        lines[at] = lines[at].replace(b'","input_length"', b'", "input_length"')  # not plain
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    first_pass = reader_module._repeated_sessions(path)
    assert len(first_pass) > 20  # the moved rows' sessions
    evidence = reader_module.survey(path)
    assert evidence.finding() == blocksize.file_block_size(path)
    assert reader_module._SURVEYS == {reader_module._file_key(path): first_pass}

    calls = []
    monkeypatch.setattr(reader_module, "_repeated_sessions", lambda p: calls.append(p) or first_pass)
    expected = _plain_reading(path)
    assert [n for c in read_trace(path) for n in c.session_ids] == list(expected)
    assert calls == [] and reader_module._SURVEYS == {}  # the survey was read, and let go
    list(read_trace(path))
    assert calls == [path]  # a second reading makes its own first pass


def test_a_survey_of_a_file_since_changed_is_not_used(tmp_path, monkeypatch):
    from tracedsl.output import reader as reader_module

    monkeypatch.setattr(reader_module, "_SURVEYS", {})

    path = _write(tmp_path, '{"session_id":"a","input_length":5,"hash_ids":[1]}\n'
                            '{"session_id":"b","input_length":5,"hash_ids":[2]}\n')
    reader_module.survey(path)
    path.write_text('{"session_id":"a","input_length":5,"hash_ids":[1]}\n'
                    '{"session_id":"b","input_length":5,"hash_ids":[2]}\n'
                    '{"session_id":"a","input_length":7,"hash_ids":[1,3]}\n')
    chunks = list(read_trace(path))
    assert [n for c in chunks for n in c.session_ids] == ["a", "b"]
    assert np.concatenate([c.input_length for c in chunks]).tolist() == [5, 7, 5]
