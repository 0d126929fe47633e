"""HTX parse layer on the saved mirror payloads: records, lists, paging, envelopes."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime

import pytest

from archive.normalize import format_time
from archive.records import ParseError, RawResponse
from archive.symbols import category_event
from crawler.sources import htx
from crawler.sources.parsing import EnvelopeError, ListPage
from crawler.spiders.api import HtxAnnouncementsSpider
from tests.helpers import FIXTURES, mirror_file

MIRROR = FIXTURES / "htx"
RECORDED = 10  # the limit the mirror's pages were cut at (production asks 50)
NEW_LISTINGS, LATEST, DELISTINGS, WALLET, API = (
    "360000039942",
    "360000039481",
    "64971881385864",
    "360000039982",
    "360000070201",
)
FILES = {
    NEW_LISTINGS: "new_listings",
    LATEST: "latest_news",
    DELISTINGS: "delistings",
    WALLET: "deposit_withdrawal",
    API: "api",
}


def list_page(category: str, page: int = 1, size: int | None = RECORDED) -> ListPage:
    url = htx.SOURCE.list_url(page, category=category, size=size)
    name = mirror_file(MIRROR, url)
    assert name == f"{FILES[category]}_p{page}.json"
    return htx.SOURCE.parse_list((MIRROR / name).read_bytes(), url)


def answer_with(*items: object, page: int = 1, count: int | None = None) -> str:
    data = {"currPage": page, "totalPage": 1, "pageSize": 10, "totalCount": count or len(items)}
    return json.dumps(
        {"code": 200, "msg": "success", "msgId": None, "data": data | {"list": items}}
    )


def items_of(name: str) -> list[dict]:
    return json.loads((MIRROR / name).read_text())["data"]["list"]


def test_list_items_become_records_with_utc_ms_times():
    page = list_page(NEW_LISTINGS)

    first = page.records[0]
    assert len(page.records) == 10
    assert (first.source, first.kind, first.language) == ("htx", "announcement", "en")
    assert first.external_id == "54870022004874"  # a number in the answer
    assert first.title == "HTX Will List Quillon (QLLN) at 10:00 (UTC) on July 8, 2026"
    # showTime 1783415553418 (ms, UTC)
    assert format_time(first.published_at) == "2026-07-07T09:12:33.418Z"
    assert first.url == "https://www.htx.com/support/54870022004874"
    assert (first.body_html, first.body_text) == (None, None)  # the list has no body
    assert (first.category, first.event_type) == ("New Listings", "listing")
    assert first.extra == {"deal_pair": "spot_QLLN/USDT"}
    assert first.symbols is None


def test_items_without_a_deal_pair_keep_no_extra_and_order_numbers_are_not_kept():
    records = {r.external_id: r for r in list_page(NEW_LISTINGS).records}
    futures = records["54870020122588"]  # a futures listing: no dealPair key at all
    assert "dealPair" not in next(
        i for i in items_of("new_listings_p1.json") if i["id"] == 54870020122588
    )
    assert futures.extra == {}
    assert all("orderNo" not in r.extra and "order_no" not in r.extra for r in records.values())


def test_titles_have_one_space_and_decoded_entities():
    listings = {r.external_id: r for r in list_page(NEW_LISTINGS).records}
    assert "  on" in next(
        i["title"] for i in items_of("new_listings_p1.json") if i["id"] == 54870011193038
    )
    assert listings["54870011193038"].title == (
        "HTX to Open Trading for Caldera (CLDR) at 14:00 (UTC) on June 20, 2026"
    )
    news = {r.external_id: r for r in list_page(LATEST).records}
    assert (
        news["54870019706459"].title
        == "HTX Launches Zero-Fee Trading Week for QLLN/USDT & TSRA/USDT"
    )


def test_each_list_gives_its_category_and_event_type():
    seen = {
        category: {(r.category, r.event_type) for r in list_page(category).records}
        for category in FILES
    }
    assert seen == {
        NEW_LISTINGS: {("New Listings", "listing")},
        LATEST: {("Latest News", "news")},
        DELISTINGS: {("Delistings", "delisting")},
        WALLET: {("Deposit/Withdrawal Suspensions", "maintenance")},
        API: {("API Announcements", "product")},
    }


def test_every_category_name_reads_as_its_event_type():
    """The store derives the event type from the stored category (the name: the keys are
    digits); archive's rules must agree with the table."""
    for category in htx.SOURCE.categories.values():
        assert category_event(category.name) == category.event_type, category.name


def test_walk_of_every_list_reads_each_announcement_once_and_ends():
    found: dict[str, set[str]] = {}
    for category in FILES:
        page, number = list_page(category), 1
        while True:
            for record in page.records:
                found.setdefault(record.external_id, set()).add(category)
            if not page.has_more:
                break
            number += 1
            page = list_page(category, number)
        after = list_page(category, number + 1)  # past the last page: an empty list
        assert (after.records, after.has_more) == ([], False)
    assert len(found) == 31
    # Quillon is in two lists: one id, one announcement.
    assert found["54870022004874"] == {NEW_LISTINGS, LATEST}
    assert sum(len(lists) > 1 for lists in found.values()) == 1


def test_has_more_follows_total_page_not_the_count_asked():
    # Asked 50, answered 10 of 13 (the mirror's pages are cut at 10): totalPage says more.
    url = htx.SOURCE.list_url(1, category=NEW_LISTINGS)
    assert "limit=50" in url
    page = htx.SOURCE.parse_list((MIRROR / "new_listings_p1.json").read_bytes(), url)
    assert (len(page.records), page.has_more) == (10, True)
    assert list_page(NEW_LISTINGS, 2).has_more is False  # currPage 2 of totalPage 2
    assert list_page(LATEST).has_more is False


def test_list_urls_match_the_mirror_routes():
    assert htx.SOURCE.list_url(2, category=DELISTINGS) == (
        "https://www.htx.com/-/x/support/public/getList/v2?oneLevelId=360000031902"
        "&language=en-us&page=2&limit=50&twoLevelId=64971881385864"
    )
    for category, name in FILES.items():
        assert mirror_file(MIRROR, htx.SOURCE.list_url(1, category=category)) == f"{name}_p1.json"
    assert "language=zh-cn" in htx.SOURCE.list_url(1, category=API, language="zh")
    assert "language=zh-tw" in htx.SOURCE.list_url(1, category=API, language="zh-tw")
    with pytest.raises(ValueError, match=r"htx takes page sizes 1, 2, .*, 50, not 51"):
        htx.SOURCE.list_url(1, category=API, size=51)


def test_other_languages_link_the_localized_article_page():
    url = htx.SOURCE.list_url(1, category=API, language="zh")
    record = htx.SOURCE.parse_list((MIRROR / "api_p1.json").read_bytes(), url, "zh").records[0]
    assert (record.language, record.url) == (
        "zh",
        "https://www.htx.com/zh-cn/support/54870018295203",
    )


@pytest.mark.parametrize(
    ("answer", "rate_limited"),
    [
        ({"code": 429, "msg": "Too many requests", "msgId": None, "data": None}, True),
        ({"code": "429", "msg": "Too many requests", "data": None}, True),
        ({"code": 500, "msg": "system error", "msgId": None, "data": None}, False),
        ({"code": 40001, "msg": "invalid twoLevelId", "data": None}, False),
    ],
)
def test_failure_envelope_raises_envelope_error(answer, rate_limited):
    url = htx.SOURCE.list_url(1, category=API)
    with pytest.raises(EnvelopeError) as caught:
        htx.SOURCE.parse_list(json.dumps(answer), url)
    assert caught.value.rate_limited is rate_limited
    assert caught.value.code == str(answer["code"])
    assert caught.value.message == answer["msg"]


def test_success_code_given_as_text_is_accepted():
    body = json.loads(answer_with(*items_of("api_p1.json")))
    body["code"] = "200"
    page = htx.SOURCE.parse_list(json.dumps(body), htx.SOURCE.list_url(1, category=API))
    assert len(page.records) == 3


def test_malformed_answers_raise_parse_error():
    url = htx.SOURCE.list_url(1, category=API)
    with pytest.raises(ParseError, match="not JSON"):
        htx.SOURCE.parse_list(b"<html>reset</html>", url)
    with pytest.raises(ParseError, match="answer has no code"):
        htx.SOURCE.parse_list(b'{"data": {"list": []}}', url)
    with pytest.raises(ParseError, match=r"data\.list is not a list"):
        htx.SOURCE.parse_list(b'{"code": 200, "msg": "success", "data": null}', url)
    with pytest.raises(ParseError, match=r"data\.list is not a list"):
        htx.SOURCE.parse_list(b'{"code": 200, "data": {"list": {}}}', url)


def test_an_empty_first_page_is_refused_when_its_count_says_there_are_items():
    url = htx.SOURCE.list_url(1, category=API)
    with pytest.raises(ParseError, match="totalCount is 7"):
        htx.SOURCE.parse_list(answer_with(count=7), url)
    empty = htx.SOURCE.parse_list(answer_with(count=0), url)  # a list with nothing in it
    assert (empty.records, empty.has_more) == ([], False)
    past = htx.SOURCE.parse_list(answer_with(page=2, count=7), htx.SOURCE.list_url(2, category=API))
    assert (past.records, past.has_more) == ([], False)


def test_unreadable_items_are_skipped_and_logged(caplog):
    items = items_of("api_p1.json")
    items[0]["showTime"] = None
    items[1]["id"] = "abc"
    broken = [{"showTime": 1782885600331, "title": "no id"}, {"id": 1, "title": " ", "showTime": 1}]

    with caplog.at_level(logging.WARNING, logger="crawler.sources.parsing"):
        page = htx.SOURCE.parse_list(
            answer_with(*items, *broken, "x"), htx.SOURCE.list_url(1, category=API)
        )

    assert [r.external_id for r in page.records] == ["54870002028785"]
    reasons = [u.reason for u in page.unusable]
    assert len(reasons) == 5
    assert "no readable time" in reasons[0]
    assert "not a number" in reasons[1]
    assert reasons[2:] == ["no id", "1: no title", "not an object"]
    assert len(caplog.records) == 5


def test_page_of_only_unreadable_items_raises_parse_error():
    with pytest.raises(ParseError, match="none of the 1 items"):
        htx.SOURCE.parse_list(answer_with({"title": "no id"}), htx.SOURCE.list_url(1, category=API))


def test_a_stored_answer_reparses_to_the_same_records_and_category():
    url = htx.SOURCE.list_url(1, category=LATEST)
    body = (MIRROR / "latest_news_p1.json").read_bytes()
    fetched = datetime(2026, 7, 7, 12, 0, tzinfo=UTC)
    records = HtxAnnouncementsSpider.parse_snapshot(
        RawResponse(url, 200, "application/json", body, fetched)
    )
    assert records == htx.SOURCE.parse_list(body, url).records
    assert {r.category for r in records} == {"Latest News"}
    zh = htx.SOURCE.list_url(1, category=LATEST, language="zh")
    assert {
        r.language for r in HtxAnnouncementsSpider.parse_snapshot(RawResponse(zh, 200, None, body))
    } == {"zh"}


def test_the_spider_walks_every_list_with_browser_headers():
    requests = asyncio.run(_start(HtxAnnouncementsSpider()))
    assert [r.cb_kwargs["listing"].category for r in requests] == list(htx.SOURCE.categories)
    assert set(htx.SOURCE.categories) == set(FILES)
    assert {r.cb_kwargs["listing"].language for r in requests} == {"en"}
    for request in requests:
        assert request.headers["User-Agent"].startswith(b"Mozilla/5.0")
        assert request.headers["Accept-Language"] == b"en-US,en;q=0.9"
    only = asyncio.run(_start(HtxAnnouncementsSpider(categories=API, lang="zh")))
    assert [r.url for r in only] == [htx.SOURCE.list_url(1, category=API, language="zh")]


async def _start(spider: HtxAnnouncementsSpider) -> list:
    return [request async for request in spider.start()]
