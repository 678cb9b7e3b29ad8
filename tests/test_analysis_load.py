"""The analysis loader (tracedsl/analysis/load.py) and conversations from hash-id chains (chains.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest

from tracedsl.analysis.chains import chain_sessions
from tracedsl.analysis.load import load
from tracedsl.diagnostics import DiagnosticError

FIXTURES = Path(__file__).parent / "fixtures"
MOONCAKE = FIXTURES / "mooncake-fast25"


def _slow_chains(rows: list[list[int]]) -> list[int]:
    """The rule of chains.py, row by row in plain Python: an independent check of the arrays."""
    writer: dict[int, int] = {}
    session: list[int] = []
    last_of: dict[int, int] = {}
    for i, ids in enumerate(rows):
        k = 0
        while k < len(ids) and ids[k] in writer:
            k += 1
        chain = None
        if k:
            j = writer[ids[k - 1]]
            if len(rows[j]) >= 2 and k >= len(rows[j]) - 1 and last_of.get(session[j]) == j:
                chain = session[j]
        if chain is None:
            chain = len(last_of)
        session.append(chain)
        last_of[chain] = i
        for x in ids:
            writer.setdefault(x, i)
    return session


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    return path


@pytest.mark.parametrize("name", ["conversation_trace.jsonl", "synthetic_trace.jsonl"])
def test_chains_of_the_mooncake_traces_agree_with_the_plain_rule(name):
    trace = load(MOONCAKE / name)
    assert trace.format == "mooncake" and trace.chained and trace.block_size == 512
    rows = [orjson.loads(line)["hash_ids"] for line in (MOONCAKE / name).read_bytes().splitlines()]
    chains = chain_sessions(trace.chunks(chunk_rows=1000))  # several chunks: ids carried across
    assert chains.session.tolist() == _slow_chains(rows)
    linked = chains.parent >= 0
    assert (chains.turn[linked] == chains.turn[chains.parent[linked]] + 1).all()
    assert (chains.turn[~linked] == 0).all()


def test_the_conversation_trace_has_the_chains_counted_by_hand():
    chains = chain_sessions(load(MOONCAKE / "conversation_trace.jsonl").chunks())
    assert chains.num_rows == 12031 and chains.num_sessions == 8695
    assert np.bincount(chains.turns_per_session())[1:4].tolist() == [6451, 1619, 406]


def test_a_branch_starts_its_own_chain_and_one_block_rows_do_not_link(tmp_path):
    rows = [
        {"timestamp": 0, "input_length": 1500, "output_length": 10, "hash_ids": [0, 1, 2]},
        {"timestamp": 1, "input_length": 2500, "output_length": 10, "hash_ids": [0, 1, 3, 4, 5]},  # extends row 0
        {"timestamp": 2, "input_length": 2500, "output_length": 10, "hash_ids": [0, 1, 6, 7, 8]},  # a branch
        {"timestamp": 3, "input_length": 300, "output_length": 10, "hash_ids": [0]},
        {"timestamp": 4, "input_length": 900, "output_length": 10, "hash_ids": [0, 9]},  # row 3 has one block
        {"timestamp": 5, "input_length": 3100, "output_length": 10, "hash_ids": [0, 1, 3, 4, 5, 10, 11]},
    ]
    chains = chain_sessions(load(_write(tmp_path / "t.jsonl", rows)).chunks())
    assert chains.session.tolist() == [0, 0, 1, 2, 3, 0]
    assert chains.parent.tolist() == [-1, 0, -1, -1, -1, 1]
    assert chains.turn.tolist() == [0, 1, 0, 0, 0, 2]
    assert chains.shared_blocks.tolist() == [0, 2, 2, 1, 1, 5]


def test_large_ids_are_renumbered_not_indexed(tmp_path):
    big = 1 << 40
    rows = [
        {"timestamp": 0, "input_length": 1024, "output_length": 1, "hash_ids": [big, big + 1]},
        {"timestamp": 1, "input_length": 2048, "output_length": 1, "hash_ids": [big, big + 1, 7, 8]},
    ]
    chains = chain_sessions(load(_write(tmp_path / "t.jsonl", rows), block_size=512).chunks())
    assert chains.session.tolist() == [0, 0]


def test_kinds_of_trace(tmp_path):
    aiperf = load(FIXTURES / "aiperf-0.13.0" / "default_s1_n300")
    assert (aiperf.format, aiperf.sessions_from, aiperf.block_size_from) == ("aiperf", "session_id", "the manifest")
    assert aiperf.params is not None and aiperf.run_dir is not None
    bare = load(aiperf.dataset.parent / "dataset.jsonl")
    assert bare.format == "aiperf"  # the manifest beside a dataset file counts
    copied = tmp_path / "copy.jsonl"
    copied.write_bytes(aiperf.dataset.read_bytes())
    foreign = load(copied)
    assert (foreign.format, foreign.sessions_from, foreign.block_size_from) == ("mooncake", "session_id", "the rows")
    sessions = sum(chunk.num_sessions for chunk in foreign.chunks())
    assert sessions == 300


def test_a_tracelab_file_is_recognised_by_its_first_row(tmp_path):
    pytest.importorskip("tracedsl.imports.tracelab")
    path = _write(tmp_path / "calls.jsonl", [{"session_id": "claude:x", "round_index": 0, "input_tokens_total": 10}])
    trace = load(path)
    assert trace.format == "tracelab" and trace.block_size_from == "the importer's default"
    assert load(path, block_size=16).block_size == 16


def test_missing_and_empty_inputs_fail_located(tmp_path):
    with pytest.raises(DiagnosticError) as error:
        load(tmp_path / "nope.jsonl")
    assert error.value.diagnostics[0].file.endswith("nope.jsonl")
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    with pytest.raises(DiagnosticError):
        load(empty)
