"""Crypto.com Exchange announcements (`public/get-announcements`): facts and item parser.

The official Exchange API v1 call (added 2025-06-10; note the root: `api.crypto.com/v1/`,
not `/exchange/v1/`) answers every announcement in one answer, newest first, with no
paging parameters (how far back it reaches is not documented). A crawl asks the
unfiltered list once; `-a categories=list,delist,...` asks those category filters instead.
An answer with no items is refused (quarantined), never taken for an empty list.

Identity: `id`, 24 hex characters, the same under every filter. URL:
`https://crypto.com/exchange/announcements/<category>/<id>` (the public scraper's form;
that REST ids are the article ids is modeled; an item without a category gets "list",
the form that scraper used first). Time: `announced_at`, epoch ms in UTC, a number in the
docs' sample and a string in their attribute table: both are read.
Body: `content`, HTML, through the shared sanitizer (crawler.sources.nodetree); the
links it keeps are the record's links. Category: `category` (list, delist, event,
product, system). Kept in `extra`: `product_types` (`product_type` split at its commas),
`instrument_name`, `impacted_params` (PARTIAL / BAU per service) and the event window
`start_time` / `end_time` (ISO, UTC, ms), where given.

Errors: the envelope `{id, method, code, message}`, code 0 on success; 42901
TOO_MANY_REQUESTS is the rate limit (retried after the host's backoff, then "blocked";
with its documented HTTP 429 BlockMiddleware takes it first, with HTTP 200 the envelope
does); 40001 BAD_REQUEST, 40003 INVALID_REQUEST (HTTP 400, read here) and 50001
ERR_INTERNAL raise `EnvelopeError` (refused, quarantined); an HTTP 500 is retried by
Scrapy and then fails the run like any source's (the source did not answer). Bad JSON or
a wrong shape raises `ParseError`. A single item without an id, title or readable `announced_at` is
left out and listed in `ListPage.unusable` (an answer whose every item is unusable
raises `ParseError`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from archive.records import Link, ParseError, Record
from crawler.sources import nodetree
from crawler.sources.contract import Envelope, Items, OnePage, Source
from crawler.sources.parsing import (
    Category,
    first_time,
    iso_time_or_none,
    need,
    text_or_none,
)


def _items(data: Mapping[str, Any], url: str) -> Items:
    result = data.get("result")
    items = result.get("data") if isinstance(result, Mapping) else None
    if not isinstance(items, list):
        raise ParseError(url, "result.data is not a list")
    return Items(items, has_more=False)  # one answer is the whole list


def _record(item: Mapping[str, Any], language: str) -> Record:
    ann_id = need(item, "id")
    title = need(item, "title", ann_id)
    published_at, _ = first_time(item, ("announced_at",), ann_id)
    category = text_or_none(item.get("category"))
    body_html, body_text, hrefs = nodetree.item_body(item.get("content"), SOURCE.endpoint, ann_id)
    return SOURCE.announcement(
        language,
        ann_id,
        SOURCE.article_url.format(category=category or "list", id=ann_id),
        title=title,
        body_html=body_html,
        body_text=body_text,
        published_at=published_at,
        category=category,
        extra=_extra(item),
        links=[Link(href) for href in dict.fromkeys(hrefs)],
    )


def _extra(item: Mapping[str, Any]) -> dict[str, Any]:
    """What research may want besides the record's fields; none of it changes between
    unchanged crawls, and none of it is versioned."""
    products = text_or_none(item.get("product_type"))
    extra: dict[str, Any] = {
        "product_types": [p.strip() for p in products.split(",") if p.strip()] if products else []
    }
    instrument = text_or_none(item.get("instrument_name"))
    if instrument:
        extra["instrument_name"] = instrument
    impacted = item.get("impacted_params")
    if isinstance(impacted, Mapping) and impacted:
        extra["impacted_params"] = {str(k): v for k, v in impacted.items()}
    for name in ("start_time", "end_time"):
        moment = iso_time_or_none(item.get(name))
        if moment:
            extra[name] = moment
    return extra


SOURCE = Source(
    source="cryptocom",
    spider="cryptocom_announcements",
    hosts=("api.crypto.com",),
    # Exchange API v1, "Reference and Market Data API -> public/get-announcements".
    endpoint="https://api.crypto.com/v1/public/get-announcements",
    paging=OnePage(),  # no paging parameters: one answer holds the list
    page_size=0,
    envelope=Envelope(ok="0", messages=("message",), rate_limit_codes=frozenset({"42901"})),
    items=_items,
    record=_record,
    categories={
        c.key: c
        for c in (
            Category("list", "Listing", "listing"),
            Category("delist", "Delisting", "delisting"),
            Category("event", "Event", "promotion"),
            Category("product", "Product", "product"),
            Category("system", "System", "maintenance"),
        )
    },
    category_param="category",
    languages={"en": "en"},
    language_in="path",  # English only: the endpoint takes no language, none is sent
    language_key="",
    answer_statuses=frozenset({400}),  # 40001 / 40003: refused, quarantined
    # The docs' rate-limit table names no limit for this call (ccxt: cost 1); one request
    # fetches everything, so 1 request/s is ample.
    download_delay=1.0,
    article_url="https://crypto.com/exchange/announcements/{category}/{id}",
)
