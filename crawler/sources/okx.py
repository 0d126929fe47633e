"""OKX announcements (`/api/v5/support/announcements`): the source's facts and item parser.

The API answers 20 announcements a page, newest first by first publication, with no id
and no body: a record has the title, the article URL, the type and the times.

Identity: the article URL's last path segment, the slug ("okx-to-list-..."). OKX's own
docs call it the stable part of the address; the locale prefix ("/zh-hans/help/...") is
left out so every language of one article shares it (`language` tells them apart).
Times: `published_at` is `pTime`, the real first publication, or `businessPTime`, the time
the page shows, when an item has no readable pTime (`extra["time_source"]` names the field
used); `businessPTime` is also kept in `extra["business_ptime"]` (ISO, UTC, ms).
Language: chosen by the `Accept-Language` header (`SOURCE.headers`), not by the URL.

Errors: bad JSON or a wrong shape raises `ParseError`; a failure envelope raises
`EnvelopeError` (code 50011 is the rate limit). A single item without a URL, title or
readable time is left out and listed in `ListPage.unusable` (a page whose every item is
unusable raises `ParseError`).
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
    iso_time_or_none,
    need,
    need_url,
    text_or_none,
)

# published_at: the first publication, else the time the page shows (both documented).
_TIMES = ("pTime", "businessPTime")

_PAGES = PageNumbers("page")


def _items(data: Mapping[str, Any], url: str) -> Items:
    pages = data.get("data")
    if not isinstance(pages, list) or len(pages) != 1 or not isinstance(pages[0], Mapping):
        raise ParseError(url, "data is not a list of one page object")
    details = pages[0].get("details")
    if not isinstance(details, list):
        raise ParseError(url, "data[0].details is not a list")
    total_pages = int_or_none(pages[0].get("totalPage"))
    more = _PAGES.has_more(url, len(details), SOURCE.page_size, pages=total_pages)
    return Items(details, more)


def _record(item: Mapping[str, Any], language: str) -> Record:
    url, slug = need_url(item, "url")
    title = need(item, "title", slug)
    published_at, time_source = first_time(item, _TIMES, slug)
    ann_type = text_or_none(item.get("annType"))
    extra: dict[str, Any] = {"ann_type": ann_type, "time_source": time_source}
    business = iso_time_or_none(item.get("businessPTime"))
    if business is not None:
        extra["business_ptime"] = business
    return SOURCE.announcement(
        language, slug, url, title=title, published_at=published_at, category=ann_type, extra=extra
    )


SOURCE = Source(
    source="okx",
    spider="okx_announcements",
    hosts=("www.okx.com",),
    endpoint="https://www.okx.com/api/v5/support/announcements",
    # Fixed by the API: "20 announcements per page", and no size parameter (Get
    # announcements, https://www.okx.com/docs-v5/en/#rest-api-support-get-announcements).
    paging=_PAGES,
    page_size=20,
    envelope=Envelope(ok="0", rate_limit_codes=frozenset({"50011"})),
    items=_items,
    record=_record,
    # annType keys and descriptions as `/api/v5/support/announcement-types` gives them.
    categories={
        c.key: c
        for c in (
            Category("announcements-new-listings", "New listings", "listing"),
            Category("announcements-delistings", "Delistings", "delisting"),
            Category("announcements-trading-updates", "Trading updates", "product"),
            Category(
                "announcements-deposit-withdrawal-suspension-resumption",
                "Deposit/withdrawal suspension/resumption",
                "maintenance",
            ),
            Category("announcements-p2p-trading", "P2P trading", "product"),
            Category("announcements-web3", "Web3", "product"),
            Category("announcements-earn", "Earn", "product"),
            Category("announcements-jumpstart", "Jumpstart", "promotion"),
            Category("announcements-api", "API", "product"),
            Category("announcements-okb-buy-back-burn", "OKB buy back & burn", "news"),
            Category("announcements-others", "Others", "other"),
        )
    },
    category_param="annType",
    languages={"en": "en-US", "zh": "zh-CN"},
    language_in="header",
    language_key="Accept-Language",
    # Documented limit: 5 requests per 2 seconds per IP.
    download_delay=0.4,
    # The API gives each item's URL; this is its English form.
    article_url="https://www.okx.com/help/{slug}",
)
