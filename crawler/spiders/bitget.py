"""Bitget announcements (`/api/v2/public/annoucements`, sic): URLs, envelope check, parser.

The API has no page numbers: it answers the newest announcements of a time window
(`startTime`/`endTime`, ms) and searches only about a month back. A crawl asks for the
newest window first, then walks back with `next_window`:

    window = {}
    while window is not None:
        page = parse_list(fetch(list_url(1, category=c, **window)), ...)
        window = next_window(page, window)

`next_window` ends the next window at the oldest `cTime` of the page, inclusive, so an
announcement sharing that millisecond is not lost; the page after may repeat items
(same `external_id`, harmless to the store). When a window brings nothing older than
its own end, the end steps back one millisecond so the walk always moves; an empty
page ends it.

Identity: `annId`. Time: `cTime` (ms). Body: `annDesc`, plain text (HTML if it holds
tags). Errors: bad JSON or a wrong shape raises `ParseError`; a failure envelope raises
`EnvelopeError` (code 429 is the rate limit). A single item without an id, title or
readable cTime is skipped and logged as a warning (a page whose every item is unusable
raises `ParseError`).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from archive.normalize import TimeParseError, parse_time
from archive.records import ParseError, RawResponse, Record
from crawler.spiders.common import ApiSource, Category, EnvelopeError, ListPage

logger = logging.getLogger(__name__)

SOURCE = ApiSource(
    source="bitget",
    spider="bitget_announcements",
    hosts=("api.bitget.com",),
    list_url="https://api.bitget.com/api/v2/public/annoucements",  # the real, misspelled path
    page_size=0,  # no page size: paged by time windows (see next_window)
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
_HTML_TAG = re.compile(r"<(?:[a-zA-Z][a-zA-Z0-9]*\b[^>]*|/[a-zA-Z][a-zA-Z0-9]*\s*)>")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _api_language(language: str) -> str:
    try:
        return SOURCE.languages[language]
    except KeyError:
        raise ValueError(f"bitget has no {language!r} announcements") from None


def request_headers(language: str = "en") -> dict[str, str]:
    """Headers a list request needs: none, the language is in the query."""
    _api_language(language)
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
    query: dict[str, str | int] = {"language": _api_language(language)}
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
    ends at the page's oldest time (inclusive), or one millisecond before this window's
    end when the page brought nothing older; a `start_time` is carried over.
    """
    times = [r.published_at for r in page.records if r.published_at is not None]
    if not page.records or not times:
        return None
    end = _ms(min(times))
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
    if not isinstance(data, Mapping) or "code" not in data:
        raise ParseError(url, "answer has no code")
    code = data["code"]
    if not _same_code(code, _OK_CODE):
        raise EnvelopeError(
            url, str(code), str(data.get("msg") or ""), rate_limited=_is_rate_limit(code)
        )


def parse_list(
    body: bytes | str, url: str, *, fetched_at: datetime, language: str = "en"
) -> ListPage:
    """One window's answer: a record per announcement, `annDesc` as the body.

    `has_more` is true for any non-empty page: with no documented page size, only an
    empty window shows the end.
    """
    data = _load(body, url)
    check_envelope(data, url)
    items = data.get("data")
    if items is None:
        items = []  # a window with nothing in it may answer data: null
    if not isinstance(items, list):
        raise ParseError(url, "data is not a list")
    raw = _raw(body, url, fetched_at)
    records: list[Record] = []
    for index, item in enumerate(items):
        try:
            records.append(_record(item, language, raw))
        except _UnusableItemError as skip:
            logger.warning("bitget: skipped item %d on %s: %s", index, url, skip)
    if items and not records:
        raise ParseError(url, f"none of the {len(items)} items could be read")
    return ListPage(records=records, has_more=bool(items), total=None)


# --- helpers --------------------------------------------------------------------------------


class _UnusableItemError(Exception):
    """One list item that cannot become a record; the rest of the page still can."""


def _record(item: Any, language: str, raw: RawResponse) -> Record:
    if not isinstance(item, Mapping):
        raise _UnusableItemError("not an object")
    ann_id = _text(item.get("annId"))
    if not ann_id:
        raise _UnusableItemError("no annId")
    title = _text(item.get("annTitle"))
    if not title:
        raise _UnusableItemError(f"{ann_id}: no annTitle")
    published_at = _time_or_none(item.get("cTime"))
    if published_at is None:
        raise _UnusableItemError(f"{ann_id}: unreadable cTime {item.get('cTime')!r}")
    ann_type = _text(item.get("annType"))
    known = SOURCE.categories.get(ann_type) if ann_type else None
    extra: dict[str, Any] = {"ann_type": ann_type}
    if _text(item.get("annSubType")):
        extra["ann_sub_type"] = _text(item.get("annSubType"))
    if _text(item.get("language")):
        extra["api_language"] = _text(item.get("language"))
    body_html, body_text = _body(item.get("annDesc"))
    url = _text(item.get("annUrl")) or SOURCE.article_url.format(
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


def _body(description: Any) -> tuple[str | None, str | None]:
    """(body_html, body_text): the description is plain text unless it holds tags."""
    text = description if isinstance(description, str) else None
    if text and _HTML_TAG.search(text):
        return text, None
    return None, text


def _load(body: bytes | str, url: str) -> Any:
    try:
        return json.loads(body)
    except ValueError as exc:
        raise ParseError(url, f"not JSON: {exc}") from exc


def _raw(body: bytes | str, url: str, fetched_at: datetime) -> RawResponse:
    # Parsers only see answers the spider got with status 200; it may replace this.
    data = body.encode() if isinstance(body, str) else body
    return RawResponse(url, 200, "application/json", data, fetched_at)


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, bool | Mapping | list):
        return None
    text = str(value).strip()
    return text or None


def _time_or_none(value: Any) -> datetime | None:
    try:
        return parse_time(value)
    except TimeParseError:
        return None


def _code_key(code: Any) -> str:
    """Codes compare as numbers when they are digits: 0, "0" and "00000" are one code."""
    text = str(code).strip()
    return str(int(text)) if text.isdigit() else text


def _same_code(code: Any, expected: str) -> bool:
    return _code_key(code) == _code_key(expected)


def _is_rate_limit(code: Any) -> bool:
    return _code_key(code) in {_code_key(c) for c in SOURCE.rate_limit_codes}
