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
readable cTime is skipped and logged as a warning (a page whose every item is unusable
raises `ParseError`).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from archive.normalize import TimeParseError, parse_time
from archive.records import ParseError, RawResponse, Record
from crawler.spiders.common import ApiSource, Category, EnvelopeError, ListPage

logger = logging.getLogger(__name__)

_CATCH_ALL = "latest-announcements"

SOURCE = ApiSource(
    source="kucoin",
    spider="kucoin_announcements",
    hosts=("api.kucoin.com",),
    list_url="https://api.kucoin.com/api/v3/announcements",
    page_size=10,  # the API takes up to 50; the mirror's files are cut at 10
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
_HTML_TAG = re.compile(r"<(?:[a-zA-Z][a-zA-Z0-9]*\b[^>]*|/[a-zA-Z][a-zA-Z0-9]*\s*)>")


def _api_language(language: str) -> str:
    try:
        return SOURCE.languages[language]
    except KeyError:
        raise ValueError(f"kucoin has no {language!r} announcements") from None


def request_headers(language: str = "en") -> dict[str, str]:
    """Headers a list request needs: none, the language is in the query."""
    _api_language(language)
    return {}


def list_url(page: int, *, category: str | None = None, language: str = "en") -> str:
    """List page `page` (1-based) of one annType (all announcements when None)."""
    if page < 1:
        raise ValueError(f"pages start at 1, not {page}")
    query: dict[str, str | int] = {
        "currentPage": page,
        "pageSize": SOURCE.page_size,
        "annType": category or _CATCH_ALL,
        "lang": _api_language(language),
    }
    return f"{SOURCE.list_url}?{urlencode(query)}"


def check_envelope(data: Any, url: str) -> None:
    """Raise EnvelopeError when the answer's `code` is not "200000"."""
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
    """One list answer: a record per announcement, `annDesc` as the body."""
    data = _load(body, url)
    check_envelope(data, url)
    result = data.get("data")
    if not isinstance(result, Mapping) or not isinstance(result.get("items"), list):
        raise ParseError(url, "data.items is not a list")
    items: list[Any] = result["items"]
    raw = _raw(body, url, fetched_at)
    records: list[Record] = []
    for index, item in enumerate(items):
        try:
            records.append(_record(item, language, raw))
        except _UnusableItemError as skip:
            logger.warning("kucoin: skipped item %d on %s: %s", index, url, skip)
    if items and not records:
        raise ParseError(url, f"none of the {len(items)} items could be read")
    current = _int_or_none(result.get("currentPage"))
    total_pages = _int_or_none(result.get("totalPage"))
    if current is not None and total_pages is not None:
        has_more = bool(items) and current < total_pages
    else:
        size = _int_or_none(result.get("pageSize")) or SOURCE.page_size
        has_more = len(items) >= size
    return ListPage(records=records, has_more=has_more, total=_int_or_none(result.get("totalNum")))


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
    url = _text(item.get("annUrl"))
    if not url:
        # The page's address is a slug the API alone knows.
        raise _UnusableItemError(f"{ann_id}: no annUrl")
    ann_types = _types(item.get("annType"))
    category = _category(ann_types)
    known = SOURCE.categories.get(category) if category else None
    extra: dict[str, Any] = {"ann_types": ann_types}
    if _text(item.get("language")):
        extra["api_language"] = _text(item.get("language"))
    body_html, body_text = _body(item.get("annDesc"))
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
    return [t for t in (_text(v) for v in values) if t]


def _category(ann_types: list[str]) -> str | None:
    known = [t for t in ann_types if t in SOURCE.categories]
    specific = [t for t in known if t != _CATCH_ALL]
    choices = specific or known or ann_types
    return choices[0] if choices else None


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


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _code_key(code: Any) -> str:
    """Codes compare as numbers when they are digits: 200000 and "200000" are one code."""
    text = str(code).strip()
    return str(int(text)) if text.isdigit() else text


def _same_code(code: Any, expected: str) -> bool:
    return _code_key(code) == _code_key(expected)


def _is_rate_limit(code: Any) -> bool:
    return _code_key(code) in {_code_key(c) for c in SOURCE.rate_limit_codes}
