"""Helpers tests share: import them from here, not from conftest."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

import scrapy
from scrapy.crawler import Crawler
from scrapy.http import Response, TextResponse
from scrapy.responsetypes import responsetypes
from scrapy.utils.test import get_crawler

import crawler.settings
from archive.records import Record
from crawler.mirror import Mirror

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
    body = route.payload(dict(parse_qsl(parts.query, keep_blank_values=True)))
    cls = responsetypes.from_args(headers=route.headers, url=request.url, body=body)
    return cls(request.url, status=route.status, headers=route.headers, body=body, request=request)


def records(output: list[Any]) -> list[Record]:
    return [item for item in output if isinstance(item, Record)]


def requests(output: list[Any]) -> list[scrapy.Request]:
    return [item for item in output if isinstance(item, scrapy.Request)]
