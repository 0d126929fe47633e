"""Kraken announcements (the posts of Kraken's WordPress blog): the source's facts and parser.

Kraken announces listings, delistings, maintenance, promotions and product or API
changes as posts on blog.kraken.com, read through the WordPress REST API (no key):

    GET https://blog.kraken.com/wp-json/wp/v2/posts?order=desc&orderby=date&_fields=...
        &page=N&per_page=100

Paging: by `page` from 1, newest first; `per_page` is WordPress's documented maximum,
100 (REST API reference "Posts": 1-100, default 10). One unfiltered list holds every
category. The walk goes on while pages bring posts, until the page past the last answers
HTTP 400 `{"code": "rest_post_invalid_page_number", ...}` (WordPress core), the normal
end of the list, which `items` reads as "no more pages" (the navigator lets 400 answers
through, `answer_statuses`); any other 400 is a refusal. A short page is not taken for
the last: a cache or a plugin in front of WordPress may answer fewer than asked. The
REST list does not float sticky posts to the top (core's `prepare_items_query` sets
`ignore_sticky_posts`), and a known post on top would not end a walk anyway (only a
page with nothing new does). A post
published between two requests shifts the list by one: the same post then comes on two
pages, and is one document (identity is `id`).

Identity: `id` (an integer WordPress never changes; slug and link can be edited).
Time: `date_gmt` read as UTC (WordPress defines it as GMT; no milliseconds). Never
`date`: it is the site's local time with no zone (modeled as America/Los_Angeles, not
verified), ambiguous at the autumn change; a post without a readable `date_gmt` is
unusable rather than dated by a guess. `modified_gmt` (UTC) is `updated_at`.
Title: `title.rendered`, HTML entities decoded (`&#8217;`, `&#038;`). Body:
`content.rendered` (the full post; `excerpt` is a 55-word summary), sanitized by the
shared allow-list (crawler.sources.nodetree) into body_html, its links kept as Link rows.
URL: `link` as served (`https://blog.kraken.com/<category path>/<slug>`), the `guid`
shortlink (`?p=<id>`) only when a post has no link. Category: the slug of the category
the permalink is built from (WordPress takes the post's lowest-id category), read from
the link's path and checked against the post's `category-<slug>` classes; every slug and
the category and tag ids are kept in `extra`. Category names would need a second request
(`/wp-json/wp/v2/categories`) on every run; the slugs say as much to the event rules.

Not asked (`_fields`) nor stored, because they change without an edit: `_links` (its
`version-history` count moves with every revision), `sticky`, comment and ping status,
`featured_media`, the excerpt; of `class_list` only the `category-<slug>` classes are read.

Errors: bad JSON or an answer that is no array raises `ParseError`; an error object
other than the end of the list raises `EnvelopeError`. WordPress itself has no rate
limit; Cloudflare in front of the blog (modeled) answers 429 with Retry-After 30 (its
error 1015) or a 403 managed challenge (`cf-mitigated: challenge`): both are blocks
(crawler.blocks), retried after the host's backoff, never parsed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from archive.normalize import clean_title
from archive.records import Link, ParseError, Record
from archive.symbols import category_event
from crawler.sources import nodetree
from crawler.sources.contract import Bare, Items, PageNumbers, Source
from crawler.sources.parsing import (
    EnvelopeError,
    UnusableItemError,
    first_time,
    text_or_none,
    time_or_none,
)

END_OF_LIST = "rest_post_invalid_page_number"  # WordPress's answer to a page past the last
_CATEGORY_CLASS = "category-"  # post_class() names each of a post's categories so
_PAGES = PageNumbers("page", "per_page")
# The post fields `_record` reads: the only ones a list request asks for.
FIELDS = (
    "id", "date_gmt", "modified_gmt", "link", "guid", "slug", "title", "content",
    "categories", "tags", "class_list", "author",
)  # fmt: skip


def _items(data: Any, url: str) -> Items:
    """A page of posts (a bare array), or the error object WordPress answers instead."""
    if isinstance(data, list):
        return Items(data, bool(data))
    if isinstance(data, Mapping) and "code" in data:
        code = str(data["code"])
        if code == END_OF_LIST:
            return Items([], False)
        raise EnvelopeError(url, code, text_or_none(data.get("message")) or "")
    raise ParseError(url, "answer is not an array of posts")


def _rendered(item: Mapping[str, Any], name: str) -> str | None:
    value = item.get(name)
    return value.get("rendered") if isinstance(value, Mapping) else None


def _post_id(item: Mapping[str, Any]) -> str:
    value = item.get("id")
    if isinstance(value, bool) or not (
        isinstance(value, int) or (isinstance(value, str) and value.isdigit())
    ):
        raise UnusableItemError(f"no integer id ({value!r})")
    return str(int(value))


def _ids(value: Any) -> list[int]:
    if not isinstance(value, list):
        return []
    return [v for v in value if isinstance(v, int) and not isinstance(v, bool)]


def _category_slugs(item: Mapping[str, Any]) -> list[str]:
    classes = item.get("class_list")
    if not isinstance(classes, list):
        return []  # WordPress before 6.5 has no class_list
    return [
        c.removeprefix(_CATEGORY_CLASS)
        for c in classes
        if isinstance(c, str) and c.startswith(_CATEGORY_CLASS) and len(c) > len(_CATEGORY_CLASS)
    ]


def _primary_category(url: str, slugs: list[str]) -> str | None:
    """The category the permalink is built from: the path segment before the post's slug
    when it is one of the post's categories (or when the classes name none), else the
    first category named."""
    segments = [s for s in url.split("?", 1)[0].split("/")[3:] if s]
    parent = segments[-2] if len(segments) >= 2 else None
    if parent and (parent in slugs or not slugs):
        return parent
    return slugs[0] if slugs else None


def _record(item: Mapping[str, Any], language: str) -> Record:
    post_id = _post_id(item)
    title = clean_title(text_or_none(_rendered(item, "title")))
    if not title:
        raise UnusableItemError(f"{post_id}: no title")
    published_at, _ = first_time(item, ("date_gmt",), post_id)
    extra: dict[str, Any] = {}
    url = text_or_none(item.get("link"))
    if url is None:
        url = text_or_none(_rendered(item, "guid"))
        extra["url_source"] = "guid"
    if url is None:
        raise UnusableItemError(f"{post_id}: no link")
    body_html, body_text, hrefs = nodetree.item_body(_rendered(item, "content"), url, post_id)
    slugs = _category_slugs(item)
    category = _primary_category(url, slugs)
    extra |= {
        "slug": text_or_none(item.get("slug")),
        "category_slugs": slugs,
        "category_ids": _ids(item.get("categories")),
        "tag_ids": _ids(item.get("tags")),
        "author_id": item.get("author") if isinstance(item.get("author"), int) else None,
    }
    content = item.get("content")
    if isinstance(content, Mapping) and content.get("protected") is True:
        extra["protected"] = True  # a password-protected post: the API answers no body
    return SOURCE.announcement(
        language,
        post_id,
        url,
        title=title,
        body_html=body_html,
        body_text=body_text,
        published_at=published_at,
        updated_at=time_or_none(item.get("modified_gmt")),
        category=category,
        event_type=category_event(category),
        extra=extra,
        links=[Link(href) for href in dict.fromkeys(hrefs)],
    )


SOURCE = Source(
    source="kraken",
    spider="kraken_announcements",
    hosts=("blog.kraken.com",),
    endpoint="https://blog.kraken.com/wp-json/wp/v2/posts",
    paging=_PAGES,
    # WordPress documents per_page 1-100 (default 10); a larger size answers 400.
    page_size=100,
    page_sizes=frozenset(range(1, 101)),
    envelope=Bare(),
    items=_items,
    record=_record,
    # Filters take category ids, which differ per site: annals reads the unfiltered list.
    categories={},
    category_param="categories",
    # WordPress has no per-post language; the blog is English. The header is a browser's.
    languages={"en": "en-US,en;q=0.9"},
    language_in="header",
    language_key="Accept-Language",
    # `_fields` (WordPress core) answers only what is read: a page of 100 full bodies stays
    # well under DOWNLOAD_MAXSIZE, and stored answers leave out what moves without an edit.
    fixed_query={"order": "desc", "orderby": "date", "_fields": ",".join(FIELDS)},
    # The public crawlers of this host send a browser's headers (Cloudflare in front).
    headers_sent={
        "Accept": "application/json, text/plain, */*",
        "User-Agent": (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
        ),
        "sec-ch-ua": '"Google Chrome";v="131", "Chromium";v="131", "Not_A Brand";v="24"',
        "sec-ch-ua-mobile": "?0",
        "sec-ch-ua-platform": '"Windows"',
    },
    # The end of the list is a 400 answer (rest_post_invalid_page_number).
    answer_statuses=frozenset({400}),
    # No documented limit (WordPress has none; Cloudflare's is unpublished): one request
    # a second, and a cron run over an unchanged blog asks one page.
    download_delay=1.0,
)
