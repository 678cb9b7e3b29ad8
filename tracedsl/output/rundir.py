"""The run directory: named as the reference names it, built under a hidden temporary name, never reused.

A run writes into ``.<name>.tmp-<pid>-<host>-<random>`` and renames it to
``<name>_<N>s_seed<S>_<UTC YYYYMMDD-HHMMSS>`` only when every file is written and checked, so
an interrupted or failed run leaves nothing that looks complete (the reference writes in
place and reuses a directory started in the same second, §9 B15, B19).

The hidden name says which process owns it (``<pid>``) and where that pid means something
(``<host>``: 8 hex digits of the host name and pid namespace). A run killed by SIGKILL cannot
remove its directory; the next run into the same parent removes those whose owner is gone
(:func:`remove_stale`) and leaves alone any whose owner lives, or that another host or
container made.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import shutil
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from tracedsl.output.manifest import MANIFEST_NAME

DATASET_NAME = "dataset.jsonl"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
# .<name>.tmp-<pid>-<host>-<random>: what RunDir makes
_HIDDEN = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<pid>[0-9]+)-(?P<host>[0-9a-f]{8})-[0-9a-z]+$")
# The parents this process made run directories in (for remove_own_unfinished).
_PARENTS: set[Path] = set()


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


def _host_key() -> str:
    """8 hex digits naming where a pid means this process's pid: the host and pid namespace."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return hashlib.sha256(f"{socket.gethostname()}|{namespace}".encode()).hexdigest()[:8]


def _alive(pid: int) -> bool:
    if pid <= 0:
        return True  # not a pid we could have written: leave it alone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    except OSError:
        return True
    return True


@dataclass(frozen=True)
class StaleRun:
    """A hidden run directory removed because the process that owned it is gone."""

    name: str
    pid: int

    def __str__(self) -> str:
        return f"removed a stale run directory {self.name} left by process {self.pid}"


def remove_stale(parent: Path) -> list[StaleRun]:
    """Remove the hidden run directories under ``parent`` whose owning process is gone.

    Only names :class:`RunDir` makes, from this host and pid namespace, whose pid no live
    process has; a live owner's directory (a run still going) is never touched. A pid reused
    since keeps its directory until that process ends too.
    """
    removed = []
    host = _host_key()
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    for entry in entries:
        found = _HIDDEN.match(entry.name)
        if found is None or found["host"] != host:
            continue
        pid = int(found["pid"])
        if pid == os.getpid() or _alive(pid):
            continue
        try:
            if not entry.is_dir(follow_symlinks=False):
                continue
        except OSError:
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        if not os.path.lexists(entry.path):
            removed.append(StaleRun(entry.name, pid))
    return removed


def remove_own_unfinished() -> list[Path]:
    """Remove every hidden run directory this process made and has not published.

    The last step of an interrupted command (after its workers stopped), whatever point the
    signal reached: even a directory whose RunDir never got to ``__enter__`` goes.
    """
    removed = []
    own = f"-{os.getpid()}-{_host_key()}-"
    for parent in list(_PARENTS):
        try:
            entries = list(os.scandir(parent))
        except OSError:
            continue
        for entry in entries:
            found = _HIDDEN.match(entry.name)
            if found is not None and own in entry.name:
                _remove_tree(Path(entry.path))
                removed.append(Path(entry.path))
    return removed


def _remove_tree(path: Path) -> None:
    """rmtree, again if a file appeared meanwhile (the writer is gone by now, so it ends)."""
    for _ in range(3):
        shutil.rmtree(path, ignore_errors=True)
        if not os.path.lexists(path):
            return


class RunDir:
    """A run directory under construction; ``commit`` publishes it, ``discard`` removes it.

    ``stale``: the hidden directories of dead runs it removed from ``parent`` first.
    """

    def __init__(self, parent: Path, name: str):
        self.parent = parent
        self.name = safe_name(name)
        parent.mkdir(parents=True, exist_ok=True)
        self.stale = remove_stale(parent)
        _PARENTS.add(Path(parent))
        prefix = f".{self.name}.tmp-{os.getpid()}-{_host_key()}-"
        for _ in range(100):
            path = parent / (prefix + secrets.token_hex(4))
            try:
                os.mkdir(path)  # the usual permissions (the umask's), as a published run has
            except FileExistsError:
                continue
            break
        else:
            raise FileExistsError(errno.EEXIST, "no free temporary run directory name", str(parent))
        self.path = path
        self.final: Path | None = None

    def commit(self, final_name: str) -> Path:
        """Rename to ``final_name`` (or ``final_name-2``, ``-3``… when taken) and return the path."""
        for attempt in range(1, 10_000):
            candidate = self.parent / (final_name if attempt == 1 else f"{final_name}-{attempt}")
            if candidate.exists():
                continue
            try:
                try:
                    # rename() onto an empty directory would succeed; mkdir first claims the name.
                    os.mkdir(candidate)
                except FileExistsError:
                    continue
                os.replace(self.path, candidate)
            except BaseException:
                # A signal (or a failed rename) before the run was published: the claimed
                # name goes too (rmdir removes only an empty directory).
                if os.path.isdir(self.path):
                    with contextlib.suppress(OSError):
                        os.rmdir(candidate)
                raise
            self.final = candidate
            return candidate
        raise FileExistsError(f"no free run directory name for {final_name} under {self.parent}")

    def discard(self) -> None:
        if self.final is None:
            _remove_tree(self.path)

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None or self.final is None:
            self.discard()
