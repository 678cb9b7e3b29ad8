"""The JSONL writer prints exactly what orjson prints for the reference's row dicts."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import FIXTURE_RUNS, fixture_dir
from tracedsl.output.jsonl import (
    JsonlWriter,
    WrittenFileDiffers,
    hash_runs,
    read_back,
    render_chunk,
    render_chunk_rows,
    render_to_part,
)
from tracedsl.output.reader import read_trace
from tracedsl.trace import TraceChunk

ODD_FLOATS = [0.0, 0.05, 0.15, 0.25, 1e-7, 2.675, 123456789.25, 26836.14999, 99999.95, 1e11 + 0.05]


def expected_bytes(sessions) -> bytes:
    """Rows built as the reference's writer builds them, printed by orjson (the definition)."""
    out = b""
    for sid, group, restart, rows in sessions:
        for turn, (inp, outp, ids, value) in enumerate(rows):
            row = {"session_id": sid, "input_length": inp, "output_length": outp, "hash_ids": ids}
            if turn == 0:
                row["timestamp"] = round(value, 1)
                if group >= 0:
                    row["group_id"] = group
                if restart:
                    row["is_restart"] = True
            else:
                row["delay"] = round(value, 1)
            out += orjson.dumps(row) + b"\n"
    return out


def chunk_of(sessions) -> TraceChunk:
    rows = [row for *_, session_rows in sessions for row in session_rows]
    turns = [len(s[3]) for s in sessions]
    first = np.zeros(len(rows), dtype=bool)
    first[np.cumsum([0, *turns[:-1]])] = True
    values = np.array([r[3] for r in rows], dtype=np.float64)
    counts = [len(r[2]) for r in rows]
    return TraceChunk(
        session_ids=[s[0] for s in sessions],
        group_ids=np.array([s[1] for s in sessions], dtype=np.int64),
        is_restart=np.array([s[2] for s in sessions], dtype=bool),
        end_reasons=np.zeros(len(sessions), dtype=np.int8),
        row_offsets=np.concatenate(([0], np.cumsum(turns))).astype(np.int64),
        input_length=np.array([r[0] for r in rows], dtype=np.int64),
        output_length=np.array([r[1] for r in rows], dtype=np.int64),
        delay_ms=np.where(first, np.nan, values),
        timestamp_ms=np.where(first, values, np.nan),
        hash_offsets=np.concatenate(([0], np.cumsum(counts))).astype(np.int64),
        hash_ids=np.array([h for r in rows for h in r[2]], dtype=np.int64),
    )


def _ids():
    run = st.tuples(st.integers(0, 2**62), st.integers(0, 40)).map(lambda t: list(range(t[0], t[0] + t[1])))
    scattered = st.lists(st.integers(0, 2**63 - 1), max_size=6)
    return st.lists(st.one_of(run, scattered), max_size=3).map(lambda parts: [i for p in parts for i in p])


_value = st.one_of(st.sampled_from(ODD_FLOATS), st.floats(0, 1e9, allow_nan=False), st.floats(0, 1e13))
_row = st.tuples(st.integers(0, 2**40), st.integers(-5, 10**7), _ids(), _value)
_session = st.tuples(
    st.text(min_size=1, max_size=20), st.integers(-1, 10**6), st.booleans(), st.lists(_row, min_size=1, max_size=5)
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_session, min_size=1, max_size=8))
def test_fast_rendering_matches_orjson_rows(sessions):
    assert render_chunk(chunk_of(sessions)) == expected_bytes(sessions)


@settings(max_examples=50, deadline=None)
@given(st.lists(_session, min_size=1, max_size=4), st.sampled_from([-1.0, -0.04, 1e16, 5e15 + 0.5]))
def test_values_outside_the_fast_path_still_match(sessions, odd):
    sid, group, restart, rows = sessions[0]
    sessions[0] = (sid, group, restart, [(*rows[0][:3], odd), *rows[1:]])
    assert render_chunk(chunk_of(sessions)) == expected_bytes(sessions)


def test_odd_delays_print_like_python_round():
    rows = [(10, 5, [1], 0.0)] + [(10, 5, [i + 2], value) for i, value in enumerate(ODD_FLOATS)]
    text = render_chunk(chunk_of([("s", 0, False, rows)])).decode()
    delays = [orjson.loads(line)["delay"] for line in text.splitlines()[1:]]
    assert delays == [round(v, 1) for v in ODD_FLOATS]
    assert '"delay":0.1}' in text and '"delay":123456789.2}' in text


def test_writer_counts_rows_and_hashes_what_it_wrote(tmp_path):
    sessions = [("a", 3, False, [(600, 9, [0, 1], 0.0), (7, 1, [2], 12.34)]), ("b", -1, True, [(5, 5, [9], 0.0)])]
    path = tmp_path / "d.jsonl"
    with JsonlWriter(path) as writer:
        writer.write(chunk_of(sessions[:1]))
        writer.write(chunk_of(sessions[1:]))
    data = path.read_bytes()
    assert data == expected_bytes(sessions)
    assert writer.rows == 3 and writer.sessions == 2
    assert read_back(path, writer.pieces, writer.rows) == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("copy_range", [True, False], ids=["copy_file_range", "read-write"])
def test_bytes_printed_elsewhere_are_written_checked_and_counted_the_same(tmp_path, monkeypatch, copy_range):
    # What a worker process hands back (render_chunk's bytes, or a file of them from
    # render_to_part) must leave the writer exactly where printing the chunk itself would:
    # same file, pieces, rows, sessions and size; a part file is gone once appended.
    import errno
    import os

    if not copy_range:  # a file system (or platform) without copy_file_range between files
        def refuse(*args):
            raise OSError(errno.EXDEV, "cross-device")

        monkeypatch.setattr(os, "copy_file_range", refuse, raising=False)
    odd = [("é\"x", 7, True, [(1, 2, [3, 4, 5], 26836.14999), (0, 0, [], 0.05)])]
    chunks = [*_fast_engine_chunks(300), chunk_of(odd), chunk_of([("long" * 100, 1, False, [(3, 4, [1], 0.0)])])]
    parts = tmp_path / "parts"
    parts.mkdir()
    written = {}
    for how in ("here", "bytes", "part"):
        path = tmp_path / f"{how}.jsonl"
        with JsonlWriter(path) as writer:
            for chunk in chunks:
                rendered = (None if how == "here" else render_chunk(chunk) if how == "bytes"
                            else render_to_part(chunk, str(parts)))
                writer.write(chunk, rendered)
        written[how] = (path.read_bytes(), writer.pieces, writer.rows, writer.sessions, writer.bytes_written)
        assert read_back(path, writer.pieces, writer.rows) == hashlib.sha256(path.read_bytes()).hexdigest()
    data, pieces, rows, sessions, size = written["part"]
    assert written["here"] == written["bytes"] == written["part"]
    assert list(parts.iterdir()) == []
    assert len(pieces) == len(chunks) and sum(n for n, _ in pieces) == size == len(data)
    assert rows == data.count(b"\n") == sum(c.num_rows for c in chunks)
    assert sessions == sum(c.num_sessions for c in chunks)


def test_read_back_finds_a_changed_missing_or_extra_byte(tmp_path):
    path = tmp_path / "d.jsonl"
    chunks = _fast_engine_chunks(200)  # four chunks of 64 sessions or fewer
    assert len(chunks) > 2
    with JsonlWriter(path) as writer:
        for chunk in chunks:
            writer.write(chunk)
    data = path.read_bytes()
    first = writer.pieces[0][0]
    changed = bytearray(data)
    changed[first + 5] ^= 1  # inside the second piece
    for bad, says in ((bytes(changed), r"\(piece 2\)"), (data[:-1], rf"\(piece {len(chunks)}\)"),
                      (data + b"\n", "is longer than")):
        path.write_bytes(bad)
        with pytest.raises(WrittenFileDiffers, match=says):
            read_back(path, writer.pieces, writer.rows)
    path.write_bytes(data)
    with pytest.raises(WrittenFileDiffers, match="lines"):
        read_back(path, writer.pieces, writer.rows + 1)


def test_a_chunk_packed_for_printing_elsewhere_prints_the_same_bytes():
    import pickle

    from tracedsl.output.jsonl import packed_for_printing, render_packed

    for chunk in _fast_engine_chunks(300):
        packed = pickle.loads(pickle.dumps(packed_for_printing(chunk)))  # as a worker gets it
        assert packed.hash_ids.size == 0 < chunk.hash_ids.size
        assert render_packed(packed) == render_chunk(chunk)
    # Without the engine's runs (a foreign trace) or with runs that disagree, nothing is dropped.
    plain = chunk_of([("a", 0, False, [(1, 1, [5, 6, 9], 0.0), (1, 1, [], 2.0)])])
    assert packed_for_printing(plain) is plain and render_packed(plain) == render_chunk(plain)
    wrong = replace(chunk, extras={**chunk.extras, "hash_run_length": chunk.extras["hash_run_length"][:-1]})
    assert packed_for_printing(wrong).hash_ids.size == chunk.hash_ids.size
    assert render_packed(packed_for_printing(wrong)) == render_chunk(chunk)


def test_digit_words_spell_each_group_of_four_digits():
    from tracedsl.output.jsonl import _DIGIT_GROUP, _digit_table

    texts = [str(v).encode() for v in range(_DIGIT_GROUP)]
    texts += [f"{v:04d}".encode() for v in range(_DIGIT_GROUP)] + [b""]
    words, lengths = _digit_table()
    assert [w.tobytes().rstrip(b"\0") for w in words] == texts
    assert lengths.tolist() == [len(t) for t in texts]


def test_reference_fixtures_round_trip_byte_for_byte(tmp_path):
    for name in FIXTURE_RUNS:
        source = fixture_dir(name) / "dataset.jsonl"
        out = tmp_path / f"{name}.jsonl"
        with JsonlWriter(out) as writer:
            for chunk in read_trace(source, chunk_rows=1000):
                writer.write(chunk)
        assert out.read_bytes() == source.read_bytes(), name




def test_extreme_integers_and_fallbacks_match_orjson():
    big = 2**63 - 1
    sessions = [
        ("a", big, True, [(-(2**63), big, [big, 0, 5, 6, 7], 0.0), (big, -1, [], 1e11 + 0.05)]),
        ("é\"\\\n\x00", 0, False, [(1, 1, [10**k for k in range(19)], 9.95), (0, 0, [], 0.04)]),
    ]
    assert render_chunk(chunk_of(sessions)) == expected_bytes(sessions)
    long_id = [("x" * 300, 1, False, [(3, 4, [1, 2], 0.0)])]  # wider than the fast glue takes
    assert render_chunk(chunk_of(long_id + sessions)) == expected_bytes(long_id + sessions)
    negative_id = [("n", 1, False, [(3, 4, [-3, 2], 0.0)])]
    assert render_chunk(chunk_of(negative_id + sessions)) == expected_bytes(negative_id + sessions)


def test_hash_runs_are_maximal_runs_of_consecutive_ids_per_row():
    sessions = [("a", 0, False, [(1, 1, [5, 6, 7, 9, 10, 3], 0.0), (1, 1, [11, 12], 2.0), (1, 1, [], 3.0)])]
    offsets, start, length = hash_runs(chunk_of(sessions))
    assert offsets.tolist() == [0, 3, 4, 4]
    assert start.tolist() == [5, 9, 3, 11] and length.tolist() == [3, 2, 1, 2]


def _fast_engine_chunks(sessions: int):
    from tracedsl.engine import RunRequest
    from tracedsl.engine.fast import FastEngine
    from tracedsl.loading import load_spec

    request = RunRequest(load_spec("default").params, sessions, 7)
    return list(FastEngine(chunk_sessions=64).generate(request))


def test_engine_runs_describe_the_same_ids_and_print_the_same_bytes():
    for chunk in _fast_engine_chunks(300):
        offsets, start, length = hash_runs(chunk)
        assert "hash_run_offsets" in chunk.extras
        row_of_run = np.repeat(np.arange(chunk.num_rows), np.diff(offsets))
        expanded = np.repeat(start - np.cumsum(length) + length, length) + np.arange(length.sum())
        assert np.array_equal(expanded, chunk.hash_ids)
        assert np.array_equal(np.bincount(row_of_run, length, chunk.num_rows), np.diff(chunk.hash_offsets))
        without = replace(chunk, extras={})
        assert render_chunk(chunk) == render_chunk(without) == render_chunk_rows(chunk)
        wrong = replace(chunk, extras={**chunk.extras, "hash_run_length": length[:-1]})
        assert render_chunk(wrong) == render_chunk(chunk)  # inconsistent runs are not trusted
