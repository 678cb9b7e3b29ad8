"""Where chunk bodies run: in this process, in a local process pool, or on a Dask cluster.

An executor is a ``map_fn``: called as ``executor(run_chunk, tasks)`` it returns an
iterator of results **in task order**, like the builtin ``map``. The fast engine plans
its chunks, maps the chunk bodies with whichever executor it was given, and stitches the
results in order, so the bytes written never depend on where a chunk ran.

The pool and the Dask executor keep at most ``window`` chunks in flight (submitted but
not yet taken by the caller). Results are buffered only up to that window, so memory
stays flat however many chunks a run has, even when the workers outpace the writer.

Usage (the CLI wiring)::

    with open_executor(workers=workers, executor=kind, scheduler=address,
                       num_sessions=n) as map_fn:
        for chunk in FastEngine(map_fn=map_fn).generate(request): ...
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

Task = TypeVar("Task")
Result = TypeVar("Result")

EXECUTOR_NAMES = ("local", "dask")

# Below this many sessions a run stays in this process whatever --workers says. A run in
# one process already keeps two cores busy (threads beside the main one print and write the
# dataset, check it and read it back); a pool takes the printing off this process (the workers
# print into part files that the writer appends in the kernel) but pays for sending every
# chunk to a worker. Measured end to end on 2 cores (docs/performance.md, "Workers"), a
# pool of two against one process: 0.94x at 20k sessions, 1.06x at 50k, 1.04x at 100k,
# 1.13x at 200k, 1.12x at 500k; it also cuts this process's own CPU by 25-50%, which more
# cores can turn into wall time.
IN_PROCESS_BELOW_SESSIONS = 100_000

# How long to keep trying to reach a Dask scheduler before giving up with a message.
SCHEDULER_TIMEOUT_S = 10.0

DASK_MISSING = (
    "the Dask executor needs dask.distributed, which is not installed; "
    "install it with: pip install tracedsl[dask]"
)


class ExecutorError(Exception):
    """An executor could not be started or lost its workers; the message says what to do."""


class ExecutorMissing(ExecutorError):
    """The executor asked for is not installed here (an optional extra)."""


def default_workers() -> int:
    """The number of cores this process may use (the default for --workers)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class InProcess:
    """Run every chunk body here, one after another (the builtin ``map``)."""

    name = "in-process"
    workers = 1

    def __call__(self, fn: Callable[[Task], Result], tasks: Iterable[Task]) -> Iterator[Result]:
        return map(fn, tasks)

    def close(self) -> None:
        pass

    def __enter__(self) -> InProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _ordered_window(
    submit: Callable[[Any], Any],
    collect: Callable[[Any], Any],
    cancel: Callable[[Any], None],
    tasks: Iterable[Any],
    window: int,
) -> Iterator[Any]:
    """Yield ``collect(submit(task))`` in task order, keeping at most ``window`` in flight."""
    pending: deque = deque()
    task_iter = iter(tasks)
    try:
        for task in task_iter:
            pending.append(submit(task))
            if len(pending) >= window:
                break
        while pending:
            future = pending.popleft()
            # Top up before blocking, so the workers never sit idle while we wait.
            for task in task_iter:
                pending.append(submit(task))
                break
            yield collect(future)
    finally:
        # The caller stopped early (an error downstream, Ctrl-C): drop what is queued.
        for future in pending:
            cancel(future)


# The signals that stop a run. Pool workers ignore them: the parent alone decides what an
# interrupted run does (it stops the workers, then removes what it wrote), so a Ctrl-C sent
# to the whole process group prints no worker traceback and breaks no pool.
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM") if hasattr(signal, name)
)

# How long ``ProcessPool.abort`` waits for workers to finish the chunk they are on before it
# kills them (a chunk takes well under a second).
ABORT_WAIT_S = 3.0

_PR_SET_PDEATHSIG = 1  # linux/prctl.h

_LIVE_POOLS: weakref.WeakSet = weakref.WeakSet()


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM on this thread for the block; one that arrives is taken after it.

    For the moments a signal must not split in two: a worker being started (the child
    inherits the mask, and its initializer ignores the signals before it lets them in) and a
    thread being started (it inherits the mask too, so the signal goes to the main thread).
    """
    if not hasattr(signal, "pthread_sigmask") or not STOP_SIGNALS:
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _worker_start(parent: int | None) -> None:
    """A pool worker's first act: ignore Ctrl-C and SIGTERM, and die with the parent.

    It starts with the signals held (see ``signals_held``), so none can reach it before this.
    On Linux the kernel SIGKILLs the worker when the process that started it ends, however it
    ends (even by SIGKILL); a parent already gone by now is noticed here.
    """
    for number in STOP_SIGNALS:
        signal.signal(number, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if parent is not None and os.getppid() != parent:
        os._exit(1)
    if hasattr(signal, "pthread_sigmask") and STOP_SIGNALS:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


_STOPPED: Any = None  # in a worker: the pool's stop event (set by the parent on abort)


def _worker_init(parent: int | None, stopped: Any) -> None:
    global _STOPPED
    _STOPPED = stopped
    _worker_start(parent)


def _unless_stopped(fn: Callable[[Task], Result], task: Task) -> Result | None:
    """``fn(task)``, or nothing once the pool is being aborted (queued chunks end at once)."""
    if _STOPPED is not None and _STOPPED.is_set():
        return None
    return fn(task)


class ProcessPool:
    """Run chunk bodies in ``workers`` local processes, results in task order.

    ``close`` waits for the work in flight; ``abort`` (an error or a signal stopped the run)
    lets each worker finish only the chunk it is on, skips the rest and waits for the workers
    to exit, killing them after ``ABORT_WAIT_S``. Workers ignore SIGINT and SIGTERM and, on
    Linux, die with the process that made the pool.
    """

    name = "processes"

    def __init__(self, workers: int, window: int | None = None, start_method: str | None = None):
        from concurrent.futures import ProcessPoolExecutor

        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers = workers
        # Two chunks per worker: one running, one ready to start the moment it finishes.
        self.window = window or 2 * workers
        context = multiprocessing.get_context(start_method or _start_method())
        method = context.get_start_method()
        self._stopped = context.Event()
        self._aborted = False
        # forkserver's workers are the server's children, not this process's.
        parent = None if method == "forkserver" else os.getpid()
        with signals_held():
            self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                             initializer=_worker_init,
                                             initargs=(parent, self._stopped))
            _LIVE_POOLS.add(self)
            if method == "fork":
                # Fork every worker now, while this is the only thread: the caller may start
                # threads of its own (the dataset writer) before it submits the first chunk.
                try:
                    self._pool.submit(os.getpid).result()
                except BaseException:
                    self.abort()
                    raise

    def __call__(self, fn: Callable[[Task], Result], tasks: Iterable[Task]) -> Iterator[Result]:
        return _ordered_window(self._submit(fn), self._collect, self._cancel, tasks, self.window)

    def _submit(self, fn: Callable[[Task], Result]) -> Callable[[Task], Any]:
        def submit(task: Task) -> Any:
            # Held: a submit may start a worker or the pool's own threads.
            with signals_held():
                return self._pool.submit(_unless_stopped, fn, task)
        return submit

    def _cancel(self, future: Any) -> None:
        # While aborting, the pool cancels what is queued itself; a future cancelled here
        # too could meet the pool's own bookkeeping (InvalidStateError on its thread).
        if not self._aborted:
            future.cancel()

    @staticmethod
    def _collect(future: Any) -> Any:
        from concurrent.futures.process import BrokenProcessPool

        try:
            return future.result()
        except BrokenProcessPool as exc:
            raise ExecutorError(
                "a worker process died while sampling (out of memory, or killed); "
                "rerun with fewer --workers"
            ) from exc

    def worker_pids(self) -> list[int]:
        """The pids of the worker processes alive now."""
        processes = getattr(self._pool, "_processes", None) or {}
        return [p.pid for p in list(processes.values()) if p.is_alive()]

    def close(self) -> None:
        if self._aborted:
            return
        self._pool.shutdown(wait=True, cancel_futures=True)
        _LIVE_POOLS.discard(self)

    def abort(self, wait: float = ABORT_WAIT_S) -> None:
        """Stop now: queued chunks are skipped, workers exit (or are killed) before this returns.

        Once it returns no worker of this pool runs, so none can still write a file.
        """
        if self._aborted:
            return
        self._aborted = True
        self._stopped.set()
        processes = list((getattr(self._pool, "_processes", None) or {}).values())
        with signals_held():
            self._pool.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + wait
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
        for process in processes:
            if process.is_alive():
                process.kill()
        for process in processes:
            process.join(1.0)
        _LIVE_POOLS.discard(self)

    def __enter__(self) -> ProcessPool:
        return self

    def __exit__(self, exc_type: object, *exc_info: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def abort_pools() -> None:
    """Abort every local pool still open in this process (an interrupted run's last step)."""
    for pool in list(_LIVE_POOLS):
        pool.abort()


def _start_method() -> str:
    # fork starts a worker in ~15 ms and shares the parent's imports; forkserver and spawn
    # re-import numpy and tracedsl in each worker (~0.2 s here). Forking is only safe while
    # this process runs no other thread (a lock held by one would stay held in the child),
    # so with threads alive, or where fork does not exist, take the safe methods.
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return "fork"
    return "forkserver" if "forkserver" in methods else "spawn"


class DaskExecutor:
    """Run chunk bodies on a Dask distributed cluster; the caller (the writer) stays here."""

    name = "dask"

    def __init__(self, scheduler: str, window: int | None = None, timeout: float | None = None):
        try:
            from distributed import Client
        except ImportError as exc:
            raise ExecutorMissing(DASK_MISSING) from exc
        timeout = SCHEDULER_TIMEOUT_S if timeout is None else timeout
        try:
            self._client = Client(scheduler, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ExecutorError(
                f"cannot reach the Dask scheduler at {scheduler!r} within {timeout:g} s: {exc}"
            ) from exc
        self.scheduler = scheduler
        try:
            self._check_scheduler()
            self.workers = self._check_workers()
            self.window = window or 2 * max(1, self.workers)
        except BaseException:
            self._client.close()
            raise

    def _check_scheduler(self) -> None:
        """The scheduler unpickles every task, so it too must be able to import tracedsl."""
        here = _worker_versions()
        try:
            found = self._client.run_on_scheduler(_worker_versions)
        except Exception as exc:  # Dask re-raises the scheduler's failure as a plain Exception
            raise ExecutorError(
                f"the Dask scheduler at {self.scheduler!r} cannot run tracedsl's tasks ({exc}); "
                f"install tracedsl {here['tracedsl']} in the scheduler's environment too"
            ) from exc
        if found != here:
            raise ExecutorError(
                f"the Dask scheduler at {self.scheduler!r} has {_versions_text(found)}, this client "
                f"{_versions_text(here)}; install the same versions everywhere"
            )

    def _check_workers(self) -> int:
        """Every worker must run the same tracedsl and numpy as here, or the bytes could differ."""
        here = _worker_versions()
        try:
            versions = self._client.run(_worker_versions)
        except Exception as exc:
            # Dask re-raises a worker's failure to unpickle as a plain Exception.
            if "tracedsl" not in str(exc):
                raise
            raise ExecutorError(
                f"a Dask worker cannot import tracedsl ({exc}); install tracedsl "
                f"{here['tracedsl']} on every worker"
            ) from exc
        if not versions:
            raise ExecutorError(f"the Dask scheduler at {self.scheduler!r} has no workers")
        wrong = {addr: found for addr, found in versions.items() if found != here}
        if wrong:
            listed = "; ".join(
                f"{addr} has {_versions_text(found)}" for addr, found in sorted(wrong.items())
            )
            raise ExecutorError(
                f"Dask workers differ from this client ({_versions_text(here)}): {listed}; "
                "install the same versions everywhere"
            )
        workers = self._client.scheduler_info()["workers"].values()
        return sum(info.get("nthreads", 1) for info in workers)

    def __call__(self, fn: Callable[[Task], Result], tasks: Iterable[Task]) -> Iterator[Result]:
        return _ordered_window(
            lambda task: self._client.submit(fn, task, pure=False),
            self._collect,
            lambda future: future.cancel(),
            tasks,
            self.window,
        )

    def _collect(self, future: Any) -> Any:
        from distributed import KilledWorker

        try:
            return future.result()
        except KilledWorker as exc:
            raise ExecutorError(
                f"Dask workers kept dying on a chunk ({exc}); check their memory and logs, "
                "or run with fewer sessions per worker"
            ) from exc
        except RuntimeError as exc:
            if "deserializ" not in str(exc):
                raise
            raise ExecutorError(
                f"the Dask cluster at {self.scheduler!r} could not read a task ({exc}); "
                "the scheduler and the workers need the same tracedsl and numpy as this client"
            ) from exc

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _worker_versions() -> dict[str, str]:
    """What decides the bytes a chunk body produces, besides its task."""
    import numpy

    from tracedsl import __version__

    return {"tracedsl": __version__, "numpy": numpy.__version__}


def _versions_text(versions: dict[str, str]) -> str:
    return ", ".join(f"{name} {version}" for name, version in versions.items())


def map_alongside(
    map_fn: Callable[[Callable[[Any], Result], Iterable[Any]], Iterable[Result]],
    fn: Callable[[Any], Result],
    items: Iterable[Task],
    send: Callable[[Task], Any] | None = None,
) -> Iterator[tuple[Task, Result]]:
    """Yield ``(item, fn(item))`` in order, running ``fn`` with ``map_fn``; items stay here too.

    For work after the stitching pass, e.g. rendering each stitched chunk to JSONL bytes in
    the workers while this process keeps the chunk for its checks and reports. ``send``,
    when given, makes what travels to ``fn`` from the item (``fn(send(item))``), e.g. a
    smaller form of it. Only the executor's window of items is held here at a time.
    """
    kept: deque = deque()

    def remembered() -> Iterator[Any]:
        for item in items:
            kept.append(item)
            yield item if send is None else send(item)

    for result in map_fn(fn, remembered()):
        yield kept.popleft(), result


class BackgroundThread:
    """Calls ``step(*args)`` on a thread of its own for each ``put(*args)``, in the order put.

    For per-chunk work that releases the GIL (numpy, hashing, file writes), e.g. printing and
    writing dataset.jsonl on a second core while this thread samples and reports. At most
    ``depth`` calls wait, so memory stays flat. An error raised by ``step`` comes back from
    the next ``put`` or from ``close``; later calls are then skipped.
    """

    def __init__(self, step: Callable[..., object], depth: int = 2, name: str = "background"):
        import queue

        self._step = step
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._drain, name=name, daemon=True)
        self._thread.start()

    def put(self, *args: object) -> None:
        self._raise_error()
        self._queue.put(args)

    def _drain(self) -> None:
        while (args := self._queue.get()) is not None:
            if self._error is None and not self._stopping:  # keep taking calls: put never blocks
                try:
                    self._step(*args)
                except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                    self._error = exc

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        """Wait until every call put has run; raise what went wrong on the thread."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._raise_error()

    def __enter__(self) -> BackgroundThread:
        return self

    def __exit__(self, exc_type: object, *exc_info: object) -> None:
        if exc_type is None:
            self.close()
            return
        # The caller failed: skip what is queued, and let the caller's error be the one reported.
        self._stopping = True
        with contextlib.suppress(BaseException):
            self.close()


def make_executor(
    executor: str = "local",
    workers: int | None = None,
    scheduler: str | None = None,
    num_sessions: int | None = None,
) -> InProcess | ProcessPool | DaskExecutor:
    """The executor for ``--executor``/``--workers``/``--scheduler``; ValueError on bad options.

    ``local`` with one worker, or a run smaller than ``IN_PROCESS_BELOW_SESSIONS``, runs
    in this process. ``dask`` needs ``scheduler`` (an address such as tcp://host:8786).
    """
    if executor not in EXECUTOR_NAMES:
        raise ValueError(
            f"unknown executor {executor!r}; choose one of {', '.join(EXECUTOR_NAMES)}"
        )
    if workers is not None and workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    if executor == "dask":
        if not scheduler:
            raise ValueError("--executor dask needs --scheduler ADDRESS (e.g. tcp://host:8786)")
        return DaskExecutor(scheduler)
    if scheduler:
        raise ValueError("--scheduler is only used with --executor dask")
    workers = default_workers() if workers is None else workers
    small = num_sessions is not None and num_sessions < IN_PROCESS_BELOW_SESSIONS
    if workers == 1 or small:
        return InProcess()
    return ProcessPool(workers)


@contextlib.contextmanager
def open_executor(**options: Any) -> Iterator[InProcess | ProcessPool | DaskExecutor]:
    """``make_executor`` as a context manager: workers are shut down however the run ends."""
    chosen = make_executor(**options)
    try:
        yield chosen
    finally:
        chosen.close()
