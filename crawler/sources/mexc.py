"""MEXC announcements (the help centre's JSON): the source's facts, and parsers of its
list and article answers.

MEXC publishes no announcement API; this is the JSON its `www.mexc.com/support` pages
load, as public scrapers and bots call it (lowweihong/crypto-exchange-news-crawler
`spiders/mexc.py`, 2025-06; zh-CN and zh-TW monitors; `MexcScraper` classes; the same
`/help/announce/api/...` paths on Ourbit, MEXC's sister site).

List: `GET /help/announce/api/<locale>/section/<sectionId>/articles?page=N&perPage=P`,
locale in the path (`en-US`, `zh-CN`). Section 360000254192 is the announcements
category and lists every announcement (the default); its subsections are optional
filters (`-a categories=...`), of which only the listings subsection 15425930840735 is
confirmed by public code. Answer `{"code":0,"msg":"success","data":{"results":[...],
"pageCount":N}}`; paging by `page` up to `pageCount` (an empty `results` ends it too).
Page size: no doc; public code asks 3, 8, 10, 20 or 30 (50 and 60 are seen once each,
unverified), so production asks 30, the largest of those, and a backfill needs a third
of the pages 10 would take.

Pinned articles sit at the top of the first page however old they are (public code
re-sorts by `createdAt` for that reason): the navigator stops only on a page with
nothing new, dates a page by its last item, and lists each id once per run.

Identity: the article `id` (a 14-digit number, kept as its digits), the same in every
section; one announcement listed under the top section and a subsection is one document.
URL: `routerUrl`, a path on https://www.mexc.com (else `/support/articles/<id>`, with
the locale first for other languages). Time: `createdAt`, ISO-8601 in UTC with `Z`,
with or without fractional seconds; a time without zone is read as UTC too (never the
crawling machine's zone). Category: the `parentSections` names (joined by ", " when
there are several), else the known section's; `sectionId` is kept in `extra`.

Body: the list has none. Each new or changed article's detail,
`GET /help/announce/api/<locale>/article/<id>` → `{"code":0,"data":{"body":"<html>"}}`
(modelled on Ourbit, not verified on www.mexc.com), is fetched once and its body
archived, sanitized by crawler.sources.nodetree's allow-list, with its text; links to
other MEXC articles become links to those documents. The listed record gives id,
title, time and category (the detail's own are used only when it is reparsed alone).

Errors: bad JSON or a wrong shape raises `ParseError`; a `code` other than 0 raises
`EnvelopeError` (no rate-limit code is known). A single item without an id, title or
readable time is left out and listed in `ListPage.unusable`. Blocks are answers, not
envelopes: `www.mexc.com` answers a 403 "Access Denied" page to clients it does not
trust, or a Cloudflare managed challenge (403, `cf-mitigated: challenge`); both are
blocks to crawler.blocks, retried then given up, never parsed and never a deletion.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

from archive.normalize import clean_title
from archive.records import Link, ParseError, Record
from crawler.sources import nodetree
from crawler.sources.contract import Detail, Envelope, Items, PageNumbers, Source
from crawler.sources.parsing import (
    Category,
    UnusableItemError,
    first_time,
    int_or_none,
    text_or_none,
)

ORIGIN = "https://www.mexc.com"
_ANNOUNCEMENTS = "360000254192"  # the top section: every announcement

_PAGES = PageNumbers("page", size="perPage")


def _items(data: Mapping[str, Any], url: str) -> Items:
    result = data.get("data")
    if not isinstance(result, Mapping) or not isinstance(result.get("results"), list):
        raise ParseError(url, "data.results is not a list")
    items: list[Any] = result["results"]
    pages = int_or_none(result.get("pageCount"))
    return Items(items, _PAGES.has_more(url, len(items), SOURCE.page_size, pages=pages))


def _record(item: Mapping[str, Any], language: str) -> Record:
    """A record without body: the detail's (`_detail`) is the one archived."""
    article_id = _article_id(item.get("id"))
    title = clean_title(text_or_none(item.get("title")))
    if not title:
        raise UnusableItemError(f"{article_id}: no title")
    published_at, _ = first_time(item, ("createdAt",), article_id)
    section_id = _digits(item.get("sectionId"))
    extra: dict[str, Any] = {"section_id": section_id} if section_id else {}
    known = SOURCE.categories.get(section_id or "")
    return SOURCE.announcement(
        language,
        article_id,
        _article_url(article_id, language, item.get("routerUrl")),
        title=title,
        published_at=published_at,
        category=_category(item.get("parentSections"), known),
        event_type=known.event_type if known else None,
        extra=extra,
    )


def _detail(data: Mapping[str, Any], url: str, language: str, listed: Record | None) -> Record:
    """The archived record of one article: the listed record with the detail's body.

    Reparsed alone (`listed` None), the id is the URL's and the title and time must be
    in the detail itself, which Ourbit's answer does not promise: else ParseError.
    """
    detail = data.get("data")
    if not isinstance(detail, Mapping):
        raise ParseError(url, "data is not an object")
    if "body" not in detail:  # null is an article without body; no key, another shape
        raise ParseError(url, "data has no body")
    body = detail["body"]
    if body is not None and not isinstance(body, str):
        raise ParseError(url, f"data.body is a {type(body).__name__}, not HTML")
    article_id = _id_in_url(url)
    if listed is not None and listed.external_id != article_id:
        raise ParseError(url, f"detail is for {article_id}, not the listed {listed.external_id}")
    own_id = _digits(detail.get("id"))
    if own_id and own_id != article_id:
        raise ParseError(url, f"detail holds article {own_id}, not {article_id}")
    record = listed if listed is not None else _alone(detail, article_id, language, url)
    if not record.title or record.published_at is None:
        raise ParseError(url, f"the listed record of {article_id} has no title or time")
    body_html, body_text, hrefs = nodetree.html_body(body, url)
    return SOURCE.announcement(
        language,
        article_id,
        record.url,
        title=record.title,
        body_html=body_html,
        body_text=body_text,
        published_at=record.published_at,
        category=record.category,
        event_type=record.event_type,
        extra=dict(record.extra),
        links=[_link(href) for href in dict.fromkeys(hrefs)],
    )


def _alone(detail: Mapping[str, Any], article_id: str, language: str, url: str) -> Record:
    """What a detail says of its article when no listing led to it."""
    try:
        return _record({**detail, "id": article_id}, language)
    except UnusableItemError as exc:
        raise ParseError(url, f"detail without its listing: {exc}") from None


# --- helpers --------------------------------------------------------------------------------


def _digits(value: Any) -> str | None:
    """An id as its digits: a JSON number or a digit string (never a float's repr)."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return str(value)
    text = text_or_none(value) if isinstance(value, str) else None
    return text if text and text.isdigit() else None


def _article_id(value: Any) -> str:
    article_id = _digits(value)
    if not article_id:
        raise UnusableItemError(f"no usable id ({value!r})")
    return article_id


# /help/announce/api/<locale>/article/<id>
_DETAIL_PATH = re.compile(r"/article/(?P<id>\d+)/?$")


def _id_in_url(url: str) -> str:
    match = _DETAIL_PATH.search(urlsplit(url).path)
    if not match:
        raise ParseError(url, "not an article detail URL")
    return match["id"]


def _article_url(article_id: str, language: str, router_url: Any = None) -> str:
    """`routerUrl` on the site's origin; else the article page, by id and locale."""
    path = text_or_none(router_url)
    if path:
        url = urljoin(f"{ORIGIN}/", path)
        if urlsplit(url).hostname in SOURCE.hosts:
            return url
    locale = SOURCE.api_language(language)
    prefix = "" if language == next(iter(SOURCE.languages)) else f"/{locale}"
    return f"{ORIGIN}{prefix}{SOURCE.article_url.format(id=article_id)}"


def _category(parents: Any, known: Category | None) -> str | None:
    """The section names the item carries, else its known section's name."""
    listed = parents if isinstance(parents, list) else []
    names = [text_or_none(p.get("name")) for p in listed if isinstance(p, Mapping)]
    named = ", ".join(dict.fromkeys(n for n in names if n))
    return named or (known.name if known else None)


def _link(href: str) -> Link:
    """A body link; one to another MEXC article gets that article as its target."""
    url = urljoin(f"{ORIGIN}/", href)
    article = _ARTICLE_PATH.match(urlsplit(url).path)
    if article and urlsplit(url).hostname in SOURCE.hosts:
        return Link(url, SOURCE.source, "announcement", article["id"])
    return Link(url)


# /support/articles/<id>, or /<locale>/support/articles/<id>
_ARTICLE_PATH = re.compile(r"^(?:/[\w-]+)?/support/articles/(?P<id>\d+)/?$")

# The headers of lowweihong's spider (a desktop Chrome opening the URL), with one fixed
# user agent: MEXC's edge refuses clients that do not look like a browser. The locale is
# in the path, so one Accept-Language serves every language.
_BROWSER = {
    "Accept": (
        "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
        "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"
    ),
    "Accept-Language": "en-GB,en-US;q=0.9,en;q=0.8",
    "Priority": "u=0, i",
    "Sec-Ch-Ua": '"Google Chrome";v="137", "Chromium";v="137", "Not/A)Brand";v="24"',
    "Sec-Ch-Ua-Mobile": "?0",
    "Sec-Ch-Ua-Platform": '"macOS"',
    "Sec-Fetch-Dest": "document",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Site": "none",
    "Sec-Fetch-User": "?1",
    "Upgrade-Insecure-Requests": "1",
    "User-Agent": (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/137.0.0.0 Safari/537.36"
    ),
}


SOURCE = Source(
    source="mexc",
    spider="mexc_announcements",
    hosts=("www.mexc.com",),
    endpoint=f"{ORIGIN}/help/announce/api/{{language}}/section/{{category}}/articles",
    paging=_PAGES,
    # No doc: 30 is the largest size public code asks (3, 8, 10, 20 and 30 are seen).
    page_size=30,
    page_sizes=frozenset({3, 8, 10, 20, 30}),
    envelope=Envelope(ok="0"),
    items=_items,
    record=_record,
    categories={
        c.key: c
        for c in (
            # Every announcement is in it, so it says nothing about the event.
            Category(_ANNOUNCEMENTS, "Announcements", None),
            Category("15425930840735", "New Listings", "listing"),
        )
    },
    category_param="sectionId",  # unused: the section is in the path
    category_default=_ANNOUNCEMENTS,
    languages={"en": "en-US", "zh": "zh-CN"},
    language_in="path",
    language_key="locale",  # unused: the locale is in the path
    headers_sent=_BROWSER,
    detail=Detail(f"{ORIGIN}/help/announce/api/{{language}}/article/{{id}}", None, _detail),
    # No published limit: about one request a second, as the public crawlers go.
    download_delay=1.0,
    article_url="/support/articles/{id}",
)
