"""TraceChunks → Mooncake JSONL rows, byte for byte as the reference writes them, streamed to disk.

The fast path renders a whole chunk at once with numpy: orjson prints every hash id of the
chunk in one call, the few small fields of each row (session id, lengths, delay or
timestamp, group) are laid out in a fixed-width byte matrix and compacted, and one boolean
mask interleaves the two streams. No per-row Python objects are made. Chunks the fast path
cannot print exactly (negative or enormous delays) go through per-row dicts and orjson,
which is the definition of the format; a test keeps the two byte-identical.

Printing need not happen where the file is written: a worker process can print a chunk
(``render_chunk``) and hand the bytes to ``JsonlWriter.write``, or print it into a file of
its own (``render_to_part``), which the writer appends with ``os.copy_file_range`` so the
bytes never pass through this process. Either way the writer counts the rows and keeps each
piece's size and CRC-32, and a :class:`ReadBack` reads every piece once, as it is written,
checking its CRC-32 and computing the SHA-256 the manifest records.
"""

from __future__ import annotations

import errno
import hashlib
import math
import os
import tempfile
import zlib
from dataclasses import dataclass, replace
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


@dataclass(frozen=True)
class RenderedPart:
    """A chunk's JSONL bytes, printed by a worker into a file of their own (``render_to_part``)."""

    path: str
    size: int
    crc32: int


class WrittenFileDiffers(Exception):
    """The file read back is not what was written."""


class JsonlWriter:
    """Writes chunks to ``path`` as they come, counting rows and keeping each piece's size and CRC."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._file = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        self.rows = 0
        self.sessions = 0
        self.bytes_written = 0
        self.pieces: list[tuple[int, int]] = []  # (size, CRC-32) of each write, in file order

    def write(self, chunk: TraceChunk, rendered: bytes | RenderedPart | None = None) -> tuple[int, int]:
        """Append the chunk's rows; ``rendered`` is ``render_chunk(chunk)`` (or a ``render_to_part``
        of it, which is moved into the file and removed) when printed elsewhere. Returns the
        piece's size and CRC-32, once its bytes are in the file."""
        if isinstance(rendered, RenderedPart):
            self._file.flush()
            _append_file(rendered.path, self._file, rendered.size)
            os.unlink(rendered.path)
            size, crc = rendered.size, rendered.crc32
        else:
            data = _render(chunk) if rendered is None else rendered
            self._file.write(data)
            self._file.flush()  # in the file before this returns, for a ReadBack to check
            size, crc = len(data), zlib.crc32(data)
        self.pieces.append((size, crc))
        self.rows += chunk.num_rows
        self.sessions += chunk.num_sessions
        self.bytes_written += size
        return size, crc

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# Marks a chunk whose hash ids travel as their runs only (see ``packed_for_printing``).
_IDS_IN_RUNS = "hash_ids_in_runs"


def packed_for_printing(chunk: TraceChunk) -> TraceChunk:
    """The chunk as sent to another process to print: hash ids as runs only, when it has them.

    The ids are two thirds of a fast-engine chunk's bytes, their runs about a tenth;
    ``render_packed`` expands them again on the other side.
    """
    offsets, start, length = hash_runs(chunk)
    if offsets is chunk.extras.get("hash_run_offsets"):  # the engine's runs, checked consistent
        extras = {**chunk.extras, _IDS_IN_RUNS: True}
        return replace(chunk, hash_ids=np.zeros(0, dtype=chunk.hash_ids.dtype), extras=extras)
    return chunk


def render_packed(chunk: TraceChunk) -> bytes:
    """``render_chunk`` of a chunk from ``packed_for_printing``: the same bytes as the original's."""
    if chunk.extras.get(_IDS_IN_RUNS):
        start, length = chunk.extras["hash_run_start"], chunk.extras["hash_run_length"]
        first_of_run = np.repeat(start - np.cumsum(length) + length, length)
        ids = (first_of_run + np.arange(first_of_run.shape[0])).astype(chunk.hash_ids.dtype)
        extras = {k: v for k, v in chunk.extras.items() if k != _IDS_IN_RUNS}
        chunk = replace(chunk, hash_ids=ids, extras=extras)
    return render_chunk(chunk)


def render_to_part(chunk: TraceChunk, directory: str) -> RenderedPart:
    """``render_packed(chunk)`` written to a new file in ``directory`` (for ``JsonlWriter.write``)."""
    data = render_packed(chunk)
    handle, name = tempfile.mkstemp(prefix=".part-", suffix=".jsonl", dir=directory)
    with os.fdopen(handle, "wb") as part:
        part.write(data)
    return RenderedPart(name, len(data), zlib.crc32(data))


def _append_file(source_path: str, target, size: int) -> None:
    """Append ``size`` bytes of the file at ``source_path`` to the open ``target`` (flushed)."""
    with open(source_path, "rb") as source:
        copied = 0
        try:
            # in the kernel, with no copy through this process (and none at all on file
            # systems that share blocks)
            while copied < size:
                step = os.copy_file_range(source.fileno(), target.fileno(), size - copied)
                if step == 0:
                    break
                copied += step
        except (AttributeError, OSError) as error:  # no such call here, or not between these files
            if isinstance(error, OSError) and error.errno not in _NO_COPY_RANGE:
                raise
            source.seek(copied)
            while copied < size and (block := source.read(min(1 << 22, size - copied))):
                target.write(block)
                copied += len(block)
            target.flush()
    if copied != size:
        raise WrittenFileDiffers(f"{source_path} holds {copied} bytes, not the {size} printed")


_NO_COPY_RANGE = {errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL, errno.EPERM, errno.EBADF}


class ReadBack:
    """Re-reads a file piece by piece as it is written: each piece's CRC-32, the lines, the SHA-256.

    Open it once the writer has created the file; ``check`` each piece after it was written
    (and flushed); ``finish`` once the writer is closed. Raises WrittenFileDiffers, naming
    the first piece that differs, or OSError.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._handle = open(self.path, "rb")  # noqa: SIM115 - closed in close()
        self._digest = hashlib.sha256()
        self.lines = 0
        self.offset = 0
        self.pieces = 0

    def check(self, size: int, crc: int) -> None:
        found = 0
        left = size
        while left and (block := self._handle.read(min(1 << 22, left))):
            self._digest.update(block)
            found = zlib.crc32(block, found)
            self.lines += block.count(b"\n")
            left -= len(block)
        self.pieces += 1
        if left or found != crc:
            raise WrittenFileDiffers(
                f"{self.path}: bytes {self.offset}-{self.offset + size} (piece {self.pieces}) "
                "differ from what was written")
        self.offset += size

    def finish(self, rows: int) -> str:
        """After the last piece, with the writer closed: nothing more, ``rows`` lines; the SHA-256."""
        if self._handle.read(1):
            raise WrittenFileDiffers(f"{self.path} is longer than the {self.offset} bytes written")
        if self.lines != rows:
            raise WrittenFileDiffers(f"{self.path} holds {self.lines} lines, but {rows} rows were written")
        return self._digest.hexdigest()

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> ReadBack:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_back(path: str | Path, pieces: list[tuple[int, int]], rows: int) -> str:
    """Re-read a finished file (see :class:`ReadBack`); its SHA-256."""
    with ReadBack(path) as reread:
        for size, crc in pieces:
            reread.check(size, crc)
        return reread.finish(rows)


def render_chunk(chunk: TraceChunk) -> bytes:
    """The JSONL bytes of every row of ``chunk``, each row ending in a newline."""
    if chunk.num_rows == 0:
        return b""
    return bytes(_render(chunk))


def _render(chunk: TraceChunk) -> bytes | np.ndarray:
    """The chunk's bytes, as a uint8 array when the fast path printed them."""
    if chunk.num_rows == 0:
        return b""
    rounded = _rounded_floats(chunk)
    fast = _render_fast(chunk, *rounded) if rounded is not None else None
    return render_chunk_rows(chunk) if fast is None else fast


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
#
# A chunk's bytes are two interleaved streams. The ids stream is orjson's print of all the
# chunk's hash ids, "[1,2,…,9]" less its opening bracket: each row's ids followed by one
# separator byte (a comma, or the closing bracket), which becomes that row's "]". The glue
# stream holds everything else: glue j is row j-1's tail (after its "]", up to the
# newline) and row j's head (up to its "["). Both streams' per-row lengths are computed
# arithmetically, so one boolean mask interleaves them; no per-row Python objects are made.

_DIGIT_GROUP = 10_000  # digits are looked up four at a time, as one 4-byte word
_WORD = np.dtype("<u4")  # the glue is laid out in 4-byte words, NUL where nothing is printed
_MAX_SESSION_TEXT = 256  # longer (foreign) session ids go the slow way: the glue is fixed-width


def _words(texts: list[bytes], width: int) -> np.ndarray:
    """Texts as rows of ``width`` words, NUL-padded."""
    joined = b"".join(text.ljust(4 * width, b"\0") for text in texts)
    return np.frombuffer(joined, dtype=_WORD).reshape(len(texts), width)


def _digit_table() -> tuple[np.ndarray, np.ndarray]:
    """Words for 0..9999 without leading zeros, then with them, then the empty word; and their lengths."""
    # Built with numpy, not 20,000 str() calls: it runs at import, on every CLI start.
    values = np.arange(_DIGIT_GROUP, dtype=np.uint32)
    zero = np.uint32(ord("0"))
    padded = ((values // 1000 + zero) | (values // 100 % 10 + zero) << 8  # first digit first
              | (values // 10 % 10 + zero) << 16 | (values % 10 + zero) << 24)
    lengths = 1 + (values >= 10).astype(np.int64) + (values >= 100) + (values >= 1000)
    unpadded = padded >> (8 * (4 - lengths)).astype(np.uint32)  # leading zeros out, NULs in
    words = np.concatenate([unpadded, padded, np.zeros(1, np.uint32)]).astype(_WORD)
    return words, np.concatenate([lengths, np.full(_DIGIT_GROUP, 4), [0]]).astype(np.int64)


_GROUP_WORDS, _GROUP_LENGTHS = _digit_table()
_EMPTY_GROUP = 2 * _DIGIT_GROUP
# Row j-1's tail starts with "]" only when its ids are empty (else the ids stream has it).
_TAIL_LEADS = [b"", b',"delay":', b',"timestamp":']
_TAIL_LEADS = _TAIL_LEADS + [b"]" + lead for lead in _TAIL_LEADS]
_TAIL_LEAD_WORDS = _words(_TAIL_LEADS, 4)
_TAIL_LEAD_LENGTHS = np.array([len(t) for t in _TAIL_LEADS], dtype=np.int64)
_TENTH_WORDS = _words([b"." + str(d).encode() for d in range(10)] + [b""], 1)[:, 0].copy()


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


def _render_fast(chunk: TraceChunk, tenths: np.ndarray, present: np.ndarray) -> np.ndarray | None:
    """The chunk's bytes as a uint8 array, or None when a value is outside what this path prints."""
    ids = np.ascontiguousarray(chunk.hash_ids, dtype=np.int64)
    if ids.size and int(ids.min()) < 0:
        return None
    texts = [b'{"session_id":' + orjson.dumps(sid) for sid in chunk.session_ids]
    if max(map(len, texts)) > _MAX_SESSION_TEXT:
        return None
    id_text, id_lengths = _hash_id_text(chunk, ids)
    glue, glue_lengths = _glue(chunk, texts, tenths, present, id_lengths > 0)
    pieces = np.empty(2 * chunk.num_rows + 1, dtype=np.int64)
    pieces[0::2] = glue_lengths
    pieces[1::2] = id_lengths
    is_id = np.zeros(pieces.shape[0], dtype=bool)
    is_id[1::2] = True
    at_id = np.repeat(is_id, pieces)
    out = np.empty(at_id.shape[0], dtype=np.uint8)
    out[at_id] = id_text
    out[~at_id] = glue
    # each filled row's separator (a comma between rows) closes that row's list
    out[np.cumsum(pieces)[1::2][id_lengths > 0] - 1] = ord("]")
    return out


def hash_runs(chunk: TraceChunk) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's hash ids as runs of consecutive ids: (run_offsets by row, run_start, run_length).

    Taken from ``chunk.extras`` when the engine supplied them (see docs/architecture.md),
    else found in ``hash_ids``.
    """
    extras = chunk.extras
    if "hash_run_offsets" in extras:
        offsets = extras["hash_run_offsets"]
        start, length = extras["hash_run_start"], extras["hash_run_length"]
        consistent = (
            offsets.shape == (chunk.num_rows + 1,)
            and start.shape == length.shape == (int(offsets[-1]),)
            and int(length.sum()) == chunk.hash_ids.shape[0]
        )
        if consistent:
            return offsets, start, length
    ids = chunk.hash_ids.astype(np.int64, copy=False)
    begins = np.ones(ids.shape[0], dtype=bool)
    np.not_equal(ids[1:], ids[:-1] + 1, out=begins[1:])
    row_starts = chunk.hash_offsets[:-1]
    begins[row_starts[row_starts < ids.shape[0]]] = True
    first = np.flatnonzero(begins)
    length = np.diff(np.append(first, ids.shape[0]))
    offsets = np.searchsorted(first, chunk.hash_offsets).astype(np.int64)
    return offsets, ids[first], length


def _run_digits(start: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Digits printed by all the ids of each run: one per id, plus one per power of ten each reaches."""
    start = start.astype(np.int64, copy=False)
    length = length.astype(np.int64, copy=False)
    total = length.copy()
    if not length.size:
        return total
    largest = int((start + np.maximum(length, 1) - 1).max())
    for power in range(1, len(str(largest))):
        total += length - np.clip(10**power - start, 0, length)  # ids at or above 10**power
    return total


def _hash_id_text(chunk: TraceChunk, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ids stream, and each row's length in it (its ids' text and separator; 0 when it has none)."""
    rows = chunk.num_rows
    if not ids.size:
        return np.zeros(0, dtype=np.uint8), np.zeros(rows, dtype=np.int64)
    run_offsets, run_start, run_length = hash_runs(chunk)
    digits_before = np.zeros(run_start.shape[0] + 1, dtype=np.int64)
    np.cumsum(_run_digits(run_start, run_length), out=digits_before[1:])
    counts = np.diff(chunk.hash_offsets)
    # digits, the commas between the row's ids and the separator after them: a comma each
    lengths = digits_before[run_offsets[1:]] - digits_before[run_offsets[:-1]] + counts
    text = np.frombuffer(orjson.dumps(ids, option=orjson.OPT_SERIALIZE_NUMPY), dtype=np.uint8)
    return text[1:], lengths


class _Glue:
    """Glue rows as fields of 4-byte words side by side; NUL bytes are dropped when built."""

    def __init__(self, rows: int):
        self.rows = rows
        self.fields: list[tuple[slice, np.ndarray]] = []
        self.lengths = np.zeros(rows, dtype=np.int64)

    def add(self, rows: slice, words: np.ndarray, lengths: np.ndarray | int) -> None:
        """``words``: (n, k) for the glue rows ``rows``, or (k,) for every one of them."""
        self.fields.append((rows, words if words.ndim == 2 else words[None, :]))
        self.lengths[rows] += lengths

    def const(self, rows: slice, text: bytes) -> None:
        self.add(rows, _words([text], -(-len(text) // 4))[0], len(text))

    def number(self, rows: slice, values: np.ndarray, shown: np.ndarray | None = None) -> None:
        """Non-negative integers in decimal (nothing where ``shown`` is False)."""
        rest = values.astype(np.uint64)
        groups: list[np.ndarray] = []  # least significant first
        while True:
            before = rest
            rest, group = np.divmod(before, np.uint64(_DIGIT_GROUP))
            code = group.astype(np.intp)
            code[rest > 0] += _DIGIT_GROUP  # a group with more digits before it keeps its zeros
            if groups:
                code[before == 0] = _EMPTY_GROUP
            groups.append(code)
            if not rest.any():
                break
        words = np.empty((values.shape[0], len(groups)), dtype=_WORD)
        lengths = np.zeros(values.shape[0], dtype=np.int64)
        for column, code in enumerate(reversed(groups)):
            if shown is not None:
                code[~shown] = _EMPTY_GROUP
            words[:, column] = _GROUP_WORDS[code]
            lengths += _GROUP_LENGTHS[code]
        self.add(rows, words, lengths)

    def integer(self, rows: slice, values: np.ndarray) -> None:
        """Integers in decimal, with a minus sign where negative."""
        values = values.astype(np.int64)
        negative = values < 0
        if negative.any():
            self.add(rows, np.where(negative, ord("-"), 0).astype(_WORD)[:, None], negative)
        self.number(rows, np.abs(values).astype(np.uint64))  # int64's minimum maps to 2**63

    def build(self) -> np.ndarray:
        """The printed bytes, glue row after glue row."""
        width = sum(words.shape[1] for _, words in self.fields)
        matrix = np.zeros((self.rows, width), dtype=_WORD)
        column = 0
        for rows, words in self.fields:
            matrix[rows, column : column + words.shape[1]] = words
            column += words.shape[1]
        flat = matrix.view(np.uint8).ravel()
        return flat[flat != 0]


def _glue(chunk: TraceChunk, texts: list[bytes], tenths: np.ndarray, present: np.ndarray, filled: np.ndarray):
    """Glue rows 0..R and their lengths: glue j is row j-1's tail and row j's head."""
    rows = chunk.num_rows
    turns = chunk.turns_per_session
    session_of_row = np.repeat(np.arange(chunk.num_sessions), turns)
    first = np.zeros(rows, dtype=bool)
    first[chunk.row_offsets[:-1][turns > 0]] = True
    glue = _Glue(rows + 1)

    tail = slice(1, rows + 1)
    lead = np.where(present, np.where(first, 2, 1), 0) + np.where(filled, 0, 3)
    glue.add(tail, _TAIL_LEAD_WORDS[lead], _TAIL_LEAD_LENGTHS[lead])
    glue.number(tail, tenths // 10, present)
    glue.add(tail, _TENTH_WORDS[np.where(present, tenths % 10, 10)][:, None], present * 2)
    group = chunk.group_ids.astype(np.int64)[session_of_row]
    with_group = first & (group >= 0)
    if with_group.any():
        label = b',"group_id":'
        glue.add(tail, np.where(with_group[:, None], _words([label], 3), 0), with_group * len(label))
        glue.number(tail, np.maximum(group, 0), with_group)
    restart = first & chunk.is_restart.astype(bool)[session_of_row]
    if restart.any():
        label = b',"is_restart":true'
        glue.add(tail, np.where(restart[:, None], _words([label], 5), 0), restart * len(label))

    # "}\n" ends row j-1 and the session text starts row j: one lookup per glue row
    openings = [b"}\n" + text + b',"input_length":' for text in texts]
    openings += [openings[session_of_row[0]][2:], b"}\n"]
    width = -(-max(map(len, openings)) // 4)
    which = np.empty(rows + 1, dtype=np.int64)
    which[0], which[1:rows], which[rows] = len(texts), session_of_row[1:], len(texts) + 1
    lengths = np.array([len(t) for t in openings], dtype=np.int64)
    glue.add(slice(0, rows + 1), _words(openings, width)[which], lengths[which])

    head = slice(0, rows)
    glue.integer(head, chunk.input_length)
    glue.const(head, b',"output_length":')
    glue.integer(head, chunk.output_length)
    glue.const(head, b',"hash_ids":[')
    return glue.build(), glue.lengths
