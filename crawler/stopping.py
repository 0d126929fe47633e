"""Stopping a crawl on SIGINT/SIGTERM: promptly, and recorded as "interrupted".

Scrapy's own handling waits for every request it has started, however long the
host hangs or a Retry-After pause lasts, and a second signal kills the crawl before
its run is recorded. `annals crawl` uses this instead:

1. the first signal: no request is sent any more (`StopMiddleware`), the requests
   waiting in the download queues are dropped (counted as annals/unsent), and Scrapy
   closes the spider as usual (the pipeline writes its batch, the run is recorded);
2. after ANNALS_STOP_GRACE seconds, or at a second signal: whatever is still
   downloading is abandoned; the pipeline's batch is written and the run recorded
   "interrupted" here, then the reactor stops.

The next run repairs what an interrupted one left out (crawler.context).
"""

from __future__ import annotations

import contextlib
import logging
import signal
from typing import TYPE_CHECKING, Any

from scrapy.exceptions import IgnoreRequest
from scrapy.utils.asyncio import call_later
from scrapy.utils.defer import deferred_from_coro
from scrapy.utils.ossignal import install_shutdown_handlers, signal_names
from twisted.python.failure import Failure

if TYPE_CHECKING:
    from types import FrameType

    from scrapy import Request, Spider
    from scrapy.crawler import AsyncCrawlerProcess, Crawler

logger = logging.getLogger(__name__)


class Stopped(IgnoreRequest):
    """A request not sent because the crawl is stopping; the next run fetches it."""


class StopMiddleware:
    """The gate every request passes before the network, closed once the crawl stops."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.stopping = False

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> StopMiddleware:
        return cls(crawler)

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        if self.stopping:
            raise Stopped(f"not sent, the crawl is stopping: {request.url}")

    def stop(self) -> None:
        """Send nothing more: what waits in the download slots' queues is dropped."""
        self.stopping = True
        engine = self.crawler.engine
        if engine is None:
            return
        dropped = 0
        for slot in engine.downloader.slots.values():
            slot.close()  # its delay or backoff timer: nothing is taken from the queue
            while slot.queue:
                request, waiting = slot.queue.popleft()
                waiting.errback(Failure(Stopped(f"not sent, the crawl is stopping: {request.url}")))
                dropped += 1
        if dropped and self.crawler.stats is not None:
            self.crawler.stats.inc_value("annals/unsent", dropped)

    def force(self) -> None:
        """Stop without waiting for the downloads: write the pipeline's batch and record
        the run, as closing the spider would."""
        from crawler.extensions import RunRecorder
        from crawler.pipelines import ArchivePipeline

        if self.crawler.engine is None:
            return
        pipeline = self.crawler.get_item_pipeline(ArchivePipeline)
        if pipeline is not None:
            pipeline.flush()
        recorder = self.crawler.get_extension(RunRecorder)
        if recorder is not None:
            recorder.record("shutdown")


class SignalStop:
    """SIGINT/SIGTERM handling for a process running crawlers (`annals crawl`)."""

    def __init__(self, process: AsyncCrawlerProcess, crawlers: list[Crawler], grace: float):
        self.process = process
        self.crawlers = crawlers
        self.grace = grace
        self.received = 0

    def install(self) -> None:
        install_shutdown_handlers(self._on_signal)

    def uninstall(self) -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # A signal handler must not log or touch the crawl: hand over to the reactor.
        self.received += 1
        step = self._stop if self.received == 1 else self._force
        _reactor().callFromThread(step, signum)

    def _middlewares(self) -> list[StopMiddleware]:
        found = []
        for crawler in self.crawlers:
            with contextlib.suppress(RuntimeError):  # a crawler whose engine never started
                middleware = crawler.get_downloader_middleware(StopMiddleware)
                if middleware is not None:
                    found.append(middleware)
        return found

    def _stop(self, signum: int) -> None:
        logger.warning(
            "received %s: stopping. No new request; what is downloading has %.0fs to"
            " arrive; what was fetched is archived. Send it again to stop at once.",
            signal_names.get(signum, signum),
            self.grace,
        )
        for middleware in self._middlewares():
            middleware.stop()
        deferred_from_coro(self.process.stop())  # Scrapy closes the spiders ("shutdown")
        call_later(self.grace, self._force, None)

    def _force(self, signum: int | None, *_: Any) -> None:
        reactor = _reactor()
        if not reactor.running:
            return
        if signum is None:
            logger.warning("still downloading after %.0fs: stopping now", self.grace)
        else:
            logger.warning("received %s again: stopping now", signal_names.get(signum, signum))
        for middleware in self._middlewares():
            middleware.force()
        with contextlib.suppress(RuntimeError):  # already stopping
            reactor.stop()


def _reactor() -> Any:
    """The running Twisted reactor (AsyncCrawlerProcess installed it)."""
    from twisted.internet import reactor

    return reactor
