"""Gate announcements: the source's facts (SOURCE), URL forms and pure parsers for lists,
sitemap and articles."""

from __future__ import annotations

import functools
import html
import itertools
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import lxml.html
from lxml import etree
from parsel import Selector

from archive.normalize import clean_title, format_time, html_parser, html_to_text, normalize_text
from archive.records import ParseError, Record
from archive.urls import url_parts
from crawler.sources.contract import Envelope, PageNumbers, Site
from crawler.sources.parsing import Category, Unusable, int_or_none, load_json, time_or_none

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class GateSite(Site):
    """Gate announcements' facts beyond every site's: the list endpoint (POSTed, paged by
    number), the announcement sitemap, the categories by cate_id and the category pages."""

    list_path: str  # the list endpoint, on `origin`
    envelope: Envelope  # the list endpoint's
    paging: PageNumbers  # the list endpoint's
    page_size: int  # the size a list request asks
    sitemap_path: str
    categories: dict[int, Category]  # by cate_id
    category_pages: tuple[str, ...]  # the category pages (listing_url slugs) read by default


SOURCE = GateSite(
    source="gate",
    spider="gate_announcements",
    hosts=("www.gate.com", "gate.com", "www.gate.io", "gate.io"),
    origin="https://www.gate.com",
    list_path="/api/web/v1/portal/announcement/list_article",
    # The list endpoint's answer: {"code": 0, "message": "success", "data": ...}; Gate
    # documents no code that means "slow down".
    envelope=Envelope(ok="0", messages=("message",)),
    # The size is "limit" in a JSON body, "size" in a form body: list_api_body sends both.
    paging=PageNumbers("page", "limit"),
    page_size=15,
    sitemap_path="/sitemaps/sitemap-announcement-001.xml",
    # The confirmed cate_id meanings only. Dividend settlements adjust positions of products
    # already trading, which is what archive.normalize calls "product" ("dividend|分红").
    # Other ids (62, 33, 101 are real but unnamed) give category=None and event_type=None,
    # so the store classifies by title; extra["cate_id"] always keeps the id, and naming it
    # here later fills the category without a guessed name ever having been stored.
    categories={
        c: Category(str(c), name, event)
        for c, name, event in (
            (61, "New Crypto Listings", "listing"),
            (38, "New Spot Listings", "listing"),
            (37, "New Futures Listings", "listing"),
            (15, "Delistings", "delisting"),
            (87, "ETF Delistings", "delisting"),
            (32, "Airdrops & Promotions", "promotion"),
            (55, "Fee Adjustments", "product"),
            (109, "Dividend Distribution", "product"),
        )
    },
    category_pages=("newlisted", "delisted"),
)

# --- The visible article page: MODELED markup -------------------------------------------
# Read only when __NEXT_DATA__ is missing or broken. Confirmed are the order (title, time
# line, "N views", body) and the texts of the time and views lines; the tags and classes
# are the samples' invention, so every selector for them lives here.
# The title is the first <h1> inside an <article>, else inside a <main>, else anywhere
# (the CSS "article h1", "main h1", "h1", first that matches wins).
ARTICLE_TITLE_TAG = "h1"
ARTICLE_TITLE_WITHIN = ("article", "main")
# The body is the first element of this class (the CSS ".rich-text"); the samples' README:
# it holds the same HTML as detail.desc.
ARTICLE_BODY_CLASS = "rich-text"
ARTICLE_BODY_CSS = f".{ARTICLE_BODY_CLASS}"
# Text nodes read after the title while looking for the time and views lines.
ARTICLE_META_SCAN = 20
# "2026-05-22 07:56:11 UTC" (en), "2026-09-29 10:53 (UTC+8)" (zh). No zone at all is read
# as UTC, the zone Gate shows on English pages.
VISIBLE_TIME_RE = re.compile(
    r"(?P<at>\d{4}-\d{1,2}-\d{1,2}[ T]\d{1,2}:\d{2}(?::\d{2})?)"
    r"(?:\s*\(?\s*(?:UTC|GMT)\s*(?P<off>[+-]\s*\d{1,2}(?::?\d{2})?)?\s*\)?)?"
)
VISIBLE_VIEWS_RE = re.compile(r"(?<![\d.,:])(\d[\d.,]*\s*[KkMm万]?)\s*(?:views?\b|次浏览|浏览)")

# --- URLs -------------------------------------------------------------------------------

_LOCALE = r"[A-Za-z]{2}(?:[-_][A-Za-z]{2,4})?"
_ARTICLE_PATH = re.compile(
    rf"^(?:/(?P<lang>{_LOCALE}))?/(?:announcements/)?article/(?P<id>\d+)(?:/[^/]+)?/?$"
)
_TAG_SEPARATORS = re.compile(r"[、,，]")
_COUNT = re.compile(r"^(\d+(?:\.\d+)?)\s*([KkMmBb万亿]?)$")
_COUNT_UNIT = re.compile(r"\s*(?:views?|次浏览|浏览|posts?)$", re.I)  # what follows a counter
_MULTIPLIERS = {"": 1, "k": 1_000, "m": 1_000_000, "b": 1_000_000_000, "万": 10_000, "亿": 10**8}


def gate_path(url: str) -> str | None:
    """The path of a Gate URL (or of a path alone); None for another host or scheme."""
    parts = url_parts(url.strip())
    if parts is None:
        return None
    if parts.scheme and parts.scheme.lower() not in ("http", "https"):
        return None
    if parts.netloc and (parts.hostname or "").lower() not in SOURCE.hosts:
        return None
    if not parts.netloc and parts.scheme:
        return None
    return parts.path or "/"


def language_code(value: str | None, default: str = "en") -> str:
    """A locale as annals stores it: 'zh', 'zh-tw', 'pt-br'."""
    value = (value or "").strip().lower().replace("_", "-")
    return value or default


def _article_match(url: str) -> tuple[str, str | None] | None:
    path = gate_path(url)
    match = _ARTICLE_PATH.match(path) if path else None
    if not match:
        return None
    return match["id"], language_code(match["lang"]) if match["lang"] else None


def article_ref(url: str) -> tuple[str, str] | None:
    """(external_id, language) of any Gate announcement URL, else None.

    Accepts https://www.gate.io/article/{id}, https://www.gate.com/announcements/article/{id},
    a trailing slug, a locale prefix (/zh/...; none means "en"), a query, a trailing slash,
    and the path without a host.
    """
    match = _article_match(url)
    if match is None:
        return None
    return match[0], match[1] or "en"


def listing_url(language: str = "en", slug: str | None = None) -> str:
    """The hub (https://www.gate.com/announcements) or a category page under it
    (/announcements/{slug}), with /{lang} before it unless en."""
    page = f"/{slug}" if slug else ""
    return f"{SOURCE.origin}{_prefix(language)}/announcements{page}"


def canonical_article_url(external_id: str, language: str = "en") -> str:
    """https://www.gate.com/announcements/article/{id}, with /{lang} before it unless en."""
    return f"{SOURCE.origin}{_prefix(language)}/announcements/article/{external_id}"


def _prefix(language: str) -> str:
    language = language_code(language)
    return "" if language == "en" else f"/{language}"


def _page_language(url: str) -> str | None:
    """The locale prefix of a page URL (/zh/announcements/...), if it has one."""
    parts = url_parts(url)
    path = gate_path(url) or (parts.path if parts else "")
    first = path.strip("/").split("/", 1)[0]
    return language_code(first) if re.fullmatch(_LOCALE, first) else None


# --- small readers ----------------------------------------------------------------------


def parse_count(value: object) -> int | None:
    """A counter as shown: 8638, "8,638", "8,638 views", "1.2K", "3M", "1.2万"; else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    text = str(value).strip()
    text = _COUNT_UNIT.sub("", text).replace(",", "")
    match = _COUNT.match(text)
    if not match:
        return None
    return round(float(match[1]) * _MULTIPLIERS[match[2].lower()])


def split_tags(value: object) -> list[str]:
    """Gate's tag string "ZHIPUG、MINIMAXG" (or a list) as tags, first occurrence kept."""
    if isinstance(value, list | tuple):
        parts = [str(v) for v in value]
    elif isinstance(value, str):
        parts = _TAG_SEPARATORS.split(value)
    else:
        return []
    return list(dict.fromkeys(t for t in (normalize_text(p).lstrip("#") for p in parts) if t))


def inner_html(element: Any) -> str:
    """The HTML inside an lxml element, without the element's own tag."""
    head = html.escape(element.text or "", quote=False)
    return head + "".join(
        lxml.html.tostring(child, encoding="unicode", with_tail=True) for child in element
    )


def _dig(data: object, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTROL_BYTES = bytes(range(0x20)).translate(None, b"\t\n\r") + b"\x7f"
# Each control byte to a space (NUL too), every other byte to itself: bytes hold no control
# byte exactly when translating them changes nothing. A translation by table alone costs
# two thirds of a translation that deletes bytes, and the comparison is a memcmp.
_CONTROL_TO_SPACE = bytes.maketrans(_CONTROL_BYTES, b" " * len(_CONTROL_BYTES))


def _no_control_bytes(data: bytes) -> bool:
    """Whether `data` holds none of _CONTROL_BYTES."""
    return data.translate(_CONTROL_TO_SPACE) == data


def _page_text(body: bytes | str) -> str:
    """A page's text (UTF-8, as Gate serves) without control characters: lxml lets them
    into names it then refuses to hand back, and no page shows them. In UTF-8 they come
    only from their own bytes, so bytes without any (every real page) need no pass of
    the pattern over the text."""
    if isinstance(body, bytes):
        text = body.decode("utf-8", errors="replace")
        if _no_control_bytes(body):
            return text or "<html></html>"
    else:
        text = body
    return _CONTROL.sub("", text) or "<html></html>"


def page_selector(body: bytes | str) -> Selector:
    """A parsel Selector over a page's bytes or text (see _page_text)."""
    return Selector(text=_page_text(body))


def page_root(body: bytes | str) -> etree._Element:
    """The root element of a page as page_selector parses it (the same text, lxml's HTML
    parser with parsel's options), without parsel around it: an article page is read
    with a few lookups, and parsel's wrapping and per-call compiling of each expression
    cost more than they do. Plain lxml elements (not lxml.html's): that parser looks up
    a Python class for every element handed back."""
    parser = html_parser(**_PAGE_PARSER)
    root = etree.fromstring(_page_bytes(body), parser=parser)
    return root if root is not None else etree.fromstring(b"<html/>", parser=parser)


# The options parsel gives lxml's parser (page_selector parses the same way), but for
# collect_ids: the table of id attributes serves lxml's getElementById and XPath's id(),
# which nothing reading a page uses, and filling it is a few per cent of the parse.
_PAGE_PARSER: dict[str, bool | str] = {
    "recover": True,
    "encoding": "utf-8",
    "huge_tree": True,
    "collect_ids": False,
}


def _page_bytes(body: bytes | str) -> bytes:
    """The UTF-8 bytes page_root parses: _page_text without NUL, stripped, encoded.

    Bytes that are valid UTF-8 with no control byte (every real page) are that already,
    once their ASCII whitespace is cut off, when what is left starts and ends with an
    ASCII character (then str.strip, which also cuts Unicode spaces, has nothing more
    to cut): they are handed on as they are, not decoded and encoded again."""
    if isinstance(body, bytes):
        data = body.strip()
        if data and data[0] < 0x80 and data[-1] < 0x80 and _no_control_bytes(data):
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                pass
            else:
                return data
    return _page_text(body).strip().replace("\x00", "").encode("utf-8") or b"<html/>"


def require_whole_page(body: bytes | str, url: str) -> None:
    """A rendered page ends with </html>; one cut short in transfer would give a half
    record (a body that stops mid-sentence), so it is a ParseError."""
    if not body.strip():
        raise ParseError(url, "empty page")
    tail = body[-512:].lower()
    whole = b"</html>" in tail if isinstance(tail, bytes) else "</html>" in tail
    if not whole:
        raise ParseError(url, "page is cut short (it does not end with </html>)")


_TEXT_NODES = etree.XPath("text()", smart_strings=False)


def _next_data_text(root: etree._Element) -> str | None:
    """The first text node of the <script id="__NEXT_DATA__"> elements, in document order
    (the XPath //script[@id="__NEXT_DATA__"]/text()), found by lxml's walk over the
    script elements only: the XPath tests every element of the page. The walk covers
    the whole document as `//` does: lxml's HTML parser makes a second top-level
    element of what a broken page has after its end."""
    for top in (root, *root.itersiblings(etree.Element)):
        for script in top.iter("script"):
            if script.get("id") == "__NEXT_DATA__":
                texts = _TEXT_NODES(script)
                if texts:
                    return texts[0]
    return None


def _next_data(root: etree._Element, url: str) -> dict[str, Any]:
    """The page's __NEXT_DATA__ JSON; ParseError if it is missing or not a JSON object."""
    script = _next_data_text(root)
    if script is None:
        raise ParseError(url, "no __NEXT_DATA__ script")
    data = load_json(script, url, "__NEXT_DATA__")
    if not isinstance(data, dict):
        raise ParseError(url, "__NEXT_DATA__ is not a JSON object")
    return data


# --- list pages and the list API --------------------------------------------------------


@dataclass(frozen=True)
class ListItem:
    """One announcement as a list shows it: enough to schedule and date its article."""

    external_id: str
    title: str
    url: str  # canonical
    cate_id: int | None = None
    published_at: datetime | None = None  # release_timestamp
    created_at: datetime | None = None  # created_t, kept for reference only
    tags: list[str] = field(default_factory=list)
    views: int | None = None
    brief: str | None = None
    title_truncated: bool = False  # the list cut the title with "..." or "…"
    language: str = "en"


@dataclass
class ListingPage:
    """Items of one listing page or list API page, in the order Gate gives them.

    The HTML first screen puts pinned items first (no flag marks them), so neither page
    order nor id order is publication order: sort by published_at when it matters.
    """

    items: list[ListItem]
    category: str | None = None  # query.category slug of an HTML listing page
    # Items without a usable id: the spider counts and quarantines them.
    unusable: list[Unusable] = field(default_factory=list)


def _list_item(raw: object, language: str) -> ListItem | None:
    if not isinstance(raw, dict):
        return None
    match = _article_match(str(raw.get("url") or ""))
    number = int_or_none(raw.get("id"))
    if number is not None and number >= 0:
        ext = str(number)
    elif match is not None:
        ext = match[0]
    else:
        return None
    lang = (match[1] if match else None) or language
    title = clean_title(str(raw.get("title") or "")) or ""
    return ListItem(
        external_id=ext,
        title=title,
        url=canonical_article_url(ext, lang),
        cate_id=int_or_none(raw.get("cate_id")),
        published_at=time_or_none(raw.get("release_timestamp")),
        created_at=time_or_none(raw.get("created_t")),
        tags=split_tags(raw.get("tags")),
        views=parse_count(raw.get("views")),
        brief=normalize_text(str(raw.get("brief") or "")) or None,
        title_truncated=title.endswith(("...", "…")),
        language=lang,
    )


def _items(raw_list: object, url: str, language: str) -> tuple[list[ListItem], list[Unusable]]:
    if raw_list is None:  # an empty category may answer null rather than []
        return [], []
    if not isinstance(raw_list, list):
        raise ParseError(url, f"list is {type(raw_list).__name__}, not a list")
    items: list[ListItem] = []
    unusable: list[Unusable] = []
    for position, raw in enumerate(raw_list):
        item = _list_item(raw, language)
        if item is None:
            logger.warning("Gate list item %d has no usable id, skipped (%s)", position, url)
            unusable.append(Unusable(position, "no usable id"))
            continue
        items.append(item)
    return items, unusable


def parse_listing_page(body: bytes | str, url: str) -> ListingPage:
    """Items of the hub or a category page, from __NEXT_DATA__ props.pageProps.listData.

    Their language is the page URL's locale prefix (none: "en"). A page without a JSON
    __NEXT_DATA__ or without listData raises ParseError; a challenge page should be caught
    by the spider before this is called.
    """
    data = _next_data(page_root(body), url)
    list_data = _dig(data, "props", "pageProps", "listData")
    if not isinstance(list_data, dict):
        raise ParseError(url, "__NEXT_DATA__ has no props.pageProps.listData")
    items, unusable = _items(list_data.get("list"), url, _page_language(url) or "en")
    category = _dig(data, "query", "category")
    return ListingPage(items, category if isinstance(category, str) else None, unusable)


def parse_list_api(body: bytes | str, url: str, *, language: str = "en") -> ListingPage:
    """One page of POST SOURCE.list_path: {"code":0,"message":"success","data":{"total","list"}}.

    A code other than 0 raises EnvelopeError; bad JSON or another shape raises ParseError.
    The answer does not say its language: pass the one the request asked for.
    """
    data = load_json(body, url, "list answer")
    SOURCE.envelope.check(data, url)
    payload = data.get("data")
    if not isinstance(payload, dict):
        raise ParseError(url, "list answer has no data object")
    if "list" not in payload:
        raise ParseError(url, "list answer has no data.list")
    items, unusable = _items(payload["list"], url, language_code(language))
    return ListingPage(items, unusable=unusable)


def listed_record(item: ListItem) -> Record:
    """What a list says of an article: its record when the article's page cannot be had
    (the brief is the body; the spider marks it listing-only)."""
    category = SOURCE.categories.get(item.cate_id) if item.cate_id is not None else None
    extra: dict[str, Any] = {"cate_id": item.cate_id}
    if item.views is not None:
        extra["views"] = item.views
    if item.title_truncated:
        extra["title_truncated"] = True
    return Record(
        source=SOURCE.source,
        kind="announcement",
        external_id=item.external_id,
        language=item.language,
        url=item.url,
        title=item.title,
        body_text=item.brief or "",
        published_at=item.published_at,
        category=category.name if category else None,
        event_type=category.event_type if category else None,
        tags=list(item.tags),
        extra=extra,
    )


def list_api_body(
    page: int, *, size: int = SOURCE.page_size, category: str | None = None, cate_level: int = 1
) -> dict[str, int | str]:
    """The body to POST to SOURCE.list_path for one page (pages count from 1).

    Gate is known to accept a JSON body {"page":1,"limit":20} and a form body
    page=1&size=15&cate_name=delisted&cate_level=1; the two name the page size
    differently, so both names are sent. For a form body, send each value as str.
    """
    body: dict[str, int | str] = {**SOURCE.paging.query(page, size, {}), "size": size}
    if category:
        body["cate_name"] = category
        body["cate_level"] = cate_level
    return body


# --- sitemap ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SitemapEntry:
    """An article URL from the announcement sitemap."""

    url: str  # canonical
    external_id: str
    language: str
    lastmod: datetime | None = None


def parse_sitemap(body: bytes | str, url: str) -> list[SitemapEntry]:
    """Article entries of a <urlset> sitemap, in file order, once per (id, language)."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    parser = etree.XMLParser(resolve_entities=False, no_network=True, recover=False)
    try:
        root = etree.fromstring(raw, parser)  # entities and network access are off
    except etree.XMLSyntaxError as exc:
        raise ParseError(url, f"sitemap is not XML: {exc}") from exc
    if root is None or etree.QName(root).localname != "urlset":
        raise ParseError(url, "sitemap has no <urlset>")
    entries: dict[tuple[str, str], SitemapEntry] = {}
    for node in root.iter("{*}url"):
        ref = article_ref(node.findtext("{*}loc") or "")
        if ref is None or ref in entries:
            continue
        entries[ref] = SitemapEntry(
            url=canonical_article_url(*ref),
            external_id=ref[0],
            language=ref[1],
            lastmod=time_or_none((node.findtext("{*}lastmod") or "").strip()),
        )
    return list(entries.values())


# --- articles ---------------------------------------------------------------------------


_TEXTS = etree.XPath(".//text()", smart_strings=False)
_XPATH_SPACE = " \t\r\n"  # what normalize-space() strips
_XPATH_SPACES = re.compile(f"[{_XPATH_SPACE}]+")


def _article_title(root: etree._Element) -> etree._Element | None:
    """The title element (ARTICLE_TITLE_TAG within the first of ARTICLE_TITLE_WITHIN
    that has one, else the first anywhere), as the CSS selectors would find it, in
    document order: lxml's walk over the few <h1> is cheaper than an XPath per
    selector, each testing every element of the page."""
    titles = list(root.iter(ARTICLE_TITLE_TAG))
    for within in ARTICLE_TITLE_WITHIN:
        for title in titles:
            if next(title.iterancestors(within), None) is not None:
                return title
    return titles[0] if titles else None


def _article_body(root: etree._Element) -> etree._Element | None:
    """The first element of class ARTICLE_BODY_CLASS in document order, as cssselect's
    XPath for the CSS finds it, walking only as far as that element, where the XPath
    tests every element of the page."""
    for element in root.iter(etree.Element):
        if _has_body_class(element.get("class")):
            return element
    return None


def _has_body_class(names: str | None) -> bool:
    """Whether a class attribute holds ARTICLE_BODY_CLASS: one of its words split at
    XPath spaces, as the CSS selector's XPath reads it."""
    return (
        names is not None
        and ARTICLE_BODY_CLASS in names
        and ARTICLE_BODY_CLASS in _XPATH_SPACES.split(names)
    )


def _following_texts(element: etree._Element) -> Iterator[tuple[str, etree._Element]]:
    """The text nodes after `element` in document order (XPath's following::text()),
    each with the element lxml hangs it on (the one whose .text or .tail it is), walked
    from the element on: the views line is a few nodes after the title, and the
    XPath axis collects every text node to the end of the page first."""
    node: etree._Element | None = element
    while node is not None:
        if node.tail:
            yield node.tail, node
        for sibling in node.itersiblings():
            yield from _texts_within(sibling)
        node = node.getparent()


def _texts_within(element: etree._Element) -> Iterator[tuple[str, etree._Element]]:
    """An element's text nodes and its tail's, in document order. A comment's own text
    is not a text node, but its tail is (lxml's iterwalk leaves comments out: a stack)."""
    if element.text and isinstance(element.tag, str):
        yield element.text, element
    stack = [(element, iter(element))]
    while stack:
        node, children = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            if node.tail:
                yield node.tail, node
            continue
        if child.text and isinstance(child.tag, str):
            yield child.text, child
        if len(child):
            stack.append((child, iter(child)))
        elif child.tail:  # no children to walk (no iterator made for none)
            yield child.tail, child


class _Visible:
    """What the rendered article page shows, each part read when it is first asked for:
    with __NEXT_DATA__ in place only the views line is, so the page's visible time is
    not parsed, its body not serialized, and the page not searched for its body while
    the texts read lie outside every element of the body's class."""

    def __init__(self, root: etree._Element) -> None:
        self._root = root
        self._h1 = _article_title(root)
        # Elements that neither have the body's class nor sit below one that has it: the
        # meta texts hang on a few elements of one branch, whose ancestors _in_body would
        # otherwise read again for each text. (Held here, each keeps its lxml proxy, so
        # the test is by identity.)
        self._outside: set[etree._Element] = set()

    @functools.cached_property
    def _body(self) -> etree._Element | None:
        return _article_body(self._root)

    @functools.cached_property
    def title(self) -> str | None:
        return clean_title(" ".join(_TEXTS(self._h1))) if self._h1 is not None else None

    @functools.cached_property
    def body_html(self) -> str | None:
        return inner_html(self._body) if self._body is not None else None

    def _in_body(self, parent: etree._Element) -> bool:
        """Whether a text lxml hangs on `parent` lies in the body: `parent` is the body or
        below it. The body has its class, so only where `parent` or an ancestor has it
        (the first text of the body, not the time and views lines above it) need the
        page be searched for the body, the first element of that class."""
        walked = []
        for element in itertools.chain((parent,), parent.iterancestors()):
            if element in self._outside:
                break
            if _has_body_class(element.get("class")):
                body = self._body
                return body is not None and (parent is body or body in parent.iterancestors())
            walked.append(element)
        self._outside.update(walked)
        return False

    def _meta_texts(self) -> Iterator[str]:
        """The texts of the time and views lines, stripped: the text nodes between the
        title and the body, ARTICLE_META_SCAN at most. They stop at the body so a date
        inside the announcement is never taken for its publication time."""
        if self._h1 is None:
            return
        count = 0
        for text, parent in _following_texts(self._h1):
            if not text.strip(_XPATH_SPACE):
                continue
            if self._in_body(parent):
                return
            yield text.strip()
            count += 1
            if count == ARTICLE_META_SCAN:
                return

    @functools.cached_property
    def _meta(self) -> str:
        return " ".join(self._meta_texts())

    @functools.cached_property
    def published_at(self) -> datetime | None:
        when = VISIBLE_TIME_RE.search(self._meta)
        if not when:
            return None
        offset = "".join((when["off"] or "").split())
        return time_or_none(f"{when['at']} (UTC{offset})")

    @functools.cached_property
    def views(self) -> int | None:
        """The count of the first "N views" in the meta texts. Read as the texts come:
        the views line ends in its own text, so the first match in the texts so far is
        the first in all of them (one that began earlier would span only digits and
        spaces up to where this one starts), and the texts after it are not read."""
        if "_meta" in self.__dict__:
            views = VISIBLE_VIEWS_RE.search(self._meta)
            return parse_count(views[1]) if views else None
        texts: list[str] = []
        for text in self._meta_texts():
            texts.append(text)
            views = VISIBLE_VIEWS_RE.search(" ".join(texts))
            if views:
                return parse_count(views[1])
        return None


def _detail(root: etree._Element, url: str) -> dict[str, Any]:
    """props.pageProps.detail when it has a title; {} means "read the visible page"."""
    try:
        data = _next_data(root, url)
    except ParseError as exc:
        logger.info("Gate article falls back to the visible page: %s", exc.reason)
        return {}
    detail = _dig(data, "props", "pageProps", "detail")
    if not isinstance(detail, dict) or not clean_title(str(detail.get("title") or "")):
        logger.info("Gate article falls back to the visible page: no detail title (%s)", url)
        return {}
    return detail


def parse_article(
    body: bytes | str, url: str, *, fetched_at: datetime, item: ListItem | None = None
) -> Record:
    """One announcement page as a Record; identity (id, language) comes from `url`.

    Data comes from __NEXT_DATA__ `detail`, else from the visible page. published_at is
    detail.release_timestamp, else item.published_at, else the visible time line. The title
    is always the page's (detail.title or the h1), never the list's. A page that gives no
    title and no time of its own (a challenge or block page) raises ParseError. `fetched_at`
    is accepted for the signature all parsers share: an article's times are absolute.
    """
    ref = article_ref(url)
    if ref is None:
        raise ParseError(url, "not a Gate announcement URL")
    external_id, language = ref
    if item is not None and item.external_id != external_id:
        logger.warning("list item %s ignored for article %s", item.external_id, external_id)
        item = None
    require_whole_page(body, url)
    root = page_root(body)
    detail = _detail(root, url)
    page_id = int_or_none(detail.get("id"))
    if page_id is not None and str(page_id) != external_id:
        logger.warning("article page %s says it is article %s; the URL wins", url, page_id)
    visible = _Visible(root)
    item_time = item.published_at if item else None
    if detail:
        title = clean_title(str(detail["title"]))
        published_at = (
            time_or_none(detail.get("release_timestamp")) or item_time or visible.published_at
        )
        if published_at is None:
            raise ParseError(url, "no release time in __NEXT_DATA__, the list or the page")
    else:
        # Without the JSON, only a page that shows a title, a time and a body is an article:
        # block pages have an <h1> ("Access Denied") but never the time line, and a page
        # whose body selector no longer matches goes to quarantine, not into a version.
        if not (visible.title and visible.published_at):
            raise ParseError(url, "neither __NEXT_DATA__ nor a visible title and time")
        if visible.body_html is None:
            raise ParseError(url, f"no __NEXT_DATA__ and no visible body ({ARTICLE_BODY_CSS})")
        title = visible.title
        published_at = item_time or visible.published_at
    desc = detail.get("desc")
    body_html = desc if isinstance(desc, str) and desc.strip() else visible.body_html

    cate_id = int_or_none(detail.get("cate_id"))
    if cate_id is None and item is not None:
        cate_id = item.cate_id
    category = SOURCE.categories.get(cate_id) if cate_id is not None else None
    tags = split_tags(detail.get("tags")) or (list(item.tags) if item else [])
    created_at = time_or_none(detail.get("created_t")) or (item.created_at if item else None)
    views = visible.views if visible.views is not None else (item.views if item else None)

    extra: dict[str, Any] = {"cate_id": cate_id}
    if created_at is not None:
        extra["created_at"] = format_time(created_at)
    if views is not None:
        extra["views"] = views
    # The text is made once here and handed on: the store would otherwise turn the
    # same HTML into the same text again. Symbols (the ticker tags among them) are the
    # store's to derive from what it stores (archive.symbols).
    body_text = html_to_text(body_html)
    return Record(
        source=SOURCE.source,
        kind="announcement",
        external_id=external_id,
        language=language,
        url=canonical_article_url(external_id, language),
        title=title,
        body_html=body_html,
        body_text=body_text,
        published_at=published_at,
        category=category.name if category else None,
        event_type=category.event_type if category else None,
        tags=tags,
        extra=extra,
    )


# --- the announcement WebSocket (annals watch, crawler.push) ------------------------------
# gate.com developer docs "announcements/ws": no key; one subscription per channel, the
# languages as payload; a keep-alive `announcement.ping`; no replay of what was missed.

PUSH_URL = "wss://api.gateio.ws/ws/v4/ann"
PUSH_PING = "announcement.ping"
# Channel -> the event type it announces (None: the store classifies by title).
PUSH_CHANNELS: dict[str, str | None] = {
    "announcement.summary_listing": "listing",
    "announcement.summary_delisting": "delisting",
    "announcement.summary_fee": None,
    "announcement.summary_etf": None,
    "announcement.summary_deposit_withdrawal": None,
    "announcement.summary_rename": None,
    "announcement.summary_precision": None,
    "announcement.summary_engine_upgrade": None,
}
# The channel's language codes where they differ from the site's locale prefix.
_PUSH_LANGUAGES = {"zh": "cn"}


def push_language(language: str) -> str:
    """The channel's code for a site language: "cn" for zh, else the same."""
    code = language_code(language)
    return _PUSH_LANGUAGES.get(code, code)


def _site_language(code: str) -> str:
    code = language_code(code)
    return next((site for site, push in _PUSH_LANGUAGES.items() if push == code), code)


def parse_push(body: bytes | str, url: str = PUSH_URL) -> Record | None:
    """The record an `update` of an announcement channel carries: title, the brief as
    body text, published_at, the article's canonical URL. Its identity is the article
    URL's, as parse_article derives it, so the article page is the same document
    (`origin_url` may be /article/{id} where the site's pages are
    /announcements/article/{id}: article_ref reads both). None for any other message
    (a subscription answer, a pong); ParseError for an update that cannot be a record."""
    message = load_json(body, url, "push message")
    if not isinstance(message, dict) or message.get("event") != "update":
        return None
    channel = message.get("channel")
    if channel not in PUSH_CHANNELS:
        return None
    result = message.get("result")
    if not isinstance(result, dict):
        raise ParseError(url, f"an update of {channel} without its result")
    origin_url = str(result.get("origin_url") or "")
    match = _article_match(origin_url)
    if match is None:
        raise ParseError(url, f"pushed origin_url is not a Gate article: {origin_url!r}")
    external_id, url_language = match
    language = url_language or _site_language(str(result.get("lang") or "en"))
    title = clean_title(str(result.get("title") or "")) or ""
    if not title:
        raise ParseError(url, f"pushed article {external_id} has no title")
    published_at = time_or_none(result.get("published_at"))
    if published_at is None:
        raise ParseError(url, f"pushed article {external_id} has no published_at")
    return Record(
        source=SOURCE.source,
        kind="announcement",
        external_id=external_id,
        language=language,
        url=canonical_article_url(external_id, language),
        title=title,
        body_text=normalize_text(str(result.get("brief") or "")),
        published_at=published_at,
        event_type=PUSH_CHANNELS[channel],
        extra={"pushed": channel},
    )
