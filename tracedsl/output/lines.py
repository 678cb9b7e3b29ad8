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


class LineBlock:
    """The whole lines of one block read: their text, split into lines only when asked (``batch``).

    ``text`` is the lines joined by newlines (None for a line reported too long); ``first``
    the number of its first line.
    """

    __slots__ = ("first", "text", "_batch", "_max_line_bytes")

    def __init__(self, first: int, text: bytes | None, max_line_bytes: int,
                 batch: tuple[Sequence[int], list, bool] | None = None) -> None:
        self.first = first
        self.text = text
        self._max_line_bytes = max_line_bytes
        self._batch = batch

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
    """The file's lines, a block read at a time (see LineBlock); every line is in one block."""
    number = 0
    carry = b""  # the start of a line whose end is in a later block
    skipping = False  # inside a line already reported as too long
    while True:
        block = handle.read(_BLOCK_BYTES)
        if not block:
            break
        if skipping:
            end = block.find(b"\n")
            if end < 0:
                continue
            skipping = False
            block = block[end + 1 :]  # the end of the line reported as too long
        elif carry:
            block = carry + block
        cut = block.rfind(b"\n")
        if cut >= 0:
            text, carry = block[:cut], block[cut + 1 :]
            count = 1 + int(np.count_nonzero(np.frombuffer(text, dtype=np.uint8) == 10))
            yield LineBlock(number + 1, text, max_line_bytes)
            number += count
        else:
            carry = block
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
