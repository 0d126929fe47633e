"""Bybit announcements (`/v5/announcements/index`): the source's facts and item parser.

Each item has a title, a short plain-text description (the record's body), a type, tags,
the article URL and times in ms; there is no id field.

Identity: the article URL ends in `<slug>-blt<16 hex>/`; the `blt...` part is the
entry's uid in Bybit's CMS, the same in every locale, while the slug is built from a
title. So `external_id` is that uid ("blt718732f7bd699da6"); a URL without one falls
back to its last path segment. The locale ("/en-US/") is never part of it.
Times: `published_at` is `publishTime` (when the announcement went out), or the author's
`dateTimestamp` when an item has no readable publishTime (`extra["time_source"]` names the
field used); `dateTimestamp` and the event window `startDateTimestamp`/`endDateTimestamp` (the docs
also spell them `startDataTimestamp`/`endDataTimestamp`) go to `extra` as ISO UTC.
Tags are Bybit's own labels ("Spot Listings"), not tickers: `symbols` is left to the store.

Errors: bad JSON or a wrong shape raises `ParseError`; a failure envelope raises
`EnvelopeError` (retCode 10006 is the rate limit). A single item without a URL, title
or readable time is left out and listed in `ListPage.unusable` (the spider counts and
quarantines it; a page whose every item is unusable raises `ParseError`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from archive.records import ParseError, Record
from crawler.sources.contract import Envelope, Items, PageNumbers, Source
from crawler.sources.parsing import (
    Category,
    first_time,
    int_or_none,
    iso_time_or_none,
    need,
    need_url,
    split_body,
    text_or_none,
)

# published_at: when the announcement went out, else the author's date (both documented).
_TIMES = ("publishTime", "dateTimestamp")
_UID = re.compile(r"-(blt[0-9a-f]{16})$", re.I)
# Bybit's docs spell the event window both ways; the first spelling found wins.
_EXTRA_TIMES = (
    ("date_timestamp", ("dateTimestamp",)),
    ("start_date_timestamp", ("startDateTimestamp", "startDataTimestamp")),
    ("end_date_timestamp", ("endDateTimestamp", "endDataTimestamp")),
)

_PAGES = PageNumbers("page", size="limit")


def _items(data: Mapping[str, Any], url: str) -> Items:
    result = data.get("result")
    if not isinstance(result, Mapping) or not isinstance(result.get("list"), list):
        raise ParseError(url, "result.list is not a list")
    items: list[Any] = result["list"]
    total = int_or_none(result.get("total"))
    return Items(items, _PAGES.has_more(url, len(items), SOURCE.page_size, total=total))


def _record(item: Mapping[str, Any], language: str) -> Record:
    url, segment = need_url(item, "url")
    uid = _UID.search(segment)
    external_id = uid.group(1).lower() if uid else segment
    title = need(item, "title", external_id)
    published_at, time_source = first_time(item, _TIMES, external_id)
    kind: Mapping[str, Any] = item["type"] if isinstance(item.get("type"), Mapping) else {}
    key = text_or_none(kind.get("key"))
    extra: dict[str, Any] = {
        "type_key": key,
        "type_title": text_or_none(kind.get("title")),
        "time_source": time_source,
    }
    for name, fields in _EXTRA_TIMES:
        value = next((item[f] for f in fields if item.get(f) is not None), None)
        moment = iso_time_or_none(value)
        if moment is not None:
            extra[name] = moment
    tags: list[Any] = item["tags"] if isinstance(item.get("tags"), list) else []
    body_html, body_text = split_body(item.get("description"))
    return SOURCE.announcement(
        language,
        external_id,
        url,
        title=title,
        body_html=body_html,
        body_text=body_text,
        published_at=published_at,
        category=key,
        tags=[t for t in (text_or_none(tag) for tag in tags) if t],
        extra=extra,
    )


SOURCE = Source(
    source="bybit",
    spider="bybit_announcements",
    hosts=("api.bybit.com",),
    endpoint="https://api.bybit.com/v5/announcements/index",
    # Get Announcement (https://bybit-exchange.github.io/docs/v5/announcement): `limit`,
    # "Limit for data size per page. Default: 20", with no larger size documented, so
    # production asks the documented 20 (and a test may ask fewer).
    paging=_PAGES,
    page_size=20,
    page_sizes=frozenset(range(1, 21)),
    envelope=Envelope(
        ok="0", code="retCode", messages=("retMsg",), rate_limit_codes=frozenset({"10006"})
    ),
    items=_items,
    record=_record,
    categories={
        c.key: c
        for c in (
            Category("new_crypto", "New Listings", "listing"),
            Category("latest_bybit_news", "Latest Bybit News", "news"),
            Category("delistings", "Delistings", "delisting"),
            Category("latest_activities", "Latest Activities", "promotion"),
            Category("product_updates", "Product Updates", "product"),
            Category("maintenance_updates", "Maintenance Updates", "maintenance"),
            Category("new_fiat_listings", "New Fiat Listings", "listing"),
            Category("other", "Other", "other"),
        )
    },
    category_param="type",
    languages={"en": "en-US", "zh": "zh-TW"},  # Bybit has no zh-CN
    language_in="query",
    language_key="locale",
    # The IP limit is 600 requests / 5 s, but going over it bans the IP for 10 minutes:
    # an archive has no need to come near it.
    download_delay=0.5,
    # "403 access too frequent" means the IP is banned for 10 minutes: asking sooner
    # only prolongs it.
    block_waits={"too_frequent": 600.0},
    # The API gives each item's URL; this is its shape.
    article_url="https://announcements.bybit.com/{locale}/article/{slug}/",
)
