"""Records each crawl run in crawl_runs: when, how it ended, and its counters."""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any

from scrapy import signals

from archive.db import ArchiveError
from crawler.run import run_context

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

# Counters kept on the run, from Scrapy's stats and the pipeline's.
COUNTERS = {
    "requests": "downloader/request_count",
    "pages": "response_received_count",
    "new_documents": "annals/new_documents",
    "new_versions": "annals/new_versions",
    "unchanged": "annals/unchanged",
    "reverted": "annals/reverted",
    "removed": "annals/removed",
    "quarantined": "annals/quarantined",
    "blocked": "annals/blocked",
    "listing_only": "annals/listing_only",
    "not_found": "annals/not_found",
    "refused": "annals/refused",
    "offsite": "offsite/filtered",
    "ignored": "annals/ignored",
    "errors": "log_count/ERROR",
    "unsent": "annals/unsent",
}


def decide_status(reason: str, stats: dict[str, Any]) -> str:
    """How a run ended, from the close reason and the stats.

    interrupted: stopped from outside (Ctrl-C, SIGTERM). failed: an error, an archive
    write that failed, or a run that fetched nothing at all (a run that did nothing
    must not look like success). blocked: some request stayed blocked. partial: some
    pages did not parse (they are in quarantine) or were refused (an error envelope, the
    size limit, robots.txt, another host). finished: none of these.
    """
    if reason == "shutdown":
        return "interrupted"
    if reason != "finished" or stats.get("annals/archive_error"):
        return "failed"
    if stats.get("annals/blocked"):
        return "blocked"
    if stats.get("log_count/ERROR") or stats.get("spider_exceptions/count"):
        return "failed"
    if not stats.get("response_received_count"):
        return "failed"
    unread = ("annals/quarantined", "annals/refused", "annals/ignored", "offsite/filtered")
    if any(stats.get(key) for key in unread):
        return "partial"
    return "finished"


class RunRecorder:
    """One crawl_runs row per spider run: "running" when it opens, then its outcome."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.recorded = False

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RunRecorder:
        ext = cls(crawler)
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_opened(self, spider: Spider) -> None:
        # If the archive cannot take the run, the pipeline said so and stops the crawl.
        with contextlib.suppress(ArchiveError):
            run_context(self.crawler).start(spider.name)

    def spider_closed(self, spider: Spider, reason: str) -> None:
        self.record(reason)

    def record(self, reason: str) -> None:
        """The run's outcome, once: when the spider closes, or earlier when a stop
        cannot wait for it (crawler.stopping)."""
        if self.recorded or self.crawler.spider is None:
            return
        self.recorded = True
        spider = self.crawler.spider
        assert self.crawler.stats is not None
        stats = self.crawler.stats.get_stats()
        counters: dict[str, Any] = {
            name: int(stats.get(key, 0) or 0) for name, key in COUNTERS.items()
        }
        for key, value in stats.items():
            if key.startswith("annals/blocked/"):
                counters[key.removeprefix("annals/")] = int(value)
        status = decide_status(reason, stats)
        if counters["offsite"]:
            logger.warning(
                "%s: %d requests to hosts outside the source were dropped (a redirect away"
                " from it, or a link to another site)",
                spider.name,
                counters["offsite"],
            )
        if stats.get("annals/archive_error"):
            counters["archive_error"] = str(stats["annals/archive_error"])
        counters["close_reason"] = reason
        context = run_context(self.crawler)
        try:
            context.finish(status, counters)
        except Exception:
            logger.exception("could not record the run's outcome in crawl_runs")
            context.status, context.counters = status, counters
        logger.info("%s: %s %s", spider.name, status, counters)
        context.close()
