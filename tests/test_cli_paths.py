"""Any file name works as --db, on the commands that write and on those that read; a
database that is someone else's is refused, never given annals' tables."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from archive.cli import Exit, app
from archive.db import open_archive, resolve_url
from archive.store import Store
from tests.helpers import FAST, PostgresServer, RecordFactory, annals, crawl

runner = CliRunner()

# Characters a URL or a SQLite URI gives a meaning to, and what else a file name holds.
NAMES = ["a#b.db", "a?b.db", "a%20b.db", "100%.db", "a b.db", "archív ü 档案.db", "x&mode=rw.db"]


def invoke(*args: str):
    return runner.invoke(app, list(args))


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("name", NAMES)
def test_any_file_name_works_as_db(tmp_path: Path, name: str, make_record: RecordFactory):
    folder = tmp_path / "my archives #1"
    folder.mkdir()
    path = folder / name
    created = invoke("db", "upgrade", "--db", str(path))
    assert created.exit_code == 0, created.output
    assert files(folder) == [name]  # that file and no other (WAL files go with it)
    engine = open_archive(resolve_url(str(path)))
    Store(engine).write([make_record("51322")])
    engine.dispose()
    counted = invoke("query", "SELECT count(*) AS n FROM documents", "--db", str(path), "-f",
                     "jsonl")  # fmt: skip
    assert counted.exit_code == 0, counted.output
    assert json.loads(counted.stdout) == {"n": 1}
    exported = invoke("export", "--db", str(path))
    assert exported.exit_code == 0, exported.output
    assert [json.loads(x)["external_id"] for x in exported.stdout.splitlines()] == ["51322"]
    stats = invoke("stats", "--db", str(path), "-f", "json")
    assert stats.exit_code == 0, stats.output
    assert sorted(p for p in files(folder) if not p.startswith(name)) == []
    with sqlite3.connect(path) as conn:  # the file named is the one that was written
        assert conn.execute("SELECT external_id FROM documents").fetchall() == [("51322",)]


def test_a_crawl_writes_the_file_named_whatever_its_name(tmp_path: Path, gate_mirror):
    _, base_url = gate_mirror
    folder = tmp_path / "a #?%20 é"
    folder.mkdir()
    path = folder / "annals #2?.db"
    result = crawl(path, base_url, "gate_announcements")
    assert result.returncode in (0, Exit.BLOCKED), result.stderr  # the mirror blocks two
    assert sorted(p for p in files(folder) if not p.startswith(path.name)) == []
    with sqlite3.connect(path) as conn:
        documents = conn.execute("SELECT count(*) FROM documents").fetchone()[0]
    assert documents > 0
    counted = invoke("query", "SELECT count(*) AS n FROM documents", "--db", str(path), "-f",
                     "jsonl")  # fmt: skip
    assert json.loads(counted.stdout) == {"n": documents}


def foreign_sqlite(path: Path) -> str:
    """Another program's SQLite file (rollback journal, a table, a view); its digest."""
    with sqlite3.connect(path) as conn:
        conn.executescript(
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);"
            "INSERT INTO notes (body) VALUES ('buy milk'), ('call mum');"
            "CREATE VIEW recent AS SELECT * FROM notes;"
        )
    conn.close()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_foreign_sqlite_file_is_refused_and_left_as_it_was(tmp_path: Path, gate_mirror):
    _, base_url = gate_mirror
    path = tmp_path / "notes.db"
    digest = foreign_sqlite(path)
    result = crawl(path, base_url, "gate_announcements")
    assert result.returncode == Exit.ARCHIVE, result.stderr
    assert "not an annals archive" in result.stderr
    assert "notes" in result.stderr
    assert "annals db upgrade --force" in result.stderr
    assert "Traceback" not in result.stderr
    assert not path.with_name("notes.db.lock").exists()  # nothing made beside it
    for command in (["db", "upgrade"], ["reparse"], ["query", "SELECT 1"], ["export"]):
        refused = invoke(*command, "--db", str(path))
        assert refused.exit_code == Exit.ARCHIVE, (command, refused.output)
        assert "not an annals archive" in refused.stderr
    source = tmp_path / "archive.db"
    assert invoke("db", "upgrade", "--db", str(source)).exit_code == 0
    copied = invoke("db", "copy", "--from", str(source), "--to", str(path))
    assert copied.exit_code == Exit.REFUSED, copied.output
    assert "holds tables but no annals archive" in copied.stderr
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest  # not one byte changed
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        names = conn.execute("SELECT name FROM sqlite_master ORDER BY name").fetchall()
    assert names == [("notes",), ("recent",)]


def test_db_upgrade_force_adds_the_archive_beside_foreign_tables(tmp_path: Path):
    path = tmp_path / "notes.db"
    foreign_sqlite(path)
    result = invoke("db", "upgrade", "--force", "--db", str(path))
    assert result.exit_code == 0, result.output
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT body FROM notes ORDER BY id").fetchall() == [
            ("buy milk",),
            ("call mum",),
        ]
    counted = invoke("query", "SELECT count(*) AS n FROM documents", "--db", str(path), "-f",
                     "jsonl")  # fmt: skip
    assert json.loads(counted.stdout) == {"n": 0}


def test_an_empty_sqlite_file_becomes_an_archive(tmp_path: Path):
    path = tmp_path / "touched.db"
    path.touch()
    result = invoke("db", "upgrade", "--db", str(path))
    assert result.exit_code == 0, result.output
    assert invoke("query", "SELECT count(*) FROM documents", "--db", str(path)).exit_code == 0


@pytest.mark.postgres
def test_a_foreign_postgresql_database_is_refused(pg_server: PostgresServer, gate_mirror):
    _, base_url = gate_mirror
    url = pg_server.empty()
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE invoices (id int PRIMARY KEY, total numeric)"))
        conn.execute(sa.text("INSERT INTO invoices VALUES (1, 9.5)"))
    result = annals("crawl", "gate_announcements", "--db", url, "--base-url", base_url, *FAST)
    assert result.returncode == Exit.ARCHIVE, result.stderr
    assert "not an annals archive" in result.stderr
    assert invoke("db", "upgrade", "--db", url).exit_code == Exit.ARCHIVE
    with engine.connect() as conn:
        tables = sa.inspect(conn).get_table_names()
        assert tables == ["invoices"]
        assert conn.execute(sa.text("SELECT count(*) FROM invoices")).scalar_one() == 1
    engine.dispose()
