"""sessions.jsonl: one row per file session, linking the logical sessions that Mooncake rows cannot.

Each row, in the dataset's session order (see docs/sessions.md)::

    {"session_id":"sess-…","class":null,"group_id":3,"parent_session_id":null,"link":null,
     "end_reason":"forced_retire","turns":12,"first_row":0}

``class`` is the session's class name (null when the spec has no classes); ``group_id`` null when the session has
no L1.5 group; ``parent_session_id`` and ``link`` are set on a continuation (``"restart"``,
``"compaction"``) and on a subagent (``"subagent"``: its parent is the session that spawned it,
and in runs whose spec has subagents every row has ``spawned_at``, the spawning call's turn
index, null but on subagent rows); ``first_row`` is the 0-based line index of
the session's turn 0 in dataset.jsonl. The writer streams: one append per chunk, and it holds
only the split sessions whose continuation is not written yet.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain, repeat
from operator import itemgetter
from pathlib import Path

import numpy as np
import orjson

from tracedsl.diagnostics import Diagnostic, DiagnosticError, Span
from tracedsl.output.names import SessionMemory
from tracedsl.output.rundir import DATASET_NAME
from tracedsl.trace import EndReason, TraceChunk

SESSIONS_NAME = "sessions.jsonl"
LINK_RESTART = "restart"
LINK_KINDS = (LINK_RESTART, "compaction", "subagent")
FIELDS = ("session_id", "class", "group_id", "parent_session_id", "link", "end_reason", "turns",
          "first_row")

# Endings whose context goes on in a continuation: the next continuation of the same primary
# is that session's child.
_SPLIT_CODES = np.array([int(EndReason.RESTART_SPLIT), int(EndReason.COMPACTED)], dtype=np.int8)
# The chunks' ``link`` extra: 0 a primary, 1 a restart's Session B, 2 a compaction continuation,
# 3 a subagent (with the extras ``parent_position``, the chunk position of the session a subagent
# or a subagent's compaction continuation comes from, and ``spawned_at``).
_LINK_NAMES = {1: LINK_RESTART, 2: "compaction", 3: "subagent"}
_REASON_NAMES = {int(reason): reason.reference_name for reason in EndReason}


class SessionIndexWriter:
    """Appends each chunk's sessions to ``path``; ``close`` when the dataset is written.

    A continuation's parent comes from the chunk's ``primary_index`` extra (docs/architecture.md):
    the latest split session of the same primary. A chunk without it writes null parents.
    ``class_names``: the spec's classes in order, which the chunks' ``class_index`` extra names.
    """

    def __init__(self, path: str | Path, class_names: tuple[str, ...] | list[str] = (),
                 logical_ids: bool = False, spawns: bool = False):
        self.path = Path(path)
        self.class_names = tuple(class_names)
        self.logical_ids = logical_ids  # write logical_session_id (runs whose sessions compact)
        self.spawns = spawns  # write spawned_at (runs whose spec has subagents)
        self._file = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        self.rows = 0  # dataset rows before the next chunk
        self.sessions = 0
        # primary index -> its split or compacted session (and that one's logical session), not yet continued
        self._awaiting: dict[int, tuple[str, str]] = {}

    def write(self, chunk: TraceChunk) -> None:
        self._file.write(index_lines(chunk, self.rows, self._awaiting, self.class_names, self.logical_ids,
                                     self.spawns))
        self.rows += chunk.num_rows
        self.sessions += chunk.num_sessions

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> SessionIndexWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def index_lines(chunk: TraceChunk, first_row: int, awaiting: dict[int, tuple[str, str]],
                class_names: tuple[str, ...] = (), logical_ids: bool = False, spawns: bool = False) -> bytes:
    """The chunk's rows of sessions.jsonl; ``awaiting`` carries split sessions across chunks."""
    count = chunk.num_sessions
    if count == 0:
        return b""
    ids = chunk.session_ids
    parents: list[str | None] = [None] * count
    primary = chunk.extras.get("primary_index")
    restart = np.asarray(chunk.is_restart, dtype=bool)
    link = chunk.extras.get("link")
    kinds = restart.astype(np.int8) if link is None else np.asarray(link, dtype=np.int8)
    continued = kinds > 0
    logical: dict[int, str] = {}  # with compaction: a continuation's logical session (its chain's root)
    if primary is not None:
        split = np.isin(chunk.end_reasons, _SPLIT_CODES)
        primary_of = np.asarray(primary).tolist()
        # Only the few sessions that split or continue are looked at one by one, in file order
        # (a parent is always written before its continuation).
        spawned = chunk.extras.get("parent_position")
        spawned_from = spawned.tolist() if spawned is not None else [-1] * count
        for s in np.flatnonzero(split | continued).tolist():
            root = ids[s]
            if spawned_from[s] >= 0:  # a subagent, or its compaction continuation: in this chunk
                parent = spawned_from[s]
                parents[s] = ids[parent]
                if kinds[s] == 2:
                    logical[s] = logical.get(parent, ids[parent])
                continue
            if continued[s]:
                parents[s], parent_root = awaiting.pop(primary_of[s], (None, None))
                if kinds[s] == 2 and parent_root is not None:
                    root = logical[s] = parent_root
            if split[s]:
                awaiting[primary_of[s]] = (ids[s], root)
    groups = chunk.group_ids.tolist()
    reasons = [_REASON_NAMES.get(code, "unknown") for code in chunk.end_reasons.tolist()]
    turns = chunk.turns_per_session.tolist()
    firsts = (chunk.row_offsets[:-1] + first_row).tolist()
    links = [_LINK_NAMES.get(k) for k in kinds.tolist()]
    which = chunk.extras.get("class_index")
    classes = [None] * count if which is None or not class_names else [class_names[c] for c in which.tolist()]
    dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    rows = [
        {"session_id": sid, "class": c, "group_id": g if g >= 0 else None,
         "parent_session_id": p, "link": k, "end_reason": e,
         "turns": t, "first_row": f}
        for sid, c, g, p, k, e, t, f in zip(ids, classes, groups, parents, links, reasons, turns, firsts,
                                            strict=True)
    ]
    if logical_ids:  # a run with compaction: every session names its logical session
        for s, row in enumerate(rows):
            row["logical_session_id"] = logical.get(s, row["session_id"])
    if spawns:  # a run with subagents: the spawning call's turn of every subagent
        at = chunk.extras.get("spawned_at")
        turns_at = at.tolist() if at is not None else [-1] * count
        for row, turn in zip(rows, turns_at, strict=True):
            row["spawned_at"] = turn if turn >= 0 else None
    opens = chunk.extras.get("opens_request")
    if opens is not None:
        for row, turns_opening in zip(rows, request_turns(chunk.row_offsets, opens), strict=True):
            row["requests"] = turns_opening
    return b"".join([dumps(row, option=newline) for row in rows])


def request_turns(row_offsets: np.ndarray, opens: np.ndarray) -> list[list[int]]:
    """Per session, the turn index of each call that opens a user request (turn 0 first)."""
    at = np.flatnonzero(opens)
    session = np.searchsorted(row_offsets, at, side="right") - 1
    turn = at - row_offsets[session]
    bounds = np.searchsorted(session, np.arange(row_offsets.shape[0]))
    turns = turn.tolist()
    return [turns[bounds[s]:bounds[s + 1]] for s in range(row_offsets.shape[0] - 1)]


def index_beside(dataset: str | Path) -> Path | None:
    """The sessions.jsonl of a run's dataset.jsonl, when there is one beside it.

    Only a file named dataset.jsonl has one: another trace in the same folder is not the
    run's, and the index beside it says nothing about it.
    """
    dataset = Path(dataset)
    index = dataset.parent / SESSIONS_NAME
    return index if dataset.name == DATASET_NAME and index.is_file() else None


def read_index(path: str | Path) -> Iterator[tuple[int, dict | None]]:
    """Each non-blank line of a sessions.jsonl: (line number, row), None when not a JSON object.

    For the readers that take the index as it is (report, compare, fit): a row whose link, end
    reason, class or session names are not plain JSON values (a list, an object) raises a
    DiagnosticError at its line. The validator reads the index its own way and reports such
    rows among its findings."""
    return chain.from_iterable(_batches(path, numbered=True))


def index_objects(path: str | Path) -> Iterator[dict]:
    """The rows of a sessions.jsonl that are JSON objects, in order (one iterator over each
    block's list, so a reader taking many at once pays no Python step per row); checked as
    ``read_index``'s."""
    return chain.from_iterable(_batches(path, numbered=False))


def _batches(path: str | Path, numbered: bool) -> Iterator:
    """Each block's rows, checked: (line number, row) pairs, or the objects alone."""
    with open(path, "rb") as handle:
        rows = _IndexRows(handle)
        while (taken := rows.take_numbered()) is not None:
            numbers, objects = taken
            dicts = objects if None not in objects else [row for row in objects if row is not None]
            _check_values(path, numbers, objects, dicts)
            yield zip(numbers, objects, strict=True) if numbered else dicts


# the fields the index's readers look up by value: each must be null, a string, a number or a bool
_NAMED_FIELDS = ("session_id", "logical_session_id", "parent_session_id", "class", "link", "end_reason",
                 "spawned_at")
_SCALARS = frozenset((type(None), str, int, float, bool))


def _check_values(path, numbers: list[int], objects: list, dicts: list[dict]) -> None:
    """Raise at the first row of the block with a field of ``_NAMED_FIELDS`` that is not a plain
    value: one pass of C per field, and the rows one by one only when one of them failed."""
    if all(_SCALARS.issuperset(map(type, map(dict.get, dicts, repeat(name)))) for name in _NAMED_FIELDS):
        return
    for number, row in zip(numbers, objects, strict=True):
        for name in _NAMED_FIELDS if row is not None else ():
            value = row.get(name)
            if type(value) not in _SCALARS:
                raise DiagnosticError(Diagnostic(
                    INDEX_ROW, f"{name} must be null, a string or a number, not a JSON {type(value).__name__}",
                    file=str(path), span=Span(number, 1), path=name,
                    hint="`tracedsl validate` checks the whole index; without sessions.jsonl beside it the "
                         "trace is read from its rows alone"))


def row_problem(row: dict | None) -> str | None:
    """What is wrong with one index row's shape, or None."""
    if row is None:
        return "not a JSON object"
    missing = [name for name in FIELDS if name not in row]
    if missing:
        return f"missing {', '.join(missing)}"
    if type(row["session_id"]) is not str:
        return "session_id must be a string"
    if row["class"] is not None and type(row["class"]) is not str:
        return "class must be null or a class name (a string)"
    for name in ("turns", "first_row"):
        if type(row[name]) is not int or row[name] < 0:
            return f"{name} must be a non-negative integer"
    if row["link"] is not None and row["link"] not in LINK_KINDS:
        return f"link must be null or one of {', '.join(LINK_KINDS)}, got {row['link']!r}"
    if row["parent_session_id"] is not None and (type(row["parent_session_id"]) is not str or row["link"] is None):
        return "parent_session_id must be a string, and a session with a parent needs a link kind"
    return None


def link_counts(path: str | Path) -> dict[str, int]:
    """How many sessions of the index are linked to a parent, by link kind (every kind listed)."""
    counts = dict.fromkeys(LINK_KINDS, 0)
    for objects in _batches(path, numbered=False):
        links = list(map(dict.get, objects, repeat("link")))  # any JSON value: counted by equality
        for kind in LINK_KINDS:
            counts[kind] += links.count(kind)
    return counts


# The findings of the cross-check (docs/validate.md, docs/sessions.md).
INDEX_ROW = "sessions-index-row"
INDEX_ORDER = "sessions-index-order"
INDEX_COUNT = "sessions-index-count"
INDEX_TURNS = "sessions-index-turns"
INDEX_FIRST_ROW = "sessions-index-first-row"
INDEX_LINK = "sessions-index-link"
INDEX_PARENT = "sessions-index-parent"
INDEX_SHARED = "sessions-index-shared-prefix"

_KEPT_IDS = 4096  # a parent's turn-0 ids kept for its continuations' and children's checks, at most

_PARENT_BATCH = 8192


class IndexChecker:
    """Checks a sessions.jsonl against its dataset's sessions as the validator meets them.

    ``start`` is called at each session's first row (its 0-based row index, line, and whether
    it is a restart continuation), ``finish`` with the dataset's row count. ``add(kind,
    message, line)`` records a finding at a line of the index. The index rows' names are kept
    as in the validator (8 bytes a session), for the parents' lookups.
    """

    def __init__(self, path: str | Path, add, params=None):
        self.path = Path(path)
        self.add = add
        # The run's spec (manifest.json beside), for how many turn-0 blocks a compaction
        # continuation or a subagent may share with its parent; None: only the parent's whole
        # turn 0 shared is a finding.
        self.params = params
        self._compacted: dict[str, tuple[np.ndarray, object]] = {}  # awaiting their continuation
        self._block: dict[str, tuple[np.ndarray, object]] = {}  # the current host and its subagents
        self._handle = open(self.path, "rb")  # noqa: SIM115 - closed in finish()
        self._rows = _IndexRows(self._handle)
        self._pending: tuple | None = None
        self._diverged = False
        self._exhausted = False
        self.sessions = 0
        self.memory = SessionMemory()
        self._batch_names: list[str] = []
        self._batch_parents: list[tuple[int, str, int]] = []  # (position in batch, parent, line)

    def start(self, name: str, row_index: int, line: int, is_restart: bool, first_ids=None) -> None:
        """``first_ids``: the session's turn-0 hash ids (a list, or a numpy view of a plain
        block's, when the row has them)."""
        if self._pending is not None:
            self._compare(*self._pending, turns=row_index - self._pending[1])
        self._pending = (name, row_index, line, is_restart, first_ids)

    def start_many(self, names: list[str], row_indexes: np.ndarray, lines: np.ndarray, restarts: np.ndarray,
                   first_ids) -> bool:
        """``start`` for each of a block's session starts at once, when that is all it would do.

        ``first_ids(k)``: the k-th session's turn-0 ids (as for ``start``). True when done: every
        session compared here matches its index row with no link, parent, restart or compaction,
        so it has no finding and leaves nothing behind but its name (and, for the last, what
        ``_shared`` keeps). False, with nothing done, when any would need a closer look: the
        caller then calls ``start`` one by one, which words the findings.
        """
        count = len(names)
        if count == 0:
            return True
        compared = count - 1 + (self._pending is not None)  # every start but the last closes one
        if compared and not (self._diverged or self._exhausted):
            if not self._compare_clean(names, row_indexes, lines, restarts, first_ids, compared):
                return False
        else:
            self.sessions += compared
        last = count - 1
        self._pending = (names[last], int(row_indexes[last]), int(lines[last]), bool(restarts[last]),
                         first_ids(last))
        return True

    def _compare_clean(self, names, row_indexes, lines, restarts, first_ids, compared: int) -> bool:
        """Compare the pending session and the block's sessions but the last, if every one is clean."""
        pending = self._pending
        ahead = self._rows.peek(compared)
        if len(ahead[1]) < compared:
            return False  # the index ends inside: ``_compare`` says where
        numbers, rows = ahead
        offset = 1 if pending is not None else 0  # names[k - offset] is compared with rows[k]
        block_names = names[: compared - offset]
        expected_names = [pending[0], *block_names] if pending is not None else block_names
        starts = row_indexes[: compared - offset + 1].tolist()
        first_rows = [pending[1], *starts[:-1]] if pending is not None else starts[:-1]
        ends = starts if pending is not None else starts[1:]
        turns = [end - begin for begin, end in zip(first_rows, ends, strict=True)]
        if pending is not None and pending[3] or restarts[: compared - offset].any():
            return False
        try:  # every field as a column, in one pass over the rows (group_id present, though not compared)
            given_names, given_turns, given_firsts, links, parents, classes, reasons, _ = zip(
                *map(_CLEAN_FIELDS, rows), strict=True)
        except (KeyError, TypeError):  # a missing field, or a row that is not an object (None)
            return False
        if not (
            list(given_names) == expected_names and list(given_turns) == turns and list(given_firsts) == first_rows
            and links.count(None) == compared and parents.count(None) == compared
            and _types(given_turns) <= _INT and _types(given_firsts) <= _INT
            and _types(classes) <= _NULL_OR_STR and _COMPACTED not in reasons
        ):
            return False
        self._rows.skip(compared)
        self.sessions += compared
        # What ``_compare`` leaves behind for a clean row: its name for the parents' lookups,
        # and what ``_shared`` keeps of it (each clean row clears what the one before kept).
        last = compared - 1
        last_ids = pending[4] if offset and last == 0 else first_ids(last - offset)
        self._shared(expected_names[last], rows[last], last_ids, numbers[last])
        taken = 0
        while taken < compared:
            room = _PARENT_BATCH - len(self._batch_names)
            self._batch_names.extend(expected_names[taken : taken + room])
            taken += room
            if len(self._batch_names) >= _PARENT_BATCH:
                self._flush_parents()
        return True

    def finish(self, rows: int) -> None:
        try:
            if self._pending is not None:
                self._compare(*self._pending, turns=rows - self._pending[1])
                self._pending = None
            self._flush_parents()
            if not self._exhausted and not self._diverged:
                extra = self._rows.next()
                if extra is not None:
                    more = 1 + self._rows.count_rest()
                    self.add(INDEX_COUNT, f"sessions.jsonl lists {more} more session(s) than the "
                             f"dataset's {self.sessions}", extra[0])
        finally:
            self.close()

    def close(self) -> None:
        self._handle.close()

    def _compare(self, name: str, first_row: int, line: int, is_restart: bool, first_ids, turns: int) -> None:
        self.sessions += 1
        if self._diverged or self._exhausted:
            return
        numbered = self._rows.next()
        if numbered is None:
            self._exhausted = True
            self.add(INDEX_COUNT, f"sessions.jsonl ends after {self.sessions - 1} sessions; the "
                     f"dataset's session {name!r} (line {line}) and any after it are not in it", None)
            return
        number, row = numbered
        problem = row_problem(row)
        if problem is not None:
            self.add(INDEX_ROW, f"not a sessions.jsonl row: {problem}", number)
            self._batch_names.append(name)
            return
        if row["session_id"] != name:
            self._diverged = True
            self.add(INDEX_ORDER, f"session {row['session_id']!r} here, but the dataset's session "
                     f"{self.sessions} (line {line}) is {name!r}: the index is not in the dataset's "
                     "order (or is another trace's); the rest is not compared", number)
            return
        if row["turns"] != turns:
            self.add(INDEX_TURNS, f"session {name!r} has {row['turns']} turns here, {turns} rows in "
                     "the dataset", number)
        if row["first_row"] != first_row:
            self.add(INDEX_FIRST_ROW, f"session {name!r} starts at row {row['first_row']} here, at "
                     f"row {first_row} (0-based; line {line}) in the dataset", number)
        linked = row["link"] == LINK_RESTART
        if is_restart and not (linked and row["parent_session_id"] is not None):
            self.add(INDEX_LINK, f"session {name!r} is a restart continuation (is_restart in the "
                     "dataset) but has no restart link to a parent here", number)
        elif linked and not is_restart:
            self.add(INDEX_LINK, f"session {name!r} is linked as a restart here, but its first row "
                     f"in the dataset (line {line}) has no is_restart", number)
        if row["parent_session_id"] is not None:
            self._batch_parents.append((len(self._batch_names), row["parent_session_id"], number))
        self._shared(name, row, first_ids, number)
        self._batch_names.append(name)
        if len(self._batch_names) >= _PARENT_BATCH:
            self._flush_parents()

    def _body(self, row: dict, parent_body):
        """The spec body a session runs: a subagent its parent's subagent body, a continuation its
        parent's, a host the top level's (or its class's). None without a spec."""
        if self.params is None:
            return None
        if row["link"] == "subagent":
            sub = getattr(parent_body, "subagent", None)
            return sub.params if sub is not None else None
        if row["link"] is not None and parent_body is not None:
            return parent_body
        for name, _, body in self.params.bodies():
            if name == row["class"]:
                return body
        return None

    def _allowed(self, link: str, parent_body, body) -> int | None:
        """How many leading turn-0 blocks a session may share with its parent."""
        if link == "compaction" and parent_body is not None:
            return parent_body.layer1_blocks + parent_body.layer1_5_blocks
        if link == "subagent" and body is not None and parent_body is not None:
            sub = parent_body.subagent
            if not sub.shares_global:
                return 0
            return body.layer1_blocks + (body.layer1_5_blocks if sub.shares_groups else 0)
        return None

    def _shared(self, name: str, row: dict, first_ids, number: int) -> None:
        """A compaction continuation shares with its parent only the parent's turn-0 L1/L1.5
        blocks, a subagent only what its body inherits (its L1 when it shares the global prefix,
        then its L1.5 when it shares the groups too): a longer common hash-id prefix of the two
        turn-0 rows is a finding (also, without the spec, sharing the parent's whole turn 0)."""
        link, parent = row["link"], row["parent_session_id"]
        ids = _ids(first_ids)
        in_block = link == "subagent" or (link == "compaction" and parent in self._block)
        if not in_block:
            self._block = {}
        kept = self._compacted.pop(parent, None) if link == "compaction" else None
        if in_block and parent in self._block:
            kept = self._block[parent]
        parent_ids, parent_body = kept if kept is not None else (None, None)
        body = self._body(row, parent_body)
        if parent_ids is not None and ids is not None:
            common = _common_prefix(ids, parent_ids)
            allowed = self._allowed(link, parent_body, body)
            if allowed is not None and common > allowed:
                what = ("its parent's L1 and L1.5 (a compaction continuation's turn 0 is L1 + L1.5 + a "
                        "fresh summary)" if link == "compaction" else "what its body inherits")
                self.add(INDEX_SHARED, f"{link} session {name!r} shares the first {common} hash ids of "
                         f"its turn 0 with its parent {parent!r}; only {allowed} are {what}", number)
            elif allowed is None and common >= parent_ids.size and parent_ids.size < _KEPT_IDS:
                self.add(INDEX_SHARED, f"{link} session {name!r} repeats its parent {parent!r}'s whole "
                         f"turn 0 ({common} hash ids) as its own; a {link} shares at most the parent's "
                         "L1 and L1.5", number)
        if ids is None:
            return
        kept_ids = ids[:_KEPT_IDS].copy()
        if row["end_reason"] == EndReason.COMPACTED.reference_name:
            self._compacted[name] = (kept_ids, body)
        if self.params is None or _spawns(body):  # its children come right after it
            self._block[name] = (kept_ids, body)

    def _flush_parents(self) -> None:
        """Each parent must be a session listed earlier: in an earlier batch, or earlier in this one."""
        names, parents = self._batch_names, self._batch_parents
        if parents:
            earlier = self.memory.holds([parent for _, parent, _ in parents])
            first_at: dict[str, int] = {}
            for position, name in enumerate(names):
                first_at.setdefault(name, position)
            for (position, parent, number), held in zip(parents, earlier.tolist(), strict=True):
                if held or first_at.get(parent, position) < position:
                    continue
                where = "later in the file" if parent in first_at else "nowhere in the file before it"
                self.add(INDEX_PARENT, f"parent {parent!r} is {where}; a parent is written before "
                         "its continuations", number)
        if names:
            self.memory.seen_before(names)
        self._batch_names, self._batch_parents = [], []


def _ids(first_ids) -> np.ndarray | None:
    """The first _KEPT_IDS of a turn-0 row's ids: from a row's list, or a plain block's view."""
    if isinstance(first_ids, np.ndarray):
        return first_ids[:_KEPT_IDS].astype(np.int64, copy=False)
    if type(first_ids) is not list:
        return None
    try:
        return np.asarray(first_ids[:_KEPT_IDS], dtype=np.int64)
    except (OverflowError, TypeError, ValueError):
        return None


def _common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    n = min(a.size, b.size)
    differ = np.flatnonzero(a[:n] != b[:n])
    return int(differ[0]) if differ.size else n


def _spawns(body) -> bool:
    return body is not None and getattr(body, "subagent", None) is not None


def params_beside(index: str | Path):
    """The run's spec from the manifest.json beside its sessions.jsonl, or None."""
    path = Path(index).parent / "manifest.json"
    try:
        data = orjson.loads(path.read_bytes())
        from tracedsl.ir import GenerationParams

        return GenerationParams.model_validate(data["generation_params"])
    except Exception:  # noqa: BLE001 - no usable spec: the checks that need one are skipped
        return None


_INT = {int}
_DICT = {dict}
_NULL_OR_STR = {type(None), str}
_COMPACTED = EndReason.COMPACTED.reference_name
# the fields a clean index row is read for, in the order _compare_clean takes them
_CLEAN_FIELDS = itemgetter("session_id", "turns", "first_row", "link", "parent_session_id", "class", "end_reason",
                           "group_id")
_INDEX_READ_BYTES = 1 << 20


def _types(values) -> set:
    return set(map(type, values))


class _IndexRows:
    """The index's non-blank lines as (line number, row or None), read a block at a time, with
    a look ahead (``peek``) for the checks that take many rows at once."""

    def __init__(self, handle) -> None:
        self._handle = handle
        self._numbers: list[int] = []
        self._rows: list[dict | None] = []
        self._at = 0  # the next row's place in the lists
        self._line = 0  # physical lines read
        self._carry = b""
        self._ended = False

    def next(self) -> tuple[int, dict | None] | None:
        if self._at == len(self._rows) and not self._read():
            return None
        at = self._at
        self._at += 1
        return self._numbers[at], self._rows[at]

    def take_numbered(self) -> tuple[list[int], list[dict | None]] | None:
        """``take`` as the two lists: line numbers and rows."""
        at = self._take_from()
        return None if at is None else (self._numbers[at:], self._rows[at:])

    def _take_from(self) -> int | None:
        if self._at == len(self._rows) and not self._read():
            return None
        at, self._at = self._at, len(self._rows)
        return at

    def peek(self, count: int) -> tuple[list[int], list[dict | None]]:
        """The next ``count`` rows (fewer at the end of the file), not consumed."""
        while len(self._rows) - self._at < count and self._read():
            pass
        end = self._at + count
        return self._numbers[self._at : end], self._rows[self._at : end]

    def skip(self, count: int) -> None:
        self._at += count

    def count_rest(self) -> int:
        rest = len(self._rows) - self._at
        self._at = len(self._rows)
        while self._read():
            rest += len(self._rows) - self._at
            self._at = len(self._rows)
        return rest

    def _read(self) -> bool:
        """Append the next block's rows; False at the end of the file."""
        if self._at:
            del self._numbers[: self._at], self._rows[: self._at]
            self._at = 0
        while not self._ended:
            block = self._handle.read(_INDEX_READ_BYTES)
            if not block:
                self._ended = True
                lines = [self._carry] if self._carry else []
                self._carry = b""
            else:
                block = self._carry + block
                cut = block.rfind(b"\n")
                if cut < 0:
                    self._carry = block
                    continue
                lines, self._carry = block[:cut].split(b"\n"), block[cut + 1 :]
            before = len(self._rows)
            self._add(lines)
            if len(self._rows) > before:
                return True
        return False

    def _add(self, lines: list[bytes]) -> None:
        first = self._line + 1
        self._line += len(lines)
        if [line[:1] for line in lines].count(b"{") == len(lines):  # none blank: one object each, mostly
            try:
                rows = list(map(orjson.loads, lines))
            except orjson.JSONDecodeError:
                pass
            else:
                self._numbers.extend(range(first, first + len(lines)))
                self._rows.extend(rows if _types(rows) == _DICT else [row if type(row) is dict else None for row in rows])
                return
        for number, row in _numbered(lines, first):
            self._numbers.append(number)
            self._rows.append(row)


def _numbered(lines, first: int) -> Iterator[tuple[int, dict | None]]:
    """Each line that is not blank, numbered from ``first``, as its object (None when it is
    not one)."""
    for number, line in enumerate(lines, start=first):
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError:
            row = None
        yield number, row if type(row) is dict else None
