"""Redirects that lose a page on Scrapy's own path, made visible: loops and too many hops.

Scrapy's RedirectMiddleware follows a 301/302 to itself, or around a circle, as a new
request; the scheduler's dupefilter then drops it as a duplicate with a debug line and a
`dupefilter/filtered` stat, and the page is gone without a word. Here a redirect to a URL
of its own chain is stopped before that: logged with the chain, counted
(annals/redirect_loop) and handed to the request's errback as `RedirectLoop`. A chain
longer than REDIRECT_MAX_TIMES is counted as annals/too_many_redirects.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from scrapy.downloadermiddlewares.redirect import RedirectMiddleware as _ScrapyRedirectMiddleware
from scrapy.exceptions import IgnoreRequest

if TYPE_CHECKING:
    from scrapy import Request

logger = logging.getLogger(__name__)


class RedirectLoop(IgnoreRequest):
    """A redirect back to a URL of its own chain: the page cannot be had."""

    def __init__(self, chain: list[str]) -> None:
        super().__init__(f"redirect loop: {' -> '.join(chain)}")
        self.chain = chain


class RedirectMiddleware(_ScrapyRedirectMiddleware):
    """Scrapy's RedirectMiddleware, which also detects loops and counts what it gives up."""

    def _redirect(self, redirected: Request, request: Request, reason: Any) -> Request:
        chain = [*request.meta.get("redirect_urls", []), request.url]
        stats = self.crawler.stats
        assert stats is not None
        if redirected.url in chain:
            chain.append(redirected.url)
            stats.inc_value("annals/redirect_loop")
            logger.warning("redirect loop, not archived: %s", " -> ".join(chain))
            raise RedirectLoop(chain)
        try:
            return super()._redirect(redirected, request, reason)
        except IgnoreRequest:
            stats.inc_value("annals/too_many_redirects")
            logger.warning(
                "more than %d redirects from %s, not archived: %s",
                self.max_redirect_times,
                chain[0],
                " -> ".join([*chain, redirected.url]),
            )
            raise
