"""Opening archives: creation, schema revisions and the upgrade message."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from archive import search
from archive.db import (
    PAGE_SIZE,
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


def test_a_new_archive_gets_large_pages_and_an_older_one_keeps_its_own(tmp_path: Path):
    new = open_archive(resolve_url(str(tmp_path / "new.db")), create=True)
    with new.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA page_size").scalar() == PAGE_SIZE
    new.dispose()
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:  # an archive made before: SQLite's 4 KB pages
        conn.execute("PRAGMA page_size = 4096")
        conn.execute("VACUUM")
    old = open_archive(resolve_url(str(path)), create=True)
    with old.begin() as conn:
        assert conn.exec_driver_sql("PRAGMA page_size").scalar() == 4096
        conn.execute(
            sa.text(
                "INSERT INTO crawl_runs (spider, started_at, status, counters)"
                " VALUES ('s', '2026-01-01T00:00:00.000Z', 'running', '{}')"
            )
        )
    with old.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA page_size").scalar() == 4096
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("SELECT count(*) FROM crawl_runs").scalar() == 1
    old.dispose()


def test_the_head_revision_is_the_newest_migration():
    # archive.db states the head so that opening an archive at it imports no Alembic:
    # a new migration must update HEAD_REVISION, or this fails.
    from alembic.script import ScriptDirectory

    from archive.db import _alembic_config

    scripts = ScriptDirectory.from_config(_alembic_config("sqlite://"))
    assert head_revision() == scripts.get_current_head()


def test_the_revision_is_read_as_alembic_reads_it(engine, tmp_path: Path):
    # At head, behind it, in an empty database and with an empty version table.
    def alembics(engine) -> str | None:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    assert current_revision(engine) == alembics(engine) == head_revision()
    old = make_engine(resolve_url(str(tmp_path / "old.db")))
    upgrade(old, "0002")
    assert current_revision(old) == alembics(old) == "0002"
    empty = make_engine(resolve_url(str(tmp_path / "empty.db")))
    assert current_revision(empty) is alembics(empty) is None
    with old.begin() as conn:
        conn.exec_driver_sql("DELETE FROM alembic_version")
    assert current_revision(old) is alembics(old) is None


def test_a_stale_archive_is_upgraded_and_a_new_one_created(tmp_path: Path):
    stale = resolve_url(str(tmp_path / "stale.db"))
    upgrade(make_engine(stale), "0003")
    with pytest.raises(NeedsUpgradeError, match="at schema revision 0003"):
        open_archive(stale, create=True)
    assert upgrade(make_engine(stale)) == ("0003", head_revision())
    assert current_revision(open_archive(stale)) == head_revision()
    created = open_archive(resolve_url(str(tmp_path / "new.db")), create=True)
    assert current_revision(created) == head_revision()


# Opens the archive of argv[1] as a crawl does, then names what of Alembic was imported.
OPEN_AND_NAME_ALEMBIC = """
import sys
from archive.db import open_archive, resolve_url
open_archive(resolve_url(sys.argv[1]), create=True).dispose()
print(sorted({name.partition(".")[0] for name in sys.modules} & {"alembic"}))
"""


def test_alembic_is_imported_only_to_migrate(tmp_path: Path):
    path = tmp_path / "a.db"

    def opened() -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-c", OPEN_AND_NAME_ALEMBIC, str(path)]
        return subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)

    assert opened().stdout.strip() == "['alembic']"  # created: the migrations ran
    assert opened().stdout.strip() == "[]"  # at head: the version table was read, no more
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0003'")
    assert "at schema revision 0003" in opened().stderr  # behind: still refused
