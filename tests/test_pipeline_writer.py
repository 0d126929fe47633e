"""ArchivePipeline's writer thread: during a crawl a full batch is written off the reactor
thread, one batch at a time and in order; its counters and `batch_written` follow on the
reactor thread after the commit; a failed batch stops the archiving and keeps what was
committed; `flush()` and the spider's close return with everything committed; without a
running loop every batch is written at once on the caller's thread."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from archive.db import open_archive, resolve_url
from archive.normalize import Prepared
from archive.records import Identity, Quarantined, RawResponse, Record, Removed
from archive.store import BatchResult, Known, Store
from crawler.context import run_context
from crawler.pipelines import ArchivePipeline, batch_written
from crawler.spiders.gate import GateAnnouncementsSpider
from tests.helpers import RecordFactory, annals_crawler, rows

BATCH = 4


class Watched:
    """Wraps the store's write: which thread ran each batch, when, how many at once,
    and what every `batch_written` saw."""

    def __init__(self, pipeline: ArchivePipeline, *, delay: float = 0.0, fail_at: int = 0):
        assert pipeline.run is not None
        self.store = pipeline.run.store
        self.write = self.store.write
        self.delay = delay
        self.fail_at = fail_at  # the batch number (from 1) that raises, 0 for none
        self.threads: list[str] = []
        self.spans: list[tuple[float, float]] = []
        self.running = 0
        self.most = 0
        self.signals: list[tuple[str, list[str], int, int]] = []
        self.lock = threading.Lock()
        self.store.write = self._write  # type: ignore[method-assign]
        pipeline.crawler.signals.connect(self._signalled, signal=batch_written)

    def _write(self, items: Any, **kwargs: Any) -> BatchResult:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
            self.threads.append(threading.current_thread().name)
            number = len(self.threads)
        start = time.monotonic()
        try:
            time.sleep(self.delay)
            if number == self.fail_at:
                raise OSError("database or disk is full")
            return self.write(items, **kwargs)
        finally:
            self.spans.append((start, time.monotonic()))
            with self.lock:
                self.running -= 1

    def _signalled(self, batch: list[Any], result: BatchResult) -> None:
        # What the archive holds when the signal comes: the batch is committed.
        with self.store.engine.connect() as conn:
            stored = conn.execute(sa.text("SELECT count(*) FROM documents")).scalar_one()
        ids = [item.external_id for item in batch]
        self.signals.append((threading.current_thread().name, ids, stored, result.new_documents))


def pipeline_on(database: str, **settings: Any) -> ArchivePipeline:
    crawler = annals_crawler(
        GateAnnouncementsSpider, ANNALS_DATABASE_URL=database, ANNALS_BATCH_SIZE=BATCH, **settings
    )
    crawler.spider = GateAnnouncementsSpider.from_crawler(crawler)
    pipeline = ArchivePipeline.from_crawler(crawler)
    pipeline.open_spider()
    return pipeline


def records(make_record: RecordFactory, count: int) -> list[Record]:
    return [make_record(str(50000 + i)) for i in range(count)]


def stored_ids(pipeline: ArchivePipeline) -> list[str]:
    engine = open_archive(run_context(pipeline.crawler).url, readonly=True)
    try:
        return [r[0] for r in rows(engine, "SELECT external_id FROM documents ORDER BY id")]
    finally:
        engine.dispose()


def stat(pipeline: ArchivePipeline, name: str) -> Any:
    assert pipeline.crawler.stats is not None
    return pipeline.crawler.stats.get_value(name)


def close(pipeline: ArchivePipeline) -> None:
    pipeline.close_spider()
    run_context(pipeline.crawler).close()


def test_without_a_running_loop_each_batch_is_written_at_once(
    database: str, make_record: RecordFactory
):
    pipeline = pipeline_on(database)
    watched = Watched(pipeline)
    items = records(make_record, BATCH + 1)
    for item in items[:BATCH]:
        pipeline.process_item(item)
    # Committed before process_item returned, on this thread, signalled after the commit.
    main = threading.current_thread().name
    assert stored_ids(pipeline) == [i.external_id for i in items[:BATCH]]
    assert watched.threads == [main]
    assert watched.signals == [(main, [i.external_id for i in items[:BATCH]], BATCH, BATCH)]
    pipeline.process_item(items[BATCH])
    assert len(stored_ids(pipeline)) == BATCH  # the rest waits for its size, or the close
    close(pipeline)
    assert stored_ids(pipeline) == [i.external_id for i in items]
    assert stat(pipeline, "annals/new_documents") == BATCH + 1


def test_in_a_crawl_the_writer_thread_writes_the_batches_in_order(
    database: str, make_record: RecordFactory
):
    pipeline = pipeline_on(database)
    watched = Watched(pipeline, delay=0.05)
    items = records(make_record, 3 * BATCH + 2)
    handed: list[float] = []

    async def crawl() -> None:
        for item in items:
            pipeline.process_item(item)
            handed.append(time.monotonic())
        await asyncio.sleep(0.01)

    asyncio.run(crawl())
    close(pipeline)
    main = threading.current_thread().name
    # The three full batches in the writer thread, one at a time; the rest at the close.
    assert watched.threads[:3] == ["archive-writer_0"] * 3
    assert watched.threads[3] == main
    assert watched.most == 1
    assert all(
        end <= start for (_, end), (start, _) in zip(watched.spans, watched.spans[1:], strict=False)
    )
    # The loop was not held for the first batch's write: the next item came before it ended.
    assert handed[BATCH] < watched.spans[0][1]
    # Each batch signalled on the reactor thread, in order, after its commit.
    expected = [[i.external_id for i in items[n : n + BATCH]] for n in range(0, len(items), 4)]
    assert [s[1] for s in watched.signals] == expected
    assert {s[0] for s in watched.signals} == {main}
    assert [s[2] for s in watched.signals] == [4, 8, 12, 14]
    assert stored_ids(pipeline) == [i.external_id for i in items]
    assert stat(pipeline, "annals/new_documents") == len(items)
    assert stat(pipeline, "annals/new_versions") == len(items)
    assert pipeline._writer is None  # shut down with the spider


def test_the_next_full_batch_waits_for_the_one_in_the_writer(
    database: str, make_record: RecordFactory
):
    pipeline = pipeline_on(database)
    watched = Watched(pipeline, delay=0.3)
    items = records(make_record, 2 * BATCH)
    waited: list[float] = []

    async def crawl() -> None:
        for item in items:
            before = time.monotonic()
            pipeline.process_item(item)
            waited.append(time.monotonic() - before)
        # The second batch is in the writer now, the first counted on this thread.
        assert stat(pipeline, "annals/new_documents") == BATCH
        while pipeline._pending is not None:
            await asyncio.sleep(0.01)

    asyncio.run(crawl())
    # The first full batch went at once; the second waited out the first's write.
    assert waited[BATCH - 1] < 0.2
    assert waited[2 * BATCH - 1] >= 0.2
    assert watched.most == 1
    assert stat(pipeline, "annals/new_documents") == 2 * BATCH  # counted by the loop
    assert len(watched.signals) == 2
    close(pipeline)


def test_a_batch_failing_in_the_writer_stops_archiving_and_keeps_the_rest(
    database: str, make_record: RecordFactory
):
    pipeline = pipeline_on(database)
    watched = Watched(pipeline, fail_at=2)
    items = records(make_record, 4 * BATCH)

    async def crawl() -> None:
        for item in items[: 2 * BATCH]:
            pipeline.process_item(item)
        while pipeline._pending is not None:
            await asyncio.sleep(0.01)
        assert pipeline.failed
        for item in items[2 * BATCH :]:
            pipeline.process_item(item)

    asyncio.run(crawl())
    close(pipeline)
    assert len(watched.threads) == 2  # nothing tried after the failed batch
    assert stored_ids(pipeline) == [i.external_id for i in items[:BATCH]]
    assert stat(pipeline, "annals/archive_error") == "OSError: database or disk is full"
    assert stat(pipeline, "annals/new_documents") == BATCH
    # The failed batch and all that came after it: counted, none of it in silence.
    assert stat(pipeline, "annals/unarchived") == 3 * BATCH
    assert len(watched.signals) == 1


def test_flush_waits_for_the_writer_then_writes_the_buffer(
    database: str, make_record: RecordFactory
):
    """A watch's round, a push and a forced stop call flush(): it returns committed."""
    pipeline = pipeline_on(database)
    watched = Watched(pipeline, delay=0.2)
    items = records(make_record, BATCH + 2)

    async def crawl() -> None:
        for item in items:
            pipeline.process_item(item)
        assert pipeline._pending is not None
        pipeline.flush()
        assert pipeline._pending is None
        assert stored_ids(pipeline) == [i.external_id for i in items]
        assert stat(pipeline, "annals/new_documents") == len(items)
        await asyncio.sleep(0.05)  # the writer's own callback finds nothing left to do

    asyncio.run(crawl())
    assert [len(s[1]) for s in watched.signals] == [BATCH, 2]
    assert stat(pipeline, "annals/new_documents") == len(items)
    close(pipeline)


def test_the_flush_timer_hands_the_batch_to_the_writer(database: str, make_record: RecordFactory):
    pipeline = pipeline_on(database, ANNALS_FLUSH_SECONDS=0.05)
    watched = Watched(pipeline)
    items = records(make_record, 2)

    async def crawl() -> None:
        for item in items:
            pipeline.process_item(item)
        for _ in range(200):
            if watched.signals:
                break
            await asyncio.sleep(0.01)

    asyncio.run(crawl())
    assert watched.threads == ["archive-writer_0"]
    assert [s[1] for s in watched.signals] == [[i.external_id for i in items]]
    close(pipeline)


def test_an_in_process_crawl_archives_through_the_writer(
    tmp_path: Path, gate_mirror: tuple[Any, str]
):
    """The recorded Gate pages crawled by Scrapy, three records a batch: every batch
    counted, the run's counters what the archive holds."""
    _, url = gate_mirror
    db = resolve_url(str(tmp_path / "annals.db"))
    fast = {"DOWNLOAD_DELAY": 0, "AUTOTHROTTLE_ENABLED": False, "ANNALS_BLOCK_BACKOFF": 0.05}
    crawler = annals_crawler(
        GateAnnouncementsSpider, ANNALS_DATABASE_URL=db, ANNALS_BATCH_SIZE=3, **fast
    )
    writers: list[str] = []

    def written(**_: Any) -> None:
        writers.append(threading.current_thread().name)

    crawler.signals.connect(written, signal=batch_written)  # held weakly: named, kept
    asyncio.run(crawler.crawl_async(base_url=url))
    counters = run_context(crawler).counters
    engine = open_archive(db, readonly=True)
    try:
        documents = rows(engine, "SELECT count(*) FROM documents")[0][0]
        versions = rows(engine, "SELECT count(*) FROM versions")[0][0]
    finally:
        engine.dispose()
    assert documents == counters["new_documents"] > 3
    assert versions == counters["new_versions"]
    assert len(writers) >= documents // 3
    assert set(writers) == {threading.current_thread().name}


def _batches(make_record: RecordFactory) -> list[list[Any]]:
    """Three rounds of one crawl's items: new documents, then edits, reverts, counter
    changes, a document twice in one batch, a quarantined page and a removal."""
    seen = datetime(2026, 6, 1, tzinfo=UTC)
    rounds: list[list[Any]] = []
    for n, body in enumerate(["<p>A BTC listing.</p>", "<p>ETH now.</p>", "<p>A BTC listing.</p>"]):
        items: list[Any] = []
        for i in range(7):
            at = seen + timedelta(hours=n, minutes=i)
            raw = RawResponse(f"https://www.gate.com/a/{i}", 200, "text/html", body.encode(), at)
            html = body if i % 2 else body + f"<p>{i}</p>"
            extra = {"views": n * 10 + i}
            items.append(make_record(str(i), body_html=html, extra=extra, seen_at=at, raw=raw))
        items.insert(3, make_record("2", extra={"views": 99}, seen_at=seen + timedelta(hours=n)))
        items.append(Quarantined(f"https://www.gate.com/q/{n}", "gate", "no title", None, seen))
        gone = Identity("gate", "announcement", "6", "en")
        items.append(Removed(gone, "https://www.gate.com/a/6", seen + timedelta(hours=n)))
        rounds.append(items)
    return rounds


def _tables(url: str) -> dict[str, list[Any]]:
    engine = open_archive(url, readonly=True)
    try:
        out = {
            table: rows(engine, f"SELECT * FROM {table} ORDER BY 1, 2")
            for table in ("documents", "versions", "snapshots", "links", "quarantine")
        }
        if engine.dialect.name == "sqlite":
            out["fts"] = rows(engine, "SELECT rowid, * FROM documents_fts ORDER BY rowid")
        return out
    finally:
        engine.dispose()


def test_the_writer_thread_stores_what_a_write_at_once_stores(
    database: str, make_record: RecordFactory, tmp_path: Path, request: pytest.FixtureRequest
):
    """The same items through the pipeline in a running loop (prepared on the reactor,
    written in the thread) and fed by hand (written at once): every row the same."""
    if database.startswith("sqlite"):
        urls = [database, resolve_url(str(tmp_path / "other.db"))]
    else:
        server = request.getfixturevalue("pg_server")
        urls = [database, server.archive()]
        request.addfinalizer(lambda: server.release(urls[1]))
    threaded = pipeline_on(urls[0])

    async def crawl() -> None:
        for items in _batches(make_record):
            for item in items:
                threaded.process_item(item)
        await asyncio.sleep(0)

    asyncio.run(crawl())
    close(threaded)
    at_once = pipeline_on(urls[1])
    for items in _batches(make_record):
        for item in items:
            at_once.process_item(item)
    close(at_once)
    assert _tables(urls[0]) == _tables(urls[1])
    assert stat(threaded, "annals/new_versions") == stat(at_once, "annals/new_versions") > 7


def test_prepare_then_write_stores_what_write_stores(
    engine: sa.Engine, make_record: RecordFactory, tmp_path: Path
):
    """Store.prepare (the ticker rules ahead, for new content only) changes nothing stored."""
    other = open_archive(resolve_url(str(tmp_path / "plain.db")), create=True)
    try:
        ahead, plain = Store(engine), Store(other)
        now = datetime(2026, 6, 2, tzinfo=UTC)
        for items in _batches(make_record):
            prepared = ahead.prepare(items, now)
            assert [type(p).__name__ for p in prepared].count("Prepared") == 8
            assert vars(ahead.write(prepared, now=now)) == vars(plain.write(items, now=now))
        for table in ("documents", "versions", "snapshots", "links", "quarantine"):
            sql = f"SELECT * FROM {table} ORDER BY 1, 2"
            assert rows(engine, sql) == rows(other, sql), table
    finally:
        other.dispose()


def test_prepare_derives_only_what_the_archive_does_not_hold(
    store: Store, make_record: RecordFactory
):
    now = datetime(2026, 6, 2, tzinfo=UTC)
    store.write([make_record("1"), make_record("2")])
    prepared = store.prepare(
        [make_record("1"), make_record("2", title="Edited"), make_record("3")], now
    )
    derived = ["symbols" in vars(p) for p in prepared if isinstance(p, Prepared)]
    assert derived == [False, True, True]


def test_known_gives_every_field_of_the_document_and_its_current_version(
    store: Store, make_record: RecordFactory
):
    """Each field from its own column (known() unpacks its rows by position)."""
    first = datetime(2026, 6, 1, tzinfo=UTC)
    store.write([make_record("7", seen_at=first, extra={"views": 3}, category="News")])
    store.write([make_record("7", seen_at=first + timedelta(hours=2), title="Other title")])
    store.write([Removed(Identity("gate", "announcement", "7", "en"), "u", first + timedelta(3))])
    known = store.known([make_record("7").identity])[make_record("7").identity]
    assert known == Known(
        published_at=datetime(2026, 5, 22, 6, 30, tzinfo=UTC),
        first_seen_at=first,
        last_seen_at=first + timedelta(hours=2),
        removed_at=first + timedelta(days=3),
        title="Other title",
        extra={"views": 10},
        category="New Spot Listings",
    )
