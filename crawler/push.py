"""Push channels for `annals watch`: a WebSocket client per source that has one, on the
crawl's own asyncio loop (Scrapy's asyncio reactor), archiving each pushed announcement
at once through the crawl's item pipeline.

`PushClient` keeps one connection up: connect, subscribe, read; on any drop (a closed or
reset connection, a handshake refused, a connection silent past its heartbeat) it
reconnects after a jittered, doubling backoff (ANNALS_PUSH_BACKOFF up to
ANNALS_PUSH_MAX_BACKOFF), and after every subscription it asks the watch for a catch-up
poll of the source's list (crawler.watch), since no channel replays what was pushed
while away. While the channel is down the source is polled at the watch's interval.

A pushed record is the same document as the list gives (the source module's own record
function reads both); its snapshot is the WebSocket message itself, at the channel's
canonical URL with status 101 (the handshake's), so `annals reparse` can read it again.

`DeribitPush`: Deribit's JSON-RPC API (crawler.sources.deribit, docs.deribit.com):
`public/set_heartbeat` (ANNALS_PUSH_HEARTBEAT, at least 10 s), each `test_request`
answered with `public/test`, then `public/subscribe` to `announcements`.

`GatePush`: Gate's announcement WebSocket (crawler.sources.gate): a subscription to every
announcement channel for the spider's languages, `announcement.ping` every
ANNALS_PUSH_HEARTBEAT. A pushed announcement gives only title, brief, time and URL: it
is archived at once, then its article page is fetched with the spider's own request
(`completion`), and that record, the same document, is marked `extra.completes_push`:
the version it makes completes the push and is not an edit (archive.serve's
edited_after_publication leaves such versions out).

`UpbitPush`: Upbit's announcement WebSocket (crawler.sources.upbit), keyed (a JWT of the
user's API key in the handshake); Upbit's `PING` keep-alive. With its body a push is the
whole notice, archived at once; without it, the detail completes it as Gate's article does.

`BinancePush`: Binance's CMS WebSocket (crawler.sources.binance), keyed: a signed query
and the X-MBX-APIKEY header per connection, ping frames every 30 s, a new connection
before 24 h. A push has no article code: it is looked up in the newest list page by
title and time, archived at that code, then completed from the detail, as Gate's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import time
import uuid
from contextlib import suppress
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import urlsplit, urlunsplit

import jwt
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus, WebSocketException

from archive.normalize import utcnow
from archive.records import ParseError, Quarantined, RawResponse, Record
from crawler.sources import binance, deribit, gate, upbit
from crawler.sources.parsing import EnvelopeError
from crawler.stopping import Stopped

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler

    from crawler.watch import Watch

logger = logging.getLogger(__name__)

PUSH_STATUS = 101  # a pushed message's snapshot status: the WebSocket handshake's


class ChannelError(Exception):
    """The channel refused what the client asked (an error answer): reconnect later."""


class PushClient:
    """One source's push channel (subclasses speak its protocol)."""

    url: ClassVar[str]  # the channel's canonical wss:// URL
    # The environment variables a keyed channel needs (its API key and secret); without
    # every one of them set, the source is polled instead (push_client).
    keys: ClassVar[tuple[str, ...]] = ()
    name: ClassVar[str] = ""  # the source, as a refused key's warning names it
    key_hint: ClassVar[str] = ""  # what else to check when the key is refused

    def __init__(self, crawler: Crawler, spider: Spider, watch: Watch) -> None:
        settings = crawler.settings
        self.crawler = crawler
        self.spider = spider
        self.watch = watch
        self.heartbeat = settings.getfloat("ANNALS_PUSH_HEARTBEAT")
        self.backoff = settings.getfloat("ANNALS_PUSH_BACKOFF")
        self.max_backoff = settings.getfloat("ANNALS_PUSH_MAX_BACKOFF")
        self.base_url: str | None = getattr(spider, "base_url", None)
        self.live = False  # subscribed: the source needs no polling
        self.connections = 0
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def missing_keys(cls) -> list[str]:
        """The channel's key variables not set in the environment."""
        return [name for name in cls.keys if not os.environ.get(name)]

    def key(self, name: str) -> str:
        """A key variable's value (read when a connection is made, never logged)."""
        return os.environ[name]

    def headers(self) -> dict[str, str]:
        """Headers of the handshake beyond the library's own (a key, a token), made anew
        for every connection."""
        return {}

    def connect_url(self) -> str:
        """The channel's URL, or the mirror's (base_url) with the same path: ws:// for http://."""
        if not self.base_url:
            return self.url
        base, parts = urlsplit(self.base_url), urlsplit(self.url)
        scheme = "wss" if base.scheme == "https" else "ws"
        return urlunsplit((scheme, base.netloc, parts.path, parts.query, ""))

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    def stop(self) -> None:
        self.live = False
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        failures = 0  # tries since the last subscription
        while True:
            self._had_session = False
            try:
                async with connect(
                    self.connect_url(),
                    additional_headers=self.headers(),
                    open_timeout=10,
                    close_timeout=1,
                    # The library's own pings too: a dead TCP path is found within these.
                    ping_interval=self.heartbeat,
                    ping_timeout=self.heartbeat + 5,
                    proxy=None if self.base_url else True,
                    user_agent_header=self.crawler.settings.get("USER_AGENT"),
                ) as ws:
                    self.connections += 1
                    if self.connections > 1:
                        self._count("reconnects")
                    await self.session(ws, self._subscribed)
                reason = "the channel closed the connection"
            except asyncio.CancelledError:
                raise
            except (OSError, TimeoutError, WebSocketException, ChannelError, ValueError) as exc:
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                self.failed(exc)
            self._went_down(reason)
            failures = 1 if self._had_session else failures + 1
            await asyncio.sleep(self._wait(failures))

    _had_session = False

    def _subscribed(self) -> None:
        self._had_session = True
        first = not self.live
        self.live = True
        if first:
            logger.info("%s: push channel subscribed; catch-up poll", self.spider.name)
        self.watch.catch_up()

    def _went_down(self, reason: str) -> None:
        self.live = False
        logger.warning(
            "%s: push channel down (%s); reconnecting, polling meanwhile", self.spider.name, reason
        )
        self.watch.channel_down()

    def failed(self, exc: Exception) -> None:
        """A connection or its session ended with `exc`; the client reconnects after its
        backoff either way. A handshake refused with HTTP 401 or 403 is the key's refusal."""
        if isinstance(exc, InvalidStatus) and exc.response.status_code in (401, 403):
            self.key_refused(f"HTTP {exc.response.status_code}")

    def key_refused(self, answer: str) -> None:
        """The source refused the user's key: counted (`watch/key_refused`) and logged
        with the variables to check; the source is polled while the key is tried again."""
        self._count("key_refused")
        logger.warning(
            "%s: %s refused the API key (%s): check %s%s; polled meanwhile",
            self.spider.name,
            self.name,
            answer,
            " and ".join(self.keys),
            self.key_hint,
        )

    def _wait(self, failures: int) -> float:
        base = min(self.max_backoff, self.backoff * 2 ** max(0, failures - 1))
        return base * random.uniform(0.5, 1.5)  # noqa: S311 - not a secret

    async def session(self, ws: ClientConnection, subscribed: Any) -> None:
        raise NotImplementedError

    async def recv(self, ws: ClientConnection) -> str | bytes:
        """The next message; TimeoutError when the connection stayed silent for three
        heartbeats (the source sends one every heartbeat): a dead path, replaced."""
        return await asyncio.wait_for(ws.recv(), timeout=3 * self.heartbeat)

    # --- archiving --------------------------------------------------------------------------

    async def archive(self, body: bytes, parse: Any) -> None:
        """Parse a pushed message with the source's parser and archive it at once: through
        the item pipeline (its validation, its counters, the batch hook), then committed;
        then the request that completes it (`completion`), if the source has one."""
        now = utcnow()
        raw = RawResponse(self.url, PUSH_STATUS, "application/json", body, now)
        item: Record | Quarantined | None
        try:
            item = parse(body, self.url)
        except ParseError as exc:
            logger.warning("could not use a pushed message: %s (kept in quarantine)", exc.reason)
            item = Quarantined(self.url, self.spider.name, exc.reason, raw, now)
        if item is None:
            return
        if isinstance(item, Record):
            if not self.wanted(item):
                self._count("pushed_known")
                return
            item.raw, item.seen_at = raw, now
        self._count("pushed")
        engine = self.crawler.engine
        slot = engine.scraper.slot if engine is not None else None
        if engine is None or slot is None or slot.closing is not None or self.watch.closing:
            # The crawl is closing (its pipeline may have written its last batch): the
            # next run's first poll finds it in the list.
            logger.warning("%s: a push arrived while stopping: not archived", self.spider.name)
            self._count("unarchived")
            return
        await engine.scraper.start_itemproc_async(item, response=None)
        from crawler.pipelines import ArchivePipeline

        pipeline = self.crawler.get_item_pipeline(ArchivePipeline)
        if pipeline is not None:
            pipeline.flush()  # a push is committed at once, not with the next batch
        self.watch.progress()
        if isinstance(item, Record):
            request = self.completion(item)
            if request is not None:
                self._count("completions")
                engine.crawl(request)

    def wanted(self, record: Record) -> bool:
        """Archive this pushed record? Yes, where the push is the whole document."""
        return True

    def completion(self, record: Record) -> Any:
        """The request that fetches what the push left out (a Scrapy Request whose record
        is marked extra.completes_push), or None when the push is the whole document."""
        return None

    def archived_whole(self, record: Record) -> bool:
        """Whether the archive has the pushed record's document from its page or detail
        already (a poll was first), not from a push."""
        from crawler.context import run_context

        known = run_context(self.crawler).known([record.identity]).get(record.identity)
        if known is None or known.extra.get("pushed"):
            return False
        logger.info("%s: pushed %s is archived already", self.spider.name, record.identity.ref())
        return True

    def spider_completion(self, record: Record) -> Any:
        """The spider's request completing a pushed record (its `completion`), if it has one."""
        complete = getattr(self.spider, "completion", None)
        return complete(record) if complete is not None else None

    def _count(self, name: str, value: int = 1) -> None:
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value(f"annals/watch/{name}", value)


class DeribitPush(PushClient):
    url = deribit.PUSH_URL

    async def session(self, ws: ClientConnection, subscribed: Any) -> None:
        # Deribit's heartbeat takes whole seconds, 10 at least; a mirror takes less.
        interval = self.heartbeat if self.base_url else max(10, round(self.heartbeat))
        await self.call(ws, 1, "public/set_heartbeat", {"interval": interval})
        await self.call(ws, 2, "public/subscribe", {"channels": [deribit.PUSH_CHANNEL]})
        while True:
            body = await self.recv(ws)
            data = body.encode() if isinstance(body, str) else body
            message = json.loads(data)
            if not isinstance(message, dict):
                continue
            if "error" in message:
                raise ChannelError(f"Deribit answered {message['error']}")
            if message.get("id") == 2:
                if deribit.PUSH_CHANNEL not in (message.get("result") or []):
                    raise ChannelError(f"not subscribed: {message.get('result')}")
                subscribed()
            elif message.get("method") == "heartbeat":
                if (message.get("params") or {}).get("type") == "test_request":
                    await self.call(ws, 3, "public/test", {})
            elif message.get("method") == "subscription":
                await self.archive(data, deribit.parse_push)

    @staticmethod
    async def call(ws: ClientConnection, ident: int, method: str, params: dict[str, Any]) -> None:
        call = {"jsonrpc": "2.0", "id": ident, "method": method, "params": params}
        await ws.send(json.dumps(call))


class GatePush(PushClient):
    url = gate.PUSH_URL

    async def session(self, ws: ClientConnection, subscribed: Any) -> None:
        languages = list(dict.fromkeys(gate.push_language(lang) for lang in self.languages()))
        for channel in gate.PUSH_CHANNELS:
            await self.send(ws, channel, event="subscribe", payload=languages)
        waiting = set(gate.PUSH_CHANNELS)  # subscriptions not yet confirmed
        pinger = asyncio.ensure_future(self.ping(ws))
        try:
            while True:
                body = await self.recv(ws)
                data = body.encode() if isinstance(body, str) else body
                message = json.loads(data)
                if not isinstance(message, dict):
                    continue
                event, channel = message.get("event"), str(message.get("channel"))
                if event == "subscribe" and channel in waiting:
                    status = (message.get("result") or {}).get("status")
                    if message.get("error") or status != "success":
                        error = message.get("error") or message.get("result")
                        raise ChannelError(f"Gate refused {channel}: {error}")
                    waiting.discard(channel)
                    if not waiting:
                        subscribed()
                elif event == "update":
                    await self.archive(data, gate.parse_push)
        finally:
            pinger.cancel()

    def languages(self) -> list[str]:
        return list(getattr(self.spider, "languages", None) or ["en"])

    async def ping(self, ws: ClientConnection) -> None:
        """`announcement.ping` every heartbeat; its pong keeps `recv` from timing out."""
        with suppress(WebSocketException, OSError):
            while True:
                await asyncio.sleep(self.heartbeat)
                await self.send(ws, gate.PUSH_PING)

    @staticmethod
    async def send(ws: ClientConnection, channel: str, **fields: Any) -> None:
        await ws.send(json.dumps({"time": int(time.time()), "channel": channel, **fields}))

    def wanted(self, record: Record) -> bool:
        """Not when the archive has the article already (a poll was first): the push's
        brief would be a version going back from the article's text to less."""
        return not self.archived_whole(record)

    def completion(self, record: Record) -> Any:
        return self.spider_completion(record)


# The push channels by spider: by name, not source, as Gate's channel is its
# announcements', not Gate Square's (the same source).
CHANNELS: dict[str, type[PushClient]] = {
    deribit.SOURCE.spider: DeribitPush,
    gate.SOURCE.spider: GatePush,
}


def push_client(crawler: Crawler, spider: Spider, watch: Watch) -> PushClient | None:
    """The push client of the spider's source, or None where it has none, or where its
    channel is keyed and the keys are not all in the environment (the source is polled)."""
    cls = CHANNELS.get(spider.name)
    if cls is None:
        return None
    missing = cls.missing_keys()
    if missing:
        logger.info("%s: polled, not pushed: %s not set", spider.name, ", ".join(missing))
        return None
    return cls(crawler, spider, watch)


class UpbitPush(PushClient):
    """Upbit's announcement WebSocket (crawler.sources.upbit), with the user's API key.

    Confirmed in Upbit's developer docs (docs.upbit.com, Korean reference):
    - "공지사항(Announcement)" (websocket-announcement): the private endpoint
      `wss://api.upbit.com/websocket/v1/private`, a JWT in `Authorization: Bearer`, no key
      scope needed; the request `[{"ticket"}, {"type": "announcement", "categories",
      "include_body"}, {"format": "DEFAULT"}]`, every category when `categories` is left
      out, INVALID_PARAM for an unknown one; events CREATED and UPDATED, `stream_type`
      REALTIME only (no snapshot, no replay: the catch-up poll finds what came while
      away); a large body may come as null (then the detail completes the push).
    - "인증" (auth; the WebSocket examples of the older "authentication" page): the token
      is a JWT of `{"access_key", "nonce": <uuid4>}` signed with the secret key string;
      those examples sign HS256 (jsonwebtoken's and PyJWT's default), as here (the
      newer guide's sample token is HS512; the mirror takes either). A new token for
      every connection (`headers`).
    - "WebSocket 사용 및 에러 안내": errors come as `{"error": {"name", "message"}}`
      (INVALID_AUTH for a missing or unverifiable token, WRONG_FORMAT, INVALID_PARAM).
    - "연결 관리" (connection): a connection idle for about 120 s is closed; WebSocket
      ping frames are answered (the library's own, every ANNALS_PUSH_HEARTBEAT), and so is
      the text message `PING`, with `{"status": "UP"}`: sent every heartbeat (10 s, far
      under the 120 s), its answer keeps `recv` from timing out too. The
      docs' examples decode messages from binary frames: both kinds are read.
    Modeled: the name of the event's field (`event_type`, kept in extra.pushed only);
    that a push's `category` is the WebSocket's key (`wallet`, ...; a Korean label is read
    as well); whether a refused key is answered at the handshake (HTTP 401 or 403) or
    with INVALID_AUTH after it (the mirror does either): both are counted
    `watch/key_refused`, logged with the variables to check, and retried with the
    backoff, the notices polled meanwhile (nothing is lost, so the run's status stays
    what its polls earn).

    With its body a push is the whole document: archived at once, no request follows.
    An UPDATED push is archived the same way: the store makes it a new version when the
    notice changed (an edit). A push without its body is archived at once and its detail
    fetched with the spider's own request (`completion`), that version marked
    extra.completes_push; one without its body for a notice the archive has whole is not
    archived (a version with less): its detail is asked instead, an edit if it is one.
    """

    url = upbit.PUSH_URL
    keys = ("ANNALS_UPBIT_ACCESS_KEY", "ANNALS_UPBIT_SECRET_KEY")
    name = "Upbit"
    key_hint = " and the key's allowed IPs"

    def headers(self) -> dict[str, str]:
        access_key, secret_key = (self.key(name) for name in self.keys)
        payload = {"access_key": access_key, "nonce": str(uuid.uuid4())}
        token = jwt.encode(payload, secret_key, algorithm="HS256")
        return {"Authorization": f"Bearer {token}"}

    async def session(self, ws: ClientConnection, subscribed: Any) -> None:
        await ws.send(json.dumps(upbit.push_request(str(uuid.uuid4()), self.categories())))
        # Upbit acknowledges no subscription; a refusal comes as an error answer.
        subscribed()
        pinger = asyncio.ensure_future(self.ping(ws))
        try:
            while True:
                body = await self.recv(ws)
                data = body.encode() if isinstance(body, str) else body
                try:
                    message = json.loads(data)
                except ValueError:
                    message = None  # no JSON: the parser says so, and it is quarantined
                error = upbit.push_error(message)
                if error is not None:
                    self.refused(*error)
                if not isinstance(message, dict) or message.get("type") == upbit.PUSH_TYPE:
                    await self.archive(data, upbit.parse_push)
        finally:
            pinger.cancel()

    def categories(self) -> list[str]:
        """The spider's category filter (`-a categories=`), or none: every category."""
        return [key for key in getattr(self.spider, "categories", None) or [] if key]

    async def ping(self, ws: ClientConnection) -> None:
        with suppress(WebSocketException, OSError):
            while True:
                await asyncio.sleep(self.heartbeat)
                await ws.send(upbit.PUSH_PING)

    def refused(self, name: str, message: str) -> None:
        if name == "INVALID_AUTH":
            self.key_refused(name)
        raise ChannelError(f"Upbit answered {name}: {message}")

    def wanted(self, record: Record) -> bool:
        """Archive this push? Yes, unless it has no body and the archive has the notice
        whole: then the notice's detail is asked (an edit, if it is one). A push with its
        body after one without completes it."""
        from crawler.context import run_context

        known = run_context(self.crawler).known([record.identity]).get(record.identity)
        incomplete = bool(record.extra.get("push_incomplete"))
        if known is not None and known.extra.get("push_incomplete") and not incomplete:
            record.extra["completes_push"] = True
        if known is None or not incomplete or known.extra.get("push_incomplete"):
            return True
        detail = getattr(self.spider, "detail_request", None)
        engine = self.crawler.engine
        if detail is not None and engine is not None and not self.watch.closing:
            engine.crawl(detail(record, known))
        logger.info(
            "%s: pushed %s without its body: its detail is asked",
            self.spider.name,
            record.identity.ref(),
        )
        return False

    def completion(self, record: Record) -> Any:
        if not record.extra.get("push_incomplete"):
            return None
        return self.spider_completion(record)


CHANNELS[upbit.SOURCE.spider] = UpbitPush


class BinancePush(PushClient):
    """Binance's CMS WebSocket (crawler.sources.binance, developers.binance.com/docs/cms),
    keyed: ANNALS_BINANCE_API_KEY and ANNALS_BINANCE_API_SECRET (without both the source
    is polled). Confirmed in Binance's docs ("WebSocket API Basic Information",
    "Announcements"): the signed query (`random`, `topic`, `recvWindow`, `timestamp`,
    `signature`: HMAC-SHA256 of the others sorted by name) and the X-MBX-APIKEY header,
    made anew for every connection; PING every 30 s, as WebSocket ping frames (the limit
    of 5 messages a second counts "PING frames"; the library's carry 4 bytes where Binance
    recommends, not requires, none), a connection dropped after a minute without; a
    connection valid 24 h at most; DATA messages whose `data` is a JSON string
    without the article code. Modeled (public client code, not the docs): the answer to
    `{"command": "SUBSCRIBE", ...}`, `{"type": "COMMAND", ...}`; it is logged, never
    trusted to decide anything, as the URL's `topic` subscribes already.

    Connection: subscribed once the handshake is accepted (the URL names the topics),
    then a SUBSCRIBE command as Binance shows one. The library pings every
    PUSH_PING_SECONDS (ANNALS_PUSH_HEARTBEAT against a mirror) and replaces a connection
    whose pong does not come; Binance sends nothing else between announcements, so
    silence alone is no fault here. Before 24 h (ANNALS_BINANCE_PUSH_MAX_AGE, 23 h 50 min)
    the connection is renewed: closed and opened again at once, then the catch-up poll,
    as after any reconnect, so what came between is not lost. A handshake Binance
    refuses (a wrong key or signature: HTTP 401) is retried with the usual backoff while
    the source is polled; it is logged as such and counted (`watch/key_refused`).

    A pushed announcement has no code, and the archive's identity is the code (the list's
    and the detail's). So each push is looked up in the newest list page, asked with the
    spider's own request (`push_lookup`: its downloader slot, delay and middlewares): the
    item of the same normalized title published near the same time (binance.push_match).
    Found, the push is archived at once with its own fields (title, body if it has one,
    time, catalog) at that code, then the detail request completes it (`completion`,
    marked extra.completes_push: no edit). Not listed yet (the list lags the push), the
    list is asked again after 1, 2, 4... s (ANNALS_BINANCE_PUSH_LOOKUP_BACKOFF), at most
    ANNALS_BINANCE_PUSH_LOOKUPS times in all; never found, the message goes to quarantine
    with its reason (the run ends "partial"; the next poll finds the announcement when
    the list shows it). Lookups run beside the channel: a second push is not held up by
    the first one's. While one waits it counts as `unarchived`, so a watch stopped in the
    meantime says it did not archive that push (the next run's poll finds it).

    The pushed version's snapshot is the message itself; `annals reparse` cannot give it
    an identity alone (binance_announcements.parse_snapshot), so a push left in quarantine
    stays there.
    """

    url = binance.PUSH_URL
    keys = ("ANNALS_BINANCE_API_KEY", "ANNALS_BINANCE_API_SECRET")
    name = "Binance"
    key_hint = " (a refused signature is answered the same)"

    def __init__(self, crawler: Crawler, spider: Spider, watch: Watch) -> None:
        super().__init__(crawler, spider, watch)
        settings = crawler.settings
        if not self.base_url:  # Binance's own interval, whatever the other channels use
            self.heartbeat = binance.PUSH_PING_SECONDS
        self.max_age = settings.getfloat("ANNALS_BINANCE_PUSH_MAX_AGE", binance.PUSH_MAX_AGE - 600)
        self.lookups = max(1, settings.getint("ANNALS_BINANCE_PUSH_LOOKUPS", 7))
        self.lookup_backoff = settings.getfloat("ANNALS_BINANCE_PUSH_LOOKUP_BACKOFF", 1.0)
        self.topics = [binance.push_topic(lang) for lang in self.languages()]
        self._pending: set[asyncio.Future[None]] = set()
        self._renewing = False
        _hide_signed_requests()

    def languages(self) -> list[str]:
        return list(getattr(self.spider, "languages", None) or ["en"])

    def start(self) -> None:
        """Push only when every language the spider reads has a topic: the channel being
        live stops the polling of all of them."""
        missing = [lang for lang in self.languages() if binance.push_topic(lang) is None]
        if missing:
            logger.info(
                "%s: polled, not pushed: Binance documents no announcement topic for %s",
                self.spider.name,
                ", ".join(missing),
            )
            return
        super().start()

    def stop(self) -> None:
        super().stop()
        for lookup in list(self._pending):
            lookup.cancel()

    def connect_url(self) -> str:
        """The channel's URL with a new signed query: a new timestamp and random each time."""
        topics = [t for t in self.topics if t]
        query = binance.push_query(
            topics,
            self.key("ANNALS_BINANCE_API_SECRET"),
            now_ms=int(time.time() * 1000),
            random=os.urandom(16).hex(),
        )
        return f"{super().connect_url()}?{query}"

    def headers(self) -> dict[str, str]:
        return {binance.PUSH_KEY_HEADER: self.key("ANNALS_BINANCE_API_KEY")}

    async def session(self, ws: ClientConnection, subscribed: Any) -> None:
        opened = time.monotonic()
        topics = "|".join(t for t in self.topics if t)
        await ws.send(json.dumps({"command": "SUBSCRIBE", "value": topics}))
        subscribed()
        while True:
            left = self.max_age - (time.monotonic() - opened)
            try:
                body = await asyncio.wait_for(ws.recv(), timeout=max(0.0, left))
            except TimeoutError:
                self._renewing = True  # before Binance ends it
                return
            data = body.encode() if isinstance(body, str) else body
            with suppress(ValueError):
                message = json.loads(data)
                if isinstance(message, dict) and message.get("type") == "COMMAND":
                    logger.info("%s: Binance answered %s", self.spider.name, message)
                    continue
            lookup = asyncio.ensure_future(self.settle(data))
            self._pending.add(lookup)
            lookup.add_done_callback(self._pending.discard)

    # --- from a push to a record --------------------------------------------------------

    async def settle(self, body: bytes) -> None:
        """Archive one pushed message: find its code in the list, then archive it, or keep
        it in quarantine when the list never shows it."""
        try:
            pushed = binance.parse_push(body, self.url)
        except ParseError as exc:
            reason = exc.reason
            await self.archive(body, lambda _body, url: _raise(url, reason))
            return
        if pushed is None:
            return
        if self.lookup(pushed) is None:
            logger.info(
                "%s: pushed %r is of catalog %s, which this watch does not read",
                self.spider.name,
                pushed.title,
                pushed.catalog_id,
            )
            self._count("pushed_elsewhere")
            return
        self._count("unarchived")  # until it is archived: a stop meanwhile loses it
        listed: Record | None = None
        tries = 0
        while listed is None and tries < self.lookups:
            if tries:
                await asyncio.sleep(self.lookup_backoff * 2 ** (tries - 1))
            tries += 1
            found = await self.find(pushed)
            if found is False:
                return  # the crawl is stopping: counted unarchived
            listed = found or None
        self._count("unarchived", -1)
        if listed is None:
            self._count("unmatched")
            reason = f"pushed announcement not in the list after {tries} tries: {pushed.title}"
            await self.archive(body, lambda _body, url: _raise(url, reason))
            return
        record = binance.pushed_record(pushed, listed, self.url)
        await self.archive(body, lambda _body, _url: record)

    def lookup(self, pushed: binance.Pushed) -> Any:
        """The spider's list request to look `pushed` up in; None when the spider does not
        read its catalog."""
        lookup = getattr(self.spider, "push_lookup", None)
        return lookup(pushed.language, pushed.catalog_id) if lookup is not None else None

    async def find(self, pushed: binance.Pushed) -> Record | Literal[False] | None:
        """The list record of `pushed` on the newest list page; None when it is not there
        (yet) or the page could not be read; False when the crawl is stopping."""
        engine, request = self.crawler.engine, self.lookup(pushed)
        if engine is None or request is None or self.watch.closing:
            return False
        url = str(request.meta.get("annals_url", request.url))
        try:
            response = await engine.download_async(request)
        except Stopped:
            return False
        except Exception as exc:
            logger.warning("%s: could not ask %s for a push's code: %s", self.spider.name, url, exc)
            return None
        if response.status != 200:
            logger.warning("%s: %s answered HTTP %d", self.spider.name, url, response.status)
            return None
        try:
            page = binance.SOURCE.parse_list(response.body, url, pushed.language)
        except (ParseError, EnvelopeError) as exc:
            logger.warning(
                "%s: could not read %s for a push's code: %s", self.spider.name, url, exc
            )
            return None
        return binance.push_match(pushed, page.records)

    def wanted(self, record: Record) -> bool:
        """Not when the archive has the article from its detail already (a poll was
        first): the push's fields would be a version going back to less."""
        return not self.archived_whole(record)

    def completion(self, record: Record) -> Any:
        return self.spider_completion(record)

    # --- renewals -------------------------------------------------------------------------

    def _went_down(self, reason: str) -> None:
        if self._renewing:
            self.live = False
            self._count("renewals")
            logger.info("%s: renewing the connection before Binance ends it", self.spider.name)
            self.watch.channel_down()
            return
        super()._went_down(reason)

    def _wait(self, failures: int) -> float:
        if self._renewing:
            self._renewing = False
            return 0.0
        return super()._wait(failures)


def _raise(url: str, reason: str) -> Record:
    raise ParseError(url, reason)


class _HideSignedRequests(logging.Filter):
    """The websockets library's DEBUG lines of a Binance handshake without its signed
    query and API key: the path alone."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        if record.msg == "> GET %s HTTP/1.1" and args and "signature=" in str(args[0]):
            record.args = (str(args[0]).split("?", 1)[0] + "?...",)
        elif record.msg == "> %s: %s" and args and str(args[0]).lower() == "x-mbx-apikey":
            record.args = (args[0], "...")
        return True


def _hide_signed_requests() -> None:
    client = logging.getLogger("websockets.client")
    if not any(isinstance(f, _HideSignedRequests) for f in client.filters):
        client.addFilter(_HideSignedRequests())


CHANNELS[binance.SOURCE.spider] = BinancePush
