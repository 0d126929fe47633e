"""KuCoin announcements (`/api/v3/announcements`): list URLs, envelope check, parser.

Identity: `annId` (a number, kept as text). Time: `cTime` (ms). Body: `annDesc`, plain
text (HTML if it holds tags); `annUrl` is the public page.
Category: `annType` is a list, and every item carries the catch-all
"latest-announcements" (the API's default filter); the category is the first other type
our table knows, else the first known, else the first given. The whole list is kept in
`extra["ann_types"]`. The choice depends on the item only, never on the filter asked
for, so one announcement seen under two filters keeps one category.

Errors: bad JSON or a wrong shape raises `ParseError`; a failure envelope raises
`EnvelopeError` (code 429000 is the rate limit). A single item without an id, title or
readable cTime is left out and listed in `ListPage.unusable` (a page whose every item is unusable
raises `ParseError`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from archive.records import ParseError, RawResponse, Record
from crawler.sources.parsing import (
    ApiSource,
    Category,
    ListPage,
    UnusableItemError,
    check_code,
    int_or_none,
    json_raw,
    load_json,
    read_items,
    split_body,
    text_or_none,
    time_or_none,
)

logger = logging.getLogger(__name__)

_CATCH_ALL = "latest-announcements"

SOURCE = ApiSource(
    source="kucoin",
    spider="kucoin_announcements",
    hosts=("api.kucoin.com",),
    list_url="https://api.kucoin.com/api/v3/announcements",
    # Get Announcements (GET /api/v3/announcements; KuCoin's OpenAPI spec, github.com/
    # Kucoin/kucoin-universal-sdk spec/rest/entry/openapi-spot.json) documents `pageSize`
    # with no bound; 50 is the largest any source shows (SOURCES.md, public clients).
    page_size=50,
    page_sizes=frozenset(range(1, 51)),
    categories={
        c.key: c
        for c in (
            # Every announcement carries it, so it says nothing about the event.
            Category(_CATCH_ALL, "Latest Announcements", None),
            Category("activities", "Latest Activities", "promotion"),
            Category("new-listings", "New Listings", "listing"),
            Category("product-updates", "Product Updates", "product"),
            Category("vip", "Institutions and VIPs", "product"),
            Category("maintenance-updates", "Maintenance Updates", "maintenance"),
            Category("delistings", "Delistings", "delisting"),
            Category("others", "Others", "other"),
            Category("api-campaigns", "API User Activities", "promotion"),
        )
    },
    languages={"en": "en_US", "zh": "zh_HK"},  # `lang`; KuCoin's Chinese is zh_HK
    # Public pool: 2000 weight per 30 s; this endpoint weighs 20, so 100 calls / 30 s.
    download_delay=0.3,
    concurrency=1,
    rate_limit_codes=frozenset({"429000"}),
    # The API gives each item's URL; this is its shape.
    article_url="https://www.kucoin.com/announcement/{slug}?lang={lang}",
)

_OK_CODE = "200000"


def request_headers(language: str = "en") -> dict[str, str]:
    """Headers a list request needs: none, the language is in the query."""
    SOURCE.api_language(language)
    return {}


def list_url(
    page: int, *, category: str | None = None, language: str = "en", size: int | None = None
) -> str:
    """List page `page` (1-based) of one annType (all announcements when None), of `size`
    items (default: the production size)."""
    if page < 1:
        raise ValueError(f"pages start at 1, not {page}")
    query: dict[str, str | int] = {
        "currentPage": page,
        "pageSize": SOURCE.check_page_size(size),
        "annType": category or _CATCH_ALL,
        "lang": SOURCE.api_language(language),
    }
    return f"{SOURCE.list_url}?{urlencode(query)}"


def check_envelope(data: Any, url: str) -> None:
    """Raise EnvelopeError when the answer's `code` is not "200000"."""
    check_code(data, url, SOURCE, _OK_CODE)


def parse_list(
    body: bytes | str, url: str, *, fetched_at: datetime, language: str = "en"
) -> ListPage:
    """One list answer: a record per announcement, `annDesc` as the body."""
    data = load_json(body, url)
    check_envelope(data, url)
    result = data.get("data")
    if not isinstance(result, Mapping) or not isinstance(result.get("items"), list):
        raise ParseError(url, "data.items is not a list")
    items: list[Any] = result["items"]
    raw = json_raw(body, url, fetched_at)
    records, unusable = read_items(
        items, url, SOURCE.source, lambda item: _record(item, language, raw)
    )
    current = int_or_none(result.get("currentPage"))
    total_pages = int_or_none(result.get("totalPage"))
    if current is not None and total_pages is not None:
        has_more = bool(items) and current < total_pages
    else:
        size = int_or_none(result.get("pageSize")) or SOURCE.page_size
        has_more = len(items) >= size
    total = int_or_none(result.get("totalNum"))
    return ListPage(records=records, has_more=has_more, total=total, unusable=unusable)


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
    url = text_or_none(item.get("annUrl"))
    if not url:
        # The page's address is a slug the API alone knows.
        raise UnusableItemError(f"{ann_id}: no annUrl")
    ann_types = _types(item.get("annType"))
    category = _category(ann_types)
    known = SOURCE.categories.get(category) if category else None
    extra: dict[str, Any] = {"ann_types": ann_types}
    if text_or_none(item.get("language")):
        extra["api_language"] = text_or_none(item.get("language"))
    body_html, body_text = split_body(item.get("annDesc"))
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
        category=category,
        event_type=known.event_type if known else None,
        extra=extra,
        raw=raw,
        seen_at=raw.fetched_at,
    )


def _types(value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value]
    return [t for t in (text_or_none(v) for v in values) if t]


def _category(ann_types: list[str]) -> str | None:
    known = [t for t in ann_types if t in SOURCE.categories]
    specific = [t for t in known if t != _CATCH_ALL]
    choices = specific or known or ann_types
    return choices[0] if choices else None
