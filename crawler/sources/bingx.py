"""BingX announcements (official content API, `/openApi/content/v1/announcement`): the
source's facts and parser.

The API (BingX's own doc, GitHub BingX-API/api-ai-skills, `skills/announcement/`) needs no
key or signature, but every request must carry `X-SOURCE-KEY: BX-AI-SKILL`. It lists one
notice-centre module at a time (`contentType`, eleven case-sensitive values; left out, it
answers a default module the doc does not name), so a crawl walks every module
(`walk_categories`). Pages by number from 1 (`page`); no page size is documented, so none
is sent, and pages are taken to hold 10 (modeled): more follow while the items read so
far are fewer than `data.total`, and an empty `list` ends a walk.

Identity: items carry no id; the article id is the trailing number of the item's `url`
(the doc's `link`), absolute or relative to https://bingx.com, which is also the stored
URL. Time: `releaseTime` (ISO 8601 with `+08:00`, what the live API sends), else the
doc's `time` (`"2026-03-15 12:00:00"`, no zone, read as UTC+8, noted as
`extra["time_source"] = "time"`). Body: `content`, plain text (HTML if it holds tags),
its entities decoded. Category: the item's `type` where it names a module, else the module
asked; an announcement in two modules is one document, its category the first it was
archived from (the navigator keeps it).

Errors: success is `code` 0; `100410` (rate limit, with HTTP 200 and no Retry-After) and
`100500` (system busy) are retried with the host's backoff, then blocked; any other code
is refused. Bad JSON or a wrong shape raises `ParseError`, as does a first page with no
items whose `total` says there are some. An item without a usable URL, title or time is
left out and listed in `ListPage.unusable`. Limits: per IP, typically 1-3 requests a
second for public endpoints: one a second here. The fallback host
(`open-api.bingx.pro`, for network errors only) is not used.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

from archive.normalize import TimeParseError, clean_title, parse_time
from archive.records import ParseError, Record
from crawler.sources.contract import Envelope, Items, PageNumbers, Source
from crawler.sources.parsing import (
    Category,
    UnusableItemError,
    int_or_none,
    need,
    split_body,
    text_or_none,
)

SITE = "https://bingx.com"
UTC8 = timezone(timedelta(hours=8), "UTC+8")  # BingX states its times in UTC+8
PAGE_SIZE = 10  # not documented and not sent: the size pages are taken to hold (modeled)
_MODULE = "contentType"
_TRAILING_ID = re.compile(r"(\d+)/*$")

_PAGES = PageNumbers("page")


def _items(data: Mapping[str, Any], url: str) -> Items:
    result = data.get("data")
    if not isinstance(result, Mapping) or not isinstance(result.get("list"), list):
        raise ParseError(url, "data.list is not a list")
    items: list[Any] = result["list"]
    total = int_or_none(result.get("total"))
    query = parse_qs(urlsplit(url).query)
    page = int_or_none(query.get("page", ["1"])[0]) or 1
    if not items and page == 1 and total:
        raise ParseError(url, f"first page lists no items though total is {total}")
    asked = query[_MODULE][0] if query.get(_MODULE) else None
    listed = [{_MODULE: asked, **item} if isinstance(item, Mapping) else item for item in items]
    # A page fuller than the modeled size shows the real one (one caller gets 15).
    size = max(len(items), PAGE_SIZE)
    return Items(listed, _PAGES.has_more(url, len(items), size, total=total))


def article(item: Mapping[str, Any]) -> tuple[str, str]:
    """An item's absolute article URL (`url`, else the doc's `link`) and its id, the URL
    path's trailing number; UnusableItemError without one."""
    given = text_or_none(item.get("url")) or text_or_none(item.get("link"))
    if not given:
        raise UnusableItemError("no url or link")
    url = urljoin(f"{SITE}/", given)
    found = _TRAILING_ID.search(urlsplit(url).path)
    if not found:
        raise UnusableItemError(f"no article id at the end of {given!r}")
    return url, found.group(1)


def _record(item: Mapping[str, Any], language: str) -> Record:
    url, article_id = article(item)
    title = clean_title(need(item, "title", article_id))
    if not title:
        raise UnusableItemError(f"{article_id}: no title")
    extra: dict[str, Any] = {}
    published_at = time_utc8(item.get("releaseTime"))
    if published_at is None:
        published_at = time_utc8(item.get("time"))
        if published_at is None:
            held = f"releaseTime {item.get('releaseTime')!r}, time {item.get('time')!r}"
            raise UnusableItemError(f"{article_id}: no readable time ({held})")
        extra["time_source"] = "time"
    body_html, body_text = split_body(item.get("content"))
    if body_text is not None:
        body_text = html.unescape(body_text)
    given_type = text_or_none(item.get("type"))
    module: str | None
    if given_type in SOURCE.categories:
        module = given_type
    else:
        module = text_or_none(item.get(_MODULE))
        if given_type:
            extra["type"] = given_type  # a module the doc does not list
    return SOURCE.announcement(
        language,
        article_id,
        url,
        title=title,
        body_html=body_html,
        body_text=body_text,
        published_at=published_at,
        category=module,
        extra=extra,
    )


def time_utc8(value: Any) -> datetime | None:
    """A BingX time in UTC, one without a zone read as UTC+8; None when it does not read."""
    try:
        return parse_time(value, default_tz=UTC8)
    except TimeParseError:
        return None


SOURCE = Source(
    source="bingx",
    spider="bingx_announcements",
    hosts=("open-api.bingx.com",),
    endpoint="https://open-api.bingx.com/openApi/content/v1/announcement",
    paging=_PAGES,
    page_size=0,  # the doc names no page size
    envelope=Envelope(ok="0", rate_limit_codes=frozenset({"100410", "100500"})),
    items=_items,
    record=_record,
    categories={
        c.key: c
        for c in (
            Category("LatestAnnouncements", "Latest Announcements", None),
            Category("LatestPromotions", "Latest Promotions", "promotion"),
            Category("ProductUpdates", "Product Updates", "product"),
            Category("AssetMaintenance", "Asset Maintenance", "maintenance"),
            Category("SystemMaintenance", "System Maintenance", "maintenance"),
            Category("SpotListing", "Spot Listing", "listing"),
            Category("FuturesListing", "Futures Listing", "listing"),
            Category("InnovationListing", "Innovation Listing", "listing"),
            Category("FundingRate", "Funding Rate", None),
            Category("Delisting", "Delisting", "delisting"),
            Category("CryptoScout", "Crypto Scout", None),
        )
    },
    category_param=_MODULE,
    walk_categories=True,  # left out, the API answers one default module only
    query_order=("category", "language", "paging"),
    languages={"en": "en-us", "zh": "zh-tw"},
    language_in="query",
    language_key="language",
    headers_sent={"X-SOURCE-KEY": "BX-AI-SKILL"},  # the doc: every request MUST carry it
    # Per IP, typically 1-3 requests a second for public endpoints (rate-limits.md).
    download_delay=1.0,
    article_url=f"{SITE}/en/support/articles/{{id}}",
)
