"""The validator: strict row rules, cross-row rules, warnings, and never a crash on bad input."""

from __future__ import annotations

import collections

import orjson
import pytest
from click.testing import CliRunner

from tests.conftest import FIXTURE_RUNS, MOONCAKE, fixture_dir
from tracedsl.cli import cli
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
        (b'{"session_id":"s","input_length":123456789012345678901234567890}\n', "wrong-type"),  # orjson reads it as a float
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
