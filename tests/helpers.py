"""Helpers the tests import (conftest.py holds the fixtures)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

import scrapy
from scrapy.http import Response
from scrapy.responsetypes import responsetypes
from scrapy.utils.test import get_crawler

from crawler import settings as project
from crawler.mirror import Mirror

# --- spiders in-process: a spider on the project's settings, fed a mirror's answers ----------
# The spider decisions (what to fetch, when to stop, what a 404 becomes) are tested by
# calling the spider's own callbacks with the responses a mirror gives its requests,
# without an engine: what the callbacks yield is what Scrapy would schedule or archive.

S = TypeVar("S", bound=scrapy.Spider)


def make_spider(spidercls: type[S], database: str, **arguments: str) -> S:
    """A spider as `annals crawl` makes it (the project's settings, `-a` arguments),
    on the archive at `database`."""
    values = {name: getattr(project, name) for name in dir(project) if name.isupper()}
    crawler = get_crawler(spidercls, {**values, "ANNALS_DATABASE_URL": database})
    return spidercls.from_crawler(crawler, **arguments)


def answer(mirror: Mirror, request: scrapy.Request) -> Response:
    """The response the mirror gives `request` (404 where it has no route), tied to the
    request as Scrapy's engine ties it (response.meta, response.request)."""
    parts = urlsplit(request.url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    content_type = (request.headers.get("Content-Type") or b"").decode()
    route = mirror.route_for(request.method, target, request.body, content_type)
    if route is None:
        return scrapy.http.HtmlResponse(request.url, status=404, body=b"", request=request)
    body = route.payload(dict(parse_qsl(parts.query, keep_blank_values=True)))
    cls = responsetypes.from_args(headers=route.headers, url=request.url, body=body)
    return cls(request.url, status=route.status, headers=route.headers, body=body, request=request)


def outputs(request: scrapy.Request, response: Response) -> list[Any]:
    """Everything the request's callback yields for `response`."""
    assert request.callback is not None
    result = request.callback(response, **request.cb_kwargs)
    if inspect.isasyncgen(result):
        return asyncio.run(_collect(result))
    return list(result or [])


def start_requests(spider: scrapy.Spider) -> list[scrapy.Request]:
    """The requests the spider starts with."""
    return asyncio.run(_collect(spider.start()))


async def _collect(results: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in results]


def requests_in(results: list[Any]) -> list[scrapy.Request]:
    return [r for r in results if isinstance(r, scrapy.Request)]
