"""The validator: strict row rules, cross-row rules, warnings, and never a crash on bad input."""

from __future__ import annotations

import collections
import tempfile

import orjson
import pytest
from click.testing import CliRunner

from tests.conftest import FIXTURE_RUNS, MOONCAKE, fixture_dir
from tracedsl.cli import cli
from tracedsl.diagnostics import DiagnosticError
from tracedsl.output.lines import parsed_lines
from tracedsl.output.validate import validate_file

GOOD0 = '{"session_id":"s","input_length":1000,"output_length":5,"hash_ids":[0,1],"timestamp":0.0}'
GOOD1 = '{"session_id":"s","input_length":10,"output_length":5,"hash_ids":[2],"delay":1.5}'


def _file(tmp_path, content: bytes | str):
    path = tmp_path / "trace.jsonl"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def _brute_force_conflicts(path, block_size=512) -> int:
    """Every hash id's sizes, the slow obvious way."""
    sizes = collections.defaultdict(set)
    for line in path.read_bytes().splitlines():
        row = orjson.loads(line)
        ids, length = row["hash_ids"], row["input_length"]
        for i, hash_id in enumerate(ids):
            sizes[hash_id].add(block_size if i < len(ids) - 1 else length - (len(ids) - 1) * block_size)
    return sum(1 for s in sizes.values() if len(s) > 1)


def test_finds_the_conflicts_the_reference_validator_misses():
    # AIPerf's own validator passes this file (its synthesize run validated it); replay refuses it.
    path = fixture_dir("manifest1k_s3_n300") / "dataset.jsonl"
    report = validate_file(path)
    assert not report.ok
    assert report.hash_conflicts == _brute_force_conflicts(path) == 161
    assert set(report.error_counts) == {"hash-id-size-conflict"}
    first = report.errors[0]
    assert first.span.line > 1 and first.path == "hash_ids" and "hash id" in first.message


@pytest.mark.parametrize("name", [n for n in FIXTURE_RUNS if n != "manifest1k_s3_n300"])
def test_reference_fixtures_without_restarts_pass(name):
    path = fixture_dir(name) / "dataset.jsonl"
    report = validate_file(path)
    assert report.passed(strict=True), report.to_dict()
    assert _brute_force_conflicts(path) == 0
    assert report.block_size == 512 and "inferred" in report.block_size_note


@pytest.mark.parametrize("name", ["conversation_trace.jsonl", "synthetic_trace.jsonl"])
def test_foreign_mooncake_traces_pass(name):
    path = MOONCAKE / name
    if not path.exists():
        pytest.skip("mooncake fixtures missing")
    report = validate_file(path)
    assert report.passed(strict=True), report.to_dict()
    assert report.sessions == report.rows


BAD_ROWS = [
    ('{"session_id":"s","input_length":"1000","output_length":5,"timestamp":0}', "wrong-type", "input_length"),
    ('{"session_id":"s","input_length":true,"output_length":5,"timestamp":0}', "wrong-type", "input_length"),
    ('{"session_id":"s","input_length":10.0,"output_length":5,"timestamp":0}', "wrong-type", "input_length"),
    ('{"session_id":"s","input_length":10,"output_length":"5","timestamp":0}', "wrong-type", "output_length"),
    ('{"session_id":"s","input_length":1000,"output_length":5,"hash_ids":[0,"7"],"timestamp":0}', "wrong-type", "hash_ids[1]"),
    ('{"session_id":"s","input_length":1000,"output_length":5,"hash_ids":[0,false],"timestamp":0}', "wrong-type", "hash_ids[1]"),
    ('{"session_id":"s","input_length":1000,"output_length":5,"hash_ids":[0,-1],"timestamp":0}', "out-of-range", "hash_ids[1]"),
    ('{"session_id":"s","input_length":1000,"output_length":5,"hash_ids":[0,9223372036854775808],"timestamp":0}', "out-of-range", "hash_ids[1]"),
    ('{"session_id":"s","input_length":1000,"output_length":5,"hash_ids":1,"timestamp":0}', "wrong-type", "hash_ids"),
    ('{"session_id":7,"input_length":10,"output_length":5,"timestamp":0}', "wrong-type", "session_id"),
    ('{"session_id":"s","input_length":0,"output_length":5,"timestamp":0}', "not-positive", "input_length"),
    ('{"session_id":"s","input_length":10,"output_length":-5,"timestamp":0}', "not-positive", "output_length"),
    ('{"session_id":"s","input_length":10,"output_length":5,"timestamp":-1}', "negative", "timestamp"),
    ('{"session_id":"s","output_length":5,"timestamp":0}', "prompt-fields", "input_length"),
    ('{"session_id":"s","input_length":10,"text_input":"x","timestamp":0}', "prompt-fields", "text_input"),
    ('{"session_id":"s","timestamp":"abc","input_length":10}', "wrong-type", "timestamp"),
    ('{"session_id":"s","input_length":1000,"output_length":5,"hash_ids":[0,1,2],"timestamp":0}', "block-count", "hash_ids"),
    ('{"session_id":"s","input_length":1000,"output_length":5,"hash_ids":[0],"timestamp":0}', "block-count", "hash_ids"),
]


@pytest.mark.parametrize("line, kind, field", BAD_ROWS)
def test_bad_row_is_an_error_naming_line_and_field(tmp_path, line, kind, field):
    path = _file(tmp_path, GOOD0 + "\n" + GOOD1 + "\n" + line + "\n")
    report = validate_file(path, block_size=512)
    assert not report.ok
    assert kind in report.error_counts
    match = [d for d in report.errors if d.code == kind]
    assert match[0].span.line == 3 and match[0].path == field


def test_negative_delay_is_an_error(tmp_path):
    path = _file(tmp_path, GOOD0 + "\n" + GOOD1.replace("1.5", "-1.5") + "\n")
    report = validate_file(path)
    assert report.error_counts == {"negative": 1} and report.errors[0].span.line == 2


def test_partial_block_reused_at_another_size(tmp_path):
    rows = [
        GOOD0,  # id 1 is a partial block of 488 tokens
        '{"session_id":"t","input_length":1024,"output_length":5,"hash_ids":[0,1],"timestamp":0.0}',
    ]
    report = validate_file(_file(tmp_path, "\n".join(rows) + "\n"))
    assert report.hash_conflicts == 1
    assert report.errors[0].span.line == 1 and "488" in report.errors[0].message


@pytest.mark.parametrize(
    "content, kind",
    [
        (b"", "empty-file"),
        (b"\n\n  \n", "empty-file"),
        (b"\xef\xbb\xbf" + GOOD0.encode() + b"\n", "byte-order-mark"),
        (b"[1,2,3]\n", "not-an-object"),
        (b'"a row"\n', "not-an-object"),
        (b"\x00\xff\xfe garbage \x89PNG\r\n", "bad-json"),
        (b'{"session_id":"s","input_length":NaN,"output_length":1}\n', "bad-json"),
        (b'{"session_id":"s","input_length":Infinity,"output_length":1}\n', "bad-json"),
        (b'{"session_id":"s","input_length":1e400,"output_length":1}\n', "bad-json"),
        (b'{"session_id":"s","input_length":123456789012345678901234567890}\n', "out-of-range"),  # not "a float"
        (b'{"session_id":"s",' + b'"x":"' + b"a" * 100 + b"\n", "bad-json"),
    ],
)
def test_broken_files_never_crash(tmp_path, content, kind):
    path = _file(tmp_path, content)
    report = validate_file(path)
    assert kind in report.error_counts
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 1 and result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output


def test_long_line_is_reported_and_skipped(tmp_path):
    path = _file(tmp_path, "x" * 5000 + "\n" + GOOD0 + "\n")
    with open(path, "rb") as handle:
        found = list(parsed_lines(handle, max_line_bytes=1000))
    assert found[0][0] == 1 and found[0][1].kind == "line-too-long"
    assert found[1][0] == 2 and isinstance(found[1][1], dict)


WARNINGS = [
    ([GOOD0, GOOD1.replace(',"delay":1.5', "")], "missing-delay", 2),
    ([GOOD0.replace(',"timestamp":0.0', ""), GOOD1], "missing-timestamp", 1),
    ([GOOD0, GOOD0.replace('"s"', '"t"').replace("[0,1]", "[5,6]"), GOOD1], "session-not-contiguous", 3),
    (
        [
            GOOD0.replace("1000", "1024"),
            '{"session_id":"s","input_length":1600,"output_length":5,"hash_ids":[0,1,2,3],"delay":1.0}',
        ],
        "cumulative-input",
        2,
    ),
]


@pytest.mark.parametrize("rows, kind, line", WARNINGS)
def test_warnings_pass_unless_strict(tmp_path, rows, kind, line):
    path = _file(tmp_path, "\n".join(rows) + "\n")
    report = validate_file(path)
    assert report.ok and kind in report.warning_counts, report.to_dict()
    assert report.warnings[0].span.line == line
    runner = CliRunner()
    assert runner.invoke(cli, ["validate", str(path)]).exit_code == 0
    assert runner.invoke(cli, ["validate", "--strict", str(path)]).exit_code == 1


def test_cumulative_without_hash_ids_needs_a_pattern(tmp_path):
    rows = [
        '{"session_id":"s","input_length":1000,"output_length":100,"timestamp":0.0}',
        '{"session_id":"s","input_length":1500,"output_length":100,"delay":1.0}',
        '{"session_id":"s","input_length":2000,"output_length":100,"delay":1.0}',
    ]
    assert "cumulative-input" in validate_file(_file(tmp_path, "\n".join(rows) + "\n")).warning_counts
    incremental = [rows[0], rows[1].replace("1500", "50"), rows[2]]
    report = validate_file(_file(tmp_path, "\n".join(incremental) + "\n"))
    assert "cumulative-input" not in report.warning_counts


def test_errors_are_counted_by_kind_and_listing_is_capped(tmp_path):
    bad = '{"session_id":"s%d","input_length":0,"output_length":5,"timestamp":0}'
    path = _file(tmp_path, "\n".join(bad % i for i in range(120)) + "\n")
    result = CliRunner().invoke(cli, ["validate", "--json", "--max-errors", "7", str(path)])
    assert result.exit_code == 1
    data = orjson.loads(result.output)
    assert data["error_counts"] == {"not-positive": 120}
    assert len(data["errors"]) == 7 and data["errors"][0]["line"] == 1
    assert data["errors"][0]["path"] == "input_length" and data["valid"] is False


def test_block_size_is_inferred_and_said(tmp_path):
    rows = [
        '{"session_id":"s","input_length":100,"output_length":5,"hash_ids":[0,1,2,3,4,5,6],"timestamp":0}',
        '{"session_id":"s","input_length":40,"output_length":5,"hash_ids":[7,8,9],"delay":1}',
    ]
    path = _file(tmp_path, "\n".join(rows) + "\n")
    report = validate_file(path)
    assert report.ok and report.block_size == 16 and "inferred" in report.block_size_note
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert "block size 16 inferred" in result.output
    assert not validate_file(path, block_size=512).ok


def test_cli_missing_file_is_an_io_error(tmp_path):
    result = CliRunner().invoke(cli, ["validate", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 4 and "no such file" in result.output


# --- the hash-id ledger and session memory: same findings as the obvious way, in bounded memory ---


def _random_trace(rng, rows: int, block_size: int) -> list[dict]:
    """Rows whose ids collide on purpose: shared runs, repeated ids, partial last blocks."""
    out = []
    for _ in range(rows):
        count = int(rng.integers(1, 6))
        if rng.random() < 0.5:
            base = int(rng.integers(0, 60))
            ids = list(range(base, base + count))
        else:
            ids = [int(v) for v in rng.integers(0, 60, size=count)]
        last = int(rng.choice([block_size, rng.integers(1, block_size + 1)]))
        length = (count - 1) * block_size + last if rng.random() < 0.9 else int(rng.integers(1, 100))
        out.append({"session_id": f"s{int(rng.integers(0, 20))}", "input_length": length,
                    "output_length": 3, "hash_ids": ids, "timestamp": 0.0})
    return out


def _brute_force(rows: list[dict], block_size: int):
    """Block-count rows, and every id's sizes with the line of its first partial use."""
    bad_count = [n for n, r in enumerate(rows, 1)
                 if not (len(r["hash_ids"]) - 1) * block_size < r["input_length"] <= len(r["hash_ids"]) * block_size]
    sizes = collections.defaultdict(set)
    first_partial = {}
    for n, r in enumerate(rows, 1):
        ids = r["hash_ids"]
        for hash_id in ids[:-1]:
            sizes[hash_id].add(block_size)
        if n not in bad_count:
            size = r["input_length"] - (len(ids) - 1) * block_size
            sizes[ids[-1]].add(size)
            if size < block_size:
                first_partial.setdefault(ids[-1], n)
    conflicts = {i for i, s in sizes.items() if len(s) > 1}
    return bad_count, conflicts, first_partial


@pytest.mark.parametrize("spill", [False, True], ids=["in-memory", "spilled"])
@pytest.mark.parametrize("seed", range(12))
def test_ledger_matches_brute_force_across_batches(tmp_path, monkeypatch, seed, spill):
    import numpy as np

    from tracedsl.output import blocks, validate

    # tiny batches and segments, so merging, lookups across segments and re-reads all happen
    monkeypatch.setattr(validate, "_BATCH_ROWS", 7)
    monkeypatch.setattr(blocks, "SEGMENT_CAP", 64)
    monkeypatch.setattr(blocks, "_ALWAYS_MERGE_BELOW", 8)
    spill_root = tmp_path / "tmp"
    spill_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spill_root))
    if spill:  # segments of 20 or more go to disk as soon as a newer one stands beside them
        monkeypatch.setattr(blocks, "SPILL_AT", 20)
    rng = np.random.default_rng(seed)
    rows = _random_trace(rng, 150, 16)
    path = _file(tmp_path, "\n".join(orjson.dumps(r).decode() for r in rows) + "\n")
    bad_count, conflicts, first_partial = _brute_force(rows, 16)
    report = validate_file(path, block_size=16, max_errors=10**6)
    assert report.error_counts.get("block-count", 0) == len(bad_count)
    assert report.hash_conflicts == len(conflicts)
    listed = [d for d in report.errors if d.code == "hash-id-size-conflict"]
    assert sorted(d.span.line for d in listed) == sorted(first_partial[i] for i in conflicts)
    # a short listing keeps the conflicts whose first partial rows come first
    short = validate_file(path, block_size=16, max_errors=3)
    assert short.hash_conflicts == len(conflicts)
    assert [d.span.line for d in short.errors] == sorted(d.span.line for d in report.errors)[:3]
    assert list(spill_root.iterdir()) == []  # the spilled segments are gone with the validation


def test_ledger_spills_full_segments_and_removes_them(tmp_path, monkeypatch):
    import numpy as np

    from tracedsl.output import blocks

    monkeypatch.setattr(blocks, "SEGMENT_CAP", 64)
    monkeypatch.setattr(blocks, "SPILL_AT", 32)
    ledger = blocks.BlockLedger(16, max_listed=10, spill_dir=tmp_path)
    # 400 rows of one full block and one partial block of 5 tokens: ids 2k (full), 2k+1 (partial)
    for first in range(0, 400, 25):
        rows = np.arange(first, first + 25)
        ids = np.stack([2 * rows, 2 * rows + 1], axis=1).ravel()
        ledger.add_rows(rows + 1, np.full(25, 21), np.arange(0, 51, 2), ids)
    spilled = [s for s in ledger.partials.segments if s.spilled]
    assert spilled and sum(s.count for s in ledger.partials.segments) == 400
    assert len(list(next(tmp_path.iterdir()).iterdir())) == 3 * len(spilled)
    # a later row uses an early (spilled) partial id as a full block, another at a new size
    ledger.add_rows(np.array([401, 402]), np.array([32, 7]), np.array([0, 2, 3]), np.array([0, 1, 3]))
    count, listed = ledger.size_conflicts()
    assert count == 2 and [line for line, _ in listed] == [1, 2]
    assert "full block" in listed[0][1] and "5 tokens here but 7 tokens on line 402" in listed[1][1]
    ledger.add_rows(np.array([403]), np.array([7]), np.array([0, 1]), np.array([5]))
    ledger.add_rows(np.array([404]), np.array([7]), np.array([0, 1]), np.array([3]))  # flagged already
    count, listed = ledger.size_conflicts()
    assert count == 3 and [line for line, _ in listed] == [1, 2, 3]
    ledger.close()
    assert list(tmp_path.iterdir()) == []


def test_block_size_guessed_from_the_first_batch_is_corrected(tmp_path, monkeypatch):
    from tracedsl.output import validate

    monkeypatch.setattr(validate, "_BATCH_ROWS", 2)
    # the first two rows fit any size from 100 to 149 (128 preferred); the third only 130 to 149
    rows = [
        '{"session_id":"a","input_length":200,"output_length":1,"hash_ids":[0,1],"timestamp":0}',
        '{"session_id":"a","input_length":150,"output_length":1,"hash_ids":[2,3],"delay":1}',
        '{"session_id":"b","input_length":130,"output_length":1,"hash_ids":[1],"timestamp":0}',
    ]
    report = validate_file(_file(tmp_path, "\n".join(rows) + "\n"))
    assert report.block_size == 130 and "from 130 to 149" in report.block_size_note
    # at 130, id 1 is a partial block of 70 tokens on line 1 and a full one on line 3
    assert report.error_counts == {"hash-id-size-conflict": 1}, report.to_dict()
    assert report.errors[0].span.line == 1 and "70 tokens" in report.errors[0].message


def test_run_checker_keeps_ids_as_a_few_intervals():
    from tracedsl.engine import RunRequest
    from tracedsl.engine.fast import FastEngine
    from tracedsl.loading import load_spec
    from tracedsl.output.chunkcheck import ChunkChecker

    params = load_spec("default").params
    checker = ChunkChecker("dataset.jsonl", params.block_size)
    for chunk in FastEngine(chunk_sessions=256).generate(RunRequest(params, 2000, 7)):
        checker.add(chunk)
    report = checker.finish()
    assert report.ok and report.sessions == checker.sessions.distinct >= 2000
    seen = checker.ledger.seen.segments
    assert sum(s[0].shape[0] for s in seen) <= 8  # the fast engine's ids are dense: a few intervals
    held = sum(s.count for s in checker.ledger.partials.segments)
    assert held <= report.rows  # one entry per partial last block at most, nothing else per row


def test_run_checker_finds_repeated_sessions_and_conflicts():
    import numpy as np

    from tracedsl.output.chunkcheck import ChunkChecker
    from tracedsl.trace import EndReason, TraceChunk

    def chunk(names, ids_per_row, inputs):
        counts = [len(ids) for ids in ids_per_row]
        rows = len(names)
        return TraceChunk(
            session_ids=names, group_ids=np.full(rows, -1), is_restart=np.zeros(rows, bool),
            end_reasons=np.full(rows, EndReason.UNKNOWN, dtype=np.int8),
            row_offsets=np.arange(rows + 1), input_length=np.asarray(inputs),
            output_length=np.ones(rows, dtype=np.int64), delay_ms=np.full(rows, np.nan),
            timestamp_ms=np.zeros(rows), hash_offsets=np.concatenate(([0], np.cumsum(counts))),
            hash_ids=np.asarray([i for ids in ids_per_row for i in ids], dtype=np.int64),
        )

    checker = ChunkChecker("d.jsonl", 10, max_errors=5)
    checker.add(chunk(["sess-00000000000a", "other", "sess-00000000000b"], [[0, 1], [2], [3]], [15, 10, 4]))
    checker.add(chunk(["sess-00000000000a", "other", "sess-00000000000c"], [[1], [4], [3]], [10, 10, 6]))
    report = checker.finish()
    assert report.sessions == 4 and report.warning_counts["session-not-contiguous"] == 2
    assert [d.span.line for d in report.warnings] == [4, 5]
    # id 1: partial (5 tokens) on line 1, full on line 4; id 3: 4 tokens on line 3, 6 on line 6
    assert report.hash_conflicts == 2
    messages = {d.span.line: d.message for d in report.errors}
    assert "full block of 10" in messages[1] and "6 tokens on line 6" in messages[3]


def test_non_contiguous_sessions_are_found_across_batches(tmp_path, monkeypatch):
    from tracedsl.output import validate

    monkeypatch.setattr(validate, "_BATCH_ROWS", 3)
    rows = [GOOD0.replace('"s"', f'"sess-{i:012x}"') for i in range(10)]
    rows += [GOOD0.replace('"s"', '"sess-000000000002"'), GOOD0.replace('"s"', '"plain-name"'),
             GOOD0.replace('"s"', '"sess-00000000000a"'), GOOD0.replace('"s"', '"plain-name"')]
    report = validate_file(_file(tmp_path, "\n".join(rows) + "\n"), max_errors=10**6)
    assert report.sessions == 12
    lines = [d.span.line for d in report.warnings if d.code == "session-not-contiguous"]
    assert lines == [11, 14]
    assert "missing-delay" not in report.warning_counts  # a returning session's row has a timestamp


@pytest.mark.parametrize("seed", range(6))
def test_key_set_holds_exactly_what_was_added(seed):
    import numpy as np

    from tracedsl.output.blocks import KeySet

    rng = np.random.default_rng(seed)
    keys, held = KeySet(), set()
    for _ in range(40):
        batch = np.unique(rng.integers(0, 5000, size=int(rng.integers(0, 200))))
        found = keys.contains(batch)
        assert found.tolist() == [int(k) in held for k in batch]
        keys.add(batch[~found])
        held.update(batch.tolist())
    assert sum(s.shape[0] for s in keys.segments) == len(held)
    assert len(keys.segments) <= 2 * max(1, len(held)).bit_length()  # merged like a binary counter


# --- what a new user tripped on: wide integers, repeated keys, blank lines ---

WIDE = "99999999999999999999999"  # beyond 64 bits: orjson reads it as the float 1e+23


@pytest.mark.parametrize(
    "line, field, shown",
    [
        ('{"session_id":"s","input_length":WIDE,"output_length":5,"timestamp":0}', "input_length", WIDE),
        ('{"session_id":"s","input_length":5,"output_length":WIDE,"timestamp":0}', "output_length", WIDE),
        ('{"session_id":"s","input_length":18446744073709551615,"output_length":5,"timestamp":0}',
         "input_length", "18446744073709551615"),  # below 2**64: orjson keeps an int
        ('{"session_id":"s","input_length":1000,"output_length":5,"hash_ids":[0,WIDE],"timestamp":0}',
         "hash_ids[1]", WIDE),
        ('{"session_id":"s","input_length":10,"output_length":5,"hash_ids":[-WIDE],"timestamp":0}',
         "hash_ids[0]", "-" + WIDE),
    ],
)
def test_integer_beyond_64_bits_is_out_of_range_not_a_float(tmp_path, monkeypatch, line, field, shown):
    from tracedsl.output import validate
    from tracedsl.output.reader import read_trace

    path = _file(tmp_path, GOOD0 + "\n" + GOOD1 + "\n" + line.replace("WIDE", WIDE) + "\n")
    for batch_rows in (1, 8192):  # the id check alone in its batch, and among good rows
        monkeypatch.setattr(validate, "_BATCH_ROWS", batch_rows)
        report = validate_file(path, block_size=512)
        found = [d for d in report.errors if d.path == field]
        assert found and found[0].code == "out-of-range" and found[0].span.line == 3, report.to_dict()
        assert shown in found[0].message and "float" not in found[0].message
    with pytest.raises(DiagnosticError) as caught:
        list(read_trace(path))
    diagnostic = caught.value.diagnostics[0]
    assert diagnostic.code == "out-of-range" and diagnostic.path == field and shown in diagnostic.message


def test_a_float_literal_is_still_a_float(tmp_path):
    path = _file(tmp_path, '{"session_id":"s","input_length":1e23,"output_length":5,"timestamp":0}\n')
    report = validate_file(path)
    assert report.error_counts == {"wrong-type": 1} and "a float" in report.errors[0].message


def _validate_cli(path, *options):
    result = CliRunner().invoke(cli, ["validate", *options, str(path)])
    return result.exit_code, result.output


@pytest.mark.parametrize(
    "line, key",
    [
        ('{"session_id":"a","session_id":"b","input_length":10,"output_length":5,"hash_ids":[9],"timestamp":0}',
         "session_id"),
        ('{"session_id" : "a", "input_length": 10, "session_id": "b", "output_length": 5, "timestamp": 0}',
         "session_id"),  # spaced like Python's json.dumps, the key apart from its colon
        ('{"session_id":"a:1","input_length":10,"output_length":5,"timestamp":0,"timestamp":3}', "timestamp"),
    ],
)
def test_repeated_key_is_a_warning_failing_strict(tmp_path, line, key):
    path = _file(tmp_path, GOOD0 + "\n" + GOOD1 + "\n" + line + "\n")
    report = validate_file(path)
    assert report.ok and report.warning_counts == {"duplicate-key": 1}, report.to_dict()
    warning = report.warnings[0]
    assert warning.span.line == 3 and warning.path == key and "keeps the last" in warning.message
    code, text = _validate_cli(path)
    assert code == 0 and "trace.jsonl:3:1: warning[duplicate-key]" in text
    code, text = _validate_cli(path, "--strict")
    assert code == 1 and "invalid under --strict" in text
    code, text = _validate_cli(path, "--json", "--strict")
    data = orjson.loads(text)
    assert code == 1 and data["passed"] is False
    assert [(w["code"], w["line"]) for w in data["warnings"]] == [("duplicate-key", 3)]


def test_repeated_key_inside_a_nested_object_is_found(tmp_path):
    line = ('{"session_id":"s","messages":[{"role":"user","content":"x","role":"system"}],'
            '"output_length":5,"timestamp":0}')
    report = validate_file(_file(tmp_path, line + "\n"))
    assert report.warning_counts["duplicate-key"] == 1 and "inside this row" in report.warnings[0].message


@pytest.mark.parametrize(
    "line",
    [
        '{"session_id":"a:b:c","input_length":10,"output_length":5,"timestamp":0}',  # colons in a string
        '{"session_id":"say \\":\\" twice","input_length":10,"output_length":5,"timestamp":0}',  # quote, colon
        '{"session_id": "s", "input_length": 10, "output_length": 5, "timestamp": 0}',
        '{"session_id":"s","messages":[{"role":"user","content":"x"}],"output_length":5,"timestamp":0}',
        '{"session_id" :"s","input_length" : 10,"output_length":5,"timestamp":0}',
    ],
)
def test_rows_without_repeated_keys_are_not_flagged(tmp_path, line):
    report = validate_file(_file(tmp_path, line + "\n"))
    assert "duplicate-key" not in report.warning_counts, report.to_dict()


@pytest.mark.parametrize(
    "content, lines, count",
    [
        (GOOD0 + "\n\n" + GOOD1 + "\n", [2], 1),
        (GOOD0 + "\n  \n\t\n" + GOOD1 + "\n", [2], 2),  # one finding for a run, each line counted
        (GOOD0 + "\n" + GOOD1 + "\n\n", [3], 1),  # at the end, where no row follows
        (GOOD0 + "\n" + GOOD1 + "\n \n  ", [3], 2),
        (GOOD0 + "\r\n\r\n" + GOOD1 + "\r\n", [2], 1),
        ("\n" + GOOD0 + "\n" + GOOD1 + "\n\n\n", [1, 4], 3),
    ],
)
def test_blank_lines_are_a_warning_failing_strict(tmp_path, content, lines, count):
    path = _file(tmp_path, content)
    report = validate_file(path)
    assert report.ok and report.rows == 2 and report.warning_counts == {"blank-line": count}, report.to_dict()
    assert [d.span.line for d in report.warnings] == lines
    code, text = _validate_cli(path)
    assert code == 0 and f"trace.jsonl:{lines[0]}:1: warning[blank-line]" in text
    code, text = _validate_cli(path, "--json", "--strict")
    data = orjson.loads(text)
    assert code == 1 and data["warning_counts"] == {"blank-line": count}
    assert [w["line"] for w in data["warnings"]] == lines


def test_blank_lines_in_a_large_file_and_its_plain_blocks(tmp_path):
    rows = [GOOD0.replace('"s"', f'"s{i}"') for i in range(60000)]  # more than one 4 MiB block
    rows[40000] = ""
    path = _file(tmp_path, "\n".join(rows) + "\n")
    report = validate_file(path)
    assert report.warning_counts == {"blank-line": 1} and report.warnings[0].span.line == 40001
    assert report.rows == 59999


def test_an_ordinary_file_has_no_blank_line(tmp_path):
    for content in (GOOD0 + "\n" + GOOD1 + "\n", GOOD0 + "\n" + GOOD1, GOOD0 + "\r\n" + GOOD1 + "\r\n"):
        report = validate_file(_file(tmp_path, content))
        assert report.passed(strict=True), report.to_dict()


def test_tracedsl_output_has_no_new_findings(tmp_path):
    result = CliRunner().invoke(cli, ["run", "inference-day-2026", "-n", "300", "--seed", "5", "-o",
                                      str(tmp_path), "-q", "--no-reports"])
    assert result.exit_code == 0, result.output
    dataset = next(tmp_path.glob("*/dataset.jsonl"))
    report = validate_file(dataset)
    assert report.passed(strict=True), report.to_dict()
    assert report.block_size == 512
