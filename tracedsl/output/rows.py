"""The Mooncake row rules, strictly typed: what one parsed JSONL row may hold.

Shared by the validator (which reports every problem) and the reader (which stops at the
first). The reference's row model (§7.1) is lax: it takes ``"10"`` and ``true`` as integers.
Here an integer field takes a JSON integer only, a number field an integer or a float.

orjson reads an integer literal outside [-2**63, 2**64) as a float, silently. So when an
integer field holds a float that wide, the row's own text is read again with the standard
library (exact integers) to tell ``99999999999999999999999`` (out of range) from ``1e23``
(a float). The same re-reading finds keys given twice in one object, which orjson, like
AIPerf's loader, settles silently by keeping the last.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

# Hash ids become numpy int64 columns; larger ids cannot be held (nor replayed by numpy seeding).
MAX_HASH_ID = 2**63 - 1
MAX_COUNT = 2**63 - 1  # token counts are int64 columns too
PROMPT_FIELDS = ("input_length", "text_input", "messages", "payload")


@dataclass(frozen=True)
class RowProblem:
    """One broken rule in a row: a kind (counted), the field, and a message."""

    kind: str
    field: str | None
    message: str


def _is_int(value) -> bool:
    return type(value) is int


def _is_number(value) -> bool:
    return type(value) is int or type(value) is float


def _type_name(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _shown(value) -> str:
    text = repr(value) if not isinstance(value, (list, dict)) else _type_name(value)
    return text if len(text) <= 40 else text[:37] + "..."


PLAIN_KEYS = frozenset(
    ("session_id", "input_length", "output_length", "hash_ids", "timestamp", "delay", "group_id", "is_restart")
)


def plain_row_ok(row: dict) -> bool:
    """The common row (lengths, ids, timestamp or delay) passing every rule but the ids' own.

    Equivalent to ``not check_row(row, check_hash_ids=False)`` for rows holding only
    ``PLAIN_KEYS`` with an input_length; it is the fast path, check_row says what is wrong.
    """
    get = row.get
    input_length = get("input_length")
    output_length = get("output_length")
    hash_ids = get("hash_ids")
    session_id = get("session_id")
    timestamp = get("timestamp")
    delay = get("delay")
    return (
        type(input_length) is int and 1 <= input_length <= MAX_COUNT
        and (output_length is None or (type(output_length) is int and 1 <= output_length <= MAX_COUNT))
        and (hash_ids is None or type(hash_ids) is list)
        and (session_id is None or type(session_id) is str)
        and (timestamp is None or ((type(timestamp) is float or type(timestamp) is int) and timestamp >= 0))
        and (delay is None or ((type(delay) is float or type(delay) is int) and delay >= 0))
        and row.keys() <= PLAIN_KEYS
    )


def check_row(row: dict, *, check_hash_ids: bool = True, raw: bytes | None = None) -> list[RowProblem]:
    """Every rule ``row`` breaks (the element checks of hash_ids only when asked).

    ``raw``: the row's text, read again exactly when an integer field holds a wide float.
    """
    if raw is not None and _holds_wide_float(row):
        row = exact_row(raw) or row
    problems: list[RowProblem] = []

    def wrong_type(field: str, expected: str) -> None:
        value = row[field]
        problems.append(
            RowProblem("wrong-type", field, f"{field} must be {expected}, got {_type_name(value)} {_shown(value)}")
        )

    kind = row.get("type", "mooncake_trace")
    if kind != "mooncake_trace":
        problems.append(RowProblem("wrong-type", "type", f"type must be \"mooncake_trace\", got {_shown(kind)}"))

    session_id = row.get("session_id")
    if session_id is not None and type(session_id) is not str:
        wrong_type("session_id", "a string")

    given = [name for name in PROMPT_FIELDS if row.get(name) is not None]
    if len(given) != 1:
        what = "none is given" if not given else f"{' and '.join(given)} are all given"
        problems.append(
            RowProblem(
                "prompt-fields",
                given[1] if len(given) > 1 else "input_length",
                f"exactly one of input_length, text_input, messages, payload must be given; {what}",
            )
        )

    input_length = row.get("input_length")
    if input_length is not None:
        if not _is_int(input_length):
            wrong_type("input_length", "an integer")
        elif input_length < 1:
            problems.append(
                RowProblem("not-positive", "input_length", f"input_length must be >= 1, got {_shown(input_length)}")
            )
        elif input_length > MAX_COUNT:
            problems.append(
                RowProblem("out-of-range", "input_length", f"input_length must be < 2**63, got {_shown(input_length)}")
            )
    _check_other_prompts(row, problems, wrong_type)

    output_length = row.get("output_length")
    if output_length is not None:
        if not _is_int(output_length):
            wrong_type("output_length", "an integer")
        elif output_length < 1:
            problems.append(
                RowProblem("not-positive", "output_length", f"output_length must be >= 1, got {_shown(output_length)}")
            )
        elif output_length > MAX_COUNT:
            problems.append(
                RowProblem("out-of-range", "output_length", f"output_length must be < 2**63, got {_shown(output_length)}")
            )

    hash_ids = row.get("hash_ids")
    if hash_ids is not None:
        if type(hash_ids) is not list:
            wrong_type("hash_ids", "an array of integers")
        else:
            if input_length is None:
                problems.append(
                    RowProblem("hash-ids-without-input", "hash_ids", "hash_ids is allowed only with input_length")
                )
            if check_hash_ids:
                problem = hash_id_problem(hash_ids)
                if problem is not None:
                    problems.append(problem)

    for field in ("timestamp", "delay"):
        value = row.get(field)
        if value is None:
            continue
        if not _is_number(value):
            wrong_type(field, "a number (ms)")
        elif value < 0:
            problems.append(RowProblem("negative", field, f"{field} must be >= 0 ms, got {_shown(value)}"))

    extra = row.get("extra")
    if extra is not None and type(extra) is not dict:
        wrong_type("extra", "an object")
    return problems


def hash_id_problem(hash_ids: list, raw: bytes | None = None) -> RowProblem | None:
    """The first hash id that is not an integer in [0, 2**63), if any (``raw``: as in check_row)."""
    for index, value in enumerate(hash_ids):
        if not _is_int(value):
            if raw is not None and _wide_float(value):
                exact = (exact_row(raw) or {}).get("hash_ids")
                if type(exact) is list and len(exact) == len(hash_ids):
                    return hash_id_problem(exact)
            return RowProblem(
                "wrong-type",
                f"hash_ids[{index}]",
                f"hash_ids[{index}] must be an integer, got {_type_name(value)} {_shown(value)}",
            )
        if value < 0 or value > MAX_HASH_ID:
            return RowProblem(
                "out-of-range",
                f"hash_ids[{index}]",
                f"hash_ids[{index}] must be in [0, 2**63), got {_shown(value)}",
            )
    return None


def _wide_float(value) -> bool:
    """A float orjson may have made of an integer literal beyond 64 bits."""
    return type(value) is float and abs(value) >= 2.0**63


def _holds_wide_float(row: dict) -> bool:
    get = row.get
    hash_ids = get("hash_ids")
    return (_wide_float(get("input_length")) or _wide_float(get("output_length"))
            or (type(hash_ids) is list and any(map(_wide_float, hash_ids))))


def exact_row(raw: bytes) -> dict | None:
    """The row read by the standard library: integers exact, however wide. None if it cannot."""
    try:
        row = json.loads(raw)
    except (ValueError, RecursionError):  # a 4300-digit integer or a deep nest: keep orjson's reading
        return None
    return row if type(row) is dict else None


def duplicate_keys(raw: bytes) -> list[tuple[str, bool]]:
    """The keys given more than once in one object of the row: (key, in the row itself?), in order.

    The row's own keys come first; keys repeated inside nested objects follow, once each.
    """
    repeats: list[list[str]] = []  # per object, innermost first: the row itself comes last

    def pairs_hook(pairs: list[tuple[str, object]]) -> dict:
        seen: set[str] = set()
        again: dict[str, None] = {}
        for key, _ in pairs:
            if key in seen:
                again[key] = None
            seen.add(key)
        repeats.append(list(again))
        return dict(pairs)

    try:
        json.loads(raw, object_pairs_hook=pairs_hook)
    except (ValueError, RecursionError):
        return []
    if not repeats:
        return []
    nested = dict.fromkeys(key for keys in repeats[:-1] for key in keys)
    return [(key, True) for key in repeats[-1]] + [(key, False) for key in nested]


def ids_array(flat: list) -> np.ndarray | None:
    """The ids as int64 when every one is an integer in [0, 2**63), else None (then ask hash_id_problem)."""
    try:
        ids = np.asarray(flat) if flat else np.zeros(0, dtype=np.int64)
    except (ValueError, OverflowError, TypeError):
        return None
    if ids.dtype != np.int64 or (ids.shape[0] and ids.min() < 0):
        return None
    # numpy reads true and false among integers as 1 and 0: look at those elements themselves
    for index in np.flatnonzero(ids <= 1).tolist():
        if type(flat[index]) is bool:
            return None
    return ids


def _check_other_prompts(row: dict, problems: list[RowProblem], wrong_type) -> None:
    text_input = row.get("text_input")
    if text_input is not None and type(text_input) is not str:
        wrong_type("text_input", "a string")
    messages = row.get("messages")
    if messages is not None:
        if type(messages) is not list or not messages:
            wrong_type("messages", "a non-empty array of objects")
        else:
            for index, message in enumerate(messages):
                if type(message) is not dict or "role" not in message:
                    problems.append(
                        RowProblem("wrong-type", f"messages[{index}]", f"messages[{index}] must be an object with a role")
                    )
                    break
    tools = row.get("tools")
    if tools is not None:
        if messages is None:
            problems.append(RowProblem("prompt-fields", "tools", "tools is allowed only with messages"))
        if type(tools) is not list or not tools or any(type(tool) is not dict for tool in tools):
            wrong_type("tools", "a non-empty array of objects")
    payload = row.get("payload")
    if payload is not None and (type(payload) is not dict or not payload):
        wrong_type("payload", "a non-empty object")
