"""Bithumb notices (`/v1/notices`, Open API v2.1.5): the source's facts and item parser.

The API answers the newest notices in one bare JSON array, newest first by
`published_at`, at most 20 (`count`, default 5): there is no paging, no cursor and no
category filter, so only the newest 20 can ever be read and the archive's history is built
up crawl by crawl. A notice that falls off the list is still there: nothing is marked
removed for it (nothing here or in the navigator does that; only a page answering 404/410
is removed).

Identity: the notice number, the last path segment of `pc_url`
(`https://feed.bithumb.com/notice/1654265`), without its query string or trailing slash;
the stored URL is `https://feed.bithumb.com/notice/<number>`. No body: a record has the
title, the categories and the times. Korean only (language "ko").
Times: `published_at` and `modified_at` are "YYYY-MM-DD HH:MM:SS" in KST (UTC+9, no
summer time) without a zone, as public code reads them; `published_at` is the
publication time, `modified_at` the last edit, stored as `updated_at` (absent on some
notices: then none). A notice without a readable `published_at` is dated by `modified_at`,
with `extra["time_source"] = "modified_at"`.
Category: the first of `categories`; the whole list is kept in `extra["categories"]`.

Errors: the API answers `{"error": {"name", "message"}}` with an HTTP status (400 is read
here and raises `EnvelopeError`; 429 and 403 are blocks, crawler.blocks). Bursts are
answered with a 302 redirect (public notes: a redirect loop), and an empty answer is no
list either: both are blocks (`Facts.throttle_signs`), retried after the host's backoff,
never read as "no notices". Bad JSON or another shape than an array raises `ParseError`.
A single item without a notice number, title or readable `published_at` is left out and
listed in `ListPage.unusable` (an answer whose every item is unusable raises
`ParseError`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta, timezone
from typing import Any

from archive.normalize import TimeParseError, parse_time
from archive.records import ParseError, Record
from crawler.sources.contract import Items, OnePage, Source
from crawler.sources.parsing import (
    Category,
    EnvelopeError,
    UnusableItemError,
    need,
    need_url,
    text_or_none,
)

KST = timezone(timedelta(hours=9), "KST")  # Asia/Seoul: no summer time since 1988

# The labels public code shows (the API has no category filter: these only name the
# event type each label says). The event types are archive.symbols.category_event's.
CATEGORIES = {
    c.key: c
    for c in (
        Category("마켓 추가", "마켓 추가", "listing"),
        Category("입출금", "입출금", "maintenance"),
        Category("거래유의", "거래유의", "product"),
        Category("거래지원종료", "거래지원종료", "delisting"),
        Category("안내", "안내", None),  # every kind of notice
        Category("이벤트", "이벤트", "promotion"),
        Category("점검", "점검", "maintenance"),
        Category("업데이트", "업데이트", "product"),
        Category("신규서비스", "신규서비스", None),
        Category("공시", "공시", "news"),
    )
}


@dataclass(frozen=True)
class _Errors:
    """Bithumb's answers have no envelope; a failure is an object `{"error": {...}}`."""

    def check(self, data: Any, url: str) -> None:
        if isinstance(data, Mapping) and "error" in data:
            error = data["error"] if isinstance(data["error"], Mapping) else {}
            name = text_or_none(error.get("name")) or "error"
            raise EnvelopeError(url, name, text_or_none(error.get("message")) or "")


def _items(data: Any, url: str) -> Items:
    if not isinstance(data, list):
        raise ParseError(url, "answer is not a JSON array of notices")
    return Items(data, has_more=False)  # the newest notices are all there is


def _kst(item: Mapping[str, Any], name: str) -> Any:
    """A KST time field as an aware UTC datetime, or None where it does not read."""
    value = item.get(name)
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return parse_time(value, default_tz=KST)
    except TimeParseError:
        return None


def _record(item: Mapping[str, Any], language: str) -> Record:
    _, number = need_url(item, "pc_url")
    if not number.isdigit():
        raise UnusableItemError(f"pc_url {item.get('pc_url')!r} ends in no notice number")
    title = need(item, "title", number)
    published_at, time_source = _kst(item, "published_at"), None
    if published_at is None:  # dated by its last edit rather than lost
        published_at, time_source = _kst(item, "modified_at"), "modified_at"
    if published_at is None:
        held = f"published_at {item.get('published_at')!r}, modified_at {item.get('modified_at')!r}"
        raise UnusableItemError(f"{number}: no readable time ({held})")
    raw = item.get("categories")
    labels = [c for c in (text_or_none(v) for v in raw) if c] if isinstance(raw, list) else []
    category = labels[0] if labels else None
    known = CATEGORIES.get(category or "")
    return SOURCE.announcement(
        language,
        number,
        SOURCE.article_url.format(id=number),
        title=title,
        published_at=published_at,
        updated_at=_kst(item, "modified_at"),
        category=category,
        event_type=known.event_type if known else None,
        extra={"categories": labels} | ({"time_source": time_source} if time_source else {}),
    )


SOURCE = Source(
    source="bithumb",
    spider="bithumb_announcements",
    hosts=("api.bithumb.com",),
    # 공지사항 조회 (apidocs.bithumb.com, Public API, added 2025-07-17).
    endpoint="https://api.bithumb.com/v1/notices",
    paging=OnePage(size="count"),
    page_size=20,  # the documented maximum (default 5)
    page_sizes=frozenset(range(1, 21)),
    envelope=_Errors(),
    items=_items,
    record=_record,
    categories={},  # no category filter: CATEGORIES names the labels
    category_param="",
    languages={"ko": "ko"},
    language_in="path",  # Korean only: the endpoint takes no language, none is sent
    language_key="",
    answer_statuses=frozenset({400}),  # an error object, refused (quarantined)
    throttle_signs=frozenset({"redirect", "empty"}),
    # Documented limit: 1 request per second per IP (failed calls count too).
    download_delay=1.0,
    article_url="https://feed.bithumb.com/notice/{id}",
)
