"""Helpers tests share: import them from here, not from conftest."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

import orjson
import scrapy
import sqlalchemy as sa
from scrapy.crawler import Crawler
from scrapy.http import Response, TextResponse
from scrapy.responsetypes import responsetypes
from scrapy.utils.test import get_crawler

import crawler.settings
from archive.db import make_engine, upgrade
from archive.normalize import format_time
from archive.records import Record
from crawler.mirror import Mirror

FIXTURES = Path(__file__).parent / "fixtures"

# --- crawlers in the test process --------------------------------------------------------


def project_settings(**overrides: Any) -> dict[str, Any]:
    """annals' settings (crawler.settings, the names Settings.setmodule reads from it),
    with `overrides`."""
    module = crawler.settings
    return {**{name: getattr(module, name) for name in dir(module) if name.isupper()}, **overrides}


def annals_crawler(spidercls: type[scrapy.Spider] | None = None, **overrides: Any) -> Crawler:
    """A crawler as `scrapy crawl` makes one in this project, its extensions made, not
    started: Scrapy's `get_crawler` with annals' settings and `overrides`."""
    return get_crawler(spidercls, settings_dict=project_settings(**overrides))


# --- spiders in process: callbacks fed recorded answers, no download ----------------------

SpiderT = TypeVar("SpiderT", bound=scrapy.Spider)


def spider_on(spider_cls: type[SpiderT], db: Path, **arguments: str) -> SpiderT:
    """A spider of a real (unstarted) Scrapy crawler, archiving into the SQLite file `db`."""
    crawler = annals_crawler(spider_cls, ANNALS_DATABASE_URL=str(db))
    return spider_cls.from_crawler(crawler, **arguments)


def drain(output: AsyncIterator[Any]) -> list[Any]:
    """Everything an async callback (or `start()`) yields."""

    async def collect() -> list[Any]:
        return [item async for item in output]

    return asyncio.run(collect())


def answer(request: scrapy.Request, body: bytes) -> TextResponse:
    """The JSON response `request` gets, as the downloader would hand it to its callback."""
    headers = {"Content-Type": "application/json"}
    return TextResponse(request.url, body=body, headers=headers, request=request)


def feed(request: scrapy.Request, body: bytes) -> list[Any]:
    """What the request's callback yields for the answer `body`."""
    return output(request, answer(request, body))


def output(request: scrapy.Request, response: Response) -> list[Any]:
    """What the request's callback (a generator or an async one) yields for `response`."""
    assert request.callback is not None
    result = request.callback(response, **request.cb_kwargs)
    return drain(result) if inspect.isasyncgen(result) else list(result or [])


def mirror_answer(mirror: Mirror, request: scrapy.Request) -> Response:
    """The response a mirror (crawler.mirror) gives `request`, 404 where it has no route,
    tied to the request as the downloader ties it."""
    parts = urlsplit(request.url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    content_type = (request.headers.get("Content-Type") or b"").decode()
    route = mirror.route_for(request.method, target, request.body, content_type)
    if route is None:
        return scrapy.http.HtmlResponse(request.url, status=404, body=b"", request=request)
    body = route.payload(query_of(request.url))
    cls = responsetypes.from_args(headers=route.headers, url=request.url, body=body)
    return cls(request.url, status=route.status, headers=route.headers, body=body, request=request)


def records(output: list[Any]) -> list[Record]:
    return [item for item in output if isinstance(item, Record)]


def requests(output: list[Any]) -> list[scrapy.Request]:
    return [item for item in output if isinstance(item, scrapy.Request)]


# --- the archive: SQLite and PostgreSQL ---------------------------------------------------

# The server the PostgreSQL tests use (.ci/run starts it); they make their own databases.
PG_ADMIN = os.environ.get("ANNALS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
# Connections that drop the databases tests are done with.
DROPPERS = 8


class PostgresServer:
    """Makes fresh databases on the test server (from an upgraded template, ~50 ms each)
    and drops them: those released while the session goes on, the rest at its end."""

    def __init__(self, admin: Any, prefix: str) -> None:
        self.admin = admin  # an autocommit psycopg connection to the maintenance database
        self.prefix = prefix
        self.names: list[str] = []  # made and not yet dropped
        self._made = 0
        self._dropper = ThreadPoolExecutor(DROPPERS, thread_name_prefix="drop-database")
        self._drops: list[Future[None]] = []
        self.template = self._create()
        engine = make_engine(self.url(self.template))
        upgrade(engine)
        engine.dispose()

    def url(self, name: str) -> str:
        base = sa.engine.make_url(PG_ADMIN)
        return base.set(drivername="postgresql+psycopg", database=name).render_as_string(
            hide_password=False
        )

    def _create(self, template: str | None = None) -> str:
        name = f"{self.prefix}_{self._made}"
        clause = f" TEMPLATE {template} STRATEGY WAL_LOG" if template else ""
        self.admin.execute(f"CREATE DATABASE {name}{clause}")
        self._made += 1
        self.names.append(name)
        return name

    def archive(self) -> str:
        """A new database holding an empty archive at the current schema."""
        return self.url(self._create(self.template))

    def empty(self) -> str:
        """A new, empty database (no tables)."""
        return self.url(self._create())

    def release(self, url: str) -> None:
        """Drop the database of `url`, which its test is done with, while the tests go on."""
        name = sa.engine.make_url(url).database
        self.names.remove(name)  # one of ours, not yet dropped
        self._drops.append(self._dropper.submit(_drop, [name]))

    def drop_all(self) -> None:
        """Drop the rest DROPPERS at a time, wait for the released ones, then drop the
        template. Each DROP DATABASE waits for a checkpoint, which drops running at once
        share: one at a time, at the end of a session, they took minutes."""
        rest = [name for name in self.names if name != self.template]
        self._drops += [self._dropper.submit(_drop, rest[n::DROPPERS]) for n in range(DROPPERS)]
        self._dropper.shutdown(wait=True)
        for drop in self._drops:
            drop.result()
        _drop([self.template])


def _drop(names: list[str]) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
        for name in names:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


RecordFactory = Callable[..., Record]


def rows(engine: sa.Engine, sql: str, **params: Any) -> list[Any]:
    """The rows of a query, values as SQLite stores them on either database: times as
    annals' ISO text, JSON as its compact text (PostgreSQL hands back objects)."""
    with engine.connect() as conn:
        result = list(conn.execute(sa.text(sql), params))
    if engine.dialect.name == "sqlite":
        return result
    return [tuple(_as_sqlite(value) for value in row) for row in result]


def _as_sqlite(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return value


def json_at(engine: sa.Engine, column: str, key: str) -> str:
    """SQL for a member of a JSON column: json_extract on SQLite, -> on PostgreSQL."""
    if engine.dialect.name == "sqlite":
        return f"json_extract({column}, '$.{key}')"
    return f"({column} -> '{key}')"


# --- end-to-end: a local mirror on 127.0.0.1 and `annals crawl` in a subprocess ---------------

FAST = [
    # A local mirror needs no politeness; blocks are retried quickly to keep tests short.
    "-s", "DOWNLOAD_DELAY=0",
    "-s", "AUTOTHROTTLE_ENABLED=False",
    "-s", "ANNALS_BLOCK_BACKOFF=0.05",
]  # fmt: skip


def annals(
    *args: str, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the `annals` command as a user would, in its own process."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    env.pop("ANNALS_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "archive", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env,
        check=False,
    )


def crawl(db: Path, base_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return annals("crawl", *args, "--db", str(db), "--base-url", base_url, *FAST)


def mirror_file(folder: Path, url: str) -> str | None:
    """The file, relative to `folder`, that the mirror of `folder` answers a GET of `url`
    with as it is (its routes.json, as crawler.mirror serves it); None for an answer the
    mirror makes (a listing re-paged to another size than it was recorded at)."""
    route = Mirror(folder).route_for("GET", url)
    file = route.file_for(query_of(url)) if route else None
    return str(file.relative_to(folder)) if file else None


def mirror_body(folder: Path, url: str) -> bytes:
    """The body the mirror of `folder` answers a GET of `url` with."""
    route = Mirror(folder).route_for("GET", url)
    assert route is not None, f"the mirror has no route for {url}"
    return route.payload(query_of(url))


def query_of(url: str) -> dict[str, str]:
    """The query of `url` as the mirror reads it (blank values kept)."""
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


@contextmanager
def crawl_lock_held(url: str) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the archive's crawl lock, as a running crawl would."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import time; from crawler.lock import crawl_lock\n"
         "from scrapy.settings import Settings; settings = Settings()\n"
         "settings.setmodule('crawler.settings')\n"
         f"with crawl_lock({url!r}, settings):\n"
         "    print('locked', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        yield holder
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()


# --- an alert endpoint (Apprise's json:// target) --------------------------------------


class Hook(ThreadingHTTPServer):
    """An HTTP endpoint that keeps every JSON body POSTed to it, after answering the
    first `failures` requests with 500."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), HookHandler)
        self.received: list[dict[str, Any]] = []
        self.requests = 0
        self.failures = 0
        self.lock = threading.Lock()
        # When set, a request is answered only once this holds (or after 30 s): what
        # it saw is in `held`.
        self.hold_until: Callable[[], bool] | None = None
        self.held: list[bool] = []

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.server_address[1]}/hook"

    def bodies(self) -> list[str]:
        return [r["message"] for r in self.received]

    def titles(self) -> list[str]:
        """The announcement title of each alert received, in order."""
        return [alert_field(r["message"], "title") for r in self.received]


class HookHandler(BaseHTTPRequestHandler):
    server: Hook

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.server.hold_until is not None:
            deadline = time.monotonic() + 30
            while not (met := self.server.hold_until()) and time.monotonic() < deadline:
                time.sleep(0.05)
            self.server.held.append(met)
        with self.server.lock:
            self.server.requests += 1
            failing = self.server.failures > 0
            if failing:
                self.server.failures -= 1
            else:
                self.server.received.append(json.loads(body))
        self.send_response(500 if failing else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def alert_field(message: str, name: str) -> str:
    for line in message.splitlines():
        key, _, value = line.partition(": ")
        if key == name:
            return value
    raise AssertionError(f"no {name} in {message!r}")
