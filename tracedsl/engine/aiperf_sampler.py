"""The reference's sessions, drawn in its exact order from one numpy stream (AIPerf 0.13.0).

Every draw the reference makes is made here, in the same order, with the same roundings
(reference doc §8.3–§8.8): restart injection, session id bytes, restart turn, group, L2,
outputs, both delay components, new tokens, reset checks, then the scatter of restart
continuations. The result is per-turn columns in generation order plus the file order of
sessions; hash ids are laid out afterwards (aiperf_layout.py).
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tracedsl import families
from tracedsl.engine import EngineError
from tracedsl.engine._pcg_stream import NumpyStream
from tracedsl.ir import GenerationParams, Lognormal
from tracedsl.spill import SpillFolder

# The reference's prefix allocator limits (its PrefixAllocator constants).
MAX_GROUP_BLOCKS = 200
MAX_GROUPS = 1000
MAX_SESSION_BLOCKS = 4000

# Rows held in memory before the per-row columns move to files (24 bytes a row): the
# reference draws every session before it writes one, so a run's rows must wait somewhere.
SPILL_ROWS = 1 << 21


class SampledRows:
    """The per-row columns (new tokens, outputs, delays) of a run: in memory, or in files.

    Once spilled, each access maps the files afresh and the mapping goes with the call, so
    only what one chunk reads is resident, and only while it is read. The files go with
    the folder holding them (:meth:`close`, or when the last holder is dropped).
    """

    DTYPES = (np.int64, np.int64, np.float64)

    def __init__(self, arrays: tuple[np.ndarray, ...] | None, files: tuple[Path, ...] | None,
                 count: int, folder: SpillFolder | None = None):
        self._arrays = arrays
        self._files = files
        self.count = count
        self._folder = folder

    @property
    def spilled(self) -> bool:
        return self._files is not None

    def _columns(self) -> tuple[np.ndarray, ...]:
        if self._arrays is not None:
            return self._arrays
        assert self._files is not None
        return tuple(np.memmap(file, dtype=dtype, mode="r", shape=(self.count,))
                     for file, dtype in zip(self._files, self.DTYPES, strict=True))

    def take(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(new tokens, outputs, delays) of ``rows``, as arrays of their own."""
        new_tokens, outputs, delays = self._columns()
        return np.array(new_tokens[rows]), np.array(outputs[rows]), np.array(delays[rows])

    def new_tokens(self, start: int, stop: int) -> np.ndarray:
        return np.array(self._columns()[0][start:stop])

    def close(self) -> None:
        if self._folder is not None:
            self._folder.close()


class _RowSpill:
    """Appends the sampler's row columns to three files in a :class:`SpillFolder`."""

    def __init__(self, parent: str | Path | None):
        self.folder = SpillFolder(parent, ".tracedsl-rows-")
        self.files = tuple(self.folder.file(name) for name in ("new_tokens", "outputs", "delays"))
        for file in self.files:
            file.touch()
        self.count = 0

    def append(self, columns: tuple[array, ...]) -> None:
        for file, column in zip(self.files, columns, strict=True):
            with open(file, "ab") as handle:
                column.tofile(handle)
        self.count += len(columns[0])
        for column in columns:
            del column[:]


@dataclass
class Sampled:
    """Sessions in generation order (continuations right after their origin) and the file order."""

    session_keys: np.ndarray  # each id's 48-bit number (see ``session_names``)
    group_ids: np.ndarray
    regions: np.ndarray  # the session index that picks the hash-id region
    is_restart: np.ndarray
    end_reasons: np.ndarray
    row_offsets: np.ndarray
    rows: SampledRows  # per row: new tokens (the input_length written; turn 0: the whole
    # context), output length, delay (NaN on turn 0)
    file_order: np.ndarray  # session numbers (generation order) in the order they are written


def session_names(keys: np.ndarray) -> list[str]:
    """The reference's session ids: ``sess-`` and the hex of the 6 bytes of each key, little-endian."""
    return ["sess-" + key.to_bytes(6, "little").hex() for key in keys.tolist()]


def bounded_draw(stream: NumpyStream, dist: Lognormal, scale: float = 1.0) -> Callable[[], float]:
    """One draw of the reference's bounded lognormal (reject up to 100 rounds, then clip), from
    the family's reference law; ``scale`` multiplies the variable (bias)."""
    try:
        law = families.law(dist, "aiperf", scale)
    except ValueError as exc:  # a family AIPerf does not have
        raise EngineError(f"the aiperf engine cannot draw this distribution: {exc}") from exc
    return law.drawer(stream.standard_normal)


class AiperfSampler:
    """Draws one run of the reference from ``(params, seed)``.

    ``spill_dir``: where the row columns go once a run has more than ``SPILL_ROWS`` rows (a
    temporary folder is made in it; default: the system's temporary directory).
    """

    def __init__(self, params: GenerationParams, seed: int, spill_dir: str | Path | None = None):
        self.params = params
        self.spill_dir = spill_dir
        self._spill: _RowSpill | None = None
        self.rows_spilled = 0
        self.stream = stream = NumpyStream(seed)
        block = params.block_size
        self.layer1_blocks = params.layer1_blocks
        self.layer1_5_blocks = params.layer1_5_blocks
        self.context_limit = params.max_prompt_tokens
        self.fixed_prefix = params.fixed_prefix_tokens
        self.output_floor = float(params.output_floor)
        # Cumulative inputs above this need more than MAX_SESSION_BLOCKS session blocks.
        self.session_block_limit = (
            MAX_SESSION_BLOCKS + self.layer1_blocks + self.layer1_5_blocks
        ) * block

        groups = params.cache.layer1_5_groups
        weights = np.array([1.0 / (k**groups.zipf_alpha) for k in range(1, groups.num_groups + 1)])
        weights = weights / weights.sum()
        cdf = weights.cumsum()
        cdf /= cdf[-1]
        self.group_cdf = cdf.tolist()

        new_tokens = params.new_tokens_per_turn
        self.draw_new = bounded_draw(stream, new_tokens, new_tokens.bias)
        self.draw_output = bounded_draw(stream, params.generation_length)
        self.draw_layer2 = bounded_draw(stream, params.cache.layer2)
        delay = params.inter_turn_delay
        self.draw_agentic = bounded_draw(stream, delay.agentic_delay)
        self.draw_human = bounded_draw(stream, delay.human_delay)
        self.agentic_fraction = float(delay.agentic_fraction)
        self.delay_max = None if delay.max is None else float(delay.max)

        self.session_keys = array("q")  # 48-bit ids, 8 bytes a session instead of a str's ~70
        self.group_ids = array("q")
        self.regions = array("q")
        self.is_restart = array("b")
        self.end_reasons = array("b")
        self.row_starts = array("q")
        self.new_tokens = array("q")
        self.outputs = array("q")
        self.delays = array("d")
        self.session_counter = 0

    # Helpers ------------------------------------------------------------------------------

    def new_session_id(self) -> int:
        """``bytes(16)``; the id is the hex of the first 6 bytes, kept as their number."""
        uint32 = self.stream.uint32
        first, second = uint32(), uint32()
        uint32(), uint32()
        return first | (second & 0xFFFF) << 32

    def initial_context(self) -> int:
        layer2 = max(int(self.draw_layer2()), 1)
        return min(self.fixed_prefix + layer2, self.context_limit - 1)

    def output(self) -> int:
        return int(max(self.draw_output(), self.output_floor))

    def delay(self, prev_input: int) -> float:
        """The mixture delay, clipped, scaled down as the context fills, clipped again."""
        agentic = self.stream.random() < self.agentic_fraction
        agentic_delay = self.draw_agentic()
        human_delay = self.draw_human()  # both components are always drawn
        delay = agentic_delay if agentic else human_delay
        delay_max = self.delay_max
        if delay_max is not None:
            delay = min(delay, delay_max)
        delay *= max(0.2, 1.0 - 0.8 * (prev_input / self.context_limit))
        if delay_max is not None:
            delay = min(delay, delay_max)
        return delay

    def check_blocks(self, cumulative_input: int) -> None:
        if cumulative_input > self.session_block_limit:
            block = self.params.block_size
            needed = -(-cumulative_input // block) - self.layer1_blocks - self.layer1_5_blocks
            raise EngineError(
                f"AIPerf 0.13.0 would crash here: a turn of session {len(self.session_keys)} has "
                f"{cumulative_input} tokens of context, which needs {needed} session blocks of "
                f"block_size {block}, over its MAX_SESSION_BLOCKS={MAX_SESSION_BLOCKS} "
                f"(max_prompt_tokens={self.context_limit} allows up to "
                f"{-(-(self.context_limit - 1) // block) - self.layer1_blocks - self.layer1_5_blocks})",
                path="block_size",
                hint="raise block_size or lower max_prompt_tokens so that "
                "max_prompt_tokens / block_size stays within 4000 blocks beyond L1 and L1.5",
            )

    def open_session(self, session_id: int, group: int, region: int, restart: bool) -> None:
        if len(self.new_tokens) >= SPILL_ROWS:  # between sessions: a retry only drops its own rows
            self._spill_rows()
        self.session_keys.append(session_id)
        self.group_ids.append(group)
        self.regions.append(region)
        self.is_restart.append(restart)
        self.row_starts.append(self.rows_spilled + len(self.new_tokens))

    def _spill_rows(self) -> None:
        if self._spill is None:
            self._spill = _RowSpill(self.spill_dir)
        self._spill.append((self.new_tokens, self.outputs, self.delays))
        self.rows_spilled = self._spill.count

    def turn_zero(self, context: int, output: int) -> None:
        self.check_blocks(context)
        self.new_tokens.append(context)
        self.outputs.append(output)
        self.delays.append(math.nan)

    # Result -------------------------------------------------------------------------------

    def _result(self, file_order: list[int]) -> Sampled:
        # Views of the sampler's arrays, not copies: a copy would double the run's largest
        # columns at the moment memory peaks (a numpy view keeps its array alive, and nothing
        # is appended once sampling is done).
        total = self.rows_spilled + len(self.new_tokens)
        row_offsets = np.empty(len(self.row_starts) + 1, dtype=np.int64)
        row_offsets[:-1] = np.frombuffer(self.row_starts, dtype=np.int64)
        row_offsets[-1] = total
        if self._spill is None:
            rows = SampledRows(tuple(np.frombuffer(column, dtype=dtype) for column, dtype in zip(
                (self.new_tokens, self.outputs, self.delays), SampledRows.DTYPES, strict=True)), None, total)
        else:
            self._spill_rows()
            rows = SampledRows(None, self._spill.files, total, self._spill.folder)
        return Sampled(
            session_keys=np.frombuffer(self.session_keys, dtype=np.int64),
            group_ids=np.frombuffer(self.group_ids, dtype=np.int64),
            regions=np.frombuffer(self.regions, dtype=np.int64),
            is_restart=np.frombuffer(self.is_restart, dtype=np.int8).astype(bool),
            end_reasons=np.frombuffer(self.end_reasons, dtype=np.int8),
            row_offsets=row_offsets,
            rows=rows,
            file_order=np.array(file_order, dtype=np.int64),
        )

    def sample(self, num_sessions: int) -> Sampled:
        if self.params.turns is not None:
            from tracedsl.engine.aiperf_turns import sample_explicit_turns

            return self._result(sample_explicit_turns(self, num_sessions))
        from tracedsl.engine.aiperf_reset import sample_reset_mode

        return self._result(sample_reset_mode(self, num_sessions))

    def group(self) -> int:
        """``choice(G, p=zipf)``: one double, searched from the right in the cdf."""
        return bisect_right(self.group_cdf, self.stream.random())
