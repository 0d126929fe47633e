"""Push channels for the local mirror (crawler.mirror): WebSocket endpoints on the same
127.0.0.1 port as the mirror's HTTP routes, speaking a source's protocol.

`annals watch --base-url http://127.0.0.1:PORT` sends a source's WebSocket to
`ws://127.0.0.1:PORT` with the source's own path; the mirror's handler hands such an
upgrade to the channel registered for that path (`Mirror.channels`), which may refuse the
handshake (`Channel.refuse`: a keyed channel checks the credentials). The WebSocket
protocol itself is the `websockets` library's (its sans-I/O ServerProtocol), run in the
mirror's request thread; a test publishes from its own thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jwt
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

from crawler.sources import upbit

logger = logging.getLogger(__name__)


class MirrorSocket:
    """One accepted WebSocket connection of the mirror."""

    def __init__(self, sock: socket.socket, reader: Any, protocol: ServerProtocol) -> None:
        self.sock = sock
        self.reader = reader  # the request's buffered reader: what followed the upgrade
        self.protocol = protocol
        self.lock = threading.Lock()  # the test's thread sends while the handler reads
        self.open = True
        self.path = ""  # the handshake's path and query

    def send_text(self, text: str) -> None:
        with self.lock:
            if not self.open:
                return
            self.protocol.send_text(text.encode())
            self._write()

    def send_json(self, message: dict[str, Any]) -> None:
        self.send_text(json.dumps(message))

    def drop(self) -> None:
        """End the TCP connection without a closing handshake, as a network fault does."""
        with self.lock:
            self.open = False
            with contextlib.suppress(OSError):  # already gone
                self.sock.shutdown(socket.SHUT_RDWR)

    def _write(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.sock.sendall(data)

    def serve(
        self,
        on_text: Callable[[MirrorSocket, str], None],
        on_ping: Callable[[MirrorSocket], None] | None = None,
    ) -> None:
        """Read frames until the connection ends; each text message goes to `on_text`,
        each ping (answered by the protocol) to `on_ping`."""
        while self.open:
            try:
                data = self.reader.read1(65536)
            except OSError:
                data = b""
            with self.lock:
                if data:
                    self.protocol.receive_data(data)
                else:
                    self.protocol.receive_eof()
                events = self.protocol.events_received()
                try:
                    self._write()  # pongs and the closing handshake
                except OSError:
                    self.open = False
            for event in events:
                if isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                    on_text(self, bytes(event.data).decode())
                elif isinstance(event, Frame) and event.opcode is Opcode.PING and on_ping:
                    on_ping(self)
            if not data or self.protocol.close_expected():
                break
        self.open = False


def accept(handler: Any, channel: Channel | None = None) -> MirrorSocket | None:
    """Answer the upgrade request an http.server handler has read; None (and an HTTP
    error sent) when it is not a valid WebSocket handshake, or when the channel refuses
    it (`Channel.refuse`: a keyed channel's credentials)."""
    protocol = ServerProtocol()
    # http.server has read the request: the protocol is given its bytes again, so that its
    # parser, which expects the handshake first, reads frames from then on.
    lines = [f"GET {handler.path} HTTP/1.1", *(f"{k}: {v}" for k, v in handler.headers.items())]
    protocol.receive_data(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    (request,) = protocol.events_received()
    assert isinstance(request, Request)
    refusal = channel.refuse(request) if channel is not None else None
    if refusal is not None:  # the channel's own answer to a handshake it does not take
        response = protocol.reject(*refusal)
        response.headers["Content-Type"] = "application/json"
    else:
        response = protocol.accept(request)
    protocol.send_response(response)
    for data in protocol.data_to_send():
        handler.connection.sendall(data)
    if response.status_code != 101:
        return None
    sock = MirrorSocket(handler.connection, handler.rfile, protocol)
    sock.path = handler.path
    return sock


class Channel:
    """A push endpoint of the mirror: `handle` gets each text message of a connection."""

    path: str

    def __init__(self) -> None:
        self.sockets: list[MirrorSocket] = []
        self.connections = 0  # accepted so far
        self._lock = threading.Lock()

    def serve(self, sock: MirrorSocket) -> None:
        with self._lock:
            self.sockets.append(sock)
            self.connections += 1
        try:
            sock.serve(self.handle, self.pinged)
        finally:
            with self._lock:
                self.sockets.remove(sock)
            self.closed(sock)

    def handle(self, sock: MirrorSocket, text: str) -> None:
        raise NotImplementedError

    def refuse(self, request: Request) -> tuple[int, str] | None:
        """(HTTP status, body) to refuse the handshake with, as the source would (a wrong
        key); None to accept it. Keyless channels accept every one."""
        return None

    def pinged(self, sock: MirrorSocket) -> None:
        """A ping frame came (the protocol answers it with a pong)."""

    def closed(self, sock: MirrorSocket) -> None:
        """The connection ended."""

    def drop_all(self) -> None:
        """Cut every connection, as a network fault would."""
        with self._lock:
            sockets = list(self.sockets)
        for sock in sockets:
            sock.drop()


class DeribitChannel(Channel):
    """Deribit's JSON-RPC WebSocket API (`/ws/api/v2`), as much of it as the watch uses:
    `public/subscribe` (the `announcements` channel), `public/set_heartbeat` (then a
    `test_request` every interval, which `public/test` answers) and `public/test`.

    `publish(announcement)` pushes a notification to every subscriber and returns the
    moment (time.time()) it was sent. `freeze()` makes the open connections go silent
    without closing (a dead network path): nothing is answered or sent on them any more;
    a new connection is served as usual."""

    path = "/ws/api/v2"

    def __init__(self) -> None:
        super().__init__()
        self.subscribed: list[MirrorSocket] = []
        self.tests_answered = 0  # public/test calls received
        self.heartbeats: dict[int, threading.Event] = {}  # id(sock) -> stops its timer
        self.frozen: set[int] = set()  # id() of the connections gone silent

    def freeze(self) -> None:
        with self._lock:
            self.frozen.update(id(sock) for sock in self.sockets)

    def handle(self, sock: MirrorSocket, text: str) -> None:
        if id(sock) in self.frozen:
            return
        message = json.loads(text)
        method, params = message.get("method"), message.get("params") or {}
        result: Any
        if method == "public/subscribe":
            result = [c for c in params.get("channels", []) if c == "announcements"]
            if result:
                self.subscribed.append(sock)
        elif method == "public/set_heartbeat":
            self._heartbeat(sock, float(params.get("interval", 10)))
            result = "ok"
        elif method == "public/test":
            self.tests_answered += 1
            result = {"version": "1.2.26"}
        else:
            sock.send_json(_answer(message, error={"code": -32601, "message": "Method not found"}))
            return
        sock.send_json(_answer(message, result=result))

    def _heartbeat(self, sock: MirrorSocket, interval: float) -> None:
        stop = self.heartbeats.setdefault(id(sock), threading.Event())

        def beat() -> None:
            while not stop.wait(interval) and sock.open:
                if id(sock) not in self.frozen:
                    heartbeat = {"type": "test_request"}
                    sock.send_json({"jsonrpc": "2.0", "method": "heartbeat", "params": heartbeat})

        threading.Thread(target=beat, daemon=True).start()

    def closed(self, sock: MirrorSocket) -> None:
        if sock in self.subscribed:
            self.subscribed.remove(sock)
        stop = self.heartbeats.pop(id(sock), None)
        if stop is not None:
            stop.set()

    def publish(self, announcement: dict[str, Any]) -> float:
        notification = {
            "jsonrpc": "2.0",
            "method": "subscription",
            "params": {"channel": "announcements", "data": announcement},
        }
        sent = time.time()
        for sock in list(self.subscribed):
            if id(sock) not in self.frozen:
                sock.send_json(notification)
        return sent


def _answer(request: dict[str, Any], **outcome: Any) -> dict[str, Any]:
    now = int(time.time() * 1_000_000)
    answer = {"jsonrpc": "2.0", **outcome, "usIn": now, "usOut": now, "usDiff": 0}
    if "id" in request:
        answer["id"] = request["id"]
    return {**answer, "testnet": False}


class GateChannel(Channel):
    """Gate's announcement WebSocket (`/ws/v4/ann`): `subscribe` to the announcement
    channels (payload: languages, "en" or "cn"), each answered with a success status
    (an unknown channel with an error), and `announcement.ping`, answered with
    `announcement.pong`.

    `publish(channel, result)` sends an `update` to every connection subscribed to that
    channel in the result's language and returns the moment (time.time()) it was sent."""

    path = "/ws/v4/ann"
    CHANNELS = frozenset(
        f"announcement.summary_{name}"
        for name in (
            "listing",
            "delisting",
            "fee",
            "etf",
            "deposit_withdrawal",
            "rename",
            "precision",
            "engine_upgrade",
        )
    )

    def __init__(self) -> None:
        super().__init__()
        # id(sock) -> (the socket, {channel: its languages})
        self.subscriptions: dict[int, tuple[MirrorSocket, dict[str, set[str]]]] = {}
        self.pings = 0

    def subscribed(self, channel: str, language: str = "en") -> int:
        """How many open connections get `channel` in `language`."""
        with self._lock:
            return sum(language in subs.get(channel, ()) for _, subs in self.subscriptions.values())

    def handle(self, sock: MirrorSocket, text: str) -> None:
        message = json.loads(text)
        channel, event = message.get("channel"), message.get("event")
        now = time.time()
        answer: dict[str, Any] = {"time": int(now), "time_ms": int(now * 1000), "channel": channel}
        if channel == "announcement.ping":
            self.pings += 1
            sock.send_json({**answer, "channel": "announcement.pong", "event": "", "result": None})
            return
        if event != "subscribe":
            return
        payload = message.get("payload") or []
        answer |= {"event": "subscribe", "payload": payload}
        if channel not in self.CHANNELS:
            error = {"code": 2, "message": f"unknown channel {channel}"}
            sock.send_json({**answer, "error": error, "result": {"status": "fail"}})
            return
        with self._lock:
            _, subs = self.subscriptions.setdefault(id(sock), (sock, {}))
            subs.setdefault(channel, set()).update(str(lang) for lang in payload)
        sock.send_json({**answer, "error": None, "result": {"status": "success"}})

    def closed(self, sock: MirrorSocket) -> None:
        with self._lock:
            self.subscriptions.pop(id(sock), None)

    def publish(self, channel: str, result: dict[str, Any]) -> float:
        sent = time.time()
        update = {
            "time": int(sent),
            "time_ms": int(sent * 1000),
            "channel": channel,
            "event": "update",
            "result": result,
        }
        language = str(result.get("lang", "en"))
        with self._lock:
            targets = [
                s for s, subs in self.subscriptions.values() if language in subs.get(channel, ())
            ]
        for sock in targets:
            sock.send_json(update)
        return sent


class UpbitChannel(Channel):
    """Upbit's private WebSocket (`/websocket/v1/private`), as much of it as the watch
    uses, for the key (`access_key`, `secret_key`) it is made with.

    The handshake must carry `Authorization: Bearer <JWT>` signed with that secret
    (HS256 or HS512), with that access_key and a nonce not seen before; otherwise it is
    refused with HTTP 401 (`refused` counts them), or, with `refuse_in_band`, accepted
    and every request on it answered with Upbit's INVALID_AUTH error, then closed (the
    docs name that answer; which of the two Upbit does is not documented). A request
    `[{"ticket"}, {"type": "announcement", "categories", "include_body"}, {"format"}]`
    subscribes the connection (no answer, as Upbit sends none); a request without a
    ticket or type, or with an unknown category, gets Upbit's error answer. `PING` is
    answered `{"status": "UP"}`. Messages go out as binary frames, as Upbit's do.

    `publish(notice, event)` pushes an `announcement` message (`notice`: uuid, title,
    category as the WebSocket's key, first_listed_at, listed_at, body) to every
    subscription of its category, without the body where it was not asked, and returns
    the moment (time.time()) it was sent."""

    path = "/websocket/v1/private"
    CATEGORIES = frozenset(upbit.PUSH_CATEGORIES.values())

    def __init__(self, access_key: str, secret_key: str, *, refuse_in_band: bool = False) -> None:
        super().__init__()
        self.access_key, self.secret_key = access_key, secret_key
        self.refuse_in_band = refuse_in_band
        # The handshake's verdict, for the connection its thread serves next (serve).
        self._verdict = threading.local()
        self.unauthorized: set[int] = set()  # id() of connections refused in band
        self.refused = 0  # handshakes refused
        self.nonces: set[str] = set()
        self.pings = 0
        # id(sock) -> (the socket, its categories or None for all, include_body)
        self.subscriptions: dict[int, tuple[MirrorSocket, frozenset[str] | None, bool]] = {}

    def refuse(self, request: Request) -> tuple[int, str] | None:
        scheme, _, token = str(request.headers.get("Authorization") or "").partition(" ")
        try:
            claims = jwt.decode(token, self.secret_key, algorithms=["HS256", "HS512"])
        except jwt.InvalidTokenError:
            claims = {}
        nonce = claims.get("nonce")
        with self._lock:
            if (
                scheme != "Bearer"
                or claims.get("access_key") != self.access_key
                or not isinstance(nonce, str)
                or not nonce
                or nonce in self.nonces
            ):
                self.refused += 1
                self._verdict.refused = True
                if self.refuse_in_band:
                    return None
                error = {"name": "invalid_access_key", "message": "잘못된 엑세스 키입니다."}
                return 401, json.dumps({"error": error}, ensure_ascii=False)
            self.nonces.add(nonce)
        self._verdict.refused = False
        return None

    def serve(self, sock: MirrorSocket) -> None:
        # The mirror's handler thread accepted this connection right after refuse.
        if getattr(self._verdict, "refused", False):
            with self._lock:
                self.unauthorized.add(id(sock))
        try:
            super().serve(sock)
        finally:
            with self._lock:
                self.unauthorized.discard(id(sock))

    def subscribed(self, category: str | None = None) -> int:
        """How many open connections get `category` (any, for None)."""
        with self._lock:
            return sum(
                category is None or wanted is None or category in wanted
                for _, wanted, _ in self.subscriptions.values()
            )

    def handle(self, sock: MirrorSocket, text: str) -> None:
        if id(sock) in self.unauthorized:
            self._error(sock, "INVALID_AUTH", "인증 정보가 올바르지 않습니다.")
            sock.drop()
            return
        if text == upbit.PUSH_PING:
            self.pings += 1
            self._send(sock, {"status": "UP"})
            return
        try:
            request = json.loads(text)
        except ValueError:
            request = None
        if not isinstance(request, list) or not all(isinstance(o, dict) for o in request):
            self._error(sock, "WRONG_FORMAT", "요청 형식이 올바르지 않습니다.")
            return
        if not any("ticket" in part for part in request):
            self._error(sock, "NO_TICKET", "ticket이 존재하지 않습니다.")
            return
        types = [part for part in request if "type" in part]
        if not types:
            self._error(sock, "NO_TYPE", "type이 존재하지 않습니다.")
            return
        for data_type in types:
            if data_type["type"] != upbit.PUSH_TYPE:
                continue
            categories = data_type.get("categories")
            if categories is not None and not (
                isinstance(categories, list) and set(categories) <= self.CATEGORIES
            ):
                self._error(sock, "INVALID_PARAM", f"지원하지 않는 categories: {categories}")
                return
            wanted = frozenset(categories) if categories is not None else None
            with self._lock:
                self.subscriptions[id(sock)] = (sock, wanted, bool(data_type.get("include_body")))

    def closed(self, sock: MirrorSocket) -> None:
        with self._lock:
            self.subscriptions.pop(id(sock), None)

    def publish(self, notice: dict[str, Any], event: str = "CREATED") -> float:
        sent = time.time()
        message = {
            "type": upbit.PUSH_TYPE,
            "event_type": event,
            **notice,
            "timestamp": int(sent * 1000),
            "stream_type": "REALTIME",
        }
        category = notice.get("category")
        with self._lock:
            targets = [
                (sock, body)
                for sock, wanted, body in self.subscriptions.values()
                if wanted is None or category in wanted
            ]
        for sock, body in targets:
            self._send(sock, message if body else {k: v for k, v in message.items() if k != "body"})
        return sent

    @staticmethod
    def _send(sock: MirrorSocket, message: dict[str, Any]) -> None:
        with sock.lock:
            if sock.open:
                sock.protocol.send_binary(json.dumps(message, ensure_ascii=False).encode())
                sock._write()

    def _error(self, sock: MirrorSocket, name: str, message: str) -> None:
        self._send(sock, {"error": {"name": name, "message": message}})


class BinanceChannel(Channel):
    """Binance's CMS WebSocket (`/sapi/wss`), keyed with `api_key` and `secret`.

    The handshake is refused as Binance documents its checks: HTTP 401 without the
    X-MBX-APIKEY header of the key, or when `signature` is not the HMAC-SHA256 (the
    secret) of the other parameters sorted by name; HTTP 400 when `random`, `topic` or
    `timestamp` is missing, `random` is longer than 32 characters, `recvWindow` is over
    60000, or the timestamp is outside it (5000 ms when none is given). The body is a
    Binance error object (codes -2015, -1022, -1102, -1021 of its API). Accepted, the
    connection gets the URL's `topic` ("|" between several); `{"command": "SUBSCRIBE" |
    "UNSUBSCRIBE", "value": ...}` is answered `{"type": "COMMAND", ...}`; pings are
    answered by the WebSocket protocol and counted (`pings`).

    `publish(data, topic)` sends a DATA message (its data a JSON string, as Binance's) to
    every connection on `topic` and returns the moment (time.time()) it was sent."""

    path = "/sapi/wss"
    KEY_HEADER = "X-MBX-APIKEY"

    def __init__(self, api_key: str, secret: str) -> None:
        super().__init__()
        self.api_key = api_key
        self.secret = secret
        self.refusals: list[int] = []  # the status of each refused handshake
        self.pings = 0
        self.commands: list[dict[str, Any]] = []
        self.topics: dict[int, tuple[MirrorSocket, set[str]]] = {}  # id(sock) -> its topics

    def refuse(self, request: Request) -> tuple[int, str] | None:
        refusal = self._check(request)
        if refusal is not None:
            with self._lock:
                self.refusals.append(refusal[0])
            return refusal[0], json.dumps(refusal[1])
        return None

    def _check(self, request: Request) -> tuple[int, dict[str, Any]] | None:
        if request.headers.get(self.KEY_HEADER) != self.api_key:
            return 401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}
        # The parameters as sent (still %-encoded): the signature covers those bytes.
        query = urlsplit(request.path).query
        pairs = [part.partition("=") for part in query.split("&") if part]
        params = {name: value for name, _, value in pairs}
        for name in ("random", "topic", "timestamp", "signature"):
            if not params.get(name):
                return 400, {"code": -1102, "msg": f"Mandatory parameter '{name}' was not sent."}
        payload = "&".join(f"{n}={v}" for n, _, v in sorted(pairs) if n != "signature")
        expected = hmac.new(self.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, params["signature"].lower()):
            return 401, {"code": -1022, "msg": "Signature for this request is not valid."}
        if len(params["random"]) > 32:
            return 400, {"code": -1100, "msg": "Illegal characters found in parameter 'random'."}
        try:
            window = int(params.get("recvWindow") or 5000)
            sent = int(params["timestamp"])
        except ValueError:
            return 400, {"code": -1100, "msg": "Illegal characters found in a parameter."}
        now = int(time.time() * 1000)
        if window > 60000 or not (now - window <= sent < now + 1000):
            return 400, {
                "code": -1021,
                "msg": "Timestamp for this request is outside of the recvWindow.",
            }
        return None

    def serve(self, sock: MirrorSocket) -> None:
        query = dict(parse_qsl(urlsplit(sock.path).query))
        with self._lock:
            self.topics[id(sock)] = (sock, set(filter(None, query.get("topic", "").split("|"))))
        super().serve(sock)

    def subscribed(self, topic: str = "com_announcement_en") -> int:
        """How many open connections get `topic`."""
        with self._lock:
            return sum(topic in topics for _, topics in self.topics.values())

    def handle(self, sock: MirrorSocket, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            return
        if not isinstance(message, dict):
            return
        self.commands.append(message)
        command = str(message.get("command", ""))
        topics = set(filter(None, str(message.get("value", "")).split("|")))
        answer = {"type": "COMMAND", "subType": command, "data": "SUCCESS", "code": "00000000"}
        with self._lock:
            _, subscribed = self.topics.setdefault(id(sock), (sock, set()))
            if command == "SUBSCRIBE":
                subscribed |= topics
            elif command == "UNSUBSCRIBE":
                subscribed -= topics
            else:
                answer |= {"data": "FAIL", "code": "00000001"}
        sock.send_json(answer)

    def pinged(self, sock: MirrorSocket) -> None:
        with self._lock:
            self.pings += 1

    def closed(self, sock: MirrorSocket) -> None:
        with self._lock:
            self.topics.pop(id(sock), None)

    def publish(self, data: dict[str, Any], topic: str = "com_announcement_en") -> float:
        message = {"type": "DATA", "topic": topic, "data": json.dumps(data)}
        with self._lock:
            targets = [s for s, topics in self.topics.values() if topic in topics]
        sent = time.time()
        for sock in targets:
            sock.send_json(message)
        return sent
