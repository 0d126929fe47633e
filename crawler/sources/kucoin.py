"""KuCoin announcements (`/api/v3/announcements`): the source's facts and item parser.

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

from collections.abc import Mapping
from typing import Any

from archive.records import ParseError, Record
from crawler.sources.contract import Envelope, Items, PageNumbers, Source
from crawler.sources.parsing import (
    Category,
    first_time,
    int_or_none,
    need,
    split_body,
    text_or_none,
)

_CATCH_ALL = "latest-announcements"

_PAGES = PageNumbers("currentPage", size="pageSize")


def _items(data: Mapping[str, Any], url: str) -> Items:
    result = data.get("data")
    if not isinstance(result, Mapping) or not isinstance(result.get("items"), list):
        raise ParseError(url, "data.items is not a list")
    items: list[Any] = result["items"]
    size = int_or_none(result.get("pageSize")) or SOURCE.page_size
    pages = int_or_none(result.get("totalPage"))
    return Items(items, _PAGES.has_more(url, len(items), size, pages=pages))


def _record(item: Mapping[str, Any], language: str) -> Record:
    ann_id = need(item, "annId")
    title = need(item, "annTitle", ann_id)
    published_at, _ = first_time(item, ("cTime",), ann_id)
    url = need(item, "annUrl", ann_id)  # the page's address is a slug the API alone knows
    ann_types = _types(item.get("annType"))
    extra: dict[str, Any] = {"ann_types": ann_types}
    if text_or_none(item.get("language")):
        extra["api_language"] = text_or_none(item.get("language"))
    body_html, body_text = split_body(item.get("annDesc"))
    return SOURCE.announcement(
        language,
        ann_id,
        url,
        title=title,
        body_html=body_html,
        body_text=body_text,
        published_at=published_at,
        category=_category(ann_types),
        extra=extra,
    )


def _types(value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value]
    return [t for t in (text_or_none(v) for v in values) if t]


def _category(ann_types: list[str]) -> str | None:
    known = [t for t in ann_types if t in SOURCE.categories]
    specific = [t for t in known if t != _CATCH_ALL]
    choices = specific or known or ann_types
    return choices[0] if choices else None


SOURCE = Source(
    source="kucoin",
    spider="kucoin_announcements",
    hosts=("api.kucoin.com",),
    endpoint="https://api.kucoin.com/api/v3/announcements",
    # Get Announcements (GET /api/v3/announcements; KuCoin's OpenAPI spec, github.com/
    # Kucoin/kucoin-universal-sdk spec/rest/entry/openapi-spot.json) documents `pageSize`
    # with no bound; 50 is the largest any source shows (SOURCES.md, public clients).
    paging=_PAGES,
    page_size=50,
    page_sizes=frozenset(range(1, 51)),
    envelope=Envelope(ok="200000", rate_limit_codes=frozenset({"429000"})),
    items=_items,
    record=_record,
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
    category_param="annType",
    category_default=_CATCH_ALL,  # the API's own default filter, asked explicitly
    languages={"en": "en_US", "zh": "zh_HK"},  # KuCoin's Chinese is zh_HK
    language_in="query",
    language_key="lang",
    query_order=("paging", "category", "language"),
    # Public pool: 2000 weight per 30 s; this endpoint weighs 20, so 100 calls / 30 s.
    download_delay=0.3,
    # The API gives each item's URL; this is its shape.
    article_url="https://www.kucoin.com/announcement/{slug}?lang={lang}",
)
