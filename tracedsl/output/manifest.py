"""manifest.json: the reference's four fields first, then what tracedsl adds to make a run reproducible."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson

from tracedsl import __version__
from tracedsl.ir import GenerationParams

MANIFEST_NAME = "manifest.json"


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
    spec_source: str | None
    spec_sha256: str | None


def manifest_dict(record: RunRecord) -> dict:
    """The reference's keys in its order (``num_sessions`` counts continuations, as it does), then ours.

    ``requested_sessions`` is what ``tracedsl run manifest.json`` reads back to reproduce the
    dataset; the reference's ``num_sessions`` cannot do that (§9 B13).
    """
    return {
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
