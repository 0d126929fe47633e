"""One crawl at a time per archive: a lock file next to a SQLite file, an advisory lock in
a PostgreSQL archive itself (so crawls on different machines exclude each other)."""

from __future__ import annotations

import fcntl
import hashlib
import os
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url

from archive.db import PG_CRAWL_LOCK, display, sqlite_path
from archive.normalize import format_time, utcnow

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings


class LockHeldError(Exception):
    pass


def lock_path(url: str) -> Path:
    """`annals.db.lock` beside a SQLite file; for another server database, a file in the
    temp directory named after its URL (one machine's crawls exclude each other)."""
    path = sqlite_path(url)
    if path is not None:
        return path.with_name(path.name + ".lock")
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"annals-{digest}.lock"


def _holder() -> str:
    return f"pid {os.getpid()} on {socket.gethostname()} since {format_time(utcnow())}"


@contextmanager
def crawl_lock(url: str, settings: BaseSettings) -> Iterator[Path | None]:
    """Hold the archive's crawl lock, or raise LockHeldError at once. A killed crawl never
    leaves a stale lock behind: the kernel drops a file lock with its process, and
    PostgreSQL drops a session's advisory lock with its connection.

    With a shared frontier (ANNALS_REDIS_URL, crawler.frontier) the workers of one crawl
    run at once on purpose: Redis, not this lock, decides what each one does."""
    if settings.get("ANNALS_REDIS_URL"):
        yield None
        return
    if make_url(url).get_backend_name() == "postgresql":
        with _postgres_lock(url):
            yield None
        return
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
        os.write(fd, f"{_holder()}\n".encode())
        yield path
    finally:
        os.close(fd)  # closing releases the lock


@contextmanager
def _postgres_lock(url: str) -> Iterator[None]:
    """A session-level advisory lock on its own autocommit connection, named in
    application_name so a refused crawl can say who holds it."""
    import psycopg

    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    me = f"annals crawl, {_holder()}"[:63]
    with psycopg.connect(conninfo, autocommit=True, application_name=me) as conn:
        got = conn.execute("SELECT pg_try_advisory_lock(%s)", (PG_CRAWL_LOCK,)).fetchone()
        if not (got and got[0]):
            raise LockHeldError(
                f"another annals crawl is running on this archive ({_pg_holder(conn)}; "
                f"advisory lock {PG_CRAWL_LOCK} in {display(url)})"
            )
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (PG_CRAWL_LOCK,))


def _pg_holder(conn: Any) -> str:
    # A bigint advisory key shows in pg_locks as classid (high half) and objid (low half).
    row = conn.execute(
        "SELECT a.application_name, a.client_addr FROM pg_locks l "
        "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
        "AND l.granted AND l.classid = %s AND l.objid = %s AND l.objsubid = 1",
        (PG_CRAWL_LOCK >> 32, PG_CRAWL_LOCK & 0xFFFFFFFF),
    ).fetchone()
    if row is None:
        return "another process"
    name, address = row
    return f"{name or 'another process'}{f' from {address}' if address else ''}"
