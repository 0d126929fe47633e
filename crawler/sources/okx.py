"""OKX announcements (`/api/v5/support/announcements`): list URLs, envelope check, parser.

The API answers 20 announcements a page, newest first by first publication, with no id
and no body: a record has the title, the article URL, the type and the times.

Identity: the article URL's last path segment, the slug ("okx-to-list-..."). OKX's own
docs call it the stable part of the address; the locale prefix ("/zh-hans/help/...") is
left out so every language of one article shares it (`language` tells them apart).
Times: `published_at` is `pTime`, the real first publication, or `businessPTime`, the time
the page shows, when an item has no readable pTime (`extra["time_source"]` names the field
used); `businessPTime` is also kept in `extra["business_ptime"]` (ISO, UTC, ms).
Language: chosen by the `Accept-Language` header (`request_headers`), not by the URL.

Errors: bad JSON or a wrong shape raises `ParseError`; a failure envelope raises
`EnvelopeError` (code 50011 is the rate limit). A single item without a URL, title or
readable time is left out and listed in `ListPage.unusable` (a page whose every item is
unusable raises `ParseError`).
"""

from __future__ import annotations

import logging
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
    text_or_none,
    time_or_none,
)

logger = logging.getLogger(__name__)

SOURCE = ApiSource(
    source="okx",
    spider="okx_announcements",
    hosts=("www.okx.com",),
    list_url="https://www.okx.com/api/v5/support/announcements",
    # Fixed by the API: "20 announcements per page", and no size parameter (Get
    # announcements, https://www.okx.com/docs-v5/en/#rest-api-support-get-announcements).
    page_size=20,
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
    languages={"en": "en-US", "zh": "zh-CN"},  # Accept-Language values
    # Documented limit: 5 requests per 2 seconds per IP.
    download_delay=0.4,
    concurrency=1,
    rate_limit_codes=frozenset({"50011"}),
    # The API gives each item's URL; this is its English form.
    article_url="https://www.okx.com/help/{slug}",
)

_OK_CODE = "0"
# published_at: the first publication, else the time the page shows (both documented).
_TIMES = ("pTime", "businessPTime")


def request_headers(language: str = "en") -> dict[str, str]:
    """Headers a list request needs: OKX picks the language by `Accept-Language`."""
    return {"Accept-Language": SOURCE.api_language(language)}


def list_url(page: int, *, category: str | None = None, language: str = "en") -> str:
    """List page `page` (1-based), of one annType or of all of them.

    The language is not in the URL: send `request_headers(language)`.
    """
    if page < 1:
        raise ValueError(f"pages start at 1, not {page}")
    SOURCE.api_language(language)
    query: dict[str, str | int] = {}
    if category is not None:
        query["annType"] = category
    query["page"] = page
    return f"{SOURCE.list_url}?{urlencode(query)}"


def check_envelope(data: Any, url: str) -> None:
    """Raise EnvelopeError when the answer's `code` is not "0"."""
    check_code(data, url, SOURCE, _OK_CODE)


def parse_list(
    body: bytes | str, url: str, *, fetched_at: datetime, language: str = "en"
) -> ListPage:
    """One list answer: a record per announcement (title, URL, times, no body)."""
    data = load_json(body, url)
    check_envelope(data, url)
    pages = data.get("data")
    if not isinstance(pages, list) or len(pages) != 1 or not isinstance(pages[0], Mapping):
        raise ParseError(url, "data is not a list of one page object")
    details = pages[0].get("details")
    if not isinstance(details, list):
        raise ParseError(url, "data[0].details is not a list")
    raw = json_raw(body, url, fetched_at)
    records, unusable = read_items(
        details, url, SOURCE.source, lambda item: _record(item, language, raw)
    )
    total_pages = int_or_none(pages[0].get("totalPage"))
    if total_pages is not None:
        has_more = bool(details) and _page_of(url) < total_pages
    else:
        has_more = len(details) >= SOURCE.page_size
    return ListPage(records=records, has_more=has_more, total=None, unusable=unusable)


# --- helpers --------------------------------------------------------------------------------


def _record(item: Any, language: str, raw: RawResponse) -> Record:
    if not isinstance(item, Mapping):
        raise UnusableItemError("not an object")
    url = text_or_none(item.get("url"))
    slug = _slug(url) if url else None
    if not url or not slug:
        raise UnusableItemError(f"no article URL ({item.get('url')!r})")
    title = text_or_none(item.get("title"))
    if not title:
        raise UnusableItemError(f"{slug}: no title")
    published_at, time_source = first_time(item, _TIMES, slug)
    ann_type = text_or_none(item.get("annType"))
    known = SOURCE.categories.get(ann_type) if ann_type else None
    extra: dict[str, Any] = {"ann_type": ann_type, "time_source": time_source}
    business = time_or_none(item.get("businessPTime"))
    if business is not None:
        extra["business_ptime"] = format_time(business)
    return Record(
        source=SOURCE.source,
        kind="announcement",
        external_id=slug,
        language=language,
        url=url,
        title=title,
        published_at=published_at,
        category=ann_type,
        event_type=known.event_type if known else None,
        extra=extra,
        raw=raw,
        seen_at=raw.fetched_at,
    )


def _slug(url: str) -> str | None:
    parts = url_parts(url)
    segments = [s for s in parts.path.split("/") if s] if parts else []
    return segments[-1] if segments else None


def _page_of(url: str) -> int:
    pages = parse_qs(urlsplit(url).query).get("page") or ["1"]
    return int_or_none(pages[0]) or 1
