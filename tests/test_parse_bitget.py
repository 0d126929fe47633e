"""Bitget parse layer on the saved mirror payloads: records, time-window paging, envelopes."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest

from archive.normalize import classify_event, extract_symbols, format_time
from archive.records import ParseError
from crawler.sources import bitget
from crawler.sources.parsing import EnvelopeError, ListPage
from tests.helpers import FIXTURES, mirror_file

MIRROR = FIXTURES / "bitget"
FETCHED = datetime(2026, 6, 18, 17, 0, tzinfo=UTC)


def fetch(url: str) -> ListPage:
    name = mirror_file(MIRROR, url)
    assert name is not None, url
    return bitget.SOURCE.parse_list((MIRROR / name).read_bytes(), url)


def walk(category: str | None = None) -> list[tuple[str | None, ListPage]]:
    """Every window a spider asks for, as the module docstring says it should."""
    seen: list[tuple[str | None, ListPage]] = []
    window: dict[str, int] | None = {}
    while window is not None:
        url = bitget.SOURCE.list_url(1, category=category, **window)
        page = fetch(url)
        seen.append((mirror_file(MIRROR, url), page))
        window = bitget.SOURCE.paging.next_window(page, window)
        assert len(seen) < 10, "the walk does not end"
    return seen


def answer_with(*items: dict) -> str:
    return json.dumps({"code": "00000", "msg": "success", "requestTime": 1, "data": items})


def test_list_items_become_records_with_utc_ms_times():
    page = fetch(bitget.SOURCE.list_url())

    first = page.records[0]
    assert len(page.records) == 10
    assert (first.source, first.kind, first.language) == ("bitget", "announcement", "en")
    assert first.external_id == "12560604549035"
    assert first.title.startswith("[Initial Listing] Bitget Will List Kestrel AI (KSTR)")
    # cTime "1781758411543"
    assert format_time(first.published_at) == "2026-06-18T04:53:31.543Z"
    assert first.url == "https://www.bitget.com/en/support/articles/12560604549035"
    assert first.body_text == (
        "Bitget will list Kestrel AI (KSTR) in the Innovation Zone. Trading starts 2026-06-19 "
        "10:00 (UTC)."
    )
    assert first.category == "coin_listings"
    assert first.extra["ann_sub_type"] == "spot"
    assert classify_event(first.title, first.event_type) == "listing"
    assert first.symbols is None
    assert extract_symbols(first.title, first.body_text) == ["KSTR"]


def test_category_hints_give_the_stored_event_types():
    records = {r.external_id: r for r in fetch(bitget.SOURCE.list_url()).records}

    def event(ann_id: str) -> str:
        return classify_event(records[ann_id].title, records[ann_id].event_type)

    assert event("12560604524167") == "delisting"
    assert event("12560604525853") == "maintenance"
    assert event("12560604535609") == "promotion"
    assert "ann_sub_type" not in records["12560604535609"].extra  # "" is no sub type


def test_window_walk_reads_every_announcement_once_and_ends_on_an_empty_page():
    seen = walk()

    assert [name for name, _ in seen] == [
        "announcements_p1.json",
        "announcements_p2_incl.json",
        "announcements_p3_incl.json",
        "announcements_p4_incl.json",
        "announcements_p4.json",
    ]
    ids = [r.external_id for _, page in seen for r in page.records]
    assert len(set(ids)) == 24
    assert [page.has_more for _, page in seen] == [True, True, True, True, False]
    oldest = min((r for _, page in seen for r in page.records), key=lambda r: r.published_at)
    # cTime "1779264312990"
    assert format_time(oldest.published_at) == "2026-05-20T08:05:12.990Z"


def test_next_window_ends_at_the_oldest_item_and_steps_back_when_stuck():
    first = fetch(bitget.SOURCE.list_url())
    # the page's oldest cTime is "1780815558942"
    assert bitget.SOURCE.paging.next_window(first) == {"end_time": 1780815558942}

    repeat = fetch(bitget.SOURCE.list_url(end_time=1779264312990))
    assert [r.external_id for r in repeat.records] == ["12560604414259"]
    assert bitget.SOURCE.paging.next_window(repeat, {"end_time": 1779264312990}) == {
        "end_time": 1779264312989
    }

    assert bitget.SOURCE.paging.next_window(ListPage(records=[], has_more=False)) is None


def test_next_window_keeps_a_start_and_stops_before_it():
    first = fetch(bitget.SOURCE.list_url())
    assert bitget.SOURCE.paging.next_window(first, {"start_time": 1780000000000}) == {
        "end_time": 1780815558942,
        "start_time": 1780000000000,
    }
    assert bitget.SOURCE.paging.next_window(first, {"start_time": 1781000000000}) is None


def test_same_announcement_in_two_filters_gets_one_external_id():
    listings = [r for _, page in walk("coin_listings") for r in page.records]
    everything = {r.external_id: r for _, page in walk() for r in page.records}

    assert len({r.external_id for r in listings}) == 10
    for record in listings:
        assert everything[record.external_id].identity == record.identity
        assert everything[record.external_id].category == record.category


def test_list_urls_match_the_mirror_routes():
    assert bitget.SOURCE.list_url(category="coin_listings", end_time=1779264312990) == (
        "https://api.bitget.com/api/v2/public/annoucements"
        "?language=en_US&annType=coin_listings&endTime=1779264312990"
    )
    assert (
        mirror_file(MIRROR, bitget.SOURCE.list_url(end_time=1780815558941))
        == "announcements_p2.json"
    )
    assert "language=zh_CN" in bitget.SOURCE.list_url(language="zh")
    with pytest.raises(ValueError, match="next_window"):
        bitget.SOURCE.list_url(2)


@pytest.mark.parametrize(
    ("answer", "rate_limited"),
    [
        ({"code": "429", "msg": "Too Many Requests", "requestTime": 1, "data": None}, True),
        ({"code": 429, "msg": "Too Many Requests", "requestTime": 1, "data": None}, True),
        ({"code": "40034", "msg": "Parameter does not exist", "requestTime": 1}, False),
    ],
)
def test_failure_envelope_raises_envelope_error(answer, rate_limited):
    url = bitget.SOURCE.list_url()
    with pytest.raises(EnvelopeError) as caught:
        bitget.SOURCE.parse_list(json.dumps(answer), url)
    assert caught.value.rate_limited is rate_limited
    assert caught.value.code == str(answer["code"])


def test_success_code_given_as_a_number_is_accepted():
    body = json.dumps({"code": 0, "msg": "success", "data": []})
    assert bitget.SOURCE.parse_list(body, bitget.SOURCE.list_url()).has_more is False


def test_malformed_json_raises_parse_error():
    with pytest.raises(ParseError, match="not JSON"):
        bitget.SOURCE.parse_list(b"{", bitget.SOURCE.list_url())
    with pytest.raises(ParseError, match="data is not a list"):
        bitget.SOURCE.parse_list(b'{"code":"00000","data":{}}', bitget.SOURCE.list_url())


def test_unreadable_item_is_skipped_and_logged(caplog):
    items = json.loads((MIRROR / "announcements_p1.json").read_text())["data"][:3]
    items[0]["cTime"] = "yesterday"
    del items[1]["annId"]

    with caplog.at_level(logging.WARNING, logger="crawler.sources.bitget"):
        page = bitget.SOURCE.parse_list(answer_with(*items), bitget.SOURCE.list_url())

    assert [r.external_id for r in page.records] == ["12560604535609"]
    assert len(caplog.records) == 2
    assert "cTime" in caplog.text


def test_page_of_only_unreadable_items_raises_parse_error():
    with pytest.raises(ParseError, match="none of the"):
        bitget.SOURCE.parse_list(answer_with({"annTitle": "no id"}), bitget.SOURCE.list_url())


def test_unknown_ann_type_is_accepted_without_a_hint():
    item = json.loads((MIRROR / "announcements_p1.json").read_text())["data"][0]
    item["annType"] = "brand_new"

    record = bitget.SOURCE.parse_list(answer_with(item), bitget.SOURCE.list_url()).records[0]

    assert (record.category, record.event_type) == ("brand_new", None)
