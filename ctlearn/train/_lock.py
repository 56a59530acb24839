"""``RunLock``: one process owns a run folder at a time (an advisory ``fcntl.flock`` lock)."""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path

LOCK_FILE = ".lock"


class RunFolderLocked(OSError):
    """Another process holds the run folder's lock."""


class RunLock:
    """An exclusive advisory lock on ``folder/.lock``, held from ``acquire`` to ``release``.

    The lock file records the holder's PID and host, so a refusal can name them; the kernel
    releases the lock when the holder exits, however it exits, so a killed run never leaves a
    stale lock. Advisory: it keeps out other ``ctlearn`` processes, not other programs. On
    network file systems ``flock`` may be local to one host.
    """

    def __init__(self, folder: Path):
        self.path = Path(folder) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 256, 0).decode(errors="replace").strip() or "an unknown process"
            os.close(fd)
            raise RunFolderLocked(
                f"{self.path.parent} is in use by {holder} (lock {self.path}): wait for that "
                "run to end, or choose another output folder"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"PID {os.getpid()} on host {socket.gethostname()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the lock
            self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
