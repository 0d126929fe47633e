"""Engines and schema state: where the archive lives and whether it is up to date.

The engine is always passed in; nothing here runs at import time.
"""

from __future__ import annotations

import atexit
import functools
import os
import shlex
import shutil
import tempfile
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url

DEFAULT_PATH = "annals.db"
ENV_URL = "ANNALS_DATABASE_URL"
BUSY_TIMEOUT_MS = 5_000
MIGRATIONS = Path(__file__).with_name("migrations")
# SQLite's page size for a new archive (4096 by default). A snapshot's compressed page,
# 3-4 KB, overflows a 4 KB page; with 16 KB pages a crawl writes its batches with an
# eighth less CPU, the same rows in a file 8% smaller, and listing lookups and searches
# read no slower (bench/crawl's recorded mirror). The WAL is checkpointed every 1000
# pages, so every 16 MB now; at 4 MB (wal_autocheckpoint 250) the gain was the same.
# Archives made before keep their 4 KB pages: a WAL database's cannot change in place.
PAGE_SIZE = 16384


class ArchiveError(Exception):
    """An archive problem with a message meant for the user, not a traceback."""


class ArchiveNotFoundError(ArchiveError):
    pass


class NeedsUpgradeError(ArchiveError):
    pass


class NotAnArchiveError(NeedsUpgradeError):
    """A database that holds tables of its own and no annals schema: annals adds none."""


def resolve_url(db: str | None = None) -> str:
    """`--db` first, then $ANNALS_DATABASE_URL, then ./annals.db. A plain path means SQLite."""
    value = db or os.environ.get(ENV_URL) or DEFAULT_PATH
    if "://" in value:
        return value
    # SQLAlchemy renders the path percent-encoded (`#`, `?`, `%`, ...) and decodes it
    # when it parses the URL, so every file name survives the round trip.
    path = str(Path(value).expanduser())
    return sa.engine.URL.create("sqlite", database=path).render_as_string(hide_password=False)


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL, or None for other databases and in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    if parsed.database == ":memory:":
        return None
    return Path(parsed.database.removeprefix("file:"))


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def make_engine(
    url: str, *, readonly: bool = False, busy_timeout_ms: int = BUSY_TIMEOUT_MS
) -> Engine:
    """An engine for `url`. SQLite gets WAL, a busy timeout, foreign keys, and write
    transactions that take the write lock up front (BEGIN IMMEDIATE), so two writers
    queue on the busy timeout instead of failing half-way through a batch. PostgreSQL
    writers queue the same way on an advisory lock (_postgres_engine)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return _postgres_engine(url, readonly=readonly, busy_timeout_ms=busy_timeout_ms)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(
            url, json_serializer=_dumps, json_deserializer=orjson.loads, pool_pre_ping=True
        )

    path = sqlite_path(url)
    connect_args: dict[str, Any] = {"timeout": busy_timeout_ms / 1000}
    if readonly and path is not None:
        # A URI filename, so mode=ro can be asked for; its path is percent-encoded, or a
        # `#` or `?` in a file name would end it (and open, even create, another file).
        uri = f"file:{quote(str(path), safe='/')}?mode=ro"
        parsed = parsed.set(database=uri, query={"uri": "true"})
    engine = sa.create_engine(
        parsed,
        json_serializer=_dumps,
        json_deserializer=orjson.loads,
        connect_args=connect_args,
        poolclass=None if path is not None else sa.pool.StaticPool,
    )

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event own BEGIN; pysqlite's implicit one is deferred.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if readonly:
            cursor.execute("PRAGMA query_only = ON")
        elif path is not None:
            # Only a new archive takes it (the file's page size is fixed once it has
            # one), so it comes before WAL, which writes the first page.
            cursor.execute(f"PRAGMA page_size = {PAGE_SIZE}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        reading = readonly or conn.get_execution_options().get("annals_read", False)
        conn.exec_driver_sql("BEGIN" if reading else "BEGIN IMMEDIATE")

    return engine


# Advisory lock keys (any 64-bit numbers; advisory locks are per database, so two
# archives on one server never share them).
PG_WRITE_LOCK = 0x616E6E616C7301  # held by every write transaction
PG_CRAWL_LOCK = 0x616E6E616C7302  # held by a crawl for its whole session (crawler.lock)


def _postgres_engine(url: str, *, readonly: bool, busy_timeout_ms: int) -> Engine:
    """PostgreSQL: a read-only engine's transactions are READ ONLY; a writer's take the
    archive's write lock first.

    Why one lock for all writers, not per-row `INSERT ... ON CONFLICT`: a batch reads
    the documents' versions, decides in memory which content is new, which is a revert
    and which number the next version gets, then writes. Two writers deciding on one
    snapshot would both take version N+1 of a document (or both create it), and
    ON CONFLICT DO NOTHING would silently drop one of two different texts. Holding
    pg_advisory_xact_lock from the first statement makes writers queue as SQLite's
    BEGIN IMMEDIATE does, so a batch always decides on what the batches before it
    committed. A batch takes milliseconds, and readers (MVCC) never wait on it.
    `lock_timeout` bounds the wait; the store retries then reports, as on SQLite.
    """
    if readonly:
        # A reader serves one command (query, export, ...): its connections close when
        # it is done with them instead of waiting in a pool for a garbage collector.
        reader = sa.create_engine(
            url, json_serializer=_dumps, json_deserializer=orjson.loads, poolclass=sa.NullPool
        )
        return reader.execution_options(postgresql_readonly=True)
    engine = sa.create_engine(
        url, json_serializer=_dumps, json_deserializer=orjson.loads, pool_pre_ping=True
    )

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get("annals_read", False):
            return
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = {int(busy_timeout_ms)}")
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_WRITE_LOCK})")

    return engine


# --- schema state -----------------------------------------------------------------------------


@functools.cache
def _migrations() -> Path:
    """The migration scripts' folder. Alembic reads them as files; inside a zipped egg (a
    Scrapyd deployment) they are not, so they are copied out once per process."""
    if MIGRATIONS.is_dir():
        return MIGRATIONS
    target = Path(tempfile.mkdtemp(prefix="annals-migrations-"))
    atexit.register(shutil.rmtree, target, ignore_errors=True)

    def copy(node: Traversable, into: Path) -> None:
        for child in node.iterdir():
            if child.is_dir():
                (into / child.name).mkdir()
                copy(child, into / child.name)
            elif not child.name.endswith((".pyc", ".pyo")):
                (into / child.name).write_bytes(child.read_bytes())

    copy(resources.files("archive") / "migrations", target)
    return target


def _alembic_config(url: str) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_migrations()))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


# The newest migration's revision (archive/migrations/versions), which a new migration
# must update: every command checks the archive against it, and Alembic's own reading
# of the scripts costs a crawl's start-up a tenth of a second (tests/test_db.py checks
# that Alembic finds the same head).
HEAD_REVISION = "0004"
VERSION_TABLE = "alembic_version"  # Alembic's default, which annals' migrations keep


def head_revision() -> str:
    return HEAD_REVISION


def current_revision(engine: Engine) -> str | None:
    """The archive's schema revision, None for a database without annals' schema. Read
    from Alembic's version table directly: Alembic is imported only to migrate."""
    with engine.connect().execution_options(annals_read=True) as conn:
        if not sa.inspect(conn).has_table(VERSION_TABLE):
            return None
        revisions = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).all()
        if len(revisions) > 1:  # branches, which annals never makes: Alembic's own error
            from alembic.runtime.migration import MigrationContext

            return MigrationContext.configure(conn).get_current_revision()
        return revisions[0][0] if revisions else None


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str]:
    """Apply the migrations up to `revision`; returns (from, to)."""
    from alembic import command

    before = current_revision(engine)
    config = _alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
    return before, current_revision(engine) or ""


def display(url: str) -> str:
    path = sqlite_path(url)
    return str(path) if path is not None else make_url(url).render_as_string(hide_password=True)


def open_archive(url: str, *, create: bool = False, readonly: bool = False) -> Engine:
    """An engine on an archive whose schema is current.

    `create` makes a missing or empty archive (what a crawl does); otherwise a missing
    archive is an error. A database with tables of its own is never made an archive
    (refuse_foreign). An archive at an older schema is never upgraded behind the
    user's back: the error names the command that does it.
    """
    path = sqlite_path(url)
    if path is not None and not path.exists():
        if not create:
            raise ArchiveNotFoundError(
                f"no archive at {path}: run `annals crawl ...` or "
                f"`annals db upgrade --db {shlex.quote(str(path))}` to create one"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not readonly:
        refuse_foreign(url)  # before a writer's connection changes anything in the file
    if create:
        engine = make_engine(url)
        if current_revision(engine) is None:
            upgrade(engine)
        if not readonly:
            _require_head(engine, url)
            return engine
        engine.dispose()
    engine = make_engine(url, readonly=readonly)
    _require_head(engine, url)
    return engine


def refuse_foreign(url: str) -> None:
    """Raise NotAnArchiveError when the database at `url` holds tables but no annals
    schema: someone else's file, given to --db by mistake. It is looked at read-only,
    so even its journal mode stays as it was (a writer's connection would make it WAL)."""
    path = sqlite_path(url)
    if path is not None and not path.exists():
        return
    engine = make_engine(url, readonly=True)
    try:
        if current_revision(engine) is not None:
            return
        inspector = sa.inspect(engine)
        names = sorted(inspector.get_table_names() + inspector.get_view_names())
    finally:
        engine.dispose()
    if names:
        raise NotAnArchiveError(_foreign_message(url, names))


def _foreign_message(url: str, names: list[str]) -> str:
    target = display(url)
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return (
        f"{target} is not an annals archive: it holds other tables ({shown}), and annals "
        "adds none of its own to them. Give --db a new file or an empty database, or, "
        "to add the archive's tables to this one anyway, run "
        f"`annals db upgrade --force --db {shlex.quote(target)}`"
    )


def _require_head(engine: Engine, url: str) -> None:
    current, head = current_revision(engine), head_revision()
    if current == head:
        return
    target = display(url)
    if current is None:
        inspector = sa.inspect(engine)
        names = sorted(inspector.get_table_names() + inspector.get_view_names())
        if names:
            raise NotAnArchiveError(_foreign_message(url, names))
        raise NeedsUpgradeError(
            f"{target} is an empty database, not an annals archive yet: "
            f"run `annals db upgrade --db {shlex.quote(target)}` to create the tables"
        )
    raise NeedsUpgradeError(
        f"the archive at {target} is at schema revision {current}, this annals needs {head}: "
        f"run `annals db upgrade --db {shlex.quote(target)}`"
    )
