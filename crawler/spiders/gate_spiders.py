"""Gate's spiders: announcements (hub, category pages, list endpoint, sitemap) and Square.

They only navigate; parsing is in crawler.sources.gate and crawler.sources.gate_square.
A listed article whose page answers 404/410 is kept with what the listing says,
marked extra.listing_only = "not_found"; a blocked page is left out and tried again
on the next run. Neither is ever filled from the error page.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Generator, Iterator
from typing import Any
from urllib.parse import quote, urlsplit

from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from twisted.python.failure import Failure

from archive.normalize import utcnow
from archive.records import Identity, ParseError, RawResponse, Record, Removed
from archive.store import Known
from crawler.sources import gate, gate_square
from crawler.sources.parsing import EnvelopeError, unusable_reason
from crawler.spiders.base import AnnalsSpider, csv_arg, flag

logger = logging.getLogger(__name__)

ORIGIN = gate.CANONICAL_ORIGIN
MISSING = (404, 410)
DEFAULT_CATEGORIES = ("newlisted", "delisted")


def _prefix(language: str) -> str:
    return "" if language == "en" else f"/{language}"


def _is_partial(known: Known | None) -> bool:
    """Archived from a listing or a feed only, not from the item's own page."""
    return known is not None and bool(
        known.extra.get("listing_only") or known.extra.get("from_feed")
    )


class GateSpider(AnnalsSpider):
    """What both Gate spiders share: the source and its hosts."""

    source = gate.SOURCE
    hosts = gate.HOSTS


class GateAnnouncementsSpider(GateSpider):
    """Gate announcements: hub, category pages, the list endpoint; -a sitemap=1 backfills.

    Arguments besides base_url, full and lang: categories=newlisted,delisted (the
    category pages to read), sitemap=1 (also read the announcement sitemap).
    Languages other than en are discovered from their locale's listing pages and the
    sitemap: how the list endpoint picks a language is not known.
    """

    name = "gate_announcements"

    def __init__(
        self,
        *args: Any,
        sitemap: str | None = None,
        categories: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.sitemap = flag(sitemap)
        self.categories = csv_arg(categories) or list(DEFAULT_CATEGORIES)
        self._scheduled: set[Identity] = set()
        self._listed: set[str] = set()  # ids the list endpoint gave in this run

    async def start(self) -> AsyncIterator[Any]:
        paths = ["hub", *self.categories, "list endpoint"]
        logger.info(
            "gate_announcements: %s mode, languages %s, discovery from %s%s",
            "full" if self.full else "incremental",
            ",".join(self.languages),
            ", ".join(paths),
            " and the sitemap" if self.sitemap else "",
        )
        for language in self.languages:
            base = f"{ORIGIN}{_prefix(language)}/announcements"
            for url in [base, *(f"{base}/{slug}" for slug in self.categories)]:
                yield self.request(
                    url,
                    self.parse_listing,
                    cb_kwargs={"language": language},
                    errback=self.fetch_failed,
                    meta={"handle_httpstatus_list": list(MISSING)},
                )
            if language == "en":
                yield self.list_page(1, language)
        if self.sitemap:
            yield self.request(
                ORIGIN + gate.SITEMAP_PATH, self.parse_sitemap, errback=self.fetch_failed
            )

    @classmethod
    def parse_snapshot(cls, raw: RawResponse) -> list[Record]:
        when = raw.fetched_at or utcnow()
        if gate.article_ref(raw.url):
            return [gate.parse_article(raw.body, raw.url, fetched_at=when)]
        path = urlsplit(raw.url).path
        if path.endswith(".xml"):
            gate.parse_sitemap(raw.body, raw.url)
            return []
        if path == gate.LIST_API_PATH:
            listing = gate.parse_list_api(raw.body, raw.url)
        else:
            listing = gate.parse_listing_page(raw.body, raw.url)
            if not listing.items:
                raise ParseError(raw.url, "listing has no items")
        if listing.unusable:
            raise ParseError(raw.url, unusable_reason(listing.unusable))
        return []

    def list_page(self, page: int, language: str) -> Any:
        return self.json_request(
            ORIGIN + gate.LIST_API_PATH,
            gate.list_api_body(page),
            self.parse_list_api,
            cb_kwargs={"page": page, "language": language},
            errback=self.list_api_failed,
        )

    # --- listings -------------------------------------------------------------------------

    def parse_listing(self, response: Response, language: str) -> Iterator[Any]:
        if response.status in MISSING:
            logger.warning("listing %s answered %d", self.real_url(response), response.status)
            self.count("listing_missing")
            return
        try:
            page = gate.parse_listing_page(response.body, self.real_url(response))
        except ParseError as exc:
            yield self.quarantine(response, exc.reason)
            return
        if not page.items:
            # A first screen with nothing on it is a broken page, not an empty exchange;
            # nothing is marked removed because of it.
            yield self.quarantine(response, "listing has no items")
            return
        yield from self.unusable(response, page)
        yield from self.schedule(page.items, self.raw(response))

    def parse_list_api(self, response: Response, page: int, language: str) -> Iterator[Any]:
        try:
            listing = gate.parse_list_api(response.body, self.real_url(response), language=language)
        except EnvelopeError as exc:
            self.count("refused")
            yield self.quarantine(response, str(exc))
            return
        except ParseError as exc:
            yield self.quarantine(response, exc.reason)
            return
        yield from self.unusable(response, listing)
        if not listing.items:
            if page == 1 and not listing.unusable:
                yield self.quarantine(response, "list endpoint answered no items on page 1")
            return  # past the last page
        new = yield from self.schedule(listing.items, self.raw(response))
        dates = [i.published_at for i in listing.items if i.published_at is not None]
        unseen = len({i.external_id for i in listing.items} - self._listed)
        self._listed.update(i.external_id for i in listing.items)
        if self.keep_paging(new, unseen, min(dates, default=None)):
            yield self.list_page(page + 1, language)

    def unusable(self, response: Response, page: gate.ListingPage) -> Iterator[Any]:
        """Items that cannot be scheduled are a loss: counted, their page quarantined."""
        if page.unusable:
            self.count("unusable_items", len(page.unusable))
            yield self.quarantine(response, unusable_reason(page.unusable))

    def list_api_failed(self, failure: Failure) -> Iterator[Any]:
        if failure.check(IgnoreRequest) and "robots.txt" in failure.getErrorMessage().lower():
            logger.warning(
                "robots.txt disallows Gate's list endpoint: discovering from the listing pages"
                " and the sitemap instead (set ROBOTSTXT_OBEY=False to use it anyway)"
            )
            if not self.sitemap:
                self.sitemap = True
                yield self.request(
                    ORIGIN + gate.SITEMAP_PATH, self.parse_sitemap, errback=self.fetch_failed
                )
            return
        self.fetch_failed(failure)

    def parse_sitemap(self, response: Response) -> Iterator[Any]:
        try:
            entries = gate.parse_sitemap(response.body, self.real_url(response))
        except ParseError as exc:
            yield self.quarantine(response, exc.reason)
            return
        wanted = [e for e in entries if e.language in self.languages]
        keys = [Identity(self.source, "announcement", e.external_id, e.language) for e in wanted]
        known = self.known(keys)
        for key in keys:
            if key not in self._scheduled and self.wants(key, known.get(key)):
                self._scheduled.add(key)
                yield self.article(key, None, known.get(key), None)

    def schedule(
        self, items: list[gate.ListItem], listing: RawResponse
    ) -> Generator[Any, None, int]:
        """Article requests for the items worth fetching; returns how many were new."""
        keys = [Identity(self.source, "announcement", i.external_id, i.language) for i in items]
        known = self.known(keys)
        new = 0
        for key, item in zip(keys, items, strict=True):
            seen = known.get(key)
            # Not yet archived counts as new even when another listing of this run
            # already scheduled it: the hub repeats the list endpoint's first page.
            new += seen is None
            if key in self._scheduled:
                continue
            if self.wants(key, seen, None if item.title_truncated else item.title):
                self._scheduled.add(key)
                yield self.article(key, item, seen, listing)
        return new

    def article(
        self, key: Identity, item: gate.ListItem | None, known: Known | None, listing: Any
    ) -> Any:
        return self.request(
            gate.canonical_article_url(key.external_id, key.language),
            self.parse_article,
            cb_kwargs={"item": item, "known": known, "listing": listing},
            errback=self.fetch_failed,
            meta={"handle_httpstatus_list": list(MISSING)},
        )

    # --- articles -------------------------------------------------------------------------

    def parse_article(
        self,
        response: Response,
        item: gate.ListItem | None,
        known: Known | None,
        listing: RawResponse | None,
    ) -> Iterator[Any]:
        if response.status not in MISSING:
            yield from self.parsed(response, gate.parse_article, fetched_at=utcnow(), item=item)
            return
        url = self.real_url(response)
        ref = gate.article_ref(url)
        if ref is None:
            return
        key = Identity(self.source, "announcement", *ref)
        if known is not None and not _is_partial(known):
            logger.info("%s answered %d: marked removed", url, response.status)
            yield Removed(key, url, utcnow())
            return
        self.count("not_found")
        if item is not None and known is None:
            self.count("listing_only")
            yield self.listing_only(key, item, listing)

    def listing_only(
        self, key: Identity, item: gate.ListItem, listing: RawResponse | None
    ) -> Record:
        """What the listing says of an article whose page cannot be had."""
        category = gate.CATEGORIES.get(item.cate_id) if item.cate_id is not None else None
        extra: dict[str, Any] = {"cate_id": item.cate_id, "listing_only": "not_found"}
        if item.views is not None:
            extra["views"] = item.views
        if item.title_truncated:
            extra["title_truncated"] = True
        return Record(
            source=key.source,
            kind=key.kind,
            external_id=key.external_id,
            language=key.language,
            url=item.url,
            title=item.title,
            body_text=item.brief or "",
            published_at=item.published_at,
            category=category.name if category else None,
            event_type=category.event_type if category else None,
            tags=list(item.tags),
            extra=extra,
            raw=listing,
            seen_at=listing.fetched_at if listing else None,
        )


class GateSquareSpider(GateSpider):
    """Gate Square posts: the feed, topic pages (-a topics=A,B) and posts (-a posts=1,2).

    A post is archived from its own page. When that page cannot be had, a feed block
    that is not cut short stands in, with its relative time resolved against the fetch
    time and extra.from_feed = true.
    """

    name = "gate_square"

    def __init__(
        self,
        *args: Any,
        topics: str | None = None,
        posts: str | None = None,
        feed: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.topics = csv_arg(topics)
        self.posts = csv_arg(posts)
        self.feed = flag(feed) if feed is not None else not (self.topics or self.posts)
        self._scheduled: set[str] = set()

    async def start(self) -> AsyncIterator[Any]:
        if self.feed:
            yield self.request(f"{ORIGIN}/post", self.parse_feed, errback=self.fetch_failed)
        for tag in self.topics:
            yield self.request(
                f"{ORIGIN}/post/topic/{quote(tag, safe='')}",
                self.parse_feed,
                errback=self.fetch_failed,
            )
        for post_id in self.posts:
            self._scheduled.add(post_id)
            yield self.post(post_id, None, None)

    @classmethod
    def parse_snapshot(cls, raw: RawResponse) -> list[Record]:
        when = raw.fetched_at or utcnow()
        if gate_square.post_ref(raw.url):
            return [gate_square.parse_post(raw.body, raw.url, fetched_at=when)]
        feed = gate_square.parse_feed(raw.body, raw.url, fetched_at=when)
        if feed.unusable:  # still not all of it: it stays in quarantine
            raise ParseError(raw.url, unusable_reason(feed.unusable))
        return []

    def post(self, post_id: str, entry: gate_square.FeedEntry | None, known: Known | None) -> Any:
        return self.request(
            gate_square.canonical_post_url(post_id),
            self.parse_post,
            cb_kwargs={"entry": entry, "known": known},
            errback=self.fetch_failed,
            meta={"handle_httpstatus_list": list(MISSING)},
        )

    def parse_feed(self, response: Response) -> Iterator[Any]:
        try:
            feed = gate_square.parse_feed(
                response.body, self.real_url(response), fetched_at=utcnow()
            )
        except ParseError as exc:
            yield self.quarantine(response, exc.reason)
            return
        if feed.unusable:  # the other posts of the page are still fetched
            self.count("unusable_items", len(feed.unusable))
            yield self.quarantine(response, unusable_reason(feed.unusable))
        entries = feed.entries
        keys = [Identity(self.source, "post", e.post_id, e.language) for e in entries]
        known = self.known(keys)
        for key, entry in zip(keys, entries, strict=True):
            if entry.post_id in self._scheduled or not self.wants(key, known.get(key)):
                continue
            self._scheduled.add(entry.post_id)
            yield self.post(entry.post_id, entry, known.get(key))

    def parse_post(
        self, response: Response, entry: gate_square.FeedEntry | None, known: Known | None
    ) -> Iterator[Any]:
        if response.status not in MISSING:
            yield from self.parsed(response, gate_square.parse_post, fetched_at=utcnow())
            return
        url = self.real_url(response)
        post_id = gate_square.post_ref(url)
        if post_id is None:
            return
        if known is not None and not _is_partial(known):
            key = Identity(self.source, "post", post_id, entry.language if entry else "en")
            yield Removed(key, url, utcnow())
            return
        self.count("not_found")
        if entry is None or known is not None or entry.truncated or entry.published_at is None:
            # A cut-short block would be a false text, and a post archived from the feed
            # once is not re-dated by a later "1h ago".
            return
        yield Record(
            source=self.source,
            kind="post",
            external_id=post_id,
            language=entry.language,
            url=entry.url,
            body_text=entry.body_text,
            published_at=entry.published_at,
            author=entry.author,
            tags=list(entry.tags),
            extra={"from_feed": True, "relative_time": entry.relative_time},
        )
