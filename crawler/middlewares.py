"""Downloader middlewares: blocks and challenges are retried with backoff and never parsed;
robots.txt is checked for every request."""

from __future__ import annotations

import asyncio
import logging
import random
from typing import TYPE_CHECKING

from scrapy.downloadermiddlewares.robotstxt import (
    RobotsTxtMiddleware as _ScrapyRobotsTxtMiddleware,
)
from scrapy.exceptions import IgnoreRequest
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred

from crawler.blocks import classify, retry_after

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

    Each is counted (annals/blocked/<kind>), retried up to ANNALS_BLOCK_RETRIES times
    after a jittered exponential backoff or the answer's Retry-After, then given up
    as `Blocked` (annals/blocked). A run with any request given up ends "blocked".
    """

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        self.crawler = crawler
        self.retries = settings.getint("ANNALS_BLOCK_RETRIES", 2)
        self.backoff = settings.getfloat("ANNALS_BLOCK_BACKOFF", 5.0)
        self.max_wait = settings.getfloat("ANNALS_MAX_RETRY_AFTER", 600.0)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> BlockMiddleware:
        return cls(crawler)

    async def process_response(self, request: Request, response: Response) -> Request | Response:
        headers = _headers(response)
        kind = classify(response.status, headers, response.body)
        if kind is None:
            return response
        stats = self.crawler.stats
        assert stats is not None
        stats.inc_value(f"annals/blocked/{kind}")
        attempt = int(request.meta.get("annals_block_retries", 0))
        if attempt >= self.retries:
            stats.inc_value("annals/blocked")
            logger.warning(
                "blocked (%s, HTTP %d) at %s after %d retries: not parsed, not archived",
                kind,
                response.status,
                request.url,
                attempt,
            )
            raise Blocked(kind, request.url)
        wait = self.wait(kind, headers, attempt)
        logger.info(
            "blocked (%s, HTTP %d) at %s; retrying in %.1fs",
            kind,
            response.status,
            request.url,
            wait,
        )
        await asyncio.sleep(wait)
        meta = {**request.meta, "annals_block_retries": attempt + 1}
        return request.replace(dont_filter=True, meta=meta)

    def wait(self, kind: str, headers: dict[str, str], attempt: int) -> float:
        """Seconds before retry `attempt + 1`: the answer's Retry-After, else a jittered
        exponential backoff; never less than the spider's documented wait for the kind."""
        wait = retry_after(headers.get("retry-after"), self.max_wait)
        if wait is None:
            jitter = random.uniform(0.75, 1.25)  # noqa: S311 - not a secret
            wait = min(self.backoff * 2**attempt, self.max_wait) * jitter
        floor = getattr(self.crawler.spider, "block_waits", {}).get(kind, 0.0)
        return max(wait, min(floor, self.max_wait))


def _headers(response: Response) -> dict[str, str]:
    return {
        key.decode("latin-1").lower(): b", ".join(values).decode("latin-1")
        for key, values in response.headers.items()
    }


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
