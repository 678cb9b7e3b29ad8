"""Executors map chunk bodies in order, keep a bounded window in flight, and fail clearly."""

from __future__ import annotations

import functools
import operator
import sys

import pytest

from tracedsl.engine import executors
from tracedsl.engine.executors import (
    DASK_MISSING,
    BackgroundThread,
    ExecutorError,
    ExecutorMissing,
    InProcess,
    ProcessPool,
    make_executor,
    open_executor,
)


def _counting(tasks, pulled):
    for task in tasks:
        pulled.append(task)
        yield task


def test_in_process_maps_in_order():
    assert list(InProcess()(functools.partial(operator.mul, 3), range(5))) == [0, 3, 6, 9, 12]


def test_pool_returns_results_in_task_order():
    with ProcessPool(2) as pool:
        # pow(2, n) is cheap and order-sensitive: any reordering shows.
        assert list(pool(functools.partial(pow, 2), range(40))) == [2**n for n in range(40)]


def test_pool_keeps_a_bounded_window_in_flight():
    pulled: list[int] = []
    with ProcessPool(2, window=3) as pool:
        results = pool(functools.partial(pow, 2), _counting(range(1000), pulled))
        assert next(results) == 1
        # Three submitted at the start, one topped up before the first result was taken.
        assert len(pulled) == 4
        assert next(results) == 2
        assert len(pulled) == 5
        results.close()  # the caller stops early: queued work is cancelled, no hang


def test_pool_passes_on_a_chunk_body_error_unchanged():
    with ProcessPool(2) as pool:
        with pytest.raises(ValueError, match="invalid literal"):
            list(pool(int, ["1", "2", "not a number", "4"]))


def test_dead_worker_becomes_an_executor_error():
    import os

    with ProcessPool(1) as pool:
        with pytest.raises(ExecutorError, match="worker process died"):
            list(pool(os._exit, [3]))


def test_small_runs_and_one_worker_stay_in_process():
    small = executors.IN_PROCESS_BELOW_SESSIONS - 1
    assert isinstance(make_executor(workers=4, num_sessions=small), InProcess)
    assert isinstance(make_executor(workers=1, num_sessions=10**7), InProcess)
    with open_executor(workers=2, num_sessions=10**7) as chosen:
        assert isinstance(chosen, ProcessPool) and chosen.workers == 2


def test_default_workers_is_the_core_count():
    with open_executor(num_sessions=10**7) as chosen:
        assert chosen.workers == executors.default_workers() >= 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"executor": "spark"}, "unknown executor 'spark'"),
        ({"workers": 0}, "--workers must be at least 1"),
        ({"executor": "dask"}, "needs --scheduler"),
        ({"scheduler": "tcp://x:8786"}, "only used with --executor dask"),
    ],
)
def test_bad_options_are_value_errors(options, message):
    with pytest.raises(ValueError, match=message):
        make_executor(**options)


def test_missing_dask_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails as if absent
    with pytest.raises(ExecutorMissing) as caught:
        make_executor(executor="dask", scheduler="tcp://127.0.0.1:1")
    assert str(caught.value) == DASK_MISSING
    assert "pip install tracedsl[dask]" in DASK_MISSING


def test_unreachable_scheduler_is_named():
    pytest.importorskip("distributed")
    with pytest.raises(
        ExecutorError, match=r"cannot reach the Dask scheduler at 'tcp://127\.0\.0\.1:9'"
    ):
        executors.DaskExecutor("tcp://127.0.0.1:9", timeout=1)


def test_dask_maps_in_order_on_a_local_cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=1, processes=False, threads_per_worker=2, dashboard_address=None
    ) as cluster:
        with make_executor(executor="dask", scheduler=cluster.scheduler_address) as dask_map:
            assert dask_map.workers == 2
            assert list(dask_map(functools.partial(pow, 3), range(30))) == [3**n for n in range(30)]


def test_dask_refuses_workers_with_other_versions(monkeypatch):
    distributed = pytest.importorskip("distributed")
    import numpy

    with distributed.LocalCluster(
        n_workers=1, processes=True, threads_per_worker=1, dashboard_address=None
    ) as cluster:
        # The worker is its own process, so it still reports the real numpy version.
        monkeypatch.setattr(numpy, "__version__", "0.0.0")
        with pytest.raises(
            ExecutorError, match=r"differ from this client \(tracedsl .*numpy 0\.0\.0\)"
        ):
            make_executor(executor="dask", scheduler=cluster.scheduler_address)


def test_dask_names_workers_without_tracedsl(tmp_path):
    distributed = pytest.importorskip("distributed")
    hide = tmp_path / "hide_tracedsl.py"
    hide.write_text("import sys\nsys.modules['tracedsl'] = None  # as if not installed\n")
    with distributed.LocalCluster(
        n_workers=1,
        processes=True,
        threads_per_worker=1,
        dashboard_address=None,
        preload=[str(hide)],
    ) as cluster:
        with pytest.raises(ExecutorError, match="cannot import tracedsl.*install tracedsl"):
            make_executor(executor="dask", scheduler=cluster.scheduler_address)


def test_dask_names_a_scheduler_without_tracedsl(tmp_path):
    # The scheduler unpickles every task: one in an environment without tracedsl would fail
    # the first chunk with Dask's "Error during deserialization of the task graph".
    import json
    import subprocess
    import time

    pytest.importorskip("distributed")
    hide = tmp_path / "hide_tracedsl.py"
    hide.write_text("import sys\nsys.modules['tracedsl'] = None  # as if not installed\n")
    address_file = tmp_path / "scheduler.json"
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
         "--no-dashboard", "--scheduler-file", str(address_file), "--preload", str(hide)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not address_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.2)  # the file is written whole, but give the scheduler a moment to listen
        address = json.loads(address_file.read_text())["address"]
        with pytest.raises(ExecutorError, match=r"scheduler at .* cannot run tracedsl's tasks.*install tracedsl"):
            make_executor(executor="dask", scheduler=address)
    finally:
        scheduler.terminate()
        scheduler.wait(timeout=30)


def test_dask_chunks_the_cluster_cannot_read_are_named():
    pytest.importorskip("distributed")

    class Unreadable:
        def result(self):
            raise RuntimeError("Error during deserialization of the task graph. This frequently occurs ...")

    executor = object.__new__(executors.DaskExecutor)
    executor.scheduler = "tcp://somewhere:8786"
    with pytest.raises(ExecutorError, match=r"'tcp://somewhere:8786' could not read a task.*same tracedsl"):
        executor._collect(Unreadable())


@pytest.mark.parametrize("map_fn", [map, InProcess()])
def test_map_alongside_pairs_each_item_with_its_result(map_fn):
    pairs = list(executors.map_alongside(map_fn, functools.partial(pow, 2), range(6)))
    assert pairs == [(n, 2**n) for n in range(6)]


def test_map_alongside_in_a_pool_keeps_only_the_window():
    pulled: list[int] = []
    with ProcessPool(2, window=2) as pool:
        pairs = executors.map_alongside(
            pool, functools.partial(pow, 2), _counting(range(100), pulled)
        )
        assert next(pairs) == (0, 1)
        assert len(pulled) == 3
        assert list(pairs)[-1] == (99, 2**99)


def test_background_thread_runs_every_call_in_order_on_another_thread():
    import threading

    seen: list[tuple[int, str]] = []
    with BackgroundThread(lambda n: seen.append((n, threading.current_thread().name)), depth=2,
                          name="writer") as background:
        for n in range(50):
            background.put(n)
    assert seen == [(n, "writer") for n in range(50)]


def test_background_thread_error_comes_back_to_the_caller():
    done: list[int] = []

    def step(n: int) -> None:
        if n == 3:
            raise OSError(28, "No space left on device")
        done.append(n)

    background = BackgroundThread(step, depth=1)
    with pytest.raises(OSError, match="No space left"):
        for n in range(1000):  # the failure surfaces on a later put, not after all of them
            background.put(n)
    with pytest.raises(OSError, match="No space left"):
        background.close()
    assert done == [0, 1, 2]  # nothing runs after the failure


def test_background_thread_lets_the_callers_own_error_through():
    import threading

    release = threading.Event()
    started = threading.Event()
    done: list[int] = []

    def step(n: int) -> None:
        started.set()
        release.wait(5)
        done.append(n)
        raise OSError("a failure on the thread, not the one to report")

    with pytest.raises(KeyError, match="the caller's"):
        with BackgroundThread(step, depth=4) as background:
            for n in range(3):
                background.put(n)
            assert started.wait(5)  # the thread is inside the first call (however busy the machine)
            threading.Timer(0.2, release.set).start()  # after the caller has failed
            raise KeyError("the caller's")
    assert done == [0]  # what was still queued is dropped, not run


def test_map_alongside_keeps_each_item_and_sends_what_send_makes_of_it():
    from tracedsl.engine.executors import map_alongside

    items = [(n, "x" * 1000) for n in range(20)]  # the bulky half stays here
    with ProcessPool(2) as pool:
        pairs = list(map_alongside(pool, functools.partial(pow, 2), items, send=operator.itemgetter(0)))
    assert pairs == [(item, 2 ** item[0]) for item in items]


def test_run_help_states_the_pool_threshold():
    from click.testing import CliRunner

    from tracedsl.cli import cli

    text = " ".join(CliRunner().invoke(cli, ["run", "--help"]).output.split())
    assert f"runs under {executors.IN_PROCESS_BELOW_SESSIONS:,} sessions stay in one process" in text
