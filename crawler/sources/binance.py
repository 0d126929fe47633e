"""Binance announcements: the source's facts, and parsers of its list and detail answers.

The list (`cms/article/list/query`) gives only code, title, releaseDate and catalog, so
its records carry no body: the spider fetches each code's detail and hands the listed
record to `SOURCE.parse_detail`, whose record is the one to archive.

The detail `body` comes in every form Binance has served: a JSON string holding an
html2json node tree (articles from 2020-08 on), the node tree as an object, or an HTML
string (every older article); crawler.sources.nodetree reads them all through one
sanitizer, so one allow-list decides what is kept. The links a body keeps (`<a href>`,
e.g. the trade pages of the pairs it opens) are also the record's `links`.

The current detail answer names its catalogs `firstCatalogId`/`firstCatalogName` (then
second*, third*, often null) where older answers say `catalogId`/`catalogName`; its
`riskWarning` is a second node tree, the risk disclaimer: not the announcement, so it is
kept in `extra` and out of body_html, body_text and the content hash. `lastUpdateTime`
is the version's `updated_at` (0: never updated). Counters (`shareCount`) and the other
fields are kept in `extra`, which never makes a version.

Identity: the article `code`, 32 hex characters for recent articles, digits for older
ones (legacy ids such as `115001032752`); the same in every catalog and language.
Category: the detail's (first) catalog, one of the article's catalogs chosen by Binance,
so an article listed under two catalogs still gives one stable version; every catalog
id seen is kept in `extra["catalog_ids"]`.

Errors: bad JSON or a wrong shape raises `ParseError`; a failure envelope raises
`EnvelopeError`. A single list item without a code, title or readable time is left out
and listed in `ListPage.unusable` (a page whose every item is unusable raises `ParseError`).

Push (the CMS WebSocket, keyed; `annals watch`, crawler.push.BinancePush): the signed
connection query (`push_query`, `signed_query`), the pushed announcement (`parse_push`:
title, time, catalog, body, disclaimer, but no code), its match in a list page
(`push_match`: the same normalized title within PUSH_MATCH_WINDOW of its time) and the
record archived from it at the list's code (`pushed_record`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

from archive.normalize import html_to_text, normalize_text
from archive.records import Link, ParseError, Record
from crawler.sources import nodetree
from crawler.sources.contract import Detail, Envelope, Items, PageNumbers, Source
from crawler.sources.parsing import (
    Category,
    UnusableItemError,
    first_time,
    int_or_none,
    load_json,
    need,
    text_or_none,
    time_or_none,
)

_ARTICLE_TYPE = "1"  # type=1: announcements (the site's other article types are FAQ pages)

_PAGES = PageNumbers("pageNo", size="pageSize")


def _items(data: Mapping[str, Any], url: str) -> Items:
    """The articles of every catalog in the answer, one item per article code with every
    catalog it is shown under (`{"article": ..., "catalogs": [...]}`), so an article
    listed under two catalogs of one answer gives one record."""
    catalogs = _get(data, "data", dict, url).get("catalogs")
    if not isinstance(catalogs, list):
        raise ParseError(url, "data.catalogs is not a list")
    entries: list[dict[str, Any]] = []
    by_code: dict[str, dict[str, Any]] = {}
    has_more = False
    for catalog in catalogs:
        if not isinstance(catalog, Mapping):
            raise ParseError(url, "a catalog is not an object")
        articles = catalog.get("articles")
        if not isinstance(articles, list):  # an empty catalog answers [], never null
            raise ParseError(url, "a catalog's articles is not a list")
        total = int_or_none(catalog.get("total"))
        has_more |= _PAGES.has_more(url, len(articles), SOURCE.page_size, total=total)
        for article in articles:
            code = text_or_none(article.get("code")) if isinstance(article, Mapping) else None
            if code in by_code:
                by_code[code]["catalogs"].append(catalog)
                continue
            entry = {"article": article, "catalogs": [catalog]}
            entries.append(entry)
            if code:
                by_code[code] = entry
    return Items(entries, has_more)


def _list_record(entry: Mapping[str, Any], language: str) -> Record:
    """A record without body: the detail's (`_detail`) is the one archived."""
    article, catalogs = entry["article"], entry["catalogs"]
    if not isinstance(article, Mapping):
        raise UnusableItemError("not an object")
    code = need(article, "code")
    title = need(article, "title", code)
    published_at, _ = first_time(article, ("releaseDate",), code)
    catalog_id = catalogs[0].get("catalogId")
    category, event_type = _category(catalog_id, catalogs[0].get("catalogName"))
    catalog_ids: list[Any] = []  # ids may be anything JSON holds: compared, not hashed
    for catalog in catalogs:
        if catalog.get("catalogId") not in catalog_ids:
            catalog_ids.append(catalog.get("catalogId"))
    extra = {"catalog_id": catalog_id, "catalog_ids": catalog_ids, **_kept(article, _LIST_EXTRA)}
    return SOURCE.announcement(
        language,
        code,
        _article_url(code, language),
        title=title,
        published_at=published_at,
        category=category,
        event_type=event_type,
        extra=extra,
    )


def _detail(data: Mapping[str, Any], url: str, language: str, listed: Record | None) -> Record:
    """The archived record of one article: the detail's title, time, catalog and body.

    `listed` is the list record that led here: its code must match, its time stands in
    when the detail has none, and its catalog ids are merged into `extra["catalog_ids"]`.
    """
    detail = _get(data, "data", dict, url)
    code = text_or_none(detail.get("code")) or (listed.external_id if listed else None)
    if not code:
        raise ParseError(url, "detail has no article code")
    if listed is not None and listed.external_id != code:
        raise ParseError(url, f"detail is for {code}, not the listed {listed.external_id}")
    title = text_or_none(detail.get("title")) or (listed.title if listed else None)
    if not title:
        raise ParseError(url, "detail has no title")
    published_at = time_or_none(detail.get("publishDate"))
    if published_at is None and listed is not None:
        published_at = listed.published_at
    if published_at is None:
        raise ParseError(url, f"unreadable publishDate {detail.get('publishDate')!r}")
    body_html, hrefs = nodetree.body_html(detail.get("body"), url)
    category, event_type, catalog_id = _detail_category(detail, listed)
    catalog_ids = list(listed.extra.get("catalog_ids", [])) if listed else []
    for seen in reversed(_detail_catalog_ids(detail)):
        if seen not in catalog_ids:
            catalog_ids.insert(0, seen)
    extra = {"catalog_id": catalog_id, "catalog_ids": catalog_ids, **_kept(detail, _DETAIL_EXTRA)}
    risk_html, _ = nodetree.body_html(detail.get("riskWarning"), url)
    if risk_html:
        extra["risk_warning"] = html_to_text(risk_html)
    return SOURCE.announcement(
        language,
        code,
        _article_url(code, language),
        title=title,
        body_html=body_html,
        body_text=html_to_text(body_html) if body_html is not None else None,
        published_at=published_at,
        updated_at=_updated_at(detail.get("lastUpdateTime")),
        category=category,
        event_type=event_type,
        extra=extra,
        links=[_link(href) for href in dict.fromkeys(hrefs)],
    )


def _article_url(code: str, language: str = "en") -> str:
    """The public announcement page of one article code."""
    return SOURCE.article_url.format(locale=SOURCE.api_language(language), code=code)


# (field, extra key): list fields kept as they are in `extra`.
_LIST_EXTRA = (("id", "article_id"), ("type", "type"))
# Detail fields kept as they are (never versioned): the list's, counters, SEO text,
# Binance's own version number, and the 2026 answer's pairs/contentJson/footer (null when
# recorded).
_DETAIL_EXTRA = (
    *_LIST_EXTRA,
    ("articleType", "article_type"),
    ("disclaimer", "disclaimer"),
    ("version", "version"),
    ("shareCount", "share_count"),
    ("seoTitle", "seo_title"),
    ("seoKeywords", "seo_keywords"),
    ("seoDesc", "seo_desc"),
    ("relatedArticles", "related_articles"),
    ("pairs", "pairs"),
    ("contentJson", "content_json"),
    ("footer", "footer"),
)
_CATALOG_KEYS = (
    ("catalogId", "catalogName"),
    ("firstCatalogId", "firstCatalogName"),
    ("secondCatalogId", "secondCatalogName"),
    ("thirdCatalogId", "thirdCatalogName"),
)


def _kept(data: Mapping[str, Any], fields: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """The `fields` the answer holds (not null), under their `extra` keys."""
    return {key: data[field] for field, key in fields if data.get(field) is not None}


def _detail_catalog_ids(detail: Mapping[str, Any]) -> list[Any]:
    """Every catalog id the detail names, the main one first."""
    ids = [detail.get(key) for key, _ in _CATALOG_KEYS]
    return list(dict.fromkeys(i for i in ids if _is_id(i)))


def _is_id(value: Any) -> bool:
    return isinstance(value, int | str) and not isinstance(value, bool) and value != ""


def _detail_category(
    detail: Mapping[str, Any], listed: Record | None
) -> tuple[str | None, str | None, Any]:
    """(category, event-type hint, catalog id): the detail's catalog (`catalogId`, or the
    2026 answer's `firstCatalogId`), else the listed record's."""
    for id_key, name_key in _CATALOG_KEYS[:2]:
        catalog_id = detail.get(id_key)
        if _is_id(catalog_id):
            return (*_category(catalog_id, detail.get(name_key)), catalog_id)
    if listed is not None:
        return listed.category, listed.event_type, listed.extra.get("catalog_id")
    return None, None, None


def _updated_at(value: Any) -> datetime | None:
    """`lastUpdateTime`: 0 (or absent) when the article was never updated."""
    if value in (None, "", 0, "0"):
        return None
    return time_or_none(value)


def _link(href: str) -> Link:
    """A body link; one to another Binance announcement gets that article as its target."""
    url = urljoin("https://www.binance.com/", href)
    code = _ARTICLE_PATH.match(urlsplit(url).path)
    if code and urlsplit(url).hostname in SOURCE.hosts:
        return Link(url, SOURCE.source, "announcement", code["code"])
    return Link(url)


# /en/support/announcement/<code>; the code is 32 hex characters or legacy digits.
_ARTICLE_PATH = re.compile(r"^/[\w-]+/support/announcement/(?P<code>[0-9a-f]{32}|\d+)/?$")


# --- helpers --------------------------------------------------------------------------------


def _category(catalog_id: Any, catalog_name: Any) -> tuple[str | None, str | None]:
    """Our table's name for a known catalog (the same in every language), else Binance's."""
    known = SOURCE.categories.get(str(catalog_id)) if catalog_id is not None else None
    if known is not None:
        return known.name, known.event_type
    name = text_or_none(catalog_name) or (str(catalog_id) if catalog_id is not None else None)
    return name, None


def _get(data: Mapping[str, Any], key: str, kind: type, url: str) -> Any:
    value = data.get(key)
    if not isinstance(value, kind):
        raise ParseError(url, f"{key} is not a {kind.__name__}")
    return value


SOURCE = Source(
    source="binance",
    spider="binance_announcements",
    hosts=("www.binance.com",),
    endpoint="https://www.binance.com/bapi/composite/v1/public/cms/article/list/query",
    # The largest pageSize the list accepts: only 1, 2, 5, 10, 15, 20 and 50 are (the
    # website API has no public doc; this is what listing bots polling it report, and
    # what recorded live answers show, see README "Binance, OKX, ..."). At 50 a backfill
    # asks a fifth of the pages 10 would need.
    paging=_PAGES,
    page_size=50,
    page_sizes=frozenset({1, 2, 5, 10, 15, 20, 50}),
    # `success: false` or a code other than 000000 is a failure.
    envelope=Envelope(ok="000000", messages=("message", "messageDetail"), success="success"),
    items=_items,
    record=_list_record,
    categories={
        c.key: c
        for c in (
            Category("48", "New Cryptocurrency Listing", "listing"),
            Category("49", "Latest Binance News", "news"),
            Category("50", "New Fiat Listings", "listing"),
            Category("51", "API Updates", "product"),
            Category("93", "Latest Activities", "promotion"),
            Category("128", "Crypto Airdrop", "promotion"),
            Category("157", "Wallet Maintenance Updates", "maintenance"),
            Category("161", "Delisting", "delisting"),
        )
    },
    category_param="catalogId",
    fixed_query={"type": _ARTICLE_TYPE},
    # The site's locale: the article page's path segment and the API's `lang` header.
    languages={"en": "en", "zh": "zh-CN"},
    language_in="header",
    language_key="lang",
    detail=Detail(
        "https://www.binance.com/bapi/composite/v1/public/cms/article/detail/query",
        param="articleCode",
        parse=_detail,
    ),
    # The website's own API has no published limit: stay well under any plausible one.
    download_delay=1.0,
    article_url="https://www.binance.com/{locale}/support/announcement/{code}",
)


# --- the CMS WebSocket (`annals watch`: crawler.push.BinancePush) ----------------------------
#
# Confirmed in Binance's docs, developers.binance.com/docs/cms/general-info ("WebSocket API
# Basic Information") and /docs/cms/announcement ("Announcements"):
# wss://api.binance.com/sapi/wss?random=..&topic=..&recvWindow=..&timestamp=..&signature=..,
# the API key in the X-MBX-APIKEY header, the signature an HMAC-SHA256 (the API secret)
# of every other parameter sorted by name; `topic` names the topics the connection gets
# ("|" between several). A message is `{"type": "DATA", "topic": ..., "data": "<JSON>"}`,
# its data `{catalogId, catalogName, publishDate (ms), title, body, disclaimer}`: no
# article code, so the code is found in the list (crawler.push.BinancePush).

PUSH_URL = "wss://api.binance.com/sapi/wss"
PUSH_KEY_HEADER = "X-MBX-APIKEY"
# The documented topics, by the spider's language; a language without one is polled.
PUSH_TOPICS = {"en": "com_announcement_en"}
# Binance's recvWindow: how late (ms) the handshake may arrive after its timestamp (at
# most 60000; the docs' example asks 30000, which tolerates a clock some seconds off).
PUSH_RECV_WINDOW = 30_000
PUSH_PING_SECONDS = 30.0  # "send PING messages every 30 seconds" (dropped after 60 s)
PUSH_MAX_AGE = 24 * 3600.0  # a connection lives at most 24 h
# How far the list's releaseDate may be from the push's publishDate for one article (the
# docs do not say they are the same field; a title repeated days later stays apart).
PUSH_MATCH_WINDOW = 600.0


def push_topic(language: str) -> str | None:
    return PUSH_TOPICS.get(language)


def signed_query(params: Mapping[str, str], secret: str) -> str:
    """The connection's query string: `params` sorted by name, then their signature, the
    hex HMAC-SHA256 (key: the API secret) of exactly the query before it."""
    payload = urlencode(sorted(params.items()))
    signature = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return f"{payload}&signature={signature}"


def push_query(topics: list[str], secret: str, now_ms: int, random: str) -> str:
    """A connection's signed query: `random` (Binance asks at most 32 characters) and the
    timestamp make each one new."""
    params = {
        "random": random,
        "topic": "|".join(topics),
        "recvWindow": str(PUSH_RECV_WINDOW),
        "timestamp": str(now_ms),
    }
    return signed_query(params, secret)


@dataclass(frozen=True)
class Pushed:
    """One announcement of the CMS WebSocket, as it came: everything but its code."""

    topic: str
    language: str
    title: str
    published_at: datetime
    catalog_id: Any
    catalog_name: str | None
    body: Any  # the body in whatever form Binance sends it (nodetree.body_html reads it)
    disclaimer: str | None


def parse_push(body: bytes | str, url: str = PUSH_URL) -> Pushed | None:
    """The announcement a `DATA` message carries; None for any other message (command
    answers). ParseError when a DATA message is not one: bad JSON, no title or time, a
    topic of no known language."""
    message = load_json(body, url)
    if not isinstance(message, Mapping) or message.get("type") != "DATA":
        return None
    topic = text_or_none(message.get("topic"))
    language = next((lang for lang, t in PUSH_TOPICS.items() if t == topic), None)
    if topic is None or language is None:
        raise ParseError(url, f"a DATA message of an unknown topic {message.get('topic')!r}")
    data = message.get("data")
    if isinstance(data, str):  # documented: a JSON string
        data = load_json(data, url, "a DATA message's data")
    if not isinstance(data, Mapping):
        raise ParseError(url, "a DATA message's data is not an announcement object")
    title = text_or_none(data.get("title"))
    if not title:
        raise ParseError(url, "a pushed announcement has no title")
    published_at = time_or_none(data.get("publishDate"))
    if published_at is None:
        raise ParseError(url, f"unreadable publishDate {data.get('publishDate')!r}")
    return Pushed(
        topic=topic,
        language=language,
        title=title,
        published_at=published_at,
        catalog_id=data.get("catalogId"),
        catalog_name=text_or_none(data.get("catalogName")),
        body=data.get("body"),
        disclaimer=text_or_none(data.get("disclaimer")),
    )


def push_match(pushed: Pushed, listed: list[Record]) -> Record | None:
    """The list record of the pushed announcement: the same title (normalized) published
    within PUSH_MATCH_WINDOW of it, the nearest in time if several are."""
    title = normalize_text(pushed.title)
    found = [
        (abs((record.published_at - pushed.published_at).total_seconds()), record)
        for record in listed
        if normalize_text(record.title) == title and record.published_at is not None
    ]
    near = [(gap, record) for gap, record in found if gap <= PUSH_MATCH_WINDOW]
    return min(near, key=lambda pair: pair[0])[1] if near else None


def pushed_record(pushed: Pushed, listed: Record, url: str = PUSH_URL) -> Record:
    """The record to archive at once: the push's title, body, time and catalog, at the
    article `code` the list gave (`listed`), so the detail fetched next is the same
    document. extra["pushed"] names the topic (crawler.push: a completion follows)."""
    body_html, hrefs = nodetree.body_html(pushed.body, url)
    category, event_type = (
        _category(pushed.catalog_id, pushed.catalog_name)
        if pushed.catalog_id is not None
        else (listed.category, listed.event_type)
    )
    catalog_ids = list(listed.extra.get("catalog_ids", []))
    if pushed.catalog_id is not None and pushed.catalog_id not in catalog_ids:
        catalog_ids.insert(0, pushed.catalog_id)
    extra: dict[str, Any] = {
        "pushed": pushed.topic,
        "catalog_id": pushed.catalog_id
        if pushed.catalog_id is not None
        else listed.extra.get("catalog_id"),
        "catalog_ids": catalog_ids,
        **{k: v for k, v in listed.extra.items() if k in ("article_id", "type")},
    }
    if pushed.disclaimer:
        extra["disclaimer"] = pushed.disclaimer
    return SOURCE.announcement(
        listed.language,
        listed.external_id,
        listed.url,
        title=pushed.title,
        body_html=body_html,
        body_text=html_to_text(body_html) if body_html is not None else None,
        published_at=pushed.published_at,
        category=category,
        event_type=event_type,
        extra=extra,
        links=[_link(href) for href in dict.fromkeys(hrefs)],
    )
