"""`annals watch`: a crawl that does not close, polling its newest list page every interval.

One crawl per spider, kept open with Scrapy's own means: when the spider is idle (its
round of requests is done) the `spider_idle` handler raises DontCloseSpider and, after
ANNALS_WATCH_INTERVAL seconds from the round's start, sends the spider's start requests
again. Each round follows `annals crawl`'s incremental rules (the spider's own
navigator: stop at the first page with nothing new). Why not a loop of crawls: one
crawl keeps its download slots, so the source's DOWNLOAD_DELAY (its documented limit)
and any backoff hold between rounds too, and its store and its one crawl_runs row stay
open; a crawl every 30 s would be 2,880 runs a day per source.

A source with a push channel (crawler.push) is not polled while its channel is live: a
round runs when the spider opens and after every (re)subscription (the catch-up poll,
so nothing pushed while away is lost), and at the interval while the channel is down.

Intervals: ANNALS_WATCH_INTERVAL for every spider, ANNALS_WATCH_INTERVALS for some by
name (`annals watch --interval okx_announcements=10`), never below what the round's list
requests take at the source's documented limit (`PollInterval`: a round of N first list
pages at one request every DOWNLOAD_DELAY seconds cannot repeat sooner than N times
that). `annals watch` resolves them before it starts and says so when one was raised;
the Watch holds to the spider's DOWNLOAD_DELAY whatever it is given.

Commits: a round's records are written when the round ends (and by the pipeline's
ANNALS_WATCH_FLUSH_SECONDS timer within it), a push at once (crawler.push).

Duplicates: a round is a new run for Scrapy's duplicate filter too (RoundDupeFilter,
the watch's DUPEFILTER_CLASS): a list page or an article asked in an earlier round is
asked again, not dropped as a duplicate (which counts as a loss).

The run: one crawl_runs row per spider and watch, its counters growing round by round
(`watch/rounds`, `watch/pushed`, `watch/reconnects`). A watch stopped by SIGTERM/SIGINT
between rounds ends with the status its rounds earned ("finished" when nothing was lost):
nothing was cut. Stopped in the middle of a round, it is "interrupted", as a crawl is,
and the next run walks the listings back (crawler.context).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.dupefilters import RFPDupeFilter
from scrapy.exceptions import DontCloseSpider, NotConfigured

from archive.normalize import utcnow
from crawler.context import run_context
from crawler.extensions import FAILURES

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler

    from crawler.push import PushClient

logger = logging.getLogger(__name__)

# The losses that make a round incomplete: the next round walks back past known items.
_INCOMPLETE = (*FAILURES.values(), "annals/blocked")

round_started = object()  # a signal: a watch round begins (Watch.start_round)


class RoundDupeFilter(RFPDupeFilter):
    """Scrapy's duplicate filter (its fingerprints, its log line), over one watch round:
    what it saw is forgotten when a round starts. It keeps nothing in a JOBDIR (a watch
    resumes from the archive, not from a job directory)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen_this_round: set[bytes] = set()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RoundDupeFilter:
        dupefilter = super().from_crawler(crawler)
        crawler.signals.connect(dupefilter.new_round, signal=round_started)
        return dupefilter

    def request_seen(self, request: Request) -> bool:
        fingerprint = self.fingerprinter.fingerprint(request)
        if fingerprint in self.seen_this_round:
            return True
        self.seen_this_round.add(fingerprint)
        return False

    def new_round(self) -> None:
        self.seen_this_round.clear()


@dataclass(frozen=True)
class PollInterval:
    """A spider's poll interval: what was asked, and what its source's limit allows."""

    asked: float
    requests: int  # the list requests a round begins with
    delay: float  # the spider's DOWNLOAD_DELAY: its source's documented limit

    @property
    def floor(self) -> float:
        return self.requests * self.delay

    @property
    def used(self) -> float:
        return max(self.asked, self.floor)

    def why(self) -> str:
        """Why the interval used is not the one asked; "" when it is."""
        if self.used <= self.asked:
            return ""
        pages = f"{self.requests} list requests" if self.requests != 1 else "1 list request"
        return f"raised from {self.asked:g}s: {pages} a round, at most one every {self.delay:g}s"


def seconds(value: Any, what: str) -> float:
    """An interval given by a user: a number of seconds above 0, else ValueError saying so."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} takes a number of seconds, not {value!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{what} takes a number of seconds above 0, not {value!r}")
    return number


def spider_intervals(
    given: Mapping[str, Any], known: Mapping[str, Any], what: str = "ANNALS_WATCH_INTERVALS"
) -> dict[str, float]:
    """ANNALS_WATCH_INTERVALS checked: every name a known spider, every value seconds;
    ValueError naming what is wrong."""
    unknown = sorted(name for name in given if name not in known)
    if unknown:
        raise ValueError(f"{what}: unknown spider {', '.join(unknown)}; known: {', '.join(known)}")
    return {name: seconds(value, f"{what} {name}") for name, value in given.items()}


def round_requests(spider: Spider) -> int:
    """The requests a round of this spider begins with: its start() (which only builds
    requests from the spider's arguments) drained outside a crawl, at least 1."""

    async def count() -> int:
        return sum([1 async for _ in spider.start()])

    try:
        return max(1, asyncio.run(count()))
    except Exception as exc:  # a start() that needs a running crawl: taken as one request
        logger.debug("%s: its first requests could not be counted: %s", spider.name, exc)
        return 1


class Watch:
    """An extension (EXTENSIONS) switched on by ANNALS_WATCH_INTERVAL > 0."""

    def __init__(self, crawler: Crawler, interval: float) -> None:
        self.crawler = crawler
        name = getattr(crawler.spidercls, "name", None)
        asked = crawler.settings.getdict("ANNALS_WATCH_INTERVALS").get(name, interval)
        # Never faster than the source's limit: its DOWNLOAD_DELAY between two requests.
        self.interval = max(float(asked), crawler.settings.getfloat("DOWNLOAD_DELAY"))
        self.in_round = True  # the first round is the spider's start(), run by Scrapy
        self.feeding = False  # a round's start requests are being scheduled
        self.wanted = False  # a catch-up poll asked for while a round ran
        self.round_started = time.monotonic()
        self.round_started_at = utcnow()
        self.last_complete_at: Any = None
        self._losses: dict[str, int] = {}
        self.timer: asyncio.TimerHandle | None = None
        self._feeder: asyncio.Future[None] | None = None
        self.push: PushClient | None = None
        self.closing = False

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Watch:
        interval = crawler.settings.getfloat("ANNALS_WATCH_INTERVAL")
        if interval <= 0:
            raise NotConfigured("not a watch (ANNALS_WATCH_INTERVAL is 0)")
        watch = cls(crawler, interval)
        crawler.signals.connect(watch.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(watch.spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(watch.spider_closed, signal=signals.spider_closed)
        return watch

    def spider_opened(self, spider: Spider) -> None:
        from crawler.push import push_client

        self._stats("rounds")
        # The first round begins now, not when the crawler was made: the next one is an
        # interval after this one's requests, not after the other crawlers' set-up.
        self.round_started = time.monotonic()
        self.round_started_at = utcnow()
        self._losses = self._loss_counts()
        self.push = push_client(self.crawler, spider, self)
        if self.push is not None:
            self.push.start()

    def spider_idle(self, spider: Spider) -> None:
        if self.closing:
            return  # let it close
        if self.in_round and not self.feeding:
            self.in_round = False
            self._round_done()
        if not self.in_round:
            if self.wanted:
                self.wanted = False
                self.start_round()
            elif self.polled and self.timer is None:
                self._schedule()
        raise DontCloseSpider

    def spider_closed(self, spider: Spider, reason: str) -> None:
        self.closing = True
        if self.timer is not None:
            self.timer.cancel()
        if self.push is not None:
            self.push.stop()

    @property
    def polled(self) -> bool:
        """Polled at the interval: no push channel, or one that is down."""
        return self.push is None or not self.push.live

    def close_reason(self, reason: str) -> str:
        """The reason a run's status is decided by (RunRecorder): a stop between rounds
        cut nothing, so it counts as the end of the watch ("finished")."""
        if reason == "shutdown" and not self.in_round:
            return "finished"
        return reason

    # --- rounds -----------------------------------------------------------------------------

    def catch_up(self) -> None:
        """Poll now (a push channel just (re)subscribed), or right after this round."""
        if self.closing:
            return
        if self.in_round:
            self.wanted = True
        else:
            self.start_round()

    def channel_down(self) -> None:
        """The push channel dropped: poll at the interval until it is back."""
        if not self.closing and not self.in_round and self.timer is None:
            self._schedule()

    def _schedule(self) -> None:
        wait = max(0.0, self.round_started + self.interval - time.monotonic())
        self.timer = asyncio.get_running_loop().call_later(wait, self._on_timer)

    def _on_timer(self) -> None:
        self.timer = None
        if not self.closing and not self.in_round and self.polled:
            self.start_round()

    def start_round(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        engine, spider = self.crawler.engine, self.crawler.spider
        if engine is None or spider is None or self.closing:
            return
        self.in_round = self.feeding = True
        self.round_started = time.monotonic()
        self.round_started_at = utcnow()
        self._losses = self._loss_counts()
        self._stats("rounds")
        new_round = getattr(spider, "new_round", None)
        if new_round is not None:
            new_round()
        self.crawler.signals.send_catch_log(round_started)
        self._feeder = asyncio.ensure_future(self._feed(spider))

    async def _feed(self, spider: Spider) -> None:
        engine = self.crawler.engine
        try:
            async for request in spider.start():
                if engine is None or self.closing:
                    return
                engine.crawl(request)
        except Exception:
            logger.exception("%s: could not start a watch round", spider.name)
        finally:
            self.feeding = False

    def _round_done(self) -> None:
        """A round ended: complete (nothing failed or stayed blocked) means the next one
        repairs nothing; otherwise it walks back to the start of the last complete one."""
        from crawler.pipelines import ArchivePipeline

        pipeline = self.crawler.get_item_pipeline(ArchivePipeline)
        if pipeline is not None:
            pipeline.flush()  # the round's records now, not at the flush timer
        complete = self._loss_counts() == self._losses
        context = run_context(self.crawler)
        if complete:
            self.last_complete_at = self.round_started_at
            context.resume_from(None)
        elif context.resume_after is None:
            context.resume_from(self.last_complete_at or self.round_started_at)
        self.progress()
        spider = self.crawler.spider
        name = spider.name if spider else "?"
        if self.polled:
            logger.info("%s: round done; next poll in %.1fs", name, self.interval)
        else:
            logger.info("%s: round done; the push channel is live", name)

    def progress(self) -> None:
        """Write the run's counters so far on its crawl_runs row (`annals stats` shows a
        watch that is still running); a failed write only waits for the next one."""
        from crawler.extensions import RunRecorder

        recorder = self.crawler.get_extension(RunRecorder)
        context = run_context(self.crawler)
        if recorder is None or context.run_id is None or recorder.recorded:
            return
        try:
            context.store.run_progress(context.run_id, recorder.counters())
        except Exception as exc:  # progress only: the final record says it all
            logger.warning("could not write the watch's counters so far: %s", exc)

    def _loss_counts(self) -> dict[str, int]:
        assert self.crawler.stats is not None
        return {key: int(self.crawler.stats.get_value(key, 0) or 0) for key in _INCOMPLETE}

    def _stats(self, name: str) -> None:
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value(f"annals/watch/{name}")


def watch_of(crawler: Crawler) -> Watch | None:
    return crawler.get_extension(Watch)
