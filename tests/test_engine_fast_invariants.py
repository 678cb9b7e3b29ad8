"""Fast engine: the written-file invariants (hash ids, limits, order) and chunking-independent output."""

from __future__ import annotations

import json
import math
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest
from conftest import FIXTURE_RUNS, fixture_dir
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracedsl.engine import EngineError, RunRequest
from tracedsl.engine.fast import FastEngine, plan, run_chunk
from tracedsl.engine.model import SessionModel
from tracedsl.engine.order import Stitcher
from tracedsl.ir import GenerationParams
from tracedsl.trace import EndReason, TraceChunk


def fixture_params(name: str) -> GenerationParams:
    config = json.loads((fixture_dir(name) / "config.json").read_text())
    return GenerationParams.model_validate(config.get("generation_params", config), strict=False)


def generate(params: GenerationParams, sessions: int, seed: int, **engine) -> list[TraceChunk]:
    return list(FastEngine(**engine).generate(RunRequest(params, sessions, seed)))


def flatten(chunks: list[TraceChunk]) -> dict[str, np.ndarray]:
    """All chunks as one set of columns (row offsets and hash offsets re-based)."""
    turns = np.concatenate([c.turns_per_session for c in chunks])
    blocks = np.concatenate([np.diff(c.hash_offsets) for c in chunks])
    return {
        "session_ids": np.array([s for c in chunks for s in c.session_ids]),
        "group_ids": np.concatenate([c.group_ids for c in chunks]),
        "is_restart": np.concatenate([c.is_restart for c in chunks]),
        "end_reasons": np.concatenate([c.end_reasons for c in chunks]),
        "primary_index": np.concatenate([c.extras["primary_index"] for c in chunks]),
        "turns": turns,
        "input_length": np.concatenate([c.input_length for c in chunks]),
        "output_length": np.concatenate([c.output_length for c in chunks]),
        "delay_ms": np.concatenate([c.delay_ms for c in chunks]),
        "timestamp_ms": np.concatenate([c.timestamp_ms for c in chunks]),
        "request_input": np.concatenate([c.request_input_length for c in chunks]),
        "blocks": blocks,
        "hash_ids": np.concatenate([c.hash_ids for c in chunks]),
    }


def check_invariants(params: GenerationParams, chunks: list[TraceChunk], num_sessions: int) -> None:
    """Every rule the fast engine promises about the file it produces."""
    for chunk in chunks:
        chunk.validate_shape()
    t = flatten(chunks)
    bs, limit = params.block_size, params.max_prompt_tokens
    sessions = t["turns"].shape[0]
    row_offsets = np.concatenate([[0], np.cumsum(t["turns"])])
    first_rows = row_offsets[:-1]
    row_session = np.repeat(np.arange(sessions), t["turns"])
    is_first = np.zeros(row_offsets[-1], bool)
    is_first[first_rows] = True

    # sessions: unique well-formed ids, one per primary plus continuations
    assert len(set(t["session_ids"].tolist())) == sessions
    assert all(len(s) == 17 and s.startswith("sess-") for s in t["session_ids"][:100])
    assert (~t["is_restart"]).sum() == num_sessions
    assert np.array_equal(np.sort(t["primary_index"][~t["is_restart"]]), np.arange(num_sessions))
    assert ((t["group_ids"] >= 0) & (t["group_ids"] < params.cache.layer1_5_groups.num_groups)).all()

    # lengths, limits, timestamps, delays
    assert (t["input_length"] >= 1).all() and (t["output_length"] >= params.output_floor).all()
    assert (t["request_input"] < limit).all(), "a turn reached the context limit"
    first_inputs = t["input_length"][first_rows][~t["is_restart"]]
    assert (first_inputs > params.fixed_prefix_tokens).all()
    assert (t["timestamp_ms"][is_first] == 0.0).all() and np.isnan(t["timestamp_ms"][~is_first]).all()
    assert np.isnan(t["delay_ms"][is_first]).all() and (t["delay_ms"][~is_first] >= 0).all()

    # block-count rule on every row
    assert np.array_equal(t["blocks"], -(-t["input_length"] // bs))

    # one size per hash id across the file
    ids = t["hash_ids"]
    hash_offsets = np.concatenate([[0], np.cumsum(t["blocks"])])
    row_of_id = np.repeat(np.arange(t["blocks"].shape[0]), t["blocks"])
    position = np.arange(ids.shape[0]) - hash_offsets[row_of_id]
    size = np.where(
        position == t["blocks"][row_of_id] - 1,
        t["input_length"][row_of_id] - (t["blocks"][row_of_id] - 1) * bs,
        bs,
    )
    order = np.lexsort((size, ids))
    same_id = ids[order][1:] == ids[order][:-1]
    assert (size[order][1:][same_id] == size[order][:-1][same_id]).all(), "an id has two sizes"

    # shared prefix: L1 on every turn 0, L1.5 from the session's own group
    l1b, l15b = params.layer1_blocks, params.layer1_5_blocks
    for s in range(min(sessions, 50)):
        first = ids[hash_offsets[first_rows[s]] : hash_offsets[first_rows[s] + 1]]
        assert np.array_equal(first[:l1b], np.arange(l1b))
        group_start = l1b + t["group_ids"][s] * l15b
        assert np.array_equal(first[l1b : l1b + l15b], np.arange(group_start, group_start + l15b))

    # session-unique ids: dense, and shared only between a continuation and its parent
    first_unique = l1b + params.cache.layer1_5_groups.num_groups * l15b
    unique = ids >= first_unique
    assert (ids[~unique] < first_unique).all()
    owner = row_session[row_of_id[unique]]
    pairs = np.unique(np.stack([ids[unique], owner]), axis=1)
    assert np.array_equal(np.unique(pairs[0]), np.arange(first_unique, first_unique + np.unique(pairs[0]).size))
    shared_ids = np.nonzero(np.bincount(pairs[0] - first_unique) > 1)[0] + first_unique
    if shared_ids.size:
        in_shared = np.isin(pairs[0], shared_ids)
        by_id = {}
        for hid, sess in zip(pairs[0][in_shared].tolist(), pairs[1][in_shared].tolist(), strict=True):
            by_id.setdefault(hid, []).append(sess)
        for owners in by_id.values():
            assert len(owners) == 2
            parent, child = sorted(owners)
            assert t["is_restart"][child] and not t["is_restart"][parent]
            assert t["primary_index"][child] == t["primary_index"][parent]

    # continuations: after the parent, carrying its whole context, from a split at a valid turn
    where_primary = {int(p): s for s, p in enumerate(t["primary_index"]) if not t["is_restart"][s]}
    reused_by: dict[int, np.ndarray] = {}
    lo, hi = params.restart_turn_range
    for child in np.nonzero(t["is_restart"])[0]:
        parent = where_primary[int(t["primary_index"][child])]
        assert parent < child
        assert t["end_reasons"][parent] == EndReason.RESTART_SPLIT
        assert lo <= t["turns"][parent] < hi
        last = row_offsets[parent + 1] - 1
        carried = t["request_input"][last] + t["output_length"][last]
        assert t["input_length"][first_rows[child]] == min(carried, limit - 1)
        assert t["end_reasons"][child] in (EndReason.FORCED_RETIRE, EndReason.PROBABILISTIC_RESET)
        # B's turn 0 = prefix, then A's whole turn-0 L2 blocks (the only true prefix of B's
        # prompt in a replay: A's later rows follow A's first output), then fresh ids
        parent_first = ids[hash_offsets[first_rows[parent]] : hash_offsets[first_rows[parent] + 1]]
        whole = (t["input_length"][first_rows[parent]] - params.fixed_prefix_tokens) // bs
        shared = parent_first[l1b + l15b : l1b + l15b + whole]
        child_first = ids[hash_offsets[first_rows[child]] : hash_offsets[first_rows[child] + 1]]
        assert np.array_equal(child_first[: l1b + l15b + whole], parent_first[: l1b + l15b + whole])
        rest = child_first[l1b + l15b + whole :]
        assert (rest >= first_unique).all()
        parent_ids = ids[hash_offsets[first_rows[parent]] : hash_offsets[row_offsets[parent + 1]]]
        assert not np.isin(rest, parent_ids).any()
        reused_by[child] = shared
    splits = t["end_reasons"] == EndReason.RESTART_SPLIT
    assert splits.sum() == t["is_restart"].sum()
    # the only session-unique ids two sessions share are those continuations reuse
    assert shared_ids.size == sum(r.size for r in reused_by.values())
    if params.turns is not None:
        assert set(t["end_reasons"].tolist()) <= {EndReason.TARGET_TURN_COUNT, EndReason.FORCED_RETIRE}
        assert (t["turns"] <= params.turns.max).all()
        assert (t["turns"][t["end_reasons"] == EndReason.TARGET_TURN_COUNT] >= params.turns.min).all()


def assert_same(a: list[TraceChunk], b: list[TraceChunk]) -> None:
    fa, fb = flatten(a), flatten(b)
    for name in fa:
        nan_ok = fa[name].dtype.kind == "f"
        assert np.array_equal(fa[name], fb[name], equal_nan=nan_ok), name


@pytest.mark.parametrize("name", FIXTURE_RUNS)
def test_fixture_configs_keep_every_invariant(name):
    params = fixture_params(name)
    check_invariants(params, generate(params, 600, seed=3, chunk_sessions=128), 600)


@pytest.mark.parametrize("name", FIXTURE_RUNS)
def test_output_does_not_depend_on_chunk_size_or_map(name):
    params = fixture_params(name)
    whole = generate(params, 300, seed=11)
    assert len(whole) == 1
    for size in (1, 7, 64):
        assert_same(whole, generate(params, 300, seed=11, chunk_sessions=size))
    with ThreadPoolExecutor(2) as pool:
        assert_same(whole, generate(params, 300, seed=11, chunk_sessions=50, map_fn=pool.map))


def test_chunk_bodies_can_run_in_other_processes():
    # Tasks and bodies cross process boundaries (pickled), as under --workers or Dask.
    params = fixture_params("manifest1k_s3_n300")
    with ProcessPoolExecutor(2) as pool:
        remote = generate(params, 400, seed=4, chunk_sessions=100, map_fn=pool.map)
    assert_same(remote, generate(params, 400, seed=4))


def test_plan_and_run_chunk_can_be_driven_by_hand():
    # What a remote executor does: run task bodies anywhere (here out of order), stitch in order.
    params = fixture_params("manifest1k_s3_n300")
    request = RunRequest(params, 200, 5)
    tasks = plan(request, 30)
    assert [t.first for t in tasks] == list(range(0, 200, 30)) and tasks[-1].stop == 200
    bodies = {i: run_chunk(tasks[i]) for i in reversed(range(len(tasks)))}
    stitcher = Stitcher(tasks[0].model)
    by_hand = [stitcher.add(bodies[i]) for i in range(len(tasks))]
    assert_same(by_hand, generate(params, 200, seed=5))


def test_seed_and_session_count_are_the_only_inputs():
    params = fixture_params("default_s1_n300")
    assert_same(generate(params, 50, 1), generate(params, 50, 1))
    a, b = flatten(generate(params, 50, 1)), flatten(generate(params, 50, 2))
    assert not np.array_equal(a["session_ids"], b["session_ids"])


def test_zero_sessions_yield_nothing():
    assert generate(GenerationParams(), 0, 42) == []


def test_session_ids_are_unique_by_construction():
    model = SessionModel.build(GenerationParams(), 10, 42)
    from tracedsl.engine.samplers import session_numbers

    numbers = session_numbers(np.arange(2_000_000, dtype=np.uint64), model.id_key)
    ordered = np.sort(numbers)
    assert (np.diff(ordered) > 0).all() and ordered[-1] < 2**48


def test_explicit_turns_retry_until_the_target_fits():
    config = json.loads((fixture_dir("turns_s5_n200") / "config.json").read_text())
    # 17 turns fit 167k only when L2 < ~13k tokens (L2 median 5k, mean 15k): many retries
    config["turns"] = {"mean": 12, "median": 10, "min": 2, "max": 17, "max_session_attempts": 50}
    params = GenerationParams.model_validate(config, strict=False)
    chunks = generate(params, 300, seed=9, chunk_sessions=100)
    check_invariants(params, chunks, 300)
    t = flatten(chunks)
    assert (t["end_reasons"] == EndReason.TARGET_TURN_COUNT).all()
    # the longest sessions exist, and they got there by redrawing until L2 was small
    longest = t["turns"] == 17
    assert longest.sum() > 5
    first_inputs = t["input_length"][np.concatenate([[0], np.cumsum(t["turns"])[:-1]])]
    assert (first_inputs[longest] < 32_256 + 13_200).all()


def test_explicit_turns_exhausted_names_the_field():
    config = json.loads((fixture_dir("turns_s5_n200") / "config.json").read_text())
    config["turns"] = {"mean": 30, "median": 25, "min": 2, "max": 40, "max_session_attempts": 3}
    params = GenerationParams.model_validate(config, strict=False)
    with pytest.raises(EngineError) as caught:
        generate(params, 50, seed=1)
    assert caught.value.path == "turns.max_session_attempts"
    assert "3 attempts" in str(caught.value)


# ------------------------------------------------------------------------------------------
# Property tests on small random workloads


def _lognormal(draw, median_range, spread=3.0, bounded=True):
    median = draw(st.floats(*median_range))
    mean = median * draw(st.floats(1.0, spread))
    result = {"mean": mean, "median": median}
    if bounded and draw(st.booleans()):
        result["max"] = mean * draw(st.floats(1.0, 5.0))
    if bounded and draw(st.booleans()):
        result["min"] = median * draw(st.floats(0.05, 1.0))
    return result


@st.composite
def small_workloads(draw):
    block = draw(st.sampled_from([1, 3, 16, 64, 512]))
    limit = draw(st.integers(2_000, 40_000))
    layer1 = draw(st.integers(0, limit // 4))
    layer15 = draw(st.integers(0, limit // 4))
    config = {
        "max_prompt_tokens": limit,
        "block_size": block,
        "new_tokens_per_turn": {**_lognormal(draw, (1.0, 3000.0)), "bias": draw(st.floats(0.5, 1.5))},
        "generation_length": _lognormal(draw, (1.0, 1000.0)),
        "cache": {
            "layer1_tokens": layer1,
            "layer1_5_tokens": layer15,
            "layer2": _lognormal(draw, (1.0, 3000.0)),
            "layer1_5_groups": {"num_groups": draw(st.integers(1, 5)), "zipf_alpha": 1.1},
        },
        "inter_turn_delay": {"max": draw(st.one_of(st.none(), st.floats(0.0, 5000.0)))},
    }
    if draw(st.booleans()):
        config["turns"] = {"mean": 6, "median": 5, "min": 1, "max": 12, "allow_truncation": True}
    else:
        config["reset"] = {"base_probability": draw(st.floats(0.0, 0.3)), "context_scaling": 2.0}
        config["restart_initial_probability"] = draw(st.floats(0.0, 1.0))
        first = draw(st.integers(1, 4))
        config["restart_turn_range"] = [first, first + draw(st.integers(1, 4))]
    try:
        return GenerationParams.model_validate(config, strict=False)
    except ValueError:
        return GenerationParams.model_validate({**config, "max_prompt_tokens": 10 * limit}, strict=False)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=small_workloads(), sessions=st.integers(1, 40), seed=st.integers(0, 2**32))
def test_invariants_hold_on_random_small_workloads(params, sessions, seed):
    whole = generate(params, sessions, seed)
    check_invariants(params, whole, sessions)
    assert_same(whole, generate(params, sessions, seed, chunk_sessions=3))


def test_prefix_regions_have_no_caps():
    # The reference refuses L1.5 over 200 blocks and over 1000 groups, and session over 4000 blocks.
    config = {
        "block_size": 4,
        "max_prompt_tokens": 60_000,
        "cache": {
            "layer1_tokens": 2_000,
            "layer1_5_tokens": 1_000,
            "layer1_5_groups": {"num_groups": 2_000, "zipf_alpha": 0.2},
        },
        "reset": None,
    }
    params = GenerationParams.model_validate(config, strict=False)
    chunks = generate(params, 20, seed=1)
    check_invariants(params, chunks, 20)
    assert max(math.ceil(n / 4) for n in flatten(chunks)["request_input"]) > 4000


def _session_ids(params: GenerationParams, seed: int = 7, sessions: int = 300) -> list[str]:
    return [s for chunk in generate(params, sessions, seed) for s in chunk.session_ids]


def test_session_ids_depend_on_the_workload_as_well_as_the_seed():
    # Two workloads at one seed once shared every id, so their traces could not be merged.
    default = _session_ids(GenerationParams())
    other = _session_ids(GenerationParams(max_prompt_tokens=150_000))
    assert len(set(default)) == len(default)
    assert not set(default) & set(other)
    assert _session_ids(GenerationParams()) == default  # and they stay reproducible
    assert not set(default) & set(_session_ids(GenerationParams(), seed=8))


def test_a_parameter_left_at_its_default_does_not_change_the_ids():
    # The workload digest leaves defaults out, so spelling a default out changes nothing
    # (and a field added later with an absent default changes no existing spec's ids).
    spelled = GenerationParams.model_validate({"max_prompt_tokens": 200000, "block_size": 512})
    assert _session_ids(spelled) == _session_ids(GenerationParams())
