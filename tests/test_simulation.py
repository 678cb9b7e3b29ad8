"""The KV-cache simulation model and `tracedsl simulate`, checked on hand-worked cases."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import MOONCAKE, fixture_dir

from tracedsl.cli import cli
from tracedsl.reports.simulation import SimulationSample
from tracedsl.reports.simulation_model import LAYERS, SimSession, SimulationConfig, simulate

# 1 GB per block: kv_gb is then the capacity in blocks
ONE_GB_BLOCKS = {"kv_bytes_per_token": 1_000_000, "block_size": 1000}


def session(name, rows, restart=False):
    """rows: (input_length, output_length, delay_ms, hash ids)."""
    return SimSession(
        session_id=name,
        is_restart=restart,
        input_length=[r[0] for r in rows],
        output_length=[r[1] for r in rows],
        delay_ms=[r[2] for r in rows],
        hash_ids=[np.asarray(r[3], dtype=np.int64) for r in rows],
    )


def test_two_turns_worked_by_hand():
    # block size 4: turn 0 holds blocks of 4+4+2 tokens and 5 output tokens (blocks of 4+1);
    # turn 1's prompt is those 15 tokens (all resident) plus 3 new ones.
    config = SimulationConfig(concurrency=1, prefill_tps=1000, decode_tps=10, block_size=4)
    sessions = [session("a", [(10, 5, 0.0, [1, 2, 3]), (3, 5, 1000.0, [4])])]
    result = simulate(sessions, config)
    summary = result.summary
    assert result.requests["ready_ms"] == [0.0, 1510.0]
    assert result.requests["decode_start_ms"] == [10.0, 1513.0]
    assert result.requests["decode_end_ms"] == [510.0, 2013.0]
    assert result.requests["hit_tokens"] == [0, 15]
    assert result.requests["miss_tokens"] == [10, 3]
    assert summary["duration_s"] == 2.013
    assert summary["prompt_tokens"] == 28
    assert summary["hit_rate"] == 15 / 28
    assert summary["mean_ttft_ms"] == 6.5
    assert summary["peak_resident_blocks"] == 3 + 2 + 1 + 2  # inputs and outputs of both turns
    assert summary["evicted_private_blocks"] == 0


def test_shared_prefix_is_held_once_and_hit_by_the_second_session():
    config = SimulationConfig(concurrency=2, prefill_tps=1000, decode_tps=1000, block_size=4)
    sessions = [
        session("a", [(12, 4, 0.0, [0, 1, 10])]),
        session("b", [(12, 4, 0.0, [0, 1, 20])]),
    ]
    result = simulate(sessions, config)
    # both are ready at 0; b's prefill starts after a's, when 0 and 1 are resident
    assert result.requests["hit_tokens"] == [0, 8]
    assert result.summary["peak_resident_blocks"] == 2 + 1 + 1 + 1 + 1  # 0, 1 once
    assert result.summary["unbounded_hit_rate"] == 8 / 24


def test_lru_evicts_the_tail_of_a_released_prompt_first():
    # capacity 3 blocks: b's two blocks push out one of a's; the tail (2) goes, so c, which
    # reuses a's prompt, still hits its first block.
    config = SimulationConfig(concurrency=1, kv_gb=3, **ONE_GB_BLOCKS)
    sessions = [
        session("a", [(2000, 0, 0.0, [1, 2])]),
        session("b", [(2000, 0, 0.0, [3, 4])]),
        session("c", [(2000, 0, 0.0, [1, 2])]),
    ]
    result = simulate(sessions, config)
    assert result.summary["capacity_blocks"] == 3
    assert result.requests["hit_tokens"] == [0, 0, 1000]
    # ids 1 and 2 are in 2 of 3 sessions: "common"; 3 and 4 are b's alone: "private"
    assert result.summary["evicted_common_blocks"] == 1
    assert result.summary["evicted_private_blocks"] == 1  # c's refetch of 2 evicts b's tail
    assert result.summary["refetched_common_blocks"] == 1
    assert result.summary["unbounded_hit_rate"] == 2000 / 6000


def test_pinned_blocks_are_never_evicted_so_the_cache_can_overflow():
    config = SimulationConfig(concurrency=2, kv_gb=1, **ONE_GB_BLOCKS)
    sessions = [session("a", [(3000, 0, 0.0, [1, 2, 3])]), session("b", [(1000, 0, 0.0, [9])])]
    summary = simulate(sessions, config).summary
    assert summary["peak_resident_blocks"] == 4
    assert summary["peak_overflow_blocks"] == 3


def test_tokens_without_a_block_and_repeated_ids_are_always_prefilled():
    config = SimulationConfig(concurrency=1, block_size=4)
    # 10 tokens but two ids: the last 2 tokens have no block; the repeated id 5 adds nothing
    sessions = [session("a", [(10, 0, 0.0, [5, 6]), (4, 0, 0.0, [5])])]
    result = simulate(sessions, config)
    assert result.requests["hit_tokens"] == [0, 8]
    assert result.requests["miss_tokens"] == [10, 6]


def test_layers_come_from_the_data_not_the_id_values():
    # id 0 is in every session (common); the head of a prompt is released last, so it stays
    config = SimulationConfig(concurrency=1, kv_gb=2, **ONE_GB_BLOCKS)
    base = [
        session("a", [(3000, 1000, 0.0, [0, 1, 2]), (1000, 0, 50.0, [3])]),
        session("b", [(3000, 0, 0.0, [0, 7, 8])]),
        session("c", [(2000, 0, 0.0, [0, 9])]),
    ]
    shifted = [
        SimSession(
            s.session_id,
            s.is_restart,
            s.input_length,
            s.output_length,
            s.delay_ms,
            [ids * 7 + 1_000_003 for ids in s.hash_ids],
        )
        for s in base
    ]
    first, second = simulate(base, config), simulate(shifted, config)
    assert first.summary == second.summary
    assert first.summary["hit_tokens"] == 4000 + 1000 + 1000
    assert [first.summary[f"evicted_{layer}_blocks"] for layer in LAYERS] == [0, 0, 5, 1]


def test_same_inputs_same_figures():
    config = SimulationConfig(concurrency=3, kv_gb=4, **ONE_GB_BLOCKS)
    sessions = [
        session(
            str(i),
            [(2500, 700, 0.0, [0, i * 10 + 1, i * 10 + 2]), (900, 10, 30.0 * i, [i * 10 + 3])],
        )
        for i in range(7)
    ]
    assert simulate(sessions, config).to_json() == simulate(sessions, config).to_json()


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="concurrency"):
        simulate([], SimulationConfig(concurrency=0))
    assert SimulationConfig(decode_tps=float("nan")).problems() == [
        "decode_tps: must be a positive number"
    ]


def test_sample_stops_at_its_bounds_and_says_so():
    from tracedsl.output.reader import read_trace

    sample = SimulationSample(max_sessions=25)
    for chunk in read_trace(fixture_dir("turns_s5_n200") / "dataset.jsonl"):
        sample.add(chunk)
    assert sample.num_sessions == sample.trace.num_sessions == 25
    assert sample.total_sessions > 25
    assert sample.describe().startswith("the first 25 of ")
    encoded = sample.encoded()
    assert len(encoded["turns"]) == 25 and sum(encoded["turns"]) == len(encoded["input"])
    assert sum(encoded["runs"]) * 2 == len(encoded["ranges"])
    assert all(count >= 1 for count in encoded["ranges"][1::2])  # ids as [start, count] runs


def test_cli_on_a_run_directory(tmp_path):
    run = fixture_dir("default_s1_n300")
    out = CliRunner().invoke(cli, ["simulate", str(run), "--kv-gb", "5"])
    assert out.exit_code == 0, out.output
    assert "simulated all 300 sessions of the trace" in out.output
    assert "block size 512" in out.output
    data = json.loads(
        CliRunner().invoke(cli, ["simulate", str(run), "--kv-gb", "5", "--json"]).output
    )
    assert data["summary"]["requests"] == 4677  # every row of the dataset is one request
    assert data["summary"]["evicted_private_blocks"] > 0
    assert 0 < data["summary"]["hit_rate"] < data["summary"]["unbounded_hit_rate"] <= 1


def test_cli_on_a_foreign_mooncake_trace():
    path = MOONCAKE / "conversation_trace.jsonl"
    if not path.exists():
        pytest.skip("mooncake fixtures missing")
    out = CliRunner().invoke(cli, ["simulate", str(path), "--max-sessions", "300", "--json"])
    assert out.exit_code == 0, out.output
    summary = json.loads(out.output)["summary"]
    assert summary["sessions"] == summary["requests"] == 300  # a row without session_id
    # the shared system-prompt block (id 0) is in nearly every row: "common", hit after the first
    assert summary["hit_tokens"] > 0


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["--concurrency", "0"], 2, "--concurrency"),
        (["--kv-gb", "-1"], 2, "--kv-gb"),
        (["--block-size", "x"], 2, "--block-size"),
    ],
)
def test_cli_refuses_bad_arguments(tmp_path, args, code, needle):
    trace = tmp_path / "t.jsonl"
    trace.write_text('{"input_length": 10, "output_length": 2, "hash_ids": [1]}\n')
    out = CliRunner().invoke(cli, ["simulate", str(trace), *args])
    assert out.exit_code == code
    assert needle in out.output


def test_cli_names_the_bad_line_without_a_traceback(tmp_path):
    trace = tmp_path / "bad.jsonl"
    trace.write_text(
        '{"input_length": 10, "output_length": 2, "hash_ids": [1]}\n{"input_length": \n'
    )
    out = CliRunner().invoke(cli, ["simulate", str(trace)])
    assert out.exit_code == 3
    assert "bad.jsonl:2" in out.output
    assert "Traceback" not in out.output
    missing = CliRunner().invoke(cli, ["simulate", str(tmp_path / "nope")])
    assert missing.exit_code == 4 and "no such file" in missing.output


def test_simulate_command_starts_without_the_heavy_modules():
    # `tracedsl --help` imports every command module: this one must load numpy, jinja2 and
    # the model only when the command runs (docs/simulation.md, issue 6's start-up budget)
    import subprocess
    import sys

    code = (
        "import sys, tracedsl.cli.simulate_commands as c; "
        "print(sorted(m for m in ('numpy', 'jinja2', 'tracedsl.reports.simulation_model', "
        "'tracedsl.reports.reportset', 'tracedsl.output.reader') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def naive_runs(ids):
    """[start, count, ...] runs of consecutive ids, one id at a time."""
    out = []
    for value in (int(v) for v in ids):
        if out and value == out[-2] + out[-1]:
            out[-1] += 1
        else:
            out += [value, 1]
    return out


def sample_one_by_one(chunks, limits):
    """The sample's rows as (input, id runs), walking sessions one by one: stop before the
    first that would pass a bound (the first always fits)."""
    taken, rows, numbers, out = 0, 0, 0, []
    for chunk in chunks:
        for s in range(chunk.num_sessions):
            first, last = int(chunk.row_offsets[s]), int(chunk.row_offsets[s + 1])
            runs = [naive_runs(chunk.row_hash_ids(r)) for r in range(first, last)]
            more = sum(len(r) for r in runs)
            over = (
                (limits["max_sessions"] and taken + 1 > limits["max_sessions"])
                or (limits["max_rows"] and rows + last - first > limits["max_rows"])
                or (limits["max_id_numbers"] and numbers + more > limits["max_id_numbers"])
            )
            if taken and over:
                return taken, out
            taken, rows, numbers = taken + 1, rows + last - first, numbers + more
            out += [(int(chunk.input_length[first + t]), run) for t, run in enumerate(runs)]
    return taken, out


@pytest.mark.parametrize(
    ("bounds", "chunk_rows"),
    [
        ({"max_sessions": 37}, 40),
        ({"max_rows": 333}, 40),
        ({"max_id_numbers": 2000}, 100),
        ({"max_sessions": 150, "max_rows": 900, "max_id_numbers": 5000}, 7),
        ({"max_rows": 1}, 40),  # the first session fits even when it alone passes a bound
    ],
)
def test_sample_takes_sessions_one_chunk_at_a_time_as_one_by_one(bounds, chunk_rows):
    from tracedsl.output.reader import read_trace

    path = fixture_dir("turns_s5_n200") / "dataset.jsonl"
    chunks = list(read_trace(path, chunk_rows=chunk_rows))
    assert len(chunks) > 3
    limits = {"max_sessions": None, "max_rows": None, "max_id_numbers": None, **bounds}
    taken, expected = sample_one_by_one(chunks, limits)
    sample = SimulationSample(**limits)
    for chunk in chunks:
        sample.add(chunk)
    assert 0 < sample.num_sessions == taken < sample.total_sessions == 200
    encoded = sample.encoded()
    got, at = [], 0
    for length, count in zip(encoded["input"], encoded["runs"], strict=True):
        got.append((length, encoded["ranges"][at : at + 2 * count]))
        at += 2 * count
    assert got == expected
