"""Session classes in the fast engine and the run outputs: who draws which class, which prefix
blocks each class holds, how each class's sessions end, and that the bytes stay put."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from classes_spec import BLOCK, FRACTIONS, class_params

from tracedsl.engine import RunRequest
from tracedsl.engine.arrivals import session_durations_ms, start_times
from tracedsl.engine.columns import SessionColumns
from tracedsl.engine.endings import target_turns
from tracedsl.engine.executors import ProcessPool
from tracedsl.engine.fast import FastEngine, plan
from tracedsl.engine.model import SessionModel
from tracedsl.engine.samplers import session_keys
from tracedsl.ir import Workload
from tracedsl.output.jsonl import render_chunk
from tracedsl.pipeline.runs import run
from tracedsl.trace import EndReason, TraceChunk

SESSIONS = 20_000
SEED = 5
NAMES = list(FRACTIONS)
CODING, CHAT, PRIVATE = range(3)


def generate(params, sessions, seed, **engine) -> list[TraceChunk]:
    return list(FastEngine(**engine).generate(RunRequest(params, sessions, seed)))


def digest(chunks: list[TraceChunk]) -> str:
    sha = hashlib.sha256()
    for chunk in chunks:
        sha.update(render_chunk(chunk))
    return sha.hexdigest()


class Flat:
    """A run's chunks as one set of per-session columns, with each session's turn-0 ids and all its ids."""

    def __init__(self, chunks: list[TraceChunk]):
        self.classes = np.concatenate([c.extras["class_index"] for c in chunks]).astype(int)
        self.primary = np.concatenate([c.extras["primary_index"] for c in chunks])
        self.restart = np.concatenate([c.is_restart for c in chunks]).astype(bool)
        self.groups = np.concatenate([c.group_ids for c in chunks])
        self.reasons = np.concatenate([c.end_reasons for c in chunks])
        self.turns = np.concatenate([c.turns_per_session for c in chunks])
        self.first_ids: list[np.ndarray] = []
        self.all_ids: list[np.ndarray] = []
        self.first_input: list[int] = []
        for c in chunks:
            for s in range(c.num_sessions):
                first, stop = c.row_offsets[s], c.row_offsets[s + 1]
                self.first_ids.append(c.row_hash_ids(first))
                self.all_ids.append(c.hash_ids[c.hash_offsets[first]:c.hash_offsets[stop]])
                self.first_input.append(int(c.input_length[first]))


@pytest.fixture(scope="module")
def params():
    return class_params()


@pytest.fixture(scope="module")
def model(params):
    return SessionModel.build(params, SESSIONS, SEED)


@pytest.fixture(scope="module")
def flat(params):
    return Flat(generate(params, SESSIONS, SEED))


def test_class_fractions_are_within_binomial_tolerance(flat):
    primaries = flat.classes[~flat.restart]
    assert primaries.shape[0] == SESSIONS
    counts = np.bincount(primaries, minlength=3)
    for count, fraction in zip(counts, FRACTIONS.values(), strict=True):
        sd = (SESSIONS * fraction * (1 - fraction)) ** 0.5
        assert abs(count - SESSIONS * fraction) < 4 * sd, (count, fraction)


def test_shared_classes_hold_the_top_level_prefix_and_own_classes_their_own(params, flat):
    top_l1 = params.layer1_blocks
    own = params.classes[PRIVATE].params
    groups_end = top_l1 + params.cache.layer1_5_groups.num_groups * params.layer1_5_blocks
    own_l1 = np.arange(groups_end, groups_end + own.layer1_blocks)
    own_end = groups_end + own.layer1_blocks + own.cache.layer1_5_groups.num_groups * own.layer1_5_blocks
    held_by_others = np.concatenate([ids for ids, c in zip(flat.all_ids, flat.classes, strict=True)
                                     if c != PRIVATE])
    for first, c in zip(flat.first_ids, flat.classes, strict=True):
        if c == PRIVATE:
            assert np.array_equal(first[:own.layer1_blocks], own_l1)
        else:
            assert np.array_equal(first[:top_l1], np.arange(top_l1))
    # no session of another class holds any id of the private class's own regions
    assert not ((held_by_others >= groups_end) & (held_by_others < own_end)).any()
    # and private sessions hold none of the top-level prefix ids
    private_ids = np.concatenate([ids for ids, c in zip(flat.all_ids, flat.classes, strict=True) if c == PRIVATE])
    assert not (private_ids < groups_end).any()


def test_group_ids_are_distinct_across_l1_5_regions(params, flat):
    top_groups = params.cache.layer1_5_groups.num_groups
    own = params.classes[PRIVATE].params
    private = flat.classes == PRIVATE
    assert set(flat.groups[~private].tolist()) == set(range(top_groups))
    assert set(flat.groups[private].tolist()) == set(range(top_groups, top_groups + own.cache.layer1_5_groups.num_groups))
    # one group id, one L1.5 run; two group ids, no common L1.5 id
    runs: dict[int, tuple] = {}
    for first, c, g in zip(flat.first_ids, flat.classes, flat.groups.tolist(), strict=True):
        body = params.classes[c].params
        run_ids = tuple(first[body.layer1_blocks:body.layer1_blocks + body.layer1_5_blocks].tolist())
        assert runs.setdefault(g, run_ids) == run_ids
    every = [set(ids) for ids in runs.values()]
    assert sum(len(s) for s in every) == len(set().union(*every))


def test_the_explicit_turns_class_meets_its_targets_and_never_resets(model, flat):
    chat = (flat.classes == CHAT) & ~flat.restart
    assert chat.any() and not (flat.restart & (flat.classes == CHAT)).any()
    reasons = set(flat.reasons[chat].tolist())
    assert reasons <= {EndReason.TARGET_TURN_COUNT, EndReason.FORCED_RETIRE}
    assert EndReason.TARGET_TURN_COUNT in reasons
    targets = target_turns(model.classes[CHAT], session_keys(model.run_key, 2 * flat.primary[chat]))
    hit = flat.reasons[chat] == EndReason.TARGET_TURN_COUNT
    assert np.array_equal(flat.turns[chat][hit], targets[hit])
    assert ((flat.turns[chat] >= 2) & (flat.turns[chat] <= 8)).all()


def test_the_other_classes_end_by_retire_reset_or_split(flat):
    for c in (CODING, PRIVATE):
        reasons = set(flat.reasons[flat.classes == c].tolist())
        assert EndReason.TARGET_TURN_COUNT not in reasons
        assert {EndReason.PROBABILISTIC_RESET, EndReason.RESTART_SPLIT} <= reasons


def test_continuations_keep_their_parents_class_and_prefix(params, flat):
    parent_of = {int(p): s for s, p in enumerate(flat.primary.tolist()) if not flat.restart[s]}
    children = np.flatnonzero(flat.restart)
    assert {int(flat.classes[s]) for s in children} == {CODING, PRIVATE}
    for child in children:
        parent = parent_of[int(flat.primary[child])]
        assert flat.classes[child] == flat.classes[parent]
        assert flat.groups[child] == flat.groups[parent]
        body = params.classes[int(flat.classes[parent])].params
        # the prefix, then the parent's whole turn-0 L2 blocks at the parent class's prefix size
        whole = (flat.first_input[parent] - body.fixed_prefix_tokens) // BLOCK
        shared = body.layer1_blocks + body.layer1_5_blocks + whole
        assert np.array_equal(flat.first_ids[child][:shared], flat.first_ids[parent][:shared])
        assert not np.isin(flat.first_ids[child][shared:], flat.all_ids[parent]).any()


def test_hash_ids_have_one_size_and_session_unique_ids_are_dense(params, flat):
    own = params.classes[PRIVATE].params
    first_unique = (params.layer1_blocks + 4 * params.layer1_5_blocks + own.layer1_blocks
                    + own.cache.layer1_5_groups.num_groups * own.layer1_5_blocks)
    unique = np.unique(np.concatenate(flat.all_ids))
    unique = unique[unique >= first_unique]
    assert np.array_equal(unique, np.arange(first_unique, first_unique + unique.shape[0]))


@pytest.mark.parametrize("chunk_sessions", [1, 37, 500])
def test_bytes_do_not_depend_on_the_chunk_size(params, chunk_sessions):
    whole = generate(params, 1500, 3)
    assert len(whole) == 1
    assert digest(generate(params, 1500, 3, chunk_sessions=chunk_sessions)) == digest(whole)


def test_bytes_do_not_depend_on_the_pool(params):
    whole = digest(generate(params, 1500, 3))
    with ThreadPoolExecutor(2) as threads:
        assert digest(generate(params, 1500, 3, chunk_sessions=100, map_fn=threads.map)) == whole
    with ProcessPool(2) as pool:
        assert digest(generate(params, 1500, 3, chunk_sessions=200, map_fn=pool)) == whole


def test_same_seed_same_bytes_other_seed_other_bytes(params):
    assert digest(generate(params, 800, 9)) == digest(generate(params, 800, 9))
    assert digest(generate(params, 800, 9)) != digest(generate(params, 800, 10))


def test_a_run_without_classes_carries_no_class_column():
    chunks = generate(class_params().classes[CODING].params, 200, 3)
    assert all("class_index" not in c.extras for c in chunks)
    assert plan(RunRequest(class_params(), 10, 1))[0].model.classes


def test_continuations_start_after_their_parent_with_arrivals():
    params = class_params({"kind": "poisson", "rate": 2.0})
    chunks = generate(params, 3000, 4, chunk_sessions=256)
    model = SessionModel.build(params, 3000, 4)
    starts = start_times(params.arrivals, 3000, model.run_key)
    for chunk in chunks:
        first_ts = chunk.timestamp_ms[chunk.row_offsets[:-1]]
        primary = chunk.extras["primary_index"]
        restart = chunk.is_restart.astype(bool)
        assert np.array_equal(first_ts[~restart], starts[primary[~restart]])
    flat = Flat(chunks)
    # a continuation's start is its parent's start plus the parent's estimated duration
    columns = _as_columns(chunks)
    durations = session_durations_ms(params.latency, columns)
    parent_of = {int(p): s for s, p in enumerate(flat.primary.tolist()) if not flat.restart[s]}
    firsts = np.concatenate([c.timestamp_ms[c.row_offsets[:-1]] for c in chunks])
    children = np.flatnonzero(flat.restart)
    assert children.size
    for child in children:
        parent = parent_of[int(flat.primary[child])]
        assert firsts[child] == pytest.approx(firsts[parent] + durations[parent])


def _as_columns(chunks: list[TraceChunk]) -> SessionColumns:
    turns = np.concatenate([c.turns_per_session for c in chunks])
    offsets = np.concatenate([[0], np.cumsum(turns)])
    sessions = turns.shape[0]
    return SessionColumns(index=np.zeros(sessions), number=np.zeros(sessions), group=np.zeros(sessions),
                          is_restart=np.zeros(sessions), end_reason=np.zeros(sessions), row_offsets=offsets,
                          input_length=np.concatenate([c.input_length for c in chunks]),
                          output_length=np.concatenate([c.output_length for c in chunks]),
                          delay_ms=np.concatenate([c.delay_ms for c in chunks]))


# --------------------------------------------------------------------------------------------
# The run's outputs


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("classes")
    return run(Workload(name="classes", params=class_params()), out, num_sessions=600, seed=2,
               html=False).run_dir


def test_sessions_jsonl_names_each_sessions_class(run_dir):
    rows = [json.loads(line) for line in (run_dir / "sessions.jsonl").read_text().splitlines()]
    dataset_sessions = [json.loads(line) for line in (run_dir / "dataset.jsonl").read_text().splitlines()]
    assert {row["class"] for row in rows} == set(NAMES)
    by_id = {row["session_id"]: row for row in rows}
    for row in rows:
        if row["parent_session_id"] is not None:
            assert row["class"] == by_id[row["parent_session_id"]]["class"]
    # the private class's own groups follow the top-level ones
    assert {row["group_id"] for row in rows if row["class"] == "private"} <= {4, 5, 6}
    assert {row["group_id"] for row in rows if row["class"] != "private"} <= {0, 1, 2, 3}
    assert len(dataset_sessions) == sum(row["turns"] for row in rows)


def test_manifest_records_each_classs_fraction_and_sessions(run_dir):
    manifest = json.loads((run_dir / "manifest.json").read_text())
    rows = [json.loads(line) for line in (run_dir / "sessions.jsonl").read_text().splitlines()]
    block = manifest["classes"]
    assert [c["name"] for c in block] == NAMES
    assert [c["fraction"] for c in block] == list(FRACTIONS.values())
    for entry in block:
        mine = [row for row in rows if row["class"] == entry["name"]]
        assert entry["sessions"] == len(mine)
        assert entry["primary_sessions"] == sum(row["link"] is None for row in mine)
    assert sum(c["primary_sessions"] for c in block) == manifest["requested_sessions"] == 600
    assert sum(c["sessions"] for c in block) == manifest["written_sessions"]


def test_validate_accepts_the_class_column_and_refuses_a_bad_one(run_dir, tmp_path):
    command = [sys.executable, "-m", "tracedsl", "validate", str(run_dir / "dataset.jsonl")]
    assert subprocess.run(command, capture_output=True, text=True, check=False).returncode == 0
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "dataset.jsonl").write_bytes((run_dir / "dataset.jsonl").read_bytes())
    lines = (run_dir / "sessions.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    first["class"] = 7
    (copy / "sessions.jsonl").write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    result = subprocess.run([sys.executable, "-m", "tracedsl", "validate", str(copy / "dataset.jsonl")],
                            capture_output=True, text=True, check=False)
    assert result.returncode != 0 and "class must be null or a class name" in result.stdout + result.stderr


def test_a_manifest_without_classes_has_no_classes_block(tmp_path):
    result = run("default", tmp_path, num_sessions=20, seed=1, html=False)
    assert "classes" not in json.loads((result.run_dir / "manifest.json").read_text())
    rows = [json.loads(line) for line in (result.run_dir / "sessions.jsonl").read_text().splitlines()]
    assert {row["class"] for row in rows} == {None}


def test_the_aiperf_engine_refuses_classes_with_e501(tmp_path):
    spec = tmp_path / "classes.spec.json"
    spec.write_text(json.dumps({"name": "classes", "generation_params": class_params().generation_params()}))
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "tracedsl", "run", str(spec), "--engine", "aiperf",
                             "-n", "10", "-o", str(out)], capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "error[E501]" in result.stderr and "classes" in result.stderr
    assert "one population of sessions, not session classes" in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(out.glob("*/dataset.jsonl"))  # nothing published


def test_the_classes_benchmark_runs_at_a_tiny_size(tmp_path):
    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "bench.json"
    completed = subprocess.run([sys.executable, str(root / "benchmarks" / "bench_classes.py"), "--sizes", "200",
                                "--out", str(out)], capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 0, completed.stderr
    (result,) = json.loads(out.read_text())
    assert result["sessions"] == 200 and result["default"]["rows"] > 0
    assert [c["name"] for c in result["mixed"]["classes"]] == ["coding", "chat"]
    assert sum(c["primary_sessions"] for c in result["mixed"]["classes"]) == 200


def test_a_class_whose_targets_never_fit_is_refused_at_its_own_field():
    from tracedsl.engine import EngineError
    from tracedsl.ir import GenerationParams

    params = class_params()
    data = params.generation_params()
    chat = data["classes"][CHAT]["params"]
    chat["turns"] = {"law": {"kind": "uniform", "min": 30.0, "max": 32.0}, "allow_truncation": False,
                     "max_session_attempts": 3}
    with pytest.raises(EngineError) as refused:
        generate(GenerationParams.model_validate(data), 200, 1)
    assert str(refused.value).startswith("class 'chat': ")
    assert refused.value.path is not None and refused.value.path.startswith(f"classes.{CHAT}.params.turns")


def test_rerunning_the_manifest_gives_the_same_bytes(run_dir, tmp_path):
    manifest = json.loads((run_dir / "manifest.json").read_text())
    again = run(run_dir, tmp_path, html=False)
    assert json.loads((again.run_dir / "manifest.json").read_text())["dataset_sha256"] == manifest["dataset_sha256"]
