"""PostgreSQL: what the SQLite-only tests check, said for PostgreSQL, and the crawl end to
end into a PostgreSQL archive (the store, query, export, history and diff tests run on
both databases through the `database` fixture)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from typer.testing import CliRunner

from archive import search
from archive.cli import Exit, app
from archive.db import head_revision, make_engine, open_archive, resolve_url
from archive.models import SQLModel
from archive.store import ArchiveBusyError, Store
from crawler.cli import DEMO_SPIDERS
from tests.helpers import PostgresServer, annals, crawl, crawl_lock_held, rows
from tests.test_crawl_gate import unblock

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[1]

DOCS = (
    "SELECT source, kind, external_id, language, url, published_at, current_version, "
    "removed_at FROM documents"
)
VERSIONS = (
    "SELECT d.external_id, d.language, v.version, v.content_hash, v.title, v.body_text, "
    "v.category, v.event_type, v.tags, v.symbols, v.published_at FROM versions v "
    "JOIN documents d ON d.id = v.document_id"
)


def content(url: str) -> tuple[list[tuple], list[tuple]]:
    """Documents and versions without fetch times, as SQLite shows them, in one order."""
    engine = open_archive(resolve_url(url), readonly=True)
    try:
        return sorted(rows(engine, DOCS)), sorted(rows(engine, VERSIONS))
    finally:
        engine.dispose()


def query(url: str, sql: str) -> list[tuple]:
    engine = open_archive(url, readonly=True)
    try:
        return [tuple(r) for r in rows(engine, sql)]
    finally:
        engine.dispose()


@pytest.fixture
def pg(pg_server: PostgresServer) -> str:
    """A fresh PostgreSQL archive's URL."""
    return pg_server.archive()


# --- the store ----------------------------------------------------------------------------


def test_times_are_timestamptz_and_sort_in_time_order(pg: str, make_record):
    from dateutil import tz

    engine = open_archive(pg)
    plus8 = tz.tzoffset(None, 8 * 3600)
    Store(engine).write(
        [
            make_record("1", published_at=datetime(2026, 9, 29, 10, 53, tzinfo=plus8)),
            make_record("2", published_at=datetime(2026, 9, 29, 2, 54, 0, 123000, tzinfo=UTC)),
        ]
    )
    with engine.connect() as conn:
        kind = conn.exec_driver_sql(
            "SELECT data_type FROM information_schema.columns "
            "WHERE table_name = 'documents' AND column_name = 'published_at'"
        ).scalar()
        got = conn.exec_driver_sql(
            "SELECT external_id, published_at FROM documents ORDER BY published_at"
        ).all()
        after = conn.exec_driver_sql(
            "SELECT count(*) FROM documents WHERE published_at >= '2026-09-29T02:54Z'"
        ).scalar()
    engine.dispose()
    assert kind == "timestamp with time zone"
    assert [(i, t.astimezone(UTC)) for i, t in got] == [
        ("1", datetime(2026, 9, 29, 2, 53, tzinfo=UTC)),
        ("2", datetime(2026, 9, 29, 2, 54, 0, 123000, tzinfo=UTC)),
    ]
    assert after == 1


def test_write_lock_held_too_long_is_retried_then_reported(pg: str, make_record):
    engine = open_archive(pg)
    quick = Store(make_engine(pg, busy_timeout_ms=50), busy_attempts=2)
    holder = engine.connect()
    holder.begin()
    holder.exec_driver_sql("SELECT 1")  # a writer's transaction: it holds the write lock
    try:
        with pytest.raises(ArchiveBusyError, match="locked by another writer"):
            quick.write([make_record()])
    finally:
        holder.rollback()
        holder.close()
    assert quick.write([make_record()]).new_documents == 1
    quick.engine.dispose()
    engine.dispose()


def test_db_upgrade_creates_the_schema_in_an_empty_database(pg_server: PostgresServer):
    url = pg_server.empty()
    runner = CliRunner()
    first = runner.invoke(app, ["db", "upgrade", "--db", url])
    assert first.exit_code == 0, first.output
    assert f"-> {head_revision()}" in first.stdout
    assert "already at schema revision" in runner.invoke(app, ["db", "upgrade", "--db", url]).stdout
    engine = make_engine(url)
    with engine.connect() as conn:
        # The trigram indexes (migration 0003) are not in the models: archive.search says which.
        opts = {"compare_type": True, "include_name": search.include_name}
        context = MigrationContext.configure(conn, opts=opts)
        assert compare_metadata(context, SQLModel.metadata) == []
    engine.dispose()


def test_query_runs_in_a_read_only_transaction(pg: str):
    runner = CliRunner()
    result = runner.invoke(app, ["query", "SELECT current_setting('transaction_read_only') AS ro",
                                 "--db", pg, "-f", "jsonl"])  # fmt: skip
    assert json.loads(result.stdout) == {"ro": "on"}
    like = runner.invoke(app, ["query", "SELECT count(*) AS n FROM documents WHERE url LIKE '%x%'",
                               "--db", pg, "-f", "jsonl"])  # fmt: skip
    assert json.loads(like.stdout) == {"n": 0}


# --- crawling into PostgreSQL -------------------------------------------------------------


def test_crawl_into_postgres_archives_what_sqlite_archives(tmp_path, gate_mirror, pg):
    mirror, url = gate_mirror
    unblock(mirror)
    sqlite = tmp_path / "annals.db"
    assert crawl(sqlite, url, "gate_announcements").returncode == 0
    result = crawl(pg, url, "gate_announcements")
    assert result.returncode == 0, result.stderr
    assert "gate_announcements: finished" in result.stdout
    assert content(pg) == content(str(sqlite))
    runs = query(pg, "SELECT spider, status FROM crawl_runs")
    assert runs == [("gate_announcements", "finished")]

    again = crawl(pg, url, "gate_announcements")
    assert again.returncode == 0, again.stderr
    assert "0 new documents, 0 new versions" in again.stdout


def test_edit_gives_one_version_and_history_diff_export_stats_read_it(gate_mirror, mirror_dir, pg):
    mirror, url = gate_mirror
    unblock(mirror)
    assert crawl(pg, url, "gate_announcements").returncode == 0
    page = mirror_dir / "article_51322.html"
    page.write_text(page.read_text().replace("1x to 5x", "1x to 10x"))
    second = crawl(pg, url, "gate_announcements", "--full")
    assert "1 new versions" in second.stdout, second.stderr

    diff = annals("diff", "gate:announcement:51322:en", "--db", pg)
    assert diff.returncode == 0, diff.stderr
    assert any(line.startswith("+") and "1x to 10x" in line for line in diff.stdout.splitlines())
    history = annals("history", "gate:announcement:51322:en", "--db", pg, "-f", "json")
    assert [v["version"] for v in json.loads(history.stdout)] == [1, 2]
    export = annals("export", "--db", pg, "--all-versions")
    lines = [json.loads(line) for line in export.stdout.splitlines()]
    assert sum(line["ref"] == "gate:announcement:51322:en" for line in lines) == 2
    stats = annals("stats", "--db", pg, "-f", "json")
    assert json.loads(stats.stdout)["last_runs"][0]["status"] == "finished"


def test_overlapping_crawl_on_postgres_is_refused_at_once(gate_mirror, pg):
    _, url = gate_mirror
    with crawl_lock_held(pg) as holder:
        started = time.monotonic()
        result = crawl(pg, url, "gate_announcements")
        assert result.returncode == Exit.LOCKED
        assert "another annals crawl is running on this archive" in result.stderr
        assert f"pid {holder.pid}" in result.stderr
        assert time.monotonic() - started < 15
    # The lock died with its holder's connection.
    assert crawl(pg, url, "gate_announcements").returncode in (Exit.OK, Exit.BLOCKED)


def test_scrapy_crawl_and_reparse_on_postgres(gate_mirror, pg):
    mirror, url = gate_mirror
    unblock(mirror)
    result = subprocess.run(
        [sys.executable, "-m", "scrapy", "crawl", "gate_announcements", "-a", f"base_url={url}",
         "-s", f"ANNALS_DATABASE_URL={pg}", "-s", "DOWNLOAD_DELAY=0",
         "-s", "AUTOTHROTTLE_ENABLED=False", "-s", "LOG_LEVEL=WARNING"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert query(pg, "SELECT status FROM crawl_runs") == [("finished",)]
    reparse = annals("reparse", "--db", pg)
    assert reparse.returncode == 0, reparse.stderr
    assert "0 quarantined pages" in reparse.stdout


def test_demo_on_postgres(pg):
    result = annals("demo", "--db", pg)
    assert result.returncode == 0, result.stderr
    assert "v.extra ->> 'listing_only' IS NULL" in result.stdout
    engine = open_archive(pg, readonly=True)
    with engine.connect() as conn:
        sources = conn.execute(sa.text("SELECT count(DISTINCT source) FROM documents")).scalar()
    engine.dispose()
    assert sources == len(DEMO_SPIDERS)


def test_export_streams_through_a_server_side_cursor(pg: str, make_record):
    from archive.export import Filters, jsonl_chunks

    engine = open_archive(pg)
    Store(engine).write([make_record(str(i)) for i in range(30)])
    engine.dispose()
    reader = open_archive(pg, readonly=True)
    with reader.connect() as conn, conn.begin():
        chunks = jsonl_chunks(conn, Filters(), all_versions=False, size=10)
        first = next(chunks)
        cursors = conn.exec_driver_sql("SELECT statement FROM pg_cursors").scalars().all()
        rest = list(chunks)
    reader.dispose()
    assert any("DECLARE" in c and "FROM documents JOIN versions" in c for c in cursors)
    assert [n for n, _ in [first, *rest]] == [10, 10, 10]
    assert b"".join(data for _, data in [first, *rest]).count(b"\n") == 30
