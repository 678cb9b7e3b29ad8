"""The one block-size rule: validate and report agree, the range is said, --block-size overrides it."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from click.testing import CliRunner

from tracedsl.cli import cli
from tracedsl.output import blocksize
from tracedsl.output.blocksize import (
    BlockSizeEvidence,
    block_size_finding,
    file_block_size,
    fitting_rows,
    preferred_size,
)
from tracedsl.output.validate import validate_file
from tracedsl.reports.regenerate import infer_block_size


def _trace(tmp_path, rows: list[tuple[int, int]], name: str = "t.jsonl"):
    """A foreign trace: one session per row, (input_length, number of hash ids) each, fresh ids."""
    lines, next_id = [], 0
    for index, (length, count) in enumerate(rows):
        ids = list(range(next_id, next_id + count))
        next_id += count
        lines.append(orjson.dumps({"session_id": f"s{index}", "input_length": length, "output_length": 1,
                                   "hash_ids": ids, "timestamp": 0.0}).decode())
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def _brute_sizes(rows: list[tuple[int, int]], up_to: int) -> list[int]:
    """Every size up to ``up_to`` that fits every row, the obvious way."""
    return [b for b in range(1, up_to + 1)
            if all((n - 1) * b < length <= n * b for length, n in rows if n > 0)]


def test_the_issue_example_gets_one_answer_everywhere(tmp_path):
    # two rows of one hash id each, 1000 and 900 tokens: validate said 549,755,813,888,
    # report 1024 and simulate 512
    path = _trace(tmp_path, [(1000, 1), (900, 1)])
    finding = file_block_size(path)
    assert (finding.size, finding.low, finding.high) == (1024, 1000, None)
    assert "any size from 1000 up" in finding.note and "1024" in finding.note
    report = validate_file(path)
    assert report.ok and report.block_size == 1024 and report.block_size_note == finding.note
    assert report.to_dict()["block_size_range"] == [1000, None]
    assert infer_block_size(path) == 1024
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 0 and "block size 1024 inferred" in result.output


@pytest.mark.parametrize(
    "rows, size, low, high, words",
    [
        ([(100, 7), (40, 3)], 16, 15, 16, "from 15 to 16"),
        ([(1000, 2)], 512, 500, 999, "512 is AIPerf's default"),
        ([(200, 2), (150, 2), (130, 1)], 130, 130, 149, "no power of two among them"),
        ([(60, 1), (33, 1)], 512, 60, None, "512 is AIPerf's default"),
        ([(5000, 1)], 8192, 5000, None, "8192 is the smallest power of two"),
        ([(64, 1), (65, 2)], 64, 64, 64, "the only size"),
        ([(10, 0)], 512, 1, None, "no row has hash ids"),
    ],
)
def test_the_rule_on_small_evidence(rows, size, low, high, words):
    finding = block_size_finding(rows)
    assert (finding.size, finding.low, finding.high) == (size, low, high), finding
    assert words in finding.note
    allowed = _brute_sizes(rows, 20000)
    assert allowed[0] == low and (high is None or allowed[-1] == high)
    assert size in allowed


def test_rows_that_disagree_get_no_size_and_the_closest_is_said(tmp_path):
    rows = [(1000, 2)] * 5 + [(1000, 1), (100, 3)]  # five fit 512; the last two fit no common size
    finding = block_size_finding(rows)
    assert finding.size is None and not finding.agreed and finding.low > finding.high
    assert (finding.closest, finding.closest_rows, finding.rows) == (512, 5, 7)
    assert "no block size fits every row" in finding.note and "512 fits the most rows (5 of 7)" in finding.note
    path = _trace(tmp_path, rows)
    assert infer_block_size(path) is None  # report asks for --block-size
    report = validate_file(path)
    assert report.block_size == 512 and report.error_counts == {"block-count": 2}, report.to_dict()
    assert [d.span.line for d in report.errors] == [6, 7]


def test_a_range_end_that_fits_more_rows_than_any_power_is_the_closest(tmp_path):
    # four rows made at 1000 tokens a block allow 1000..1010; one stray row allows 5..9
    rows = [(100_000, 100)] * 4 + [(10, 2)]
    finding = file_block_size(_trace(tmp_path, rows))
    assert finding.size is None and (finding.low, finding.high) == (1000, 9)
    assert (finding.closest, finding.closest_rows) == (1000, 4)  # no power of two fits more than one
    report = validate_file(_trace(tmp_path, rows))
    assert report.block_size == 1000 and report.error_counts == {"block-count": 1}


@pytest.mark.parametrize("seed", range(20))
def test_streamed_evidence_gives_the_brute_force_range(tmp_path, monkeypatch, seed):
    from tracedsl.output import validate

    monkeypatch.setattr(validate, "_BATCH_ROWS", 3)  # the evidence arrives in many batches
    rng = np.random.default_rng(seed)
    true_size = int(rng.choice([16, 64, 100, 512, 1000, 4096]))
    rows = []
    for _ in range(int(rng.integers(1, 12))):
        count = int(rng.integers(1, 5))
        rows.append(((count - 1) * true_size + int(rng.integers(1, true_size + 1)), count))
    if rng.random() < 0.3:  # sometimes one row that fits no common size
        rows.append((int(rng.integers(1, 50)), int(rng.integers(2, 9))))
    allowed = _brute_sizes(rows, 3 * 4096)
    path = _trace(tmp_path, rows)
    finding = file_block_size(path)
    report = validate_file(path)
    assert report.block_size_note == finding.note
    if allowed and finding.high is not None:
        assert (finding.low, finding.high) == (allowed[0], allowed[-1])
    if allowed:
        assert finding.size in allowed and report.block_size == finding.size
        assert finding.size == preferred_size(allowed[0], finding.high)
    else:
        assert finding.size is None and report.block_size == finding.closest
        inputs = np.array([r[0] for r in rows])
        counts = np.array([r[1] for r in rows])
        best = max(fitting_rows(inputs, counts, size) for size in range(1, 3 * 4096))
        assert finding.closest_rows <= best
        assert finding.closest_rows == fitting_rows(inputs, counts, finding.closest)


@pytest.mark.parametrize("seed", range(30))
def test_powers_of_two_are_counted_as_one_by_one(seed):
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 6, size=400)
    inputs = np.maximum(rng.integers(1, 5000, size=400) * rng.choice([1, 300], size=400), 1)
    evidence = BlockSizeEvidence()
    evidence.add(inputs[:150], counts[:150])
    evidence.add(inputs[150:], counts[150:])
    assert evidence.power_fits.tolist() == [fitting_rows(inputs, counts, p) for p in blocksize.POWER_SIZES]


def test_block_size_given_overrides_the_rule(tmp_path):
    path = _trace(tmp_path, [(1000, 1), (900, 1)])
    report = validate_file(path, block_size=2048)
    assert report.ok and report.block_size == 2048 and report.block_size_note == "block size 2048 (given)"
    assert report.to_dict()["block_size_range"] is None
    assert not validate_file(path, block_size=512).ok  # 1000 tokens need two blocks of 512
    out = tmp_path / "reports"
    result = CliRunner().invoke(cli, ["report", str(path), "-o", str(out), "--no-html", "--block-size", "2048"])
    assert result.exit_code == 0, result.output
    assert "block size 2048" in result.output
    inferred = CliRunner().invoke(cli, ["report", str(path), "-o", str(out), "--no-html"])
    assert inferred.exit_code == 0 and "block size 1024" in inferred.output


@pytest.mark.parametrize("reader", ["numpy", "compiled"])
@pytest.mark.parametrize("seed", range(6))
def test_the_file_evidence_read_as_columns_is_the_row_by_row_evidence(tmp_path, monkeypatch, reader, seed):
    """file_block_size reads plain blocks as columns: the rows counted are the ones orjson counts."""
    from tracedsl.output import lines as lines_module
    from tracedsl.output import plain as plain_module

    monkeypatch.setattr(lines_module, "_BLOCK_BYTES", 700)  # many blocks, some plain, some not
    plain_module.use_compiled(reader == "compiled")
    rng = np.random.default_rng(seed)
    size = int(rng.choice([16, 100, 512]))
    text = []
    for index in range(400):
        count = int(rng.integers(0, 5))
        length = (count - 1) * size + int(rng.integers(1, size + 1)) if count else int(rng.integers(0, 3))
        row = {"session_id": f"s{index // 7}", "input_length": length, "output_length": 3,
               "hash_ids": list(range(index * 8, index * 8 + count))}
        roll = rng.random()
        if roll < 0.03:
            row["extra"] = "é"  # not plain: read with orjson
        elif roll < 0.05:
            row["input_length"] = -length  # no evidence either way
        elif roll < 0.07:
            row["input_length"] = str(length)
        elif roll < 0.09:
            row["input_length"] = 0  # ids but no tokens: no evidence
        line = orjson.dumps(row).decode()
        text.append(line[:-3] if rng.random() < 0.02 else line)  # now and then a broken row
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(text) + "\n")
    try:
        got = [np.concatenate(parts) for parts in zip(*blocksize._file_evidence(path), strict=True)]
    finally:
        plain_module.use_compiled(None)
    raws = [line.encode() for line in text]
    expected = blocksize.row_evidence(raws)
    assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])
    assert expected[0].shape[0] > 250  # most rows are evidence
    assert file_block_size(path) == block_size_finding(zip(*expected, strict=True))
