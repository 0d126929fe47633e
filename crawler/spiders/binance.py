"""Binance announcements: list and detail URLs, envelope check and pure parsers.

The list (`cms/article/list/query`) gives only code, title, releaseDate and catalog, so
its records carry no body: the spider fetches each code's detail and hands the listed
record to `parse_detail`, whose record is the one to archive. The detail body is a JSON
string holding an html2json node tree; `node_tree_to_html` turns it into safe HTML.

Identity: the article `code` (32 hex), the same in every catalog and language.
Category: the detail's catalog (one of the article's catalogs, chosen by Binance), so an
article listed under two catalogs still gives one stable version; every catalog id seen
is kept in `extra["catalog_ids"]`.

Errors: bad JSON or a wrong shape raises `ParseError`; a failure envelope raises
`EnvelopeError`. A single list item without a code, title or readable time is skipped
and logged as a warning (a page whose every item is unusable raises `ParseError`).
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from archive.normalize import html_to_text
from archive.records import ParseError, RawResponse, Record
from crawler.spiders.common import (
    ApiSource,
    Category,
    EnvelopeError,
    ListPage,
    Unusable,
    UnusableItemError,
    int_or_none,
    is_rate_limit,
    json_raw,
    load_json,
    same_code,
    text_or_none,
    time_or_none,
)

logger = logging.getLogger(__name__)

SOURCE = ApiSource(
    source="binance",
    spider="binance_announcements",
    hosts=("www.binance.com",),
    list_url="https://www.binance.com/bapi/composite/v1/public/cms/article/list/query",
    # Allowed: 1, 2, 5, 10, 15, 20, 50. The mirror's files are cut at 10.
    page_size=10,
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
    # The site's locale: the article page's path segment and the API's `lang` header.
    languages={"en": "en", "zh": "zh-CN"},
    detail_url="https://www.binance.com/bapi/composite/v1/public/cms/article/detail/query",
    # The website's own API has no published limit: stay well under any plausible one.
    download_delay=1.0,
    concurrency=1,
    article_url="https://www.binance.com/{locale}/support/announcement/{code}",
)

_OK_CODE = "000000"
_ARTICLE_TYPE = "1"  # type=1: announcements (the site's other article types are FAQ pages)


def request_headers(language: str = "en") -> dict[str, str]:
    """Headers the list and detail requests need: the site picks the language by `lang`."""
    return {"lang": SOURCE.api_language(language)}


def list_url(page: int, *, category: str | None = None, language: str = "en") -> str:
    """List page `page` (1-based) of one catalog, or of every catalog when `category` is None.

    The language is not in the URL: send `request_headers(language)`.
    """
    if page < 1:
        raise ValueError(f"pages start at 1, not {page}")
    SOURCE.api_language(language)
    query: dict[str, str | int] = {"type": _ARTICLE_TYPE}
    if category is not None:
        query["catalogId"] = category
    query |= {"pageNo": page, "pageSize": SOURCE.page_size}
    return f"{SOURCE.list_url}?{urlencode(query)}"


def detail_url(code: str) -> str:
    """The detail request of one article code."""
    return f"{SOURCE.detail_url}?{urlencode({'articleCode': code})}"


def article_url(code: str, language: str = "en") -> str:
    """The public announcement page of one article code."""
    return SOURCE.article_url.format(locale=SOURCE.api_language(language), code=code)


def check_envelope(data: Any, url: str) -> None:
    """Raise EnvelopeError when the answer says `success: false` or a code other than 000000."""
    if not isinstance(data, Mapping) or ("code" not in data and "success" not in data):
        raise ParseError(url, "answer has no code or success flag")
    code = data.get("code")
    failed = data.get("success") is False or (code is not None and not same_code(code, _OK_CODE))
    if failed:
        message = str(data.get("message") or data.get("messageDetail") or "")
        raise EnvelopeError(url, str(code), message, rate_limited=is_rate_limit(SOURCE, code))


def parse_list(
    body: bytes | str, url: str, *, fetched_at: datetime, language: str = "en"
) -> ListPage:
    """One list answer: a record (without body) per article, in the order given.

    An article shown under several catalogs of one answer gives one record; all its
    catalog ids are in `extra["catalog_ids"]`.
    """
    data = load_json(body, url)
    check_envelope(data, url)
    catalogs = _get(data, "data", dict, url).get("catalogs")
    if not isinstance(catalogs, list):
        raise ParseError(url, "data.catalogs is not a list")
    page, size = _page_of(url)
    raw = json_raw(body, url, fetched_at)
    records: dict[str, Record] = {}
    items = 0
    has_more = False
    totals: list[int] = []
    unusable: list[Unusable] = []
    for catalog in catalogs:
        if not isinstance(catalog, Mapping):
            raise ParseError(url, "a catalog is not an object")
        articles = catalog.get("articles") or []
        if not isinstance(articles, list):
            raise ParseError(url, "a catalog's articles is not a list")
        total = int_or_none(catalog.get("total"))
        if total is not None:
            totals.append(total)
            has_more |= bool(articles) and (page - 1) * size + len(articles) < total
        elif len(articles) >= size:
            has_more = True
        for index, article in enumerate(articles):
            items += 1
            try:
                record = _list_record(article, catalog, language, raw)
            except UnusableItemError as skip:
                logger.warning("binance: unusable article %d on %s: %s", index, url, skip)
                unusable.append(Unusable(items - 1, str(skip)))
                continue
            known = records.get(record.external_id)
            if known is None:
                records[record.external_id] = record
            elif record.extra["catalog_id"] not in known.extra["catalog_ids"]:
                known.extra["catalog_ids"].append(record.extra["catalog_id"])
    if items and not records:
        raise ParseError(url, f"none of the {items} articles could be read")
    return ListPage(
        records=list(records.values()),
        has_more=has_more,
        total=totals[0] if len(catalogs) == 1 and totals else None,
        unusable=unusable,
    )


def parse_detail(
    body: bytes | str,
    url: str,
    *,
    fetched_at: datetime,
    language: str = "en",
    listed: Record | None = None,
) -> Record:
    """The archived record of one article: the detail's title, time, catalog and body.

    `listed` is the list record that led here: its code must match, its time stands in
    when the detail has none, and its catalog ids are merged into `extra["catalog_ids"]`.
    """
    data = load_json(body, url)
    check_envelope(data, url)
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
    body_html = _body_html(detail.get("body"), url)

    catalog_id = detail.get("catalogId")
    category, event_type = _category(catalog_id, detail.get("catalogName"))
    if catalog_id is None and listed is not None:
        category, event_type = listed.category, listed.event_type
    catalog_ids = list(listed.extra.get("catalog_ids", [])) if listed else []
    if catalog_id is not None and catalog_id not in catalog_ids:
        catalog_ids.insert(0, catalog_id)
    extra: dict[str, Any] = {"catalog_id": catalog_id, "catalog_ids": catalog_ids}
    for field, key in (("id", "article_id"), ("type", "type"), ("disclaimer", "disclaimer")):
        if detail.get(field) is not None:
            extra[key] = detail[field]
    return Record(
        source=SOURCE.source,
        kind="announcement",
        external_id=code,
        language=language,
        url=article_url(code, language),
        title=title,
        body_html=body_html,
        body_text=html_to_text(body_html) if body_html is not None else None,
        published_at=published_at,
        category=category,
        event_type=event_type,
        extra=extra,
        raw=json_raw(body, url, fetched_at),
        seen_at=fetched_at,
    )


# --- node tree -> HTML ----------------------------------------------------------------------

# What an announcement needs to keep its paragraphs, emphasis, lists, tables and links.
_KEEP_TAGS = frozenset(
    "p br strong b em i u a ul ol li table thead tbody tfoot tr th td caption "
    "h1 h2 h3 h4 h5 h6 span div blockquote".split()
)
# A browser never shows their content: it is code, not text.
_DROP_WITH_CONTENT = frozenset("script style noscript template iframe object embed".split())
_VOID_TAGS = frozenset({"br"})
_SAFE_SCHEMES = frozenset({"", "http", "https", "mailto"})
# Browsers ignore these inside a URL, so "java\tscript:" is still javascript.
_URL_IGNORED = re.compile(r"[\x00-\x20\x7f]")
_SPAN_ATTRS = frozenset({"colspan", "rowspan"})
_CELL_TAGS = frozenset({"td", "th"})


def node_tree_to_html(tree: Any) -> str:
    """Safe HTML of an html2json node tree (`{"node": "root"|"element"|"text", ...}`).

    Text and attribute values are escaped; only structural tags are kept (`a` with its
    `href` when that is a web, mail or relative link; `td`/`th` with their spans).
    Unknown tags are unwrapped, keeping their children; script-like tags are dropped
    with their content; paragraphs inside a table cell become lines of that cell.
    html2json keeps entities as written, so text is unescaped once before it is
    escaped, and "&amp;" does not turn into "&amp;amp;".
    """
    out: list[str] = []
    _render(tree, out, cell=False)
    return "".join(out)


def _render(node: Any, out: list[str], *, cell: bool) -> None:
    if isinstance(node, list):
        for child in node:
            _render(child, out, cell=cell)
        return
    kind = node.get("node") if isinstance(node, Mapping) else None
    if kind == "text":
        text = node.get("text")
        if isinstance(text, str):
            out.append(html.escape(html.unescape(text), quote=False))
    elif kind == "root":
        _render(node.get("child") or [], out, cell=cell)
    elif kind == "element":
        _render_element(node, out, cell=cell)
    # Anything else (comments, node kinds added later) carries no reader-visible text.


def _render_element(node: Mapping[str, Any], out: list[str], *, cell: bool) -> None:
    tag = str(node.get("tag") or "").lower()
    children = node.get("child") or []
    if tag in _DROP_WITH_CONTENT:
        return
    if tag not in _KEEP_TAGS:
        _render(children, out, cell=cell)
        return
    if tag == "p" and cell:
        # The CMS wraps every cell's text in <p>; as blocks they would break each table
        # row over several lines of text, so a cell keeps their text, a <br> between.
        if not out[-1].startswith(("<td", "<th")):
            out.append("<br>")
        _render(children, out, cell=cell)
        return
    out.append(f"<{tag}{_attrs(tag, node.get('attr'))}>")
    if tag not in _VOID_TAGS:
        _render(children, out, cell=cell or tag in _CELL_TAGS)
        out.append(f"</{tag}>")


def _attrs(tag: str, attrs: Any) -> str:
    if not isinstance(attrs, Mapping):
        return ""
    kept: list[str] = []
    for name, value in attrs.items():
        # html2json splits attribute values on spaces into lists.
        text = " ".join(map(str, value)) if isinstance(value, list) else str(value)
        if tag == "a" and name == "href" and _safe_href(text):
            kept.append(f' href="{html.escape(text.strip(), quote=True)}"')
        elif tag in _CELL_TAGS and name in _SPAN_ATTRS and text.isdigit():
            kept.append(f' {name}="{text}"')
    return "".join(kept)


def _safe_href(href: str) -> bool:
    try:
        scheme = urlsplit(_URL_IGNORED.sub("", href)).scheme.lower()
    except ValueError:
        return False
    return scheme in _SAFE_SCHEMES


# --- helpers --------------------------------------------------------------------------------


def _list_record(
    article: Any, catalog: Mapping[str, Any], language: str, raw: RawResponse
) -> Record:
    if not isinstance(article, Mapping):
        raise UnusableItemError("not an object")
    code = text_or_none(article.get("code"))
    if not code:
        raise UnusableItemError("no code")
    title = text_or_none(article.get("title"))
    if not title:
        raise UnusableItemError(f"{code}: no title")
    published_at = time_or_none(article.get("releaseDate"))
    if published_at is None:
        raise UnusableItemError(f"{code}: unreadable releaseDate {article.get('releaseDate')!r}")
    catalog_id = catalog.get("catalogId")
    category, event_type = _category(catalog_id, catalog.get("catalogName"))
    extra: dict[str, Any] = {"catalog_id": catalog_id, "catalog_ids": [catalog_id]}
    for field, key in (("id", "article_id"), ("type", "type")):
        if article.get(field) is not None:
            extra[key] = article[field]
    return Record(
        source=SOURCE.source,
        kind="announcement",
        external_id=code,
        language=language,
        url=article_url(code, language),
        title=title,
        published_at=published_at,
        category=category,
        event_type=event_type,
        extra=extra,
        raw=raw,
        seen_at=raw.fetched_at,
    )


def _category(catalog_id: Any, catalog_name: Any) -> tuple[str | None, str | None]:
    """Our table's name for a known catalog (the same in every language), else Binance's."""
    known = SOURCE.categories.get(str(catalog_id)) if catalog_id is not None else None
    if known is not None:
        return known.name, known.event_type
    name = text_or_none(catalog_name) or (str(catalog_id) if catalog_id is not None else None)
    return name, None


def _body_html(body: Any, url: str) -> str | None:
    if body is None or body == "":
        return None
    if isinstance(body, str):
        try:
            body = load_json(body, url, "detail body")
        except ParseError as exc:
            raise ParseError(url, f"{exc.reason} (not a JSON node tree)") from exc
    if not isinstance(body, Mapping | list):
        raise ParseError(url, f"detail body is a {type(body).__name__}, not a node tree")
    try:
        return node_tree_to_html(body)
    except RecursionError:
        raise ParseError(url, "detail body nests too deep") from None


def _get(data: Mapping[str, Any], key: str, kind: type, url: str) -> Any:
    value = data.get(key)
    if not isinstance(value, kind):
        raise ParseError(url, f"{key} is not a {kind.__name__}")
    return value


def _page_of(url: str) -> tuple[int, int]:
    query = parse_qs(urlsplit(url).query)
    page = int_or_none((query.get("pageNo") or ["1"])[0]) or 1
    size = int_or_none((query.get("pageSize") or [""])[0]) or SOURCE.page_size
    return page, size
