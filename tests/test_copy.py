"""`annals db copy`: SQLite to PostgreSQL and back, ids kept, resumable, verified."""

from __future__ import annotations

import sqlite3
import zlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archive.cli import Exit, app
from archive.copy import ORDER, copy_archive
from archive.db import open_archive, resolve_url
from archive.records import Link, Quarantined, RawResponse
from archive.store import Store, snapshot_body
from tests.helpers import PostgresServer, RecordFactory, rows

pytestmark = pytest.mark.postgres

runner = CliRunner()


def make_archive(path: Path, make_record: RecordFactory, n: int = 120) -> None:
    """Documents with edits, a revert, links, snapshots, quarantine and crawl runs."""
    engine = open_archive(resolve_url(str(path)), create=True)
    store = Store(engine)
    run = store.start_run("gate_announcements")
    raw = RawResponse("https://www.gate.com/a", 200, "text/html", b"<html>raw</html>")
    store.write([make_record(str(i), title=f"Title {i}", raw=raw) for i in range(n)], run_id=run)
    store.write([make_record(str(i), title=f"Title {i} edited") for i in range(0, n, 3)])
    store.write([make_record(str(i), title=f"Title {i}") for i in range(0, n, 9)])  # reverts
    link = Link("https://www.gate.com/announcements/article/1", "gate", "announcement", "1")
    store.write([make_record("p1", kind="post", title=None, links=[link])])
    bad = RawResponse("https://www.gate.com/b", 200, "text/html", b"<html>bad</html>")
    store.write([Quarantined(bad.url, "gate_announcements", "no title", bad)])
    store.finish_run(run, "finished", {"requests": n})
    engine.dispose()


def table_rows(url: str) -> dict[str, list[tuple]]:
    """Every row of every table, ids included, as SQLite shows them."""
    engine = open_archive(url, readonly=True)
    try:
        return {name: rows(engine, f"SELECT * FROM {name} ORDER BY id") for name in ORDER}
    finally:
        engine.dispose()


def hashes(url: str) -> dict[str, set[str]]:
    engine = open_archive(url, readonly=True)
    try:
        found: dict[str, set[str]] = {}
        for ref, digest in rows(
            engine,
            "SELECT d.source || ':' || d.kind || ':' || d.external_id || ':' || d.language, "
            "v.content_hash FROM documents d JOIN versions v ON v.document_id = d.id",
        ):
            found.setdefault(ref, set()).add(digest)
        return found
    finally:
        engine.dispose()


def test_sqlite_to_postgres_and_back_keeps_ids_counts_and_content_hashes(
    tmp_path: Path, pg_server: PostgresServer, make_record
):
    first, back = tmp_path / "first.db", tmp_path / "back.db"
    make_archive(first, make_record)
    pg = pg_server.empty()
    there = runner.invoke(app, ["db", "copy", "--from", str(first), "--to", pg, "--batch", "50"])
    assert there.exit_code == 0, there.output
    assert "verified" in there.stdout
    again = runner.invoke(app, ["db", "copy", "--from", pg, "--to", str(back), "--batch", "7"])
    assert again.exit_code == 0, again.output

    source = table_rows(resolve_url(str(first)))
    assert {name: len(r) for name, r in source.items()} == {
        "documents": 121, "snapshots": 2, "crawl_runs": 1, "versions": 161, "links": 1,
        "quarantine": 1, "alerts": 0,
    }  # fmt: skip
    assert table_rows(pg) == source
    assert table_rows(resolve_url(str(back))) == source
    assert hashes(resolve_url(str(back))) == hashes(pg) == hashes(resolve_url(str(first)))

    # The copies are archives like any other: ids go on from the copied ones.
    for url in (pg, resolve_url(str(back))):
        engine = open_archive(url)
        assert Store(engine).write([make_record("new")]).new_documents == 1
        assert rows(engine, "SELECT max(id) FROM documents") == [(122,)]
        engine.dispose()


def test_snapshots_are_copied_as_the_bytes_they_are_zlib_and_zstd(
    tmp_path: Path, pg_server: PostgresServer, make_record
):
    first, back = tmp_path / "first.db", tmp_path / "back.db"
    make_archive(first, make_record)
    with sqlite3.connect(first) as conn:  # the first snapshot as zlib wrote it before zstd
        [(body,)] = conn.execute("SELECT body FROM snapshots WHERE id = 1").fetchall()
        conn.execute(
            "UPDATE snapshots SET body = ? WHERE id = 1", (zlib.compress(snapshot_body(body)),)
        )
    pg = pg_server.empty()
    copy_archive(resolve_url(str(first)), pg)
    copy_archive(pg, resolve_url(str(back)))
    source = table_rows(resolve_url(str(first)))["snapshots"]
    assert [row.body[:1] for row in source] == [b"\x78", b"\x28"]
    assert table_rows(pg)["snapshots"] == source
    assert table_rows(resolve_url(str(back)))["snapshots"] == source
    engine = open_archive(pg, readonly=True)
    try:
        decoded = [
            snapshot_body(b) for (b,) in rows(engine, "SELECT body FROM snapshots ORDER BY id")
        ]
    finally:
        engine.dispose()
    assert decoded == [b"<html>raw</html>", b"<html>bad</html>"]


def test_interrupted_copy_continues_where_it_stopped_without_duplicates(
    tmp_path: Path, pg_server: PostgresServer, make_record
):
    source = tmp_path / "a.db"
    make_archive(source, make_record)
    pg = pg_server.empty()

    def stop_in_versions(table: str, done: int, total: int) -> None:
        if table == "versions" and done >= 40:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        copy_archive(resolve_url(str(source)), pg, batch=20, progress=stop_in_versions)
    half = table_rows(pg)
    assert len(half["documents"]) == 121
    assert len(half["versions"]) == 40
    assert half["links"] == []

    result = runner.invoke(app, ["db", "copy", "--from", str(source), "--to", pg, "--batch", "20"])
    assert result.exit_code == 0, result.output
    assert "were there from an earlier run" in result.stdout
    assert table_rows(pg) == table_rows(resolve_url(str(source)))


def test_copy_into_another_archive_is_refused_and_writes_nothing(
    tmp_path: Path, pg_server: PostgresServer, make_record
):
    source = tmp_path / "a.db"
    make_archive(source, make_record)
    other = pg_server.archive()
    engine = open_archive(other)
    Store(engine).write([make_record("elsewhere", title="Another archive")])
    engine.dispose()
    before = table_rows(other)
    result = runner.invoke(app, ["db", "copy", "--from", str(source), "--to", other])
    assert result.exit_code == Exit.REFUSED
    assert "is not empty and is not a copy of this source" in result.stderr
    assert table_rows(other) == before

    itself = runner.invoke(app, ["db", "copy", "--from", str(source), "--to", str(source)])
    assert itself.exit_code == Exit.REFUSED
    assert "same archive" in itself.stderr
