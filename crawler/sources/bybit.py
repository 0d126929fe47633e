"""Bybit announcements (`/v5/announcements/index`): list URLs, envelope check, parser.

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

import logging
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from archive.normalize import format_time
from archive.records import ParseError, RawResponse, Record
from archive.urls import url_parts
from crawler.sources.parsing import (
    ApiSource,
    Category,
    ListPage,
    UnusableItemError,
    check_code,
    first_time,
    int_or_none,
    json_raw,
    load_json,
    read_items,
    split_body,
    text_or_none,
    time_or_none,
)

logger = logging.getLogger(__name__)

SOURCE = ApiSource(
    source="bybit",
    spider="bybit_announcements",
    hosts=("api.bybit.com",),
    list_url="https://api.bybit.com/v5/announcements/index",
    # Get Announcement (https://bybit-exchange.github.io/docs/v5/announcement): `limit`,
    # "Limit for data size per page. Default: 20", with no larger size documented, so
    # production asks the documented 20 (and a test may ask fewer).
    page_size=20,
    page_sizes=frozenset(range(1, 21)),
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
    languages={"en": "en-US", "zh": "zh-TW"},  # `locale`; Bybit has no zh-CN
    # The IP limit is 600 requests / 5 s, but going over it bans the IP for 10 minutes:
    # an archive has no need to come near it.
    download_delay=0.5,
    concurrency=1,
    rate_limit_codes=frozenset({"10006"}),
    # "403 access too frequent" means the IP is banned for 10 minutes: asking sooner
    # only prolongs it.
    block_waits={"too_frequent": 600.0},
    # The API gives each item's URL; this is its shape.
    article_url="https://announcements.bybit.com/{locale}/article/{slug}/",
)

_OK_CODE = "0"
# published_at: when the announcement went out, else the author's date (both documented).
_TIMES = ("publishTime", "dateTimestamp")
_UID = re.compile(r"-(blt[0-9a-f]{16})$", re.I)
# Bybit's docs spell the event window both ways; the first spelling found wins.
_EXTRA_TIMES = (
    ("date_timestamp", ("dateTimestamp",)),
    ("start_date_timestamp", ("startDateTimestamp", "startDataTimestamp")),
    ("end_date_timestamp", ("endDateTimestamp", "endDataTimestamp")),
)


def request_headers(language: str = "en") -> dict[str, str]:
    """Headers a list request needs: none, the locale is in the query."""
    SOURCE.api_language(language)
    return {}


def list_url(
    page: int, *, category: str | None = None, language: str = "en", size: int | None = None
) -> str:
    """List page `page` (1-based), of one type or of all of them, of `size` items
    (default: the production size)."""
    if page < 1:
        raise ValueError(f"pages start at 1, not {page}")
    query: dict[str, str | int] = {"locale": SOURCE.api_language(language)}
    if category is not None:
        query["type"] = category
    query |= {"page": page, "limit": SOURCE.check_page_size(size)}
    return f"{SOURCE.list_url}?{urlencode(query)}"


def check_envelope(data: Any, url: str) -> None:
    """Raise EnvelopeError when the answer's `retCode` is not 0."""
    check_code(data, url, SOURCE, _OK_CODE, code="retCode", message="retMsg")


def parse_list(
    body: bytes | str, url: str, *, fetched_at: datetime, language: str = "en"
) -> ListPage:
    """One list answer: a record per announcement, its description as the body."""
    data = load_json(body, url)
    check_envelope(data, url)
    result = data.get("result")
    if not isinstance(result, Mapping) or not isinstance(result.get("list"), list):
        raise ParseError(url, "result.list is not a list")
    items: list[Any] = result["list"]
    raw = json_raw(body, url, fetched_at)
    records, unusable = read_items(
        items, url, SOURCE.source, lambda item: _record(item, language, raw)
    )
    page, limit = _page_of(url)
    total = int_or_none(result.get("total"))
    # Without a total, only a short page shows the end.
    has_more = (bool(items) and page * limit < total) if total is not None else len(items) >= limit
    return ListPage(records=records, has_more=has_more, total=total, unusable=unusable)


# --- helpers --------------------------------------------------------------------------------


def _record(item: Any, language: str, raw: RawResponse) -> Record:
    if not isinstance(item, Mapping):
        raise UnusableItemError("not an object")
    url = text_or_none(item.get("url"))
    external_id = _external_id(url) if url else None
    if not url or not external_id:
        raise UnusableItemError(f"no article URL ({item.get('url')!r})")
    title = text_or_none(item.get("title"))
    if not title:
        raise UnusableItemError(f"{external_id}: no title")
    published_at, time_source = first_time(item, _TIMES, external_id)
    kind: Mapping[str, Any] = item["type"] if isinstance(item.get("type"), Mapping) else {}
    key = text_or_none(kind.get("key"))
    known = SOURCE.categories.get(key) if key else None
    extra: dict[str, Any] = {
        "type_key": key,
        "type_title": text_or_none(kind.get("title")),
        "time_source": time_source,
    }
    for name, fields in _EXTRA_TIMES:
        value = next((item[f] for f in fields if item.get(f) is not None), None)
        moment = time_or_none(value)
        if moment is not None:
            extra[name] = format_time(moment)
    tags: list[Any] = item["tags"] if isinstance(item.get("tags"), list) else []
    body_html, body_text = split_body(item.get("description"))
    return Record(
        source=SOURCE.source,
        kind="announcement",
        external_id=external_id,
        language=language,
        url=url,
        title=title,
        body_html=body_html,
        body_text=body_text,
        published_at=published_at,
        category=key,
        event_type=known.event_type if known else None,
        tags=[t for t in (text_or_none(tag) for tag in tags) if t],
        extra=extra,
        raw=raw,
        seen_at=raw.fetched_at,
    )


def _external_id(url: str) -> str | None:
    parts = url_parts(url)
    segments = [s for s in parts.path.split("/") if s] if parts else []
    if not segments:
        return None
    uid = _UID.search(segments[-1])
    return uid.group(1).lower() if uid else segments[-1]


def _page_of(url: str) -> tuple[int, int]:
    query = parse_qs(urlsplit(url).query)
    page = int_or_none((query.get("page") or ["1"])[0]) or 1
    limit = int_or_none((query.get("limit") or [""])[0]) or SOURCE.page_size
    return page, limit
