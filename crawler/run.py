"""The archive as one crawl sees it: its store, its crawl_runs row, what is already known.

One RunContext per crawler, shared by the pipeline (writes), the extension (run
record) and the spider (incremental decisions).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from archive.db import open_archive, resolve_url
from archive.normalize import utcnow
from archive.records import Identity
from archive.store import Known, Store

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

STATUSES = ("running", "finished", "partial", "blocked", "failed", "interrupted")


class RunContext:
    def __init__(self, url: str, recheck_days: float) -> None:
        self.url = url
        self.recheck = timedelta(days=recheck_days)
        self._store: Store | None = None
        self.run_id: int | None = None
        self.status: str | None = None
        self.counters: dict[str, Any] = {}

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(open_archive(self.url, create=True))
        return self._store

    def start(self, spider: str) -> int:
        if self.run_id is None:
            self.run_id = self.store.start_run(spider)
        return self.run_id

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
        context = RunContext(url, crawler.settings.getfloat("ANNALS_RECHECK_DAYS", 3.0))
        crawler.annals_run = context  # type: ignore[attr-defined]
    return context
