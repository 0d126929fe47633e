"""A local HTTP server that answers like an exchange, from a folder's routes.json.

The routes format is the samples' ROUTES.md: the first route whose method, path,
query and body match wins; no match answers 404. Tests, `annals demo` and the
benchmarks serve recorded payloads with it on 127.0.0.1, and count what was asked.

A listing recorded at one page size answers any size a spider asks (`Paging`): a
route's `pages` names the recorded pages in order and the query parameters that carry
page number and size, so the production page size is what tests and the demo serve.
"""

from __future__ import annotations

import copy
import json
import math
import sys
import threading
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class Paging:
    """A listing's recorded pages, re-paged to the size asked.

    The answer to page n of size s is the first recorded page with each item list
    (`items`, a dotted path where `[]` means "every element") replaced by items
    (n-1)*s .. n*s-1 of that list's recorded pages concatenated in order; `echo` sets
    fields that repeat the request (`number`, `size`) or count the pages (`pages`).
    A request without a size, or of the recorded size, gets the recorded pages as they are.
    """

    number: str  # the query parameter of the page number (1-based)
    size: str  # the query parameter of the page size
    files: list[Path]  # the recorded pages, first to last
    # e.g. "data.items", "data.catalogs[].articles" for one list per catalog, "" for a bare array
    items: str
    recorded: int  # the page size the files were recorded at
    echo: dict[str, str] = field(default_factory=dict)  # path -> "number" | "size" | "pages"

    @classmethod
    def from_json(cls, spec: dict[str, Any], folder: Path) -> Paging:
        return cls(
            number=spec["number"],
            size=spec["size"],
            files=[folder / name for name in spec["files"]],
            items=spec["items"],
            recorded=int(spec["recorded"]),
            echo=dict(spec.get("echo", {})),
        )

    def file_for(self, query: dict[str, str]) -> Path | None:
        """The recorded page that is the whole answer to `query`, if one is."""
        number, size = _positive(query.get(self.number)) or 1, _positive(query.get(self.size))
        if size not in (None, self.recorded) or number > len(self.files):
            return None
        return self.files[number - 1]

    def payload(self, query: dict[str, str]) -> bytes:
        number = _positive(query.get(self.number)) or 1
        size = _positive(query.get(self.size))
        if size in (None, self.recorded):
            return self.files[min(number, len(self.files)) - 1].read_bytes()
        pages = [json.loads(path.read_bytes()) for path in self.files]
        answer = copy.deepcopy(pages[0])
        slots = _lists(answer, self.items)
        longest = 0
        for index, slot in enumerate(slots):
            recorded = [item for page in pages for item in _nth(_lists(page, self.items), index)]
            longest = max(longest, len(recorded))
            slot[:] = recorded[(number - 1) * size : number * size]
        values = {"number": number, "size": size, "pages": math.ceil(longest / size)}
        for path, what in self.echo.items():
            _set(answer, path, values[what])
        return json.dumps(answer, ensure_ascii=False).encode()


def _positive(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() and int(value) > 0 else None


def _nth(lists: list[list[Any]], index: int) -> list[Any]:
    return lists[index] if index < len(lists) else []


def _lists(document: Any, path: str) -> list[list[Any]]:
    """The lists at a dotted path; "[]" after a key means each element of that list, and
    an empty path the answer itself (a bare array, as WordPress answers)."""
    if not path:
        return [document] if isinstance(document, list) else []
    nodes = [document]
    for step in path.split("."):
        each = step.endswith("[]")
        key = step.removesuffix("[]")
        nodes = [n[key] for n in nodes if isinstance(n, dict) and key in n]
        if each:
            nodes = [element for n in nodes if isinstance(n, list) for element in n]
    return [n for n in nodes if isinstance(n, list)]


def _set(document: Any, path: str, value: int) -> None:
    """Set a field, keeping the recorded type (KuCoin's counters are numbers, OKX's text)."""
    *parents, last = path.split(".")
    node = document
    for key in parents:
        node = node.get(key) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node[last] = str(value) if isinstance(node.get(last), str) else value


@dataclass
class Route:
    method: str
    path: str
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    file: Path | None = None
    content: bytes | None = None  # instead of a file
    query: dict[str, str | None] | None = None
    body: dict[str, Any] | None = None
    pages: Paging | None = None  # a listing re-paged to the size asked

    @classmethod
    def from_json(cls, spec: dict[str, Any], folder: Path) -> Route:
        return cls(
            method=spec.get("method", "GET").upper(),
            path=spec["path"],
            status=int(spec.get("status", 200)),
            headers=dict(spec.get("headers", {})),
            file=folder / spec["file"] if spec.get("file") else None,
            query=spec.get("query"),
            body=spec.get("body"),
            pages=Paging.from_json(spec["pages"], folder) if spec.get("pages") else None,
        )

    def matches(self, method: str, path: str, query: dict[str, str], body: dict[str, Any]) -> bool:
        if method != self.method or path != self.path:
            return False
        for key, value in (self.query or {}).items():
            if value is None and key in query:
                return False
            if value is not None and query.get(key) != value:
                return False
        for key, value in (self.body or {}).items():
            if key not in body or body[key] != value:
                return False
        return True

    def payload(self, query: dict[str, str] | None = None) -> bytes:
        if self.content is not None:
            return self.content
        if self.pages is not None:
            return self.pages.payload(query or {})
        return self.file.read_bytes() if self.file else b""

    def file_for(self, query: dict[str, str]) -> Path | None:
        """The recorded file this route answers `query` with as it is, if any."""
        return self.pages.file_for(query) if self.pages is not None else self.file


@dataclass
class Hit:
    method: str
    path: str
    query: dict[str, str]
    body: dict[str, Any]
    status: int
    at: float


class Mirror:
    """Routes from one or more folders, plus routes a test puts in front of them."""

    def __init__(
        self, *folders: Path, routes: list[Route] | None = None, channels: Sequence[Any] = ()
    ) -> None:
        self.routes: list[Route] = list(routes or [])
        # WebSocket endpoints by path (crawler.mirror_push.Channel), on the same port.
        self.channels: dict[str, Any] = {channel.path: channel for channel in channels}
        for folder in folders:
            specs = json.loads((folder / "routes.json").read_text())
            self.routes.extend(Route.from_json(spec, folder) for spec in specs)
        self.hits: list[Hit] = []
        self._lock = threading.Lock()
        self._reindex()

    def _reindex(self) -> None:
        # Routes by (method, path), in order: a mirror of thousands of pages stays fast.
        self._by_path: dict[tuple[str, str], list[Route]] = {}
        for route in self.routes:
            self._by_path.setdefault((route.method, route.path), []).append(route)

    def prepend(self, *routes: Route) -> None:
        with self._lock:
            self.routes[:0] = routes
            self._reindex()

    def route_for(
        self, method: str, target: str, raw_body: bytes = b"", content_type: str = ""
    ) -> Route | None:
        """The route that answers this request (the first that matches), or None: 404."""
        parsed = urllib.parse.urlsplit(target)
        query = dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))
        body = _decode_body(raw_body, content_type)
        candidates = self._by_path.get((method, parsed.path), [])
        return next((r for r in candidates if r.matches(method, parsed.path, query, body)), None)

    def answer(self, method: str, target: str, raw_body: bytes, content_type: str) -> Route | None:
        """route_for, and the request logged in `hits`."""
        parsed = urllib.parse.urlsplit(target)
        with self._lock:
            route = self.route_for(method, target, raw_body, content_type)
            self.hits.append(
                Hit(
                    method,
                    parsed.path,
                    dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True)),
                    _decode_body(raw_body, content_type),
                    route.status if route else 404,
                    time.monotonic(),
                )
            )
        return route


def _decode_body(raw: bytes, content_type: str) -> dict[str, Any]:
    if not raw:
        return {}
    if "json" in content_type:
        try:
            data = json.loads(raw)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}
    return dict(urllib.parse.parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))


class _Handler(BaseHTTPRequestHandler):
    server: MirrorServer
    protocol_version = "HTTP/1.1"
    # The headers and the body leave in two writes. With Nagle's algorithm on, a body
    # shorter than a segment waited for the client's delayed ACK of the headers (40 ms
    # on Linux's loopback): a keep-alive crawl of 16 connections was held to about
    # 290 pages a second, whatever the crawler did (bench/RESULTS.md, 2026-12-03 evening).
    disable_nagle_algorithm = True

    def _serve(self) -> None:
        channel = self.server.mirror.channels.get(urllib.parse.urlsplit(self.path).path)
        if channel is not None and self.headers.get("Upgrade", "").lower() == "websocket":
            from crawler.mirror_push import accept

            self.close_connection = True
            sock = accept(self, channel)
            if sock is not None:
                channel.serve(sock)
            return
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        route = self.server.mirror.answer(
            self.command, self.path, raw, self.headers.get("Content-Type", "")
        )
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
        payload = (
            route.payload(query) if route else b"<html><body><h1>404 Not Found</h1></body></html>"
        )
        self.send_response(route.status if route else 404)
        headers = route.headers if route else {"Content-Type": "text/html"}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_HEAD = _serve  # noqa: N815 - http.server's names

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the mirror keeps its own log in Mirror.hits


class MirrorServer(ThreadingHTTPServer):
    """`with MirrorServer(mirror) as server:` serves on 127.0.0.1 at a free port."""

    daemon_threads = True

    def __init__(self, mirror: Mirror, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.mirror = mirror
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A crawler that hangs up (a response over its size limit) is not the mirror's error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> MirrorServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(5)
