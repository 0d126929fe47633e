"""Scrapy's log line of every page and every item, made only when the log level shows it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from scrapy import logformatter

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.logformatter import LogFormatterResult
    from twisted.python.failure import Failure


class LogFormatter(logformatter.LogFormatter):
    """Scrapy's, except that "Crawled (200) ..." and "Scraped from ..." are not made
    at all above LOG_LEVEL DEBUG: Scrapy's handler drops them only after each has built
    its record and walked the stack for its caller, two per page (about 1% of a crawl's
    CPU in bench/crawl)."""

    def __init__(self, debug: bool) -> None:
        self.debug = debug

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> LogFormatter:
        level = crawler.settings.get("LOG_LEVEL", "DEBUG")
        if isinstance(level, str):
            level = logging.getLevelNamesMapping().get(level.upper(), logging.DEBUG)
        return cls(debug=level <= logging.DEBUG)

    # Scrapy documents None as "do not log this" but types these methods without it.
    def crawled(  # type: ignore[override]
        self, request: Request, response: Response, spider: Spider
    ) -> LogFormatterResult | None:
        return super().crawled(request, response, spider) if self.debug else None

    def scraped(  # type: ignore[override]
        self, item: Any, response: Response | Failure | None, spider: Spider
    ) -> LogFormatterResult | None:
        return super().scraped(item, response, spider) if self.debug else None
