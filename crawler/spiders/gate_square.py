"""Gate Square's spider: the feed, topic pages and posts.

It only navigates; parsing is in crawler.sources.gate_square. A post is archived from
its own page; when that page answers 404/410, its feed block stands in
(AnnalsSpider.missing, crawler.sources.gate_square.feed_record).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from scrapy.http import Response

from archive.normalize import utcnow
from archive.records import Identity, ParseError, RawResponse, Record
from archive.store import Known
from crawler.sources import gate_square
from crawler.sources.parsing import unusable_reason
from crawler.spiders.arguments import Arguments, argument
from crawler.spiders.base import MISSING, AnnalsSpider


@dataclass(frozen=True)
class SquareArguments(Arguments):
    topics: tuple[str, ...] = argument((), "topic pages to read (hashtags, comma-separated)")
    posts: tuple[str, ...] = argument((), "post ids to fetch, comma-separated")
    feed: bool | None = argument(None, "read the feed (default: when no topics or posts)")


class GateSquareSpider(AnnalsSpider):
    """Gate Square posts: the feed, topic pages (-a topics=A,B) and posts (-a posts=1,2).

    A post is archived from its own page. When that page cannot be had, a feed block
    that is not cut short stands in, with its relative time resolved against the fetch
    time and extra.from_feed = true.
    """

    facts = gate_square.SOURCE
    Args = SquareArguments
    args: SquareArguments

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.topics = list(self.args.topics)
        self.posts = list(self.args.posts)
        feed = self.args.feed
        self.feed = feed if feed is not None else not (self.topics or self.posts)
        self._scheduled: set[str] = set()

    def new_round(self) -> None:
        super().new_round()
        self._scheduled.clear()

    async def start(self) -> AsyncIterator[Any]:
        for topic in ([None] if self.feed else []) + self.topics:
            yield self.request(
                gate_square.feed_url(topic), self.parse_feed, errback=self.fetch_failed
            )
        for post_id in self.posts:
            self._scheduled.add(post_id)
            yield self.post(Identity(self.source, "post", post_id, "en"), None, None)

    @classmethod
    def parse_snapshot(cls, raw: RawResponse) -> list[Record]:
        when = raw.fetched_at or utcnow()
        if gate_square.post_ref(raw.url):
            return [gate_square.parse_post(raw.body, raw.url, fetched_at=when)]
        feed = gate_square.parse_feed(raw.body, raw.url, fetched_at=when)
        if feed.unusable:  # still not all of it: it stays in quarantine
            raise ParseError(raw.url, unusable_reason(feed.unusable))
        return []

    def post(self, key: Identity, entry: gate_square.FeedEntry | None, known: Known | None) -> Any:
        return self.request(
            gate_square.canonical_post_url(key.external_id),
            self.parse_post,
            cb_kwargs={"key": key, "entry": entry, "known": known},
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
        yield from self.unusable(response, feed.unusable)  # the page's other posts still count
        entries = feed.entries
        keys = [Identity(self.source, "post", e.post_id, e.language) for e in entries]
        known = self.known(keys)
        for key, entry in zip(keys, entries, strict=True):
            if entry.post_id in self._scheduled or not self.wants(key, known.get(key)):
                continue
            self._scheduled.add(entry.post_id)
            yield self.post(key, entry, known.get(key))

    def parse_post(
        self,
        response: Response,
        key: Identity,
        entry: gate_square.FeedEntry | None,
        known: Known | None,
    ) -> Iterator[Any]:
        if response.status not in MISSING:
            yield from self.parsed(response, gate_square.parse_post, fetched_at=utcnow())
            return
        stand_in = gate_square.feed_record(entry) if entry else None
        yield from self.missing(response, key, known, stand_in)
