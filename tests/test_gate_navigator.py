"""The Gate spiders' decisions, in-process: their callbacks are fed the recorded pages
(tests/fixtures/gate, answered by a Mirror without a server) on a real SQLite archive.
What a callback yields is what Scrapy would fetch next or archive."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import scrapy

from archive.db import open_archive, resolve_url
from archive.normalize import utcnow
from archive.records import Quarantined, Record, Removed
from archive.store import Store
from crawler.mirror import Mirror, Route
from crawler.sources import gate, gate_square
from crawler.spiders.base import AnnalsSpider, listing_only
from crawler.spiders.gate import GateAnnouncementsSpider
from crawler.spiders.gate_square import GateSquareSpider
from tests.helpers import drain, mirror_answer, output, requests, spider_on

FIXTURES = Path(__file__).parent / "fixtures" / "gate"
HUB = gate.SOURCE.origin + "/announcements"
MISSING_ARTICLE = "51246"  # listed on the hub; the recordings have no page for it
HUB_ITEMS = {
    item.external_id: item
    for item in gate.parse_listing_page((FIXTURES / "announcements.html").read_bytes(), HUB).items
}


@pytest.fixture
def mirror() -> Mirror:
    return Mirror(FIXTURES)


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[tuple[Path, Store]]:
    db = tmp_path / "annals.db"
    engine = open_archive(resolve_url(str(db)), create=True)
    yield db, Store(engine)
    engine.dispose()


@pytest.fixture
def spider_for(archive: tuple[Path, Store]) -> Iterator[Callable[..., Any]]:
    """Makes spiders on the test's archive (`-a` arguments as keywords)."""
    made: list[AnnalsSpider] = []

    def make(spidercls: type[AnnalsSpider], **arguments: str) -> Any:
        spider = spider_on(spidercls, archive[0], **arguments)
        made.append(spider)
        return spider

    yield make
    for spider in made:
        spider.run.close()


def counter(spider: AnnalsSpider, name: str) -> int:
    assert spider.crawler.stats is not None
    return int(spider.crawler.stats.get_value(f"annals/{name}", 0))


def hub_results(spider: GateAnnouncementsSpider, mirror: Mirror) -> list[Any]:
    request = next(r for r in drain(spider.start()) if r.url == HUB)
    return output(request, mirror_answer(mirror, request))


def article_ids(results: list[Any]) -> set[str]:
    return {
        r.cb_kwargs["key"].external_id
        for r in requests(results)
        if r.callback is not None and r.callback.__name__ == "parse_article"
    }


def fetch_article(spider: GateAnnouncementsSpider, mirror: Mirror, external_id: str) -> list[Any]:
    """What the spider makes of one article the hub lists, through the hub's request."""
    [request] = [
        r for r in requests(hub_results(spider, mirror))
        if r.cb_kwargs.get("key") and r.cb_kwargs["key"].external_id == external_id
    ]  # fmt: skip
    return output(request, mirror_answer(mirror, request))


# --- listings and articles -------------------------------------------------------------


def test_a_listing_schedules_the_articles_the_archive_lacks(archive, spider_for, mirror):
    archive[1].write([gate.listed_record(HUB_ITEMS["51322"])])
    spider = spider_for(GateAnnouncementsSpider)
    assert article_ids(hub_results(spider, mirror)) == set(HUB_ITEMS) - {"51322"}


@pytest.mark.parametrize(
    ("archived", "arguments", "fetched"),
    [
        ({}, {}, False),  # older than the recheck window, the listing shows the same title
        ({"published_at": utcnow() - timedelta(days=1)}, {}, True),  # still young
        ({"title": "Gate Will List Something Else"}, {}, True),  # the listing renamed it
        ({}, {"full": "1"}, True),
    ],
    ids=["old-and-unchanged", "young", "retitled", "full"],
)
def test_a_known_article_is_fetched_again_only_when_due(
    archive, spider_for, mirror, archived, arguments, fetched
):
    archive[1].write([dataclasses.replace(gate.listed_record(HUB_ITEMS["51322"]), **archived)])
    spider = spider_for(GateAnnouncementsSpider, **arguments)
    assert ("51322" in article_ids(hub_results(spider, mirror))) is fetched


def test_an_article_page_is_archived_whole_from_its_listing(spider_for, mirror):
    spider = spider_for(GateAnnouncementsSpider)
    [record] = fetch_article(spider, mirror, "51322")
    assert isinstance(record, Record)
    assert (record.external_id, record.title) == ("51322", HUB_ITEMS["51322"].title)
    assert "listing_only" not in record.extra
    assert record.raw is not None
    assert record.raw.url == gate.canonical_article_url("51322")


def test_a_new_article_answering_404_is_kept_with_what_the_listing_says(spider_for, mirror):
    spider = spider_for(GateAnnouncementsSpider)
    [record] = fetch_article(spider, mirror, MISSING_ARTICLE)
    item = HUB_ITEMS[MISSING_ARTICLE]
    assert isinstance(record, Record)
    assert (record.title, record.published_at) == (item.title, item.published_at)
    assert record.body_text == item.brief
    assert record.extra["listing_only"] == "not_found"
    assert record.raw is not None
    assert record.raw.url == HUB  # the listing's bytes
    assert (counter(spider, "not_found"), counter(spider, "listing_only")) == (1, 1)


def test_an_article_archived_whole_that_answers_404_is_marked_removed(archive, spider_for, mirror):
    archive[1].write([gate.listed_record(HUB_ITEMS[MISSING_ARTICLE])])
    spider = spider_for(GateAnnouncementsSpider, full="1")
    [removed] = fetch_article(spider, mirror, MISSING_ARTICLE)
    assert isinstance(removed, Removed)
    assert removed.identity.external_id == MISSING_ARTICLE
    assert (counter(spider, "not_found"), counter(spider, "listing_only")) == (0, 0)


def test_an_article_kept_from_its_listing_that_still_answers_404_is_left_as_it_is(
    archive, spider_for, mirror
):
    archive[1].write([listing_only(gate.listed_record(HUB_ITEMS[MISSING_ARTICLE]))])
    spider = spider_for(GateAnnouncementsSpider, full="1")
    assert fetch_article(spider, mirror, MISSING_ARTICLE) == []  # not removed, not re-dated
    assert (counter(spider, "not_found"), counter(spider, "listing_only")) == (1, 0)


# --- the list endpoint -----------------------------------------------------------------


def walk_list_endpoint(spider: GateAnnouncementsSpider, mirror: Mirror) -> list[list[Any]]:
    """What each page of the list endpoint yields, following its next-page requests."""
    [request] = [r for r in drain(spider.start()) if r.callback == spider.parse_list_api]
    pages: list[list[Any]] = []
    while request is not None:
        assert request.cb_kwargs["page"] == len(pages) + 1
        pages.append(output(request, mirror_answer(mirror, request)))
        following = [r for r in requests(pages[-1]) if r.callback == spider.parse_list_api]
        assert len(following) <= 1
        request = following[0] if following else None
    return pages


def test_the_list_endpoint_is_paged_until_a_page_past_the_end(spider_for, mirror):
    pages = walk_list_endpoint(spider_for(GateAnnouncementsSpider), mirror)
    assert [len(article_ids(page)) for page in pages] == [15, 15, 10, 0]
    assert pages[-1] == []  # the empty page past the end: no request, nothing quarantined


def test_the_next_page_of_the_list_endpoint_is_asked_for_before_the_pages_articles(
    spider_for, mirror
):
    # Scrapy hands requests to the downloader in the order a callback yields them: with the
    # next page first, its articles are scheduled while this page's are still parsed.
    pages = walk_list_endpoint(spider_for(GateAnnouncementsSpider), mirror)
    for page in pages[:-2]:  # every page that has a page after it
        [first, *articles] = requests(page)
        assert first.callback.__name__ == "parse_list_api"
        assert articles
        assert all(r.callback.__name__ == "parse_article" for r in articles)
        assert all(first.priority > r.priority for r in articles)  # queued, still first


def test_the_list_endpoint_stops_at_a_page_that_brings_nothing_new(archive, spider_for, mirror):
    body = (FIXTURES / "list_article_p1.json").read_bytes()
    first = gate.parse_list_api(body, gate.SOURCE.origin + gate.SOURCE.list_path).items
    archive[1].write([gate.listed_record(item) for item in first])
    pages = walk_list_endpoint(spider_for(GateAnnouncementsSpider), mirror)
    assert pages == [[]]  # page 1 all known (and not due): no article, no page 2


def test_an_old_pinned_item_on_top_does_not_end_a_repair_walk_of_the_list_endpoint(
    archive, spider_for, mirror
):
    page = json.loads((FIXTURES / "list_article_p1.json").read_bytes())
    items = page["data"]["list"]
    last = datetime.fromtimestamp(int(items[-1]["release_timestamp"]), UTC)
    # The last complete crawl started a day before the page's last item; an announcement
    # from a month before that is pinned on top of the newest ones.
    resume = last - timedelta(days=1)
    pinned = int((resume - timedelta(days=30)).timestamp())
    items[0]["release_timestamp"], items[0]["created_t"] = str(pinned), pinned
    body = json.dumps(page).encode()
    mirror.prepend(
        Route("POST", gate.SOURCE.list_path, content=body,
              headers={"Content-Type": "application/json"})
    )  # fmt: skip
    store = archive[1]
    listed = gate.parse_list_api(body, gate.SOURCE.origin + gate.SOURCE.list_path).items
    store.write([gate.listed_record(item) for item in listed])  # page 1 all known
    done = store.start_run(GateAnnouncementsSpider.name, started_at=resume)
    store.finish_run(done, "finished", {})
    broken = store.start_run(GateAnnouncementsSpider.name)
    store.finish_run(broken, "failed", {})
    spider = spider_for(GateAnnouncementsSpider)
    spider.run.start(spider.name)

    pages = walk_list_endpoint(spider, mirror)

    # Page 1 reaches back to its last item, newer than the resume point: page 2 is asked
    # (it repeats page 1 here, brings nothing unseen, and ends the walk).
    assert len(pages) == 2


def test_an_empty_first_page_of_the_list_endpoint_is_quarantined(spider_for, mirror):
    empty = {"code": 0, "message": "success", "data": {"total": 0, "list": []}}
    mirror.prepend(
        Route("POST", gate.SOURCE.list_path, content=json.dumps(empty).encode(),
              headers={"Content-Type": "application/json"})
    )  # fmt: skip
    [[quarantined]] = walk_list_endpoint(spider_for(GateAnnouncementsSpider), mirror)
    assert isinstance(quarantined, Quarantined)
    assert quarantined.error == "list endpoint answered no items on page 1"


# --- Square ----------------------------------------------------------------------------


def square_posts(spider: GateSquareSpider, mirror: Mirror) -> dict[str, scrapy.Request]:
    [feed] = drain(spider.start())
    return {
        r.cb_kwargs["key"].external_id: r
        for r in requests(output(feed, mirror_answer(mirror, feed)))
    }


def test_the_square_feed_schedules_its_posts_and_each_is_archived_from_its_page(spider_for, mirror):
    spider = spider_for(GateSquareSpider)
    posts = square_posts(spider, mirror)
    feed = gate_square.parse_feed(
        (FIXTURES / "square_feed.html").read_bytes(), gate.SOURCE.origin + "/post",
        fetched_at=utcnow(),
    )  # fmt: skip
    assert list(posts) == [entry.post_id for entry in feed.entries]
    [record] = output(posts["21716532"], mirror_answer(mirror, posts["21716532"]))
    assert isinstance(record, Record)
    assert (record.kind, record.external_id) == ("post", "21716532")
    assert "from_feed" not in record.extra


def test_a_post_answering_404_is_kept_from_its_feed_block_unless_the_block_is_cut(
    spider_for, mirror
):
    spider = spider_for(GateSquareSpider)
    posts = square_posts(spider, mirror)
    mirror.prepend(Route("GET", "/post/status/21716532", status=404))  # its block is cut short
    [record] = output(posts["21716702"], mirror_answer(mirror, posts["21716702"]))
    assert isinstance(record, Record)
    assert record.extra["from_feed"] is True
    assert record.extra["relative_time"]
    assert output(posts["21716532"], mirror_answer(mirror, posts["21716532"])) == []
    assert (counter(spider, "not_found"), counter(spider, "listing_only")) == (2, 1)
