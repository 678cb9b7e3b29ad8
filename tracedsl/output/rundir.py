"""The run directory: named as the reference names it, built under a hidden temporary name, never reused.

A run writes into ``.<name>.tmp-XXXX`` and renames it to
``<name>_<N>s_seed<S>_<UTC YYYYMMDD-HHMMSS>`` only when every file is written and checked, so
an interrupted or failed run leaves nothing that looks complete (the reference writes in
place and reuses a directory started in the same second, §9 B15, B19).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from tracedsl.output.manifest import MANIFEST_NAME

DATASET_NAME = "dataset.jsonl"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class RunFiles:
    """A trace to read and the manifest that describes it, when there is one."""

    dataset: Path
    manifest: Path | None


def locate_run(target: Path) -> RunFiles:
    """The trace at ``target``: a run directory's dataset.jsonl, or the file itself.

    The manifest is the manifest.json beside the dataset (a run directory's own, or the one
    beside a dataset file given directly). FileNotFoundError (its ``strerror`` the reason)
    when there is no trace there.
    """
    target = Path(target)
    if target.is_dir():
        dataset = target / DATASET_NAME
        if not dataset.is_file():
            raise FileNotFoundError(errno.ENOENT, f"not a run directory (no {DATASET_NAME} in it)",
                                    str(target))
    elif target.is_file():
        dataset = target
    else:
        raise FileNotFoundError(errno.ENOENT, "no such file or directory", str(target))
    manifest = dataset.parent / MANIFEST_NAME
    return RunFiles(dataset, manifest if manifest.is_file() else None)


def run_dir_name(name: str, num_sessions: int, seed: int, now: datetime | None = None) -> str:
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%d-%H%M%S")
    return f"{safe_name(name)}_{num_sessions}s_seed{seed}_{stamp}"


def safe_name(name: str) -> str:
    """A workload name usable as part of a directory name."""
    cleaned = _UNSAFE.sub("_", name).strip("._") or "run"
    return cleaned[:100]


class RunDir:
    """A run directory under construction; ``commit`` publishes it, ``discard`` removes it."""

    def __init__(self, parent: Path, name: str):
        self.parent = parent
        self.name = safe_name(name)
        parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=f".{self.name}.tmp-", dir=parent))
        # mkdtemp makes it private (0700); a published run gets the usual permissions.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.path, 0o777 & ~umask)
        self.final: Path | None = None

    def commit(self, final_name: str) -> Path:
        """Rename to ``final_name`` (or ``final_name-2``, ``-3``… when taken) and return the path."""
        for attempt in range(1, 10_000):
            candidate = self.parent / (final_name if attempt == 1 else f"{final_name}-{attempt}")
            if candidate.exists():
                continue
            try:
                # rename() onto an empty directory would succeed; mkdir first claims the name.
                os.mkdir(candidate)
            except FileExistsError:
                continue
            os.replace(self.path, candidate)
            self.final = candidate
            return candidate
        raise FileExistsError(f"no free run directory name for {final_name} under {self.parent}")

    def discard(self) -> None:
        if self.final is None:
            shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None or self.final is None:
            self.discard()
