"""The archive as one crawl sees it: its store, its crawl_runs row, what is already known.

One RunContext per crawler, shared by the pipeline (writes), the extension (run
record) and the spider (incremental decisions).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from archive.db import BUSY_TIMEOUT_MS, ArchiveError, make_engine, open_archive, resolve_url
from archive.normalize import utcnow
from archive.records import Identity
from archive.store import Known, Store

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

STATUSES = ("running", "finished", "partial", "blocked", "failed", "interrupted")
# Runs that walked their listings to the end; the others may have stopped half-way.
COMPLETE = frozenset({"finished", "partial", "blocked"})
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class RunContext:
    def __init__(
        self,
        url: str,
        recheck_days: float,
        exclusive: bool = False,
        busy_timeout_ms: int = BUSY_TIMEOUT_MS,
        busy_attempts: int = 8,
    ) -> None:
        self.url = url
        self.busy_timeout_ms = busy_timeout_ms
        self.busy_attempts = busy_attempts
        self.recheck = timedelta(days=recheck_days)
        self.exclusive = exclusive  # this process holds the crawl lock (annals crawl)
        self.resume_after: datetime | None = None
        self.start_error: ArchiveError | None = None
        self._store: Store | None = None
        self.run_id: int | None = None
        self.status: str | None = None
        self.counters: dict[str, Any] = {}

    @property
    def store(self) -> Store:
        if self._store is None:
            open_archive(self.url, create=True).dispose()
            engine = make_engine(self.url, busy_timeout_ms=self.busy_timeout_ms)
            self._store = Store(engine, busy_attempts=self.busy_attempts)
        return self._store

    def start(self, spider: str) -> int:
        if self.start_error is not None:
            raise self.start_error
        if self.run_id is None:
            try:
                self.run_id = self.store.start_run(spider)
            except ArchiveError as exc:
                self.start_error = exc
                raise
            self.resume_after = self._resume_point(spider, self.run_id)
            if self.exclusive:
                # Holding the lock, no other run can be alive: a "running" one was killed.
                self.store.mark_interrupted(spider, self.run_id)
        return self.run_id

    def _resume_point(self, spider: str, run_id: int) -> datetime | None:
        """None when the previous run walked its listings to the end. Otherwise (it was
        killed, interrupted or failed) the start of the last run that did, or the epoch:
        this run then keeps paging past known items down to that time, so it finds what
        the broken run never reached."""
        runs = self.store.latest_runs(spider, run_id)
        if not runs or runs[0].status in COMPLETE:
            return None
        complete = next((r for r in runs if r.status in COMPLETE), None)
        point = complete.started_at if complete else EPOCH
        logger.warning(
            "%s: the previous run did not finish (%s): walking the listings back to %s",
            spider,
            runs[0].status,
            point.isoformat() if complete else "the beginning",
        )
        return point

    def repairing(self, oldest_on_page: datetime | None) -> bool:
        """Keep paging in repair mode while the page is newer than the resume point."""
        if self.resume_after is None:
            return False
        return oldest_on_page is None or oldest_on_page >= self.resume_after

    def finish(self, status: str, counters: dict[str, Any]) -> None:
        self.status, self.counters = status, counters
        if self.run_id is not None:
            self.store.finish_run(self.run_id, status, counters)

    def known(self, keys: Sequence[Identity]) -> dict[Identity, Known]:
        return self.store.known(keys) if keys else {}

    def recheck_due(self, known: Known, now: datetime | None = None) -> bool:
        """A known document is fetched again only while younger than the recheck window."""
        published = known.published_at or known.first_seen_at
        return (now or utcnow()) - published < self.recheck

    def close(self) -> None:
        if self._store is not None:
            self._store.engine.dispose()


def run_context(crawler: Crawler) -> RunContext:
    """The crawler's RunContext, made on first use from its settings."""
    context = getattr(crawler, "annals_run", None)
    if context is None:
        url = resolve_url(crawler.settings.get("ANNALS_DATABASE_URL"))
        settings = crawler.settings
        context = RunContext(
            url,
            settings.getfloat("ANNALS_RECHECK_DAYS", 3.0),
            exclusive=settings.getbool("ANNALS_EXCLUSIVE", False),
            busy_timeout_ms=settings.getint("ANNALS_BUSY_TIMEOUT_MS", BUSY_TIMEOUT_MS),
            busy_attempts=settings.getint("ANNALS_BUSY_ATTEMPTS", 8),
        )
        crawler.annals_run = context  # type: ignore[attr-defined]
    return context
