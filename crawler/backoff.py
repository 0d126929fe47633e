"""Backing off a host: one wait formula, and the pause of every request to that host.

A 429, a 503, a block or a rate-limit envelope says "slow down" about the host, not
about one URL. So the wait holds Scrapy's download slot of the host (the one
AutoThrottle tunes), and nothing queued for it goes out until the wait is over; then
the retry goes first and the others follow at the slot's own delay (DOWNLOAD_DELAY,
as AutoThrottle set it), which the pause leaves as it was.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from time import monotonic
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

from scrapy import signals
from scrapy.utils.asyncio import call_later

from crawler import settings as defaults
from crawler.blocks import classify, headers_of, retry_after

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.core.downloader import Downloader, Slot
    from scrapy.crawler import Crawler
    from scrapy.http import Response

logger = logging.getLogger(__name__)

# Request meta keys that mark a request as a retry of a blocked or refused one.
RETRY_KEYS = ("annals_block_retries", "annals_envelope_retries", "retry_times")


def backoff_wait(
    attempt: int,
    *,
    base: float,
    cap: float,
    asked: float | None = None,
    floor: float = 0.0,
) -> float:
    """Seconds before retry `attempt + 1`: what the answer `asked` (its Retry-After),
    else `base * 2**attempt` jittered by +-25%; never less than the source's documented
    `floor` for this kind of block, never more than `cap`."""
    if asked is None:
        jitter = random.uniform(0.75, 1.25)  # noqa: S311 - not a secret
        wait = min(base * 2**attempt, cap) * jitter
    else:
        wait = asked
    return min(max(wait, floor), cap)


class HostBackoff:
    """The pauses of one crawl's download slots (ANNALS_MAX_RETRY_AFTER caps each): an
    extension, which BlockMiddleware and the spiders that read rate-limit envelopes
    reach with `host_backoff(crawler)`.

    A pause holds the slot's queue (Scrapy's own `slot.latercall` mechanism, the one
    DOWNLOAD_DELAY uses) and keeps the slot alive meanwhile (`lastseen`). It acts on
    `response_downloaded`, which Scrapy sends before the slot picks its next request,
    so that nothing else leaves between the refusal and the pause.
    """

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        defaults.check(settings)
        self.crawler = crawler
        self.cap = settings.getfloat("ANNALS_MAX_RETRY_AFTER")
        self.base = settings.getfloat("ANNALS_BLOCK_BACKOFF")
        self.retries = settings.getint("ANNALS_BLOCK_RETRIES")
        self.priority_adjust = settings.getint("RETRY_PRIORITY_ADJUST")
        self.http_codes = {int(code) for code in settings.getlist("ANNALS_BACKOFF_HTTP_CODES")}
        self._until: dict[str, float] = {}  # slot key: when its pause ends (monotonic)
        self._kinds: WeakKeyDictionary[Response, str | None] = WeakKeyDictionary()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> HostBackoff:
        backoff = cls(crawler)
        crawler.signals.connect(backoff.response_downloaded, signal=signals.response_downloaded)
        return backoff

    def kind(self, response: Response, request: Request) -> str | None:
        """crawler.blocks.classify of an answer to `request`, worked out once: the pause
        here and BlockMiddleware both ask it of every answer."""
        if response in self._kinds:
            return self._kinds[response]
        kind = self._kinds[response] = classify(
            response.status, headers_of(response), response.body, self._signs(request)
        )
        return kind

    def _signs(self, request: Request) -> frozenset[str]:
        """The spider's throttle signs (Facts.throttle_signs) that hold for `request`: a
        redirect is one only where the spider would not follow it (its own requests; a
        robots.txt that redirects is followed as Scrapy does)."""
        signs: frozenset[str] = getattr(self.crawler.spider, "throttle_signs", frozenset())
        if "redirect" in signs and not request.meta.get("dont_redirect"):
            return signs - {"redirect"}
        return signs

    def wait(self, kind: str, headers: Mapping[str, str], attempt: int) -> float:
        """Seconds before retry `attempt + 1` of an answer of this kind: its Retry-After,
        else the backoff; at least the spider's documented wait for the kind."""
        floor = getattr(self.crawler.spider, "block_waits", {}).get(kind, 0.0)
        asked = retry_after(headers.get("retry-after"), float("inf"))
        if asked is not None and asked > self.cap:
            logger.warning(
                "Retry-After asks for %.0fs; waiting ANNALS_MAX_RETRY_AFTER=%.0fs instead",
                asked,
                self.cap,
            )
        return backoff_wait(attempt, base=self.base, cap=self.cap, asked=asked, floor=floor)

    def retry(self, request: Request, key: str) -> Request | None:
        """The next try of a request its host refused (a block, a rate-limit envelope),
        which goes first once the host's pause is over; None when it was already retried
        ANNALS_BLOCK_RETRIES times (request.meta[key] counts them), counted as
        annals/blocked: the run ends "blocked"."""
        attempt = int(request.meta.get(key, 0))
        if attempt >= self.retries:
            assert self.crawler.stats is not None
            self.crawler.stats.inc_value("annals/blocked")
            return None
        # download_latency is the answer's, which Scrapy writes into the request's meta: the
        # new try measures its own (and a spider yielding it would look to Scrapy's
        # MetaCopyDetectionMiddleware like a request made from response.meta).
        meta = {k: v for k, v in request.meta.items() if k != "download_latency"}
        return request.replace(
            dont_filter=True,
            meta={**meta, key: attempt + 1},
            priority=request.priority + self.priority_adjust,
        )

    def response_downloaded(self, response: Response, request: Request, spider: Spider) -> None:
        """Every answer, as it arrives and before the slot sends the next request: a
        block or a "come back later" pauses the host at once, so nothing slips out."""
        kind = self.kind(response, request)
        if kind is None and response.status in self.http_codes:
            kind, key = "unavailable", "retry_times"  # retried by Scrapy's RetryMiddleware
        else:
            key = "annals_block_retries"  # retried by BlockMiddleware
        if kind is None:
            return
        headers = headers_of(response)
        asked = headers.get("retry-after")
        why = f"HTTP {response.status} ({kind}{', Retry-After ' + asked if asked else ''})"
        self.pause(request, self.wait(kind, headers, int(request.meta.get(key, 0))), why)

    def pause(self, request: Request, seconds: float, why: str) -> None:
        """Hold every request to the host of `request` for `seconds` (capped)."""
        found = self._slot(request)
        if found is None:
            return
        key, slot, downloader = found
        seconds = min(seconds, self.cap)
        until = monotonic() + seconds
        if self._until.get(key, 0.0) >= until:
            return  # already held as long
        logger.info("%s: %s; pausing every request to this host for %.1fs", key, why, seconds)
        self._until[key] = until
        if slot.latercall is not None:
            slot.latercall.cancel()  # the delay timer, or a shorter pause
        slot.latercall = call_later(seconds, self._resume, key, slot, downloader)
        # The slot is not idle (Scrapy drops slots idle for 60 s), and after the pause
        # its first request waits the slot's delay like any other.
        slot.lastseen = until
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value("annals/backoff/pauses")
        self.crawler.stats.max_value("annals/backoff/longest_pause", round(seconds, 1))

    def _resume(self, key: str, slot: Slot, downloader: Downloader) -> None:
        self._until.pop(key, None)
        # The retry goes first: it is the request the host asked to wait. If the host
        # still refuses, its answer pauses the slot again before the next one leaves.
        first = [entry for entry in slot.queue if _is_retry(entry[0])]
        if first:
            rest = [entry for entry in slot.queue if not _is_retry(entry[0])]
            slot.queue.clear()
            slot.queue.extend(first + rest)
        downloader._latercall(slot)

    def _slot(self, request: Request) -> tuple[str, Slot, Downloader] | None:
        engine = self.crawler.engine
        key = request.meta.get("download_slot")
        if engine is None or key is None:
            return None
        slot = engine.downloader.slots.get(key)
        return (key, slot, engine.downloader) if slot is not None else None


def _is_retry(request: Request) -> bool:
    return any(request.meta.get(key) for key in RETRY_KEYS)


def host_backoff(crawler: Crawler) -> HostBackoff:
    """The crawler's HostBackoff (BlockMiddleware and the spiders that read rate-limit
    envelopes pause hosts with it)."""
    return defaults.extension(crawler, HostBackoff)
