"""A temporary folder for data a run keeps on disk instead of in memory.

Made on first use (nothing is created for runs that never spill), in the folder given (the
run directory being built, so it sits on the same disk and goes with it if the run fails)
or else the system's temporary directory. Removed by :meth:`SpillFolder.close`, or when the
last object holding it is dropped, or at exit, whichever comes first. An interrupted command
leaves with ``os._exit`` (no exit hooks), so it calls :func:`remove_all` first.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from pathlib import Path

_OPEN: weakref.WeakSet = weakref.WeakSet()


class SpillFolder:
    def __init__(self, parent: str | Path | None, prefix: str):
        self.parent = parent
        self.prefix = prefix
        self.path: Path | None = None
        self._cleanup: weakref.finalize | None = None

    def file(self, name: str) -> Path:
        """A path in the folder, which is made if it does not exist yet."""
        if self.path is None:
            _OPEN.add(self)  # first: an interrupted command's remove_all then sees the folder
            self.path = Path(tempfile.mkdtemp(prefix=self.prefix, dir=self.parent))
            self._cleanup = weakref.finalize(self, shutil.rmtree, self.path, True)
        return self.path / name

    def close(self) -> None:
        if self._cleanup is not None:
            self._cleanup()
        elif self.path is not None:  # interrupted between making the folder and its finalizer
            shutil.rmtree(self.path, True)


def remove_all() -> None:
    """Remove every spill folder still open in this process (an interrupted command's last step)."""
    for folder in list(_OPEN):
        folder.close()
