"""Hands parsed records to the archive store in batches, one transaction each."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scrapy.exceptions import NotConfigured

from archive.db import ArchiveError
from archive.normalize import utcnow
from archive.records import Quarantined, Record, Removed
from archive.store import BatchResult
from archive.validate import problem
from crawler import settings as defaults
from crawler.context import RunContext, run_context

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

# Sent after every batch the pipeline committed, with `batch` (the records, quarantine
# rows and removals written) and `result` (archive.store.BatchResult): the one place a
# component that acts on what was archived (crawler.alerts) connects to, with
# `crawler.signals.connect(handler, signal=batch_written)`. A handler's error is logged by
# Scrapy (send_catch_log) and never stops archiving.
batch_written = object()


Batch = list[Record | Quarantined | Removed]


@dataclass(frozen=True, slots=True, eq=False)
class _Write:
    """A batch handed to the writer thread, until the reactor has counted it."""

    batch: Batch
    future: Future[BatchResult]


class ArchivePipeline:
    """Buffers records and writes them with `archive.store.Store` every ANNALS_BATCH_SIZE
    items, ANNALS_FLUSH_SECONDS after the first record of a batch arrived (`annals watch`
    commits within a second), and when the spider closes. A batch that cannot be written
    stops the crawl with reason "archive_error": what was committed before stays.

    During a crawl a full batch (or one whose timer ran out) is written by one writer
    thread while the reactor goes on downloading: SQLite and PostgreSQL do their work
    without the GIL, and a batch used to hold every download for as long as it took.
    One batch at a time, in order: the next full batch waits for the one before, so
    nothing piles up if the writer falls behind. Its counters and `batch_written` follow
    on the reactor thread once it committed. `flush()` from outside (a watch's round, a
    push, a forced stop, the spider's close) writes at once and returns when committed;
    so does everything without a running loop (a test feeding items by hand)."""

    def __init__(self, crawler: Crawler, batch_size: int, flush_seconds: float) -> None:
        self.crawler = crawler
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self._timer: asyncio.TimerHandle | None = None
        self.buffer: list[Record | Quarantined | Removed] = []
        self.run: RunContext | None = None
        self.failed = False
        self._closing: asyncio.Future[None] | None = None
        self._writer: ThreadPoolExecutor | None = None
        self._pending: _Write | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ArchivePipeline:
        defaults.check(crawler.settings)
        size = crawler.settings.getint("ANNALS_BATCH_SIZE")
        if size <= 0:
            raise NotConfigured("ANNALS_BATCH_SIZE is 0: records are not archived")
        settings = crawler.settings
        watching = settings.getfloat("ANNALS_WATCH_INTERVAL") > 0
        flush = "ANNALS_WATCH_FLUSH_SECONDS" if watching else "ANNALS_FLUSH_SECONDS"
        return cls(crawler, size, settings.getfloat(flush))

    def open_spider(self) -> None:
        self.run = run_context(self.crawler)
        assert self.crawler.spider is not None
        try:
            self.run.start(self.crawler.spider.name)
        except ArchiveError as exc:
            self._stop(exc, "could not start the run in the archive")

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, Record | Quarantined | Removed):
            return item
        if self.failed:  # the archive failed: counted, as the batch that failed was
            self._unarchived(1)
            return item
        if isinstance(item, Record) and (reason := problem(item)) is not None:
            logger.warning("refused a record from %s: %s (kept in quarantine)", item.url, reason)
            stats = self.crawler.stats
            assert stats is not None
            stats.inc_value("annals/invalid_records")
            spider = self.crawler.spider.name if self.crawler.spider else "?"
            raw = item.raw
            item = Quarantined(raw.url if raw else item.url, spider, reason, raw, item.seen_at)
        self.buffer.append(item)
        if len(self.buffer) >= self.batch_size:
            self._write_behind()
        elif self._timer is None:
            self._flush_later()
        return item

    def _flush_later(self) -> None:
        # Scrapy runs on asyncio's loop (AsyncCrawlerProcess): a timer there, not a thread.
        # Without a running loop (a test feeding items by hand) the batch waits for its size.
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._timer = loop.call_later(self.flush_seconds, self._write_behind)

    def close_spider(self) -> None:
        # Written before returning, not awaited: Scrapy starts every pipeline's close at
        # once, and the notifier's (crawler.alerts) must find the last batch committed.
        self.flush()
        if self._writer is not None:
            self._writer.shutdown()
            self._writer = None

    def flush(self) -> None:
        """Write the buffered records now, after the batch the writer thread may hold;
        returns once they are committed (or the crawl is stopping)."""
        self._write_now(self._take())

    def _take(self) -> Batch | None:
        """The buffer as a batch to write, None when there is nothing (or nowhere) to."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self.buffer or self.run is None or self.failed:
            return None
        batch, self.buffer = self.buffer, []
        return batch

    def _write_now(self, batch: Batch | None) -> None:
        self._settle()
        if batch is None or self.failed:
            return
        assert self.run is not None
        try:
            result = self.run.store.write(batch, run_id=self.run.run_id)
        except Exception as exc:
            self._failed(exc, batch)
            return
        self._written(batch, result)

    def _write_behind(self) -> None:
        """Hand the buffer to the writer thread, once the batch before is written."""
        batch = self._take()
        if batch is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None:
            self._write_now(batch)
            return
        assert self.run is not None
        store = self.run.store
        # Normalizing and the ticker rules are Python: here, while the batch before is
        # written (in the writer thread they would only take turns with the reactor).
        now = utcnow()
        try:
            prepared = store.prepare(batch, now)
        except Exception:  # the read failed: the write says whether the archive can be used
            self._write_now(batch)
            return
        self._settle()  # back-pressure: one batch in the writer at a time
        if self.failed:
            return
        # The store's engine may be used from another thread: SQLAlchemy's pool for a
        # SQLite file opens its connections with check_same_thread off, and a pooled
        # connection is used by one thread at a time.
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="archive-writer")
        future = self._writer.submit(store.write, prepared, run_id=self.run.run_id, now=now)
        write = self._pending = _Write(batch, future)

        def done(_: Future[BatchResult]) -> None:  # on the writer thread
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody to tell
                loop.call_soon_threadsafe(self._settle, write)

        future.add_done_callback(done)

    def _settle(self, write: _Write | None = None) -> None:
        """On the reactor thread: wait for the batch in the writer thread (or, given
        `write`, only if it is still the one pending), then count it or stop the crawl."""
        pending = self._pending
        if pending is None or (write is not None and write is not pending):
            return
        self._pending = None
        try:
            result = pending.future.result()
        except Exception as exc:
            self._failed(exc, pending.batch)
            return
        self._written(pending.batch, result)

    def _written(self, batch: Batch, result: BatchResult) -> None:
        self._count(result)
        self.crawler.signals.send_catch_log(batch_written, batch=batch, result=result)

    def _failed(self, exc: Exception, batch: Batch) -> None:
        """A full disk, a lock held too long, a bug: stop cleanly. What came after the
        failed batch is not archived either; all of it is counted (`unarchived`), and the
        run fails, so the next one walks the listings back to it."""
        self._unarchived(len(batch) + len(self.buffer))
        self.buffer = []
        self._stop(exc, f"could not write {len(batch)} records to the archive")

    def _unarchived(self, count: int) -> None:
        stats = self.crawler.stats
        assert stats is not None
        stats.inc_value("annals/unarchived", count)

    def _stop(self, exc: Exception, what: str) -> None:
        """Stop the crawl: nothing more can be archived. What was committed stays."""
        self.failed = True
        stats = self.crawler.stats
        assert stats is not None
        stats.set_value("annals/archive_error", f"{type(exc).__name__}: {exc}")
        logger.error(
            "%s (%s: %s); stopping the crawl. Everything written before is kept.",
            what,
            type(exc).__name__,
            exc,
            extra={"spider": self.crawler.spider},
        )
        engine = self.crawler.engine
        if engine is not None:
            self._closing = asyncio.ensure_future(engine.close_spider_async(reason="archive_error"))

    def _count(self, result: BatchResult) -> None:
        stats = self.crawler.stats
        assert stats is not None
        for name, value in vars(result).items():
            if value:
                stats.inc_value(f"annals/{name}", value)
