"""Engines and schema state: where the archive lives and whether it is up to date.

The engine is always passed in; nothing here runs at import time.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url

DEFAULT_PATH = "annals.db"
ENV_URL = "ANNALS_DATABASE_URL"
BUSY_TIMEOUT_MS = 5_000
MIGRATIONS = Path(__file__).with_name("migrations")


class ArchiveError(Exception):
    """An archive problem with a message meant for the user, not a traceback."""


class ArchiveNotFoundError(ArchiveError):
    pass


class NeedsUpgradeError(ArchiveError):
    pass


def resolve_url(db: str | None = None) -> str:
    """`--db` first, then $ANNALS_DATABASE_URL, then ./annals.db. A plain path means SQLite."""
    value = db or os.environ.get(ENV_URL) or DEFAULT_PATH
    if "://" in value:
        return value
    return f"sqlite:///{Path(value).expanduser()}"


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
        parsed = parsed.set(database=f"file:{path}?mode=ro", query={"uri": "true"})
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


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect().execution_options(annals_read=True) as conn:
        return MigrationContext.configure(conn).get_current_revision()


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
    archive is an error. An archive at an older schema is never upgraded behind the
    user's back: the error names the command that does it.
    """
    path = sqlite_path(url)
    if path is not None and not path.exists():
        if not create:
            raise ArchiveNotFoundError(
                f"no archive at {path}: run `annals crawl ...` or `annals db upgrade --db {path}`"
                " to create one"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
    if create:
        engine = make_engine(url)
        if current_revision(engine) is None and not sa.inspect(engine).has_table("documents"):
            upgrade(engine)
        if not readonly:
            _require_head(engine, url)
            return engine
        engine.dispose()
    engine = make_engine(url, readonly=readonly)
    _require_head(engine, url)
    return engine


def _require_head(engine: Engine, url: str) -> None:
    current, head = current_revision(engine), head_revision()
    if current == head:
        return
    target = display(url)
    if current is None:
        raise NeedsUpgradeError(
            f"{target} is not an annals archive (no schema revision): "
            f"run `annals db upgrade --db {target}` to create the tables"
        )
    raise NeedsUpgradeError(
        f"the archive at {target} is at schema revision {current}, this annals needs {head}: "
        f"run `annals db upgrade --db {target}`"
    )
