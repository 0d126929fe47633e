"""Upbit notices (the Korean web notice API): the source's facts, list and detail parsers.

List: `GET https://api-manager.upbit.com/api/v1/announcements?os=web&page=<n>&per_page=20
&category=all` (no key; 2026 code calls the same path on pub-info.upbit.com with the same
answer). Pages by number from 1, 20 a page (the most it takes: a larger `per_page`
answers an error), newest first, ordered by `listed_at`, until `data.total_pages`; an
empty `notices` ends it too. `category` filters by the API's own keys (`all` by default).
`data.fixed_notices` are the pinned notices, repeated on every page and possibly old: they
are read from the first page only, before its notices, so they are archived once and never
stand for how far back a page reaches (the navigator takes its last record's time).

Detail: `GET /api/v1/announcements/<uuid>` (the list has no body): `data.body` is Markdown
with embedded HTML tables, rendered by markdown-it-py (CommonMark, raw HTML kept, GFM
tables) and then sanitized by crawler.sources.nodetree, whose one allow-list decides
what is kept; its links are the record's `links`. `parsing.split_body` is not enough
here: a body with a `<table>` would pass as HTML with its Markdown lists unread, one
without as text with its Markdown marks. The detail endpoint is "heavily rate limited":
a known notice's detail is asked again only when the list shows another title or
`listed_at` (`Source.changed_key`), never because it is young.

Identity: `uuid`, the notice's unique identifier (a string of digits) and the id of its
public page `https://www.upbit.com/service_center/notice?id=<uuid>`; the integer `id` is
internal (kept in `extra["notice_id"]`) and stands in only where an answer has no uuid
(`extra["id_source"] = "id"`).

Time: `first_listed_at`, the first publication, ISO-8601 with `+09:00` (a time without a
zone is read as KST, Asia/Seoul, which has no daylight saving); where it is missing,
`listed_at` (`extra["time_source"] = "listed_at"`). `listed_at` is the last publication,
moved whenever the notice is edited or re-pinned: it is kept in `extra["listed_at"]` (UTC)
and is the version's `updated_at` where it is later than the first publication.

Category: the Korean label the list gives (`거래`, `입출금`, ...), as the store reads it
(archive.symbols knows these labels); `categories` holds the API's filter keys. The
`need_new_badge` / `need_update_badge` flags change with time alone: never stored.

Errors: Upbit's error envelope `{"error": {"name", "message"}}` (on any status; the list
takes its 400 as an answer) and `success: false` raise `EnvelopeError` (quarantined, the
run ends "partial"); bad JSON or a wrong shape raises `ParseError`. Over the limit the
hosts answer 429 with the text `Too many API requests.`, then 418 with a ban: both are
blocks (crawler.blocks), retried after the host's backoff, then given up ("blocked"),
as are Cloudflare's challenge pages. A list item without an id, title or readable time is
left out and listed in `ListPage.unusable`.

Push (`annals watch` with the user's API key, crawler.push.UpbitPush): the private
WebSocket `wss://api.upbit.com/websocket/v1/private` sends each notice published (CREATED)
or updated (UPDATED) with the detail's fields and, asked with `include_body`, its body
(`parse_push`, through the same record functions: one document, one content hash for one
notice state). Its `categories` keys differ from the list's for two labels (`wallet`,
`service`: PUSH_CATEGORIES). No replay: after a reconnect the list is polled.

Confirmed (public code calling the API, Upbit's developer docs on the announcement
object, rate limits and errors): the paths, parameters, answer fields, the time
meanings, the uuid page URL, 429/418, the error envelope, and that an `Origin` header
gets a much lower limit (never sent). Modeled: the order by `listed_at`, pinned notices
on every page, the `staking` filter being the `서비스+` label, that the notice hosts
answer 429 with the same text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

from markdown_it import MarkdownIt

from archive.normalize import clean_title, format_time, parse_time
from archive.records import Link, ParseError, Record
from crawler.sources import nodetree
from crawler.sources.contract import Detail, Items, PageNumbers, Source
from crawler.sources.parsing import (
    Category,
    EnvelopeError,
    UnusableItemError,
    int_or_none,
    text_or_none,
    time_or_none,
)

KST = timezone(timedelta(hours=9), "KST")  # Korea has kept +09:00 all year since 1988

_PAGES = PageNumbers("page", size="per_page")
_TIMES = ("first_listed_at", "listed_at")  # the first publication, else the last one

# CommonMark with raw HTML passed through (the bodies' tables), plus GFM tables.
_MARKDOWN = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
# The line breaks markdown-it writes after block tags are layout: left in, a list's items
# would read as paragraphs. (A break between inline tags is a space in a paragraph: kept.)
_BLOCK_BREAK = re.compile(
    r"(</?(?:p|div|ul|ol|li|table|thead|tbody|tfoot|tr|th|td|h[1-6]|blockquote|pre|hr)\b[^>]*>)\n+",
    re.I,
)


@dataclass(frozen=True)
class UpbitEnvelope:
    """`{"success": true, "data": ...}`; failure is `{"error": {"name", "message"}}`
    (Upbit's API-wide form) or `success: false`."""

    def check(self, data: Any, url: str) -> None:
        if not isinstance(data, Mapping):
            raise ParseError(url, "answer is not an object")
        error = data.get("error")
        if error is not None:
            fields = error if isinstance(error, Mapping) else {"message": error}
            name = text_or_none(fields.get("name")) or "error"
            raise EnvelopeError(url, name, text_or_none(fields.get("message")) or "")
        if data.get("success") is False:
            message = text_or_none(data.get("message")) or ""
            raise EnvelopeError(url, "success=false", message)


def _data(data: Mapping[str, Any], url: str) -> Mapping[str, Any]:
    inner = data.get("data")
    if not isinstance(inner, Mapping):
        raise ParseError(url, "data is not an object")
    return inner


def _items(data: Mapping[str, Any], url: str) -> Items:
    """The page's notices, after the pinned ones on the first page; more while the page
    is before `total_pages` (and not empty)."""
    inner = _data(data, url)
    notices = inner.get("notices")
    if not isinstance(notices, list):
        raise ParseError(url, "data.notices is not a list")
    pinned = inner.get("fixed_notices")
    if pinned is None:
        pinned = []
    if not isinstance(pinned, list):
        raise ParseError(url, "data.fixed_notices is not a list")
    has_more = _PAGES.has_more(
        url, len(notices), SOURCE.page_size, pages=int_or_none(inner.get("total_pages"))
    )
    # Pinned notices repeat on every page: read once, from the first; a page with no
    # notices gives nothing (an empty first page is a broken answer, a later one the end).
    first = _page(url) == 1
    return Items([*pinned, *notices] if first and notices else notices, has_more)


def _page(url: str) -> int:
    return int_or_none((parse_qs(urlsplit(url).query).get(_PAGES.number) or ["1"])[0]) or 1


def _record(item: Mapping[str, Any], language: str) -> Record:
    """A list item as a record without body: the detail's (`_detail`) is the one
    archived, unless the detail is not there (then this one, marked listing_only)."""
    external_id, id_source = _identity(item)
    if external_id is None:
        raise UnusableItemError("no uuid or id")
    title = clean_title(text_or_none(item.get("title")))
    if not title:
        raise UnusableItemError(f"{external_id}: no title")
    published_at, time_source = _published(item)
    if published_at is None:
        held = ", ".join(f"{name} {item.get(name)!r}" for name in _TIMES)
        raise UnusableItemError(f"{external_id}: no readable time ({held})")
    return _announcement(item, language, external_id, id_source, title, published_at, time_source)


def _detail(data: Mapping[str, Any], url: str, language: str, listed: Record | None) -> Record:
    """The archived record of one notice: the detail's fields and its rendered body.

    `listed` is the list record that led here: its id must be the detail's uuid or id,
    and it stands in for a title, time or category the detail lacks."""
    detail = _data(data, url)
    external_id, id_source = _detail_identity(detail, url, listed)
    title = clean_title(text_or_none(detail.get("title"))) or (listed.title if listed else None)
    if not title:
        raise ParseError(url, "detail has no title")
    published_at, time_source = _published(detail)
    if published_at is None and listed is not None and listed.published_at is not None:
        published_at, time_source = listed.published_at, listed.extra.get("time_source")
    if published_at is None:
        raise ParseError(url, f"unreadable first_listed_at {detail.get('first_listed_at')!r}")
    record = _announcement(
        detail, language, external_id, id_source, title, published_at, time_source
    )
    if listed is not None:
        _fill_in(record, listed)
    record.body_html, record.body_text, hrefs = _body(detail.get("body"), url)
    record.links = [Link(href) for href in dict.fromkeys(hrefs)]
    for field, key in (("body_url", "body_url"), ("attachments", "attachments")):
        if detail.get(field):  # kept where given: neither is versioned
            record.extra[key] = detail[field]
    return record


def _detail_identity(
    detail: Mapping[str, Any], url: str, listed: Record | None
) -> tuple[str, str | None]:
    """The detail's (external id, id source): the listed one's, which it must answer for."""
    if listed is None:
        external_id, id_source = _identity(detail)
        if external_id is None:
            raise ParseError(url, "detail has no uuid or id")
        return external_id, id_source
    ids = {i for i in (text_or_none(detail.get(k)) for k in ("uuid", "id")) if i}
    if ids and listed.external_id not in ids:
        shown = "/".join(sorted(ids))
        raise ParseError(url, f"detail is for {shown}, not the listed {listed.external_id}")
    return listed.external_id, "id" if listed.extra.get("id_source") == "id" else None


def _fill_in(record: Record, listed: Record) -> None:
    """What the list said and the detail does not: its category, and what the next list
    is compared with (Source.changed_key), never missing where the list gave it, or the
    notice would be asked again on every crawl."""
    if record.category is None:
        record.category, record.event_type = listed.category, listed.event_type
    for key in ("listed_at", "notice_id"):
        if key not in record.extra and key in listed.extra:
            record.extra[key] = listed.extra[key]


def _body(body: Any, url: str) -> tuple[str | None, str | None, list[str]]:
    """(body_html, body_text, hrefs kept) of a Markdown body; no body when there is none."""
    if body is None or body == "":
        return None, None, []
    if not isinstance(body, str):
        raise ParseError(url, f"detail body is a {type(body).__name__}, not Markdown")
    return nodetree.html_body(markdown_html(body), url)


def markdown_html(markdown: str) -> str:
    """The HTML of a Markdown body (not yet sanitized), without layout line breaks."""
    return _BLOCK_BREAK.sub(r"\1", _MARKDOWN.render(markdown))


def _announcement(
    item: Mapping[str, Any],
    language: str,
    external_id: str,
    id_source: str | None,
    title: str,
    published_at: datetime,
    time_source: str | None,
) -> Record:
    listed_at = _kst_time(item.get("listed_at"))
    extra: dict[str, Any] = {}
    if listed_at is not None:
        extra["listed_at"] = format_time(listed_at)
    notice_id = int_or_none(item.get("id"))
    if notice_id is not None:
        extra["notice_id"] = notice_id
    if id_source:
        extra["id_source"] = id_source
    if time_source:
        extra["time_source"] = time_source
    category = text_or_none(item.get("category"))
    known = _BY_LABEL.get(category or "")
    return SOURCE.announcement(
        language,
        external_id,
        SOURCE.article_url.format(id=external_id),
        title=title,
        published_at=published_at,
        updated_at=listed_at if listed_at is not None and listed_at > published_at else None,
        category=category,
        event_type=known.event_type if known else None,
        extra=extra,
    )


def _identity(item: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(external id, "id" when the internal id stands in for a missing uuid)."""
    uuid = text_or_none(item.get("uuid"))
    if uuid:
        return uuid, None
    notice_id = text_or_none(item.get("id"))
    return (notice_id, "id") if notice_id else (None, None)


def _published(item: Mapping[str, Any]) -> tuple[datetime | None, str | None]:
    """(publication time, "listed_at" when the last publication stood in for the first)."""
    for name in _TIMES:
        moment = _kst_time(item.get(name))
        if moment is not None:
            return moment, None if name == _TIMES[0] else name
    return None, None


def _kst_time(value: Any) -> datetime | None:
    """A time field in UTC: its own offset where it has one (always +09:00), else KST."""
    if not isinstance(value, str) or not value.strip():
        return time_or_none(value)
    try:
        return parse_time(value, default_tz=KST)
    except ValueError:
        return None


# The list's `category` filter keys and the Korean labels the notices carry (the docs
# name eight labels; `staking` is the filter of the `서비스+` label, modeled). Event types
# as archive.symbols reads the labels: the broad ones (안내, 거래, 디지털 자산) leave it to
# the title, which says listing (`마켓 디지털 자산 추가`) or delisting (`거래지원 종료`).
_CATEGORIES = (
    Category("notice", "안내", None),
    Category("trade", "거래", None),
    Category("dtw", "입출금", "maintenance"),
    Category("maintenance", "점검", "maintenance"),
    Category("digital_asset", "디지털 자산", None),
    Category("nft", "NFT", "product"),
    Category("staking", "서비스+", None),
    Category("event", "이벤트", "promotion"),
)
_BY_LABEL = {c.name: c for c in _CATEGORIES}


SOURCE = Source(
    source="upbit",
    spider="upbit_announcements",
    hosts=("api-manager.upbit.com",),
    endpoint="https://api-manager.upbit.com/api/v1/announcements",
    paging=_PAGES,
    # per_page 20 is the most the list takes (public notes: 100 answers an error).
    page_size=20,
    page_sizes=frozenset(range(1, 21)),
    envelope=UpbitEnvelope(),
    # A refused request (per_page over 20, a bad category) answers 400 with the error
    # envelope: read as one, so it is quarantined rather than lost as an HTTP error.
    answer_statuses=frozenset({400}),
    items=_items,
    record=_record,
    categories={c.key: c for c in _CATEGORIES},
    category_param="category",
    category_default="all",
    fixed_query={"os": "web"},  # every client seen sends it
    query_order=("paging", "category", "language"),
    # The Korean feed. The detail also takes `language=en` (an English title and body
    # where one exists), the list does not: not offered.
    languages={"ko": "ko-KR"},
    language_in="header",
    language_key="Accept-Language",
    detail=Detail("https://api-manager.upbit.com/api/v1/announcements/{id}", None, _detail),
    changed_key="listed_at",
    # No published limit for the notice hosts, whose detail is "heavily rate limited"
    # (RSSHub); Upbit's Open API allows 10 quotation requests a second per IP. One
    # request a second stays far under either. (An Origin header would get 1 per 10 s:
    # none is sent.)
    download_delay=1.0,
    article_url="https://www.upbit.com/service_center/notice?id={id}",
)


# --- the announcement WebSocket (annals watch, crawler.push.UpbitPush) ----------------------
# docs.upbit.com "websocket-announcement" (from 2026-08-31): the private endpoint, a JWT in
# the handshake; type `announcement`, events CREATED and UPDATED, realtime only (no replay).

PUSH_URL = "wss://api.upbit.com/websocket/v1/private"
PUSH_TYPE = "announcement"
PUSH_PING = "PING"  # Upbit's text keep-alive, answered with {"status": "UP"}
# The list's filter keys -> the WebSocket's `categories` keys, which differ for two labels:
# 입출금 is `wallet` there (the list's `dtw`), 서비스+ is `service` (the list's `staking`).
PUSH_CATEGORIES = {
    "notice": "notice",
    "trade": "trade",
    "dtw": "wallet",
    "maintenance": "maintenance",
    "digital_asset": "digital_asset",
    "nft": "nft",
    "staking": "service",
    "event": "event",
}
# A pushed notice's category, WebSocket key -> the label the list and the detail give, so
# that a push and the detail of one notice state have one content hash.
_PUSH_LABELS = {PUSH_CATEGORIES[c.key]: c.name for c in _CATEGORIES}


def push_request(ticket: str, categories: list[str] | None = None) -> list[dict[str, Any]]:
    """The subscription message: a ticket, the announcement type with its body, the
    DEFAULT format. `categories` are the list's filter keys; none asks for every category
    (the docs: omitted, all are sent), so a category Upbit adds is not missed."""
    data_type: dict[str, Any] = {"type": PUSH_TYPE, "include_body": True}
    if categories:
        data_type["categories"] = [PUSH_CATEGORIES[key] for key in categories]
    return [{"ticket": ticket}, data_type, {"format": "DEFAULT"}]


def push_error(message: Any) -> tuple[str, str] | None:
    """(name, message) of Upbit's WebSocket error answer `{"error": {"name", "message"}}`
    (INVALID_AUTH, WRONG_FORMAT, INVALID_PARAM, ...), else None."""
    if not isinstance(message, Mapping) or not isinstance(message.get("error"), Mapping):
        return None
    error = message["error"]
    return text_or_none(error.get("name")) or "error", text_or_none(error.get("message")) or ""


def parse_push(body: bytes | str, url: str = PUSH_URL) -> Record | None:
    """The record an `announcement` message carries: the detail's fields (uuid, title,
    category, first_listed_at, listed_at) and, with include_body, its Markdown body, read
    by the list's and the detail's own functions: the same document, identity and URL, and
    for the same notice state the same content hash. A message without its body (Upbit
    sends null for a large one) is marked `extra.push_incomplete`: its detail completes it.

    The event (CREATED, UPDATED) is kept in `extra.pushed` and decides nothing: an edit is
    a new version by the store's own rule. None for any other message (`{"status": "UP"}`,
    an error answer); ParseError for bytes that are no JSON or a notice that cannot be a
    record."""
    try:
        message = json.loads(body)
    except ValueError as exc:
        raise ParseError(url, f"not JSON: {exc}") from None
    if not isinstance(message, Mapping) or message.get("type") != PUSH_TYPE:
        return None
    category = text_or_none(message.get("category"))
    item = {**message, "category": _PUSH_LABELS.get(category or "", category)}
    try:
        record = _record(item, next(iter(SOURCE.languages)))
    except UnusableItemError as exc:
        raise ParseError(url, f"pushed notice unusable: {exc}") from None
    event = text_or_none(message.get(_PUSH_EVENT))
    record.extra["pushed"] = event or PUSH_TYPE
    if message.get("body") is None:
        record.extra["push_incomplete"] = True
        return record
    record.body_html, record.body_text, hrefs = _body(message.get("body"), url)
    record.links = [Link(href) for href in dict.fromkeys(hrefs)]
    return record


# The field that names the event. Modeled: the reference's answer table was not at hand;
# nothing but extra.pushed reads it.
_PUSH_EVENT = "event_type"
