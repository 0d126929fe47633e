"""scrapy-redis' Scheduler for a shared frontier (crawler.frontier): its own module, so a
crawl without ANNALS_REDIS_URL never imports scrapy-redis and redis (FrontierAddon names
this class only when the frontier is on).

Its duplicate filter is always scrapy-redis' own, in the round's Redis set, whatever
DUPEFILTER_CLASS says: `annals watch` names its RoundDupeFilter there (crawler.watch),
which scrapy-redis cannot build. In a watch, every watch round forgets the fingerprints
of the rounds before, as RoundDupeFilter does without the frontier: a list page or an
article asked in an earlier round is asked again (not dropped as a duplicate), and the
set holds one round's fingerprints, not the whole watch's."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from scrapy.settings import BaseSettings
from scrapy_redis.dupefilter import RFPDupeFilter
from scrapy_redis.scheduler import Scheduler

from crawler.frontier import frontier_for
from crawler.watch import round_started

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

_DUPEFILTER = f"{RFPDupeFilter.__module__}.{RFPDupeFilter.__qualname__}"


class FrontierScheduler(Scheduler):
    """scrapy-redis' Scheduler with round-scoped keys (see the module docstring for the
    Scrapy 2.19 shim)."""

    crawler: Crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> FrontierScheduler:
        # The crawler's settings (frozen) but for the duplicate filter, for scrapy-redis'
        # constructor only.
        settings = BaseSettings(crawler.settings)
        settings.set("DUPEFILTER_CLASS", _DUPEFILTER, priority="cmdline")
        instance = cls.from_settings(settings)
        instance.stats = crawler.stats
        instance.crawler = crawler
        crawler.signals.connect(instance.new_round, signal=round_started)
        return instance

    def open(self, spider: Spider) -> None:
        frontier = frontier_for(self.crawler)
        assert frontier is not None
        frontier.join(spider.name)
        self.frontier = frontier
        self.spider = spider
        self.queue = self._queue(spider, frontier.key("requests"))
        self.df = RFPDupeFilter(
            self.server,
            key=frontier.key("dupefilter"),
            debug=self.crawler.settings.getbool("DUPEFILTER_DEBUG"),
        )
        if len(self.queue):
            logger.info("%s: %d requests waiting in the frontier", spider.name, len(self.queue))

    def _queue(self, spider: Spider, key: str) -> Any:
        from scrapy.utils.misc import load_object

        return load_object(self.queue_cls)(
            server=self.server, spider=spider, key=key, serializer=self.serializer
        )

    def new_round(self) -> None:
        """A watch round begins (crawler.watch): the round's fingerprints so far go."""
        self.df.clear()

    def close(self, reason: str) -> None:
        self.frontier.leave()

    def enqueue_request(self, request: Request) -> bool:
        if not request.dont_filter and self.df.request_seen(request):
            self.df.log(request, self.spider)
            return False
        if self.stats:
            self.stats.inc_value("scheduler/enqueued/redis")
        self.queue.push(request)
        return True

    def next_request(self) -> Request | None:
        request: Request | None = self.queue.pop(self.idle_before_close)
        if request is not None:
            self.frontier.idle_since = None
            if self.stats:
                self.stats.inc_value("scheduler/dequeued/redis")
        return request
