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
