"""The simulation's inputs and the page sample's bounds, in pure Python (cheap for CLI start-up).

``tracedsl simulate`` builds its options from these at import time, so this module must not
import numpy, jinja2 or the model; everything heavy is imported when the command runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

LAYERS = ("common", "shared", "private", "output")

# The page's sample: the first sessions in file order, stopping before the first session that
# would pass any of these (the first session always fits). 2000 sessions of a default
# coding-agent trace is about 1 MB of page and simulates in ~0.6 s CPU in Python.
MAX_SESSIONS = 2000
MAX_ROWS = 40_000
MAX_ID_NUMBERS = 400_000  # numbers in the range-compressed hash ids
DEFAULT_BLOCK_SIZE = 512  # Mooncake's; a run directory's manifest says its own


@dataclass(frozen=True)
class SimulationConfig:
    """The simulation's inputs (the page's controls have the same names and defaults)."""

    concurrency: int = 50
    prefill_tps: float = 64000.0
    decode_tps: float = 30.0
    kv_gb: float = 300.0
    kv_bytes_per_token: int = 35136
    block_size: int = DEFAULT_BLOCK_SIZE

    def problems(self) -> list[str]:
        """What is wrong with these inputs, as ``field: message`` strings (empty when valid)."""
        out = []
        if self.concurrency < 1:
            out.append("concurrency: must be at least 1")
        for name in ("prefill_tps", "decode_tps", "kv_gb"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                out.append(f"{name}: must be a positive number")
        if self.kv_bytes_per_token < 1:
            out.append("kv_bytes_per_token: must be at least 1")
        if self.block_size < 1:
            out.append("block_size: must be at least 1")
        return out

    @property
    def capacity_blocks(self) -> int:
        """Whole KV blocks that fit: floor(GB·1e9 / (bytes per token · block size))."""
        return math.floor(self.kv_gb * 1e9 / (self.kv_bytes_per_token * self.block_size))
