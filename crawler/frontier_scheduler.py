"""scrapy-redis' Scheduler for a shared frontier (crawler.frontier): its own module, so a
crawl without ANNALS_REDIS_URL never imports scrapy-redis and redis (FrontierAddon names
this class only when the frontier is on)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from scrapy_redis.dupefilter import RFPDupeFilter
from scrapy_redis.scheduler import Scheduler

from crawler.frontier import frontier_for

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)


class FrontierScheduler(Scheduler):
    """scrapy-redis' Scheduler with round-scoped keys (see the module docstring for the
    Scrapy 2.19 shim)."""

    crawler: Crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> FrontierScheduler:
        instance = super().from_crawler(crawler)
        instance.crawler = crawler
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
