"""Deribit parse layer on the saved mirror payloads: announcements, the start_timestamp
cursor, JSON-RPC errors; and the navigator's walk over them in process."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from archive.normalize import format_time, html_to_text
from archive.records import ParseError, RawResponse
from crawler.sources import deribit
from crawler.sources.parsing import EnvelopeError, ListPage
from crawler.spiders.api import DeribitAnnouncementsSpider
from tests.helpers import (
    FIXTURES,
    drain,
    feed,
    mirror_body,
    mirror_file,
    records,
    requests,
    spider_on,
)

MIRROR = FIXTURES / "deribit"
SOURCE = deribit.SOURCE


def fetch(url: str) -> ListPage:
    name = mirror_file(MIRROR, url)
    assert name is not None, url
    return SOURCE.parse_list((MIRROR / name).read_bytes(), url)


def items(name: str) -> list[dict]:
    return json.loads((MIRROR / name).read_text())["result"]


def walk() -> list[tuple[str | None, ListPage]]:
    """Every page the module docstring says a walk asks: by start_timestamp, until a page
    brings no announcement not seen before."""
    seen: list[tuple[str | None, ListPage]] = []
    ids: set[str] = set()
    window: dict[str, int] | None = {}
    while window is not None:
        url = SOURCE.list_url(**window)
        page = fetch(url)
        seen.append((mirror_file(MIRROR, url), page))
        unseen = {r.external_id for r in page.records} - ids
        if not unseen:
            break
        ids |= unseen
        window = SOURCE.paging.next_window(page, window)
        assert len(seen) < 10, "the walk does not end"
    return seen


def answer(*result: dict) -> str:
    return json.dumps({"jsonrpc": "2.0", "result": list(result), "usIn": 1, "usOut": 2})


def test_announcements_become_records_with_utc_ms_times():
    page = fetch(SOURCE.list_url())

    first = page.records[0]
    assert len(page.records) == 20
    assert (first.source, first.kind, first.language) == ("deribit", "announcement", "en")
    assert first.external_id == "1781942417482"
    assert first.title == "Scheduled maintenance – Tuesday 23 June 2026, 08:00 UTC"
    assert format_time(first.published_at) == "2026-06-20T08:00:17.482Z"
    assert first.url == (
        "https://www.deribit.com/api/v2/public/get_announcements"
        "?start_timestamp=1781942417482&count=1"
    )
    assert first.body_html.startswith("<p>Dear traders,</p>")
    assert first.body_text.startswith("Dear traders,\n\nDeribit will be")
    assert first.extra == {"important": True, "confirmation": False}
    assert (first.category, first.event_type) == (None, None)


def test_the_id_is_identity_and_never_the_time():
    records = {r.external_id: r for r in fetch(SOURCE.list_url()).records}

    # Created before it was published: its id is below its publication_timestamp.
    terms = records["1780306200000"]
    assert terms.title == "Deribit Terms of Service update"
    assert format_time(terms.published_at) == "2026-06-01T11:00:00.000Z"  # 1780311600000
    assert terms.url.endswith("?start_timestamp=1780311600000&count=1")
    assert terms.extra == {"important": False, "confirmation": True}


@pytest.mark.parametrize(
    ("value", "expected"), [(1781942417482, "1781942417482"), (17.0, "17"), ("42", "42")]
)
def test_an_integer_valued_id_is_kept_as_text(value, expected):
    item = {**items("announcements_p1.json")[0], "id": value}
    assert SOURCE.parse_list(answer(item), SOURCE.list_url()).records[0].external_id == expected


def test_every_field_of_every_announcement_is_read():
    listed = {r.external_id: r for _, page in walk() for r in page.records}
    for item in items("announcements_p1.json") + items("announcements_p2.json"):
        record = listed[str(item["id"])]
        assert record.published_at == datetime.fromtimestamp(
            item["publication_timestamp"] / 1000, UTC
        )
        assert record.title == item["title"]
        assert record.body_text == html_to_text(item["body"])
        assert record.extra["important"] is item["important"]
        assert record.extra.get("confirmation") is item.get("confirmation")
    assert len(listed) == 30


def test_confirmation_is_optional():
    (oldest,) = fetch(SOURCE.list_url(end_time=1778482800000)).records
    assert oldest.extra == {"important": True}


def test_body_html_is_sanitized_and_plain_text_kept_as_text():
    item = items("announcements_p1.json")[0]
    markup = '<p style="x">Read <a href="https://www.deribit.com/kb">this</a></p><script>1</script>'
    (record,) = SOURCE.parse_list(answer({**item, "body": markup}), SOURCE.list_url()).records
    assert record.body_html == '<p>Read <a href="https://www.deribit.com/kb">this</a></p>'
    assert record.body_text == "Read this"

    for body, expected in (("Plain words.", (None, "Plain words.")), ("", (None, None))):
        (plain,) = SOURCE.parse_list(answer({**item, "body": body}), SOURCE.list_url()).records
        assert (plain.body_html, plain.body_text) == expected


def test_start_timestamp_walk_reads_every_item_once_and_stops_on_the_repeat():
    seen = walk()

    assert [name for name, _ in seen] == [
        "announcements_p1.json",
        "announcements_p2.json",
        "announcements_p3.json",
    ]
    ids = [r.external_id for _, page in seen for r in page.records]
    assert len(ids) == 20 + 11 + 1
    assert len(set(ids)) == 30
    assert seen[1][1].records[0].external_id == seen[0][1].records[-1].external_id


def test_next_cursor_is_the_last_items_time_and_steps_back_when_stuck():
    first = fetch(SOURCE.list_url())
    assert SOURCE.paging.next_window(first) == {"end_time": 1779788727000}

    last = fetch(SOURCE.list_url(end_time=1778482800000))
    assert SOURCE.paging.next_window(last, {"end_time": 1778482800000}) == {
        "end_time": 1778482799999
    }
    past = fetch(SOURCE.list_url(end_time=1778482799999))
    assert past.records == []
    assert SOURCE.paging.next_window(past, {"end_time": 1778482799999}) is None


def test_list_urls_ask_the_largest_count_and_match_the_mirror_routes():
    base = "https://www.deribit.com/api/v2/public/get_announcements"
    assert SOURCE.list_url() == f"{base}?count=50"
    assert SOURCE.list_url(end_time=1779788727000) == (
        f"{base}?start_timestamp=1779788727000&count=50"
    )
    assert mirror_file(MIRROR, SOURCE.list_url(end_time=1779788726999)) == (
        "announcements_p2_excl.json"
    )
    assert mirror_file(MIRROR, SOURCE.list_url(size=20)) == "announcements_p1.json"
    with pytest.raises(ValueError, match="not 51"):
        SOURCE.list_url(size=51)


@pytest.mark.parametrize("full", ["0", "1"])
def test_the_navigator_follows_the_cursor_and_stops_on_the_repeated_item(tmp_path: Path, full):
    spider = spider_on(DeribitAnnouncementsSpider, tmp_path / "annals.db", full=full)
    spider.run.start(spider.name)
    (request,) = drain(spider.start())
    asked, archived = [], []
    while request is not None:
        url = request.meta["annals_url"]
        asked.append(mirror_file(MIRROR, url))
        output = feed(request, mirror_body(MIRROR, url))
        archived += [r.external_id for r in records(output)]
        following = requests(output)
        assert len(following) <= 1
        assert len(asked) < 10
        request = following[0] if following else None

    # The oldest item's page (the repeat alone) ends the walk: timestamp - 1 is never asked.
    assert asked == ["announcements_p1.json", "announcements_p2.json", "announcements_p3.json"]
    assert len(archived) == len(set(archived)) == 30


def test_requests_read_json_rpc_errors_of_http_400_one_at_a_time(tmp_path: Path):
    spider = spider_on(DeribitAnnouncementsSpider, tmp_path / "annals.db")
    (request,) = drain(spider.start())
    assert 400 in request.meta["handle_httpstatus_list"]
    assert spider.settings.getfloat("DOWNLOAD_DELAY") == 0.5
    assert spider.settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN") == 1


def error(code: int, message: str, reason: str | None = None) -> dict:
    data = {"reason": reason} if reason else {}
    return {"jsonrpc": "2.0", "error": {"code": code, "message": message, "data": data}, "usIn": 1}


@pytest.mark.parametrize(
    ("body", "code", "message", "rate_limited"),
    [
        (error(10028, "too_many_requests"), "10028", "too_many_requests", True),
        (
            error(10066, "too_many_concurrent_requests"),
            "10066",
            "too_many_concurrent_requests",
            True,
        ),
        (error(11051, "system_maintenance"), "11051", "system_maintenance", True),
        (
            error(-32602, "Invalid params", "must be between 1 and 50"),
            "-32602",
            "Invalid params (must be between 1 and 50)",
            False,
        ),
        (error(13009, "unauthorized"), "13009", "unauthorized", False),
        ({"jsonrpc": "2.0", "error": "broken"}, "", "broken", False),
    ],
)
def test_error_objects_raise_envelope_error(body, code, message, rate_limited):
    url = SOURCE.list_url()
    with pytest.raises(EnvelopeError) as caught:
        SOURCE.parse_list(json.dumps(body), url)
    assert (caught.value.code, caught.value.message) == (code, message)
    assert caught.value.rate_limited is rate_limited


def test_malformed_answers_raise_parse_error():
    with pytest.raises(ParseError, match="not JSON"):
        SOURCE.parse_list(b"{", SOURCE.list_url())
    with pytest.raises(ParseError, match="no JSON-RPC object"):
        SOURCE.parse_list(b"[]", SOURCE.list_url())
    with pytest.raises(ParseError, match="result is not a list"):
        SOURCE.parse_list(b'{"jsonrpc":"2.0","result":{"items":[]}}', SOURCE.list_url())


def test_unusable_items_are_left_out_and_listed(caplog):
    good, *others = items("announcements_p1.json")[:5]
    with caplog.at_level(logging.WARNING, logger="crawler.sources.parsing"):
        page = SOURCE.parse_list(
            answer(
                good,
                {**others[0], "id": None},
                {**others[1], "id": True},
                {**others[2], "publication_timestamp": "soon"},
                {**others[3], "title": "  "},
            ),
            SOURCE.list_url(),
        )

    assert [r.external_id for r in page.records] == [str(good["id"])]
    reasons = [u.reason for u in page.unusable]
    assert "no id" in reasons[0]
    assert "no id" in reasons[1]
    assert "no readable time" in reasons[2]
    assert "no title" in reasons[3]


def test_a_page_of_only_unusable_items_raises_parse_error():
    with pytest.raises(ParseError, match="none of the"):
        SOURCE.parse_list(answer({"title": "no id"}), SOURCE.list_url())


def test_a_stored_answer_reparses_to_the_same_records():
    url = SOURCE.list_url(end_time=1779788727000)
    body = (MIRROR / "announcements_p2.json").read_bytes()
    raw = RawResponse(url=url, status=200, content_type="application/json", body=body)

    reparsed = DeribitAnnouncementsSpider.parse_snapshot(raw)

    assert [r.identity for r in reparsed] == [r.identity for r in fetch(url).records]
    assert [r.extra for r in reparsed] == [r.extra for r in fetch(url).records]
