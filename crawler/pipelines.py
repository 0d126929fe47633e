"""Hands parsed records to the archive store in batches, one transaction each."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from scrapy.exceptions import NotConfigured

from archive.db import ArchiveError
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


class ArchivePipeline:
    """Buffers records and writes them with `archive.store.Store` every ANNALS_BATCH_SIZE
    items, ANNALS_FLUSH_SECONDS after the first record of a batch arrived (`annals watch`
    commits within a second), and when the spider closes. A batch that cannot be written
    stops the crawl with reason "archive_error": what was committed before stays."""

    def __init__(self, crawler: Crawler, batch_size: int, flush_seconds: float) -> None:
        self.crawler = crawler
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self._timer: asyncio.TimerHandle | None = None
        self.buffer: list[Record | Quarantined | Removed] = []
        self.run: RunContext | None = None
        self.failed = False
        self._closing: asyncio.Future[None] | None = None

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
        if not isinstance(item, Record | Quarantined | Removed) or self.failed:
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
            self.flush()
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
        self._timer = loop.call_later(self.flush_seconds, self.flush)

    def close_spider(self) -> None:
        self.flush()

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self.buffer or self.run is None or self.failed:
            return
        batch, self.buffer = self.buffer, []
        try:
            result = self.run.store.write(batch, run_id=self.run.run_id)
        except Exception as exc:  # a full disk, a lock held too long, a bug: stop cleanly
            self._stop(exc, f"could not write {len(batch)} records to the archive")
            return
        self._count(result)
        self.crawler.signals.send_catch_log(batch_written, batch=batch, result=result)

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
