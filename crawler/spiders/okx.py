"""OKX announcements (`/api/v5/support/announcements`): list URLs, envelope check, parser.

The API answers 20 announcements a page, newest first by first publication, with no id
and no body: a record has the title, the article URL, the type and the times.

Identity: the article URL's last path segment, the slug ("okx-to-list-..."). OKX's own
docs call it the stable part of the address; the locale prefix ("/zh-hans/help/...") is
left out so every language of one article shares it (`language` tells them apart).
Times: `published_at` is `pTime`, the real first publication; `businessPTime`, the time
the page shows, is kept in `extra["business_ptime"]` (ISO, UTC, ms).
Language: chosen by the `Accept-Language` header (`request_headers`), not by the URL.

Errors: bad JSON or a wrong shape raises `ParseError`; a failure envelope raises
`EnvelopeError` (code 50011 is the rate limit). A single item without a URL, title or
readable pTime is skipped and logged as a warning (a page whose every item is
unusable raises `ParseError`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from archive.normalize import TimeParseError, format_time, parse_time
from archive.records import ParseError, RawResponse, Record
from crawler.spiders.common import ApiSource, Category, EnvelopeError, ListPage

logger = logging.getLogger(__name__)

SOURCE = ApiSource(
    source="okx",
    spider="okx_announcements",
    hosts=("www.okx.com",),
    list_url="https://www.okx.com/api/v5/support/announcements",
    page_size=20,  # fixed by the API: there is no size parameter
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


def _api_language(language: str) -> str:
    try:
        return SOURCE.languages[language]
    except KeyError:
        raise ValueError(f"okx has no {language!r} announcements") from None


def request_headers(language: str = "en") -> dict[str, str]:
    """Headers a list request needs: OKX picks the language by `Accept-Language`."""
    return {"Accept-Language": _api_language(language)}


def list_url(page: int, *, category: str | None = None, language: str = "en") -> str:
    """List page `page` (1-based), of one annType or of all of them.

    The language is not in the URL: send `request_headers(language)`.
    """
    if page < 1:
        raise ValueError(f"pages start at 1, not {page}")
    _api_language(language)
    query: dict[str, str | int] = {}
    if category is not None:
        query["annType"] = category
    query["page"] = page
    return f"{SOURCE.list_url}?{urlencode(query)}"


def check_envelope(data: Any, url: str) -> None:
    """Raise EnvelopeError when the answer's `code` is not "0"."""
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
    """One list answer: a record per announcement (title, URL, times, no body)."""
    data = _load(body, url)
    check_envelope(data, url)
    pages = data.get("data")
    if not isinstance(pages, list) or len(pages) != 1 or not isinstance(pages[0], Mapping):
        raise ParseError(url, "data is not a list of one page object")
    details = pages[0].get("details")
    if not isinstance(details, list):
        raise ParseError(url, "data[0].details is not a list")
    raw = _raw(body, url, fetched_at)
    records: list[Record] = []
    for index, item in enumerate(details):
        try:
            records.append(_record(item, language, raw))
        except _UnusableItemError as skip:
            logger.warning("okx: skipped item %d on %s: %s", index, url, skip)
    if details and not records:
        raise ParseError(url, f"none of the {len(details)} items could be read")
    total_pages = _int_or_none(pages[0].get("totalPage"))
    if total_pages is not None:
        has_more = bool(details) and _page_of(url) < total_pages
    else:
        has_more = len(details) >= SOURCE.page_size
    return ListPage(records=records, has_more=has_more, total=None)


# --- helpers --------------------------------------------------------------------------------


class _UnusableItemError(Exception):
    """One list item that cannot become a record; the rest of the page still can."""


def _record(item: Any, language: str, raw: RawResponse) -> Record:
    if not isinstance(item, Mapping):
        raise _UnusableItemError("not an object")
    url = _text(item.get("url"))
    slug = _slug(url) if url else None
    if not url or not slug:
        raise _UnusableItemError(f"no article URL ({item.get('url')!r})")
    title = _text(item.get("title"))
    if not title:
        raise _UnusableItemError(f"{slug}: no title")
    published_at = _time_or_none(item.get("pTime"))
    if published_at is None:
        raise _UnusableItemError(f"{slug}: unreadable pTime {item.get('pTime')!r}")
    ann_type = _text(item.get("annType"))
    known = SOURCE.categories.get(ann_type) if ann_type else None
    extra: dict[str, Any] = {"ann_type": ann_type}
    business = _time_or_none(item.get("businessPTime"))
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
    segments = [s for s in urlsplit(url).path.split("/") if s]
    return segments[-1] if segments else None


def _page_of(url: str) -> int:
    pages = parse_qs(urlsplit(url).query).get("page") or ["1"]
    return _int_or_none(pages[0]) or 1


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


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _code_key(code: Any) -> str:
    """Codes compare as numbers when they are digits: 0 and "0" are one code."""
    text = str(code).strip()
    return str(int(text)) if text.isdigit() else text


def _same_code(code: Any, expected: str) -> bool:
    return _code_key(code) == _code_key(expected)


def _is_rate_limit(code: Any) -> bool:
    return _code_key(code) in {_code_key(c) for c in SOURCE.rate_limit_codes}
