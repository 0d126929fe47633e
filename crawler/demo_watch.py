"""`annals demo --watch`: the bundled mirrors served live, `annals watch --all` against them,
and a publisher that puts new announcements on a push channel and on a polled list page.

One process serves every source's recorded pages and the push channels the project's
mirror speaks (Gate's, Deribit's, and Binance's and Upbit's, keyed with keys made up for
the demo and given to the watch only: crawler.mirror_push) on one 127.0.0.1 port;
`annals watch --all` runs as its own process against it, as a user would start it, into
the demo archive. Every few seconds the publisher makes up an announcement for each of its
feeds (`FEEDS`): Deribit's is pushed on the `announcements` channel and put on top of
Deribit's first list page (where a catch-up poll finds what a push missed), OKX's is
put on top of OKX's first list page, which the watch polls. A list page changes whole:
its route (`LivePage`) is replaced by one assignment of new bytes, so a request gets
the old page or the new one, never half of one.

Each announcement's arrival is when a reader of the archive first sees its row (the
archive is read every few milliseconds, as a user's program would): one line per
arrival with the lag from publication to commit. The items are made up (random
tickers, ids from the clock), in the shapes of the sources' recorded pages, so a
second demo adds new documents and no version of the recorded ones.

Stopping: Ctrl-C or SIGTERM, or `--seconds N` after publishing for N seconds and
waiting for what was published. The watch is sent one SIGTERM (it stops within seconds,
everything received committed); it runs in its own session, so a terminal's Ctrl-C
reaches only the demo, which passes it on once. What was published and never arrived
is listed and makes the demo exit 1.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import signal
import string
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import sqlalchemy as sa

from archive import db as dbmod
from archive.store import documents
from crawler.mirror import Mirror, MirrorServer, Route
from crawler.mirror_push import BinanceChannel, DeribitChannel, GateChannel, UpbitChannel
from crawler.push import CHANNELS, BinancePush, UpbitPush
from crawler.sources import deribit, okx
from crawler.sources.contract import Source

PUBLISH_EVERY = 3.0  # seconds between two announcements of a feed
POLL_EVERY = 2.0  # the polled feed's interval (`--interval SPIDER=SECONDS`)
OTHERS_EVERY = 30.0  # every other source's: the recorded pages do not change
# A published item not archived this long after its feed's interval is lost.
GRACE = 10.0
READY_TIMEOUT = 180.0  # for the watch's first round over every mirror
READ_EVERY = 0.005  # how often the archive is read for arrivals


@dataclass
class LivePage(Route):
    """A route that answers one request exactly (its query, all of it) with `content`,
    which the publisher replaces while the mirror serves it."""

    def matches(self, method: str, path: str, query: dict[str, str], body: dict[str, Any]) -> bool:
        return method == self.method and path == self.path and query == (self.query or {})


@dataclass(frozen=True)
class Feed:
    """A source the demo publishes on: where its first list page keeps the items, and
    how one of its items looks."""

    facts: Source
    items: tuple[str | int, ...]  # the path to the item list in the first list page
    item: Callable[[int, str, str], dict[str, Any]]  # (ms, ticker, title) -> a list item
    title: str  # a title with {ticker}
    pushed: bool  # also pushed on the source's channel

    @property
    def spider(self) -> str:
        return self.facts.spider


def _deribit_item(ms: int, ticker: str, title: str) -> dict[str, Any]:
    return {
        "id": ms,
        "title": title,
        "body": f"<p>{title}. This announcement is made up by annals demo --watch.</p>",
        "publication_timestamp": ms,
        "important": False,
        "confirmation": False,
    }


def _okx_item(ms: int, ticker: str, title: str) -> dict[str, Any]:
    slug = f"demo-okx-to-list-{ticker.lower()}-for-spot-trading-{ms}"
    return {
        "annType": "announcements-new-listings",
        "title": title,
        "url": okx.SOURCE.article_url.format(slug=slug),
        "pTime": str(ms),
        "businessPTime": str(ms),
    }


FEEDS = (
    Feed(deribit.SOURCE, ("result",), _deribit_item, "Demo: {ticker}-PERPETUAL launch", True),
    Feed(
        okx.SOURCE,
        ("data", 0, "details"),
        _okx_item,
        "Demo: OKX to list {ticker} for spot trading",
        False,
    ),
)


@dataclass
class Published:
    source: str
    external_id: str
    title: str
    how: str  # "push" or "polled"
    at: float  # time.time() of the publication
    within: float  # seconds it has to arrive


class Publisher:
    """Makes up announcements and publishes them on the feeds' first list pages and, for
    a pushed feed, on its channel."""

    def __init__(self, mirror: Mirror, channel: DeribitChannel) -> None:
        self.mirror = mirror
        self.channel = channel
        # spider -> its live first page, that page's answer (parsed), its length, its URL
        self.pages: dict[str, tuple[LivePage, Any, int, str]] = {}
        self.published: list[Published] = []
        self._last_ms = 0
        for feed in FEEDS:
            url = feed.facts.list_url(1)
            parts = urlsplit(url)
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            recorded = mirror.route_for("GET", target)
            if recorded is None:
                raise LookupError(f"the mirror has no first list page of {feed.spider}: {url}")
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            page = LivePage(
                "GET",
                parts.path,
                headers=dict(recorded.headers),
                content=recorded.payload(query),
                query=dict(query),
            )
            answer = json.loads(page.content or b"{}")
            self.pages[feed.spider] = (page, answer, len(_at(answer, feed.items)), url)
            mirror.prepend(page)

    def asked(self, spider: str) -> int:
        """How often the spider's first list page was asked."""
        page = self.pages[spider][0]
        return sum(h.path == page.path and h.query == page.query for h in list(self.mirror.hits))

    def publish(self, feed: Feed) -> Published:
        page, answer, length, url = self.pages[feed.spider]
        ms = max(int(time.time() * 1000), self._last_ms + 1)  # ids from the clock: unique
        self._last_ms = ms
        ticker = "".join(random.choices(string.ascii_uppercase, k=4))  # noqa: S311 - made up
        title = feed.title.format(ticker=ticker)
        item = feed.item(ms, ticker, title)
        listed = _at(answer, feed.items)
        listed.insert(0, item)
        del listed[max(length, 1) :]  # a page of the size the source answers
        body = json.dumps(answer, ensure_ascii=False).encode()
        record = next(r for r in feed.facts.parse_list(body, url, "en").records if r.title == title)
        pushed = feed.pushed and bool(self.channel.subscribed)
        page.content = body  # the list has it from the next request on
        at = self.channel.publish(item) if pushed else time.time()
        # A push has a second to arrive; a listed item its source's interval (a pushed
        # source's list is polled while its channel is down); both the grace.
        interval = 1.0 if pushed else OTHERS_EVERY if feed.pushed else POLL_EVERY
        within = interval + GRACE
        done = Published(
            feed.facts.source, record.external_id, title, "push" if pushed else "polled", at, within
        )
        self.published.append(done)
        return done


def _at(document: Any, path: tuple[str | int, ...]) -> list[Any]:
    for step in path:
        document = document[step]
    if not isinstance(document, list):
        raise TypeError(f"no item list at {path}")
    return document


class Arrivals:
    """Reads the archive for the published items; calls `arrived` once for each."""

    def __init__(self, url: str, arrived: Callable[[Published, float], None]) -> None:
        self.engine = dbmod.make_engine(url, readonly=True)
        self.arrived = arrived
        self.pending: dict[tuple[str, str], Published] = {}
        self.lock = threading.Lock()

    def expect(self, item: Published) -> None:
        with self.lock:
            self.pending[(item.source, item.external_id)] = item

    def check(self) -> None:
        with self.lock:
            keys = list(self.pending)
        if not keys:
            return
        ids = sorted({external_id for _, external_id in keys})
        query = sa.select(documents.c.source, documents.c.external_id).where(
            documents.c.external_id.in_(ids)
        )
        try:
            with self.engine.connect() as conn:
                found = {(s, e) for s, e in conn.execute(query)}
        except sa.exc.OperationalError:  # the watch is writing; read again next time
            return
        now = time.time()
        for key in keys:
            if key in found:
                with self.lock:
                    item = self.pending.pop(key)
                self.arrived(item, now - item.at)

    def late(self, now: float) -> list[Published]:
        with self.lock:
            return [p for p in self.pending.values() if now - p.at > p.within]


def watch_command(url: str, base_url: str, settings: dict[str, Any]) -> list[str]:
    """`annals watch --all` against the mirror: OKX polled every POLL_EVERY seconds, the
    others every OTHERS_EVERY, the demo's settings (no politeness toward a local mirror)."""
    command = [sys.executable, "-m", "archive", "watch", "--all", "--db", url]
    command += ["--base-url", base_url, "--log-level", "ERROR"]
    command += ["--interval", f"{OTHERS_EVERY:g}"]
    command += ["--interval", f"{okx.SOURCE.spider}={POLL_EVERY:g}"]
    for name, value in settings.items():
        command += ["-s", f"{name}={value}"]
    return command


def demo_keys() -> dict[str, str]:
    """Keys made up for this demo's keyed channels (the mirror checks them): the user's
    own keys are never sent to the mirror."""
    return {name: secrets.token_hex(16) for cls in (BinancePush, UpbitPush) for name in cls.keys}


def keyed_channels(keys: dict[str, str]) -> list[Any]:
    """Binance's and Upbit's channels, each checking the demo's keys."""
    binance_key, binance_secret = (keys[name] for name in BinancePush.keys)
    upbit_key, upbit_secret = (keys[name] for name in UpbitPush.keys)
    return [BinanceChannel(binance_key, binance_secret), UpbitChannel(upbit_key, upbit_secret)]


def watch_env(keys: dict[str, str]) -> dict[str, str]:
    """The watch's environment: the demo's archive only (no $ANNALS_DATABASE_URL), no
    alerts, and the demo's keys in place of any of the user's."""
    drop = {"ANNALS_DATABASE_URL", "ANNALS_NOTIFY", *(k for c in CHANNELS.values() for k in c.keys)}
    return {**{k: v for k, v in os.environ.items() if k not in drop}, **keys}


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set `stop` (the demo then stops the watch once)."""
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for signum in previous:
        signal.signal(signum, lambda *_: stop.set())
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run(
    url: str,
    folders: list[Path],
    settings: dict[str, Any],
    out: Callable[[str], None],
    seconds: float | None = None,
) -> int:
    """Serve the mirrors, watch them into the archive at `url`, publish until stopped
    (or for `seconds`), and print each arrival; the exit code: the watch's own when it
    could not run (usage, lock, archive), 1 when something published never arrived,
    else 0 (the runs' statuses are in the watch's summary lines)."""
    channel = DeribitChannel()
    keys = demo_keys()
    mirror = Mirror(*folders, channels=[GateChannel(), channel, *keyed_channels(keys)])
    publisher = Publisher(mirror, channel)
    stop = threading.Event()

    def arrived(item: Published, lag: float) -> None:
        out(f"arrived: {item.source} ({item.how}) {item.title!r}, lag {lag:.3f}s")

    with MirrorServer(mirror) as server, _stop_on_signals(stop):
        out(f"serving the mirrors and their push channels at {server.url}")
        process = subprocess.Popen(  # noqa: S603 - this Python, this package's command
            watch_command(url, server.url, settings),
            env=watch_env(keys),
            start_new_session=True,  # a terminal's Ctrl-C reaches the demo, which passes it on
        )
        try:
            lost = _publish(process, publisher, channel, url, arrived, stop, seconds, out)
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                code = process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
    if code not in (0, 1, 3):  # it could not watch: its message says why
        return code
    return 1 if lost else 0


def _publish(
    process: subprocess.Popen[bytes],
    publisher: Publisher,
    channel: DeribitChannel,
    url: str,
    arrived: Callable[[Published, float], None],
    stop: threading.Event,
    seconds: float | None,
    out: Callable[[str], None],
) -> int:
    """Wait for the watch's first round, publish every PUBLISH_EVERY seconds until told
    to stop (or for `seconds`, then wait for what was published); the number of items
    that did not arrive in time."""
    polled = [f.spider for f in FEEDS if not f.pushed]
    deadline = time.monotonic() + READY_TIMEOUT

    def ready() -> bool:
        # Subscribed, and the polled lists asked again: their first round is done.
        return bool(channel.subscribed) and all(publisher.asked(s) >= 2 for s in polled)

    while not ready():
        if stop.wait(0.05) or process.poll() is not None:
            return 0
        if time.monotonic() > deadline:
            out(f"the watch did not start within {READY_TIMEOUT:g}s")
            return 1
    arrivals = Arrivals(url, arrived)
    out(
        f"publishing a made-up announcement on {', '.join(f.spider for f in FEEDS)} every"
        f" {PUBLISH_EVERY:g}s" + (f" for {seconds:g}s" if seconds else " (Ctrl-C stops)")
    )
    until = None if seconds is None else time.monotonic() + seconds
    next_at = time.monotonic()
    while not stop.is_set() and process.poll() is None:
        now = time.monotonic()
        if until is not None and now >= until:
            break
        if now >= next_at:
            for feed in FEEDS:
                arrivals.expect(publisher.publish(feed))
            next_at = now + PUBLISH_EVERY
        arrivals.check()
        time.sleep(READ_EVERY)
    if seconds is not None:  # what was published has its time to arrive
        while arrivals.pending and not stop.is_set() and process.poll() is None:
            arrivals.check()
            if len(arrivals.late(time.time())) == len(arrivals.pending):
                break
            time.sleep(READ_EVERY)
    arrivals.check()
    late = arrivals.late(time.time())
    for item in arrivals.pending.values():
        when = "and never arrived" if item in late else "and had not arrived at the stop"
        out(f"not archived: {item.source} ({item.how}) {item.title!r}: published {when}")
    out(f"{len(publisher.published)} published, {len(arrivals.pending)} not archived")
    arrivals.engine.dispose()
    return len(late)
