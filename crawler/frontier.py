"""A crawl frontier shared through Redis (scrapy-redis): N workers on N machines crawl one
source together, each request fetched once, when ANNALS_REDIS_URL is set.

How a shared crawl goes, per spider:

- Rounds. The workers of one crawl form a *round*: the first worker to start when no
  worker of the spider is alive opens a new round and *seeds* it (runs the spider's
  `start()`); a worker that starts while the round's workers are alive joins it and
  does not seed. A round's requests, duplicate filter and resume point live under
  `annals:{spider}:{round}:*` (ANNALS_FRONTIER_KEY names another first part than
  `annals`, for two archives on one Redis), so the next round (the next cron run) starts afresh,
  and the last worker to leave deletes them.
- Each worker records its own crawl_runs row, tagged with the round (`counters.frontier`).
- Liveness: every worker refreshes its heartbeat in the round's `workers` hash; one
  that has not done so for ANNALS_FRONTIER_TTL seconds (SIGKILL, a lost machine) is
  dead. Requests it had taken from Redis die with it (scrapy-redis pops them), and so
  do the records in its unflushed batch: its run stays "running", and the seeder of
  the next round marks it interrupted and walks the listings back to the last round
  whose workers all ended well (crawler.context), which fetches what was lost.
- Idle: a worker stops once the round's queue has been empty for ANNALS_IDLE_SECONDS
  (checked on Scrapy's 5-second engine heartbeat), so another worker's next listing
  page, due any moment, is not missed.

Requests are pickled into Redis (scrapy-redis' default): callbacks must be spider
methods, and cb_kwargs plain picklable values (the spiders' dataclasses are). Redis
must therefore be private to the crawl machines: whoever can write to it can run
code in the workers.

The Scheduler subclass (crawler.frontier_scheduler, imported only when the frontier is
on: scrapy-redis and redis cost a one-process crawl a tenth of a second of start-up) is a
shim for scrapy-redis 0.9.1 (its latest release) on Scrapy 2.19: it still passes the
`spider` argument to the stats collector, which Scrapy deprecated (scrapy/scrapy#6750),
and calls `Spider.log()`, deprecated by scrapy/scrapy#7739; the same family of breakage
as rmax/scrapy-redis#285 (the `spider` argument removed from `ExecutionEngine.crawl`).
Drop the overrides of `open`, `enqueue_request` and `next_request` once scrapy-redis
follows Scrapy.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import DontCloseSpider, NotConfigured
from scrapy.settings import BaseSettings
from twisted.internet.task import LoopingCall

from crawler import settings as defaults

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

# Open a round when no worker of the spider is alive, else join the current one.
# Returns {round, 1 when this worker opened it (and seeds), 0 when it joined}.
_JOIN = """
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local current = redis.call('GET', KEYS[1])
if current then
  local workers = ARGV[3] .. current .. ':workers'
  local all = redis.call('HGETALL', workers)
  for i = 2, #all, 2 do
    if tonumber(all[i]) > ms then
      redis.call('HSET', workers, ARGV[1], ms + tonumber(ARGV[2]))
      return {current, 0}
    end
  end
end
-- Numbered, and stamped with the time, so a round stays unique should Redis be emptied.
current = redis.call('INCR', KEYS[2]) .. '.' .. ms
redis.call('SET', KEYS[1], current)
redis.call('HSET', ARGV[3] .. current .. ':workers', ARGV[1], ms + tonumber(ARGV[2]))
return {current, 1}
"""
# Leave the round; the last live worker out deletes its keys. Returns live workers left.
_LEAVE = """
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('HDEL', KEYS[1], ARGV[1])
local all = redis.call('HGETALL', KEYS[1])
local live = 0
for i = 2, #all, 2 do
  if tonumber(all[i]) > ms then live = live + 1 end
end
if live == 0 then redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4]) end
return live
"""
# Refresh this worker's heartbeat (on Redis' clock, like _JOIN: the machines' clocks may
# disagree) and keep the round's keys a day past the last heartbeat.
_BEAT = """
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('HSET', KEYS[1], ARGV[1], ms + tonumber(ARGV[2]))
for i = 1, #KEYS do redis.call('EXPIRE', KEYS[i], ARGV[3]) end
return 1
"""
_KEEP_KEYS_S = 86_400  # a round whose workers all died is forgotten after a day
_NO_RESUME = "-"


class Frontier:
    """One worker's membership in a spider's shared crawl: an extension, which
    FrontierAddon lists when ANNALS_REDIS_URL is set (`frontier_for(crawler)`).

    It also keeps a worker whose frontier is empty for a moment from closing: the
    worker stops only after ANNALS_IDLE_SECONDS with nothing to do."""

    def __init__(self, crawler: Crawler, server: Any) -> None:
        settings = crawler.settings
        defaults.check(settings)
        self.crawler = crawler
        self.server = server
        self.ttl_s = settings.getfloat("ANNALS_FRONTIER_TTL")
        self.idle_s = settings.getfloat("ANNALS_IDLE_SECONDS")
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.prefix = settings.get("ANNALS_FRONTIER_KEY")
        self.spider = ""
        self.round = ""
        self.seeder = False
        self._beat: LoopingCall | None = None
        self._resume: datetime | str | None = _NO_RESUME
        self.idle_since: float | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Frontier:
        from scrapy_redis.connection import get_redis_from_settings

        frontier = cls(crawler, get_redis_from_settings(crawler.settings))
        crawler.signals.connect(frontier.spider_idle, signal=signals.spider_idle)
        return frontier

    def key(self, name: str) -> str:
        return f"{self.prefix}:{self.spider}:{self.round}:{name}"

    @property
    def ref(self) -> str:
        """The round, as crawl_runs.counters["frontier"] records it."""
        return f"{self.spider}#{self.round}"

    def join(self, spider: str) -> None:
        self.spider = spider
        ttl_ms = int(self.ttl_s * 1000)
        current, opened = self.server.eval(
            _JOIN,
            2,
            f"{self.prefix}:{spider}:round",
            f"{self.prefix}:{spider}:rounds",
            self.worker,
            ttl_ms,
            f"{self.prefix}:{spider}:",
        )
        self.round = current.decode() if isinstance(current, bytes) else str(current)
        self.seeder = bool(opened)
        logger.info(
            "%s: %s round %s of the shared frontier as %s",
            spider,
            "opened (and seeds)" if self.seeder else "joined",
            self.round,
            self.worker,
        )
        self._beat = LoopingCall(self.heartbeat)
        self._beat.start(max(self.ttl_s / 3, 0.5), now=False)

    def heartbeat(self) -> None:
        """Say this worker is alive; keep the round's keys a while past the last worker."""
        keys = [self.key(n) for n in ("workers", "requests", "dupefilter", "resume")]
        try:
            self.server.eval(
                _BEAT, len(keys), *keys, self.worker, int(self.ttl_s * 1000), _KEEP_KEYS_S
            )
        except Exception as exc:  # Redis away for a moment: the next beat tries again
            logger.warning("frontier heartbeat failed: %s", exc)

    def leave(self) -> None:
        if self._beat is not None and self._beat.running:
            self._beat.stop()
        keys = [self.key(n) for n in ("workers", "requests", "dupefilter", "resume")]
        left = self.server.eval(_LEAVE, 4, *keys, self.worker)
        logger.info(
            "%s: left round %s (%s)",
            self.spider,
            self.round,
            f"{left} workers still in it" if left else "the last one: its keys are deleted",
        )

    def pending(self) -> int:
        return int(self.server.llen(self.key("requests")))

    # --- the round's resume point (crawler.context decides it, the seeder publishes it) ------

    def publish_resume(self, point: datetime | None) -> None:
        self.server.set(self.key("resume"), point.isoformat() if point else "", ex=_KEEP_KEYS_S)
        self._resume = point

    def resume_point(self) -> datetime | None:
        if isinstance(self._resume, str):
            value = self.server.get(self.key("resume"))
            if value is None:
                return None  # not published yet; asked again next time
            text = value.decode() if isinstance(value, bytes) else str(value)
            self._resume = datetime.fromisoformat(text) if text else None
        return self._resume

    def spider_idle(self, spider: Spider) -> None:
        if self.crawler.settings.getfloat("ANNALS_WATCH_INTERVAL") > 0:
            return  # a watch is never done: crawler.watch keeps it open between rounds
        now = time.monotonic()
        if self.pending():
            self.idle_since = None
            raise DontCloseSpider
        if self.idle_since is None:
            self.idle_since = now
        if now - self.idle_since < self.idle_s:
            raise DontCloseSpider
        logger.info("%s: the frontier was empty for %.0fs: done", spider.name, self.idle_s)


def frontier_for(crawler: Crawler) -> Frontier | None:
    """The crawler's Frontier when ANNALS_REDIS_URL is set, else None."""
    return crawler.get_extension(Frontier)


class FrontierAddon:
    """Switches the shared frontier on when ANNALS_REDIS_URL is set (`-s` or environment):
    scrapy-redis' scheduler and duplicate filter, seeding by one worker, idle handling."""

    def update_settings(self, settings: BaseSettings) -> None:
        url = settings.get("ANNALS_REDIS_URL")
        if not url:
            raise NotConfigured  # one process, its own frontier
        settings.set("SCHEDULER", "crawler.frontier_scheduler.FrontierScheduler", "addon")
        settings.set("DUPEFILTER_CLASS", "scrapy_redis.dupefilter.RFPDupeFilter", "addon")
        settings.set("REDIS_URL", url, priority="addon")
        # Each worker's close must not clear what the others still use: the last one
        # out deletes the round's keys (Frontier.leave).
        settings.set("SCHEDULER_PERSIST", True, priority="addon")
        # Last in, first out, as Scrapy's own scheduler: a listing's next page (yielded
        # after its items) is taken first, so the listing walk keeps ahead of the workers
        # and the frontier stays full. (scrapy-redis' default, a priority queue, hands out
        # same-priority requests in no useful order: the walk lagged and workers idled.)
        settings.set("SCHEDULER_QUEUE_CLASS", "scrapy_redis.queue.LifoQueue", priority="addon")
        # A worker takes from the frontier only what it can download at once: more would
        # sit in its own downloader queue (politeness delays) while other workers idle.
        # (A `-s CONCURRENT_REQUESTS=...` still wins: it has the higher priority.)
        per_domain = settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN")
        settings.set("CONCURRENT_REQUESTS", per_domain, priority="spider")
        settings["SPIDER_MIDDLEWARES"]["crawler.frontier.SeedOnce"] = 10
        settings["EXTENSIONS"]["crawler.frontier.Frontier"] = 0


class SeedOnce:
    """Only the worker that opened the round runs the spider's start(): the others take
    their work from the frontier. (The duplicate filter alone would not do: the API
    spiders' list requests are dont_filter, one URL being asked once per language.)"""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SeedOnce:
        return cls(crawler)

    async def process_start(self, start: AsyncIterator[Any]) -> AsyncIterator[Any]:
        frontier = frontier_for(self.crawler)
        if frontier is None or frontier.seeder:
            async for item_or_request in start:
                yield item_or_request
