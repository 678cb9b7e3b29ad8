"""Specs that once passed `check` and then crashed, ran out of memory or never finished: each is refused
with a located error naming the limit, or fails its run cleanly (exit 5, nothing left behind)."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from click.testing import CliRunner

from tests.conftest import ROOT
from tracedsl import limits
from tracedsl.cli import cli, exitcodes
from tracedsl.feasibility import fit_chance
from tracedsl.ir import GenerationParams, _token_laws
from tracedsl.loading import load_spec

HUGE = 10**30


def _cli(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


def _refused(result, *words: str) -> None:
    """A located refusal: a diagnostic, no internal error, every word in the message."""
    assert result.exit_code not in (exitcodes.OK, exitcodes.INTERNAL), result.output
    assert not isinstance(result.exception, (OverflowError, MemoryError)), result.exception
    assert "internal error" not in result.output
    for word in words:
        assert word in result.output, result.output


# --------------------------------------------------------------------------------------------
# Integers the engines cast to int64: the restart turn range and the attempt count


@pytest.mark.parametrize("turns", [f"[5, {HUGE})", f"[{HUGE}, {HUGE + 1})"])
def test_a_huge_restart_turn_range_is_refused_where_it_is_written(tmp_path, turns):
    spec = _write(tmp_path, "r.trace", f"restart 30% at turn {turns}\n")
    checked = _cli("check", spec)
    _refused(checked, f"{spec}:1:13: error[E106]: restart_turn_range", str(limits.MAX_TURNS))
    _refused(_cli("run", spec, "-n", "5", "-o", tmp_path / "out"), "E106", str(limits.MAX_TURNS))
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_a_huge_restart_turn_range_is_refused_from_json_and_set(tmp_path):
    spec = _write(tmp_path, "r.json", json.dumps(
        {"restart_initial_probability": 0.3, "restart_turn_range": [5, HUGE]}))
    _refused(_cli("check", spec), "error[E106]", "restart_turn_range", str(limits.MAX_TURNS))
    _refused(_cli("run", "default", "-n", "5", "-o", tmp_path, "--set", "restart_initial_probability=0.3",
                  "--set", f"restart_turn_range=[{HUGE}, {HUGE + 1}]"),
             "restart_turn_range", str(limits.MAX_TURNS))


def test_the_restart_range_may_reach_the_largest_turn():
    GenerationParams.model_validate({"restart_turn_range": [5, limits.MAX_TURNS + 1]})
    with pytest.raises(ValueError, match="goes past turn"):
        GenerationParams.model_validate({"restart_turn_range": [5, limits.MAX_TURNS + 2]})


def test_max_session_attempts_is_bounded(tmp_path):
    spec = _write(tmp_path, "a.trace",
                  "turns lognormal(mean=8, median=6, min=2, max=20) retry 1000000000\n")
    _refused(_cli("check", spec), f"{spec}:1:56: error[E106]", "turns.max_session_attempts",
             str(limits.MAX_SESSION_ATTEMPTS))


# --------------------------------------------------------------------------------------------
# Memory: what one session can need


def test_a_session_of_more_blocks_than_the_limit_is_refused(tmp_path):
    spec = _write(tmp_path, "m.trace", "block 1\ncontext 1000000M\nprefix { global 1000M }\n")
    result = _cli("check", spec)
    _refused(result, f"{spec}:2:9: error[E106]: a session can reach 1000000000000 blocks",
             f"at most {limits.MAX_SESSION_BLOCKS} blocks a session")
    assert "raise block_size to at least 59605" in result.output


def test_generous_contexts_still_compile():
    # A 10M-token context at block 16 (625k blocks a session) and the limit itself.
    load_spec_text = GenerationParams.model_validate
    load_spec_text({"max_prompt_tokens": 10_000_000, "block_size": 16})
    load_spec_text({"max_prompt_tokens": limits.MAX_SESSION_BLOCKS, "block_size": 1})
    with pytest.raises(ValueError, match="blocks a session"):
        load_spec_text({"max_prompt_tokens": limits.MAX_SESSION_BLOCKS + 1, "block_size": 1})


@pytest.mark.parametrize("path", sorted([*ROOT.glob("specs/*.trace"), *ROOT.glob("examples/*.trace")]))
def test_every_bundled_spec_and_example_still_compiles(path):
    assert load_spec(str(path)).params is not None


def test_a_session_that_would_last_millions_of_turns_is_refused(tmp_path):
    spec = _write(tmp_path, "long.trace", "context 1000000M\nblock 100k\nreset 0%\n")
    _refused(_cli("check", spec), "error[E106]: a session would last about", "no reset ends it sooner",
             f"at most {limits.MAX_SESSION_TURNS} turns a session")
    # The same context with a reset that ends sessions is fine.
    GenerationParams.model_validate({"max_prompt_tokens": 10**12, "block_size": 100_000})


def test_running_out_of_memory_is_an_engine_limit_and_leaves_nothing(tmp_path, monkeypatch):
    import tracedsl.engine.fast as fast

    def exhausted(task):
        raise MemoryError("Unable to allocate 74.5 GiB for an array")

    monkeypatch.setattr(fast, "run_chunk", exhausted)
    result = _cli("run", "default", "-n", "3", "--no-reports", "-o", tmp_path)
    assert result.exit_code == exitcodes.LIMIT, result.output
    assert "default: error[E501]: the fast engine ran out of memory" in result.stderr
    assert "74.5 GiB" in result.stderr and "nothing was published" in result.stderr
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------
# Turn targets that almost never fit


HOPELESS_TURNS = """context 200k
turn { new_tokens lognormal(mean=250k, median=200k) }
turns lognormal(mean=30, median=25, min={min}, max=40) retry {retry}
"""


def test_turn_targets_that_cannot_fit_are_refused_at_compile_time(tmp_path):
    spec = _write(tmp_path, "h.trace", HOPELESS_TURNS.replace("{min}", "20").replace("{retry}", "10000"))
    _refused(_cli("check", spec), f"{spec}:3:41: error[E106]: turns.min (20) almost never fits",
             "10000 attempts a session all fail")


def test_the_fit_chance_bounds_the_true_chance_from_above():
    params = load_spec(str(ROOT / "examples" / "turns-retry.trace")).params
    params = params.model_copy(update={"new_tokens_per_turn": params.new_tokens_per_turn.model_copy(
        update={"max": None})})
    layer2, new, output = _token_laws(params)
    room = params.max_prompt_tokens - params.fixed_prefix_tokens
    rng = np.random.default_rng(7)
    draws = 200_000

    def simulated(turns: int) -> float:
        total = np.maximum(layer2.law.sample(rng.random(draws)).astype(np.int64), 1)
        for _ in range(turns - 1):
            total += np.maximum(new.law.sample(rng.random(draws)).astype(np.int64), 1)
            total += np.maximum(output.law.sample(rng.random(draws)).astype(np.int64), output.floor)
        return float(np.mean(total < room))

    chances = []
    for turns in (2, 30, 60, 80):
        chance, true = fit_chance(turns, room, layer2, new, output), simulated(turns)
        assert chance >= true - 3 * np.sqrt(true * (1 - true) / draws) - 1e-9, (turns, chance, true)
        chances.append(chance)
    assert chances == sorted(chances, reverse=True) and chances[-1] < 0.5  # it can say "unlikely"
    assert fit_chance(1, room, layer2, new, output) == 1.0


def test_retries_stop_at_the_budget_with_how_many_sessions_did_not_fit(tmp_path):
    # min 2 fits often enough to pass check; most larger targets never fit.
    spec = _write(tmp_path, "h.trace", HOPELESS_TURNS.replace("{min}", "2").replace("{retry}", "10000"))
    assert _cli("check", spec).exit_code == exitcodes.OK
    start = time.monotonic()
    result = _cli("run", spec, "-n", "20", "--no-reports", "-o", tmp_path / "out")
    assert time.monotonic() - start < 60
    assert result.exit_code == exitcodes.LIMIT, result.output
    assert f"{spec}: turns: error[E501]: the fast engine cannot run this spec: " in result.stderr
    assert "of the 20 sessions 0..19 still did not fit the context limit (200000 tokens)" in result.stderr
    assert f"at most {limits.RETRY_BUDGET} attempts a session on average" in result.stderr
    assert list((tmp_path / "out").iterdir()) == []


# --------------------------------------------------------------------------------------------
# Token bounds below one token, and a failed run's findings


@pytest.mark.parametrize("slot, text", [
    ("generation_length", "turn { output lognormal(mean=1.5, median=1, max=0.5) }\n"),
    ("new_tokens_per_turn", "turn { new_tokens lognormal(mean=1.5, median=1, max=0.9) }\n"),
    ("cache.layer2", "prefix { session lognormal(mean=1.5, median=1, max=0.5) }\n"),
])
def test_a_token_max_below_one_token_is_refused_where_it_is_written(tmp_path, slot, text):
    spec = _write(tmp_path, "o.trace", text)
    column = text.index("max=") + 5
    _refused(_cli("check", spec), f"{spec}:1:{column}: error[E106]: {slot}.max is 0.", "below one token")


def test_a_token_max_below_one_token_is_refused_from_json(tmp_path):
    spec = _write(tmp_path, "o.json", json.dumps(
        {"generation_length": {"mean": 1.5, "median": 1, "max": 0.5}}))
    _refused(_cli("check", spec), "error[E106]: generation_length.max is 0.5")
    # A min below one token is harmless: draws are floored at one.
    GenerationParams.model_validate({"generation_length": {"mean": 1.5, "median": 1, "min": 0.5}})


def test_a_dataset_that_reads_back_wrong_is_named_without_its_hidden_directory(tmp_path, monkeypatch):
    from tracedsl.output.jsonl import ReadBack, WrittenFileDiffers

    def wrong(self, rows):
        raise WrittenFileDiffers(f"{self.path} holds {rows - 1} lines, but {rows} rows were written")

    monkeypatch.setattr(ReadBack, "finish", wrong)
    result = _cli("run", "default", "-n", "3", "--no-reports", "-o", tmp_path)
    assert result.exit_code == exitcodes.FAILED, result.output
    assert "default: error[E502]: the written dataset holds " in result.stderr
    assert ".tmp-" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_large_sessions_get_smaller_chunks():
    from tracedsl.engine import RunRequest
    from tracedsl.engine.fast import CHUNK_SESSIONS, plan
    from tracedsl.engine.model import CHUNK_IDS

    default = load_spec("default").params
    assert {task.stop - task.first for task in plan(RunRequest(default, 5000, 1))[:1]} == {CHUNK_SESSIONS}
    # A 2M-block prefix in every session: a chunk of 4096 would hold 8G hash ids.
    large = GenerationParams.model_validate({
        "max_prompt_tokens": 4_000_000, "block_size": 1,
        "cache": {"layer1_tokens": 2_000_000, "layer1_5_tokens": 0}})
    tasks = plan(RunRequest(large, 40, 1))
    size = tasks[0].stop - tasks[0].first
    assert size * 2_000_000 <= CHUNK_IDS and len(tasks) == -(-40 // size)
