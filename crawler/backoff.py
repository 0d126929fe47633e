"""Backing off a host: one wait formula, and the pause of every request to that host.

A 429, a 503, a block or a rate-limit envelope says "slow down" about the host, not
about one URL. So the wait holds Scrapy's download slot of the host (the one
AutoThrottle tunes), and nothing queued for it goes out until the wait is over; then
one request goes first (the retry, when it is queued) and the others follow only
after an answer that is not a block, at the slot's own delay and concurrency.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from time import monotonic
from typing import TYPE_CHECKING

from scrapy import signals
from scrapy.utils.asyncio import CallLaterResult, call_later

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


@dataclass
class _Pause:
    until: float
    concurrency: int  # the slot's own, given back after the pause
    timer: CallLaterResult | None = None


class HostBackoff:
    """The pauses of one crawl's download slots (ANNALS_MAX_RETRY_AFTER caps each).

    A pause holds the slot's queue (Scrapy's own `slot.latercall` mechanism, the one
    DOWNLOAD_DELAY uses) and keeps the slot alive meanwhile (`lastseen`). When it is
    over, the slot sends one request at a time until an answer is not a block: a host
    that still refuses sees one request per wait, never the whole queue.
    """

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        self.crawler = crawler
        self.cap = settings.getfloat("ANNALS_MAX_RETRY_AFTER", 600.0)
        self.base = settings.getfloat("ANNALS_BLOCK_BACKOFF", 5.0)
        self.http_codes = {int(code) for code in settings.getlist("ANNALS_BACKOFF_HTTP_CODES")}
        self._pauses: dict[str, _Pause] = {}

    def wait(self, kind: str, headers: dict[str, str], attempt: int) -> float:
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

    def response_downloaded(self, response: Response, request: Request, spider: Spider) -> None:
        """Every answer, as it arrives and before the slot sends the next request: a
        block or a "come back later" pauses the host at once, so nothing slips out."""
        headers = headers_of(response)
        kind = classify(response.status, headers, response.body)
        if kind is None and response.status in self.http_codes:
            kind, key = "unavailable", "retry_times"  # retried by Scrapy's RetryMiddleware
        else:
            key = "annals_block_retries"  # retried by BlockMiddleware
        if kind is None:
            self.answered(request)
            return
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
        pause = self._pauses.get(key)
        if pause is not None and pause.until >= until:
            return  # already held as long
        logger.info("%s: %s; pausing every request to this host for %.1fs", key, why, seconds)
        if pause is None:
            pause = self._pauses[key] = _Pause(until, slot.concurrency)
        pause.until = until
        if slot.latercall is not None:
            slot.latercall.cancel()
        slot.latercall = pause.timer = call_later(seconds, self._resume, key, slot, downloader)
        slot.lastseen = until  # the slot is not idle (Scrapy drops idle slots after 60 s)
        slot.concurrency = 1
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value("annals/backoff/pauses")
        self.crawler.stats.max_value("annals/backoff/longest_pause", round(seconds, 1))

    def answered(self, request: Request) -> None:
        """An answer that is not a block: after its pause, the host gets its pace back."""
        key = request.meta.get("download_slot")
        pause = self._pauses.get(key) if key else None
        if pause is None or monotonic() < pause.until:
            return
        found = self._slot(request)
        del self._pauses[key]
        if found is not None:
            found[1].concurrency = pause.concurrency
            found[2]._process_queue(found[1])  # noqa: SLF001 - start what the pause held
        logger.info("%s answers again; resuming at the usual rate", key)

    def _resume(self, key: str, slot: Slot, downloader: Downloader) -> None:
        # The retry goes first: it is the request the host asked to wait.
        first = [entry for entry in slot.queue if _is_retry(entry[0])]
        if first:
            rest = [entry for entry in slot.queue if not _is_retry(entry[0])]
            slot.queue.clear()
            slot.queue.extend(first + rest)
        downloader._latercall(slot)  # noqa: SLF001 - what Scrapy's own delay timer calls

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
    """The crawler's HostBackoff, made on first use (BlockMiddleware and the spiders
    that read rate-limit envelopes share it)."""
    backoff = getattr(crawler, "annals_backoff", None)
    if backoff is None:
        backoff = HostBackoff(crawler)
        crawler.signals.connect(backoff.response_downloaded, signal=signals.response_downloaded)
        crawler.annals_backoff = backoff  # type: ignore[attr-defined]
    return backoff
