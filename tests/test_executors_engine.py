"""The fast engine writes the same bytes whichever executor runs its chunk bodies."""

from __future__ import annotations

import hashlib

import pytest

from tracedsl.engine import RunRequest
from tracedsl.engine.executors import InProcess, ProcessPool
from tracedsl.engine.fast import FastEngine
from tracedsl.loading import load_spec
from tracedsl.output.jsonl import render_chunk

# Small chunks, so a run well under a second spans several (asserted below); the bytes do
# not depend on the chunk size.
SESSIONS = 3000
CHUNK_SESSIONS = 500


def _request(sessions: int = SESSIONS, seed: int = 7) -> RunRequest:
    return RunRequest(load_spec("default").params, sessions, seed)


def _digest(map_fn, request: RunRequest) -> str:
    digest = hashlib.sha256()
    for chunk in FastEngine(map_fn=map_fn, chunk_sessions=CHUNK_SESSIONS).generate(request):
        digest.update(render_chunk(chunk))
    return digest.hexdigest()


class _Recording:
    """An in-process map_fn that remembers how many chunk bodies it ran."""

    def __init__(self) -> None:
        self.tasks = 0

    def __call__(self, fn, tasks):
        for task in tasks:
            self.tasks += 1
            yield fn(task)


@pytest.fixture(scope="module")
def in_process_digest() -> str:
    recording = _Recording()
    digest = _digest(recording, _request())
    assert recording.tasks >= 3, "the run must span several chunks for this test to mean anything"
    return digest


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_process_pools_write_the_same_bytes(in_process_digest, workers):
    with ProcessPool(workers) as pool:
        assert _digest(pool, _request()) == in_process_digest


def test_session_classes_write_the_same_bytes_in_a_pool_and_in_any_chunk_size():
    # Each chunk's primaries are split by class and merged back: that must not move a byte.
    from classes_spec import class_params

    request = RunRequest(class_params(), SESSIONS, 7)
    alone = hashlib.sha256(b"".join(render_chunk(c) for c in FastEngine(chunk_sessions=10**6).generate(request)))
    assert _digest(map, request) == alone.hexdigest()
    with ProcessPool(2) as pool:
        assert _digest(pool, request) == alone.hexdigest()


def test_a_window_of_one_writes_the_same_bytes(in_process_digest):
    # Results arriving one at a time, with workers always ahead of the writer.
    with ProcessPool(2, window=1) as pool:
        assert _digest(pool, _request()) == in_process_digest


def test_the_builtin_map_is_an_executor(in_process_digest):
    assert _digest(InProcess(), _request()) == in_process_digest
    assert _digest(map, _request()) == in_process_digest


def test_dask_local_cluster_writes_the_same_bytes(in_process_digest):
    distributed = pytest.importorskip("distributed")
    from tracedsl.engine.executors import DaskExecutor

    with distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
    ) as cluster:
        with DaskExecutor(cluster.scheduler_address) as dask_map:
            assert _digest(dask_map, _request()) == in_process_digest


def test_rendering_stitched_chunks_in_a_pool_gives_the_same_bytes(in_process_digest):
    from tracedsl.engine.executors import map_alongside

    digest = hashlib.sha256()
    with ProcessPool(2) as pool:
        engine = FastEngine(map_fn=pool, chunk_sessions=CHUNK_SESSIONS)
        for chunk, data in map_alongside(pool, render_chunk, engine.generate(_request())):
            assert chunk.num_rows == data.count(b"\n")
            digest.update(data)
    assert digest.hexdigest() == in_process_digest
