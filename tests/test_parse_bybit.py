"""Bybit parse layer on the saved mirror payloads: list records, identity, paging, envelopes."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest

from archive.normalize import classify_event, extract_symbols, format_time, parse_time
from archive.records import ParseError
from crawler.sources import bybit
from crawler.sources.parsing import EnvelopeError, ListPage
from tests.helpers import FIXTURES, mirror_file

MIRROR = FIXTURES / "bybit"
FETCHED = datetime(2026, 6, 20, 12, 0, tzinfo=UTC)
KSTR_LISTING = (
    "https://announcements.bybit.com/en-US/article/new-listing-kestrel-ai-kstr-deposit-trade"
    "-and-stake-kstr-to-share-a-300-000-usdt-prize-pool--blt718732f7bd699da6/"
)


def list_page(name: str, page: int = 1, category: str | None = None) -> ListPage:
    url = bybit.SOURCE.list_url(page, category=category)
    assert mirror_file(MIRROR, url) == name
    return bybit.SOURCE.parse_list((MIRROR / name).read_bytes(), url)


def answer_with(*items: dict) -> str:
    return json.dumps({"retCode": 0, "retMsg": "OK", "result": {"total": 1, "list": items}})


def test_list_items_become_records_with_utc_ms_times():
    page = list_page("announcements_p1.json")

    first = page.records[0]
    assert len(page.records) == 20  # of 28
    assert (first.source, first.kind, first.language) == ("bybit", "announcement", "en")
    assert first.external_id == "blt718732f7bd699da6"
    assert first.url == KSTR_LISTING
    assert first.title.startswith("New Listing: Kestrel AI (KSTR) — Deposit, Trade and Stake")
    # publishTime 1781928018413; the author's dateTimestamp 1781928000000
    assert format_time(first.published_at) == "2026-06-20T04:00:18.413Z"
    assert first.extra["date_timestamp"] == "2026-06-20T04:00:00.000Z"
    assert first.body_text == (
        "Bybit is excited to announce the listing of KSTR on our trading platform!"
    )
    assert first.body_html is None
    assert first.category == "new_crypto"
    assert first.extra["type_title"] == "New Listings"
    assert first.tags == ["Spot", "Spot Listings"]
    assert first.symbols is None  # tags are Bybit's labels, not tickers
    assert classify_event(first.title, first.event_type) == "listing"
    assert extract_symbols(first.title, first.body_text) == ["KSTR"]


def test_event_window_of_an_activity_goes_to_extra():
    activity = list_page("announcements_p1.json").records[2]

    assert activity.category == "latest_activities"
    assert classify_event(activity.title, activity.event_type) == "promotion"
    # publishTime 1781780526855, startDateTimestamp 1781863200000, end 1783072800000
    assert format_time(activity.published_at) == "2026-06-18T11:02:06.855Z"
    assert activity.extra["start_date_timestamp"] == "2026-06-19T10:00:00.000Z"
    assert activity.extra["end_date_timestamp"] == "2026-07-03T10:00:00.000Z"


def test_docs_spelling_of_the_event_window_is_accepted():
    item = json.loads((MIRROR / "announcements_p1.json").read_text())["result"]["list"][2]
    item["startDataTimestamp"] = item.pop("startDateTimestamp")
    item["endDataTimestamp"] = str(item.pop("endDateTimestamp"))

    record = bybit.SOURCE.parse_list(answer_with(item), bybit.SOURCE.list_url(1)).records[0]

    assert record.extra["start_date_timestamp"] == "2026-06-19T10:00:00.000Z"
    assert record.extra["end_date_timestamp"] == "2026-07-03T10:00:00.000Z"


def test_has_more_until_total_and_not_on_the_empty_page():
    assert list_page("announcements_p1.json").has_more is True
    last = list_page("announcements_p2.json", 2)
    assert (len(last.records), last.has_more) == (8, False)
    empty = list_page("announcements_p3.json", 3)
    assert (empty.records, empty.has_more) == ([], False)


def test_same_announcement_in_two_lists_gets_one_external_id():
    everything = (
        list_page("announcements_p1.json").records + list_page("announcements_p2.json", 2).records
    )
    delistings = list_page("announcements_delistings_p1.json", category="delistings")

    by_id = {r.external_id: r for r in everything}
    assert [r.external_id for r in delistings.records] == [
        "bltaacc505829f4676e",
        "bltc3b2215d49913d01",
        "bltd7139e5a1438b387",
    ]
    for record in delistings.records:
        assert by_id[record.external_id].identity == record.identity
        assert classify_event(record.title, record.event_type) == "delisting"
    assert delistings.has_more is False
    orbt = delistings.records[0]
    # publishTime 1781600556660
    assert format_time(orbt.published_at) == "2026-06-16T09:02:36.660Z"
    assert extract_symbols(orbt.title, orbt.body_text) == ["ORBT", "WHSK"]


def test_locale_and_slug_are_not_part_of_the_identity():
    item = json.loads((MIRROR / "announcements_p1.json").read_text())["result"]["list"][0]
    item["url"] = (
        "https://announcements.bybit.com/zh-TW/article/xin-bi-shang-xian-blt718732f7bd699da6/"
    )

    zh = bybit.SOURCE.parse_list(
        answer_with(item), bybit.SOURCE.list_url(1, language="zh"), language="zh"
    ).records[0]

    assert zh.external_id == "blt718732f7bd699da6"
    assert zh.language == "zh"


def test_url_without_a_cms_uid_falls_back_to_its_slug():
    item = {
        "title": "Old style",
        "url": "https://announcements.bybit.com/en-US/article/old-style/",
        "publishTime": 1781928018413,
        "type": {"title": "Brand new", "key": "brand_new"},
    }

    record = bybit.SOURCE.parse_list(answer_with(item), bybit.SOURCE.list_url(1)).records[0]

    assert record.external_id == "old-style"
    assert (record.category, record.event_type) == ("brand_new", None)  # unknown type accepted


def test_list_urls_match_the_mirror_routes():
    assert bybit.SOURCE.list_url(2, category="delistings") == (
        "https://api.bybit.com/v5/announcements/index?locale=en-US&type=delistings&page=2&limit=20"
    )
    assert mirror_file(MIRROR, bybit.SOURCE.list_url(2, category="delistings")) == (
        "announcements_delistings_p2.json"
    )
    assert mirror_file(MIRROR, bybit.SOURCE.list_url(3)) == "announcements_p3.json"
    assert "locale=zh-TW" in bybit.SOURCE.list_url(1, language="zh")


@pytest.mark.parametrize(
    ("answer", "rate_limited"),
    [
        ({"retCode": 10006, "retMsg": "Too many visits!", "result": {}}, True),
        ({"retCode": "10006", "retMsg": "Too many visits!", "result": {}}, True),
        ({"retCode": 10001, "retMsg": "params error", "result": {}}, False),
    ],
)
def test_failure_envelope_raises_envelope_error(answer, rate_limited):
    url = bybit.SOURCE.list_url(1)
    with pytest.raises(EnvelopeError) as caught:
        bybit.SOURCE.parse_list(json.dumps(answer), url)
    assert caught.value.rate_limited is rate_limited
    assert caught.value.code == str(answer["retCode"])
    assert caught.value.message == answer["retMsg"]


def test_success_code_given_as_a_string_is_accepted():
    body = json.dumps({"retCode": "0", "retMsg": "OK", "result": {"total": 0, "list": []}})
    assert bybit.SOURCE.parse_list(body, bybit.SOURCE.list_url(1)).has_more is False


def test_malformed_json_raises_parse_error():
    with pytest.raises(ParseError, match="not JSON"):
        bybit.SOURCE.parse_list(b"", bybit.SOURCE.list_url(1))
    with pytest.raises(ParseError, match=r"result\.list"):
        bybit.SOURCE.parse_list(b'{"retCode":0,"result":[]}', bybit.SOURCE.list_url(1))


def test_unreadable_item_is_listed_as_unusable_and_logged(caplog):
    items = json.loads((MIRROR / "announcements_p1.json").read_text())["result"]["list"][:3]
    del items[0]["publishTime"]
    del items[0]["dateTimestamp"]
    items[1]["title"] = "  "

    with caplog.at_level(logging.WARNING, logger="crawler.sources.parsing"):
        page = bybit.SOURCE.parse_list(answer_with(*items), bybit.SOURCE.list_url(1))

    assert [r.external_id for r in page.records] == ["blt3f847d5965dd5a1e"]
    assert [u.index for u in page.unusable] == [0, 1]
    assert "publishTime" in page.unusable[0].reason
    assert "no title" in page.unusable[1].reason
    assert len(caplog.records) == 2


def test_item_without_publish_time_is_dated_by_its_date_timestamp():
    items = json.loads((MIRROR / "announcements_p1.json").read_text())["result"]["list"][:2]
    date_timestamp = items[0]["dateTimestamp"]
    del items[0]["publishTime"]

    page = bybit.SOURCE.parse_list(answer_with(*items), bybit.SOURCE.list_url(1))

    first, second = page.records
    assert not page.unusable
    assert format_time(first.published_at) == format_time(parse_time(date_timestamp))
    assert first.extra["time_source"] == "dateTimestamp"
    assert second.extra["time_source"] == "publishTime"


def test_page_of_only_unreadable_items_raises_parse_error():
    with pytest.raises(ParseError, match="none of the"):
        bybit.SOURCE.parse_list(answer_with({"title": "no url"}), bybit.SOURCE.list_url(1))
