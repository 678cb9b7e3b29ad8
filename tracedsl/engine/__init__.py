"""IR → sessions: the engines, each turning GenerationParams and a seed into TraceChunks.

Every engine has the same interface (:class:`Engine`); the CLI, the writer, the manifest
and the reports are shared. Engines are pure: no clock, no environment, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from tracedsl.ir import GenerationParams
from tracedsl.trace import TraceChunk


class EngineError(Exception):
    """The spec cannot be run by this engine; ``path`` names the spec field that hit the limit."""

    def __init__(self, message: str, path: str | None = None, hint: str | None = None):
        self.path = path
        self.hint = hint
        super().__init__(message)


@dataclass(frozen=True)
class RunRequest:
    params: GenerationParams
    num_sessions: int
    seed: int


class Engine(Protocol):
    name: str

    def generate(self, request: RunRequest) -> Iterator[TraceChunk]:
        """Yield the trace in file order, chunk by chunk (whole sessions per chunk)."""
        ...


ENGINE_NAMES = ("fast", "aiperf")


def get_engine(name: str) -> Engine:
    if name == "fast":
        from tracedsl.engine.fast import FastEngine

        return FastEngine()
    if name == "aiperf":
        from tracedsl.engine.aiperf import AiperfEngine

        return AiperfEngine()
    raise ValueError(f"unknown engine {name!r}; choose one of {', '.join(ENGINE_NAMES)}")
