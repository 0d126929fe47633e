"""Downloader middlewares: blocks and challenges are retried after the host's backoff and
never parsed; robots.txt is checked for every request."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from scrapy.downloadermiddlewares.robotstxt import (
    RobotsTxtMiddleware as _ScrapyRobotsTxtMiddleware,
)
from scrapy.exceptions import IgnoreRequest
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred

from crawler.backoff import host_backoff

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.robotstxt import RobotParser

logger = logging.getLogger(__name__)


class Blocked(IgnoreRequest):
    """The source kept answering with a block or challenge page; errbacks see this."""

    def __init__(self, kind: str, url: str) -> None:
        super().__init__(f"blocked ({kind}) at {url}")
        self.kind = kind
        self.url = url


class BlockMiddleware:
    """Akamai 403s, EdgeOne 567s, JS-challenge pages and 429s never reach a callback.

    Each is counted (annals/blocked/<kind>) and retried up to ANNALS_BLOCK_RETRIES
    times, then given up as `Blocked` (annals/blocked). A run with any request given
    up ends "blocked". The wait before a retry is the host's (crawler.backoff): the
    retry is queued at once and goes out first when the host's pause is over.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.backoff = host_backoff(crawler)  # it pauses the host as each answer arrives

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> BlockMiddleware:
        return cls(crawler)

    def process_response(self, request: Request, response: Response) -> Request | Response:
        kind = self.backoff.kind(response, request)
        if kind is None:
            return response
        stats = self.crawler.stats
        assert stats is not None
        stats.inc_value(f"annals/blocked/{kind}")
        attempt = int(request.meta.get("annals_block_retries", 0))
        retry = self.backoff.retry(request, "annals_block_retries")
        if retry is None:
            logger.warning(
                "blocked (%s, HTTP %d) at %s after %d retries: not parsed, not archived",
                kind,
                response.status,
                request.url,
                attempt,
            )
            raise Blocked(kind, request.url)
        logger.info(
            "blocked (%s, HTTP %d) at %s; retrying when the host's pause is over",
            kind,
            response.status,
            request.url,
        )
        return retry


class RobotsTxtMiddleware(_ScrapyRobotsTxtMiddleware):
    """Scrapy's robots.txt middleware, with every waiting request checked.

    Since scrapy/scrapy#6802 (async robot_parser), requests that wait for the same
    robots.txt await one Deferred through asyncio futures; Twisted's adapter gives the
    parser to the first waiter only and None to the others, which then skip the check.
    With several start requests to one host, all but one went out unchecked. Once the
    Deferred has fired, the parser is in `_parsers`: take it from there.
    """

    async def robot_parser(self, request: Request) -> RobotParser | None:
        parser = await super().robot_parser(request)
        if parser is None:
            cached = self._parsers.get(urlparse_cached(request).netloc)
            if cached is not None and not isinstance(cached, Deferred):
                return cached
        return parser
