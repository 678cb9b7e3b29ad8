"""Physical lines of a JSONL file → parsed rows, or a located reason why a line is not one.

Handles what real files throw at a reader: a UTF-8 byte-order mark, blank lines (skipped,
still counted), lines too long to hold, bytes that are not UTF-8 or not JSON, NaN and
Infinity, numbers out of range, and JSON values that are not objects.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

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
    number = 0
    readline = handle.readline
    while True:
        raw = readline(max_line_bytes + 1)
        if not raw:
            return
        number += 1
        if len(raw) > max_line_bytes and not raw.endswith(b"\n"):
            _skip_rest_of_line(handle)
            yield number, LineProblem(
                "line-too-long", f"line is longer than {max_line_bytes} bytes; not read"
            )
            continue
        if number == 1 and raw.startswith(BOM):
            yield number, LineProblem(
                "byte-order-mark",
                "the file starts with a UTF-8 byte-order mark; JSONL readers (orjson, AIPerf) reject it",
                1,
            )
            raw = raw[len(BOM) :]
        if not raw or raw.isspace():
            continue
        yield number, raw


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


def _skip_rest_of_line(handle: BinaryIO) -> None:
    while True:
        piece = handle.readline(1 << 20)
        if not piece or piece.endswith(b"\n"):
            return
