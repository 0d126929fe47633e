"""Records how each crawl run ended in crawl_runs: its status and its counters."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils import decorators

from crawler.context import run_context

# The warning Scrapy's StatsCollector wraps each of its methods in, private in Scrapy
# 2.14-2.19; a Scrapy without it gets Stats' methods as they are.
_warn_spider_arg = getattr(decorators, "_warn_spider_arg", lambda func: func)

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)

# What a run could not archive, by reason (README "When things go wrong" names each one).
# Every one is a counter on the run and makes it "partial", unless it failed or was blocked.
LOSSES = {
    "quarantined": "annals/quarantined",  # a page or answer that did not parse (bytes kept)
    "unusable_items": "annals/unusable_items",  # list items that cannot become records
    "listing_missing": "annals/listing_missing",  # a listing page answering 404/410
    "refused": "annals/refused",  # an error envelope, a response over DOWNLOAD_MAXSIZE
    "offsite": "offsite/filtered",  # a redirect or link to another host
    "robots": "annals/robots",  # robots.txt forbids the page
    "ignored": "annals/ignored",  # any other request Scrapy dropped (IgnoreRequest)
    "redirect_loop": "annals/redirect_loop",  # a redirect back to a URL of its own chain
    "too_many_redirects": "annals/too_many_redirects",  # more than REDIRECT_MAX_TIMES
    "duplicates": "dupefilter/filtered",  # a redirect to a URL this run already asked for
    # Alerts not delivered after the retries (crawler.alerts): the archive is whole, but
    # someone was not told; the next run tries them again.
    "alerts_failed": "annals/alerts_failed",
    # A push that came while a watch was stopping (crawler.push): the next run's first
    # poll finds it in the list, but this run did not archive it.
    "push_unarchived": "annals/watch/unarchived",
}
# Losses that fail the run: the source did not answer (a timeout after the retries, a
# refused connection, an unexpected HTTP status). A failed run is unfinished: the next
# one walks the listings back and asks again.
FAILURES = {
    "timeouts": "annals/timeouts",
    "fetch_errors": "annals/fetch_errors",
    # Records, quarantine rows and removals the archive could not take (a write failed:
    # a full disk, a lock held too long); the crawl stopped with them.
    "unarchived": "annals/unarchived",
}
# Counters kept on the run, from Scrapy's stats and the spiders' and the pipeline's.
COUNTERS = {
    "requests": "downloader/request_count",
    "pages": "response_received_count",
    "new_documents": "annals/new_documents",
    "new_versions": "annals/new_versions",
    "unchanged": "annals/unchanged",
    "reverted": "annals/reverted",
    "removed": "annals/removed",
    "blocked": "annals/blocked",
    "listing_only": "annals/listing_only",
    "not_found": "annals/not_found",
    **LOSSES,
    "too_large": "annals/too_large",  # of the refused: over DOWNLOAD_MAXSIZE
    "invalid_records": "annals/invalid_records",  # of the quarantined: failed validation
    **FAILURES,
    "alerts_sent": "annals/alerts_sent",
    "errors": "annals/errors",  # ERROR log records of this run (ErrorCount)
    "unsent": "annals/unsent",
}


# Worst first: one run's status (decide_status) and a crawl of several spiders (its exit
# code) both take the worst outcome there is.
PRECEDENCE = ("failed", "interrupted", "blocked", "partial", "finished")


def worst(statuses: list[str]) -> str:
    """The worst of several runs' statuses; "finished" for none. An unknown status (a run
    that never recorded one) counts as failed."""
    ranks = [PRECEDENCE.index(s) if s in PRECEDENCE else 0 for s in statuses]
    return PRECEDENCE[min(ranks, default=len(PRECEDENCE) - 1)]


def decide_status(reason: str, stats: dict[str, Any]) -> str:
    """How a run ended, from the close reason and the stats. The worst outcome wins:
    failed > blocked > partial > finished (interrupted is a stop from outside).

    interrupted: stopped from outside (Ctrl-C, SIGTERM). failed: an error (a request the
    source never answered, a timeout that lost a page, an archive write that failed, a
    bug), or a run that fetched nothing and was not blocked (a run that did nothing must
    not look like success). blocked: some request stayed blocked. partial: something was
    lost for a reason in LOSSES (unparsed, refused, dropped). finished: none of these.
    """
    if reason == "shutdown":
        return "interrupted"
    if reason != "finished" or stats.get("annals/archive_error"):
        return "failed"
    if stats.get("annals/errors") or stats.get("spider_exceptions/count"):
        return "failed"
    if any(stats.get(key) for key in FAILURES.values()):
        return "failed"
    if stats.get("annals/blocked"):
        return "blocked"
    if not stats.get("response_received_count"):
        return "failed"
    if any(stats.get(key) for key in LOSSES.values()):
        return "partial"
    return "finished"


class Stats(MemoryStatsCollector):
    """Scrapy's MemoryStatsCollector (STATS_CLASS), with its methods' warning about a
    `spider` argument made once for the class instead of on every attribute access.

    Scrapy's StatsCollector.__getattribute__ looks up a cached wrapper for every attribute
    read, its own `self._stats` included, which raises and catches an AttributeError each
    time: a crawl makes a dozen stats calls a page (scheduler, downloader, core stats,
    annals' counters), 1.5% of its CPU (bench/crawl). The stats, and the
    ScrapyDeprecationWarning for a caller that still passes `spider`, are the same.
    """

    __getattribute__ = object.__getattribute__
    get_value = _warn_spider_arg(MemoryStatsCollector.get_value)
    get_stats = _warn_spider_arg(MemoryStatsCollector.get_stats)
    set_value = _warn_spider_arg(MemoryStatsCollector.set_value)
    set_stats = _warn_spider_arg(MemoryStatsCollector.set_stats)
    inc_value = _warn_spider_arg(MemoryStatsCollector.inc_value)
    max_value = _warn_spider_arg(MemoryStatsCollector.max_value)
    min_value = _warn_spider_arg(MemoryStatsCollector.min_value)
    clear_stats = _warn_spider_arg(MemoryStatsCollector.clear_stats)
    open_spider = _warn_spider_arg(MemoryStatsCollector.open_spider)
    close_spider = _warn_spider_arg(MemoryStatsCollector.close_spider)


class ErrorCount(logging.Handler):
    """This run's ERROR log records, as annals/errors.

    Scrapy's own log_count/ERROR cannot tell runs apart: each crawler's LogCounterHandler
    sits on the root logger and counts every crawler's records, so in `annals crawl
    --all` one source's error would fail every run of the process. A record that names
    its spider (Scrapy's do, and annals' spiders') counts for that spider's run only; one
    that names none (an error no spider can be told from) still counts for every run.
    """

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(logging.ERROR)
        self.crawler = crawler

    def emit(self, record: logging.LogRecord) -> None:
        spider = getattr(record, "spider", None)
        if (spider is None or spider is self.crawler.spider) and self.crawler.stats:
            self.crawler.stats.inc_value("annals/errors")


class RunRecorder:
    """The outcome of the run crawler.context.RunContext opened: its status and counters
    on its crawl_runs row, when the spider closes."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.recorded = False
        self.errors = ErrorCount(crawler)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RunRecorder:
        ext = cls(crawler)
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_opened(self, spider: Spider) -> None:
        logging.getLogger().addHandler(self.errors)

    def spider_closed(self, spider: Spider, reason: str) -> None:
        self.record(reason)
        logging.getLogger().removeHandler(self.errors)

    def counters(self) -> dict[str, Any]:
        """The run's counters so far, from the crawl's stats."""
        assert self.crawler.stats is not None
        stats = self.crawler.stats.get_stats()
        counters: dict[str, Any] = {
            name: int(stats.get(key, 0) or 0) for name, key in COUNTERS.items()
        }
        for key, value in stats.items():
            if key.startswith(("annals/blocked/", "annals/watch/")):
                counters[key.removeprefix("annals/")] = int(value)
        return counters

    def record(self, reason: str) -> None:
        """The run's outcome, once: when the spider closes, or earlier when a stop
        cannot wait for it (crawler.stopping)."""
        if self.recorded or self.crawler.spider is None:
            return
        self.recorded = True
        spider = self.crawler.spider
        assert self.crawler.stats is not None
        stats = self.crawler.stats.get_stats()
        counters = self.counters()
        from crawler.watch import watch_of

        watch = watch_of(self.crawler)  # a watch stopped between rounds cut nothing
        status = decide_status(watch.close_reason(reason) if watch else reason, stats)
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


# Scrapy's default components that annals' settings switch off: the setting that switches
# each on, and the component setting that lists it. Scrapy imports a component before it
# finds itself switched off: the remote control imports aiohttp's web server, the cookies
# middleware tldextract and requests, a fifth of a second of every crawl's start-up.
SWITCHED_OFF = {
    "REMOTE_CONTROL_ENABLED": ("EXTENSIONS", "scrapy.extensions.remote_control.RemoteControl"),
    "TELNETCONSOLE_ENABLED": ("EXTENSIONS", "scrapy.extensions.telnet.TelnetConsole"),
    "COOKIES_ENABLED": (
        "DOWNLOADER_MIDDLEWARES",
        "scrapy.downloadermiddlewares.cookies.CookiesMiddleware",
    ),
}
# Scrapy's default components that do nothing annals needs while none of these settings is
# set (0 or False, Scrapy's defaults): the settings, and where the component is listed.
# DepthMiddleware without DEPTH_LIMIT, DEPTH_PRIORITY and DEPTH_STATS_VERBOSE only writes
# each request's meta["depth"] and the request_depth_max stat, which nothing reads (a
# listing is paged as far as its navigator says, AnnalsSpider.keep_paging); and it is one
# more layer around every callback's output (in one process: 4 µs an item, 13 µs a request).
IDLE = {
    ("DEPTH_LIMIT", "DEPTH_PRIORITY", "DEPTH_STATS_VERBOSE"): (
        "SPIDER_MIDDLEWARES",
        "scrapy.spidermiddlewares.depth.DepthMiddleware",
    ),
}


class SkipSwitchedOff:
    """Takes a component of SWITCHED_OFF out of Scrapy's defaults when its setting is off
    (as the crawl's settings have it, the spider's and the command line's included), so
    it is not imported only to find it has nothing to do; one switched on (`-s
    COOKIES_ENABLED=True`) stays. Each of them, switched off, raises a bare NotConfigured,
    which Scrapy does not log: what a crawl runs and logs is the same. A component of
    IDLE is taken out the same way while none of its settings is set, and stays with any
    one of them (`-s DEPTH_LIMIT=3`); what it left out is only missing from the log's
    "Enabled ... middlewares" and its stats (request_depth_max)."""

    def update_settings(self, settings: BaseSettings) -> None:
        switched = [((switch,), where) for switch, where in SWITCHED_OFF.items()]
        for switches, (components, path) in [*switched, *IDLE.items()]:
            # Out of <COMPONENTS>_BASE: a path in <COMPONENTS> is imported even with None,
            # to find the class it names.
            base = settings[f"{components}_BASE"]
            if path in base and not any(settings.getbool(name) for name in switches):
                del base[path]
        # Nothing to run: not listed among the "Enabled addons" (what it set stays set).
        raise NotConfigured
