"""Blocks of plain Mooncake rows → numpy columns, read straight from the bytes (no per-row objects).

A plain row is what tracedsl and AIPerf print, compact and in this key order::

    {"session_id":"S","input_length":I,"output_length":O,"hash_ids":[H,…]  then any of, in order,
    ,"timestamp":T  ,"delay":D  ,"group_id":G  ,"is_restart":true  and  }

with S printable ASCII without a quote, backslash, comma or "]" (a JSON string without escapes); I, O, G and
every H a JSON integer of at most 16 digits; T and D an integer or a decimal fraction of at most
15 digits. :func:`plain_block` reads a block of such lines with a few whole-block numpy passes
and one vectorised digit parse (eight digits a 64-bit word); it returns None as soon as any byte
of the block is not of that shape, and the caller reads that block row by row (orjson and the
row rules), which is the definition. So a plain block reads exactly as orjson reads it: the same
integers, the same floats (a decimal of at most 15 digits divided by a power of ten is correctly
rounded), the same keys. It says nothing about the row rules beyond the types: a zero length is
read as 0, for the caller to judge.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys
from dataclasses import dataclass

import numpy as np

from tracedsl.output.lines import PAD as _PAD

_HEAD = b'{"session_id":"'
_AFTER_SESSION = b'","input_length":'
_AFTER_INPUT = b',"output_length":'
_AFTER_OUTPUT = b',"hash_ids":['
# tail keys in the only order a plain row may give them; is_restart carries its value
_TAIL_KEYS = (b',"timestamp":', b',"delay":', b',"group_id":', b',"is_restart":true')
_TAIL_KIND_BY_LETTER = {ord("t"): 0, ord("d"): 1, ord("g"): 2, ord("i"): 3}
_MAX_DIGITS = 16
_MAX_DECIMAL_DIGITS = 15  # below 2**53: the decimal is an exact double before the one division


@dataclass
class PlainBlock:
    """The rows of a plain block as columns (``timestamp``/``delay`` NaN where absent, ``group_id`` -1)."""

    rows: int
    session_starts: np.ndarray  # rows where the session id differs from the row before (row 0 always)
    session_names: list[str]  # the session id of each of those rows
    input_length: np.ndarray
    output_length: np.ndarray
    timestamp: np.ndarray
    delay: np.ndarray
    group_id: np.ndarray
    is_restart: np.ndarray
    id_counts: np.ndarray
    ids: np.ndarray


@functools.cache
def keep_freed_memory() -> None:
    """Let glibc keep the memory numpy frees instead of handing it back to the system at once.

    A block's columns are temporaries of about a megabyte: above glibc's thresholds, each is
    mapped afresh and returned when freed, so every one costs a page fault per 4 KiB on first
    touch; that was more than half of a plain block's read. Held instead, the same pages are
    reused block after block (the peak is a few blocks' columns). Elsewhere than glibc: nothing.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return
    trim_threshold, mmap_threshold = -1, -3  # M_TRIM_THRESHOLD, M_MMAP_THRESHOLD in malloc.h
    mallopt(mmap_threshold, 64 << 20)
    mallopt(trim_threshold, 256 << 20)


def _word(text: bytes) -> np.uint64:
    return np.uint64(int.from_bytes(text[:8].ljust(8, b"\0"), "little"))


def _pattern_words(pattern: bytes) -> list[tuple[int, int, np.generic]]:
    """(offset, width, value) checks covering ``pattern``: 8-byte words, then a remainder of one
    or two bytes byte by byte (a byte is cheaper to fetch than an unaligned word), or else one
    last word overlapping the one before."""
    if len(pattern) <= 8:
        raise ValueError("patterns are longer than a word")
    whole = len(pattern) // 8 * 8
    checks = [(offset, 8, _word(pattern[offset : offset + 8])) for offset in range(0, whole, 8)]
    rest = len(pattern) - whole
    if rest > 2:
        checks.append((len(pattern) - 8, 8, _word(pattern[-8:])))
    else:
        checks += [(offset, 1, np.uint8(pattern[offset])) for offset in range(whole, len(pattern))]
    return checks


_HEAD_WORDS = _pattern_words(_HEAD)
_AFTER_SESSION_WORDS = _pattern_words(_AFTER_SESSION)
_AFTER_INPUT_WORDS = _pattern_words(_AFTER_INPUT)
_AFTER_OUTPUT_WORDS = _pattern_words(_AFTER_OUTPUT)
_TAIL_LENGTHS = np.array([len(key) for key in _TAIL_KEYS], dtype=np.int64)
# each tail key as words at offsets 0, 8 and length - 8 (enough for keys of 9 to 24 bytes)
_TAIL_WORDS = np.array(
    [[_word(key[0:8]), _word(key[8:16]) if len(key) >= 16 else _word(key[len(key) - 8:]), _word(key[len(key) - 8:])]
     for key in _TAIL_KEYS], dtype=np.uint64)
_KIND_OF_LETTER = np.full(256, -1, dtype=np.int64)
for _letter, _kind in _TAIL_KIND_BY_LETTER.items():
    _KIND_OF_LETTER[_letter] = _kind

# SWAR digit parsing: a word's high k bytes are the number's last k digits (little-endian load)
_KEEP = np.array([0] + [((1 << (8 * k)) - 1) << (8 * (8 - k)) for k in range(1, 9)], dtype=np.uint64)
_KEEP_LOW = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)  # a word's low k bytes
_ZEROS = np.uint64(0x3030303030303030)
_HIGH_BITS = np.uint64(0x8080808080808080)
_OVER_NINE = np.uint64(0x7676767676767676)  # a byte above 9 gets its high bit
_PAIRS = np.uint64(0x00FF00FF00FF00FF)
_QUADS = np.uint64(0x0000FFFF0000FFFF)
_TIMES_2561 = np.uint64(2561)
_TIMES_6553601 = np.uint64(6553601)
_TIMES_42949672960001 = np.uint64(42949672960001)
_SHIFT8, _SHIFT16, _SHIFT32 = np.uint64(8), np.uint64(16), np.uint64(32)
_POWERS = 10.0 ** np.arange(_MAX_DECIMAL_DIGITS + 1)
_INT_POWERS = 10 ** np.arange(_MAX_DECIMAL_DIGITS + 1, dtype=np.int64)
_POWERS_OF_TEN = 10 ** np.arange(_MAX_DIGITS, dtype=np.int64)
_ZERO_BYTE = np.uint8(48)
# a byte as the first of nine digits: its value times 10**8, or -1 when it is no digit
_NINTH_DIGIT = np.full(256, -1, dtype=np.int64)
_NINTH_DIGIT[48:58] = np.arange(10) * 10**8


def _digit_values(words: np.ndarray) -> np.ndarray:
    """Eight digit values a word (first digit in the low byte) → the number they spell (in place)."""
    np.multiply(words, _TIMES_2561, out=words)
    np.right_shift(words, _SHIFT8, out=words)
    np.bitwise_and(words, _PAIRS, out=words)
    np.multiply(words, _TIMES_6553601, out=words)
    np.right_shift(words, _SHIFT16, out=words)
    np.bitwise_and(words, _QUADS, out=words)
    np.multiply(words, _TIMES_42949672960001, out=words)
    return np.right_shift(words, _SHIFT32, out=words)


def _padded(text: bytes) -> bytes:
    return bytes(_PAD) + text + b"\n" + bytes(_PAD)


class _Text:
    """The block as a zero-padded byte array and as 8-byte words at every offset."""

    def __init__(self, buffer: bytes) -> None:
        """``buffer``: the text and a final newline between ``_PAD`` zero bytes either side."""
        self.bytes = np.frombuffer(buffer, dtype=np.uint8)
        self.words = np.ndarray(shape=(len(buffer) - 7,), dtype="<u8", buffer=buffer, offset=0, strides=(1,))
        self.core = self.bytes[_PAD : len(buffer) - _PAD]  # the text and its final newline

    def matches(self, positions: np.ndarray, checks: list[tuple[int, int, np.generic]]) -> bool:
        return all(bool(((self.words if width == 8 else self.bytes)[positions + offset] == value).all())
                   for offset, width, value in checks)

    def integers(self, starts: np.ndarray, ends: np.ndarray, leading_zeros: bool = False) -> np.ndarray | None:
        """The JSON integers (no sign, 1 to 16 digits, no leading zero) at [starts, ends), or None.

        ``leading_zeros``: digit strings such as a fraction's, which may start with zeros.
        """
        if starts.shape[0] == 0:
            return np.zeros(0, dtype=np.int64)
        lengths = ends - starts
        shortest, longest = int(lengths.min()), int(lengths.max())
        if shortest < 1 or longest > _MAX_DIGITS:
            return None
        # The last (up to) eight digits as one word: digit values in the kept bytes, zeros
        # elsewhere; a byte that was no digit is above 9. The first digits of a longer number
        # one byte at a time (ids rarely pass nine digits). In place: these are the big arrays.
        uniform = shortest == longest  # the common case: one length, masks are scalars
        low = self.words[ends - 8]
        np.bitwise_xor(low, _ZEROS, out=low)
        np.bitwise_and(low, _KEEP[min(longest, 8)] if uniform else _KEEP.take(np.minimum(lengths, 8)), out=low)
        if np.bitwise_or.reduce(low + _OVER_NINE) & _HIGH_BITS:
            return None
        values = _digit_values(low).view(np.int64)
        # each number's first byte: the ninth digit from the end of a nine-digit one, and what
        # tells a leading zero when the lengths differ
        firsts = None if uniform else self.bytes.take(starts)
        if longest == 9 and not uniform:  # the ids past 10**8: one more digit, added in one pass
            ninth = _NINTH_DIGIT.take(firsts) * (lengths == 9)
            if int(ninth.min()) < 0:
                return None
            values += ninth
        elif longest > 8:
            for index in range(longest - 8):
                digits = self.bytes[starts + index] - _ZERO_BYTE  # a byte that was no digit is above 9
                if uniform:
                    if int(digits.max()) > 9:
                        return None
                    values += digits * _POWERS_OF_TEN[longest - 1 - index]
                else:
                    more = lengths - 8 > index
                    if (more & (digits > 9)).any():
                        return None
                    values += np.where(more, digits * _POWERS_OF_TEN[np.maximum(lengths - 1 - index, 0)], 0)
        if not leading_zeros:  # a leading zero is not JSON
            if uniform:
                if longest > 1 and int(values.min()) < 10 ** (longest - 1):
                    return None
            elif ((firsts == _ZERO_BYTE) & (lengths > 1)).any():  # every digit is one by now
                return None
        return values

    def numbers(self, starts: np.ndarray, ends: np.ndarray) -> np.ndarray | None:
        """JSON numbers at [starts, ends) that are integers or plain decimals (``12.5``), as float64."""
        count = starts.shape[0]
        if count == 0:
            return np.zeros(0, dtype=np.float64)
        dots = np.where(self.bytes[ends - 2] == 46, ends - 2, -1)  # one decimal, as tracedsl prints
        pending = np.flatnonzero(dots < 0)
        for back in range(3, _MAX_DECIMAL_DIGITS + 2):  # the dot, that many bytes before the end
            if pending.shape[0] == 0:
                break
            at = ends[pending] - back
            inside = at > starts[pending]
            found = inside & (self.bytes[np.where(inside, at, 0)] == 46)
            dots[pending[found]] = at[found]
            pending = pending[inside & ~found]
        decimal = dots >= 0
        whole_ends = np.where(decimal, dots, ends)
        if (dots == starts).any():
            return None
        whole = self.integers(starts, whole_ends)
        if whole is None:
            return None
        fraction_digits = np.where(decimal, ends - dots - 1, 0)
        if int((whole_ends - starts + fraction_digits).max()) > _MAX_DECIMAL_DIGITS:
            return None
        if not decimal.any():
            return whole.astype(np.float64)
        # all decimals (tracedsl prints every timestamp and delay so): the whole columns, not a selection
        which = slice(None) if decimal.all() else np.flatnonzero(decimal)
        digits = fraction_digits[which]
        most = int(digits.max())
        if most == 1:  # tracedsl's one decimal: the last byte is the digit
            fraction = self.bytes[ends[which] - 1] - _ZERO_BYTE
            if int(fraction.max()) > 9:
                return None
        else:
            fraction = self.integers(dots[which] + 1, ends[which], leading_zeros=True)
            if fraction is None:
                return None
        values = whole.astype(np.float64)
        scale = most if int(digits.min()) == most else digits  # one count of fraction digits: a scalar
        # an exact integer below 2**53 over an exact power of ten: the correctly rounded decimal
        values[which] = (whole[which] * _INT_POWERS[scale] + fraction).astype(np.float64) / _POWERS[scale]
        return values


def plain_block(text: bytes) -> PlainBlock | None:
    """The rows of ``text`` (whole lines joined by newlines, none blank) if every one is plain."""
    return plain_padded(_padded(text)) if text else None


def plain_padded(padded: bytes) -> PlainBlock | None:
    """``plain_block`` of a text given padded, as ``lines.LineBlock.padded`` holds it (no copy)."""
    if len(padded) <= 2 * _PAD + 1:
        return None
    keep_freed_memory()
    compiled = _compiled_reader(len(padded))
    if compiled is not None:  # it checks every byte it reads
        return compiled(padded)
    if not padded.isascii() or b"\\" in padded:
        return None
    return _numpy_padded(padded)


# Bytes of plain blocks a process reads with numpy before it turns to the compiled reader
# (plain_compiled.py): importing numba and loading the cached kernel costs about a second, and
# compiling it on a machine's first use several more, so a small file never pays for it.
COMPILE_AFTER_BYTES = 64 << 20


class _Compiled:
    """Whether the compiled reader is in use: not yet (``read`` counts the bytes), yes, or never."""

    read = 0  # bytes of plain blocks read, and of files about to be (``will_read``)
    forced: bool | None = None  # tests: True from the first block, False never
    reader = None
    failed = False


def will_read(handle) -> None:
    """The file open in ``handle`` is about to be read: when it is larger than the threshold, the
    compiled reader loads at its first block instead of after 64 MiB read with numpy."""
    try:
        size = os.fstat(handle.fileno()).st_size  # 0 for a pipe: it is counted as it comes
    except (OSError, AttributeError, ValueError):
        return
    if size > COMPILE_AFTER_BYTES:
        _Compiled.read += size


def use_compiled(enabled: bool | None) -> None:
    """Read with the compiled reader from the first block (True), never (False), or once earned (None)."""
    _Compiled.forced = enabled


def _compiled_reader(size: int):
    state = _Compiled
    if state.reader is not None and state.forced is not False:
        return state.reader
    if state.failed or state.forced is False:
        return None
    state.read += size
    if state.forced is None and state.read <= COMPILE_AFTER_BYTES:
        return None
    try:
        from tracedsl.output.plain_compiled import read_padded, warm
        warm()
    except Exception:  # no numba for this platform or numpy, or it failed to compile: numpy it is
        state.failed = True
        return None
    state.reader = read_padded
    return read_padded


def _numpy_padded(padded: bytes) -> PlainBlock | None:
    block = _Text(padded)
    core = block.core
    # The newlines, "]"s and commas in one scan of the bytes, told apart among the few found.
    marks = np.flatnonzero((core == 10) | (core == 93) | (core == 44))
    kinds = core[marks]
    newline_marks = np.flatnonzero(kinds == 10)
    close_marks = np.flatnonzero(kinds == 93)
    ends = marks[newline_marks] + _PAD  # each line's newline
    rows = ends.shape[0]
    # No control byte but the newlines (JSON allows none in a string; a blank elsewhere is not plain)
    if int(np.count_nonzero(core < 32)) != rows:
        return None
    if close_marks.shape[0] != rows:
        return None
    closes = marks[close_marks] + _PAD  # each line's "]"
    starts = np.empty(rows, dtype=np.int64)
    starts[0] = _PAD
    starts[1:] = ends[:-1] + 1
    data = block.bytes
    if not ((closes > starts) & (closes < ends)).all() or not (data[ends - 1] == 125).all():
        return None
    if not block.matches(starts, _HEAD_WORDS):
        return None

    # Commas split every row: 3 in the head, the ids' own, then one before each tail key. The
    # last one stands for "past the end".
    commas = np.append(marks[kinds == 44] + _PAD, data.shape[0])
    # A mark's place less the newlines and "]"s before it is the commas before it: row i's "]"
    # lies inside row i, so 2i of them precede that "]" and 2i + 1 the row's newline.
    twice_rows = np.arange(0, 2 * rows, 2)
    line_ends = newline_marks - twice_rows - 1  # the first comma after each row
    first = np.empty(rows, dtype=np.int64)
    first[0] = 0
    first[1:] = line_ends[:-1]
    after_ids = close_marks - twice_rows  # the first comma after the "]"
    if not (after_ids - first >= 3).all():
        return None
    comma0, comma1, comma2 = commas[first], commas[first + 1], commas[first + 2]
    if not ((comma0 - 1 >= starts + len(_HEAD)) & (comma1 > comma0 + len(_AFTER_SESSION) - 1)
            & (comma2 > comma1 + len(_AFTER_INPUT))).all():
        return None
    if not (block.matches(comma0 - 1, _AFTER_SESSION_WORDS) and block.matches(comma1, _AFTER_INPUT_WORDS)
            and block.matches(comma2, _AFTER_OUTPUT_WORDS)):
        return None
    opens = comma2 + len(_AFTER_OUTPUT) - 1  # each row's "["
    if not (closes > opens).all():
        return None
    inputs = block.integers(comma0 + len(_AFTER_SESSION) - 1, comma1)
    outputs = block.integers(comma1 + len(_AFTER_INPUT), comma2)
    if inputs is None or outputs is None:
        return None

    # The tail: after "]" comes "}" or the first tail key's comma.
    tail_count = line_ends - after_ids
    follows = data[closes + 1]
    if not (((tail_count == 0) & (follows == 125) & (closes + 2 == ends))
            | ((tail_count > 0) & (follows == 44))).all():
        return None
    columns = _tail(block, commas, after_ids, tail_count, ends, rows)
    if columns is None:
        return None
    timestamps, delays, groups, restarts, tail_quotes = columns
    # 10 quotes in every head and 2 in each tail key: none anywhere else, so none in a session
    # id (which ends at its first quote) or a number. Every byte is now accounted for: a session
    # id may hold any other printable ASCII byte, as a JSON string may.
    if int(np.count_nonzero(core == 34)) != 10 * rows + tail_quotes:
        return None

    ids_result = _hash_ids(block, commas, first, after_ids, opens, closes)
    if ids_result is None:
        return None
    id_counts, ids = ids_result

    name_starts = starts + len(_HEAD)
    name_ends = comma0 - 1
    session_starts = _session_starts(block, name_starts, name_ends)
    if session_starts is None:
        return None
    names = [padded[s:e].decode("ascii")
             for s, e in zip(name_starts[session_starts].tolist(), name_ends[session_starts].tolist(), strict=True)]
    return PlainBlock(rows, session_starts, names, inputs, outputs, timestamps, delays, groups, restarts,
                      id_counts, ids)


def _tail(block: _Text, separators, after_ids, tail_count, ends, rows):
    """The tail fields' columns, and the quotes their keys hold; None if one is not plain."""
    timestamps = np.full(rows, np.nan)
    delays = np.full(rows, np.nan)
    groups = np.full(rows, -1, dtype=np.int64)
    restarts = np.zeros(rows, dtype=bool)
    total = int(tail_count.sum())
    if total == 0:
        return timestamps, delays, groups, restarts, 0
    if int(tail_count.max()) > len(_TAIL_KEYS):
        return None
    row_of = np.repeat(np.arange(rows), tail_count)
    # the field's index among its row's separators: after_ids, after_ids + 1, …
    offsets = np.arange(total) - np.repeat(np.cumsum(tail_count) - tail_count, tail_count)
    index = np.repeat(after_ids, tail_count) + offsets
    field_starts = separators[index]
    last = offsets == tail_count[row_of] - 1
    field_ends = np.where(last, ends[row_of] - 1, separators[index + 1])  # "}" ends the last
    kinds = _KIND_OF_LETTER[block.bytes[field_starts + 2]]
    if (kinds < 0).any():
        return None
    # strictly increasing kinds within a row: each key at most once, in order
    if not ((kinds[1:] > kinds[:-1]) | (offsets[1:] == 0)).all():
        return None
    words = block.words
    if not ((words[field_starts] == _TAIL_WORDS[kinds, 0]).all()
            and (words[field_starts + _TAIL_LENGTHS[kinds] - 8] == _TAIL_WORDS[kinds, 2]).all()):
        return None
    longer = np.flatnonzero(_TAIL_LENGTHS[kinds] > 16)  # is_restart: a third word between
    if longer.shape[0] and not (words[field_starts[longer] + 8] == _TAIL_WORDS[kinds[longer], 1]).all():
        return None
    value_starts = field_starts + _TAIL_LENGTHS[kinds]
    for kind in range(len(_TAIL_KEYS)):
        mine = np.flatnonzero(kinds == kind)
        if mine.shape[0] == 0:
            continue
        where = row_of[mine]
        if kind == 3:  # is_restart: the key holds its value
            if not (value_starts[mine] == field_ends[mine]).all():
                return None
            restarts[where] = True
        elif kind == 2:
            values = block.integers(value_starts[mine], field_ends[mine])
            if values is None:
                return None
            groups[where] = values
        else:
            values = block.numbers(value_starts[mine], field_ends[mine])
            if values is None:
                return None
            (timestamps if kind == 0 else delays)[where] = values
    return timestamps, delays, groups, restarts, 2 * total


def _hash_ids(block: _Text, separators, first, after_ids, opens, closes):
    """Every row's ids, flat, and their counts per row; None if one is not a plain integer."""
    empty = closes == opens + 1
    counts = after_ids - first - 2  # the ids between "[" and "]": one more than their commas
    counts[empty] = 0
    if (empty & (after_ids - first != 3)).any():
        return None
    total = int(counts.sum())
    if total == 0:
        return counts, np.zeros(0, dtype=np.int64)
    # id j of a row ends at separator first + 3 + j (its comma), the last at "]"; it starts one
    # past the separator before (the "[" for the first)
    bounds = separators.copy()
    with_ids = ~empty
    bounds[after_ids[with_ids]] = closes[with_ids]
    firsts = np.cumsum(counts) - counts  # each row's first id among all
    ends = bounds.take(np.repeat(first + 3 - firsts, counts) + np.arange(total))
    starts = np.empty(total, dtype=np.int64)
    starts[1:] = ends[:-1] + 1  # one past the comma before, or past the "[" for a row's first
    starts[firsts[with_ids]] = opens[with_ids] + 1
    ids = block.integers(starts, ends)
    if ids is None:
        return None
    return counts, ids


def _session_starts(block: _Text, name_starts, name_ends) -> np.ndarray | None:
    """The rows whose session id differs from the row before's (row 0 always)."""
    lengths = name_ends - name_starts
    rows = lengths.shape[0]
    if int(lengths.max()) > 24:
        return None  # long foreign names: the per-row path compares them
    words = block.words
    differs = lengths[1:] != lengths[:-1]
    if int(lengths.min()) == int(lengths.max()) >= 8:  # one length (the engines' names): three words cover it
        for offset in sorted({0, min(8, int(lengths[0]) - 8), int(lengths[0]) - 8}):
            here = words[name_starts + offset]
            differs |= here[1:] != here[:-1]
    else:  # three words from the name's start, the bytes past its end masked off
        for offset in (0, 8, 16):
            here = words[name_starts + offset] & _KEEP_LOW[np.clip(lengths - offset, 0, 8)]
            differs |= here[1:] != here[:-1]
    starts = np.empty(rows, dtype=bool)
    starts[0] = True
    starts[1:] = differs
    return np.flatnonzero(starts)


def session_runs(text: bytes) -> tuple[np.ndarray, list[str]] | None:
    """For lines that each open with ``{"session_id":"NAME"`` (a short ASCII name): the last row of
    each run of rows of one session, and its name; None for any other block.

    Only the lines' openings are read (what the reader's first pass needs); the rest of each
    line is left to the reading proper.
    """
    return session_runs_padded(_padded(text)) if text else None


def flat_session_runs(padded: bytes) -> tuple[np.ndarray, list[str]] | None:
    """``session_runs_padded`` of a block of lines that are each one flat object opening with its
    session id: one "{" and one ``"session_id"`` a line, ASCII, no backslash (so the id read is
    the row's, as orjson reads it); None for any other block."""
    if len(padded) <= 2 * _PAD + 1:
        return None
    keep_freed_memory()
    compiled = _compiled_reader(len(padded))
    if compiled is not None:  # it checks every byte
        from tracedsl.output.plain_compiled import session_runs_padded as compiled_runs
        return compiled_runs(padded)
    if not padded.isascii() or b"\\" in padded:
        return None
    text = np.frombuffer(padded, dtype=np.uint8)  # numpy counts a byte faster than bytes.count
    count = int(np.count_nonzero(text == 10))
    if int(np.count_nonzero(text == 123)) != count or padded.count(b'"session_id"') != count:
        return None
    return session_runs_padded(padded)


def session_runs_padded(padded: bytes) -> tuple[np.ndarray, list[str]] | None:
    """``session_runs`` of a text given padded, as ``lines.LineBlock.padded`` holds it (no copy)."""
    if len(padded) <= 2 * _PAD + 1 or not padded.isascii():
        return None
    keep_freed_memory()
    block = _Text(padded)
    ends = np.flatnonzero(block.bytes == 10)
    starts = np.empty(ends.shape[0], dtype=np.int64)
    starts[0] = _PAD
    starts[1:] = ends[:-1] + 1
    if (ends - starts < len(_HEAD) + 1).any() or not block.matches(starts, _HEAD_WORDS):
        return None
    name_starts = starts + len(_HEAD)
    name_ends = _first_quotes(block, name_starts)
    if name_ends is None:
        return None
    run_starts = _session_starts(block, name_starts, name_ends)
    if run_starts is None:
        return None
    last_rows = np.append(run_starts[1:] - 1, ends.shape[0] - 1)
    names = [padded[s:e].decode("ascii")
             for s, e in zip(name_starts[last_rows].tolist(), name_ends[last_rows].tolist(), strict=True)]
    return last_rows, names


_NAME_WINDOW = 32  # bytes looked at from a name's start: _session_starts takes names of up to 24


def _first_quotes(block: _Text, name_starts: np.ndarray) -> np.ndarray | None:
    """Each line's first quote at or after its name's start, within 32 bytes and before the line's
    end; None when a line has none there (a long name, or none at all).

    The 32 bytes from each name's start as one row of a small array (the padding holds them for
    the last line), and in each the first byte that is a quote or a newline.
    """
    windows = np.lib.stride_tricks.sliding_window_view(block.bytes, _NAME_WINDOW)[name_starts]
    stops = windows == 34
    quotes = stops.copy()
    stops |= windows == 10
    first = stops.argmax(axis=1)
    rows = np.arange(name_starts.shape[0])
    if not quotes[rows, first].all():  # no stop, or a newline first: the line ends inside the name
        return None
    return name_starts + first
