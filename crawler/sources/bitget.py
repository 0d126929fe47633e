"""Bitget announcements (`/api/v2/public/annoucements`, sic): URLs, envelope check, parser.

The API has no page numbers: it answers the newest announcements of a time window
(`startTime`/`endTime`, ms) and searches only about a month back. A crawl asks for the
newest window first, then walks back with `next_window`:

    window = {}
    while window is not None:
        page = parse_list(fetch(list_url(1, category=c, **window)), ...)
        window = next_window(page, window)

`next_window` ends the next window at the `cTime` of the page's last item (newest first:
the oldest, unless one is pinned above the others), inclusive, so an announcement
sharing that millisecond is not lost; the page after may repeat items
(same `external_id`, harmless to the store). When a window brings nothing older than
its own end, the end steps back one millisecond so the walk always moves; an empty
page ends it.

Identity: `annId`. Time: `cTime` (ms). Body: `annDesc`, plain text (HTML if it holds
tags). Errors: bad JSON or a wrong shape raises `ParseError`; a failure envelope raises
`EnvelopeError` (code 429 is the rate limit). A single item without an id, title or
readable cTime is left out and listed in `ListPage.unusable` (a page whose every item is unusable
raises `ParseError`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from archive.records import ParseError, RawResponse, Record
from crawler.sources.parsing import (
    ApiSource,
    Category,
    ListPage,
    UnusableItemError,
    check_code,
    json_raw,
    load_json,
    read_items,
    split_body,
    text_or_none,
    time_or_none,
)

logger = logging.getLogger(__name__)

SOURCE = ApiSource(
    source="bitget",
    spider="bitget_announcements",
    hosts=("api.bitget.com",),
    list_url="https://api.bitget.com/api/v2/public/annoucements",  # the real, misspelled path
    # No page number or size: the API takes annType, startTime, endTime and language only
    # (Query Announcements, https://www.bitget.com/api-doc/common/notice/Get-All-Notices),
    # so it is paged by time windows (see next_window).
    page_size=0,
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
    languages={"en": "en_US", "zh": "zh_CN"},
    # Documented limit: 20 requests per second per IP; stay at half of it.
    download_delay=0.1,
    concurrency=1,
    rate_limit_codes=frozenset({"429"}),
    article_url="https://www.bitget.com/{locale}/support/articles/{id}",
)

_OK_CODE = "00000"
_SITE_LOCALES = {"en": "en", "zh": "zh-CN"}  # article page path, when annUrl is missing
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def request_headers(language: str = "en") -> dict[str, str]:
    """Headers a list request needs: none, the language is in the query."""
    SOURCE.api_language(language)
    return {}


def list_url(
    page: int = 1,
    *,
    category: str | None = None,
    language: str = "en",
    start_time: int | None = None,
    end_time: int | None = None,
) -> str:
    """The list request of one time window (ms, both ends optional), newest first.

    Bitget has no page numbers: `page` is accepted so a generic spider can call every
    source alike, and only 1 makes sense; later pages come from `next_window`.
    """
    if page != 1:
        raise ValueError("bitget pages by time window: use next_window, not page numbers")
    query: dict[str, str | int] = {"language": SOURCE.api_language(language)}
    if category is not None:
        query["annType"] = category
    if start_time is not None:
        query["startTime"] = start_time
    if end_time is not None:
        query["endTime"] = end_time
    return f"{SOURCE.list_url}?{urlencode(query)}"


def next_window(page: ListPage, window: Mapping[str, int] | None = None) -> dict[str, int] | None:
    """The `list_url` keywords of the window after `page`, or None when the walk is over.

    `window` is the one that gave `page` ({} or None for the first). The next window
    ends at the time of the page's last item (inclusive), or one millisecond before this window's
    end when the page brought nothing older; a `start_time` is carried over.
    """
    times = [r.published_at for r in page.records if r.published_at is not None]
    if not page.records or not times:
        return None
    # The last item, not the oldest: an old announcement pinned above the newest ones
    # would move the next window past every item listed under it.
    end = _ms(times[-1])
    previous_end = (window or {}).get("end_time")
    if previous_end is not None and end >= previous_end:
        end = previous_end - 1
    following: dict[str, int] = {"end_time": end}
    start = (window or {}).get("start_time")
    if start is not None:
        if end < start:
            return None
        following["start_time"] = start
    return following


def check_envelope(data: Any, url: str) -> None:
    """Raise EnvelopeError when the answer's `code` is not "00000"."""
    check_code(data, url, SOURCE, _OK_CODE)


def parse_list(
    body: bytes | str, url: str, *, fetched_at: datetime, language: str = "en"
) -> ListPage:
    """One window's answer: a record per announcement, `annDesc` as the body.

    `has_more` is true for any non-empty page: with no documented page size, only an
    empty window shows the end.
    """
    data = load_json(body, url)
    check_envelope(data, url)
    items = data.get("data")
    if items is None:
        items = []  # a window with nothing in it may answer data: null
    if not isinstance(items, list):
        raise ParseError(url, "data is not a list")
    raw = json_raw(body, url, fetched_at)
    records, unusable = read_items(
        items, url, SOURCE.source, lambda item: _record(item, language, raw)
    )
    return ListPage(records=records, has_more=bool(items), total=None, unusable=unusable)


# --- helpers --------------------------------------------------------------------------------


def _record(item: Any, language: str, raw: RawResponse) -> Record:
    if not isinstance(item, Mapping):
        raise UnusableItemError("not an object")
    ann_id = text_or_none(item.get("annId"))
    if not ann_id:
        raise UnusableItemError("no annId")
    title = text_or_none(item.get("annTitle"))
    if not title:
        raise UnusableItemError(f"{ann_id}: no annTitle")
    published_at = time_or_none(item.get("cTime"))
    if published_at is None:
        raise UnusableItemError(f"{ann_id}: unreadable cTime {item.get('cTime')!r}")
    ann_type = text_or_none(item.get("annType"))
    known = SOURCE.categories.get(ann_type) if ann_type else None
    extra: dict[str, Any] = {"ann_type": ann_type}
    if text_or_none(item.get("annSubType")):
        extra["ann_sub_type"] = text_or_none(item.get("annSubType"))
    if text_or_none(item.get("language")):
        extra["api_language"] = text_or_none(item.get("language"))
    body_html, body_text = split_body(item.get("annDesc"))
    url = text_or_none(item.get("annUrl")) or SOURCE.article_url.format(
        locale=_SITE_LOCALES.get(language, "en"), id=ann_id
    )
    return Record(
        source=SOURCE.source,
        kind="announcement",
        external_id=ann_id,
        language=language,
        url=url,
        title=title,
        body_html=body_html,
        body_text=body_text,
        published_at=published_at,
        category=ann_type,
        event_type=known.event_type if known else None,
        extra=extra,
        raw=raw,
        seen_at=raw.fetched_at,
    )


def _ms(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)
