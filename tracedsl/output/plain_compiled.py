"""Plain blocks read by one compiled pass over the bytes (numba): plain.py's numpy passes, ~10x faster.

Importing this module imports numba and defines the kernel; plain.py does so only once a
process has read enough plain rows to earn it (``plain.COMPILE_AFTER_BYTES``), and falls back
to its numpy passes when numba is missing or fails. The kernel is compiled on its first call
and cached on disk (numba's ``cache=True``: beside this file, or in the user's cache folder
when that is not writable), so only a machine's first large read pays the compiling.

The shape read is plain.py's (see its docstring), with one widening: a session id may hold
any printable ASCII byte but a quote or backslash, commas and "]" included, at any length
(plain.py's numpy passes leave those to the row-by-row reader). Either way, a block reads as
orjson reads it or not at all, which ``tests/test_plain_blocks.py`` checks for both readers.

The scan keeps to 8-byte words where it can: a key is one to three word compares, a number
of up to eight digits is one word turned into its value with three multiplies (and a second
word for nine to sixteen digits), a session id is found and compared a word at a time. Every
read stays inside the block's ``PAD`` zero bytes, which end any number or name. The small
helpers are inlined into the loops (``inline="always"``): called, they halved the speed;
inlined, compiling takes about 7 s instead of 4 on the project machine (once: it is cached).
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numba.cpython.unsafe.numbers import trailing_zeros

from tracedsl.output.lines import PAD


def _word(text: bytes) -> np.uint64:
    return np.uint64(int.from_bytes(text[:8].ljust(8, b"\0"), "little"))


def _key_words(key: bytes) -> tuple[np.uint64, ...]:
    """``key``'s first word, its second (bytes 8-15), and its last (its final 8 bytes)."""
    return _word(key), _word(key[8:16]), _word(key[-8:])


_HEAD = b'{"session_id":"'
_AFTER_SESSION = b'","input_length":'
_AFTER_INPUT = b',"output_length":'
_AFTER_OUTPUT = b',"hash_ids":['
_TIMESTAMP = b',"timestamp":'
_DELAY = b',"delay":'
_GROUP = b',"group_id":'
_RESTART = b',"is_restart":true'

HEAD_0, _, HEAD_LAST = _key_words(_HEAD)
SESSION_0, SESSION_1, SESSION_LAST = _key_words(_AFTER_SESSION)
INPUT_0, INPUT_1, INPUT_LAST = _key_words(_AFTER_INPUT)
OUTPUT_0, _, OUTPUT_LAST = _key_words(_AFTER_OUTPUT)
TIMESTAMP_0, _, TIMESTAMP_LAST = _key_words(_TIMESTAMP)
DELAY_0, _, DELAY_LAST = _key_words(_DELAY)
GROUP_0, _, GROUP_LAST = _key_words(_GROUP)
RESTART_0, RESTART_1, RESTART_LAST = _key_words(_RESTART)
HEAD_BYTES, SESSION_BYTES, INPUT_BYTES, OUTPUT_BYTES = map(len, (_HEAD, _AFTER_SESSION, _AFTER_INPUT, _AFTER_OUTPUT))
TIMESTAMP_BYTES, DELAY_BYTES, GROUP_BYTES, RESTART_BYTES = map(len, (_TIMESTAMP, _DELAY, _GROUP, _RESTART))

ZEROS = np.uint64(0x3030303030303030)  # "0" in every byte
OVER_NINE = np.uint64(0x7676767676767676)  # added to a digit value, sets the high bit above 9
HIGH_BITS = np.uint64(0x8080808080808080)
LOW_BYTE, NINE = np.uint64(0xFF), np.uint64(9)
ONES = np.uint64(0x0101010101010101)
QUOTES = np.uint64(0x2222222222222222)
SPACES = np.uint64(0x2020202020202020)
BACKSLASHES = np.uint64(0x5C5C5C5C5C5C5C5C)
TIMES_2561, TIMES_6553601 = np.uint64(2561), np.uint64(6553601)
TIMES_42949672960001 = np.uint64(42949672960001)
PAIRS, QUADS = np.uint64(0x00FF00FF00FF00FF), np.uint64(0x0000FFFF0000FFFF)
SHIFT_8, SHIFT_16, SHIFT_32 = np.uint64(8), np.uint64(16), np.uint64(32)
MAX_DIGITS = 16
MAX_DECIMAL_DIGITS = 15  # below 2**53: the decimal is an exact double before the one division
INT_POWERS = 10 ** np.arange(MAX_DIGITS + 1, dtype=np.int64)
POWERS = 10.0 ** np.arange(MAX_DIGITS + 1)
SHORTEST_ROW = len(b'{"session_id":"","input_length":0,"output_length":0,"hash_ids":[]}\n')


@njit(cache=True, inline="always")
def _value(digits, count):  # pragma: no cover - compiled
    """The number spelled by the ``count`` (1-8) digit values in a word's low bytes, first lowest."""
    digits = digits << np.uint64(8 * (8 - count))  # leading zeros in the low bytes
    digits = ((digits * TIMES_2561) >> SHIFT_8) & PAIRS
    digits = ((digits * TIMES_6553601) >> SHIFT_16) & QUADS
    return np.int64((digits * TIMES_42949672960001) >> SHIFT_32)


@njit(cache=True, inline="always")
def _digits(words, at):  # pragma: no cover - compiled
    """(value, count) of the digits from ``at``: count 0 for none, MAX_DIGITS + 1 for too many."""
    digits = words[at] ^ ZEROS
    others = (digits | (digits + OVER_NINE)) & HIGH_BITS  # the high bit of each byte that is no digit
    if others != 0:
        count = np.int64(trailing_zeros(others)) >> 3
        return (_value(digits, count), count) if count else (0, 0)
    high = _value(digits, 8)
    digits = words[at + 8] ^ ZEROS
    others = (digits | (digits + OVER_NINE)) & HIGH_BITS
    if others == 0:  # sixteen digits, unless a seventeenth follows
        after = (words[at + 16] ^ ZEROS) & LOW_BYTE
        if after <= NINE:
            return 0, MAX_DIGITS + 1
        return high * INT_POWERS[8] + _value(digits, 8), 16
    count = np.int64(trailing_zeros(others)) >> 3
    return (high * INT_POWERS[count] + _value(digits, count), 8 + count) if count else (high, 8)


@njit(cache=True, inline="always")
def _zero_bytes(word):  # pragma: no cover - compiled
    """The high bit of each zero byte of ``word``; the lowest one set is exact (higher ones may be false)."""
    return (word - ONES) & ~word & HIGH_BITS


@njit(cache=True, inline="always")
def _name_end(words, at):  # pragma: no cover - compiled
    """The session id from ``at`` ends at its first quote: that quote's place, or -1 when a control
    byte, a backslash or a byte past ASCII comes first."""
    while True:
        word = words[at]
        quotes = _zero_bytes(word ^ QUOTES)
        # a byte below 0x20, a backslash or a byte past ASCII: the lowest exact
        others = ((word - SPACES) & ~word & HIGH_BITS) | _zero_bytes(word ^ BACKSLASHES) | (word & HIGH_BITS)
        if quotes != 0:
            stop = np.int64(trailing_zeros(quotes))
            if others != 0 and np.int64(trailing_zeros(others)) < stop:
                return -1
            return at + (stop >> 3)
        if others != 0:
            return -1
        at += 8


@njit(cache=True, inline="always")
def _same_name(words, at, before, length):  # pragma: no cover - compiled
    """Whether the ``length`` bytes at ``at`` and at ``before`` are the same, a word at a time."""
    offset = 0
    while offset + 8 <= length:
        if words[at + offset] != words[before + offset]:
            return False
        offset += 8
    if offset == length:
        return True
    mask = (np.uint64(1) << np.uint64(8 * (length - offset))) - np.uint64(1)
    return ((words[at + offset] ^ words[before + offset]) & mask) == 0


@njit(cache=True)
def _fraction(words, at, whole_digits):  # pragma: no cover - compiled
    """(value, digits) of the fraction after a decimal point at ``at``; digits 0 if it is not plain."""
    fraction, places = _digits(words, at)
    if whole_digits + places > MAX_DECIMAL_DIGITS:
        return 0, 0
    return fraction, places


@njit(cache=True)
def _read(data, words, start, stop, rows_out, ints, floats, restarts, ids):  # pragma: no cover - compiled
    """Read the rows in data[start:stop] into the scratch columns: (every row plain?, rows, runs, ids).

    ``ints`` holds each row's input, output, group (-1 when absent) and id count, then each run's
    first row, name start and name end; ``floats`` each row's timestamp and delay (NaN when
    absent); ``ids`` the ids, flat. A column holds ``rows_out`` rows at most (enough for the
    shortest rows), ``ids`` one id for every two bytes.
    """
    inputs, outputs, groups, counts = ints[0], ints[1], ints[2], ints[3]
    run_rows, name_starts, name_ends = ints[4], ints[5], ints[6]  # runs: rows whose session id differs from the row before's
    timestamps, delays = floats[0], floats[1]
    rows = runs = total = 0
    previous, previous_length = 0, -1
    at = start
    plain = False
    while at < stop and rows < rows_out:
        if words[at] != HEAD_0 or words[at + HEAD_BYTES - 8] != HEAD_LAST:
            break
        name = at + HEAD_BYTES
        at = _name_end(words, name)
        if at < 0:
            break
        length = at - name
        same = length == previous_length and _same_name(words, name, previous, length)
        if not same:
            run_rows[runs], name_starts[runs], name_ends[runs] = rows, name, at
            runs += 1
            previous, previous_length = name, length
        if words[at] != SESSION_0 or words[at + 8] != SESSION_1 or words[at + SESSION_BYTES - 8] != SESSION_LAST:
            break
        at += SESSION_BYTES
        inputs[rows], count = _digits(words, at)
        if count == 0 or count > MAX_DIGITS or (count > 1 and data[at] == 48):
            break
        at += count
        if words[at] != INPUT_0 or words[at + 8] != INPUT_1 or words[at + INPUT_BYTES - 8] != INPUT_LAST:
            break
        at += INPUT_BYTES
        outputs[rows], count = _digits(words, at)
        if count == 0 or count > MAX_DIGITS or (count > 1 and data[at] == 48):
            break
        at += count
        if words[at] != OUTPUT_0 or words[at + OUTPUT_BYTES - 8] != OUTPUT_LAST:
            break
        at += OUTPUT_BYTES
        first = total
        if data[at] == 93:  # "]": no ids
            at += 1
        else:
            while True:
                value, count = _digits(words, at)
                if count == 0 or count > MAX_DIGITS or (count > 1 and data[at] == 48):
                    at = -1
                    break
                ids[total] = value
                at += count
                total += 1
                at += 1
                if data[at - 1] == 93:
                    break
                if data[at - 1] != 44:
                    at = -1
                    break
            if at < 0:
                break
        counts[rows] = total - first
        timestamps[rows] = delays[rows] = np.nan
        groups[rows] = -1
        restarts[rows] = False
        # the tail: each key at most once, in this order (its third byte tells which comes)
        if data[at] == 44 and data[at + 2] == 116:
            if words[at] != TIMESTAMP_0 or words[at + TIMESTAMP_BYTES - 8] != TIMESTAMP_LAST:
                break
            at += TIMESTAMP_BYTES
            whole, count = _digits(words, at)
            if count == 0 or count > MAX_DECIMAL_DIGITS or (count > 1 and data[at] == 48):
                break
            at += count
            if data[at] == 46:  # ".": a plain decimal
                fraction, places = _fraction(words, at + 1, count)
                if places == 0:
                    break
                # an exact integer below 2**53 over an exact power of ten: the correctly rounded decimal
                timestamps[rows] = np.float64(whole * INT_POWERS[places] + fraction) / POWERS[places]
                at += 1 + places
            else:
                timestamps[rows] = whole
        if data[at] == 44 and data[at + 2] == 100:
            if words[at] != DELAY_0 or words[at + DELAY_BYTES - 8] != DELAY_LAST:
                break
            at += DELAY_BYTES
            whole, count = _digits(words, at)
            if count == 0 or count > MAX_DECIMAL_DIGITS or (count > 1 and data[at] == 48):
                break
            at += count
            if data[at] == 46:
                fraction, places = _fraction(words, at + 1, count)
                if places == 0:
                    break
                delays[rows] = np.float64(whole * INT_POWERS[places] + fraction) / POWERS[places]
                at += 1 + places
            else:
                delays[rows] = whole
        if data[at] == 44 and data[at + 2] == 103:
            if words[at] != GROUP_0 or words[at + GROUP_BYTES - 8] != GROUP_LAST:
                break
            at += GROUP_BYTES
            groups[rows], count = _digits(words, at)
            if count == 0 or count > MAX_DIGITS or (count > 1 and data[at] == 48):
                break
            at += count
        if data[at] == 44 and data[at + 2] == 105:
            if (words[at] != RESTART_0 or words[at + 8] != RESTART_1
                    or words[at + RESTART_BYTES - 8] != RESTART_LAST):
                break
            restarts[rows] = True
            at += RESTART_BYTES
        if data[at] != 125 or data[at + 1] != 10:  # "}" and the line's end
            break
        at += 2
        rows += 1
        plain = at == stop
    return plain, rows, runs, total


NEWLINES = np.uint64(0x0A0A0A0A0A0A0A0A)
BRACES = np.uint64(0x7B7B7B7B7B7B7B7B)
SESSION_KEY_0, SESSION_KEY_1 = _word(b'"session_id"'), _word(b'"session_id"'[4:])


@njit(cache=True)
def _runs(words, start, stop, last_rows, name_starts, name_ends):  # pragma: no cover - compiled
    """The runs of one session among lines that are each one flat object opening with its session id.

    Each line must open with ``{"session_id":"``, its id end at the first quote with no control
    byte before it, and the line hold no other "{" nor another ``"session_id"`` (so the id is the
    row's, as orjson reads it: no nested object, no second key to take its place), no backslash
    and no byte past ASCII. Returns
    (every line so?, lines, runs); each run's last line (0-based) and its id's bytes go into the
    arrays.
    """
    rows = runs = 0
    previous, previous_length = 0, -1
    at = start
    flat = False
    while at < stop and runs < last_rows.shape[0]:
        if words[at] != HEAD_0 or words[at + HEAD_BYTES - 8] != HEAD_LAST:
            break
        name = at + HEAD_BYTES
        at = _name_end(words, name)
        if at < 0:
            break
        length = at - name
        same = length == previous_length and _same_name(words, name, previous, length)
        if not same:
            if runs:
                last_rows[runs - 1] = rows - 1
            name_starts[runs], name_ends[runs] = name, at
            runs += 1
            previous, previous_length = name, length
        at += 1  # past the id's closing quote: the rest of the line, a word at a time
        while True:
            word = words[at]
            marks = (_zero_bytes(word ^ NEWLINES) | _zero_bytes(word ^ BRACES) | _zero_bytes(word ^ QUOTES)
                     | _zero_bytes(word ^ BACKSLASHES) | (word & HIGH_BITS))
            if marks == 0:
                at += 8
                continue
            at += np.int64(trailing_zeros(marks)) >> 3
            mark = words[at] & LOW_BYTE
            if mark == 34:
                if words[at] == SESSION_KEY_0 and words[at + 4] == SESSION_KEY_1:
                    at = -1
                    break
                at += 1
            elif mark == 10:
                break
            else:  # a second "{", an escape or a byte past ASCII
                at = -1
                break
        if at < 0:
            break
        at += 1
        rows += 1
        flat = at == stop
    if runs:
        last_rows[runs - 1] = rows - 1
    return flat, rows, runs


class _Scratch:
    """The kernel's columns, kept from block to block (a block's rows are copied out of them)."""

    size = 0
    ints = floats = restarts = ids = np.zeros(0)

    @classmethod
    def fit(cls, size: int) -> None:
        if size > cls.size:
            rows = size // SHORTEST_ROW + 1
            cls.ints = np.empty((7, rows), np.int64)
            cls.floats = np.empty((2, rows), np.float64)
            cls.restarts = np.empty(rows, np.bool_)
            cls.ids = np.empty(size // 2 + 1, np.int64)
            cls.size = size


def read_padded(padded: bytes):
    """``plain.plain_padded`` of a padded block, or None. Every byte outside a session id is matched
    exactly, and a session id's are printable ASCII without a quote or backslash, so the block's
    bytes need no check of their own."""
    from tracedsl.output.plain import PlainBlock

    stop = len(padded) - PAD
    scratch = _Scratch
    scratch.fit(stop - PAD)
    data = np.frombuffer(padded, dtype=np.uint8)
    words = np.ndarray(shape=(len(padded) - 7,), dtype="<u8", buffer=padded, offset=0, strides=(1,))
    plain, rows, runs, total = _read(data, words, PAD, stop, scratch.ints.shape[1], scratch.ints, scratch.floats,
                                     scratch.restarts, scratch.ids)
    if not plain:
        return None
    ints = scratch.ints[:4, :rows].copy()
    floats = scratch.floats[:, :rows].copy()
    run_rows = scratch.ints[4, :runs].copy()
    names = [padded[s:e].decode("ascii")
             for s, e in zip(scratch.ints[5, :runs].tolist(), scratch.ints[6, :runs].tolist(), strict=True)]
    return PlainBlock(rows, run_rows, names, ints[0], ints[1], floats[0], floats[1], ints[2],
                      scratch.restarts[:rows].copy(), ints[3], scratch.ids[:total].copy())


def session_runs_padded(padded: bytes) -> tuple[np.ndarray, list[str]] | None:
    """``plain.session_runs_padded`` with the caller's flatness checks in the same pass: for lines that
    are each one flat object opening with its session id, in ASCII without a backslash, the last
    line of each run of one session and its id; None for any other block."""
    stop = len(padded) - PAD
    scratch = _Scratch
    scratch.fit(stop - PAD)
    words = np.ndarray(shape=(len(padded) - 7,), dtype="<u8", buffer=padded, offset=0, strides=(1,))
    ints = scratch.ints
    flat, rows, runs = _runs(words, PAD, stop, ints[0], ints[1], ints[2])
    if not flat:
        return None
    names = [padded[s:e].decode("ascii") for s, e in zip(ints[1, :runs].tolist(), ints[2, :runs].tolist(), strict=True)]
    return ints[0, :runs].copy(), names


_WARM_BLOCK = (b'{"session_id":"a","input_length":12,"output_length":3,"hash_ids":[123456789,1],'
               b'"timestamp":0.5,"delay":10,"group_id":0,"is_restart":true}')


def warm() -> None:
    """Compile the kernels (or load them from numba's cache) and check them on one row: raises if one fails."""
    padded = bytes(PAD) + _WARM_BLOCK + b"\n" + bytes(PAD)
    block = read_padded(padded)
    if block is None or block.ids.tolist() != [123456789, 1] or block.timestamp.tolist() != [0.5]:
        raise RuntimeError("the compiled plain reader misread its check row")
    runs = session_runs_padded(padded)
    if runs is None or runs[0].tolist() != [0] or runs[1] != ["a"]:
        raise RuntimeError("the compiled session-run reader misread its check row")
