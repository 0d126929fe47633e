"""Alerts through Apprise for what a crawl archives: one per new document (and per edit
when asked), delivered by a worker thread, so a slow or failing destination never
delays archiving.

`Notifier` is an item pipeline (ITEM_PIPELINES) that handles no item: ArchivePipeline
sends `batch_written` after each committed batch, and the notifier's thread then
claims what is due from the archive (archive.alerts.claim: nothing depends on memory)
and delivers it, each destination retried with backoff (tenacity). It is a pipeline so
that Scrapy awaits its `close_spider`, where it delivers what the last batch brought,
before the run is recorded: what could not be delivered after the retries is counted
on the run (`alerts_failed`, a loss: the run ends `partial`) and retried by the next
run of the spider while it is younger than the maximum age.

A long-running crawl (`annals watch`) gets the same: it archives through ArchivePipeline,
whose signal is this notifier's only input; `Notifier.wake()` asks for a scan by hand.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from scrapy.exceptions import NotConfigured
from scrapy.utils.defer import maybe_deferred_to_future
from tenacity import (
    RetryError,
    Retrying,
    retry_if_result,
    stop_after_attempt,
    wait_exponential_jitter,
)
from twisted.internet.threads import deferToThread

from archive.alerts import Alert, Filters, Target, claim, record
from archive.db import ArchiveError, make_engine
from archive.store import Store
from crawler import settings as defaults
from crawler.context import run_context
from crawler.pipelines import batch_written

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

_SCAN, _STOP = "scan", "stop"


class NotifyConfigError(ValueError):
    """A notify setting that cannot be used (an unknown Apprise URL, no Apprise)."""


def targets_of(urls: Sequence[str]) -> list[Target]:
    """Each Apprise URL as a Target, or NotifyConfigError naming the first one Apprise
    does not know (so `annals crawl` refuses it before crawling)."""
    try:
        import apprise
    except ImportError:
        raise NotifyConfigError("alerts need Apprise: pip install 'annals[alerts]'") from None
    found = []
    for url in urls:
        service = apprise.Apprise.instantiate(url)
        if not service:
            raise NotifyConfigError(f"not an Apprise URL Apprise can send to: {url!r}")
        found.append(Target(url, service.url(privacy=True)))
    return found


def notify_urls(value: Any) -> list[str]:
    """ANNALS_NOTIFY: a list, or a string of URLs separated by whitespace or commas."""
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    return [str(v).strip() for v in value or () if str(v).strip()]


def filters_of(settings: Any) -> Filters:
    return Filters(
        max_age=timedelta(seconds=settings.getfloat("ANNALS_NOTIFY_MAX_AGE")),
        event_types=frozenset(settings.getlist("ANNALS_NOTIFY_ON")),
        sources=frozenset(settings.getlist("ANNALS_NOTIFY_SOURCES")),
        symbols=frozenset(s.upper() for s in settings.getlist("ANNALS_NOTIFY_SYMBOLS")),
        edits=settings.getbool("ANNALS_NOTIFY_EDITS"),
    )


class Notifier:
    """Delivers the alerts of one crawler's run (module docstring)."""

    def __init__(self, crawler: Crawler, targets: list[Target], filters: Filters) -> None:
        settings = crawler.settings
        self.crawler = crawler
        self.targets = targets
        self.filters = filters
        self.attempts = settings.getint("ANNALS_NOTIFY_ATTEMPTS")
        self.backoff = settings.getfloat("ANNALS_NOTIFY_BACKOFF")
        self.busy_timeout_ms = settings.getint("ANNALS_BUSY_TIMEOUT_MS")
        self.busy_attempts = settings.getint("ANNALS_BUSY_ATTEMPTS")
        self.sent = 0
        self.failed = 0
        self._queue: queue.Queue[str] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._store: Store | None = None
        self._services: dict[str, Any] = {}
        # Destinations that failed every attempt in this run: the run's later alerts to
        # them are not tried (each would wait out the whole backoff again, holding the
        # end of the run for minutes); they are counted and the next run sends them.
        self._down: set[str] = set()
        self._spider = ""
        self._run_id: int | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Notifier:
        defaults.check(crawler.settings)
        urls = notify_urls(crawler.settings.get("ANNALS_NOTIFY"))
        if not urls:
            raise NotConfigured("no ANNALS_NOTIFY: no alerts")
        notifier = cls(crawler, targets_of(urls), filters_of(crawler.settings))
        crawler.signals.connect(notifier.wake, signal=batch_written)
        return notifier

    def open_spider(self) -> None:
        assert self.crawler.spider is not None
        self._spider = self.crawler.spider.name
        context = run_context(self.crawler)
        with contextlib.suppress(ArchiveError):  # the pipeline says so and stops the crawl
            self._run_id = context.start(self._spider)
        engine = make_engine(context.url, busy_timeout_ms=self.busy_timeout_ms)
        self._store = Store(engine, busy_attempts=self.busy_attempts)
        self._thread = threading.Thread(target=self._work, name=f"alerts-{self._spider}")
        self._thread.daemon = True  # a forced stop leaves its claims to the next run
        self._thread.start()

    def wake(self, **_: Any) -> None:
        """Look for what is due now (after a committed batch)."""
        self._queue.put(_SCAN)

    async def close_spider(self) -> None:
        """Deliver what the last batch brought (ArchivePipeline's close, called before
        this one, wrote it), then count the run's alerts."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        await maybe_deferred_to_future(deferToThread(self._thread.join))
        stats = self.crawler.stats
        assert stats is not None
        stats.set_value("annals/alerts_sent", self.sent)
        stats.set_value("annals/alerts_failed", self.failed)
        if self.failed:
            logger.warning(
                "%s: %d alerts could not be delivered (each destination tried %d times); the"
                " next run tries them again while they are younger than the maximum age",
                self._spider,
                self.failed,
                self.attempts,
                extra={"spider": self.crawler.spider},
            )
        if self._store is not None:
            self._store.engine.dispose()

    # --- the worker thread ----------------------------------------------------------------

    def _work(self) -> None:
        stopping = False
        while not stopping:
            stopping = self._queue.get() == _STOP
            with contextlib.suppress(queue.Empty):  # one scan for every wake so far
                while True:
                    stopping = self._queue.get_nowait() == _STOP or stopping
            try:
                self._scan()
            except Exception:
                logger.exception(
                    "%s: could not look for alerts in the archive",
                    self._spider,
                    extra={"spider": self.crawler.spider},
                )

    def _scan(self) -> None:
        if self._run_id is None or self._store is None:
            return
        for alert in claim(self._store, self._spider, self._run_id, self.filters, self.targets):
            self._deliver(alert)

    def _deliver(self, alert: Alert) -> None:
        assert self._store is not None
        target = next(t for t in self.targets if t.key == alert.target)
        if target.key in self._down:
            self.failed += 1
            record(self._store, alert.id, False, 0, "not tried: the destination failed before")
            return
        tries = 0

        def send() -> bool:
            nonlocal tries
            tries += 1
            try:
                return bool(self._service(target).notify(title=alert.subject(), body=alert.body()))
            except Exception as exc:  # a plugin's bug must not stop the other alerts
                logger.warning("alert to %s raised %s: %s", target.shown, type(exc).__name__, exc)
                return False

        retrying = Retrying(
            retry=retry_if_result(lambda ok: not ok),
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential_jitter(initial=self.backoff, max=60, jitter=self.backoff),
            before_sleep=lambda state: logger.warning(
                "alert for %s to %s not delivered (attempt %d of %d), retrying",
                alert.ref,
                target.shown,
                state.attempt_number,
                self.attempts,
            ),
        )
        try:
            sent = retrying(send)
        except RetryError:
            sent = False
        if sent:
            self.sent += 1
        else:
            self.failed += 1
            self._down.add(target.key)
            # A warning, not an error: the archive is whole; the loss is counted.
            logger.warning(
                "alert for %s to %s not delivered after %d attempts",
                alert.ref,
                target.shown,
                tries,
                extra={"spider": self.crawler.spider},
            )
        error = None if sent else f"not delivered after {tries} attempts"
        record(self._store, alert.id, sent, tries, error)

    def _service(self, target: Target) -> Any:
        import apprise

        if target.key not in self._services:
            service = apprise.Apprise()
            service.add(target.url)
            self._services[target.key] = service
        return self._services[target.key]
