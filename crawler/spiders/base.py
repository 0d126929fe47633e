"""What every annals spider shares: arguments, the base_url mirror switch, raw snapshots,
quarantine of parse failures and of unusable items, the incremental "fetch this again?"
rule, and what an item whose page answers 404/410 becomes."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

import scrapy
from scrapy.exceptions import DownloadCancelledError, DownloadTimeoutError, IgnoreRequest
from scrapy.http import Response
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet.error import TimeoutError as ConnectTimeout
from twisted.python.failure import Failure

from archive.normalize import normalize_text, utcnow
from archive.records import Identity, ParseError, Quarantined, RawResponse, Record, Removed
from archive.store import Known
from crawler.context import RunContext, run_context
from crawler.middlewares import Blocked
from crawler.redirects import RedirectLoop
from crawler.sources.contract import Facts
from crawler.sources.parsing import Unusable, unusable_reason
from crawler.spiders.arguments import ArgumentError, Arguments, split_private
from crawler.stopping import Stopped

logger = logging.getLogger(__name__)

# The priority of a listing's next page over the articles its pages schedule (AnnalsSpider.paged).
LISTING_PRIORITY = 1

# An item's page that answers these is not there (any more): see AnnalsSpider.missing.
# Its requests take them (meta handle_httpstatus_list) instead of failing on them.
MISSING = (404, 410)


def listing_only(record: Record, listing: RawResponse | None = None) -> Record:
    """`record`, what a listing says of an item whose own page answered 404/410, marked
    extra.listing_only = "not_found" (a research query can leave such rows out), with
    the listing's bytes when it has them."""
    record.extra["listing_only"] = "not_found"
    if listing is not None:
        record.raw, record.seen_at = listing, listing.fetched_at
    return record


def stood_in(known: Known) -> bool:
    """Archived from a listing or a feed only, never from the item's own page."""
    return bool(known.extra.get("listing_only") or known.extra.get("from_feed"))


class AnnalsSpider(scrapy.Spider):
    """Base of the annals spiders. Every spider's arguments (`-a NAME=VALUE`) are a
    dataclass, `Args` (crawler.spiders.arguments), read and checked when the spider is
    made; those all take:

    - base_url: send every request meant for the source's hosts to this origin
      (a local mirror), path and query unchanged; stored URLs stay canonical;
    - full=1: walk every listing page and fetch every item again, instead of
      stopping at the first page that brings nothing new;
    - lang=en,zh: the languages to crawl, where the source has several.
    """

    Args: ClassVar[type[Arguments]] = Arguments
    args: Arguments
    # The source's facts (crawler.sources.contract): a spider that sets them takes its
    # name, source, hosts and block waits from them.
    facts: ClassVar[Facts]
    source: str = ""
    hosts: tuple[str, ...] = ()
    default_languages: tuple[str, ...] = ("en",)
    # Least wait in seconds before retrying a block of a kind (crawler.blocks.classify).
    block_waits: dict[str, float] = {}  # noqa: RUF012 - read-only class default
    # Answers that are blocks for this source besides crawler.blocks' own (Facts).
    throttle_signs: frozenset[str] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        facts: Facts | None = cls.__dict__.get("facts")
        if facts is not None:
            cls.name = facts.spider
            cls.source = facts.source
            cls.hosts = facts.hosts
            cls.block_waits = dict(facts.block_waits)
            cls.throttle_signs = frozenset(facts.throttle_signs)

    def __init__(self, name: str | None = None, **kwargs: Any) -> None:
        given, scrapyd = split_private(kwargs)
        super().__init__(name, **scrapyd)
        self.args = self.Args.parse(self.name, given)
        base_url = self.args.base_url
        self.base_url = base_url.rstrip("/") if base_url else None
        if self.base_url and not urlsplit(self.base_url).netloc:
            raise ArgumentError(
                f"base_url must be an origin such as http://127.0.0.1:8000, not {base_url!r}"
            )
        self.full = self.args.full
        self.languages = list(self.args.lang) or list(self.default_languages)
        domains = {h.removeprefix("www.") for h in self.hosts}
        if self.base_url:
            domains.add(urlsplit(self.base_url).hostname or "")
        # Requests to any other host are dropped (Scrapy's OffsiteMiddleware).
        self.allowed_domains = sorted(domains)
        self._seen: set[Identity] = set()

    @classmethod
    def describe_arguments(cls) -> list[tuple[str, str, str]]:
        """(name, form, help) of each argument, for `annals crawl --list`."""
        languages = ",".join(cls.default_languages)
        return [
            (name, form, f"{text} (default {languages})" if name == "lang" else text)
            for name, form, text in cls.Args.describe()
        ]

    @classmethod
    def parse_snapshot(cls, raw: RawResponse) -> list[Record]:
        """The records a stored response gives, without fetching (`annals reparse`).

        A listing gives none (what it lists must be fetched); a page that still does not
        parse raises ParseError. Spiders that can reparse override this.
        """
        raise NotImplementedError(f"{cls.name} cannot reparse stored responses")

    # --- the archive ------------------------------------------------------------------------

    @property
    def run(self) -> RunContext:
        return run_context(self.crawler)

    def known(self, keys: list[Identity]) -> dict[Identity, Known]:
        return self.run.known(keys)

    def wants(
        self,
        key: Identity,
        known: Known | None,
        listed_title: str | None = None,
        changed: bool | None = None,
    ) -> bool:
        """Fetch this item's page? New: yes. Known: with full=1, while it is younger than
        the recheck window, or when the listing shows another title than the archive.
        `changed`: what a listing that dates each item's last change says (Upbit's
        listed_at), which then stands for the recheck window; None where it says nothing."""
        if key in self._seen:
            return False
        if known is None or self.full or known.extra.get("listing_only"):
            return known is None or self.full or self.run.recheck_due(known)
        due = self.run.recheck_due(known) if changed is None else changed
        if due:
            return True
        title = normalize_text(listed_title) if listed_title else None
        return bool(title and known.title and not _cut(title) and title != known.title)

    def new_round(self) -> None:
        """`annals watch` polls again (crawler.watch): forget what this round saw, so the
        next round reads its listings as a new run would."""
        self._seen.clear()

    def mark_seen(self, key: Identity) -> None:
        self._seen.add(key)

    def keep_paging(self, new: int, unseen: int, oldest: datetime | None) -> bool:
        """Ask for the next page of a listing? The one rule of every spider's navigator.

        Yes while a page brings something the archive lacks; with full=1, while it brings
        anything not yet seen in this run; and while repairing: after a crawl that did not
        walk its listings to the end (killed, failed, interrupted), the listings are walked
        back to the start of the last complete crawl (RunContext.resume_after), known items
        or not, so what the broken crawl never reached is found. A page that brings nothing
        unseen in this run ends the listing in every mode (a source repeating its pages)."""
        if new:
            return True
        if not unseen:
            return False
        return self.full or self.run.repairing(oldest)

    def paged(self, following: scrapy.Request | None, found: list[Any]) -> Iterator[Any]:
        """A list page's output: `found` (its articles or details to fetch, its records) and
        `following`, the request for the listing's next page (None: the listing ends here),
        in the order that has the next page fetched first. The page is then on its way
        while `found` is fetched and parsed, and its own articles are scheduled before
        this page's are all parsed: with the page last, a crawl went in bursts, its
        downloads waiting for the parse a quarter of the time.

        Scrapy's scheduler hands a request to the downloader as it comes when there is room,
        and, queued, the one of higher priority first (LISTING_PRIORITY): the page is
        yielded first. The shared frontier's Redis queue (crawler.frontier) is a stack that
        knows no priority: there the page is yielded last, so it is the first taken."""
        if following is None:
            yield from found
            return
        following.priority = LISTING_PRIORITY
        if self.run.frontier is None:
            yield following
            yield from found
        else:
            yield from found
            yield following

    # --- requests and responses -------------------------------------------------------------

    def fetch_url(self, url: str) -> str:
        """The URL to download: the source's own, or the mirror's when base_url is set."""
        if not self.base_url:
            return url
        parts = urlsplit(url)
        if parts.hostname not in self.hosts:
            return url
        base = urlsplit(self.base_url)
        return urlunsplit((base.scheme, base.netloc, parts.path or "/", parts.query, ""))

    def request(self, url: str, callback: Callable[..., Any], **kwargs: Any) -> scrapy.Request:
        meta = {**kwargs.pop("meta", {}), "annals_url": url}
        if "redirect" in self.throttle_signs:  # a block (BlockMiddleware), not a new URL
            meta["dont_redirect"] = True
        return scrapy.Request(self.fetch_url(url), callback=callback, meta=meta, **kwargs)

    def json_request(
        self, url: str, payload: dict[str, Any], callback: Callable[..., Any], **kwargs: Any
    ) -> scrapy.Request:
        meta = {**kwargs.pop("meta", {}), "annals_url": url}
        return scrapy.http.JsonRequest(
            self.fetch_url(url), data=payload, callback=callback, meta=meta, **kwargs
        )

    @staticmethod
    def real_url(response: Response) -> str:
        """The source's URL of this response (not the mirror's)."""
        return str(response.meta.get("annals_url") or response.url)

    def raw(self, response: Response) -> RawResponse:
        content_type = response.headers.get("Content-Type")
        return RawResponse(
            url=self.real_url(response),
            status=response.status,
            content_type=content_type.decode("latin-1") if content_type else None,
            body=response.body,
            fetched_at=utcnow(),
        )

    def parsed(
        self, response: Response, parse: Callable[..., Record], *args: Any, **kwargs: Any
    ) -> Iterator[Record | Quarantined]:
        """Run a parse function on a response: its record with the raw bytes attached, or,
        when it raises ParseError, a quarantine row with the error and the bytes."""
        raw = self.raw(response)
        try:
            record = parse(response.body, raw.url, *args, **kwargs)
        except ParseError as exc:
            logger.warning("could not parse %s: %s (kept in quarantine)", raw.url, exc.reason)
            yield Quarantined(raw.url, self.name, exc.reason, raw, raw.fetched_at)
            return
        yield self.archived(record, raw)

    def archived(self, record: Record, raw: RawResponse) -> Record:
        """`record` as it is archived from the answer `raw`: with its bytes, seen when they
        were fetched, and marked seen in this run."""
        record.raw = raw
        record.seen_at = raw.fetched_at
        self.mark_seen(record.identity)
        return record

    def fetch_failed(self, failure: Failure) -> None:
        """Errback: what could not be fetched is counted under its reason and said once,
        never archived (crawler.extensions.LOSSES and FAILURES name the counters).

        Blocks were counted by BlockMiddleware, redirect loops and too many redirects by
        crawler.redirects. Requests dropped on purpose (robots.txt, a response over
        DOWNLOAD_MAXSIZE) are a warning and a counter, and the run ends "partial". An
        unexpected HTTP status, a timeout or a refused connection is an error: the run
        fails rather than look complete, and the next run repairs.
        """
        request = getattr(failure, "request", None)
        url = str(request.meta.get("annals_url", request.url)) if request else "?"
        # Counted where they are raised: BlockMiddleware, the redirect loop check, StopMiddleware.
        if failure.check(Blocked, RedirectLoop, Stopped):
            return
        if isinstance(failure.value, HttpError):
            response = failure.value.response
            logger.error(
                "%s answered HTTP %d: not archived", url, response.status, extra={"spider": self}
            )
            self.count("fetch_errors")
            return
        if failure.check(DownloadCancelledError):
            logger.warning("dropped %s: %s", url, failure.getErrorMessage())
            self.count("refused")
            self.count("too_large")
            return
        if failure.check(IgnoreRequest):
            message = failure.getErrorMessage()
            if "max redirections" in message:
                return  # counted and said by crawler.redirects
            logger.warning("not fetched %s: %s", url, message)
            self.count("robots" if "robots.txt" in message.lower() else "ignored")
            return
        if failure.check(DownloadTimeoutError, ConnectTimeout):
            self.count("timeouts")
        logger.error(
            "could not fetch %s: %s", url, failure.getErrorMessage(), extra={"spider": self}
        )
        self.count("fetch_errors")

    def quarantine(self, response: Response, reason: str) -> Quarantined:
        """A response that could not be used, kept with its bytes for `annals reparse`."""
        raw = self.raw(response)
        logger.warning("could not use %s: %s (kept in quarantine)", raw.url, reason)
        return Quarantined(raw.url, self.name, reason, raw, raw.fetched_at)

    def unusable(self, response: Response, unusable: list[Unusable]) -> Iterator[Quarantined]:
        """Items of an answer that cannot become records are a loss: counted
        (unusable_items) and the answer quarantined, so the run ends "partial"; the
        answer's other items are still used."""
        if unusable:
            self.count("unusable_items", len(unusable))
            yield self.quarantine(response, unusable_reason(unusable))

    def empty_first_page(
        self, response: Response, reason: str = "list answered no items on its first page"
    ) -> Quarantined:
        """A listing whose first page has no items at all. An exchange's newest
        announcements are never an empty list: this is a broken answer, not a run that had
        nothing to do. It is quarantined (the run ends "partial"), the listing stops, and
        nothing is marked removed because of it. (An empty later page is the listing's end.)"""
        return self.quarantine(response, reason)

    def missing(
        self, response: Response, key: Identity, known: Known | None, stand_in: Record | None
    ) -> Iterator[Record | Removed]:
        """What an item whose own page answers 404/410 (MISSING) becomes.

        Archived whole before: it is marked removed (nothing is deleted). Otherwise it is
        counted as not_found and, when the archive has never had it, `stand_in` (what its
        listing or feed says, marked as such; None when that is not enough) is archived
        instead, counted as listing_only. Nothing is ever filled from the error page, and
        a stand-in archived once is not replaced by a later listing's: the item's page is
        asked again while it is young (`wants`)."""
        url = self.real_url(response)
        if known is not None and not stood_in(known):
            logger.info("%s answered %d: marked removed", url, response.status)
            yield Removed(key, stand_in.url if stand_in else url, utcnow())
            return
        self.count("not_found")
        if known is None and stand_in is not None:
            self.count("listing_only")
            self.mark_seen(key)
            yield stand_in

    def count(self, key: str, value: int = 1) -> None:
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value(f"annals/{key}", value)


def _cut(title: str) -> bool:
    return title.endswith(("...", "…"))
