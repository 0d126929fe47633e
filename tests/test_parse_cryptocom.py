"""Crypto.com parse layer on the saved mirror payloads: records, bodies, filters, envelopes."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest

from archive.normalize import classify_event, format_time, prepare
from archive.records import ParseError, RawResponse
from archive.symbols import category_event
from crawler.cli import DEMO_SPIDERS, MIRRORS
from crawler.sources import cryptocom
from crawler.sources.parsing import EnvelopeError, ListPage
from crawler.spiders.api import CryptocomAnnouncementsSpider
from tests.helpers import FIXTURES, mirror_file

MIRROR = FIXTURES / "cryptocom"
URL = cryptocom.SOURCE.list_url()
CATEGORIES = ("list", "delist", "event", "product", "system")


def answer(name: str = "announcements_all.json") -> dict:
    return json.loads((MIRROR / name).read_text())


def items(name: str = "announcements_all.json") -> list[dict]:
    return answer(name)["result"]["data"]


def parse(data: list[dict] | dict | str, url: str = URL) -> ListPage:
    if isinstance(data, list):
        data = {"id": 0, "method": "public/get-announcements", "code": 0, "result": {"data": data}}
    body = data if isinstance(data, str) else json.dumps(data)
    return cryptocom.SOURCE.parse_list(body, url)


def by_id() -> dict:
    return {r.external_id: r for r in parse(items()).records}


def test_list_urls_ask_the_unfiltered_list_or_one_category():
    assert URL == "https://api.crypto.com/v1/public/get-announcements"
    assert mirror_file(MIRROR, URL) == "announcements_all.json"
    for category in CATEGORIES:
        url = cryptocom.SOURCE.list_url(category=category)
        assert url == f"{URL}?category={category}"
        assert mirror_file(MIRROR, url) == f"announcements_{category}.json"
    assert cryptocom.SOURCE.headers() == {}
    with pytest.raises(ValueError, match="whole list"):
        cryptocom.SOURCE.list_url(2)


def test_items_become_records_with_utc_ms_times_and_html_bodies():
    page = parse(items())

    assert len(page.records) == len(items())
    assert page.has_more is False
    first = page.records[0]
    assert (first.source, first.kind, first.language) == ("cryptocom", "announcement", "en")
    assert first.external_id == "6a4f49f22c6bbca1e6bf34dd"
    assert first.title == "New Listing: 1000PEPE Perpetual Is Now Live on Crypto.com Exchange"
    # announced_at 1783584000000
    assert format_time(first.published_at) == "2026-07-09T08:00:00.000Z"
    assert first.url == ("https://crypto.com/exchange/announcements/list/6a4f49f22c6bbca1e6bf34dd")
    assert first.body_html is not None
    assert "<table>" in first.body_html
    assert first.body_text is not None
    assert first.body_text.startswith("Crypto.com Exchange will list the 1000PEPE perpetual")
    assert "1000PEPEUSD-PERP | 1,000 PEPE | 50x" in first.body_text
    assert (first.category, first.event_type) == ("list", "listing")
    assert first.extra == {"product_types": ["Derivative"], "instrument_name": "1000PEPEUSD-PERP"}
    assert classify_event(first.title, first.event_type) == "listing"


def test_system_items_keep_their_window_and_impacted_services_in_extra():
    system = by_id()["6a4b1af3275d14ee7963bf64"]
    assert (system.category, system.event_type) == ("system", "maintenance")
    assert system.url.endswith("/announcements/system/6a4b1af3275d14ee7963bf64")
    # start_time 1783648800000, end_time 1783656000000
    assert system.extra["start_time"] == "2026-07-10T02:00:00.000Z"
    assert system.extra["end_time"] == "2026-07-10T04:00:00.000Z"
    assert system.extra["product_types"] == ["Spot", "Margin", "Derivative"]
    assert system.extra["impacted_params"]["spot_trading_impacted"] == "PARTIAL"
    assert system.extra["impacted_params"]["login_impacted"] == "BAU"
    assert "instrument_name" not in system.extra


def test_announced_at_as_a_string_reads_as_the_number():
    item = items()[0]
    as_text = parse([item | {"announced_at": str(item["announced_at"])}]).records[0]
    assert as_text.published_at == parse([item]).records[0].published_at


def test_every_category_reads_as_its_event_type_in_the_store():
    for category in cryptocom.SOURCE.categories.values():
        for stored_as in (category.key, category.name):
            assert category_event(stored_as) == category.event_type, stored_as


def test_each_filtered_answer_gives_the_unfiltered_records():
    everything = by_id()
    seen = set()
    for category in CATEGORIES:
        url = cryptocom.SOURCE.list_url(category=category)
        for record in parse(answer(f"announcements_{category}.json"), url).records:
            assert record.category == category
            assert (
                prepare(record).content_hash == prepare(everything[record.external_id]).content_hash
            )
            assert record.url == everything[record.external_id].url
            seen.add(record.external_id)
    assert seen == set(everything)


def test_titles_have_entities_decoded_when_stored():
    record = next(r for r in parse(items()).records if "&amp;" in r.title)
    assert "&" in (prepare(record).title or "")
    assert "&amp;" not in (prepare(record).title or "")


def test_body_is_sanitized_and_its_links_kept():
    item = items()[0] | {
        "content": '<p onclick="x()">See <a href="https://crypto.com/exchange/x">x</a></p>'
        "<script>alert(1)</script>"
    }
    record = parse([item]).records[0]
    assert record.body_html is not None
    assert "script" not in record.body_html
    assert "onclick" not in record.body_html
    assert [link.url for link in record.links] == ["https://crypto.com/exchange/x"]
    plain = parse([items()[0] | {"content": "No tags here."}]).records[0]
    assert (plain.body_html, plain.body_text) == (None, "No tags here.")
    empty = parse([items()[0] | {"content": None}]).records[0]
    assert (empty.body_html, empty.body_text) == (None, None)


def test_an_item_without_a_category_still_gets_a_url():
    record = parse([items()[0] | {"category": None}]).records[0]
    assert record.url == "https://crypto.com/exchange/announcements/list/6a4f49f22c6bbca1e6bf34dd"
    assert (record.category, record.event_type) == (None, None)


@pytest.mark.parametrize(
    ("code", "message", "rate_limited"),
    [
        (42901, "TOO_MANY_REQUESTS", True),
        ("42901", "TOO_MANY_REQUESTS", True),
        (40001, "BAD_REQUEST", False),
        (40003, "INVALID_REQUEST", False),
        (50001, "ERR_INTERNAL", False),
    ],
)
def test_failure_envelope_raises_envelope_error(code, message, rate_limited):
    body = {"id": 0, "method": "public/get-announcements", "code": code, "message": message}
    with pytest.raises(EnvelopeError) as caught:
        parse(body)
    assert caught.value.rate_limited is rate_limited
    assert (caught.value.code, caught.value.message) == (str(code), message)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{", "not JSON"),
        ('{"result": {"data": []}}', "no code"),
        ('{"code": 0, "result": {}}', "result.data is not a list"),
        ('{"code": 0, "result": {"data": {}}}', "result.data is not a list"),
        ('{"code": 0}', "result.data is not a list"),
    ],
)
def test_wrong_shapes_raise_parse_error(body, reason):
    with pytest.raises(ParseError, match=reason):
        parse(body)


def test_an_empty_list_parses_to_nothing_for_the_spider_to_refuse():
    page = parse([])
    assert (page.records, page.has_more, page.unusable) == ([], False, [])


def test_unusable_items_are_left_out_and_listed(caplog):
    batch = items()[:4]
    del batch[0]["id"]
    batch[1]["announced_at"] = "soon"
    batch[2]["title"] = "  "

    with caplog.at_level(logging.WARNING, logger="crawler.sources.parsing"):
        page = parse(batch)

    assert [r.external_id for r in page.records] == [batch[3]["id"]]
    assert [u.index for u in page.unusable] == [0, 1, 2]
    assert "announced_at" in page.unusable[1].reason
    with pytest.raises(ParseError, match="none of the"):
        parse(batch[:3])


def test_reparse_of_a_stored_answer_gives_the_same_records():
    url = cryptocom.SOURCE.list_url(category="system")
    raw = RawResponse(
        url=url,
        status=200,
        content_type="application/json",
        body=(MIRROR / "announcements_system.json").read_bytes(),
        fetched_at=datetime(2026, 7, 9, 9, 0, tzinfo=UTC),
    )
    records = CryptocomAnnouncementsSpider.parse_snapshot(raw)
    assert [r.external_id for r in records] == [i["id"] for i in items("announcements_system.json")]
    assert {r.language for r in records} == {"en"}


def test_the_demo_serves_the_tested_mirror():
    assert DEMO_SPIDERS["cryptocom"] == ("cryptocom_announcements",)
    assert MIRROR.resolve() == (MIRRORS / "cryptocom").resolve()
