"""A local HTTP server that answers like an exchange, from a folder's routes.json.

The routes format is the samples' ROUTES.md: the first route whose method, path,
query and body match wins; no match answers 404. Tests, `annals demo` and the
benchmarks serve recorded payloads with it on 127.0.0.1, and count what was asked.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


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

    def payload(self) -> bytes:
        if self.content is not None:
            return self.content
        return self.file.read_bytes() if self.file else b""


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

    def __init__(self, *folders: Path, routes: list[Route] | None = None) -> None:
        self.routes: list[Route] = list(routes or [])
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

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        route = self.server.mirror.answer(
            self.command, self.path, raw, self.headers.get("Content-Type", "")
        )
        payload = route.payload() if route else b"<html><body><h1>404 Not Found</h1></body></html>"
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
