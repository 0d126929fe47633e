"""The JSON navigator's decisions, in process: a real Scrapy crawler and a real archive,
its callbacks fed recorded answers (no download, no subprocess). Next page, the stop on
a page that brings nothing new, the repair walk past known items, Bitget's next window."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from archive.db import make_engine, open_archive
from archive.store import Store
from crawler.sources import bitget, kucoin
from crawler.spiders.api import BitgetAnnouncementsSpider, KucoinAnnouncementsSpider
from tests.helpers import FIXTURES, drain, feed, mirror_body, records, requests, spider_on

RECORDED = 10  # KuCoin's mirror pages were recorded at this size
KUCOIN = FIXTURES / "kucoin"
BITGET = FIXTURES / "bitget"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "annals.db"


def store_of(db: Path) -> Store:
    url = f"sqlite:///{db}"
    open_archive(url, create=True).dispose()
    return Store(make_engine(url))


def kucoin_spider(db: Path) -> KucoinAnnouncementsSpider:
    spider = spider_on(KucoinAnnouncementsSpider, db, page_size=str(RECORDED))
    spider.run.start(spider.name)
    return spider


def first_page(spider: KucoinAnnouncementsSpider, body: bytes | None = None) -> list:
    (request,) = drain(spider.start())
    return feed(request, body or mirror_body(KUCOIN, request.meta["annals_url"]))


def next_url(output: list) -> str | None:
    following = requests(output)
    assert len(following) <= 1
    return following[0].meta["annals_url"] if following else None


def archive_first_page(db: Path) -> None:
    """A finished crawl that archived KuCoin's first page."""
    store = store_of(db)
    run = store.start_run(KucoinAnnouncementsSpider.name)
    store.write(
        records(first_page(spider_on(KucoinAnnouncementsSpider, db, page_size=str(RECORDED))))
    )
    store.finish_run(run, "finished", {})


def test_a_full_page_with_more_asks_for_the_next_page(db):
    output = first_page(kucoin_spider(db))

    assert len(records(output)) == RECORDED
    assert next_url(output) == kucoin.SOURCE.list_url(2, size=RECORDED)


def test_a_page_seen_earlier_in_the_run_ends_the_listing(db):
    spider = kucoin_spider(db)
    first_page(spider)

    again = first_page(spider)

    assert (records(again), next_url(again)) == ([], None)


def test_a_page_with_nothing_the_archive_lacks_ends_the_listing(db):
    archive_first_page(db)

    output = first_page(kucoin_spider(db))

    # Archived again (the store keeps one version), but no page 2 is asked.
    assert len(records(output)) == RECORDED
    assert next_url(output) is None


def broken_crawl_after(db: Path, complete_at: datetime) -> None:
    """A complete crawl started at `complete_at`, then one that failed half-way."""
    store = store_of(db)
    done = store.start_run(KucoinAnnouncementsSpider.name, started_at=complete_at)
    store.finish_run(done, "finished", {})
    broken = store.start_run(KucoinAnnouncementsSpider.name)
    store.finish_run(broken, "failed", {})


def test_after_a_broken_crawl_known_pages_are_walked_back_to_the_last_complete_one(db):
    archive_first_page(db)
    broken_crawl_after(db, datetime(2000, 1, 1, tzinfo=UTC))

    output = first_page(kucoin_spider(db))

    assert next_url(output) == kucoin.SOURCE.list_url(2, size=RECORDED)


def test_an_old_pinned_item_on_top_does_not_end_the_repair_walk(db):
    page = json.loads(mirror_body(KUCOIN, kucoin.SOURCE.list_url(1, size=RECORDED)))
    items = page["data"]["items"]
    last = datetime.fromtimestamp(items[-1]["cTime"] / 1000, UTC)
    # The last complete crawl started a day before the page's last item; an announcement
    # from a month before that is pinned on top of the newest ones.
    resume = last - timedelta(days=1)
    items[0]["cTime"] = int((resume - timedelta(days=30)).timestamp() * 1000)
    pinned = json.dumps(page).encode()
    store = store_of(db)
    store.write(
        records(
            first_page(spider_on(KucoinAnnouncementsSpider, db, page_size=str(RECORDED)), pinned)
        )
    )
    broken_crawl_after(db, resume)

    output = first_page(kucoin_spider(db), pinned)

    # The page reaches back to its last item, newer than the resume point: walk on.
    assert next_url(output) == kucoin.SOURCE.list_url(2, size=RECORDED)


def bitget_window(end_time: int | None, db: Path) -> list:
    spider = spider_on(BitgetAnnouncementsSpider, db)
    spider.run.start(spider.name)
    (request,) = drain(spider.start())
    if end_time is not None:
        request = spider.list_request(request.cb_kwargs["listing"], 1, {"end_time": end_time})
    return feed(request, mirror_body(BITGET, request.meta["annals_url"]))


def test_bitget_asks_the_window_that_ends_at_the_last_item_of_the_page(db):
    output = bitget_window(None, db)

    last = records(output)[-1]
    end = int(last.published_at.timestamp() * 1000)
    assert next_url(output) == bitget.SOURCE.list_url(end_time=end)


def test_bitget_steps_back_a_millisecond_when_a_window_brings_nothing_older(db):
    # This window's only item is at its very end.
    output = bitget_window(1779264312990, db)

    assert [r.external_id for r in records(output)] == ["12560604414259"]
    assert next_url(output) == bitget.SOURCE.list_url(end_time=1779264312989)


def test_the_next_page_is_asked_for_before_the_pages_own_output(db):
    # Yielded first, it is downloaded while the page's details are fetched and parsed.
    output = first_page(kucoin_spider(db))

    assert output[0] is requests(output)[0]
    assert len(records(output)) == RECORDED
