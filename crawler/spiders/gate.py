"""Gate announcements' spider: the hub, category pages, the list endpoint, the sitemap.

It only navigates; parsing is in crawler.sources.gate. A listed article whose page
answers 404/410 is kept with what the listing says (AnnalsSpider.missing); a blocked
page is left out and tried again on the next run. Neither is ever filled from the
error page.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from twisted.python.failure import Failure

from archive.normalize import utcnow
from archive.records import Identity, ParseError, RawResponse, Record
from archive.store import Known
from crawler.sources import gate
from crawler.sources.parsing import EnvelopeError, unusable_reason
from crawler.spiders.arguments import Arguments, argument
from crawler.spiders.base import MISSING, AnnalsSpider, listing_only

logger = logging.getLogger(__name__)

NO_ITEMS = "listing has no items"  # an HTML listing's first screen with nothing on it


@dataclass(frozen=True)
class GateArguments(Arguments):
    categories: tuple[str, ...] = argument(
        gate.SOURCE.category_pages, "the category pages to read (Gate's slugs)"
    )
    sitemap: bool = argument(False, "also read the announcement sitemap (a backfill)")


class GateAnnouncementsSpider(AnnalsSpider):
    """Gate announcements: hub, category pages, the list endpoint; -a sitemap=1 backfills.

    Arguments (GateArguments) besides base_url, full and lang: categories (the category
    pages to read), sitemap=1 (also read the announcement sitemap). Languages other than
    en are discovered from their locale's listing pages and the sitemap: how the list
    endpoint picks a language is not known.
    """

    facts = gate.SOURCE
    Args = GateArguments
    args: GateArguments

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sitemap = self.args.sitemap
        self.categories = list(self.args.categories) or list(gate.SOURCE.category_pages)
        self._scheduled: set[Identity] = set()
        self._listed: set[str] = set()  # ids the list endpoint gave in this run

    def new_round(self) -> None:
        super().new_round()
        self._scheduled.clear()
        self._listed.clear()

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
            for slug in [None, *self.categories]:
                yield self.request(
                    gate.listing_url(language, slug),
                    self.parse_listing,
                    cb_kwargs={"language": language},
                    errback=self.fetch_failed,
                    meta={"handle_httpstatus_list": list(MISSING)},
                )
            if language == "en":
                yield self.list_page(1, language)
        if self.sitemap:
            yield self.sitemap_request()

    @classmethod
    def parse_snapshot(cls, raw: RawResponse) -> list[Record]:
        when = raw.fetched_at or utcnow()
        if gate.article_ref(raw.url):
            return [gate.parse_article(raw.body, raw.url, fetched_at=when)]
        path = urlsplit(raw.url).path
        if path.endswith(".xml"):
            gate.parse_sitemap(raw.body, raw.url)
            return []
        if path == gate.SOURCE.list_path:
            listing = gate.parse_list_api(raw.body, raw.url)
        else:
            listing = gate.parse_listing_page(raw.body, raw.url)
            if not listing.items:
                raise ParseError(raw.url, NO_ITEMS)
        if listing.unusable:
            raise ParseError(raw.url, unusable_reason(listing.unusable))
        return []

    def list_page(self, page: int, language: str) -> Any:
        return self.json_request(
            gate.SOURCE.origin + gate.SOURCE.list_path,
            gate.list_api_body(page),
            self.parse_list_api,
            cb_kwargs={"page": page, "language": language},
            errback=self.list_api_failed,
        )

    def sitemap_request(self) -> Any:
        return self.request(
            gate.SOURCE.origin + gate.SOURCE.sitemap_path,
            self.parse_sitemap,
            errback=self.fetch_failed,
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
            yield self.empty_first_page(response, NO_ITEMS)
            return
        yield from self.unusable(response, page.unusable)
        articles, _ = self.schedule(page.items, self.raw(response))
        yield from articles

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
        yield from self.unusable(response, listing.unusable)
        if not listing.items:
            if page == 1 and not listing.unusable:
                yield self.empty_first_page(response, "list endpoint answered no items on page 1")
            return  # past the last page
        articles, new = self.schedule(listing.items, self.raw(response))
        unseen = len({i.external_id for i in listing.items} - self._listed)
        self._listed.update(i.external_id for i in listing.items)
        # How far back the page reaches: its last item, as the list is newest first (an
        # old announcement pinned on top would end a repair walk early if its date counted).
        following = None
        if self.keep_paging(new, unseen, listing.items[-1].published_at):
            following = self.list_page(page + 1, language)
        yield from self.paged(following, articles)

    def list_api_failed(self, failure: Failure) -> Iterator[Any]:
        if failure.check(IgnoreRequest) and "robots.txt" in failure.getErrorMessage().lower():
            logger.warning(
                "robots.txt disallows Gate's list endpoint: discovering from the listing pages"
                " and the sitemap instead (set ROBOTSTXT_OBEY=False to use it anyway)"
            )
            if not self.sitemap:
                self.sitemap = True
                yield self.sitemap_request()
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

    def schedule(self, items: list[gate.ListItem], listing: RawResponse) -> tuple[list[Any], int]:
        """Article requests for the items worth fetching, and how many items were new."""
        requests = []
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
                requests.append(self.article(key, item, seen, listing))
        return requests, new

    def article(
        self,
        key: Identity,
        item: gate.ListItem | None,
        known: Known | None,
        listing: RawResponse | None,
        **meta: Any,
    ) -> Any:
        return self.request(
            gate.canonical_article_url(key.external_id, key.language),
            self.parse_article,
            cb_kwargs={"key": key, "item": item, "known": known, "listing": listing},
            errback=self.fetch_failed,
            meta={"handle_httpstatus_list": list(MISSING), **meta},
        )

    def completion(self, pushed: Record) -> Any:
        """`annals watch` (crawler.push.GatePush): the article request that completes a
        record archived from the announcement WebSocket (title, brief, time only). Its
        record is marked extra.completes_push. Not known (None) to it: a page that
        answers 404 at once (Gate not serving it yet) is counted not_found, and the push
        record is kept, not marked removed; a later poll that lists it fetches it again
        while it is young, and that record completes the push too (parse_article)."""
        self.mark_seen(pushed.identity)  # a round in progress does not fetch it twice
        request = self.article(pushed.identity, None, None, None, annals_completes_push=True)
        # Asked even if this round fetched the page already (before the push was written).
        return request.replace(dont_filter=True)

    # --- articles -------------------------------------------------------------------------

    def parse_article(
        self,
        response: Response,
        key: Identity,
        item: gate.ListItem | None,
        known: Known | None,
        listing: RawResponse | None,
    ) -> Iterator[Any]:
        if response.status not in MISSING:
            # The article of a document whose current version came from the push channel
            # completes it (GatePush): asked right after the push, or, when the page was
            # not there yet, by a later poll.
            completes = response.meta.get("annals_completes_push") or (
                known is not None and known.extra.get("pushed")
            )
            for parsed in self.parsed(response, gate.parse_article, fetched_at=utcnow(), item=item):
                if isinstance(parsed, Record) and completes:
                    parsed.extra["completes_push"] = True
                yield parsed
            return
        stand_in = listing_only(gate.listed_record(item), listing) if item else None
        yield from self.missing(response, key, known, stand_in)
