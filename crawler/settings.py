"""Scrapy settings for annals: politeness and safety defaults, limits, the archive pipeline.

Every ANNALS_* setting has its default here and only here: the components read them
without a fallback (`settings.getint("ANNALS_BLOCK_RETRIES")`), as Scrapy's read its
default_settings, and refuse a crawler whose settings lack them (`check`). Each can be
given with `-s NAME=VALUE` (scrapy crawl, annals crawl); the ones read from the
environment below are read here, once.
"""

from __future__ import annotations

import os
import typing
from typing import TypeVar

from scrapy.settings import BaseSettings

from archive import __version__, db

if typing.TYPE_CHECKING:  # not imported by name: an upper-case name here is a setting
    from scrapy.crawler import Crawler

BOT_NAME = "annals"
SPIDER_MODULES = ["crawler.spiders"]
# Imports the module of the spider a crawl runs, not every spider's (crawler.spiders).
SPIDER_LOADER_CLASS = "crawler.spiders.SpiderLoader"
NEWSPIDER_MODULE = "crawler.spiders"

# --- the archive ------------------------------------------------------------------------------
ANNALS_DATABASE_URL = os.environ.get("ANNALS_DATABASE_URL")  # None: ./annals.db
ANNALS_BATCH_SIZE = 100  # records per transaction
# A batch is also written this many seconds after its first record arrived, full or not
# (`annals watch` sets ANNALS_WATCH_FLUSH_SECONDS instead: each record committed within 1 s).
ANNALS_FLUSH_SECONDS = 60.0
ANNALS_RECHECK_DAYS = float(os.environ.get("ANNALS_RECHECK_DAYS", "3"))
# A writer that finds SQLite locked waits this long per try, for this many tries.
ANNALS_BUSY_TIMEOUT_MS = db.BUSY_TIMEOUT_MS  # the archive commands' own default (archive.db)
ANNALS_BUSY_ATTEMPTS = 8
ANNALS_EXCLUSIVE = False  # `annals crawl` sets it: it holds the archive's crawl lock

# --- several workers (crawler.frontier) -------------------------------------------------------
# With a Redis URL, every worker of a spider shares one frontier (scrapy-redis).
ANNALS_REDIS_URL = os.environ.get("ANNALS_REDIS_URL")  # e.g. redis://10.0.0.5:6379/0
# A worker stops once the shared frontier has been empty this long (seconds).
ANNALS_IDLE_SECONDS = float(os.environ.get("ANNALS_IDLE_SECONDS", "30"))
# A worker whose heartbeat is older than this (seconds) is taken for dead.
ANNALS_FRONTIER_TTL = 15.0
# The first part of the frontier's Redis keys: two archives can share one Redis.
ANNALS_FRONTIER_KEY = os.environ.get("ANNALS_FRONTIER_KEY", "annals")
ADDONS = {
    "crawler.frontier.FrontierAddon": 0,
    # Scrapy's components that are switched off below are not even imported.
    "crawler.extensions.SkipSwitchedOff": 0,
}

# --- watching (annals watch, crawler.watch and crawler.push) ---------------------------------
# Seconds between two polls of a source's newest list page; 0: not a watch (annals crawl).
# A source is never asked faster than its DOWNLOAD_DELAY (the source's documented limit).
ANNALS_WATCH_INTERVAL = 0.0
# Another interval for some spiders, by name: {"okx_announcements": 10} (`annals watch
# --interval okx_announcements=10`, or -s ANNALS_WATCH_INTERVALS='{...}'). Every interval
# is raised to what a round's list requests take at the spider's DOWNLOAD_DELAY.
ANNALS_WATCH_INTERVALS: dict[str, float] = {}
ANNALS_WATCH_FLUSH_SECONDS = 0.5  # the pipeline's ANNALS_FLUSH_SECONDS during a watch
# A push channel's heartbeat, as the source asks for one (Deribit: public/set_heartbeat,
# at least 10 s); a connection silent for three heartbeats is taken for dead and replaced.
ANNALS_PUSH_HEARTBEAT = 10.0
# Reconnecting after a drop: the first wait, doubled each failed try up to the longest,
# each jittered by +-50% (many watchers must not come back at the same instant).
ANNALS_PUSH_BACKOFF = 1.0
ANNALS_PUSH_MAX_BACKOFF = 60.0

# --- politeness -------------------------------------------------------------------------------
USER_AGENT = (
    f"annals/{__version__} (+https://github.com/annals-archive/annals; announcement archive)"
)
ROBOTSTXT_OBEY = True
CONCURRENT_REQUESTS = 8
CONCURRENT_REQUESTS_PER_DOMAIN = 2
DOWNLOAD_DELAY = 0.25
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_MAX_DELAY = 30.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0
COOKIES_ENABLED = False
# Items go to one synchronous, batching pipeline, so parallel item workers never overlap:
# Scrapy starts CONCURRENT_ITEMS asyncio tasks for every response (its default: 100),
# and each one only costs CPU (bench/crawl measured 100, then 16, then 1).
CONCURRENT_ITEMS = 1
# Scrapy reads and parses the source of a generator callback (inspect + ast) to warn when
# it returns a value, once per response: its cache is keyed by bound methods, which die
# with their request. That was 3% of a crawl's CPU (bench/crawl); a test checks every
# annals callback once instead (tests/test_code_quality.py).
WARN_ON_GENERATOR_RETURN_VALUE = False

# --- no listening sockets ---------------------------------------------------------------------
# A crawl listens on no port. Scrapy's telnet console and its remote-control HTTP server
# (Scrapy 2.19: run code inside the crawl from 127.0.0.1, behind a token) are for
# watching a crawl by hand; a cron archiver has no use for them, and any local user or
# process that gets the token could run code as the archiver.
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False

# --- safety limits ----------------------------------------------------------------------------
DOWNLOAD_MAXSIZE = 8 * 1024 * 1024  # a page or API answer larger than this is dropped
DOWNLOAD_WARNSIZE = 2 * 1024 * 1024
DOWNLOAD_TIMEOUT = 30
REDIRECT_MAX_TIMES = 5
# No source sends its pages on with <meta http-equiv="refresh">: a page that has one is a
# WAF's interstitial (Cloudflare's "Just a moment..." refreshes itself), which must reach
# BlockMiddleware as the block it is. Scrapy's MetaRefreshMiddleware sees answers before
# it and follows the refresh, to the page itself into the dupefilter (a "duplicate"
# instead of a retried block); and it decodes every HTML answer to text only to look for
# one, which the spiders parse from bytes (42 µs of CPU a Gate article page, 1% of a crawl).
METAREFRESH_ENABLED = False
RETRY_ENABLED = True
RETRY_TIMES = 2
# 429 and the block statuses are retried by annals' BlockMiddleware, with backoff.
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408]
# A retry waits for its host's pause (crawler.backoff), then goes first: raised, not
# lowered (Scrapy's -1 would queue it behind everything the spider found meanwhile).
RETRY_PRIORITY_ADJUST = 1

# Blocks and challenges: retried after a backoff that honours Retry-After, then given up.
# A block, a 429, a rate-limit envelope or one of ANNALS_BACKOFF_HTTP_CODES pauses every
# request to its host (crawler.backoff) for Retry-After, else ANNALS_BLOCK_BACKOFF
# seconds doubled each retry and jittered, never more than ANNALS_MAX_RETRY_AFTER.
ANNALS_BLOCK_RETRIES = 2
ANNALS_BLOCK_BACKOFF = 5.0
ANNALS_MAX_RETRY_AFTER = 600.0
ANNALS_BACKOFF_HTTP_CODES = [503]  # then retried by Scrapy's RetryMiddleware, after the pause

# --- stopping (crawler.stopping) --------------------------------------------------------------
# After SIGINT/SIGTERM, what is downloading gets this many seconds to arrive; then the
# crawl stops regardless (a second signal stops it at once). Either way the run is
# recorded "interrupted" with what was archived.
ANNALS_STOP_GRACE = 2.0

# --- alerts (crawler.alerts, through Apprise) -------------------------------------------------
# Apprise URLs (json://host/path, tgram://..., ...), separated by whitespace or commas;
# none: no alerts. One alert per new document (and per edit with ANNALS_NOTIFY_EDITS).
ANNALS_NOTIFY = os.environ.get("ANNALS_NOTIFY", "")
ANNALS_NOTIFY_ON: list[str] = []  # event types (listing, delisting, ...); empty: all
ANNALS_NOTIFY_SOURCES: list[str] = []  # documents.source; empty: all
ANNALS_NOTIFY_SYMBOLS: list[str] = []  # any of these symbols; empty: all
ANNALS_NOTIFY_EDITS = False
# Only documents published this recently (seconds): a first crawl sends no backfill.
ANNALS_NOTIFY_MAX_AGE = 3600.0
# Each destination is tried this many times, waiting ANNALS_NOTIFY_BACKOFF seconds,
# doubled each time and jittered, in between.
ANNALS_NOTIFY_ATTEMPTS = 5
ANNALS_NOTIFY_BACKOFF = 1.0

DOWNLOADER_MIDDLEWARES = {
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
    "crawler.middlewares.RobotsTxtMiddleware": 100,
    "crawler.middlewares.BlockMiddleware": 560,
    # Scrapy's, with redirect loops detected and counted (a loop lost pages in silence).
    "scrapy.downloadermiddlewares.redirect.RedirectMiddleware": None,
    "crawler.redirects.RedirectMiddleware": 600,
    "crawler.stopping.StopMiddleware": 40,  # first of all: nothing new once stopping
}
ITEM_PIPELINES = {
    # Before the archive's: Scrapy closes pipelines last first, so the notifier's close
    # comes after ArchivePipeline wrote its last batch, and before the run is recorded.
    "crawler.alerts.Notifier": 200,
    "crawler.pipelines.ArchivePipeline": 300,
}
EXTENSIONS = {
    # After AutoThrottle (0): a pause set on a response outlasts its delay update.
    "crawler.backoff.HostBackoff": 100,
    # The run: its archive, crawl_runs row and incremental decisions; then its outcome.
    "crawler.context.RunContext": 400,
    "crawler.extensions.RunRecorder": 500,
    # `annals watch` only (ANNALS_WATCH_INTERVAL > 0): rounds of polls, push channels.
    "crawler.watch.Watch": 600,
}

LOG_LEVEL = "INFO"
LOG_FORMATTER = "crawler.logformatter.LogFormatter"  # page and item lines only at DEBUG
STATS_CLASS = "crawler.extensions.Stats"  # Scrapy's, without a wrapper on every attribute
FEED_EXPORT_ENCODING = "utf-8"


Component = TypeVar("Component")


class MissingSettingsError(LookupError):
    """A crawler made without these settings (another settings module, a test's
    `get_crawler(settings_dict=...)`): its components would read 0 and None."""


def check(settings: BaseSettings) -> None:
    """Refuse settings that lack an ANNALS_* setting, naming each one missing. The
    components that read them call this first (RunContext, HostBackoff, Frontier,
    ArchivePipeline)."""
    missing = [name for name in _annals if name not in settings]
    if missing:
        raise MissingSettingsError(
            f"the settings lack {', '.join(missing)}: their defaults are in crawler.settings"
            " (load it: scrapy.cfg, SCRAPY_SETTINGS_MODULE, Settings.setmodule)"
        )


def extension(crawler: Crawler, cls: type[Component]) -> Component:
    """The crawler's instance of one of the EXTENSIONS above; an error naming it when the
    crawler's settings do not list it (they are not these)."""
    found = crawler.get_extension(cls)
    if found is None:
        raise MissingSettingsError(
            f"the settings' EXTENSIONS lack {cls.__module__}.{cls.__qualname__}: "
            "the crawl cannot run without it (crawler.settings lists it)"
        )
    return found


_annals = tuple(name for name in dir() if name.startswith("ANNALS_"))
