"""Shared fixtures: a real archive (a SQLite file in a temporary directory, and the same
tests again on a fresh PostgreSQL database), a record factory, a local mirror."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
import pytest
import sqlalchemy as sa

from archive.db import make_engine, open_archive, resolve_url, upgrade
from archive.normalize import format_time
from archive.records import Link, Record
from archive.store import Store
from crawler.mirror import Mirror, MirrorServer

FIXTURES = Path(__file__).parent / "fixtures"

# The server the PostgreSQL tests use (.ci/run starts it); they make their own databases.
PG_ADMIN = os.environ.get("ANNALS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


class PostgresServer:
    """Makes fresh databases on the test server (from an upgraded template, ~50 ms each)
    and drops them all at the end of the session."""

    def __init__(self, admin: Any, prefix: str) -> None:
        self.admin = admin  # an autocommit psycopg connection to the maintenance database
        self.prefix = prefix
        self.names: list[str] = []
        self.template = self._create()
        engine = make_engine(self.url(self.template))
        upgrade(engine)
        engine.dispose()

    def url(self, name: str) -> str:
        base = sa.engine.make_url(PG_ADMIN)
        return base.set(drivername="postgresql+psycopg", database=name).render_as_string(
            hide_password=False
        )

    def _create(self, template: str | None = None) -> str:
        name = f"{self.prefix}_{len(self.names)}"
        clause = f" TEMPLATE {template} STRATEGY WAL_LOG" if template else ""
        self.admin.execute(f"CREATE DATABASE {name}{clause}")
        self.names.append(name)
        return name

    def archive(self) -> str:
        """A new database holding an empty archive at the current schema."""
        return self.url(self._create(self.template))

    def empty(self) -> str:
        """A new, empty database (no tables)."""
        return self.url(self._create())

    def drop_all(self) -> None:
        for name in reversed(self.names):
            self.admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """The PostgreSQL test server, or a skip that says loudly why."""
    import psycopg

    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(
            f"NO POSTGRESQL at {PG_ADMIN} ({str(exc).strip().splitlines()[0]}): "
            "the PostgreSQL tests are SKIPPED (start it, or set ANNALS_TEST_POSTGRES)"
        )
    server = PostgresServer(admin, f"annals_test_{os.getpid()}_{secrets.token_hex(3)}")
    try:
        yield server
    finally:
        server.drop_all()
        admin.close()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that uses the archive runs on SQLite and on PostgreSQL, except those
    marked sqlite_only (they look at the SQLite file itself)."""
    if "database" in metafunc.fixturenames:
        dialects: list[Any] = ["sqlite"]
        if metafunc.definition.get_closest_marker("sqlite_only") is None:
            dialects.append(pytest.param("postgresql", marks=pytest.mark.postgres))
        metafunc.parametrize("database", dialects, indirect=True)


@pytest.fixture
def database(request: pytest.FixtureRequest, db_path: Path) -> str:
    """The archive's URL: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return resolve_url(str(db_path))
    server: PostgresServer = request.getfixturevalue("pg_server")
    return server.archive()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "annals.db"


@pytest.fixture
def engine(database: str) -> Iterator[sa.Engine]:
    engine = open_archive(database, create=True)
    yield engine
    engine.dispose()


@pytest.fixture
def store(engine: sa.Engine) -> Store:
    return Store(engine)


RecordFactory = Callable[..., Record]


@pytest.fixture
def make_record() -> RecordFactory:
    def make(external_id: str = "51322", **fields: Any) -> Record:
        defaults: dict[str, Any] = {
            "source": "gate",
            "kind": "announcement",
            "external_id": external_id,
            "language": "en",
            "url": f"https://www.gate.com/announcements/article/{external_id}",
            "title": "Gate Will List Velora (VLR) for Spot Trading",
            "body_html": "<p>Dear Gate users,</p><p>Gate will list <b>VLR/USDT</b>.</p>",
            "published_at": datetime(2026, 5, 22, 6, 30, tzinfo=UTC),
            "category": "New Spot Listings",
            "tags": ["VLR"],
            "extra": {"views": 10},
        }
        defaults.update(fields)
        return Record(**defaults)

    return make


def rows(engine: sa.Engine, sql: str, **params: Any) -> list[Any]:
    """The rows of a query, values as SQLite stores them on either database: times as
    annals' ISO text, JSON as its compact text (PostgreSQL hands back objects)."""
    with engine.connect() as conn:
        result = list(conn.execute(sa.text(sql), params))
    if engine.dialect.name == "sqlite":
        return result
    return [tuple(_as_sqlite(value) for value in row) for row in result]


def _as_sqlite(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return value


def json_at(engine: sa.Engine, column: str, key: str) -> str:
    """SQL for a member of a JSON column: json_extract on SQLite, -> on PostgreSQL."""
    if engine.dialect.name == "sqlite":
        return f"json_extract({column}, '$.{key}')"
    return f"({column} -> '{key}')"


# --- end-to-end: a local mirror on 127.0.0.1 and `annals crawl` in a subprocess ---------------

FAST = [
    # A local mirror needs no politeness; blocks are retried quickly to keep tests short.
    "-s", "DOWNLOAD_DELAY=0",
    "-s", "AUTOTHROTTLE_ENABLED=False",
    "-s", "ANNALS_BLOCK_BACKOFF=0.05",
]  # fmt: skip


def annals(
    *args: str, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the `annals` command as a user would, in its own process."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    env.pop("ANNALS_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "archive", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env,
        check=False,
    )


@pytest.fixture
def mirror_dir(tmp_path: Path) -> Path:
    """A private copy of the recorded Gate pages, free to edit between crawls."""
    target = tmp_path / "mirror" / "gate"
    shutil.copytree(FIXTURES / "gate", target)
    return target


@pytest.fixture
def gate_mirror(mirror_dir: Path) -> Iterator[tuple[Mirror, str]]:
    mirror = Mirror(mirror_dir)
    with MirrorServer(mirror) as server:
        yield mirror, server.url


def crawl(db: Path, base_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return annals("crawl", *args, "--db", str(db), "--base-url", base_url, *FAST)


def mirror_file(folder: Path, url: str) -> str | None:
    """The file, relative to `folder`, that the mirror of `folder` answers a GET of `url`
    with as it is (its routes.json, as crawler.mirror serves it); None for an answer the
    mirror makes (a listing re-paged to another size than it was recorded at)."""
    route = Mirror(folder).route_for("GET", url)
    query = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    file = route.file_for(query) if route else None
    return str(file.relative_to(folder)) if file else None


def mirror_answer(folder: Path, url: str) -> bytes:
    """The body the mirror of `folder` answers a GET of `url` with."""
    route = Mirror(folder).route_for("GET", url)
    assert route is not None, f"the mirror has no route for {url}"
    return route.payload(dict(parse_qsl(urlsplit(url).query, keep_blank_values=True)))


@contextmanager
def crawl_lock_held(url: str) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the archive's crawl lock, as a running crawl would."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import time; from crawler.lock import crawl_lock\n"
         "from scrapy.settings import Settings; settings = Settings()\n"
         "settings.setmodule('crawler.settings')\n"
         f"with crawl_lock({url!r}, settings):\n"
         "    print('locked', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        yield holder
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()


# --- the CLI's archive: three documents on SQLite and on PostgreSQL ---------------------------


@pytest.fixture
def archive(database: str, db_path: Path, store: Store, make_record: RecordFactory) -> str:
    """Three documents; 51322 edited once; a post linking to 51322. Its --db: the SQLite
    file's path, or the PostgreSQL URL."""
    store.write(
        [
            make_record(
                "51322",
                title="Gate Launches SPCXUSDT Perpetual Futures",
                body_html="<p>Leverage from 1x to 5x.</p>",
                published_at=datetime(2026, 5, 22, 7, 56, 11, tzinfo=UTC),
            ),
            make_record(
                "51310",
                title="Gate Will Delist NXRA, QUIL and 19 Other Tokens",
                body_html="<p>Delisting on 2026-05-28.</p>",
                category="Delistings",
                published_at=datetime(2026, 5, 21, 12, tzinfo=UTC),
            ),
            make_record(
                "21716532",
                kind="post",
                title=None,
                body_text="#Gate see this",
                author="Carvinal",
                tags=["Gate"],
                published_at=datetime(2026, 4, 9, 13, 52, 7, tzinfo=UTC),
                links=[
                    Link(
                        "https://www.gate.com/announcements/article/51322",
                        "gate",
                        "announcement",
                        "51322",
                    )
                ],
            ),
        ]
    )
    store.write(
        [
            make_record(
                "51322",
                title="Gate Launches SPCXUSDT Perpetual Futures",
                body_html="<p>Leverage from 1x to 10x.</p>",
                published_at=datetime(2026, 5, 22, 7, 56, 11, tzinfo=UTC),
            )
        ]
    )
    return str(db_path) if database.startswith("sqlite") else database
