"""Shared fixtures: a real archive (a SQLite file in a temporary directory, and the same
tests again on a fresh PostgreSQL database), a record factory, a local mirror. Only
fixtures and hooks live here; what tests import is in tests/helpers.py."""

from __future__ import annotations

import os
import secrets
import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from archive.db import open_archive, resolve_url
from archive.records import Link, Record
from archive.store import Store
from crawler.mirror import Mirror, MirrorServer
from tests.helpers import FIXTURES, PG_ADMIN, Hook, PostgresServer, RecordFactory


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
def database(request: pytest.FixtureRequest, db_path: Path) -> Iterator[str]:
    """The archive's URL: a SQLite file, or a fresh PostgreSQL database, dropped when the
    test is done (the fixtures that use it are torn down first)."""
    if request.param == "sqlite":
        yield resolve_url(str(db_path))
        return
    server: PostgresServer = request.getfixturevalue("pg_server")
    url = server.archive()
    yield url
    server.release(url)


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


# --- end-to-end: a local mirror on 127.0.0.1 and `annals crawl` in a subprocess ---------------


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


@pytest.fixture
def hook() -> Iterator[Hook]:
    """An HTTP endpoint on 127.0.0.1 that alerts are delivered to (`hook.url`, json://)."""
    server = Hook()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
