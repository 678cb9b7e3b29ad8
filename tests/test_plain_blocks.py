"""Plain blocks read straight from the bytes: exactly orjson's reading, or None; and the same findings."""

from __future__ import annotations

import random
import sys

import numpy as np
import orjson
import pytest

from tests.conftest import FIXTURE_RUNS, fixture_dir
from tracedsl.engine import RunRequest
from tracedsl.engine.fast import FastEngine
from tracedsl.loading import load_spec
from tracedsl.output import lines as lines_module
from tracedsl.output import plain as plain_module
from tracedsl.output import validate as validate_module
from tracedsl.output.jsonl import render_chunk
from tracedsl.output.plain import plain_block
from tracedsl.output.validate import validate_file


def _trace(sessions: int = 60, seed: int = 3, spec: str = "default") -> bytes:
    request = RunRequest(load_spec(spec).params, sessions, seed)
    return b"".join(render_chunk(chunk) for chunk in FastEngine().generate(request))


def _orjson_columns(text: bytes) -> dict:
    rows = [orjson.loads(line) for line in text.split(b"\n")]
    names = [row["session_id"] for row in rows]
    starts = [0] + [i for i in range(1, len(rows)) if names[i] != names[i - 1]]
    return {
        "rows": len(rows),
        "session_starts": starts,
        "session_names": [names[i] for i in starts],
        "input_length": [row["input_length"] for row in rows],
        "output_length": [row["output_length"] for row in rows],
        "timestamp": [float(row.get("timestamp", "nan")) for row in rows],
        "delay": [float(row.get("delay", "nan")) for row in rows],
        "group_id": [row.get("group_id", -1) for row in rows],
        "is_restart": [row.get("is_restart", False) for row in rows],
        "id_counts": [len(row["hash_ids"]) for row in rows],
        "ids": [i for row in rows for i in row["hash_ids"]],
    }


def _columns(block) -> dict:
    return {
        "rows": block.rows,
        "session_starts": block.session_starts.tolist(),
        "session_names": block.session_names,
        "input_length": block.input_length.tolist(),
        "output_length": block.output_length.tolist(),
        "timestamp": block.timestamp.tolist(),
        "delay": block.delay.tolist(),
        "group_id": block.group_id.tolist(),
        "is_restart": block.is_restart.tolist(),
        "id_counts": block.id_counts.tolist(),
        "ids": block.ids.tolist(),
    }


@pytest.fixture(params=["numpy", "compiled"])
def plain_reader(request):
    """Each test that takes it runs with plain.py's numpy passes and with the compiled reader."""
    plain_module.use_compiled(request.param == "compiled")
    if request.param == "compiled":
        assert plain_module._compiled_reader(0) is not None, "numba is a dependency: the compiled reader loads"
    yield request.param
    plain_module.use_compiled(None)


def _same(block, text: bytes) -> None:
    expected, got = _orjson_columns(text), _columns(block)
    for name in ("timestamp", "delay"):
        assert np.array_equal(got.pop(name), expected.pop(name), equal_nan=True), name
    assert got == expected


@pytest.mark.parametrize("spec", ["default", "aiperf-defaults", "inference-day-2026"])
def test_tracedsl_runs_read_as_orjson_reads_them(spec, plain_reader):
    text = _trace(spec=spec).rstrip(b"\n")
    block = plain_block(text)
    assert block is not None
    _same(block, text)


@pytest.mark.parametrize("name", FIXTURE_RUNS)
def test_aiperf_datasets_read_as_orjson_reads_them(name, plain_reader):
    text = (fixture_dir(name) / "dataset.jsonl").read_bytes().rstrip(b"\n")
    block = plain_block(text)
    assert block is not None
    _same(block, text)


@pytest.mark.parametrize(
    "line",
    [
        '{"session_id":"a","input_length":12,"output_length":3,"hash_ids":[]}',
        '{"session_id":"","input_length":1,"output_length":1,"hash_ids":[0],"timestamp":5}',
        '{"session_id":"a b","input_length":1,"output_length":1,"hash_ids":[0]}',  # a blank: not plain
        '{"session_id":"x","input_length":9999999999999999,"output_length":1,"hash_ids":[1234567890123456]}',
        '{"session_id":"x","input_length":1,"output_length":1,"hash_ids":[7],"timestamp":0.125,"group_id":12}',
        '{"session_id":"x","input_length":1,"output_length":1,"hash_ids":[7],"delay":123456789012.345}',
        '{"session_id":"x","input_length":1,"output_length":1,"hash_ids":[7],"is_restart":true}',
        '{"session_id":"x","input_length":1,"output_length":1,"hash_ids":[7],"delay":1.5,"timestamp":2}',
        '{"session_id":"x","input_length":1,"output_length":1,"hash_ids":[7],"group_id":1,"group_id":2}',
        '{"session_id":"x","input_length":01,"output_length":1,"hash_ids":[7]}',
        '{"session_id":"x","input_length":1,"output_length":1,"hash_ids":[7,-1]}',
        '{"session_id":"x","input_length":1,"output_length":1,"hash_ids":[7,12345678901234567]}',
        '{"session_id":"x","input_length":1,"output_length":1,"hash_ids":[7],"delay":1e3}',
        '{"session_id":"x","input_length":1,"output_length":1,"hash_ids":[7],"delay":-0.0}',
        '{"session_id":"x","input_length":1,"output_length":1,"hash_ids":[7],"is_restart":false}',
        '{"session_id":"x:1","input_length":1,"output_length":1,"hash_ids":[7]}',
        '{"session_id":"x","input_length":1,"output_length":1,"hash_ids":[7],"extra":{}}',
        '{"input_length":1,"output_length":1,"hash_ids":[7]}',
    ],
)
def test_a_line_is_plain_only_when_orjson_reads_it_the_same(line, plain_reader):
    text = (_trace(3).rstrip(b"\n") + b"\n" + line.encode())
    block = plain_block(text)
    try:
        _orjson_columns(text)
    except (orjson.JSONDecodeError, KeyError):
        assert block is None
        return
    if block is not None:
        _same(block, text)


def test_mutated_blocks_are_refused_or_read_exactly(plain_reader):
    """Random bytes changed, dropped or doubled: plain_block says None, or reads what orjson reads."""
    text = _trace(8).rstrip(b"\n")
    alphabet = b'0123456789.,:[]{}"-e \ttrux\n\\'
    rng = random.Random(11)
    read = 0
    for _ in range(3000):
        data = bytearray(text)
        for _ in range(rng.choice((1, 1, 2, 3))):
            at = rng.randrange(len(data))
            action = rng.random()
            if action < 0.5:
                data[at] = rng.choice(alphabet)
            elif action < 0.75:
                del data[at]
            else:
                data.insert(at, data[at])
        data = bytes(data)
        block = plain_block(data)
        try:
            expected_ok = all(type(orjson.loads(line)) is dict for line in data.split(b"\n"))
            _orjson_columns(data)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            expected_ok = False
        if block is None:
            continue
        assert expected_ok, data
        _same(block, data)
        read += 1
    assert read > 100  # many mutations keep the block plain (a digit for a digit)


def _random_row(rng: random.Random) -> bytes:
    """A row of plain shape with values at the edges: 1 to 16 digits, decimals of up to 15."""
    def integer() -> str:
        return str(rng.choice((0, rng.randrange(10), rng.randrange(10**8, 10**9), rng.randrange(10**15, 10**16),
                               rng.randrange(1, 10 ** rng.randrange(1, 17)))))

    def number() -> str:
        digits = rng.randrange(1, 16)
        whole = rng.randrange(10**digits)
        if rng.random() < 0.3:
            return str(whole)
        places = rng.randrange(1, 15 - len(str(whole)) + 1) if len(str(whole)) < 15 else 0
        return f"{whole}.{rng.randrange(10**places):0{places}d}" if places else str(whole)

    name = "".join(rng.choice("abc-_:,]x 09") for _ in range(rng.choice((0, 1, 8, 12, 17, 24, 25, 40))))
    row = (f'{{"session_id":"{name}","input_length":{integer()},"output_length":{integer()},'
           f'"hash_ids":[{",".join(integer() for _ in range(rng.choice((0, 1, 2, 13, 40))))}]')
    for key, value in (("timestamp", number), ("delay", number), ("group_id", integer)):
        if rng.random() < 0.5:
            row += f',"{key}":{value()}'
    return (row + (',"is_restart":true' if rng.random() < 0.2 else "") + "}").encode()


def test_random_rows_at_the_edges_read_as_orjson_reads_them(plain_reader):
    rng = random.Random(5)
    refused = 0
    for _ in range(300):
        text = b"\n".join(_random_row(rng) for _ in range(rng.choice((1, 2, 7, 30))))
        block = plain_block(text)
        if block is None:  # numpy's passes leave long names and commas or "]" in one to the rows
            refused += 1
            assert plain_reader == "numpy"
            continue
        _same(block, text)
    assert refused < 300


@pytest.mark.parametrize("name", ["a,b", "x]", "n" * 25, "session:with,all]of-them " * 3])
def test_the_compiled_reader_reads_any_session_id_without_escapes(name):
    text = (_trace(3).rstrip(b"\n") + b"\n" + b'{"session_id":"' + name.encode()
            + b'","input_length":1,"output_length":1,"hash_ids":[7]}')
    plain_module.use_compiled(True)
    try:
        block = plain_block(text)
    finally:
        plain_module.use_compiled(None)
    assert block is not None and block.session_names[-1] == name
    _same(block, text)


def test_a_process_turns_to_the_compiled_reader_once_it_has_read_enough(monkeypatch):
    monkeypatch.setattr(plain_module, "COMPILE_AFTER_BYTES", 100_000)
    monkeypatch.setattr(plain_module._Compiled, "read", 0)
    monkeypatch.setattr(plain_module._Compiled, "reader", None)
    text = _trace(4).rstrip(b"\n")
    assert 0 < len(text) < 100_000
    plain_block(text)
    assert plain_module._Compiled.reader is None  # one block: still numpy
    for _ in range(100_000 // len(text) + 1):
        plain_block(text)
    assert plain_module._Compiled.reader is not None
    _same(plain_block(text), text)


def test_without_numba_the_numpy_passes_read_the_same(monkeypatch):
    monkeypatch.setitem(sys.modules, "tracedsl.output.plain_compiled", None)  # import fails
    monkeypatch.setattr(plain_module._Compiled, "reader", None)
    monkeypatch.setattr(plain_module._Compiled, "failed", False)
    monkeypatch.setattr(plain_module._Compiled, "forced", True)
    text = _trace(4).rstrip(b"\n")
    block = plain_block(text)
    assert plain_module._Compiled.failed and plain_module._Compiled.reader is None
    _same(block, text)


def _both_ways(path, monkeypatch, expect_plain: bool = True, **options) -> tuple[dict, dict]:
    taken = []
    plain = validate_module._Checker.plain

    def counted(self, first, block):
        taken.append(plain(self, first, block))
        return taken[-1]

    with monkeypatch.context() as patch:
        patch.setattr(validate_module._Checker, "plain", counted)
        fast = validate_file(path, **options).to_dict()
    assert any(taken) == expect_plain, taken
    with monkeypatch.context() as patch:
        patch.setattr(validate_module, "plain_padded", lambda padded: None)
        slow = validate_file(path, **options).to_dict()
    return fast, slow


def _edited(text: bytes, rng: random.Random) -> bytes:
    """A run's rows with the findings validate knows how to word, here and there."""
    rows = [orjson.loads(line) for line in text.splitlines()]
    for row in rows:
        pick = rng.random()
        if pick < 0.01:
            row.pop("delay", None)
        elif pick < 0.015:
            row["output_length"] = 0
        elif pick < 0.02:
            row["hash_ids"] = row["hash_ids"][:-1] or [1]
        elif pick < 0.025 and row["hash_ids"]:
            row["hash_ids"][0] = 3  # a partial block elsewhere: size conflicts
        elif pick < 0.03:
            row["input_length"] += row["input_length"]
    lines = [orjson.dumps(row) for row in rows]
    for _ in range(3):
        at = rng.randrange(len(lines))
        lines.insert(at, lines[rng.randrange(len(lines))])  # a session out of place
    lines.insert(rng.randrange(len(lines)), b"")
    lines.insert(rng.randrange(len(lines)), b'{"session_id":"x","input_length":1,"output_length":1,"hash_ids":[1.5]}')
    return b"\n".join(lines) + b"\n"


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("max_errors", [3, 50])
def test_validate_finds_the_same_with_and_without_plain_blocks(tmp_path, monkeypatch, seed, max_errors, plain_reader):
    # small blocks and batches: plain and row-by-row blocks alternate, batches span both
    monkeypatch.setattr(lines_module, "_BLOCK_BYTES", 3000)
    monkeypatch.setattr(validate_module, "_BATCH_ROWS", 37)
    rng = random.Random(seed)
    path = tmp_path / "trace.jsonl"
    path.write_bytes(_edited(_trace(40, seed), rng))
    fast, slow = _both_ways(path, monkeypatch, max_errors=max_errors)
    assert fast == slow
    assert fast["error_counts"] and fast["warning_counts"]


def test_validate_of_a_clean_run_is_the_same_with_and_without_plain_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(lines_module, "_BLOCK_BYTES", 5000)
    monkeypatch.setattr(validate_module, "_BATCH_ROWS", 50)
    path = tmp_path / "trace.jsonl"
    path.write_bytes(_trace(80))
    for block_size in (None, 512, 64):
        fast, slow = _both_ways(path, monkeypatch, block_size=block_size)
        assert fast == slow


def test_validate_of_cumulative_rows_is_the_same_with_and_without_plain_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(lines_module, "_BLOCK_BYTES", 400)
    rows = []
    for session in range(6):
        ids: list[int] = []
        for turn in range(4):
            ids = ids + [1000 * session + turn]
            rows.append(orjson.dumps({"session_id": f"s{session}", "input_length": 512 * len(ids),
                                      "output_length": 7, "hash_ids": ids,
                                      **({"timestamp": 0.0} if turn == 0 else {"delay": 1.0})}))
    path = tmp_path / "trace.jsonl"
    path.write_bytes(b"\n".join(rows) + b"\n")
    fast, slow = _both_ways(path, monkeypatch, expect_plain=False)  # those blocks are read row by row
    assert fast == slow and fast["warning_counts"].get("cumulative-input") == 6


def test_a_run_directory_is_the_same_with_and_without_plain_blocks(tmp_path, monkeypatch, plain_reader):
    from click.testing import CliRunner

    from tracedsl.cli import cli

    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["run", "default", "-n", "300", "--seed", "5", "-o", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    dataset = next(out.rglob("dataset.jsonl"))
    monkeypatch.setattr(lines_module, "_BLOCK_BYTES", 20000)
    fast, slow = _both_ways(dataset, monkeypatch)
    assert fast == slow and fast["valid"] and fast["sessions_index"]
    # a sessions.jsonl that disagrees: its findings come the same way too
    index = dataset.parent / "sessions.jsonl"
    lines = index.read_bytes().splitlines()
    del lines[7]
    index.write_bytes(b"\n".join(lines) + b"\n")
    fast, slow = _both_ways(dataset, monkeypatch)
    assert fast == slow and not fast["valid"]


@pytest.mark.parametrize("max_errors", [3, 50])
def test_sessions_index_findings_are_the_same_in_bulk_and_one_by_one(tmp_path, monkeypatch, max_errors):
    # IndexChecker.start_many compares a plain block's sessions at once when none has a finding,
    # and leaves a block with one to start(); both ways must find and word the same
    from click.testing import CliRunner

    from tracedsl.cli import cli
    from tracedsl.output import sessions as sessions_module

    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["run", "default", "-n", "400", "--seed", "6", "-o", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    dataset = next(out.rglob("dataset.jsonl"))
    index = dataset.parent / "sessions.jsonl"
    rows = [orjson.loads(line) for line in index.read_bytes().splitlines()]
    rng = random.Random(max_errors)
    edits = [lambda row: row.update(turns=row["turns"] + 1), lambda row: row.update(first_row=row["first_row"] + 2),
             lambda row: row.update(link="restart", parent_session_id=rows[0]["session_id"]),
             lambda row: row.update(turns=float(row["turns"])), lambda row: row.update({"class": 3}),
             lambda row: row.update(end_reason="compacted"), lambda row: row.pop("group_id")]
    for at in rng.sample(range(40, len(rows)), 12):
        rng.choice(edits)(rows[at])
    lines = [orjson.dumps(row) for row in rows]
    lines.insert(300, b"not json")
    index.write_bytes(b"\n".join(lines) + b"\n")
    monkeypatch.setattr(lines_module, "_BLOCK_BYTES", 6000)
    bulk = []
    start_many = sessions_module.IndexChecker.start_many

    def counted(self, *args):
        bulk.append(start_many(self, *args))
        return bulk[-1]

    monkeypatch.setattr(sessions_module.IndexChecker, "start_many", counted)
    fast, slow = _both_ways(dataset, monkeypatch, max_errors=max_errors)
    assert fast == slow and not fast["valid"]
    assert any(bulk) and not all(bulk)  # both ways were taken


def _read_all(path, chunk_rows: int) -> list[dict]:
    from tracedsl.output.reader import read_trace

    return [
        {"session_ids": chunk.session_ids, "group_ids": chunk.group_ids.tolist(),
         "is_restart": chunk.is_restart.tolist(), "row_offsets": chunk.row_offsets.tolist(),
         "input_length": chunk.input_length.tolist(), "output_length": chunk.output_length.tolist(),
         "delay_ms": np.nan_to_num(chunk.delay_ms, nan=-1.0).tolist(),
         "timestamp_ms": np.nan_to_num(chunk.timestamp_ms, nan=-1.0).tolist(),
         "hash_offsets": chunk.hash_offsets.tolist(), "hash_ids": chunk.hash_ids.tolist()}
        for chunk in read_trace(path, chunk_rows=chunk_rows)
    ]


def _read_both_ways(path, monkeypatch, chunk_rows: int):
    from tracedsl.diagnostics import DiagnosticError
    from tracedsl.output import reader

    def outcome():
        try:
            return _read_all(path, chunk_rows)
        except DiagnosticError as error:
            diagnostic = error.diagnostics[0]
            return (diagnostic.code, diagnostic.span.line, diagnostic.path)

    fast = outcome()
    with monkeypatch.context() as patch:
        patch.setattr(reader, "plain_padded", lambda padded: None)
        patch.setattr(reader, "flat_session_runs", lambda padded: None)
        slow = outcome()
    return fast, slow


@pytest.mark.parametrize("chunk_rows", [1, 97, 16384])
@pytest.mark.parametrize("seed", [1, 2])
def test_reader_reads_the_same_with_and_without_plain_blocks(tmp_path, monkeypatch, chunk_rows, seed, plain_reader):
    from tracedsl.output import reader

    monkeypatch.setattr(lines_module, "_BLOCK_BYTES", 2500)  # both passes read blocks of lines.py
    monkeypatch.setattr(reader, "_BATCH_ROWS", 41)
    rng = random.Random(seed)
    lines = _trace(40, seed, spec="inference-day-2026").splitlines()
    for _ in range(4):  # sessions out of place, and rows of no session
        lines.insert(rng.randrange(len(lines)), lines[rng.randrange(len(lines))])
        lines.insert(rng.randrange(len(lines)), b'{"input_length":3,"output_length":1,"hash_ids":[5],"timestamp":1}')
    path = tmp_path / "trace.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    fast, slow = _read_both_ways(path, monkeypatch, chunk_rows)
    assert fast == slow and isinstance(fast, list)
    # a bad row late in the file: the same located error
    lines.insert(len(lines) - 5, b'{"session_id":"z","input_length":0,"output_length":1,"hash_ids":[1]}')
    path.write_bytes(b"\n".join(lines) + b"\n")
    fast, slow = _read_both_ways(path, monkeypatch, chunk_rows)
    assert fast == slow and fast[0] == "not-positive"


def _runs_by_regex(text: bytes) -> tuple[list[int], list[str]] | None:
    """The first pass's reading of a block, line by line: each line one flat object opening with its id."""
    names = []
    for line in text.split(b"\n"):
        if not line.startswith(b'{"session_id":"') or b"\\" in line or not line.isascii():
            return None
        name = line[len(b'{"session_id":"'):].split(b'"', 1)
        if len(name) < 2:  # a control byte in an id is left to the second pass, which refuses the row
            return None
        if b"{" in name[1] or b'"session_id"' in name[1]:  # a nested object, or a second id
            return None
        names.append(name[0].decode())
    ends = [i for i in range(len(names)) if i == len(names) - 1 or names[i + 1] != names[i]]
    return ends, [names[i] for i in ends]


def test_the_first_pass_reads_session_runs_as_line_by_line(plain_reader):
    """The reader's first pass (plain.flat_session_runs), on damaged blocks: None, or the runs each line gives."""
    text = _trace(8).rstrip(b"\n")
    alphabet = b'0123456789.,:[]{}"-e \ttrux\n\\'
    rng = random.Random(12)
    read = 0
    for _ in range(1500):
        data = bytearray(text)
        for _ in range(rng.choice((1, 2, 3))):
            at = rng.randrange(len(data))
            if rng.random() < 0.2:
                data[at:at] = rng.choice((b'"session_id"', b"{", b"\n", b"\x01", b"\xc3\xa9"))
            else:
                data[at] = rng.choice(alphabet)
        data = bytes(data)
        if b"\n\n" in data or data.startswith(b"\n") or data.endswith(b"\n"):
            continue  # blank lines never reach a block's text
        padded = bytes(lines_module.PAD) + data + b"\n" + bytes(lines_module.PAD)
        runs = plain_module.flat_session_runs(padded)
        if runs is None:
            continue
        assert (runs[0].tolist(), runs[1]) == _runs_by_regex(data), data
        read += 1
    assert read > 300

