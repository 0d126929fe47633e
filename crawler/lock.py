"""One crawl at a time per archive: an advisory lock file next to the database."""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from archive.db import sqlite_path
from archive.normalize import format_time, utcnow


class LockHeldError(Exception):
    pass


def lock_path(url: str) -> Path:
    """`annals.db.lock` beside a SQLite file; for a server database, a file in the temp
    directory named after its URL (one machine's crawls exclude each other)."""
    path = sqlite_path(url)
    if path is not None:
        return path.with_name(path.name + ".lock")
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"annals-{digest}.lock"


@contextmanager
def crawl_lock(url: str) -> Iterator[Path]:
    """Hold the archive's crawl lock, or raise LockHeldError at once. The kernel drops the
    lock when the process dies, so a killed crawl never leaves a stale lock behind."""
    path = lock_path(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            raise LockHeldError(
                f"another annals crawl is running on this archive ({holder}; lock {path})"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} since {format_time(utcnow())}\n".encode())
        yield path
    finally:
        os.close(fd)  # closing releases the lock
