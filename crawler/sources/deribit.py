"""Deribit announcements (JSON-RPC `public/get_announcements` over HTTP GET): facts and parser.

Endpoint: `GET https://www.deribit.com/api/v2/public/get_announcements?count=50`, keyless
(docs.deribit.com; `count` is 1 to 50, default 5). Newest first.

Paging: by the end cursor `start_timestamp` ("the most recent timestamp to return the
results for", ms, default now), through crawler.sources.contract.TimeWindows: the next
page ends at the last item's `publication_timestamp`. Whether the bound is inclusive is
not documented; it is read as inclusive (the item comes again and counts once), which
loses nothing if it is not. Past the oldest item the cursor item alone comes back (or an
empty `result`): a page with nothing unseen ends the walk, without asking that
timestamp - 1.

Answer: `{"jsonrpc": "2.0", "result": [...], "usIn", "usOut", "usDiff", "testnet"}`; an
item is `{id, title, body (HTML), publication_timestamp (ms, UTC), important,
confirmation (optional)}`. The envelope's timings change on every call and are not kept.

Identity: `id` (an integer-valued number) as text; it is not a time (an announcement
created before it was published has an id below its publication_timestamp). Time:
`publication_timestamp`. Body: `body` sanitized (crawler.sources.nodetree), its text by
archive.normalize.html_to_text. `important` and `confirmation` go to `extra`. Language:
none given; the feed is English (`en`). URL: Deribit has no public page per
announcement; the one address that answers an announcement is the method itself,
`...get_announcements?start_timestamp=<publication_timestamp>&count=1` (modeled, under
the inclusive reading).

Push (`annals watch`, crawler.push): `public/subscribe` to the channel `announcements` on
`wss://www.deribit.com/ws/api/v2` (keyless, JSON-RPC). A notification is `{"jsonrpc":
"2.0", "method": "subscription", "params": {"channel": "announcements", "data": {...}}}`,
`data` the announcement object of get_announcements (plus `unread` and `action`, whose
values Deribit does not describe: not kept), read by the same `_record` as a listed item,
so a pushed announcement is the same document, with the same content hash, as the list
gives it. No history replay: after a reconnect the list is asked again.

Errors: `{"error": {"code", "message", "data"}}` (`JsonRpc`): 10028 too_many_requests and
10066 too_many_concurrent_requests are rate limits, and 11051 system_maintenance is
treated as one too (the platform comes back by itself: retried after the host's
backoff, then the run ends "blocked", nothing quarantined); any other code is refused
(quarantined, the run ends "partial"). HTTP 400 answers are read (`answer_statuses`),
as JSON-RPC over HTTP sends its errors with that status. An item without an id, title
or readable publication_timestamp is left out and listed in `ListPage.unusable`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from archive.normalize import EPOCH
from archive.records import ParseError, Record
from crawler.sources import nodetree
from crawler.sources.contract import Items, Source, TimeWindows
from crawler.sources.parsing import (
    EnvelopeError,
    UnusableItemError,
    first_time,
    need,
    same_code,
    text_or_none,
)

# Rate limits (10028, 10066) and the platform's maintenance (11051): "come back later".
_RETRY_CODES = ("10028", "10066", "11051")


class JsonRpc:
    """A JSON-RPC 2.0 answer: its `error` object says failure, else `result` is the data."""

    def check(self, data: Any, url: str) -> None:
        if not isinstance(data, Mapping) or not ("result" in data or "error" in data):
            raise ParseError(url, "answer is no JSON-RPC object (no result or error)")
        error = data.get("error")
        if error is None:
            return
        if not isinstance(error, Mapping):
            raise EnvelopeError(url, "", str(error))
        code = str(error.get("code", ""))
        message = str(error.get("message") or "")
        details = error.get("data")
        reason = text_or_none(details.get("reason")) if isinstance(details, Mapping) else None
        if reason and reason != message:
            message = f"{message} ({reason})" if message else reason
        limited = any(same_code(code, retried) for retried in _RETRY_CODES)
        raise EnvelopeError(url, code, message, rate_limited=limited)


def _items(data: Mapping[str, Any], url: str) -> Items:
    """The answer's announcements; with pages that may come short of `count` before the
    end, only a page with nothing unseen (or an empty one) shows the end."""
    result = data.get("result")
    if not isinstance(result, list):
        raise ParseError(url, "result is not a list")
    return Items(result, bool(result))


def _record(item: Mapping[str, Any], language: str) -> Record:
    ann_id = _id(item.get("id"))
    title = need(item, "title", ann_id)
    published_at, _ = first_time(item, ("publication_timestamp",), ann_id)
    body_html, body_text, _ = nodetree.item_body(item.get("body"), SOURCE.endpoint, ann_id)
    extra: dict[str, Any] = {
        name: item[name]
        for name in ("important", "confirmation")
        if isinstance(item.get(name), bool)
    }
    return SOURCE.announcement(
        language,
        ann_id,
        SOURCE.article_url.format(timestamp=_ms(published_at)),
        title=title,
        body_html=body_html,
        body_text=body_text,
        published_at=published_at,
        extra=extra,
    )


PUSH_URL = "wss://www.deribit.com/ws/api/v2"
PUSH_CHANNEL = "announcements"


def parse_push(body: bytes, url: str = PUSH_URL) -> Record | None:
    """The record a WebSocket message of the `announcements` channel carries; None for a
    message of another kind (an answer, a heartbeat, another channel). ParseError for a
    notification whose announcement cannot become a record."""
    try:
        message = json.loads(body)
    except ValueError as exc:
        raise ParseError(url, f"not JSON: {exc}") from None
    if not isinstance(message, Mapping) or message.get("method") != "subscription":
        return None
    params = message.get("params")
    if not isinstance(params, Mapping) or params.get("channel") != PUSH_CHANNEL:
        return None
    data = params.get("data")
    if not isinstance(data, Mapping):
        raise ParseError(url, "an announcements notification without its announcement")
    try:
        return _record(data, "en")
    except UnusableItemError as exc:
        raise ParseError(url, f"pushed announcement unusable: {exc}") from None


def _ms(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(milliseconds=1)


def _id(value: Any) -> str:
    """An announcement's id as text: an integer, or a number or digits of one."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UnusableItemError(f"no id ({value!r})")
    return str(value)


SOURCE = Source(
    source="deribit",
    spider="deribit_announcements",
    hosts=("www.deribit.com",),
    endpoint="https://www.deribit.com/api/v2/public/get_announcements",
    paging=TimeWindows(start=None, end="start_timestamp", size="count"),
    page_size=50,  # the documented maximum (default 5)
    page_sizes=frozenset({5, 10, 20, 50}),  # any of 1 to 50; these are enough to choose from
    envelope=JsonRpc(),
    items=_items,
    record=_record,
    categories={},
    category_param="",
    # No language parameter: the feed is English; the header is what a browser sends.
    languages={"en": "en"},
    language_in="header",
    language_key="Accept-Language",
    answer_statuses=frozenset({400}),
    # Credit-based limits (a public request costs credits refilled each second); a crawl
    # asks a handful of pages, one at a time, two a second at most.
    download_delay=0.5,
    concurrency=1,
    article_url=(
        "https://www.deribit.com/api/v2/public/get_announcements"
        "?start_timestamp={timestamp}&count=1"
    ),
)
