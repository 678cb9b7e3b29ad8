"""The default engine: plans chunks of primary sessions, maps their bodies, stitches them in order.

Same distributions as the reference, not the same draw order (see samplers.py). The
chunk plan is a list of pure tasks (:func:`plan`, :func:`run_chunk`), so any ``map``-like
executor (a process pool, a Dask cluster) can run the bodies; the stitching pass is
cheap and sequential. Output is byte-identical whatever the chunk size, map or worker count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from tracedsl.engine import EngineError, RunRequest
from tracedsl.engine.arrivals import start_times
from tracedsl.engine.chunk import ChunkBody, ChunkTask, run_chunk
from tracedsl.engine.model import SessionModel
from tracedsl.engine.order import Stitcher
from tracedsl.trace import TraceChunk

# Primary sessions per chunk: large enough that numpy's per-call cost is amortized, small
# enough that a chunk's rows and ids stay a few tens of MB. Results do not depend on it.
CHUNK_SESSIONS = 4096

MapFn = Callable[[Callable[[ChunkTask], ChunkBody], Iterable[ChunkTask]], Iterable[ChunkBody]]

__all__ = ["CHUNK_SESSIONS", "ChunkTask", "FastEngine", "Stitcher", "plan", "run_chunk", "stitcher_for"]


def plan(request: RunRequest, chunk_sessions: int = CHUNK_SESSIONS) -> list[ChunkTask]:
    """The run as independent tasks, in file order."""
    if chunk_sessions < 1:
        raise ValueError("chunk_sessions must be at least 1")
    params = request.params
    if params.classes is not None and (params.subagent is not None
                                       or any(c.params.subagent is not None for c in params.classes)):
        # the engine draws subagents of the top-level body only (issue #13)
        raise EngineError("'subagent' with session classes is not drawn yet: this version of "
                          "tracedsl reads it but cannot run it", path="subagent")
    model = SessionModel.build(request.params, request.num_sessions, request.seed)
    chunk_sessions = model.chunk_sessions(chunk_sessions)  # fewer when sessions are large
    return [
        ChunkTask(model, first, min(first + chunk_sessions, request.num_sessions))
        for first in range(0, request.num_sessions, chunk_sessions)
    ]


def stitcher_for(request: RunRequest, model: SessionModel, spill_dir=None) -> Stitcher:
    """The run's stitching pass, with every primary's start time when the spec has arrivals
    (computed once here, for all N, so no chunking or worker moves them); ``spill_dir``: where
    many waiting continuations may wait on disk (order.py: PendingSpill)."""
    arrivals = request.params.arrivals
    if arrivals is None:
        return Stitcher(model, spill_dir=spill_dir)
    starts = start_times(arrivals, request.num_sessions, model.run_key)
    return Stitcher(model, starts, request.params.latency, spill_dir=spill_dir)


class FastEngine:
    """Vectorized, chunked, seeded generation; ``map_fn`` runs the chunk bodies (default ``map``)."""

    name = "fast"

    def __init__(self, map_fn: MapFn | None = None, chunk_sessions: int = CHUNK_SESSIONS, *,
                 spill_dir: str | Path | None = None):
        self.map_fn: Any = map_fn if map_fn is not None else map
        self.chunk_sessions = chunk_sessions
        self.spill_dir = spill_dir  # where many waiting continuations may wait (None: memory)

    def generate(self, request: RunRequest) -> Iterator[TraceChunk]:
        tasks = plan(request, self.chunk_sessions)
        if not tasks:
            return
        stitcher = stitcher_for(request, tasks[0].model, self.spill_dir)
        for body in self.map_fn(run_chunk, tasks):
            yield stitcher.add(body)
