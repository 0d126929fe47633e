"""The archive as one crawl sees it: its store, its crawl_runs row, what is already known.

One RunContext per crawler, an extension (EXTENSIONS): made from the settings, it opens
the run when the spider opens; the pipeline (writes), RunRecorder (the run's outcome)
and the spider (incremental decisions) reach it with `run_context(crawler)`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from scrapy import signals

from archive.db import ArchiveError, make_engine, open_archive, resolve_url
from archive.normalize import EPOCH, utcnow
from archive.records import Identity
from archive.store import Known, Store
from crawler import settings as defaults
from crawler.frontier import frontier_for

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler

    from crawler.frontier import Frontier

logger = logging.getLogger(__name__)

# Runs that walked their listings to the end; the others may have stopped half-way.
COMPLETE = frozenset({"finished", "partial", "blocked"})


class RunContext:
    """The run of one crawler (an extension: `crawler.get_extension(RunContext)`)."""

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        defaults.check(settings)
        self.crawler = crawler
        self.url = resolve_url(settings.get("ANNALS_DATABASE_URL"))
        self.busy_timeout_ms = settings.getint("ANNALS_BUSY_TIMEOUT_MS")
        self.busy_attempts = settings.getint("ANNALS_BUSY_ATTEMPTS")
        self.recheck = timedelta(days=settings.getfloat("ANNALS_RECHECK_DAYS"))
        # This process holds the crawl lock (annals crawl): a "running" run was killed.
        self.exclusive = settings.getbool("ANNALS_EXCLUSIVE")
        self._resume_after: datetime | None = None
        self.start_error: ArchiveError | None = None
        self._store: Store | None = None
        self.run_id: int | None = None
        self.status: str | None = None
        self.counters: dict[str, Any] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RunContext:
        context = cls(crawler)
        crawler.signals.connect(context.spider_opened, signal=signals.spider_opened)
        return context

    def spider_opened(self, spider: Spider) -> None:
        # If the archive cannot take the run, the pipeline said so and stops the crawl.
        with contextlib.suppress(ArchiveError):
            self.start(spider.name)

    @cached_property
    def frontier(self) -> Frontier | None:
        """A shared crawl's round (crawler.frontier), whose workers run at once on
        purpose: None for a crawl of its own."""
        return frontier_for(self.crawler)

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
            frontier = self.frontier
            tag = {"frontier": frontier.ref} if frontier else None
            try:
                self.run_id = self.store.start_run(spider, counters=tag)
            except ArchiveError as exc:
                self.start_error = exc
                raise
            if frontier is None:
                self._resume_after = self._resume_point(spider, self.run_id)
                if self.exclusive:
                    # Holding the lock, no other run can be alive: a "running" one was killed.
                    self.store.mark_interrupted(spider, self.run_id)
            elif frontier.seeder:
                # A round opens only when no worker of the spider is alive: every
                # "running" run but this round's belongs to a process that died.
                runs = self.store.latest_runs(spider, self.run_id)
                ours = [r.id for r in runs if _unit(r) == frontier.ref]
                self.store.mark_interrupted(spider, self.run_id, keep=ours)
                # The seeder repairs too: it walks the listings, the joiners follow.
                self._resume_after = self._resume_point(spider, self.run_id, frontier.ref)
                frontier.publish_resume(self._resume_after)
        return self.run_id

    def _resume_point(
        self, spider: str, run_id: int, this_round: str | None = None
    ) -> datetime | None:
        """None when the previous crawl walked its listings to the end. Otherwise (it was
        killed, interrupted or failed) the start of the last crawl that did, or the epoch:
        this run then keeps paging past known items down to that time, so it finds what
        the broken crawl never reached.

        A crawl is one run, or the runs of one round of a shared frontier (all its
        workers' runs, `counters.frontier`): it is complete only when all of them are."""
        units: dict[str, list[Any]] = {}
        for run in self.store.latest_runs(spider, run_id):
            if this_round is None or _unit(run) != this_round:
                units.setdefault(_unit(run), []).append(run)
        if not units:
            return None
        crawls = list(units.values())  # newest first, as the runs came
        complete = [all(r.status in COMPLETE for r in crawl) for crawl in crawls]
        if complete[0]:
            return None
        done = next((c for c, ok in zip(crawls, complete, strict=True) if ok), None)
        point = min(r.started_at for r in done) if done else EPOCH
        logger.warning(
            "%s: the previous crawl did not finish (%s): walking the listings back to %s",
            spider,
            ", ".join(sorted({r.status for r in crawls[0]})),
            point.isoformat() if done else "the beginning",
        )
        return point

    @property
    def resume_after(self) -> datetime | None:
        if self.frontier is not None and not self.frontier.seeder:
            return self.frontier.resume_point()  # the round's, decided by its seeder
        return self._resume_after

    def resume_from(self, point: datetime | None) -> None:
        """A watch's rounds (crawler.watch): after a complete round nothing needs repair
        (None); after one that lost pages, the next walks back to `point`."""
        self._resume_after = point

    def repairing(self, oldest_on_page: datetime | None) -> bool:
        """Keep paging in repair mode while the page is newer than the resume point."""
        if self.resume_after is None:
            return False
        return oldest_on_page is None or oldest_on_page >= self.resume_after

    def finish(self, status: str, counters: dict[str, Any]) -> None:
        if self.frontier is not None:
            counters = {**counters, "frontier": self.frontier.ref}
            if (
                status == "failed"
                and not self.frontier.seeder
                and not counters.get("requests")
                and not counters.get("errors")
                and counters.get("close_reason") == "finished"
            ):
                # A worker that found the round's work all taken by the others did its
                # part: a run that fetched nothing fails only when it had to fetch.
                status = "finished"
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
    """The crawler's RunContext (the pipeline, RunRecorder and the spider share it)."""
    return defaults.extension(crawler, RunContext)


def _unit(run: Any) -> str:
    """The crawl a run belongs to: its frontier round, or the run itself."""
    counters = run.counters or {}
    return str(counters.get("frontier") or f"run {run.id}")
