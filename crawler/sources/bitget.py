"""Bitget announcements (`/api/v2/public/annoucements`, sic): the source's facts and parser.

The API has no page numbers: it answers the newest announcements of a time window
(`startTime`/`endTime`, ms) and searches only about a month back. A crawl asks for the
newest window first, then walks back (crawler.sources.contract.TimeWindows):

    window = {}
    while window is not None:
        page = SOURCE.parse_list(fetch(SOURCE.list_url(category=c, **window)), ...)
        window = SOURCE.paging.next_window(page, window)

Identity: `annId`. Time: `cTime` (ms). Body: `annDesc`, plain text (HTML if it holds
tags). Errors: bad JSON or a wrong shape raises `ParseError`; a failure envelope raises
`EnvelopeError` (code 429 is the rate limit). A single item without an id, title or
readable cTime is left out and listed in `ListPage.unusable` (a page whose every item is unusable
raises `ParseError`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from archive.records import ParseError, Record
from crawler.sources.contract import Envelope, Items, Source, TimeWindows
from crawler.sources.parsing import (
    Category,
    first_time,
    need,
    split_body,
    text_or_none,
)

_SITE_LOCALES = {"en": "en", "zh": "zh-CN"}  # article page path, when annUrl is missing


def _items(data: Mapping[str, Any], url: str) -> Items:
    """A window's items; with no documented page size, only an empty window shows the end."""
    items = data.get("data")
    if items is None:
        items = []  # a window with nothing in it may answer data: null
    if not isinstance(items, list):
        raise ParseError(url, "data is not a list")
    return Items(items, bool(items))


def _record(item: Mapping[str, Any], language: str) -> Record:
    ann_id = need(item, "annId")
    title = need(item, "annTitle", ann_id)
    published_at, _ = first_time(item, ("cTime",), ann_id)
    ann_type = text_or_none(item.get("annType"))
    extra: dict[str, Any] = {"ann_type": ann_type}
    if text_or_none(item.get("annSubType")):
        extra["ann_sub_type"] = text_or_none(item.get("annSubType"))
    if text_or_none(item.get("language")):
        extra["api_language"] = text_or_none(item.get("language"))
    body_html, body_text = split_body(item.get("annDesc"))
    url = text_or_none(item.get("annUrl")) or SOURCE.article_url.format(
        locale=_SITE_LOCALES.get(language, "en"), id=ann_id
    )
    return SOURCE.announcement(
        language,
        ann_id,
        url,
        title=title,
        body_html=body_html,
        body_text=body_text,
        published_at=published_at,
        category=ann_type,
        extra=extra,
    )


SOURCE = Source(
    source="bitget",
    spider="bitget_announcements",
    hosts=("api.bitget.com",),
    endpoint="https://api.bitget.com/api/v2/public/annoucements",  # the real, misspelled path
    # No page number or size: the API takes annType, startTime, endTime and language only
    # (Query Announcements, https://www.bitget.com/api-doc/common/notice/Get-All-Notices).
    paging=TimeWindows(start="startTime", end="endTime"),
    page_size=0,
    envelope=Envelope(ok="00000", rate_limit_codes=frozenset({"429"})),
    items=_items,
    record=_record,
    categories={
        c.key: c
        for c in (
            Category("latest_news", "Latest News", "news"),
            Category("coin_listings", "New Listings", "listing"),
            Category("trading_competitions_promotions", "Competitions and Promotions", "promotion"),
            Category("maintenance_system_updates", "Maintenance/System Updates", "maintenance"),
            Category("symbol_delisting", "Delisting", "delisting"),
            Category("product_updates", "Product Updates", "product"),
            Category("api_trading", "API Trading", "product"),
            Category("security", "Security", "news"),
        )
    },
    category_param="annType",
    languages={"en": "en_US", "zh": "zh_CN"},
    language_in="query",
    language_key="language",
    # Documented limit: 20 requests per second per IP; stay at half of it.
    download_delay=0.1,
    article_url="https://www.bitget.com/{locale}/support/articles/{id}",
)
