"""TraceChunks → Mooncake JSONL rows, byte for byte as the reference writes them, streamed to disk.

The fast path renders a whole chunk at once with numpy: orjson prints every hash id of the
chunk in one call, the few small fields of each row (session id, lengths, delay or
timestamp, group) are laid out in a fixed-width byte matrix and compacted, and one boolean
mask interleaves the two streams. No per-row Python objects are made. Chunks the fast path
cannot print exactly (negative or enormous delays) go through per-row dicts and orjson,
which is the definition of the format; a test keeps the two byte-identical.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import orjson

from tracedsl.trace import TraceChunk

# Delays and timestamps below this are printed as "<k // 10>.<k % 10>"; at this size the
# gap between doubles is far below 0.1, so that string is exactly Python's/orjson's repr.
_FAST_FLOAT_LIMIT = 1e12
# x * 10 is within a few ulps of the true product; only values this close to a .5
# boundary can round differently from Python's correctly rounded round(x, 1).
_ROUNDING_GUARD = 0.01


class JsonlWriter:
    """Writes chunks to ``path`` as they come, counting rows and hashing the bytes."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._file = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        self._hash = hashlib.sha256()
        self.rows = 0
        self.sessions = 0
        self.bytes_written = 0

    def write(self, chunk: TraceChunk) -> None:
        data = render_chunk(chunk)
        self._hash.update(data)
        self._file.write(data)
        self.rows += chunk.num_rows
        self.sessions += chunk.num_sessions
        self.bytes_written += len(data)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def render_chunk(chunk: TraceChunk) -> bytes:
    """The JSONL bytes of every row of ``chunk``, each row ending in a newline."""
    if chunk.num_rows == 0:
        return b""
    rounded = _rounded_floats(chunk)
    if rounded is None:
        return render_chunk_rows(chunk)
    return _render_fast(chunk, *rounded)


def row_dicts(chunk: TraceChunk):
    """The rows as dicts in the reference's key order (the format's definition; slow)."""
    first_rows = set(chunk.row_offsets[:-1].tolist())
    session_of_row = np.repeat(np.arange(chunk.num_sessions), chunk.turns_per_session).tolist()
    for row in range(chunk.num_rows):
        session = session_of_row[row]
        out = {
            "session_id": chunk.session_ids[session],
            "input_length": int(chunk.input_length[row]),
            "output_length": int(chunk.output_length[row]),
            "hash_ids": chunk.row_hash_ids(row).tolist(),
        }
        if row in first_rows:
            timestamp = float(chunk.timestamp_ms[row])
            if not math.isnan(timestamp):
                out["timestamp"] = round(timestamp, 1)
            group = int(chunk.group_ids[session])
            if group >= 0:
                out["group_id"] = group
            if bool(chunk.is_restart[session]):
                out["is_restart"] = True
        else:
            delay = float(chunk.delay_ms[row])
            if not math.isnan(delay):
                out["delay"] = round(delay, 1)
        yield out


def render_chunk_rows(chunk: TraceChunk) -> bytes:
    """The slow, obviously right rendering: one dict and one orjson call per row."""
    return b"".join(orjson.dumps(row) + b"\n" for row in row_dicts(chunk))


# --------------------------------------------------------------------------------------------
# The fast path


def _rounded_floats(chunk: TraceChunk) -> tuple[np.ndarray, np.ndarray] | None:
    """Per row: the printed float (timestamp on turn 0, else delay) as tenths, and whether present.

    None when some value is outside what the fast path prints exactly.
    """
    first = np.zeros(chunk.num_rows, dtype=bool)
    first[chunk.row_offsets[:-1][chunk.turns_per_session > 0]] = True
    values = np.where(first, chunk.timestamp_ms, chunk.delay_ms).astype(np.float64)
    present = ~np.isnan(values)
    shown = values[present]
    if shown.size and not (np.all(shown >= 0.0) and np.all(shown < _FAST_FLOAT_LIMIT)):
        return None
    scaled = shown * 10.0
    tenths = np.rint(scaled)
    near_half = np.abs(np.abs(scaled - np.floor(scaled)) - 0.5) < _ROUNDING_GUARD
    if near_half.any():
        exact = [round(v, 1) * 10.0 for v in shown[near_half].tolist()]
        tenths[near_half] = np.rint(np.asarray(exact, dtype=np.float64))
    all_tenths = np.zeros(chunk.num_rows, dtype=np.int64)
    all_tenths[present] = tenths.astype(np.int64)
    return all_tenths, present


def _render_fast(chunk: TraceChunk, tenths: np.ndarray, present: np.ndarray) -> bytes:
    rows = chunk.num_rows
    turns = chunk.turns_per_session
    session_of_row = np.repeat(np.arange(chunk.num_sessions), turns)
    first = np.zeros(rows, dtype=bool)
    first[chunk.row_offsets[:-1][turns > 0]] = True
    later = ~first
    group = chunk.group_ids[session_of_row].astype(np.int64)
    restart = chunk.is_restart[session_of_row].astype(bool)

    ids_text, ids_lengths = _hash_id_text(chunk)

    head_tail = _Matrix(rows)
    head_tail.session_strings(chunk.session_ids, session_of_row)
    head_tail.const(b',"input_length":')
    head_tail.integer(chunk.input_length)
    head_tail.const(b',"output_length":')
    head_tail.integer(chunk.output_length)
    head_tail.const(b',"hash_ids":[')
    head_end = head_tail.width_so_far()
    head_tail.const(b"]")
    head_tail.const(b',"timestamp":', first & present)
    head_tail.const(b',"delay":', later & present)
    head_tail.tenths(tenths, present)
    head_tail.const(b',"group_id":', first & (group >= 0))
    head_tail.integer(group, first & (group >= 0))
    head_tail.const(b',"is_restart":true', first & restart)
    head_tail.const(b"}\n")
    matrix, valid = head_tail.build()

    head_lengths = valid[:, :head_end].sum(axis=1)
    tail_lengths = valid[:, head_end:].sum(axis=1)
    pieces = np.stack([head_lengths, ids_lengths, tail_lengths], axis=1).ravel()
    is_id_byte = np.repeat(np.tile(np.array([False, True, False]), rows), pieces)
    out = np.empty(is_id_byte.shape[0], dtype=np.uint8)
    out[is_id_byte] = ids_text
    out[~is_id_byte] = matrix[valid]
    return out.tobytes()


def _hash_id_text(chunk: TraceChunk) -> tuple[np.ndarray, np.ndarray]:
    """Every row's hash ids as "1,2,3" text, concatenated, and each row's text length."""
    ids = np.ascontiguousarray(chunk.hash_ids, dtype=np.int64)
    offsets = chunk.hash_offsets.astype(np.int64)
    text = np.frombuffer(orjson.dumps(ids, option=orjson.OPT_SERIALIZE_NUMPY), dtype=np.uint8)
    count = ids.shape[0]
    if count == 0:
        return np.zeros(0, dtype=np.uint8), np.zeros(chunk.num_rows, dtype=np.int64)
    commas = np.flatnonzero(text == ord(","))
    starts = np.empty(count, dtype=np.int64)
    starts[0] = 1
    starts[1:] = commas + 1
    ends = np.empty(count, dtype=np.int64)
    ends[:-1] = commas
    ends[-1] = text.shape[0] - 1
    lo, hi = offsets[:-1], offsets[1:]
    filled = hi > lo
    lengths = np.zeros(chunk.num_rows, dtype=np.int64)
    lengths[filled] = ends[hi[filled] - 1] - starts[lo[filled]]
    keep = np.ones(text.shape[0], dtype=bool)
    keep[0] = keep[-1] = False
    # The comma after a row's last id separates rows, not ids: it is not printed.
    last_ids = hi[filled][:-1] - 1
    keep[ends[last_ids]] = False
    return text[keep], lengths


class _Matrix:
    """Per-row byte fields laid side by side at fixed width; ``valid`` marks the bytes printed."""

    def __init__(self, rows: int):
        self.rows = rows
        self.blocks: list[np.ndarray] = []
        self.masks: list[np.ndarray] = []

    def width_so_far(self) -> int:
        return sum(block.shape[1] for block in self.blocks)

    def _add(self, block: np.ndarray, mask: np.ndarray) -> None:
        self.blocks.append(block)
        self.masks.append(mask)

    def const(self, text: bytes, when: np.ndarray | None = None) -> None:
        block = np.broadcast_to(np.frombuffer(text, dtype=np.uint8), (self.rows, len(text)))
        mask = np.ones((self.rows, len(text)), dtype=bool)
        if when is not None:
            mask &= when[:, None]
        self._add(block, mask)

    def session_strings(self, session_ids: list[str], session_of_row: np.ndarray) -> None:
        """'{"session_id":"…"' per row, JSON-escaped once per session."""
        texts = [b'{"session_id":' + orjson.dumps(sid) for sid in session_ids]
        width = max(len(t) for t in texts)
        table = np.zeros((len(texts), width), dtype=np.uint8)
        lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
        flat = np.frombuffer(b"".join(texts), dtype=np.uint8)
        table_mask = np.arange(width)[None, :] < lengths[:, None]
        table[table_mask] = flat
        self._add(table[session_of_row], table_mask[session_of_row])

    def integer(self, values: np.ndarray, when: np.ndarray | None = None) -> None:
        """Decimal integers, with a minus sign where negative."""
        values = values.astype(np.int64)
        negative = values < 0
        magnitude = np.abs(values).astype(np.uint64)
        digits, digit_mask = _digits(magnitude)
        sign = np.full((self.rows, 1), ord("-"), dtype=np.uint8)
        sign_mask = negative[:, None].copy()
        if when is not None:
            digit_mask &= when[:, None]
            sign_mask &= when[:, None]
        self._add(sign, sign_mask)
        self._add(digits, digit_mask)

    def tenths(self, tenths: np.ndarray, when: np.ndarray) -> None:
        """Non-negative numbers of tenths printed as a float: 268361 → "26836.1"."""
        whole, fraction = np.divmod(tenths, 10)
        digits, digit_mask = _digits(whole.astype(np.uint64))
        self._add(digits, digit_mask & when[:, None])
        point = np.empty((self.rows, 2), dtype=np.uint8)
        point[:, 0] = ord(".")
        point[:, 1] = ord("0") + fraction
        self._add(point, np.repeat(when[:, None], 2, axis=1))

    def build(self) -> tuple[np.ndarray, np.ndarray]:
        return np.hstack(self.blocks), np.hstack(self.masks)


def _digits(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Right-aligned decimal digits of unsigned values, and a mask without leading zeros."""
    largest = int(values.max()) if values.size else 0
    width = max(1, len(str(largest)))
    digits = np.empty((values.shape[0], width), dtype=np.uint8)
    rest = values.copy()
    for column in range(width - 1, -1, -1):
        rest, digit = np.divmod(rest, np.uint64(10))
        digits[:, column] = digit + ord("0")
    count = np.ones(values.shape[0], dtype=np.int64)
    power = 10
    for _ in range(width - 1):
        count += values >= np.uint64(power)
        power *= 10
    mask = np.arange(width)[None, :] >= (width - count)[:, None]
    return digits, mask
