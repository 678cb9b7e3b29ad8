"""manifest.json: the reference's four fields first, then what tracedsl adds to make a run reproducible."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from tracedsl import __version__

if TYPE_CHECKING:  # the CLI reads the bounds below at start-up; it must not pay for pydantic
    from tracedsl.ir import GenerationParams

MANIFEST_NAME = "manifest.json"

# Bounds on the two numbers a manifest records besides the spec, checked wherever they enter
# (command line, a manifest read back) before any work. A seed is an unsigned 64-bit integer:
# orjson writes no larger integer, and a larger one would be accepted, run, then fail here.
MAX_SEED = 2**64 - 1
# A billion sessions of `default` is ~16 billion rows, ~3 TB of JSONL (measured: 15.7 rows and
# 3.2 kB per session): past any real benchmark, and far below the counts whose chunk plan
# alone would exhaust memory.
MAX_SESSIONS = 10**9


@dataclass(frozen=True)
class RunRecord:
    """What a finished run wrote and from what: every field of the manifest."""

    seed: int
    config_name: str
    params: GenerationParams
    engine: str
    requested_sessions: int
    written_sessions: int
    rows: int
    dataset_sha256: str
    spec_source: str | None  # the spec's file name, not its path: the manifest is portable
    spec_sha256: str | None
    # With session classes: each class's written sessions (continuations included) and primaries.
    class_sessions: tuple[tuple[int, int], ...] | None = None


def manifest_dict(record: RunRecord) -> dict:
    """The reference's keys in its order (``num_sessions`` counts continuations, as it does), then ours.

    ``requested_sessions`` is what ``tracedsl run manifest.json`` reads back to reproduce the
    dataset; the reference's ``num_sessions`` cannot do that (§9 B13). A spec with session
    classes adds ``classes`` (each class's fraction and session counts); without, the keys
    are these alone.
    """
    data = {
        "seed": record.seed,
        "num_sessions": record.written_sessions,
        "config_name": record.config_name,
        "generation_params": record.params.generation_params(),
        "tracedsl_version": __version__,
        "engine": record.engine,
        "requested_sessions": record.requested_sessions,
        "written_sessions": record.written_sessions,
        "rows": record.rows,
        "dataset_sha256": record.dataset_sha256,
        "spec_source": record.spec_source,
        "spec_sha256": record.spec_sha256,
    }
    if record.params.classes is not None:
        data["classes"] = class_block(record.params, record.class_sessions)
    return data


def class_block(params: GenerationParams, counts: tuple[tuple[int, int], ...] | None) -> list[dict]:
    """Each class's name, fraction, and how many sessions (all, and primaries) the run wrote."""
    classes = params.classes or []
    counts = counts or tuple((0, 0) for _ in classes)
    return [{"name": c.name, "fraction": c.fraction, "sessions": written, "primary_sessions": primaries}
            for c, (written, primaries) in zip(classes, counts, strict=True)]


def write_manifest(directory: Path, record: RunRecord) -> Path:
    """Write manifest.json as the reference does: orjson, 2-space indent, no trailing newline."""
    path = directory / MANIFEST_NAME
    path.write_bytes(orjson.dumps(manifest_dict(record), option=orjson.OPT_INDENT_2))
    return path


def read_tracedsl_fields(path: Path) -> dict | None:
    """The tracedsl-only fields of a manifest (engine, requested_sessions…), or None for a reference one."""
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    if not isinstance(data, dict) or "tracedsl_version" not in data:
        return None
    return data
