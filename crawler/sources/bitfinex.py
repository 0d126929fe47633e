"""Bitfinex announcements (the public posts feed `/v2/posts/hist`): facts and parser.

Endpoint: `GET https://api-pub.bitfinex.com/v2/posts/hist?type=1&limit=20`, keyless, the
feed behind https://www.bitfinex.com/posts (public code always sends `type=1` and asks
20 posts; the feed is not in Bitfinex's API reference, and its largest `limit` is not
known). Newest first.

Paging: by the inclusive end cursor `end=<MTS>` ("only records with MTS <= end", as
Bitfinex documents it for its v2 `/hist` endpoints), through
crawler.sources.contract.TimeWindows: the next page ends at the last post's MTS, so it
starts with that post again, and the post counts once. Public code pages by `id=<[0] of
the last post>` instead, but that cursor is undocumented; `end` is the documented one,
needs no mechanism of its own, and never skips a post sharing the cursor's millisecond.
Past the oldest post the feed answers that post alone: a page with nothing unseen ends
the walk there, without asking `end=<MTS - 1>` (which would answer `[]`).

Answer: an array of posts, each an array read by position, never by its length:
`[0]` id, `[1]` MTS (ms, UTC), `[3]` title (plain text that may hold entities such as
`&amp;`, decoded by the archive), `[4]` the body as HTML (may be empty or null). Other
positions are not public and are not read.

Identity: `[0]`. Time: `[1]`. URL: `https://www.bitfinex.com/posts/<[0]>`. Language: the
feed is English (`en`). Body: `[4]` sanitized (crawler.sources.nodetree), its text by
archive.normalize.html_to_text; links to other posts become Link targets.

Errors: v2 answers `["error", <code>, "<message>"]` (HTTP 500 or 429) and, when the IP
goes over the rate limit, `{"error": "ERR_RATE_LIMIT"}` with HTTP 429 (BlockMiddleware
retries every 429 before it reaches here). `ErrorArray` reads both: 11010 (ratelimit),
ERR_RATE_LIMIT and 20060 (maintenance) are retried after the host's backoff, then the run
ends "blocked"; any other code is refused (quarantined, the run ends "partial"). HTTP 500
answers are read (`answer_statuses`) because they carry these arrays. A post without an
id, title or readable MTS is left out and listed in `ListPage.unusable`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

from archive.records import Link, ParseError, Record
from crawler.sources import nodetree
from crawler.sources.contract import Items, Source, TimeWindows
from crawler.sources.parsing import (
    EnvelopeError,
    UnusableItemError,
    first_time,
    int_or_none,
    need,
    same_code,
)

# The positions of a post that are public (public code reads them so); the others are not.
_FIELDS = {0: "id", 1: "mts", 3: "title", 4: "content"}
# Codes that mean "come back later": the rate limit (11010, and the ERR_RATE_LIMIT
# object) and the platform's maintenance (20060), which ends on its own.
_RETRY_CODES = ("11010", "20060", "ERR_RATE_LIMIT")
# https://www.bitfinex.com/posts/<id>, the page of another post.
_POST_PATH = re.compile(r"^/posts/(?P<id>\d+)/?$")


class ErrorArray:
    """Bitfinex v2's error answers: `["error", code, message]`, or `{"error": "..."}`
    where the rate limit cut in; any other object, or no list, is not the feed."""

    def check(self, data: Any, url: str) -> None:
        if isinstance(data, Mapping):
            if "error" not in data:
                raise ParseError(url, "answer is an object, not a list of posts")
            code = str(data["error"])
            message = str(data.get("message") or data.get("msg") or "")
            raise EnvelopeError(url, code, message, rate_limited=_retried(code))
        if not isinstance(data, list):
            raise ParseError(url, f"answer is a {type(data).__name__}, not a list of posts")
        if data and data[0] == "error":
            code = str(data[1]) if len(data) > 1 else ""
            message = str(data[2]) if len(data) > 2 else ""
            raise EnvelopeError(url, code, message, rate_limited=_retried(code))


def _retried(code: str) -> bool:
    return any(same_code(code, retried) for retried in _RETRY_CODES)


def _items(data: list[Any], url: str) -> Items:
    """The posts, each as an object of its public positions; with no documented page
    size, only a page with nothing unseen (or an empty one) shows the end."""
    posts = [_by_position(post) for post in data]
    return Items(posts, bool(posts))


def _by_position(post: Any) -> Any:
    """A post's public positions by name; a post that is no array is left as it is (the
    parser says it is not an object)."""
    if not isinstance(post, list):
        return post
    return {name: post[index] for index, name in _FIELDS.items() if index < len(post)}


def _record(post: Mapping[str, Any], language: str) -> Record:
    post_id = int_or_none(post.get("id"))
    if post_id is None or post_id < 0:
        raise UnusableItemError(f"no post id ({post.get('id')!r})")
    ref = str(post_id)
    title = need(post, "title", ref)
    published_at, _ = first_time(post, ("mts",), ref)
    body_html, body_text, hrefs = nodetree.item_body(
        post.get("content"), SOURCE.article_url.format(id=ref), ref
    )
    return SOURCE.announcement(
        language,
        ref,
        SOURCE.article_url.format(id=ref),
        title=title,
        body_html=body_html,
        body_text=body_text,
        published_at=published_at,
        links=[_link(href) for href in dict.fromkeys(hrefs)],
    )


def _link(href: str) -> Link:
    """A body link; one to another post gets that post as its target."""
    url = urljoin("https://www.bitfinex.com/", href)
    post = _POST_PATH.match(urlsplit(url).path)
    if post and urlsplit(url).hostname == "www.bitfinex.com":
        return Link(url, SOURCE.source, "announcement", post["id"])
    return Link(url)


SOURCE = Source(
    source="bitfinex",
    spider="bitfinex_announcements",
    hosts=("api-pub.bitfinex.com",),
    endpoint="https://api-pub.bitfinex.com/v2/posts/hist",
    paging=TimeWindows(start=None, end="end", size="limit"),
    # What bitfinex.com and public code ask; the feed's largest limit is not documented.
    page_size=20,
    page_sizes=frozenset({8, 20}),
    envelope=ErrorArray(),
    items=_items,
    record=_record,
    categories={},
    category_param="",
    fixed_query={"type": "1"},  # always sent by public code; the mirror requires it
    # No language parameter: the feed is English; the header is what a browser sends.
    languages={"en": "en"},
    language_in="header",
    language_key="Accept-Language",
    # Public code calls the feed as bitfinex.com's own pages do.
    headers_sent={"Origin": "https://www.bitfinex.com", "Referer": "https://www.bitfinex.com/"},
    # v2 errors come as arrays in HTTP 500 answers: read them, not fail on the status.
    answer_statuses=frozenset({500}),
    # Documented REST limit: 10 to 90 requests a minute per IP depending on the endpoint,
    # this one not named: keep to the floor, 10 a minute.
    download_delay=6.0,
    # Over the limit the IP is blocked for 10 to 60 seconds: asking sooner prolongs it.
    block_waits={"rate_limited": 60.0, "rate_limit_code": 60.0},
    article_url="https://www.bitfinex.com/posts/{id}",
)
