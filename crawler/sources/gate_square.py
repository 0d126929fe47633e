"""Gate Square posts: URL forms, link targets and pure parsers for post pages and the feed."""

from __future__ import annotations

import copy
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple
from urllib.parse import quote, unquote

from parsel import Selector, SelectorList

from archive.normalize import (
    TimeParseError,
    clean_tags,
    html_to_text,
    normalize_text,
    parse_time,
)
from archive.records import Link, ParseError, Record
from archive.urls import absolute
from crawler.sources import gate
from crawler.sources.contract import Site
from crawler.sources.gate import (
    article_ref,
    gate_path,
    inner_html,
    language_code,
    page_selector,
    parse_count,
    require_whole_page,
)
from crawler.sources.parsing import Unusable

logger = logging.getLogger(__name__)

# Square is on Gate's site: its posts are the source "gate"'s too (kind "post").
SOURCE = Site(
    source=gate.SOURCE.source,
    spider="gate_square",
    hosts=gate.SOURCE.hosts,
    origin=gate.SOURCE.origin,
)

# --- Square markup: MODELED (samples/gate/README.md) -----------------------------------
# Square's URLs are confirmed; its markup is not (no Square JSON is publicly known). These
# selectors are the samples' invention: check them against the real site and change them
# here only, nothing else in this module names a class. A post's time comes from its own
# page; the feed only shows relative times.
POST_ARTICLE_CSS = "article.post-detail"  # carries data-post-id
POST_ID_ATTR = "data-post-id"
POST_CONTENT_CSS = "div.post-content"  # the body; its lang attribute is the post's language
POST_TIME_CSS = "time.post-time"  # absolute time in its datetime attribute
POST_AUTHOR_CSS = "a.post-author"  # href /profile/{handle}
POST_AUTHOR_NAME_CSS = ".post-author-name"
POST_COUNTS_CSS = {  # extra key -> the element whose text is the count
    "likes": ".post-like .post-count",
    "comments": ".post-comment-btn .post-count",
    "reposts": ".post-repost .post-count",
    "views": ".post-views",
}
HASHTAG_CLASS = "post-hashtag"
CASHTAG_CLASS = "post-cashtag"
FEED_CONTAINER_CSS = ".square-feed"
FEED_ITEM_CSS = "div.feed-item"  # assumed the same on topic pages (/post/topic/{TAG})
FEED_AUTHOR_CSS = "a.feed-author"
FEED_TIME_CSS = "a.feed-time"  # confirmed: a relative-time link to the post
FEED_BODY_CSS = ".feed-body"
FEED_MORE_CSS = "a.feed-more"
SHOW_MORE_TEXTS = frozenset({"show more", "more", "展开", "全文", "查看更多", "显示更多"})

# --- URLs -------------------------------------------------------------------------------

_POST_PATH = re.compile(r"^(?:/[A-Za-z]{2}(?:[-_][A-Za-z]{2,4})?)?/post/status/(?P<id>\d+)/?$")
_TOPIC_PATH = re.compile(r"^(?:/[A-Za-z]{2}(?:[-_][A-Za-z]{2,4})?)?/post/topic/(?P<tag>[^/]+)/?$")
_PROFILE_PATH = re.compile(r"/profile/(?P<handle>[^/?#]+)")
_CASHTAG_TEXT = re.compile(r"^\$([A-Za-z][A-Za-z0-9]{0,14})$")


def post_ref(url: str) -> str | None:
    """The post id of a Square post URL (gate.com or legacy gate.io, any locale), else None."""
    path = gate_path(url)
    match = _POST_PATH.match(path) if path else None
    return match["id"] if match else None


def feed_url(topic: str | None = None) -> str:
    """The feed, https://www.gate.com/post, or a topic's page (/post/topic/{TAG})."""
    return f"{SOURCE.origin}/post" + (f"/topic/{quote(topic, safe='')}" if topic else "")


def canonical_post_url(post_id: str) -> str:
    """https://www.gate.com/post/status/{id}."""
    return f"{SOURCE.origin}/post/status/{post_id}"


def resolve_link(href: str, base_url: str) -> Link:
    """An absolute link; Gate announcements and Square posts get their target set."""
    url = absolute(base_url, href.strip())
    ref = article_ref(url)
    if ref is not None:
        return Link(url, SOURCE.source, "announcement", ref[0])
    post_id = post_ref(url)
    if post_id is not None:
        return Link(url, SOURCE.source, "post", post_id)
    return Link(url)


# --- relative times ---------------------------------------------------------------------

_UNIT_SECONDS = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds", "秒", "秒钟", "秒鐘"), 1),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes", "分钟", "分鐘", "分"), 60),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours", "小时", "小時", "个小时", "個小時"), 3600),
    **dict.fromkeys(("d", "day", "days", "天", "日"), 86400),
    **dict.fromkeys(("w", "wk", "wks", "week", "weeks", "周", "週", "星期"), 604800),
}
_UNITS = "|".join(sorted(map(re.escape, _UNIT_SECONDS), key=len, reverse=True))
_RELATIVE = re.compile(rf"^(?P<n>\d+|an?)\s*(?P<unit>{_UNITS})\s*(?:ago|前)$", re.I)
_NOW_WORDS = frozenset({"刚刚", "剛剛", "just now", "now"})
_DAYS_BACK = {"yesterday": 1, "昨天": 1, "前天": 2}
_DAY_WORD = re.compile(r"^(?P<word>yesterday|昨天|前天)(?:\s*(?P<h>\d{1,2}):(?P<m>\d{2}))?$", re.I)
_ABSOLUTE = re.compile(r"^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}")
_MONTH_DAY = re.compile(r"^(?P<mo>\d{1,2})[-/](?P<d>\d{1,2})\s+(?P<h>\d{1,2}):(?P<mi>\d{2})$")


def parse_relative_time(text: str, now: datetime) -> datetime:
    """A feed time as an aware UTC datetime, counted back from `now` (the fetch time).

    Reads "刚刚"/"just now", "5分钟前", "32m ago", "1h ago", "3 hours ago", "2d ago",
    "3天前", "昨天"/"yesterday" (optionally with "13:52"), "2 weeks ago", and absolute
    "2026-04-09 13:52" or "04-09 13:52" (this year, or last year if that is ahead of now).
    Assumption: an absolute time without a zone is read as UTC, the zone Gate shows on
    English pages. Months and years ago are too vague to date: they raise TimeParseError,
    as does anything else unknown.
    """
    now = parse_time(now)  # aware UTC, ms kept; a naive `now` is read as UTC
    raw = normalize_text(text).lower()
    if raw in _NOW_WORDS:
        return now
    match = _RELATIVE.match(raw)
    if match:
        count = 1 if match["n"] in ("a", "an") else int(match["n"])
        return now - timedelta(seconds=count * _UNIT_SECONDS[match["unit"]])
    match = _DAY_WORD.match(raw)
    if match:
        day = now - timedelta(days=_DAYS_BACK[match["word"]])
        if match["h"] is None:
            return day
        return _at(day.year, day.month, day.day, int(match["h"]), int(match["m"]), text)
    match = _MONTH_DAY.match(raw)
    if match:
        parts = int(match["mo"]), int(match["d"]), int(match["h"]), int(match["mi"])
        when = _at(now.year, *parts, text)
        # A feed never shows a future time: "12-31 23:00" read in January is last year's.
        return when if when <= now + timedelta(days=1) else _at(now.year - 1, *parts, text)
    if _ABSOLUTE.match(raw):
        return parse_time(text)
    raise TimeParseError(f"not a feed time: {text!r}")


def _at(year: int, month: int, day: int, hour: int, minute: int, text: str) -> datetime:
    try:
        return datetime(year, month, day, hour, minute, tzinfo=UTC)
    except ValueError as exc:
        raise TimeParseError(f"not a feed time: {text!r}") from exc


# --- shared readers ---------------------------------------------------------------------


def _text(node: Selector | SelectorList[Selector]) -> str:
    """Normalized text of a node, or of the first node of a list ("" for none)."""
    if isinstance(node, SelectorList):
        if not node:
            return ""
        node = node[0]
    return normalize_text(" ".join(node.xpath(".//text()").getall()))


def _classes(anchor: Selector) -> set[str]:
    return set((anchor.attrib.get("class") or "").split())


def _hashtag(anchor: Selector) -> str | None:
    """The tag an <a> stands for: the hashtag class, or a '#' link to a topic page."""
    text = _text(anchor)
    if HASHTAG_CLASS in _classes(anchor):
        return text.lstrip("#＃") or None
    path = gate_path(anchor.attrib.get("href") or "")
    topic = _TOPIC_PATH.match(path) if path else None
    if topic and text.startswith(("#", "＃")):
        return text.lstrip("#＃") or unquote(topic["tag"])
    return None


def _cashtag(anchor: Selector) -> str | None:
    match = _CASHTAG_TEXT.match(_text(anchor))
    if match:
        return match[1].upper()
    if CASHTAG_CLASS in _classes(anchor):
        return _text(anchor).lstrip("$").upper() or None
    return None


def _tags(scope: Selector) -> list[str]:
    return clean_tags(tag for a in scope.css("a") if (tag := _hashtag(a)))


# --- post pages -------------------------------------------------------------------------


def _post_time(page: Selector, scope: Selector, fetched_at: datetime) -> datetime | None:
    """The time element's datetime, else its text (maybe relative), else the meta tag's."""
    node = scope.css(POST_TIME_CSS)
    meta = page.xpath('//meta[@property="article:published_time"]/@content').get()
    readers = (
        (node.attrib.get("datetime") if node else None, parse_time),
        (_text(node), lambda text: parse_relative_time(text, fetched_at)),
        (meta, parse_time),
    )
    for value, read in readers:
        if value:
            try:
                return read(value)
            except TimeParseError:
                logger.debug("unreadable post time %r", value)
    return None


def parse_post(body: bytes | str, url: str, *, fetched_at: datetime) -> Record:
    """One Square post page as a Record (kind "post", no title).

    The body is the post content only: never the site's navigation, "View Original", the
    disclaimer, the counts, the comments or the sidebar. Hashtags become tags, every
    other link in the content a Link (the store derives the symbols from the stored HTML
    and tags); counts go to `extra`. The id is the URL's, else the page's data-post-id.
    A time shown only in relative form is counted back from `fetched_at`. No post content
    raises ParseError.
    """
    require_whole_page(body, url)
    page = page_selector(body)
    articles = page.css(POST_ARTICLE_CSS)
    scope = articles[0] if articles else page
    contents = scope.css(POST_CONTENT_CSS)
    if not contents:
        raise ParseError(url, "no post content on the page")
    content = contents[0]
    page_id = (articles[0].attrib.get(POST_ID_ATTR) or "").strip() if articles else ""
    post_id = post_ref(url) or (page_id if page_id.isdigit() else None)
    if post_id is None:
        raise ParseError(url, "no post id in the URL or the page")
    if page_id and page_id != post_id:
        logger.warning("post page %s says it is post %s; the URL wins", url, page_id)
    canonical = canonical_post_url(post_id)

    body_html = inner_html(content.root)
    # Relative links resolve against the canonical URL, so a mirror's page links to the site.
    links = _content_links(content, canonical)
    name, extra = _author(scope)
    for key, css in POST_COUNTS_CSS.items():
        count = parse_count(_text(scope.css(css)))
        if count is not None:
            extra[key] = count

    published_at = _post_time(page, scope, fetched_at)
    if published_at is None:
        logger.warning("post %s shows no time", post_id)
    body_text = html_to_text(body_html)  # once, here: the store would make it again
    return Record(
        source=SOURCE.source,
        kind="post",
        external_id=post_id,
        language=language_code(content.attrib.get("lang")),
        url=canonical,
        title=None,
        body_html=body_html,
        body_text=body_text,
        published_at=published_at,
        tags=_tags(content),
        author=name or None,
        extra=extra,
        links=links,
    )


def _content_links(content: Selector, base_url: str) -> list[Link]:
    """The post's links, not hashtags or cashtags, in order."""
    links: dict[str, Link] = {}
    for anchor in content.css("a"):
        if _hashtag(anchor) or _cashtag(anchor):
            continue
        href = (anchor.attrib.get("href") or "").strip()
        if href and not href.startswith(("#", "javascript:")):
            link = resolve_link(href, base_url)
            links.setdefault(link.url, link)
    return list(links.values())


def _author(scope: Selector) -> tuple[str | None, dict[str, object]]:
    """The author's display name, and their profile handle and URL for `extra`."""
    author = scope.css(POST_AUTHOR_CSS)
    extra: dict[str, object] = {}
    href = (author.attrib.get("href") or "") if author else ""
    handle = _PROFILE_PATH.search(href)
    if handle:
        extra["author_handle"] = unquote(handle["handle"])
    if href:
        extra["author_url"] = absolute(SOURCE.origin + "/", href)
    return _text(scope.css(POST_AUTHOR_NAME_CSS)) or _text(author) or None, extra


# --- the feed ---------------------------------------------------------------------------


@dataclass
class FeedEntry:
    """One post block of the feed or a topic page: a pointer to the post's own page."""

    post_id: str
    url: str  # canonical
    author: str | None
    relative_time: str  # as shown: "1h ago", "刚刚"
    published_at: datetime | None  # relative_time counted back from the fetch time
    body_text: str  # the visible part only
    truncated: bool  # the block was cut short ("Show more"): only the post page is whole
    tags: list[str] = field(default_factory=list)
    language: str = "en"


def feed_record(entry: FeedEntry) -> Record | None:
    """What the feed says of a post, as its record when the post's page cannot be had
    (extra.from_feed); None for a block cut short, whose text would be false, or one
    without a readable time."""
    if entry.truncated or entry.published_at is None:
        return None
    return Record(
        source=SOURCE.source,
        kind="post",
        external_id=entry.post_id,
        language=entry.language,
        url=entry.url,
        body_text=entry.body_text,
        published_at=entry.published_at,
        author=entry.author,
        tags=list(entry.tags),
        extra={"from_feed": True, "relative_time": entry.relative_time},
    )


def _is_more(anchor: Selector) -> bool:
    return _text(anchor).lower() in SHOW_MORE_TEXTS


def _feed_entry(block: Selector, url: str, fetched_at: datetime) -> FeedEntry | None:
    time_link = block.css(FEED_TIME_CSS)
    # The time link is the confirmed pointer to the post; other links in the block may
    # point at other posts, so only the block's own id attribute is the fallback.
    post_id = post_ref(time_link.attrib.get("href") or "") if time_link else None
    if post_id is None:
        attr = (block.attrib.get(POST_ID_ATTR) or "").strip()
        post_id = attr if attr.isdigit() else None
    if post_id is None:
        return None
    relative = _text(time_link)
    published_at = None
    if relative:
        try:
            published_at = parse_relative_time(relative, fetched_at)
        except TimeParseError:
            logger.warning("feed post %s has an unreadable time %r (%s)", post_id, relative, url)
    bodies = block.css(FEED_BODY_CSS)
    body_text, truncated, tags, language = "", False, [], "en"
    if bodies:
        trimmed = copy.deepcopy(bodies[0].root)
        scope = Selector(root=trimmed)
        more = scope.css(FEED_MORE_CSS) + [a for a in scope.css("a, button") if _is_more(a)]
        for node in more:
            if node.root.getparent() is not None:
                node.root.drop_tree()
        truncated = bool(more)
        body_text = html_to_text(inner_html(trimmed))
        tags = _tags(scope)
        language = language_code(bodies[0].attrib.get("lang"))
    author = block.css(FEED_AUTHOR_CSS)
    return FeedEntry(
        post_id=post_id,
        url=canonical_post_url(post_id),
        author=_text(author) or None,
        relative_time=relative,
        published_at=published_at,
        body_text=body_text,
        truncated=truncated,
        tags=tags,
        language=language,
    )


class Feed(NamedTuple):
    """What one feed page holds: its posts in order, and the blocks that name no post."""

    entries: list[FeedEntry]
    unusable: list[Unusable]


def parse_feed(body: bytes | str, url: str, *, fetched_at: datetime) -> Feed:
    """The post blocks of the feed (/post) or a topic page (/post/topic/{TAG}), in order.

    A block without a post id cannot be fetched or archived: it is reported in
    `unusable` for the spider to count and quarantine. A page with neither blocks nor a
    feed container (a challenge page, say) raises ParseError; an empty feed has no entries.
    """
    page = page_selector(body)
    blocks = page.css(FEED_ITEM_CSS)
    if not blocks and not page.css(FEED_CONTAINER_CSS):
        raise ParseError(url, "no Square feed on the page")
    entries: dict[str, FeedEntry] = {}
    unusable: list[Unusable] = []
    for position, block in enumerate(blocks):
        entry = _feed_entry(block, url, fetched_at)
        if entry is None:
            unusable.append(Unusable(position, "a feed block with no post id"))
            continue
        entries.setdefault(entry.post_id, entry)
    return Feed(list(entries.values()), unusable)
