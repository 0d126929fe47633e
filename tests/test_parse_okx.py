"""OKX parse layer on the saved mirror payloads: list records, paging, envelopes."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest

from archive.normalize import classify_event, extract_symbols, format_time
from archive.records import ParseError
from crawler.sources import okx
from crawler.sources.parsing import EnvelopeError, ListPage
from tests.helpers import FIXTURES, mirror_file

MIRROR = FIXTURES / "okx"
FETCHED = datetime(2026, 6, 20, 12, 0, tzinfo=UTC)


def list_page(name: str, page: int = 1, category: str | None = None) -> ListPage:
    url = okx.SOURCE.list_url(page, category=category)
    assert mirror_file(MIRROR, url) == name
    return okx.SOURCE.parse_list((MIRROR / name).read_bytes(), url)


def answer_with(*details: dict) -> str:
    return json.dumps({"code": "0", "msg": "", "data": [{"details": details, "totalPage": "1"}]})


def test_list_items_become_records_with_utc_ms_times():
    page = list_page("announcements_p1.json")

    first = page.records[0]
    assert len(page.records) == 20
    assert (first.source, first.kind, first.language) == ("okx", "announcement", "en")
    assert first.external_id == "okx-to-list-kestrel-ai-kstr-for-spot-trading"
    assert first.title == "OKX to list Kestrel AI (KSTR) for spot trading"
    assert first.url == "https://www.okx.com/help/okx-to-list-kestrel-ai-kstr-for-spot-trading"
    # pTime "1781943327799" is the first publication; businessPTime "1781943180000" is shown.
    assert format_time(first.published_at) == "2026-06-20T08:15:27.799Z"
    assert first.extra["business_ptime"] == "2026-06-20T08:13:00.000Z"
    assert first.updated_at is None
    assert first.category == "announcements-new-listings"
    assert classify_event(first.title, first.event_type) == "listing"
    assert first.symbols is None
    assert extract_symbols(first.title, first.body_text) == ["KSTR"]
    assert first.body_html is None
    assert first.body_text is None  # the API gives no body


def test_list_keeps_the_order_given_newest_first():
    records = (
        list_page("announcements_p1.json").records + list_page("announcements_p2.json", 2).records
    )

    times = [r.published_at for r in records]
    assert times == sorted(times, reverse=True)
    assert len({r.external_id for r in records}) == 33


def test_category_hints_give_the_stored_event_types():
    records = {r.external_id: r for r in list_page("announcements_p1.json").records}

    def event(slug: str) -> str:
        return classify_event(records[slug].title, records[slug].event_type)

    assert event("okx-to-delist-orbt-prsm-and-whsk-spot-trading-pairs") == "delisting"
    assert event("okx-will-support-the-polkadot-dot-network-upgrade-and-hard-fork") == (
        "maintenance"
    )
    assert event("okx-jumpstart-stake-okb-to-mine-nimbus-chain-nimb") == "promotion"
    delisting = records["okx-to-delist-orbt-prsm-and-whsk-spot-trading-pairs"]
    assert extract_symbols(delisting.title, delisting.body_text) == ["ORBT", "PRSM", "WHSK"]


def test_unknown_ann_type_is_accepted_without_a_hint():
    record = next(
        r for r in list_page("announcements_p2.json", 2).records if r.category == "latest-events"
    )

    assert record.event_type is None
    # pTime "1779363141708"
    assert format_time(record.published_at) == "2026-05-21T11:32:21.708Z"
    assert classify_event(record.title, record.event_type) == "promotion"


def test_has_more_until_total_page_and_not_on_the_empty_page():
    assert list_page("announcements_p1.json").has_more is True
    last = list_page("announcements_p2.json", 2)
    assert (len(last.records), last.has_more) == (13, False)
    empty = list_page("announcements_p3.json", 3)
    assert (empty.records, empty.has_more) == ([], False)


def test_same_announcement_in_two_lists_gets_one_external_id():
    everything = list_page("announcements_p1.json").records
    delistings = list_page(
        "announcements_delistings_p1.json", category="announcements-delistings"
    ).records

    slugs = {r.external_id: r.identity for r in everything}
    assert len(delistings) == 3
    for record in delistings:
        if record.external_id in slugs:
            assert slugs[record.external_id] == record.identity
    assert delistings[0].external_id in slugs
    empty = list_page("announcements_delistings_p2.json", 2, "announcements-delistings")
    assert (empty.records, empty.has_more) == ([], False)


def test_locale_in_the_url_is_not_part_of_the_identity():
    slug = "okx-to-list-kestrel-ai-kstr-for-spot-trading"
    item = {
        "annType": "announcements-new-listings",
        "title": "欧易上线 KSTR",
        "pTime": 1781943327799,
    }
    zh = okx.SOURCE.parse_list(
        answer_with(item | {"url": f"https://www.okx.com/zh-hans/help/{slug}"}),
        okx.SOURCE.list_url(1, language="zh"),
        language="zh",
    ).records[0]

    assert zh.external_id == slug
    assert zh.language == "zh"
    assert format_time(zh.published_at) == "2026-06-20T08:15:27.799Z"  # a number, not a string


def test_list_urls_match_the_mirror_routes():
    assert okx.SOURCE.list_url(2) == "https://www.okx.com/api/v5/support/announcements?page=2"
    assert mirror_file(MIRROR, okx.SOURCE.list_url(3)) == "announcements_p3.json"
    assert mirror_file(MIRROR, okx.SOURCE.list_url(1, category="announcements-delistings")) == (
        "announcements_delistings_p1.json"
    )
    assert okx.SOURCE.headers("zh") == {"Accept-Language": "zh-CN"}
    with pytest.raises(ValueError, match="ja"):
        okx.SOURCE.list_url(1, language="ja")


@pytest.mark.parametrize(
    ("answer", "rate_limited"),
    [
        ({"code": "50011", "msg": "Too Many Requests", "data": []}, True),
        ({"code": 50011, "msg": "Too Many Requests", "data": []}, True),
        ({"code": "51000", "msg": "Parameter annType error", "data": []}, False),
    ],
)
def test_failure_envelope_raises_envelope_error(answer, rate_limited):
    url = okx.SOURCE.list_url(1)
    with pytest.raises(EnvelopeError) as caught:
        okx.SOURCE.parse_list(json.dumps(answer), url)
    assert caught.value.rate_limited is rate_limited
    assert caught.value.code == str(answer["code"])
    assert caught.value.message == answer["msg"]


def test_success_code_given_as_a_number_is_accepted():
    page = okx.SOURCE.parse_list(
        json.dumps({"code": 0, "msg": "", "data": [{"details": [], "totalPage": "1"}]}),
        okx.SOURCE.list_url(1),
    )
    assert page.records == []


def test_malformed_json_raises_parse_error():
    with pytest.raises(ParseError, match="not JSON"):
        okx.SOURCE.parse_list(b"<html>busy</html>", okx.SOURCE.list_url(1))
    with pytest.raises(ParseError, match="details"):
        okx.SOURCE.parse_list(b'{"code":"0","data":[{}]}', okx.SOURCE.list_url(1))


def test_unreadable_item_is_skipped_and_logged(caplog):
    good = {"annType": "x", "title": "T", "url": "https://www.okx.com/help/t", "pTime": "1"}
    body = answer_with(good | {"pTime": ""}, good | {"url": ""}, good | {"pTime": "1781943327799"})

    with caplog.at_level(logging.WARNING, logger="crawler.sources.okx"):
        page = okx.SOURCE.parse_list(body, okx.SOURCE.list_url(1))

    assert [r.external_id for r in page.records] == ["t"]
    assert len(caplog.records) == 2


def test_page_of_only_unreadable_items_raises_parse_error():
    with pytest.raises(ParseError, match="none of the"):
        okx.SOURCE.parse_list(answer_with({"title": "no url"}), okx.SOURCE.list_url(1))
