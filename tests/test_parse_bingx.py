"""BingX parse layer on the saved mirror payloads: records, modules, times, paging, envelopes."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime

import pytest

from archive.db import open_archive
from archive.normalize import format_time
from archive.records import ParseError, Quarantined, RawResponse
from archive.symbols import category_event
from crawler.sources import bingx
from crawler.sources.parsing import EnvelopeError, ListPage
from crawler.spiders.api import BingxAnnouncementsSpider
from tests.helpers import FIXTURES, drain, feed, mirror_body, mirror_file, spider_on

MIRROR = FIXTURES / "bingx"
MODULES = (
    "LatestAnnouncements",
    "LatestPromotions",
    "ProductUpdates",
    "AssetMaintenance",
    "SystemMaintenance",
    "SpotListing",
    "FuturesListing",
    "InnovationListing",
    "FundingRate",
    "Delisting",
    "CryptoScout",
)


def list_page(module: str, page: int = 1) -> ListPage:
    url = bingx.SOURCE.list_url(page, category=module)
    name = mirror_file(MIRROR, url)
    assert name == f"announcement_{module}_p{page}.json"
    return bingx.SOURCE.parse_list((MIRROR / name).read_bytes(), url)


def items_of(module: str, page: int = 1) -> list[dict]:
    return json.loads((MIRROR / f"announcement_{module}_p{page}.json").read_text())["data"]["list"]


def answer_with(*items: object, total: int | None = None, page: int = 1) -> str:
    data = {"list": list(items), "total": len(items) if total is None else total, "page": page}
    return json.dumps({"code": 0, "msg": "", "data": data})


def parse(*items: object, module: str = "SpotListing") -> ListPage:
    return bingx.SOURCE.parse_list(answer_with(*items), bingx.SOURCE.list_url(1, category=module))


def test_list_items_become_records_with_utc_ms_times():
    page = list_page("SpotListing")

    first = page.records[0]
    assert len(page.records) == 6
    assert (first.source, first.kind, first.language) == ("bingx", "announcement", "en")
    assert first.external_id == "34576466370381"  # the url's trailing number
    assert first.url == "https://bingx.com/en/support/articles/34576466370381"
    assert first.title == "BingX Will List Kestrel AI (KSTR) for Spot Trading"
    # releaseTime 2026-06-23T20:00:41+08:00
    assert format_time(first.published_at) == "2026-06-23T12:00:41.000Z"
    assert first.body_text is not None
    assert first.body_text.startswith("BingX will list Kestrel AI (KSTR) in the Spot market.")
    assert first.body_html is None
    assert (first.category, first.event_type) == ("SpotListing", "listing")
    assert first.extra == {}


def test_a_time_before_eight_in_utc8_falls_on_the_previous_utc_day():
    trx = list_page("AssetMaintenance").records[0]
    assert items_of("AssetMaintenance")[0]["releaseTime"] == "2026-06-20T07:30:18+08:00"
    assert format_time(trx.published_at) == "2026-06-19T23:30:18.000Z"


def test_the_documented_time_and_link_are_read_when_url_and_release_time_are_missing():
    item = {
        "title": "BingX Will List Ferrum (FRRM)",
        "content": "FRRM/USDT trading opens at 16:00 (UTC+8).",
        "link": "https://bingx.com/en/support/announcement/detail/12345",
        "time": "2026-03-15 12:00:00",  # no zone: UTC+8
        "type": "SpotListing",
    }
    record = parse(item).records[0]
    assert (record.external_id, record.url) == (
        "12345",
        "https://bingx.com/en/support/announcement/detail/12345",
    )
    assert format_time(record.published_at) == "2026-03-15T04:00:00.000Z"
    assert record.extra == {"time_source": "time"}
    # releaseTime wins where both are given; a zone-less releaseTime is UTC+8 too.
    both = parse(item | {"releaseTime": "2026-03-15T13:00:00+08:00"}).records[0]
    assert (format_time(both.published_at), both.extra) == ("2026-03-15T05:00:00.000Z", {})
    bare = parse(item | {"releaseTime": "2026-03-15 13:00:00"}).records[0]
    assert format_time(bare.published_at) == "2026-03-15T05:00:00.000Z"


@pytest.mark.parametrize(
    ("given", "url", "article"),
    [
        ("/en/support/articles/34576466370381", "https://bingx.com/en/support/articles/34576466370381",
         "34576466370381"),
        ("en/support/articles/777/", "https://bingx.com/en/support/articles/777/", "777"),
        ("https://bingx.com/zh-tw/support/articles/888?from=api",
         "https://bingx.com/zh-tw/support/articles/888?from=api", "888"),
    ],
)  # fmt: skip
def test_relative_urls_are_made_absolute_and_the_id_is_the_trailing_number(given, url, article):
    item = items_of("SpotListing")[0] | {"url": given}
    record = parse(item).records[0]
    assert (record.url, record.external_id) == (url, article)


def test_titles_and_contents_have_entities_decoded_and_spaces_normalized():
    dot = {r.external_id: r for r in list_page("LatestAnnouncements", 2).records}["34563882099104"]
    assert "&amp;" in items_of("LatestAnnouncements", 2)[0]["content"]
    assert dot.body_text == (
        "Deposits and withdrawals of DOT will be paused from 20:00 (UTC+8) on May 27, 2026 "
        "& resume once the network is stable."
    )
    item = items_of("SpotListing")[0] | {"title": "BingX  Will List R&amp;D  (RND)"}
    assert parse(item).records[0].title == "BingX Will List R&D (RND)"
    html = parse(item | {"content": "<p>KSTR &amp; more</p>"}).records[0]
    assert (html.body_html, html.body_text) == ("<p>KSTR &amp; more</p>", None)


def test_category_is_the_items_type_else_the_module_asked():
    assert {r.category for r in list_page("FuturesListing").records} == {"FuturesListing"}
    item = items_of("SpotListing")[0]
    # A type naming a module wins over the module asked (it is the item's own).
    assert parse(item, module="LatestAnnouncements").records[0].category == "SpotListing"
    untyped = {k: v for k, v in item.items() if k != "type"}
    record = parse(untyped, module="LatestAnnouncements").records[0]
    assert (record.category, record.event_type) == ("LatestAnnouncements", None)
    odd = parse(item | {"type": "Web3"}, module="Delisting").records[0]
    assert (odd.category, odd.event_type, odd.extra) == ("Delisting", "delisting", {"type": "Web3"})


def test_every_module_reads_as_its_event_type():
    assert tuple(bingx.SOURCE.categories) == MODULES
    for module in bingx.SOURCE.categories.values():
        for stored_as in (module.key, module.name):
            assert category_event(stored_as) == module.event_type, stored_as


def test_walk_of_every_module_reads_each_announcement_once_and_ends():
    found: dict[str, str] = {}
    for module in MODULES:
        page, number = list_page(module), 1
        while page.has_more:
            for record in page.records:
                assert record.external_id not in found
                found[record.external_id] = module
            number += 1
            page = list_page(module, number)
        for record in page.records:
            found[record.external_id] = module
    assert len(found) == 31
    # LatestAnnouncements: 10 + 2 of a total of 12, so page 3 (empty) is not needed.
    assert list_page("LatestAnnouncements").has_more is True
    assert list_page("LatestAnnouncements", 2).has_more is False
    past = list_page("LatestAnnouncements", 3)
    assert (past.records, past.has_more) == ([], False)
    nothing = list_page("FundingRate")  # a module with nothing in it yet
    assert (nothing.records, nothing.has_more) == ([], False)


def test_has_more_counts_items_against_total_with_the_modeled_size():
    item = items_of("SpotListing")[0]
    url = bingx.SOURCE.list_url(1, category="SpotListing")
    full = bingx.SOURCE.parse_list(answer_with(*[item] * 10, total=11), url)
    assert full.has_more is True
    last = bingx.SOURCE.parse_list(
        answer_with(item, total=11, page=2), bingx.SOURCE.list_url(2, category="SpotListing")
    )
    assert last.has_more is False  # 10 on page 1 and 1 here
    # Pages fuller than the modeled 10 (one caller gets 15) show the real size.
    fifteen = bingx.SOURCE.list_url(2, category="SpotListing")
    assert (
        bingx.SOURCE.parse_list(answer_with(*[item] * 15, total=31, page=2), fifteen).has_more
        is True
    )
    assert (
        bingx.SOURCE.parse_list(answer_with(*[item] * 15, total=30, page=2), fifteen).has_more
        is False
    )


def test_list_urls_match_the_mirror_routes_and_send_no_page_size():
    assert bingx.SOURCE.list_url(2, category="SpotListing") == (
        "https://open-api.bingx.com/openApi/content/v1/announcement"
        "?contentType=SpotListing&language=en-us&page=2"
    )
    for module in MODULES:
        assert mirror_file(MIRROR, bingx.SOURCE.list_url(1, category=module)) == (
            f"announcement_{module}_p1.json"
        )
    assert "language=zh-tw" in bingx.SOURCE.list_url(1, category="Delisting", language="zh")
    with pytest.raises(ValueError, match="bingx takes page sizes none"):
        bingx.SOURCE.list_url(1, category="Delisting", size=15)


@pytest.mark.parametrize(
    ("answer", "rate_limited"),
    [
        ({"code": 100410, "msg": "Request rate limit exceeded, please retry later", "data": None},
         True),
        ({"code": 100500, "msg": "Internal system error", "data": None}, True),
        ({"code": 100400, "msg": "Invalid parameter contentType", "data": None}, False),
        ({"code": "100001", "msg": "Signature verification failed"}, False),
    ],
)  # fmt: skip
def test_failure_envelope_raises_envelope_error(answer, rate_limited):
    url = bingx.SOURCE.list_url(1, category="Delisting")
    with pytest.raises(EnvelopeError) as caught:
        bingx.SOURCE.parse_list(json.dumps(answer), url)
    assert caught.value.rate_limited is rate_limited
    assert caught.value.code == str(answer["code"])


def test_malformed_answers_raise_parse_error():
    url = bingx.SOURCE.list_url(1, category="Delisting")
    with pytest.raises(ParseError, match="not JSON"):
        bingx.SOURCE.parse_list(b"<html><title>Just a moment...</title></html>", url)
    with pytest.raises(ParseError, match=r"data\.list is not a list"):
        bingx.SOURCE.parse_list(b'{"code": 0, "msg": "", "data": null}', url)
    with pytest.raises(ParseError, match="answer has no code"):
        bingx.SOURCE.parse_list(b'{"data": {"list": []}}', url)


def test_an_empty_first_page_is_refused_when_its_total_says_there_are_items():
    url = bingx.SOURCE.list_url(1, category="Delisting")
    with pytest.raises(ParseError, match="total is 4"):
        bingx.SOURCE.parse_list(answer_with(total=4), url)
    past = bingx.SOURCE.parse_list(
        answer_with(total=4, page=2), bingx.SOURCE.list_url(2, category="Delisting")
    )
    assert (past.records, past.has_more) == ([], False)


def test_unreadable_items_are_skipped_and_logged(caplog):
    good, *others = items_of("SpotListing")[:4]
    broken = [
        others[0] | {"releaseTime": "soon"},
        {k: v for k, v in others[1].items() if k != "url"},
        others[2] | {"url": "https://bingx.com/en/support/notice-center/"},
        good | {"title": ""},
    ]
    with caplog.at_level(logging.WARNING, logger="crawler.sources.parsing"):
        page = parse(good, *broken)
    assert [r.external_id for r in page.records] == ["34576466370381"]
    reasons = [u.reason for u in page.unusable]
    assert "no readable time" in reasons[0]
    assert reasons[1] == "no url or link"
    assert "no article id" in reasons[2]
    assert reasons[3] == "34576466370381: no title"
    assert len(caplog.records) == 4
    with pytest.raises(ParseError, match="none of the 1 items"):
        parse(broken[1])


def test_a_stored_answer_reparses_to_the_same_records():
    url = bingx.SOURCE.list_url(1, category="Delisting")
    body = (MIRROR / "announcement_Delisting_p1.json").read_bytes()
    raw = RawResponse(url, 200, "application/json", body, datetime(2026, 6, 25, tzinfo=UTC))
    records = BingxAnnouncementsSpider.parse_snapshot(raw)
    assert records == bingx.SOURCE.parse_list(body, url).records
    assert [r.category for r in records] == ["Delisting", "Delisting"]


def test_the_spider_walks_every_module_with_the_source_key_header():
    requests = asyncio.run(_start(BingxAnnouncementsSpider()))
    assert [r.cb_kwargs["listing"].category for r in requests] == list(MODULES)
    for request in requests:
        assert request.headers["X-SOURCE-KEY"] == b"BX-AI-SKILL"
        assert "pageSize" not in request.url
    zh = asyncio.run(_start(BingxAnnouncementsSpider(lang="zh", categories="Delisting")))
    assert [r.url for r in zh] == [bingx.SOURCE.list_url(1, category="Delisting", language="zh")]
    assert zh[0].headers["X-SOURCE-KEY"] == b"BX-AI-SKILL"


async def _start(spider: BingxAnnouncementsSpider) -> list:
    return [request async for request in spider.start()]


def test_an_empty_module_is_no_broken_answer_but_every_module_empty_is(tmp_path):
    """The navigator, in process: a walked module may list nothing yet; when every
    module of a language does, the answer is quarantined (the run ends "partial")."""
    url = f"sqlite:///{tmp_path / 'annals.db'}"
    open_archive(url, create=True).dispose()
    spider = spider_on(
        BingxAnnouncementsSpider, tmp_path / "annals.db", categories="FundingRate,CryptoScout"
    )
    spider.run.start(spider.name)
    funding, scout = drain(spider.start())

    assert feed(funding, mirror_body(MIRROR, funding.meta["annals_url"])) == []
    [quarantined] = feed(scout, mirror_body(MIRROR, scout.meta["annals_url"]))
    assert isinstance(quarantined, Quarantined)
    assert quarantined.error == "every category answered no items"
    assert quarantined.url == bingx.SOURCE.list_url(1, category="CryptoScout")
