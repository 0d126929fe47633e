"""One navigator for the exchanges whose announcements come from a JSON list endpoint.

`ApiAnnouncementsSpider` walks a list endpoint newest first and hands every answer to
the exchange's `Source` (crawler.sources.contract); the spiders below only name theirs
(the `SOURCE` of its module in crawler.sources), which holds the exchange's facts: hosts,
endpoints, paging, categories, languages, politeness, envelope and rate-limit codes.

- Listings: one per language and category (`-a categories=...`; by default the
  endpoint's unfiltered list). Pages by number, by time window or end cursor where the
  source's paging is `TimeWindows` (Bitget; Bitfinex, Deribit), or one answer
  (`OnePage`: Bithumb, Crypto.com). A listing ends on an empty page, on the answer's
  `has_more`, on a page that brings nothing unseen in this run, and, unless `-a full=1`,
  on the first page that brings nothing the archive lacks, except while repairing after
  an unfinished crawl (AnnalsSpider.keep_paging, told how far back the page reaches).
- Walked categories: where the source has no unfiltered list (`Source.walk_categories`:
  HTX, BingX), every category is a listing; one may rightly be empty (not quarantined),
  and an announcement listed in two keeps the category it was first archived from, so
  the list a later run meets it in first makes no new version.
- Records: the list record is the record (its body is the API's description), except
  where the source has a `detail` endpoint (Binance, MEXC, Upbit): each unseen article's
  detail is fetched once per run and language, and the detail record is archived. Where the list
  dates each item's last change (Upbit's listed_at, `Source.changed_key`), a known
  article's detail is fetched again only when that date or its title changed.
- Items that cannot become records (no id, title or time) are counted (annals/
  unusable_items) and their answer is quarantined; the other items are archived. A
  listing's first page with no items at all is quarantined too (the run ends "partial").
- Failure envelopes are never archived: the answer goes to quarantine with its code
  and message (annals/refused, the run ends "partial") and that listing stops.
  Rate-limit codes (`Envelope.rate_limit_codes`) are retried after a backoff, like
  BlockMiddleware's blocks, then given up (annals/blocked, the run ends "blocked").
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

import scrapy
from scrapy.http import Response
from scrapy.settings import BaseSettings

from archive.normalize import normalize_text
from archive.records import Identity, ParseError, Quarantined, RawResponse, Record
from archive.store import Known
from crawler.backoff import host_backoff
from crawler.sources import (
    binance,
    bingx,
    bitfinex,
    bitget,
    bithumb,
    bybit,
    cryptocom,
    deepcoin,
    deribit,
    htx,
    kraken,
    kucoin,
    mexc,
    okx,
    upbit,
    xt,
)
from crawler.sources.contract import Source, TimeWindows
from crawler.sources.parsing import EnvelopeError, ListPage, time_or_none, unusable_reason
from crawler.spiders.arguments import ArgumentError, Arguments, argument
from crawler.spiders.base import MISSING, AnnalsSpider, listing_only

logger = logging.getLogger(__name__)

RETRIES = "annals_envelope_retries"  # request.meta key: rate-limit envelopes retried so far


@dataclass(frozen=True)
class Listing:
    """One list to walk: a language, and a category or None for the unfiltered list."""

    language: str
    category: str | None

    def __str__(self) -> str:
        return f"{self.language}/{self.category or 'all'}"


@dataclass(frozen=True)
class ApiArguments(Arguments):
    categories: tuple[str, ...] = argument(
        (), "the exchange's own category keys, comma-separated (default: its unfiltered list)"
    )
    # Tests use it to page a small mirror over several pages.
    page_size: int | None = argument(
        None, "items a list page asks, where the API takes a size (default: its largest)"
    )


class ApiAnnouncementsSpider(AnnalsSpider):
    """Announcements from an exchange's JSON list endpoint (subclasses set `facts`).

    Arguments (ApiArguments) besides base_url, full and lang: categories, the keys of the
    source's `Source.categories` (unknown keys are refused); page_size, one of the sizes
    the API documents (`Source.page_sizes`).
    """

    Args = ApiArguments
    args: ApiArguments
    facts: ClassVar[Source]  # the exchange's facts and parsers

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        facts: Source | None = cls.__dict__.get("facts")
        if facts is not None:  # the source's first language: Korean for Upbit's feed
            cls.default_languages = (next(iter(facts.languages)),)

    @classmethod
    def describe_arguments(cls) -> list[tuple[str, str, str]]:
        """The arguments, with what this source takes: its languages, category keys and
        page sizes."""
        takes = {
            "lang": cls.facts.languages,
            "categories": cls.facts.categories,
            "page_size": sorted(cls.facts.page_sizes),
        }
        return [
            (name, form, text if name not in takes else f"{text}; takes {_listed(takes[name])}")
            for name, form, text in super().describe_arguments()
        ]

    @classmethod
    def update_settings(cls, settings: BaseSettings) -> None:
        super().update_settings(settings)
        source = cls.facts
        # The exchange's documented limit is a floor: Scrapy's randomized delay would
        # go down to half of it, so it is switched off for these spiders.
        settings.setdict(
            {
                "DOWNLOAD_DELAY": source.download_delay,
                "DOWNLOAD_DELAY_JITTER": 0,
                "CONCURRENT_REQUESTS_PER_DOMAIN": source.concurrency,
            },
            priority="spider",
        )
        # A status the source answers with its own error (Bitfinex's error arrays come
        # with HTTP 500) is read, not retried by Scrapy as a server fault: the envelope
        # says whether to retry (with the host's backoff) or to refuse.
        if source.answer_statuses:
            retried = [
                code
                for code in settings.getlist("RETRY_HTTP_CODES")
                if int(code) not in source.answer_statuses
            ]
            settings.set("RETRY_HTTP_CODES", retried, priority="spider")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        source = self.facts
        # None: the source's production size. A size is checked here, not at the first request.
        size = self.args.page_size
        self.page_size = source.check_page_size(size) if size is not None else None
        _check_known(self.name, "languages", self.languages, source.languages)
        _check_known(self.name, "categories", list(self.args.categories), source.categories)
        every: list[str | None] = list(source.categories) if source.walk_categories else [None]
        self.categories: list[str | None] = list(self.args.categories) or every
        self.details = source.detail is not None
        # Identities listed in this run: each is archived or fetched once per run.
        self._listed: set[Identity] = set()
        # Walked categories whose first page listed nothing, by language.
        self._empty: dict[str, set[str]] = {}

    def new_round(self) -> None:
        super().new_round()
        self._listed.clear()
        self._empty.clear()

    @classmethod
    def parse_snapshot(cls, raw: RawResponse) -> list[Record]:
        """Records from a stored answer (`annals reparse`), in the language its URL says
        (Source.language_of: the first one where a header chose it)."""
        source = cls.facts
        language = source.language_of(raw.url)
        if source.is_detail(raw.url):
            return [source.parse_detail(raw.body, raw.url, language)]
        page = source.parse_list(raw.body, raw.url, language)
        if page.unusable:  # still not all of it: it stays in quarantine
            raise ParseError(raw.url, unusable_reason(page.unusable))
        return [] if source.detail else page.records

    async def start(self) -> AsyncIterator[Any]:
        named = [c for c in self.categories if c]
        logger.info(
            "%s: %s mode, languages %s, %s%s",
            self.name,
            "full" if self.full else "incremental",
            ",".join(self.languages),
            f"categories {','.join(named)}" if named else "every category",
            ", a detail request per new article" if self.details else "",
        )
        for language in self.languages:
            for category in self.categories:
                yield self.list_request(Listing(language, category), 1, {})

    # --- listings ---------------------------------------------------------------------------

    def list_request(self, listing: Listing, page: int, window: dict[str, int]) -> scrapy.Request:
        url = self.facts.list_url(
            page,
            category=listing.category,
            language=listing.language,
            size=self.page_size,
            **window,
        )
        return self.request(
            url,
            self.parse_list,
            headers=self.facts.headers(listing.language),
            cb_kwargs={"listing": listing, "page": page, "window": window},
            errback=self.fetch_failed,
            # The navigator never asks twice on purpose, and some sources pick the
            # language by header, so one URL may rightly be asked once per language.
            dont_filter=True,
            meta={"handle_httpstatus_list": sorted(self.facts.answer_statuses)},
        )

    async def parse_list(
        self, response: Response, listing: Listing, page: int, window: dict[str, int]
    ) -> AsyncIterator[Any]:
        url = self.real_url(response)
        try:
            result = self.facts.parse_list(response.body, url, listing.language)
        except (EnvelopeError, ParseError) as exc:
            async for item in self.refused(response, exc):
                yield item
            return  # a refused page says nothing about the pages after it
        for quarantined in self.unusable(response, result.unusable):
            yield quarantined
        if not result.unusable and not result.records and page == 1 and not window:
            if self.facts.walk_categories and listing.category is not None:
                # One of several lists (a module with no notice in it yet) may be empty,
                # not all of them; the source's `items` refuses an empty page its own
                # counts contradict.
                empty = self._empty.setdefault(listing.language, set())
                empty.add(listing.category)
                if empty != {c for c in self.categories if c}:
                    logger.info("%s %s: nothing listed", self.name, listing)
                    return
                yield self.empty_first_page(response, "every category answered no items")
                return
            yield self.empty_first_page(response)
            return
        records = result.records
        found, unseen, new = self.listed(records, self.raw(response))
        logger.info(
            "%s %s, page %s: %d items, %d not yet in this run, %d new",
            self.name,
            listing,
            window or page,
            len(records),
            unseen,
            new,
        )
        following = self.next_page(result, listing, page, window)
        reached = self.reached(records)
        if following is not None and not self.keep_paging(new, unseen, reached):
            following = None
        for output in self.paged(following, found):
            yield output

    def listed(self, records: list[Record], raw: RawResponse) -> tuple[list[Any], int, int]:
        """What a list page's records give (their detail requests, or the records as
        archived), and how many were not yet listed in this run and how many are new."""
        known = self.known([r.identity for r in records])
        found: list[Any] = []
        unseen = new = 0
        for record in records:
            key = record.identity
            if key in self._listed:
                continue  # on an earlier page or in another category of this run
            self._listed.add(key)
            unseen += 1
            new += key not in known
            if self.facts.walk_categories:
                kept_category(record, known.get(key), self.facts)
            if self.details:
                changed = self.changed(record, known.get(key))
                if self.wants(key, known.get(key), record.title, changed):
                    found.append(self.detail_request(record, known.get(key)))
                continue
            found.append(self.archived(record, raw))
        return found, unseen, new

    def reached(self, records: list[Record]) -> datetime | None:
        """How far back a page reaches: its last item, as the list is newest first (an
        old announcement pinned on top would end a repair walk early if its date counted);
        by when it last changed where the list is ordered so (`Source.changed_key`: an
        edited old notice listed among this week's is not a week old)."""
        if not records:
            return None
        last = records[-1]
        key = self.facts.changed_key
        changed = time_or_none(last.extra.get(key)) if key else None
        return changed or last.published_at

    def changed(self, record: Record, known: Known | None) -> bool | None:
        """Whether the listing says a known item changed since it was archived (its
        `Source.changed_key` value differs); None where the source's list does not say."""
        key = self.facts.changed_key
        if known is not None and known.extra.get("push_incomplete"):
            return True  # pushed without its body, and its detail never came
        if key is None or known is None or record.extra.get(key) is None:
            return None
        return record.extra[key] != known.extra.get(key)

    def next_page(
        self, result: ListPage, listing: Listing, page: int, window: dict[str, int]
    ) -> scrapy.Request | None:
        if not result.records:
            return None
        if isinstance(self.facts.paging, TimeWindows):
            following = self.facts.paging.next_window(result, window)
            return None if following is None else self.list_request(listing, 1, following)
        return self.list_request(listing, page + 1, {}) if result.has_more else None

    # --- details (sources whose list has no body) -------------------------------------------

    def detail_request(self, listed: Record, known: Known | None) -> scrapy.Request:
        return self.request(
            self.facts.detail_url(listed.external_id, listed.language),
            self.parse_detail,
            headers=self.facts.headers(listed.language),
            cb_kwargs={"listed": listed, "known": known},
            errback=self.fetch_failed,
            dont_filter=True,  # one URL for every language (the header picks it)
            meta={"handle_httpstatus_list": list(MISSING)},
        )

    async def parse_detail(
        self, response: Response, listed: Record, known: Known | None
    ) -> AsyncIterator[Any]:
        # The detail of a notice archived from a push without its body completes it
        # (crawler.push.UpbitPush): asked right after the push, or by a later poll.
        completes = response.meta.get("annals_completes_push") or self.completes_push(known)
        if response.status in MISSING:
            # A push's detail not served yet: the push record stays, a poll asks again.
            stand_in = None if response.meta.get("annals_completes_push") else listed
            stand_in = listing_only(stand_in) if stand_in else None
            for missing in self.missing(response, listed.identity, known, stand_in):
                yield missing
            return
        raw = self.raw(response)
        try:
            record = self.facts.parse_detail(response.body, raw.url, listed.language, listed)
        except (EnvelopeError, ParseError) as exc:
            async for item in self.refused(response, exc):
                yield item
            return
        if completes:
            record.extra["completes_push"] = True
        yield self.archived(record, raw)

    def completes_push(self, known: Known | None) -> bool:
        """Whether the detail completes the archived version (the source's push left
        something out): Upbit's notice pushed without its body (extra.push_incomplete)."""
        return bool(known and known.extra.get("push_incomplete"))

    def completion(self, pushed: Record) -> scrapy.Request:
        """`annals watch` (crawler.push): the detail request that completes a record
        archived from a push; its record is marked extra.completes_push (parse_detail).
        A round in progress does not fetch it again (mark_seen)."""
        self.mark_seen(pushed.identity)
        request = self.detail_request(pushed, None)
        return request.replace(meta={**request.meta, "annals_completes_push": True})

    # --- failures ---------------------------------------------------------------------------

    async def refused(
        self, response: Response, exc: EnvelopeError | ParseError
    ) -> AsyncIterator[scrapy.Request | Quarantined]:
        """An answer the source's parser refused: a failure envelope (envelope_failed), or
        one that does not parse, quarantined."""
        if isinstance(exc, EnvelopeError):
            async for item in self.envelope_failed(response, exc):
                yield item
        else:
            yield self.quarantine(response, exc.reason)

    async def envelope_failed(
        self, response: Response, exc: EnvelopeError
    ) -> AsyncIterator[scrapy.Request | Quarantined]:
        """A failure envelope: retried later when it means "slow down", else refused."""
        if not exc.rate_limited:
            self.count("refused")
            yield self.quarantine(response, str(exc))
            return
        request = response.request
        assert request is not None
        attempt = int(request.meta.get(RETRIES, 0))
        self.count("blocked/rate_limit_code")
        backoff = host_backoff(self.crawler)
        retry = backoff.retry(request, RETRIES)
        if retry is None:
            logger.warning(
                "%s after %d retries: not archived, and this listing stops here", exc, attempt
            )
            return
        # "Slow down" is about the host: the same pause as BlockMiddleware's blocks.
        backoff.pause(request, backoff.wait("rate_limit_code", {}, attempt), str(exc))
        yield retry


def kept_category(record: Record, known: Known | None, source: Source) -> None:
    """An announcement listed under several of a walked source's categories keeps the
    one it was first archived from: which list a run meets it in first must not make a
    new version (nor turn it back and forth)."""
    if known is None or not known.category or known.category == normalize_text(record.category):
        return
    kept = next((c for c in source.categories.values() if known.category in (c.key, c.name)), None)
    record.category = known.category
    record.event_type = kept.event_type if kept else None


def _listed(values: Any) -> str:
    return ", ".join(map(str, values)) or "none"


def _check_known(spider: str, what: str, given: list[str], known: dict[str, Any]) -> None:
    unknown = [value for value in given if value not in known]
    if unknown:
        raise ArgumentError(
            f"{spider} has no {what} {', '.join(unknown)}; it knows {', '.join(known)}"
        )


# --- the spiders ----------------------------------------------------------------------------


class BinanceAnnouncementsSpider(ApiAnnouncementsSpider):
    """Binance announcements: catalog lists, then each new article's full body (detail).

    `annals watch` with keys (crawler.push.BinancePush): a pushed announcement has no
    article code; `push_lookup` is the list request its code is looked up in, and
    `completion` (the navigator's) the detail request that completes the record archived
    from the push."""

    facts = binance.SOURCE

    @classmethod
    def parse_snapshot(cls, raw: RawResponse) -> list[Record]:
        """A stored answer; a pushed message (its WebSocket URL) names no article code, so
        alone it gives no record: a push never found in the list stays in quarantine (the
        next poll archives the announcement from the list)."""
        if raw.url == binance.PUSH_URL:
            pushed = binance.parse_push(raw.body, raw.url)
            if pushed is None:
                return []
            raise ParseError(
                raw.url, f"a pushed announcement names no article code: {pushed.title}"
            )
        return super().parse_snapshot(raw)

    def push_lookup(self, language: str, catalog_id: Any) -> scrapy.Request | None:
        """The first list page a pushed announcement of `catalog_id` is looked for in: the
        unfiltered list, or its catalog's where the spider reads named categories (None
        when it reads others: the push is not this watch's)."""
        named = [c for c in self.categories if c]
        if not named:
            return self.list_request(Listing(language, None), 1, {})
        if str(catalog_id) not in named:
            return None
        return self.list_request(Listing(language, str(catalog_id)), 1, {})

    def completes_push(self, known: Known | None) -> bool:
        """A detail completes any version archived from a push (its body is the push's,
        the detail's the article's), asked right after it or by a later poll."""
        return bool(known and known.extra.get("pushed"))


class OkxAnnouncementsSpider(ApiAnnouncementsSpider):
    """OKX announcements (official API): title, URL, first and shown publication times."""

    facts = okx.SOURCE


class BybitAnnouncementsSpider(ApiAnnouncementsSpider):
    """Bybit announcements (official V5 API): title, description, type, tags, times."""

    facts = bybit.SOURCE


class BitgetAnnouncementsSpider(ApiAnnouncementsSpider):
    """Bitget announcements (official V2 API, about one month back), by time windows."""

    facts = bitget.SOURCE


class KucoinAnnouncementsSpider(ApiAnnouncementsSpider):
    """KuCoin announcements (official V3 API): title, description, types, time."""

    facts = kucoin.SOURCE


class XtAnnouncementsSpider(ApiAnnouncementsSpider):
    """XT.com announcements (its Zendesk help center's API): title, HTML body, labels."""

    facts = xt.SOURCE


class DeepcoinAnnouncementsSpider(ApiAnnouncementsSpider):
    """Deepcoin announcements (its Zendesk help center's API): title, HTML body, labels."""

    facts = deepcoin.SOURCE


class MexcAnnouncementsSpider(ApiAnnouncementsSpider):
    """MEXC announcements (help-centre JSON): the whole list, then each new article's body."""

    facts = mexc.SOURCE


class KrakenAnnouncementsSpider(ApiAnnouncementsSpider):
    """Kraken announcements (the blog's WordPress REST API): every post, full body, by page."""

    facts = kraken.SOURCE


class HtxAnnouncementsSpider(ApiAnnouncementsSpider):
    """HTX announcements (support-centre list): title, time and trading pair, per list."""

    facts = htx.SOURCE


class BingxAnnouncementsSpider(ApiAnnouncementsSpider):
    """BingX announcements (official content API): title, content, time, per module."""

    facts = bingx.SOURCE


class BitfinexAnnouncementsSpider(ApiAnnouncementsSpider):
    """Bitfinex posts (the public v2 posts feed): title, HTML body, time, by an end cursor."""

    facts = bitfinex.SOURCE


class DeribitAnnouncementsSpider(ApiAnnouncementsSpider):
    """Deribit announcements (official JSON-RPC API): title, HTML body, time, by an end cursor."""

    facts = deribit.SOURCE

    @classmethod
    def parse_snapshot(cls, raw: RawResponse) -> list[Record]:
        """A stored answer, or a pushed message (`annals watch`: its WebSocket URL)."""
        if raw.url == deribit.PUSH_URL:
            record = deribit.parse_push(raw.body, raw.url)
            return [record] if record is not None else []
        return super().parse_snapshot(raw)


class BithumbAnnouncementsSpider(ApiAnnouncementsSpider):
    """Bithumb notices (official API, Korean): the newest 20 titles, categories and times.

    History builds up crawl by crawl; redirects and empty answers are blocks."""

    facts = bithumb.SOURCE


class CryptocomAnnouncementsSpider(ApiAnnouncementsSpider):
    """Crypto.com Exchange announcements (official API v1): the whole list, HTML bodies.

    One answer holds every announcement; categories, products and event windows too."""

    facts = cryptocom.SOURCE


class UpbitAnnouncementsSpider(ApiAnnouncementsSpider):
    """Upbit notices (web notice API, Korean): the list, then new or edited ones' bodies."""

    facts = upbit.SOURCE

    @classmethod
    def parse_snapshot(cls, raw: RawResponse) -> list[Record]:
        """A stored answer, or a pushed message (`annals watch`: its WebSocket URL)."""
        if raw.url == upbit.PUSH_URL:
            record = upbit.parse_push(raw.body, raw.url)
            return [record] if record is not None else []
        return super().parse_snapshot(raw)
