"""HTX announcements (the support centre's list, `/-/x/support/public/getList/v2`): the
source's facts and parser.

HTX publishes no announcement API; its support pages load this JSON list, which public
code calls with no key. There is no list of everything: each list is one `twoLevelId`
under the announcements tree (`oneLevelId` 360000031902), so a crawl walks the five
(`walk_categories`). Pages by number from 1 (`page`, `limit` up to 50, the most public
code asks); more pages follow while `data.currPage` < `data.totalPage`, and an empty
`list` ends a walk (what HTX answers past the last page).

Identity: `id` (a 14-digit number, kept as text); the article page is
`https://www.htx.com/support/<id>` (with the locale in the path for other languages).
Time: `showTime`, epoch milliseconds, UTC. Title: entities decoded, whitespace
normalized (HTX titles carry double spaces). Body: none; the list gives a title, a time
and an id only, and the detail call's answer is not published. Category: the list's
`twoLevelId`, which the items do not repeat, stored by its name ("New Listings"); an
announcement in two lists is one document, its category the first it was archived from
(the navigator keeps it). `dealPair` ("spot_CT/USDT", listings only) goes to
`extra["deal_pair"]`; `orderNo` (an ordering number) is not kept.

Errors: success is `code` 200 (a number); another code is a failure envelope, `429` the
rate limit (retried with the host's backoff, then blocked). Bad JSON or a wrong shape
raises `ParseError`, as does a first page with no items whose `totalCount` says there are
some. A single item without an id, title or readable `showTime` is left out and listed in
`ListPage.unusable`. No limit is published: about one request a second. htx.com sits
behind Cloudflare, so requests carry a browser User-Agent and Accept-Language.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from archive.normalize import clean_title
from archive.records import ParseError, Record
from crawler.sources.contract import Envelope, Items, PageNumbers, Source
from crawler.sources.parsing import (
    Category,
    UnusableItemError,
    first_time,
    int_or_none,
    need,
    text_or_none,
)

ANNOUNCEMENTS = "360000031902"  # oneLevelId: the announcements tree of the support centre
_LIST = "twoLevelId"  # the query parameter, and the key the items get when read

_PAGES = PageNumbers("page", size="limit")


def _asked(url: str) -> str | None:
    """The twoLevelId a list URL asks."""
    given = parse_qs(urlsplit(url).query).get(_LIST)
    return given[0] if given else None


def _items(data: Mapping[str, Any], url: str) -> Items:
    result = data.get("data")
    if not isinstance(result, Mapping) or not isinstance(result.get("list"), list):
        raise ParseError(url, "data.list is not a list")
    items: list[Any] = result["list"]
    counted = int_or_none(result.get("totalCount"))
    if not items and int_or_none(result.get("currPage")) == 1 and counted:
        raise ParseError(url, f"first page lists no items though totalCount is {counted}")
    # The items do not say which list they are in: the list asked tells (the item's own
    # field would win, should HTX ever send one).
    asked = _asked(url)
    listed = [{_LIST: asked, **item} if isinstance(item, Mapping) else item for item in items]
    size = int_or_none(result.get("pageSize")) or SOURCE.page_size
    pages = int_or_none(result.get("totalPage"))
    return Items(listed, _PAGES.has_more(url, len(items), size, pages=pages))


def _record(item: Mapping[str, Any], language: str) -> Record:
    ann_id = need(item, "id")
    if not ann_id.isdigit():
        raise UnusableItemError(f"id {ann_id!r} is not a number")
    title = clean_title(need(item, "title", ann_id))
    if not title:
        raise UnusableItemError(f"{ann_id}: no title")
    published_at, _ = first_time(item, ("showTime",), ann_id)
    extra: dict[str, Any] = {}
    deal_pair = text_or_none(item.get("dealPair"))
    if deal_pair:
        extra["deal_pair"] = deal_pair
    listed = SOURCE.categories.get(text_or_none(item.get(_LIST)) or "")
    api = SOURCE.api_language(language)
    locale = "" if api == "en-us" else f"{api}/"
    return SOURCE.announcement(
        language,
        ann_id,
        SOURCE.article_url.format(locale=locale, id=ann_id),
        title=title,
        published_at=published_at,
        category=listed.name if listed else None,
        event_type=listed.event_type if listed else None,
        extra=extra,
    )


# A browser's, as public notes on htx.com's Cloudflare say to send.
_BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)

SOURCE = Source(
    source="htx",
    spider="htx_announcements",
    hosts=("www.htx.com",),
    endpoint="https://www.htx.com/-/x/support/public/getList/v2",
    paging=_PAGES,
    # Public callers cap `limit` at 50 ("API supports at most 50").
    page_size=50,
    page_sizes=frozenset(range(1, 51)),
    envelope=Envelope(ok="200", rate_limit_codes=frozenset({"429"})),
    items=_items,
    record=_record,
    categories={
        c.key: c
        for c in (
            Category("360000039942", "New Listings", "listing"),
            Category("64971881385864", "Delistings", "delisting"),
            Category("360000039982", "Deposit/Withdrawal Suspensions", "maintenance"),
            Category("360000039481", "Latest News", "news"),
            Category("360000070201", "API Announcements", "product"),
        )
    },
    category_param=_LIST,
    walk_categories=True,  # no list of everything: every twoLevelId is walked
    fixed_query={"oneLevelId": ANNOUNCEMENTS},
    query_order=("language", "paging", "category"),
    languages={"en": "en-us", "zh": "zh-cn", "zh-tw": "zh-tw"},
    language_in="query",
    language_key="language",
    headers_sent={
        "User-Agent": _BROWSER,
        "Accept": "application/json, text/plain, */*",
        "Accept-Language": "en-US,en;q=0.9",
    },
    # No published limit: about one request a second, as public callers pace it.
    download_delay=1.0,
    article_url="https://www.htx.com/{locale}support/{id}",
)
