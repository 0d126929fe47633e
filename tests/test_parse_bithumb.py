"""Bithumb parse layer on the saved mirror payloads: notices, KST times, identity, errors."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest
import scrapy
from scrapy.http import Response

from archive.normalize import classify_event, format_time, prepare
from archive.records import ParseError, RawResponse
from archive.symbols import category_event
from crawler.backoff import host_backoff
from crawler.blocks import classify
from crawler.cli import DEMO_SPIDERS, MIRRORS
from crawler.sources import bithumb
from crawler.sources.parsing import EnvelopeError, ListPage
from crawler.spiders.api import BithumbAnnouncementsSpider
from tests.helpers import FIXTURES, drain, mirror_file, spider_on

MIRROR = FIXTURES / "bithumb"
URL = bithumb.SOURCE.list_url(language="ko")
JSON = {"content-type": "application/json; charset=utf-8"}


def notices() -> list[dict]:
    return json.loads((MIRROR / "notices.json").read_text())


def parse(items: list[dict] | str) -> ListPage:
    body = items if isinstance(items, str) else json.dumps(items, ensure_ascii=False)
    return bithumb.SOURCE.parse_list(body, URL, "ko")


def by_id() -> dict:
    return {r.external_id: r for r in parse(notices()).records}


def test_list_url_asks_the_documented_maximum_in_korean():
    assert URL == "https://api.bithumb.com/v1/notices?count=20"
    assert mirror_file(MIRROR, URL) == "notices.json"
    assert bithumb.SOURCE.list_url(language="ko", size=5).endswith("?count=5")
    assert bithumb.SOURCE.headers("ko") == {}
    assert next(iter(bithumb.SOURCE.languages)) == "ko"
    with pytest.raises(ValueError, match="page sizes"):
        bithumb.SOURCE.list_url(language="ko", size=21)
    with pytest.raises(ValueError, match="whole list"):
        bithumb.SOURCE.list_url(2, language="ko")


def test_notices_become_records_with_utc_ms_times_from_kst():
    page = parse(notices())

    assert len(page.records) == len(notices())
    assert page.has_more is False
    first = page.records[0]
    assert (first.source, first.kind, first.language) == ("bithumb", "announcement", "ko")
    assert first.external_id == "1653214"
    assert first.title == "아쿠아링크(AQLK) 원화 마켓 추가"
    # "2026-06-19 14:00:10" KST
    assert format_time(first.published_at) == "2026-06-19T05:00:10.000Z"
    assert format_time(first.updated_at) == "2026-06-19T05:00:10.000Z"
    assert first.url == "https://feed.bithumb.com/notice/1653214"
    assert (first.body_html, first.body_text) == (None, None)
    assert first.category == "마켓 추가"
    assert first.event_type == "listing"
    assert first.extra == {"categories": ["마켓 추가"]}
    assert classify_event(first.title, first.event_type) == "listing"


def test_a_notice_before_nine_kst_is_dated_the_day_before_in_utc():
    records = by_id()
    # "2026-06-19 00:12:45", "2026-06-16 08:45:20", "2026-06-11 00:03:41" KST
    assert format_time(records["1653211"].published_at) == "2026-06-18T15:12:45.000Z"
    assert format_time(records["1653185"].published_at) == "2026-06-15T23:45:20.000Z"
    assert format_time(records["1653145"].published_at) == "2026-06-10T15:03:41.000Z"


def test_identity_is_the_notice_number_without_query_or_trailing_slash():
    records = by_id()
    assert records["1653207"].url == "https://feed.bithumb.com/notice/1653207"  # ?category=5
    assert records["1653200"].url == "https://feed.bithumb.com/notice/1653200"  # trailing /
    numbers = [r.external_id for r in parse(notices()).records]
    assert all(n.isdigit() for n in numbers)
    assert len(set(numbers)) == len(numbers)


def test_modified_at_is_the_update_time_and_may_be_missing():
    records = by_id()
    edited = records["1653192"]
    # published "2026-06-17 11:00:00", modified "2026-06-18 09:30:12" KST
    assert format_time(edited.published_at) == "2026-06-17T02:00:00.000Z"
    assert format_time(edited.updated_at) == "2026-06-18T00:30:12.000Z"
    assert records["1653185"].updated_at is None


def test_a_notice_without_published_at_is_dated_by_its_last_edit():
    item = notices()[6]
    del item["published_at"]
    record = parse([item]).records[0]
    # modified_at "2026-06-18 09:30:12" KST
    assert format_time(record.published_at) == "2026-06-18T00:30:12.000Z"
    assert record.extra["time_source"] == "modified_at"
    assert "time_source" not in parse(notices()[6:7]).records[0].extra


def test_first_category_is_the_category_and_every_one_is_kept():
    two = by_id()["1653166"]
    assert two.category == "거래유의"
    assert two.extra["categories"] == ["거래유의", "거래지원종료"]
    item = notices()[0] | {"categories": []}
    record = parse([item]).records[0]
    assert (record.category, record.event_type, record.extra) == (None, None, {"categories": []})
    unknown = parse([notices()[0] | {"categories": ["새 분류"]}]).records[0]
    assert (unknown.category, unknown.event_type) == ("새 분류", None)


def test_every_label_reads_as_its_event_type_in_the_store():
    for category in bithumb.CATEGORIES.values():
        assert category_event(category.name) == category.event_type, category.name


def test_titles_have_entities_decoded_when_stored():
    record = by_id()["1653196"]
    assert "&amp;" in record.title  # as the API gives it
    assert prepare(record).title == "미라지(MRGE) 원화 마켓 추가 기념 거래 & 입금 이벤트"


def test_unusable_notices_are_left_out_and_listed(caplog):
    items = notices()[:4]
    items[0]["pc_url"] = "https://feed.bithumb.com/notice"  # no number
    items[1]["published_at"] = "어제"
    del items[1]["modified_at"]
    del items[2]["title"]

    with caplog.at_level(logging.WARNING, logger="crawler.sources.parsing"):
        page = parse(items)

    assert [r.external_id for r in page.records] == ["1653204"]
    assert [u.index for u in page.unusable] == [0, 1, 2]
    assert "notice number" in page.unusable[0].reason
    assert "no readable time (published_at '어제', modified_at None)" in page.unusable[1].reason
    assert "title" in page.unusable[2].reason


def test_an_answer_of_only_unusable_notices_raises_parse_error():
    with pytest.raises(ParseError, match="none of the"):
        parse([{"title": "번호 없음"}])


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{", "not JSON"),
        ('{"notices": []}', "not a JSON array"),
        ('"text"', "not a JSON array"),
    ],
)
def test_another_shape_than_an_array_raises_parse_error(body, reason):
    with pytest.raises(ParseError, match=reason):
        parse(body)


def test_error_object_raises_envelope_error():
    body = json.dumps({"error": {"name": "invalid_parameter", "message": "count 범위 초과"}})
    with pytest.raises(EnvelopeError) as caught:
        parse(body)
    assert (caught.value.code, caught.value.message) == ("invalid_parameter", "count 범위 초과")
    assert caught.value.rate_limited is False
    with pytest.raises(EnvelopeError, match="error"):
        parse('{"error": "boom"}')


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (302, b"", "redirect"),
        (301, b"<html>moved</html>", "redirect"),
        (200, b"", "empty"),
        (200, b" [ ]\n", "empty"),
        (429, b"", "rate_limited"),
        (200, b"[{}]", None),
    ],
)
def test_redirects_and_empty_answers_are_blocks_for_bithumb_only(status, body, kind):
    assert classify(status, JSON, body, bithumb.SOURCE.throttle_signs) == kind
    assert BithumbAnnouncementsSpider.throttle_signs == {"redirect", "empty"}
    if kind in ("redirect", "empty"):  # for the other sources, as before
        assert classify(status, JSON, body) is None


def test_a_redirect_is_a_block_only_where_the_spider_does_not_follow_it(tmp_path):
    spider = spider_on(BithumbAnnouncementsSpider, tmp_path / "annals.db")
    spider.crawler.spider = spider
    backoff = host_backoff(spider.crawler)
    (listing,) = drain(spider.start())
    assert listing.meta["dont_redirect"] is True
    robots = scrapy.Request("https://api.bithumb.com/robots.txt")  # Scrapy follows it

    def redirected(request: scrapy.Request) -> Response:
        return Response(request.url, status=302, headers={"Location": "/"}, request=request)

    assert backoff.kind(redirected(listing), listing) == "redirect"
    assert backoff.kind(redirected(robots), robots) is None


def test_reparse_of_a_stored_answer_gives_the_same_records():
    raw = RawResponse(
        url=URL,
        status=200,
        content_type="application/json",
        body=(MIRROR / "notices.json").read_bytes(),
        fetched_at=datetime(2026, 6, 19, 6, 0, tzinfo=UTC),
    )
    records = BithumbAnnouncementsSpider.parse_snapshot(raw)
    assert [r.identity for r in records] == [r.identity for r in parse(notices()).records]
    assert {r.language for r in records} == {"ko"}


def test_the_demo_serves_the_tested_mirror():
    assert DEMO_SPIDERS["bithumb"] == ("bithumb_announcements",)
    assert MIRROR.resolve() == (MIRRORS / "bithumb").resolve()
