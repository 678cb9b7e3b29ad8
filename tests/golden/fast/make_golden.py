"""Writes digests.json: the SHA-256 of the fast engine's dataset.jsonl for every bundled spec and example.

Run it only to change the fast engine's bytes on purpose (and say why in the commit):

    PYTHONPATH=$PWD python tests/golden/fast/make_golden.py

It renders each spec at ``SEED`` and ``SESSIONS`` in process, which writes the same bytes as
``tracedsl run SPEC -n 200 --seed 7`` (tests/test_golden_fast.py checks that for one spec).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from tracedsl.engine import RunRequest
from tracedsl.engine.fast import FastEngine
from tracedsl.loading import load_spec
from tracedsl.output.jsonl import render_chunk

ROOT = Path(__file__).resolve().parents[3]
SEED = 7
SESSIONS = 200
DIGESTS = Path(__file__).with_name("digests.json")


def spec_files() -> list[Path]:
    """Every bundled spec and every example, as paths relative to the repository."""
    return sorted([*ROOT.glob("specs/*.trace"), *ROOT.glob("examples/*.trace")])


def digest(path: Path) -> str:
    params = load_spec(path).params
    sha = hashlib.sha256()
    for chunk in FastEngine().generate(RunRequest(params, SESSIONS, SEED)):
        sha.update(render_chunk(chunk))
    return sha.hexdigest()


def current() -> dict[str, str]:
    return {path.relative_to(ROOT).as_posix(): digest(path) for path in spec_files()}


def main() -> int:
    document = {"seed": SEED, "sessions": SESSIONS, "dataset_sha256": current()}
    DIGESTS.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {DIGESTS.relative_to(ROOT)}: {len(document['dataset_sha256'])} specs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
