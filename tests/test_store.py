"""The store: dedup, versioning, batches as transactions, snapshots, quarantine, removal."""

from __future__ import annotations

import multiprocessing
import random
import sqlite3
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import zstandard

from archive import normalize
from archive.db import make_engine, resolve_url
from archive.records import Identity, Link, Quarantined, RawResponse, Removed
from archive.store import ZSTD_MAGIC, ArchiveBusyError, Store, snapshot_body
from tests.helpers import json_at, rows


def test_unchanged_content_saved_twice_gives_one_version(store: Store, engine, make_record):
    first = store.write([make_record()])
    second = store.write([make_record()])
    assert (first.new_documents, first.new_versions) == (1, 1)
    assert (second.new_versions, second.unchanged) == (0, 1)
    assert rows(engine, "SELECT count(*) FROM versions")[0][0] == 1


def test_unchanged_content_moves_last_seen_at_only(store: Store, engine, make_record):
    t1 = datetime(2026, 6, 1, tzinfo=UTC)
    store.write([make_record(seen_at=t1)])
    store.write([make_record(seen_at=t1 + timedelta(hours=1))])
    doc = rows(engine, "SELECT first_seen_at, last_seen_at, current_version FROM documents")[0]
    assert doc == ("2026-06-01T00:00:00.000Z", "2026-06-01T01:00:00.000Z", 1)


def test_one_character_body_edit_gives_exactly_two_versions(store: Store, engine, make_record):
    store.write([make_record(body_html="<p>Trading starts at 10:00.</p>")])
    result = store.write([make_record(body_html="<p>Trading starts at 11:00.</p>")])
    assert result.new_versions == 1
    got = rows(engine, "SELECT version, body_text FROM versions ORDER BY version")
    assert got == [(1, "Trading starts at 10:00."), (2, "Trading starts at 11:00.")]
    assert rows(engine, "SELECT current_version FROM documents")[0][0] == 2


def test_change_only_in_views_or_likes_keeps_one_version(store: Store, engine, make_record):
    store.write([make_record(extra={"views": 10, "likes": 1})])
    store.write([make_record(extra={"views": 99, "likes": 7})])
    assert rows(engine, "SELECT count(*) FROM versions")[0][0] == 1
    # The counters are kept up to date on the current version.
    extra = rows(engine, f"SELECT {json_at(engine, 'extra', 'views')} FROM versions")[0][0]
    assert extra == 99


def test_markup_only_change_keeps_one_version(store: Store, engine, make_record):
    store.write([make_record(body_html='<p class="a">Hello <b>world</b></p>')])
    store.write([make_record(body_html='<div class="b"><p>Hello world</p></div>')])
    assert rows(engine, "SELECT count(*) FROM versions")[0][0] == 1


def test_same_record_in_two_batches_is_one_document(store: Store, engine, make_record):
    store.write([make_record("1"), make_record("2")])
    store.write([make_record("2"), make_record("3")])
    assert rows(engine, "SELECT count(*) FROM documents")[0][0] == 3
    assert rows(engine, "SELECT count(*) FROM versions")[0][0] == 3


def test_same_identity_twice_in_one_batch_is_one_document(store: Store, engine, make_record):
    result = store.write([make_record(), make_record(), make_record(title="Edited title")])
    assert (result.new_documents, result.new_versions, result.unchanged) == (1, 2, 1)
    assert rows(engine, "SELECT current_version FROM documents")[0][0] == 2


def test_each_language_is_its_own_document(store: Store, engine, make_record):
    store.write([make_record(language="en"), make_record(language="zh", title="Gate 将上线 VLR")])
    assert rows(engine, "SELECT language FROM documents ORDER BY language") == [("en",), ("zh",)]


def test_revert_points_back_at_the_earlier_version(store: Store, engine, make_record):
    store.write([make_record(body_html="<p>A</p>")])
    store.write([make_record(body_html="<p>B</p>")])
    result = store.write([make_record(body_html="<p>A</p>")])
    assert result.reverted == 1
    assert rows(engine, "SELECT count(*) FROM versions")[0][0] == 2
    assert rows(engine, "SELECT current_version FROM documents")[0][0] == 1
    reverted = rows(
        engine,
        f"SELECT json_array_length({json_at(engine, 'extra', 'reverted_at')}) FROM versions "
        "WHERE version = 1",
    )
    assert reverted[0][0] == 1


def test_exception_mid_batch_writes_none_of_the_batch(store: Store, engine, make_record):
    store.write([make_record("1")])
    # The second record's extra cannot be stored: the failure comes after the
    # batch's documents were inserted, inside the same transaction.
    bad = make_record("3", extra={"unstorable": object()})
    with pytest.raises(TypeError):
        store.write([make_record("2"), make_record("1", title="Edited"), bad])
    assert rows(engine, "SELECT external_id FROM documents ORDER BY external_id") == [("1",)]
    assert rows(engine, "SELECT count(*) FROM versions")[0][0] == 1
    assert rows(engine, "SELECT current_version FROM documents")[0][0] == 1


@pytest.mark.sqlite_only  # PostgreSQL: timestamptz (tests/test_postgres.py)
def test_times_are_stored_as_sortable_utc_iso_text(store: Store, db_path: Path, make_record):
    from dateutil import tz

    plus8 = tz.tzoffset(None, 8 * 3600)
    store.write(
        [
            make_record("1", published_at=datetime(2026, 9, 29, 10, 53, tzinfo=plus8)),
            make_record("2", published_at=datetime(2026, 9, 29, 2, 54, 0, 123000, tzinfo=UTC)),
        ]
    )
    with sqlite3.connect(db_path) as conn:
        got = conn.execute(
            "SELECT external_id, published_at FROM documents ORDER BY published_at"
        ).fetchall()
        after = conn.execute(
            "SELECT count(*) FROM documents WHERE published_at >= '2026-09-29T02:54'"
        ).fetchone()
    assert got == [("1", "2026-09-29T02:53:00.000Z"), ("2", "2026-09-29T02:54:00.123Z")]
    assert after == (1,)


def test_links_are_stored_with_their_targets(store: Store, engine, make_record):
    link = Link("https://www.gate.com/announcements/article/50520", "gate", "announcement", "50520")
    store.write([make_record(kind="post", external_id="21716532", links=[link, link])])
    assert rows(
        engine, "SELECT url, target_source, target_kind, target_external_id FROM links"
    ) == [(link.url, "gate", "announcement", "50520")]


def test_raw_bytes_are_kept_once_and_compressed(store: Store, engine, make_record):
    body = b"<html>" + b"x" * 5000 + b"</html>"
    raw = RawResponse("https://www.gate.com/a/1", 200, "text/html", body)
    store.write([make_record("1", raw=raw), make_record("2", raw=raw)])
    got = rows(engine, "SELECT body FROM snapshots")
    assert len(got) == 1
    assert got[0][0].startswith(ZSTD_MAGIC)
    assert snapshot_body(got[0][0]) == body
    assert len(got[0][0]) < len(body) / 10
    linked = rows(engine, "SELECT count(*) FROM versions WHERE snapshot_id IS NOT NULL")
    assert linked[0][0] == 2


def test_zlib_snapshots_of_older_archives_are_read_and_kept(store: Store, engine, make_record):
    body = b"<html>" + b"older " * 900 + b"</html>"
    raw = RawResponse("https://www.gate.com/a/1", 200, "text/html", body)
    store.write([make_record("1", raw=raw)])
    with engine.begin() as conn:  # as zlib wrote it before snapshots were zstd
        conn.execute(sa.text("UPDATE snapshots SET body = :b"), {"b": zlib.compress(body, 6)})
    [(stored,)] = rows(engine, "SELECT body FROM snapshots")
    assert stored[:1] == b"\x78"
    assert snapshot_body(stored) == body
    # The same bytes again add no snapshot and leave the old one as it was.
    result = store.write([make_record("2", raw=raw)])
    assert (result.new_documents, result.snapshots) == (1, 0)
    assert rows(engine, "SELECT body FROM snapshots") == [(stored,)]
    other = RawResponse("https://www.gate.com/a/3", 200, "text/html", body + b" ")
    store.write([make_record("3", raw=other)])
    bodies = [b for (b,) in rows(engine, "SELECT body FROM snapshots ORDER BY id")]
    assert [b[:4] == ZSTD_MAGIC for b in bodies] == [False, True]
    assert [snapshot_body(b) for b in bodies] == [body, other.body]


def test_snapshot_body_reads_both_formats():
    fuzz = random.Random(15)
    bodies = [b"", b"x", ZSTD_MAGIC * 3, b"\x78" * 40, bytes(range(256)) * 300]
    bodies += [fuzz.randbytes(fuzz.randrange(3000)) for _ in range(200)]
    for body in bodies:
        assert snapshot_body(zstandard.ZstdCompressor(level=3).compress(body)) == body
        assert snapshot_body(zlib.compress(body, 6)) == body


def test_parse_failure_is_quarantined_with_its_snapshot(store: Store, engine):
    raw = RawResponse("https://www.gate.com/announcements/article/9", 200, "text/html", b"<html/>")
    result = store.write([Quarantined(raw.url, "gate_announcements", "no title", raw)])
    assert result.quarantined == 1
    got = rows(
        engine, "SELECT q.error, s.url FROM quarantine q JOIN snapshots s ON s.id = q.snapshot_id"
    )
    assert got == [("no title", raw.url)]


def test_every_version_and_quarantine_row_points_at_the_snapshot_of_its_bytes(
    store: Store, engine, make_record
):
    page, bad = b"<html>page</html>", b"<html>bad</html>"
    first = RawResponse("https://www.gate.com/a/1", 200, "text/html", page)
    again = RawResponse("https://www.gate.com/a/2", 200, "text/html", page)  # other object
    failed = RawResponse("https://www.gate.com/a/3", 500, None, bad)
    result = store.write([
        make_record("1", raw=first),
        make_record("2", raw=again),
        Quarantined(failed.url, "gate_announcements", "no title", failed),
        Quarantined(first.url, "gate_announcements", "no title", first),
        make_record("3", language="zh", raw=failed),
    ])  # fmt: skip
    assert (result.new_documents, result.snapshots, result.quarantined) == (3, 2, 2)
    # Bytes met several times in a batch are stored once, described by the last response
    # that brought them (here the quarantined one).
    assert rows(engine, "SELECT id, url FROM snapshots ORDER BY id") == [
        (1, first.url),
        (2, failed.url),
    ]
    versions = "SELECT d.external_id, v.snapshot_id FROM versions v JOIN documents d"
    versions += " ON d.id = v.document_id ORDER BY d.external_id"
    assert rows(engine, versions) == [("1", 1), ("2", 1), ("3", 2)]
    assert rows(engine, "SELECT snapshot_id FROM quarantine ORDER BY id") == [(2,), (1,)]
    # Known bytes in a later batch point at the stored snapshot; documents of both
    # languages are found again.
    later = store.write([
        make_record("1", title="Edited", raw=failed),
        make_record("3", language="zh", raw=failed),
    ])  # fmt: skip
    assert (later.new_documents, later.new_versions, later.unchanged, later.snapshots) == (
        0,
        1,
        1,
        0,
    )
    assert rows(engine, "SELECT max(snapshot_id) FROM versions") == [(2,)]


def test_removed_document_keeps_its_rows_and_comes_back(store: Store, engine, make_record):
    record = make_record()
    store.write([record])
    result = store.write([Removed(record.identity, record.url)])
    assert result.removed == 1
    assert rows(engine, "SELECT removed_at IS NOT NULL FROM documents")[0][0] == 1
    assert rows(engine, "SELECT count(*) FROM versions")[0][0] == 1
    store.write([make_record()])
    assert rows(engine, "SELECT removed_at FROM documents")[0][0] is None


def test_removal_of_an_unknown_document_changes_nothing(store: Store, engine):
    result = store.write([Removed(Identity("gate", "announcement", "404", "en"), "u")])
    assert result.removed == 0
    assert rows(engine, "SELECT count(*) FROM documents")[0][0] == 0


def test_symbols_and_event_type_are_derived_when_not_given(store: Store, engine, make_record):
    store.write(
        [make_record(title="Gate Will Delist NXRA, QUIL and 19 Other Tokens", body_html="<p>x</p>")]
    )
    got = rows(engine, "SELECT event_type, symbols FROM versions")[0]
    assert got == ("delisting", '["NXRA","QUIL","VLR"]')  # the title's, then Gate's tag


def test_unchanged_content_is_not_scanned_for_symbols_again(
    store: Store, engine, make_record, monkeypatch
):
    scanned: list[str | None] = []

    def derive(source, title, *args):
        scanned.append(title)
        return real(source, title, *args)

    real = normalize.derive_symbols
    monkeypatch.setattr(normalize, "derive_symbols", derive)
    store.write([make_record(title="Gate Will List Velora (VLR)")])
    store.write([make_record(title="Gate Will List Velora (VLR)", extra={"views": 5})])
    store.write([make_record(title="Gate Will List Velora (VLR) for Spot Trading")])
    assert scanned == [
        "Gate Will List Velora (VLR)",
        "Gate Will List Velora (VLR) for Spot Trading",
    ]
    assert rows(engine, "SELECT version, symbols FROM versions ORDER BY version") == [
        (1, '["VLR"]'),
        (2, '["VLR"]'),
    ]


def test_crawl_runs_record_status_and_counters(store: Store, engine):
    run_id = store.start_run("gate_announcements")
    store.finish_run(run_id, "finished", {"requests": 3})
    got = rows(engine, "SELECT spider, status, counters, finished_at IS NOT NULL FROM crawl_runs")
    assert got == [("gate_announcements", "finished", '{"requests":3}', 1)]


@pytest.mark.sqlite_only  # PostgreSQL's write lock: tests/test_postgres.py
def test_locked_database_is_retried_then_reported(db_path: Path, engine, make_record):
    quick = Store(make_engine(resolve_url(str(db_path)), busy_timeout_ms=50), busy_attempts=2)
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(ArchiveBusyError, match="locked by another writer"):
            quick.write([make_record()])
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert quick.write([make_record()]).new_documents == 1


def _write_in_process(url: str, ids: list[str], barrier) -> None:  # pragma: no cover - child
    from archive.db import open_archive
    from archive.records import Record

    store = Store(open_archive(url))
    records = [
        Record(
            source="gate",
            kind="announcement",
            external_id=i,
            language="en",
            url=f"https://www.gate.com/announcements/article/{i}",
            title=f"Announcement {i}",
            body_text=f"Body {i}",
        )
        for i in ids
    ]
    barrier.wait()
    for start in range(0, len(records), 7):
        store.write(records[start : start + 7])


def test_two_processes_writing_at_once_give_one_document_each(database: str, engine):
    url = database
    ids = [str(i) for i in range(200)]
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [
        ctx.Process(target=_write_in_process, args=(url, ids, barrier)),
        ctx.Process(target=_write_in_process, args=(url, list(reversed(ids)), barrier)),
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    assert rows(engine, "SELECT count(*), count(DISTINCT external_id) FROM documents")[0] == (
        200,
        200,
    )
    assert rows(engine, "SELECT count(*) FROM versions")[0][0] == 200


def test_integrity_after_many_batches(store: Store, engine, make_record):
    for n in range(5):
        store.write([make_record(str(i), title=f"Title {i} v{n % 2}") for i in range(50)])
    orphans = rows(
        engine,
        "SELECT count(*) FROM versions v LEFT JOIN documents d ON d.id = v.document_id "
        "WHERE d.id IS NULL",
    )[0][0]
    dangling = rows(
        engine,
        "SELECT count(*) FROM documents d LEFT JOIN versions v "
        "ON v.document_id = d.id AND v.version = d.current_version WHERE v.id IS NULL",
    )[0][0]
    assert (orphans, dangling) == (0, 0)
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            assert conn.execute(sa.text("PRAGMA integrity_check")).scalar() == "ok"


def test_a_nul_character_in_the_text_is_dropped_not_a_failed_write(
    store: Store, engine, make_record
):
    # PostgreSQL's text cannot hold NUL (a text brief cut out of a binary field, say):
    # it is never text, so it is dropped the same way on both databases.
    record = make_record(
        title="Gate Will List Velora\x00 (VLR)",
        body_html=None,
        body_text="Deposits open at 10:00 (UTC).\x00\nTrading follows.",
        author="Gate\x00",
    )
    store.write([record])
    assert rows(engine, "SELECT title, body_text, author FROM versions") == [
        ("Gate Will List Velora (VLR)", "Deposits open at 10:00 (UTC).\nTrading follows.", "Gate")
    ]


def test_known_documents_carry_the_current_versions_category(store: Store, make_record):
    """What a navigator walking categories keeps an announcement in (crawler.spiders.api)."""
    store.write([make_record(category="New Spot Listings")])
    store.write([make_record(category="  Latest   News ", title="Gate Will List Velora (VLR)")])
    record = make_record()
    known = store.known([record.identity, make_record("99").identity])
    assert list(known) == [record.identity]
    assert (known[record.identity].category, known[record.identity].title) == (
        "Latest News",
        "Gate Will List Velora (VLR)",
    )
