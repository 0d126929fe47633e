"""Opening archives: creation, schema revisions and the upgrade message."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from archive import search
from archive.db import (
    ArchiveNotFoundError,
    NeedsUpgradeError,
    current_revision,
    head_revision,
    make_engine,
    open_archive,
    resolve_url,
    upgrade,
)
from archive.models import SQLModel


def test_resolve_url_defaults(monkeypatch):
    monkeypatch.delenv("ANNALS_DATABASE_URL", raising=False)
    assert resolve_url(None) == "sqlite:///annals.db"
    assert resolve_url("x/y.db") == "sqlite:///x/y.db"
    monkeypatch.setenv("ANNALS_DATABASE_URL", "postgresql+psycopg://h/db")
    assert resolve_url(None) == "postgresql+psycopg://h/db"
    assert resolve_url("other.db") == "sqlite:///other.db"


def test_missing_archive_says_how_to_create_it(tmp_path: Path):
    with pytest.raises(ArchiveNotFoundError, match="annals db upgrade"):
        open_archive(resolve_url(str(tmp_path / "none.db")))
    assert not (tmp_path / "none.db").exists()


def test_create_applies_the_migrations(tmp_path: Path):
    engine = open_archive(resolve_url(str(tmp_path / "a.db")), create=True)
    assert current_revision(engine) == head_revision()


def test_the_migration_matches_the_models(engine):
    with engine.connect() as conn:
        # The full-text index (SQLite) is not in the models: archive.search says which.
        opts = {"compare_type": True, "include_name": search.include_name}
        context = MigrationContext.configure(conn, opts=opts)
        assert compare_metadata(context, SQLModel.metadata) == []


def test_archive_behind_the_code_names_the_upgrade_command(tmp_path: Path):
    path = tmp_path / "old.db"
    upgrade(make_engine(resolve_url(str(path))))
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0000'")
    with pytest.raises(NeedsUpgradeError, match=rf"annals db upgrade --db {path}"):
        open_archive(resolve_url(str(path)), readonly=True)


def test_foreign_sqlite_file_is_not_taken_for_an_archive(tmp_path: Path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE things (x)")
    with pytest.raises(NeedsUpgradeError, match="not an annals archive"):
        open_archive(resolve_url(str(path)))


@pytest.mark.sqlite_only
def test_sqlite_pragmas(engine):
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
