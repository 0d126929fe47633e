"""Helpers tests share: import them from here, not from conftest."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TypeVar

import scrapy
from scrapy.http import TextResponse
from scrapy.utils.test import get_crawler

from archive.records import Record

# --- spiders in process: callbacks fed recorded answers, no download ----------------------

SpiderT = TypeVar("SpiderT", bound=scrapy.Spider)


def spider_on(spider_cls: type[SpiderT], db: Path, **arguments: str) -> SpiderT:
    """A spider of a real (unstarted) Scrapy crawler, archiving into the SQLite file `db`."""
    crawler = get_crawler(spider_cls, {"ANNALS_DATABASE_URL": str(db)})
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
    assert request.callback is not None
    return drain(request.callback(answer(request, body), **request.cb_kwargs))


def records(output: list[Any]) -> list[Record]:
    return [item for item in output if isinstance(item, Record)]


def requests(output: list[Any]) -> list[scrapy.Request]:
    return [item for item in output if isinstance(item, scrapy.Request)]
