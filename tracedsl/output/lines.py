"""Physical lines of a JSONL file → parsed rows, or a located reason why a line is not one.

Handles what real files throw at a reader: a UTF-8 byte-order mark, blank lines (skipped,
still counted), lines too long to hold, bytes that are not UTF-8 or not JSON, NaN and
Infinity, numbers out of range, and JSON values that are not objects.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import orjson

BOM = b"\xef\xbb\xbf"
# A 200k-token context at block size 1 prints about 1.4 MB of ids; 64 MiB is far beyond any
# real row and keeps a corrupt file without newlines from filling memory.
MAX_LINE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class LineProblem:
    """A line that is not a usable row: its kind, message and column (1-based) when known."""

    kind: str
    message: str
    column: int | None = None


def parsed_lines(
    handle: BinaryIO, max_line_bytes: int = MAX_LINE_BYTES
) -> Iterator[tuple[int, dict | LineProblem, bytes]]:
    """Yield (line number, row or problem, raw bytes) for every non-blank line.

    A leading byte-order mark is reported as its own problem on line 1 and the rest of the
    line is still parsed, so one stray BOM does not hide the row behind it.
    """
    for number, raw in raw_lines(handle, max_line_bytes):
        if type(raw) is LineProblem:
            yield number, raw, b""
        else:
            yield number, parse_line(raw), raw


def raw_lines(handle: BinaryIO, max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[tuple[int, bytes | LineProblem]]:
    """Yield (line number, raw bytes or problem) for every non-blank line, unparsed (see parsed_lines)."""
    for numbers, raws, _ in raw_line_batches(handle, max_line_bytes):
        yield from zip(numbers, raws, strict=True)


def raw_line_batches(
    handle: BinaryIO, max_line_bytes: int = MAX_LINE_BYTES
) -> Iterator[tuple[Sequence[int], list[bytes | LineProblem], bool]]:
    """The non-blank lines of each block read: (line numbers, raw bytes or problems, any problem?).

    The file is read in large blocks and split, which costs far less per line than readline;
    a block whose lines all start with "{" and fit (the common case) is handed on as it is.
    """
    for block in line_blocks(handle, max_line_bytes):
        batch = block.batch()
        if batch[1]:
            yield batch


PAD = 32  # zero bytes around a block's text (``LineBlock.padded``), so every 8-byte read stays inside


class LineBlock:
    """The whole lines of one block read: their text, split into lines only when asked (``batch``).

    ``padded`` is the lines joined by newlines, with a final newline, between ``PAD`` zero
    bytes either side (None for a line reported too long): the one copy a block is read into.
    ``text`` is the lines alone, made from it when asked; ``first`` the number of its first line.
    """

    __slots__ = ("first", "padded", "_text", "_count", "_batch", "_max_line_bytes")

    def __init__(self, first: int, text: bytes | None, max_line_bytes: int,
                 batch: tuple[Sequence[int], list, bool] | None = None, padded: bytes | None = None) -> None:
        self.first = first
        self._text = text
        self.padded = padded if padded is not None or text is None else bytes(PAD) + text + b"\n" + bytes(PAD)
        self._count: int | None = None
        self._max_line_bytes = max_line_bytes
        self._batch = batch

    @property
    def text(self) -> bytes | None:
        if self._text is None and self.padded is not None:
            self._text = self.padded[PAD : len(self.padded) - PAD - 1]
        return self._text

    @property
    def count(self) -> int:
        """How many physical lines the block holds."""
        if self._count is None:
            if self.padded is None:
                self._count = len(self._batch[0]) if self._batch is not None else 0
            else:
                self._count = int(np.count_nonzero(np.frombuffer(self.padded, dtype=np.uint8) == 10))
        return self._count

    def known_count(self, count: int) -> None:
        """The line count, when the caller has found the lines already (a plain block's rows)."""
        self._count = count

    def batch(self) -> tuple[Sequence[int], list[bytes | LineProblem], bool]:
        """As raw_line_batches gives it: (line numbers, raw bytes or problems, any problem?)."""
        if self._batch is None:
            pieces = self.text.split(b"\n")
            first, longest = self.first, self._max_line_bytes
            if [piece[:1] for piece in pieces].count(b"{") == len(pieces) and max(map(len, pieces)) <= longest:
                self._batch = (range(first, first + len(pieces)), pieces, False)
            else:
                self._batch = _sorted_out(pieces, first, longest)
        return self._batch


def line_blocks(handle: BinaryIO, max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[LineBlock]:
    """The file's lines, a block read at a time (see LineBlock); every line is in one block.

    Each block is read into a buffer behind the unfinished line of the block before, and
    copied out once, padded (``LineBlock.padded``).
    """
    number = 0
    carry = b""  # the start of a line whose end is in a later block
    skipping = False  # inside a line already reported as too long
    buffer = bytearray(PAD + _BLOCK_BYTES + PAD)
    view = memoryview(buffer)
    while True:
        if len(buffer) < PAD + len(carry) + _BLOCK_BYTES + PAD:  # a long line: room for it and a block
            view.release()
            buffer = bytearray(PAD + len(carry) + _BLOCK_BYTES + PAD)
            view = memoryview(buffer)
        start = PAD + len(carry)
        buffer[PAD:start] = carry
        got = handle.readinto(view[start : start + _BLOCK_BYTES])
        if not got:
            break
        end = start + got
        if skipping:
            cut = buffer.find(b"\n", start, end)
            if cut < 0:
                continue
            skipping = False
            rest = bytes(view[cut + 1 : end])  # the end of the line reported as too long
            carry = b""
            buffer[PAD : PAD + len(rest)] = rest
            end = PAD + len(rest)
        cut = buffer.rfind(b"\n", PAD, end)
        if cut >= 0:
            carry = bytes(view[cut + 1 : end])
            buffer[cut + 1 : cut + 1 + PAD] = bytes(PAD)
            block = LineBlock(number + 1, None, max_line_bytes, padded=bytes(view[: cut + 1 + PAD]))
            yield block
            number += block.count
        else:
            carry = bytes(view[PAD:end])
        if len(carry) > max_line_bytes:
            number += 1
            yield LineBlock(number, None, max_line_bytes, ([number], [_too_long(max_line_bytes)], True))
            carry = b""
            skipping = True
    if carry and not skipping:
        yield LineBlock(number + 1, None, max_line_bytes, _sorted_out([carry], number + 1, max_line_bytes))


def _sorted_out(pieces: list[bytes], first: int, max_line_bytes: int) -> tuple[list[int], list, bool]:
    """Lines one by one: blank ones dropped, too long or byte-order-marked ones reported."""
    numbers: list[int] = []
    raws: list[bytes | LineProblem] = []
    problems = False
    for number, raw in enumerate(pieces, start=first):
        if len(raw) > max_line_bytes:
            numbers.append(number)
            raws.append(_too_long(max_line_bytes))
            problems = True
            continue
        if number == 1 and raw.startswith(BOM):
            numbers.append(number)
            raws.append(_BOM_PROBLEM)
            problems = True
            raw = raw[len(BOM) :]
        if raw and not raw.isspace():
            numbers.append(number)
            raws.append(raw)
    return numbers, raws, problems


_BLOCK_BYTES = 1 << 21  # 2 MiB: a plain block's columns stay in cache
_BOM_PROBLEM = LineProblem(
    "byte-order-mark",
    "the file starts with a UTF-8 byte-order mark; JSONL readers (orjson, AIPerf) reject it",
    1,
)


def _too_long(max_line_bytes: int) -> LineProblem:
    return LineProblem("line-too-long", f"line is longer than {max_line_bytes} bytes; not read")


def parse_line(raw: bytes) -> dict | LineProblem:
    try:
        row = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return LineProblem("bad-json", f"not valid JSON: {_json_reason(exc)}", _json_column(exc))
    if type(row) is not dict:
        kind = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}
        found = "null" if row is None else kind.get(type(row), "a value")
        return LineProblem("not-an-object", f"a row must be a JSON object, found {found}", 1)
    return row


def _json_reason(exc: orjson.JSONDecodeError) -> str:
    message = str(exc.msg if hasattr(exc, "msg") else exc)
    # orjson appends its own position; we give the column separately.
    return message.split(": line ")[0]


def _json_column(exc: orjson.JSONDecodeError) -> int | None:
    colno = getattr(exc, "colno", None)
    return colno if isinstance(colno, int) and colno > 0 else None
