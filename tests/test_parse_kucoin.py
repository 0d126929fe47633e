"""KuCoin parse layer on the saved mirror payloads: records, categories, paging, envelopes."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest

from archive.normalize import classify_event, extract_symbols, format_time
from archive.records import ParseError
from crawler.sources import kucoin
from crawler.sources.parsing import EnvelopeError, ListPage
from tests.helpers import FIXTURES, mirror_body, mirror_file

MIRROR = FIXTURES / "kucoin"
FETCHED = datetime(2026, 6, 18, 17, 0, tzinfo=UTC)
RECORDED = 10  # the size the mirror's pages were recorded at (production asks 50)


def list_page(name: str, page: int = 1, category: str | None = None) -> ListPage:
    url = kucoin.SOURCE.list_url(page, category=category, size=RECORDED)
    assert mirror_file(MIRROR, url) == name
    return kucoin.SOURCE.parse_list((MIRROR / name).read_bytes(), url)


def answer_with(*items: dict) -> str:
    data = {"totalNum": len(items), "totalPage": 1, "currentPage": 1, "pageSize": 10}
    return json.dumps({"code": "200000", "data": data | {"items": items}})


def test_list_items_become_records_with_utc_ms_times():
    page = list_page("announcements_p1.json")

    first = page.records[0]
    assert len(page.records) == 10  # of 25
    assert (first.source, first.kind, first.language) == ("kucoin", "announcement", "en")
    assert first.external_id == "146873"  # annId is a number in the API
    assert first.title == "Kestrel AI (KSTR) Gets Listed on KuCoin! World Premiere!"
    # cTime 1781752766000
    assert format_time(first.published_at) == "2026-06-18T03:19:26.000Z"
    assert first.url == (
        "https://www.kucoin.com/announcement/kestrel-ai-kstr-gets-listed-on-kucoin-world-premiere"
        "?lang=en_US"
    )
    assert first.body_text == "Trading: 10:00 on June 19, 2026 (UTC)"
    assert first.body_html is None
    assert first.category == "new-listings"
    assert first.extra["ann_types"] == ["latest-announcements", "new-listings"]
    assert classify_event(first.title, first.event_type) == "listing"
    assert first.symbols is None
    assert extract_symbols(first.title, first.body_text) == ["KSTR"]


def test_category_is_the_first_specific_type_not_the_catch_all():
    records = {r.external_id: r for r in list_page("announcements_p1.json").records}

    delisting = records["146785"]
    assert delisting.category == "delistings"
    # cTime 1781318816000
    assert format_time(delisting.published_at) == "2026-06-13T02:46:56.000Z"
    assert classify_event(delisting.title, delisting.event_type) == "delisting"
    assert extract_symbols(delisting.title, delisting.body_text) == ["ORBT", "PRSM", "WHSK"]
    assert classify_event(records["146798"].title, records["146798"].event_type) == "maintenance"
    assert records["146825"].category == "activities"

    only_catch_all = records["146707"]
    assert only_catch_all.extra["ann_types"] == ["latest-announcements"]
    assert (only_catch_all.category, only_catch_all.event_type) == ("latest-announcements", None)


def test_has_more_until_total_page_and_not_on_the_empty_page():
    assert list_page("announcements_p1.json").has_more is True
    assert list_page("announcements_p2.json", 2).has_more is True
    last = list_page("announcements_p3.json", 3)
    assert (len(last.records), last.has_more) == (5, False)
    empty = list_page("announcements_p4.json", 4)
    assert (empty.records, empty.has_more) == ([], False)


def test_same_announcement_in_two_filters_gets_one_external_id_and_category():
    everything = {
        r.external_id: r
        for name, page in (
            ("announcements_p1.json", 1),
            ("announcements_p2.json", 2),
            ("announcements_p3.json", 3),
        )
        for r in list_page(name, page).records
    }
    listings = list_page("announcements_new_listings_p1.json", category="new-listings")

    assert (len(listings.records), listings.has_more) == (9, False)
    for record in listings.records:
        assert everything[record.external_id].identity == record.identity
        assert everything[record.external_id].category == record.category == "new-listings"
    oldest = listings.records[-1]
    # cTime 1778817960000
    assert format_time(oldest.published_at) == "2026-05-15T04:06:00.000Z"


def test_unknown_types_are_accepted_without_a_hint():
    item = json.loads((MIRROR / "announcements_p1.json").read_text())["data"]["items"][0]
    item["annType"] = ["brand-new", "latest-announcements"]
    record = kucoin.SOURCE.parse_list(answer_with(item), kucoin.SOURCE.list_url(1)).records[0]
    assert (record.category, record.event_type) == ("latest-announcements", None)

    item["annType"] = ["brand-new"]
    record = kucoin.SOURCE.parse_list(answer_with(item), kucoin.SOURCE.list_url(1)).records[0]
    assert (record.category, record.event_type) == ("brand-new", None)


def test_list_urls_match_the_mirror_routes():
    assert kucoin.SOURCE.list_url(2) == (
        "https://api.kucoin.com/api/v3/announcements"
        "?currentPage=2&pageSize=50&annType=latest-announcements&lang=en_US"
    )
    assert mirror_file(MIRROR, kucoin.SOURCE.list_url(4, size=RECORDED)) == "announcements_p4.json"
    assert mirror_file(
        MIRROR, kucoin.SOURCE.list_url(2, category="new-listings", size=RECORDED)
    ) == ("announcements_new_listings_p2.json")
    with pytest.raises(ValueError, match=r"kucoin takes page sizes 1, 2, .*, 50, not 51"):
        kucoin.SOURCE.list_url(1, size=51)


def test_the_mirror_answers_the_production_page_size_in_order():
    recorded = [
        item
        for n in (1, 2, 3)
        for item in json.loads((MIRROR / f"announcements_p{n}.json").read_text())["data"]["items"]
    ]
    url = kucoin.SOURCE.list_url(1)  # pageSize=50, more than the mirror holds
    answer = json.loads(mirror_body(MIRROR, url))["data"]
    assert answer["items"] == recorded
    assert (answer["currentPage"], answer["pageSize"], answer["totalPage"]) == (1, 50, 1)
    page = kucoin.SOURCE.parse_list(mirror_body(MIRROR, url), url)
    assert (len(page.records), page.has_more) == (len(recorded), False)
    assert "lang=zh_HK" in kucoin.SOURCE.list_url(1, language="zh")


@pytest.mark.parametrize(
    ("answer", "rate_limited"),
    [
        ({"code": "429000", "msg": "Too Many Requests"}, True),
        ({"code": 429000, "msg": "Too Many Requests"}, True),
        ({"code": "400100", "msg": "Parameter error"}, False),
    ],
)
def test_failure_envelope_raises_envelope_error(answer, rate_limited):
    url = kucoin.SOURCE.list_url(1)
    with pytest.raises(EnvelopeError) as caught:
        kucoin.SOURCE.parse_list(json.dumps(answer), url)
    assert caught.value.rate_limited is rate_limited
    assert caught.value.code == str(answer["code"])


def test_success_code_given_as_a_number_is_accepted():
    body = json.dumps({"code": 200000, "data": {"totalPage": 0, "currentPage": 1, "items": []}})
    assert kucoin.SOURCE.parse_list(body, kucoin.SOURCE.list_url(1)).has_more is False


def test_malformed_json_raises_parse_error():
    with pytest.raises(ParseError, match="not JSON"):
        kucoin.SOURCE.parse_list(b"not json", kucoin.SOURCE.list_url(1))
    with pytest.raises(ParseError, match=r"data\.items"):
        kucoin.SOURCE.parse_list(b'{"code":"200000","data":[]}', kucoin.SOURCE.list_url(1))


def test_unreadable_item_is_skipped_and_logged(caplog):
    items = json.loads((MIRROR / "announcements_p1.json").read_text())["data"]["items"][:3]
    items[0]["cTime"] = None
    items[1]["annUrl"] = ""

    with caplog.at_level(logging.WARNING, logger="crawler.sources.kucoin"):
        page = kucoin.SOURCE.parse_list(answer_with(*items), kucoin.SOURCE.list_url(1))

    assert [r.external_id for r in page.records] == ["146825"]
    assert len(caplog.records) == 2
    assert "annUrl" in caplog.text


def test_page_of_only_unreadable_items_raises_parse_error():
    with pytest.raises(ParseError, match="none of the"):
        kucoin.SOURCE.parse_list(answer_with({"annTitle": "no id"}), kucoin.SOURCE.list_url(1))
