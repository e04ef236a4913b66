"""One writer per collection index, across threads, processes and API workers that share a home.

An exclusive ``flock`` on ``<index root>/.locks/<collection>.lock``. The lock files are never deleted
(a process waiting on an unlinked file would lock nothing), and sit outside the index folders, which
rebuilds, renames and deletes replace. The kernel drops the lock when its holder dies, even by kill -9.
Each acquire opens the file anew, so two threads of one process exclude each other too.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCKS_DIR = ".locks"


class WriterLock:
    def __init__(self, index_root: Path, collection: str) -> None:
        self.path = Path(index_root) / LOCKS_DIR / f"{collection}.lock"
        self._fd: int | None = None

    def acquire(self, blocking: bool = True) -> bool:
        """Take the lock (waiting for the current writer when blocking); False if busy and not blocking."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the lock
            self._fd = None

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()
