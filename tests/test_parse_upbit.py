"""Upbit on the saved mirror payloads: list and detail records, pinned notices, KST times,
Markdown bodies, envelopes; and the navigator's decisions in process (detail requests,
paging, what a known notice needs), fed the mirror's answers."""

from __future__ import annotations

import copy
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from archive.db import make_engine, open_archive
from archive.normalize import format_time, prepare
from archive.records import ParseError, RawResponse
from archive.store import Store
from archive.symbols import category_event
from crawler.sources import upbit
from crawler.sources.parsing import EnvelopeError, ListPage
from crawler.spiders.api import UpbitAnnouncementsSpider
from tests.helpers import FIXTURES, drain, feed, mirror_body, mirror_file, requests, spider_on

MIRROR = FIXTURES / "upbit"
SOURCE = upbit.SOURCE
PINNED = "776782191"  # the mirror's pinned notice, in fixed_notices of every page
FIRST = SOURCE.list_url(1, language="ko")


def load(name: str) -> dict[str, Any]:
    return json.loads((MIRROR / name).read_text())


def list_page(name: str, page: int = 1, category: str | None = None) -> ListPage:
    url = SOURCE.list_url(page, category=category, language="ko")
    assert mirror_file(MIRROR, url) == name
    return SOURCE.parse_list((MIRROR / name).read_bytes(), url, "ko")


def detail(uuid: str, answer: dict[str, Any] | None = None, listed=None):
    url = SOURCE.detail_url(uuid, "ko")
    body = json.dumps(answer) if answer is not None else mirror_body(MIRROR, url)
    return SOURCE.parse_detail(body, url, "ko", listed)


def answer_with(*notices: dict[str, Any], pinned: tuple[dict[str, Any], ...] = ()) -> str:
    data = {"total_pages": 1, "total_count": len(notices), "notices": list(notices)}
    return json.dumps({"success": True, "data": data | {"fixed_notices": list(pinned)}})


def notice(uuid: str) -> dict[str, Any]:
    for name in ("announcements_p1.json", "announcements_p2.json"):
        for item in load(name)["data"]["notices"]:
            if item["uuid"] == uuid:
                return item
    raise AssertionError(uuid)


# --- list -----------------------------------------------------------------------------------


def test_first_page_gives_the_pinned_notice_then_the_page_with_utc_ms_times():
    page = list_page("announcements_p1.json")

    assert len(page.records) == 21  # the pinned notice and 20 notices
    pinned, first = page.records[0], page.records[1]
    assert pinned.external_id == PINNED
    assert format_time(pinned.published_at) == "2026-03-02T01:00:00.000Z"  # first_listed_at
    assert (first.source, first.kind, first.language) == ("upbit", "announcement", "ko")
    assert first.external_id == "685177330"  # the uuid, not the internal id 6203
    assert first.url == "https://www.upbit.com/service_center/notice?id=685177330"
    assert first.title == "라벤더(LVDR) KRW, USDT 마켓 디지털 자산 추가"
    # 2026-06-19T16:05:31+09:00
    assert format_time(first.published_at) == "2026-06-19T07:05:31.000Z"
    assert first.updated_at is None  # never updated: listed_at is first_listed_at
    assert (first.category, first.event_type) == ("거래", None)  # the title says listing
    assert first.extra == {"listed_at": "2026-06-19T07:05:31.000Z", "notice_id": 6203}
    assert (first.body_html, first.body_text) == (None, None)  # the detail has the body


def test_times_are_first_publication_in_kst_and_listed_at_is_the_update():
    records = {r.external_id: r for r in list_page("announcements_p1.json").records}

    redated = records["617145553"]  # 2026-06-05T18:00 first, re-dated 2026-06-18T10:30
    assert format_time(redated.published_at) == "2026-06-05T09:00:00.000Z"
    assert format_time(redated.updated_at) == "2026-06-18T01:30:00.000Z"
    assert redated.extra["listed_at"] == "2026-06-18T01:30:00.000Z"
    # Published before 09:00 KST: the UTC date is the day before.
    assert format_time(records["646208062"].published_at) == "2026-06-08T23:15:00.000Z"
    assert format_time(records["160231646"].published_at) == "2026-06-07T15:30:12.000Z"
    assert "time_source" not in redated.extra


def test_a_notice_without_first_listed_at_is_dated_by_listed_at_and_says_so():
    (record,) = [
        r for r in list_page("announcements_p2.json", 2).records if r.external_id == "978845179"
    ]
    assert format_time(record.published_at) == "2026-05-24T02:25:00.000Z"
    assert record.extra["time_source"] == "listed_at"
    assert record.updated_at is None


def test_a_time_without_a_zone_is_read_in_kst():
    item = notice("685177330") | {"first_listed_at": "2026-06-19 16:05:31"}
    record = SOURCE.parse_list(answer_with(item), FIRST, "ko").records[0]
    assert format_time(record.published_at) == "2026-06-19T07:05:31.000Z"


def test_titles_have_entities_decoded():
    records = {r.external_id: r for r in list_page("announcements_p1.json").records}
    assert records["732861395"].title == "[이벤트] 솔라리스(SLRS) 거래지원 기념 거래 & 입금 이벤트"
    assert records["866581433"].title == "NFT 드롭: 서울 라이트 페스티벌 컬렉션 Q&A 안내"


def test_pages_go_on_until_total_pages_and_pinned_notices_come_from_the_first_only():
    first, second = list_page("announcements_p1.json"), list_page("announcements_p2.json", 2)
    past = list_page("announcements_p3.json", 3)

    assert first.has_more is True
    assert (len(second.records), second.has_more) == (13, False)  # page 2 of 2
    assert PINNED not in {r.external_id for r in second.records}
    assert (past.records, past.has_more) == ([], False)  # no notices: the pinned one neither
    ids = [r.external_id for r in first.records + second.records]
    assert len(ids) == len(set(ids)) == load("announcements_p1.json")["data"]["total_count"] + 1


def test_a_short_page_before_total_pages_still_asks_for_the_next():
    data = load("announcements_p1.json")
    data["data"]["notices"] = data["data"]["notices"][:5]
    page = SOURCE.parse_list(json.dumps(data), FIRST, "ko")
    assert page.has_more is True  # page 1 of 2: never infer the end from a short page


def test_the_same_notice_in_a_category_list_is_the_same_record():
    everything = {
        r.external_id: r
        for name, page in (("announcements_p1.json", 1), ("announcements_p2.json", 2))
        for r in list_page(name, page).records
    }
    trade = list_page("announcements_trade_p1.json", category="trade")

    assert (len(trade.records), trade.has_more) == (11, False)  # no pinned notice here
    for record in trade.records:
        assert record == everything[record.external_id]
        assert record.category == "거래"
    assert list_page("announcements_trade_p2.json", 2, "trade").records == []


def test_list_urls_match_the_mirror_routes_and_send_korean_without_origin():
    assert SOURCE.list_url(1, language="ko") == (
        "https://api-manager.upbit.com/api/v1/announcements?os=web&page=1&per_page=20&category=all"
    )
    assert SOURCE.list_url(2, category="trade", language="ko").endswith(
        "?os=web&page=2&per_page=20&category=trade"
    )
    assert SOURCE.headers("ko") == {"Accept-Language": "ko-KR"}
    assert SOURCE.detail_url("685177330", "ko") == (
        "https://api-manager.upbit.com/api/v1/announcements/685177330"
    )
    assert mirror_file(MIRROR, SOURCE.detail_url("685177330", "ko")) == "details/685177330.json"
    with pytest.raises(ValueError, match=r"upbit takes page sizes 1, 2, .*, 20, not 21"):
        SOURCE.list_url(1, language="ko", size=21)
    with pytest.raises(ValueError, match="no 'en' announcements"):
        SOURCE.list_url(1, language="en")


def test_every_category_reads_as_its_event_type_where_the_store_reads_the_label():
    for category in SOURCE.categories.values():
        assert category_event(category.name) == category.event_type, category.name
    records = {r.external_id: r for r in list_page("announcements_p1.json").records}
    assert (records["204018273"].category, records["204018273"].event_type) == (
        "입출금",
        "maintenance",
    )
    assert records["732861395"].event_type == "promotion"
    item = notice("685177330") | {"category": "새 분류"}
    record = SOURCE.parse_list(answer_with(item), FIRST, "ko").records[0]
    assert (record.category, record.event_type) == ("새 분류", None)


def test_a_notice_without_uuid_is_keyed_on_its_id_and_says_so():
    item = {k: v for k, v in notice("685177330").items() if k != "uuid"}
    record = SOURCE.parse_list(answer_with(item), FIRST, "ko").records[0]
    assert record.external_id == "6203"
    assert record.url == "https://www.upbit.com/service_center/notice?id=6203"
    assert record.extra["id_source"] == "id"
    # The detail answers by id as by uuid; the listed id is kept.
    archived = detail("6203", listed=record)
    assert (archived.external_id, archived.extra["id_source"]) == ("6203", "id")


def test_badges_are_never_stored_and_do_not_change_the_content_hash():
    item = notice("685177330")
    flipped = item | {"need_new_badge": not item["need_new_badge"], "need_update_badge": True}
    records = [SOURCE.parse_list(answer_with(i), FIRST, "ko").records[0] for i in (item, flipped)]
    assert records[0] == records[1]
    answer = json.loads(mirror_body(MIRROR, SOURCE.detail_url("685177330", "ko")))
    badged = copy.deepcopy(answer)
    badged["data"] |= {"need_new_badge": False, "need_update_badge": True}
    plain, changed = detail("685177330", answer), detail("685177330", badged)
    assert prepare(plain).content_hash == prepare(changed).content_hash
    assert not any("badge" in key for key in plain.extra)


# --- detail ---------------------------------------------------------------------------------


def test_detail_becomes_the_archived_record_with_its_markdown_body():
    listed = list_page("announcements_p1.json").records[1]
    record = detail("685177330", listed=listed)

    assert (record.external_id, record.title, record.url) == (
        listed.external_id,
        listed.title,
        listed.url,
    )
    assert record.published_at == listed.published_at
    assert record.extra == listed.extra
    assert record.body_html == (
        "<p>업비트 KRW, USDT 마켓에 라벤더(LVDR)가 추가됩니다.</p>"
        "<table><thead><tr><th>디지털 자산</th><th>마켓</th><th>네트워크</th>"
        "<th>거래지원 개시 시점</th></tr></thead><tbody><tr><td>라벤더(LVDR)</td>"
        "<td>KRW, USDT</td><td>Ethereum</td><td>2026-06-19 19:00 KST 예정</td></tr>"
        "</tbody></table><ul><li>안내된 네트워크 (LVDR-Ethereum)로만 입출금이 지원됩니다.</li>"
        "<li>거래지원 개시 시점은 입금 현황에 따라 변경될 수 있습니다.</li>"
        "<li>거래지원 개시 직후 5분간은 지정가 매수 주문만 가능합니다.</li></ul>"
        "<p>디지털 자산 투자에 앞서 백서와 공시를 반드시 확인해 주시기 바랍니다.</p>"
    )
    assert record.body_text == (
        "업비트 KRW, USDT 마켓에 라벤더(LVDR)가 추가됩니다.\n\n"
        "디지털 자산 | 마켓 | 네트워크 | 거래지원 개시 시점\n\n"
        "라벤더(LVDR) | KRW, USDT | Ethereum | 2026-06-19 19:00 KST 예정\n\n"
        "- 안내된 네트워크 (LVDR-Ethereum)로만 입출금이 지원됩니다.\n"
        "- 거래지원 개시 시점은 입금 현황에 따라 변경될 수 있습니다.\n"
        "- 거래지원 개시 직후 5분간은 지정가 매수 주문만 가능합니다.\n\n"
        "디지털 자산 투자에 앞서 백서와 공시를 반드시 확인해 주시기 바랍니다."
    )


def test_markdown_emphasis_and_entities_are_read_not_kept_as_marks():
    record = detail("617145553")
    assert record.body_html.startswith("<p><strong>[업데이트]</strong> 거래지원 종료 일시가")
    assert record.body_text.startswith("[업데이트] 거래지원 종료 일시가 2026-06-26 15:00 (KST)")
    assert "**" not in record.body_text
    assert "거래 & 입금 이벤트를 진행합니다." in detail("732861395").body_text


def test_every_saved_detail_parses_with_a_body():
    for path in sorted((MIRROR / "details").glob("*.json")):
        record = detail(path.stem)
        assert record.external_id == path.stem
        assert record.body_text, path.name
        assert record.body_html.startswith("<p>"), path.name


def test_body_links_are_kept_and_unsafe_markup_dropped():
    answer = load(f"details/{PINNED}.json")
    answer["data"]["body"] = (
        "자세한 내용은 [심사 기준](https://upbit.com/service_center/guide)을 확인하세요.\n\n"
        '<table><tr><td onclick="x()">A</td><td><a href="javascript:alert(1)">B</a></td></tr>'
        "</table>\n\n<script>alert(1)</script>\n\n- 하나\n- 둘"
    )
    record = detail(PINNED, answer)
    assert '<a href="https://upbit.com/service_center/guide">심사 기준</a>' in record.body_html
    assert "onclick" not in record.body_html
    assert "javascript" not in record.body_html
    assert "alert" not in record.body_html
    assert [link.url for link in record.links] == ["https://upbit.com/service_center/guide"]
    assert record.body_text.endswith("A | B\n\n- 하나\n- 둘")


def test_detail_for_another_notice_than_listed_raises_parse_error():
    listed = list_page("announcements_p1.json").records[2]  # 713784376
    with pytest.raises(ParseError, match="detail is for 6203/685177330, not the listed 713784376"):
        detail("685177330", listed=listed)


def test_detail_keeps_optional_fields_and_falls_back_to_the_listing():
    answer = load("details/978845179.json")
    answer["data"] |= {"attachments": [{"name": "a.pdf"}], "body_url": "https://x.example/b"}
    listed = next(
        r for r in list_page("announcements_p2.json", 2).records if r.external_id == "978845179"
    )
    record = detail("978845179", answer, listed)
    assert record.extra["attachments"] == [{"name": "a.pdf"}]
    assert record.extra["body_url"] == "https://x.example/b"
    assert record.extra["time_source"] == "listed_at"
    del answer["data"]["listed_at"]
    del answer["data"]["category"]
    bare = detail("978845179", answer, listed)
    assert (bare.published_at, bare.category) == (listed.published_at, "디지털 자산")
    assert bare.extra["listed_at"] == listed.extra["listed_at"]  # what the next list meets


def test_detail_without_a_body_has_none():
    answer = load("details/685177330.json")
    answer["data"]["body"] = ""
    assert (detail("685177330", answer).body_html, detail("685177330", answer).body_text) == (
        None,
        None,
    )
    answer["data"]["body"] = {"markdown": "x"}
    with pytest.raises(ParseError, match="not Markdown"):
        detail("685177330", answer)


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "code", "message"),
    [
        (
            {"error": {"name": "validation_error", "message": "per_page must be at most 20"}},
            "validation_error",
            "per_page must be at most 20",
        ),
        ({"error": {"message": "Internal Server Error"}}, "error", "Internal Server Error"),
        ({"error": "bad request"}, "error", "bad request"),
        (
            {"success": False, "data": None, "message": "unavailable"},
            "success=false",
            "unavailable",
        ),
    ],
)
def test_error_envelope_raises_envelope_error(answer, code, message):
    body = json.dumps(answer)
    parses = (
        lambda: SOURCE.parse_list(body, FIRST, "ko"),
        lambda: SOURCE.parse_detail(body, SOURCE.detail_url("685177330", "ko"), "ko"),
    )
    for parse in parses:
        with pytest.raises(EnvelopeError) as caught:
            parse()
        assert (caught.value.code, caught.value.message) == (code, message)
        assert caught.value.rate_limited is False


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"Too many API requests.", "not JSON"),
        (b"[]", "not an object"),
        (b'{"success": true}', "data is not an object"),
        (b'{"success": true, "data": {"notices": null}}', r"data\.notices is not a list"),
        (b'{"success": true, "data": {"notices": [], "fixed_notices": {}}}', "fixed_notices"),
    ],
)
def test_malformed_answers_raise_parse_error(body, reason):
    with pytest.raises(ParseError, match=reason):
        SOURCE.parse_list(body, SOURCE.list_url(1, language="ko"), "ko")


def test_unusable_items_are_skipped_and_logged(caplog):
    items = [notice("685177330"), notice("713784376"), notice("204018273")]
    del items[0]["uuid"], items[0]["id"]
    items[1]["first_listed_at"] = items[1]["listed_at"] = "soon"
    with caplog.at_level(logging.WARNING, logger="crawler.sources.parsing"):
        page = SOURCE.parse_list(answer_with(*items), FIRST, "ko")

    assert [r.external_id for r in page.records] == ["204018273"]
    assert [u.reason for u in page.unusable] == [
        "no uuid or id",
        "713784376: no readable time (first_listed_at 'soon', listed_at 'soon')",
    ]
    with pytest.raises(ParseError, match="none of the 1 items"):
        SOURCE.parse_list(answer_with({"title": "no id"}), FIRST, "ko")


# --- reparse and the navigator ----------------------------------------------------------------


def raw(url: str) -> RawResponse:
    return RawResponse(url, 200, "application/json", mirror_body(MIRROR, url), datetime.now(UTC))


def test_stored_answers_reparse_in_korean():
    (record,) = UpbitAnnouncementsSpider.parse_snapshot(raw(SOURCE.detail_url("617145553", "ko")))
    assert (record.external_id, record.language) == ("617145553", "ko")
    assert record.body_text.startswith("[업데이트]")
    # A list answer gives no records: what it lists is archived from the details.
    assert UpbitAnnouncementsSpider.parse_snapshot(raw(SOURCE.list_url(1, language="ko"))) == []


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "annals.db"


def spider(db: Path, **arguments: str) -> UpbitAnnouncementsSpider:
    made = spider_on(UpbitAnnouncementsSpider, db, **arguments)
    made.run.start(made.name)
    return made


def page_output(made: UpbitAnnouncementsSpider, page: int = 1, body: bytes | None = None) -> list:
    (start,) = drain(made.start())
    request = made.list_request(start.cb_kwargs["listing"], page, {}) if page > 1 else start
    return feed(request, body or mirror_body(MIRROR, request.meta["annals_url"]))


def split(output: list) -> tuple[list[str], list[str]]:
    """(ids whose detail is asked, list URLs asked)."""
    asked = [r.meta["annals_url"] for r in requests(output)]
    details = [url.rsplit("/", 1)[1] for url in asked if SOURCE.is_detail(url)]
    return details, [url for url in asked if not SOURCE.is_detail(url)]


def test_the_first_request_asks_korean_without_an_origin_header(db):
    (request,) = drain(spider(db).start())
    assert request.meta["annals_url"] == SOURCE.list_url(1, language="ko")
    assert request.headers.get("Accept-Language") == b"ko-KR"
    assert b"Origin" not in request.headers
    assert UpbitAnnouncementsSpider.default_languages == ("ko",)


def test_each_listed_notice_gets_one_detail_request_and_the_pinned_one_once(db):
    made = spider(db)
    details, following = split(page_output(made))
    assert details == [r.external_id for r in list_page("announcements_p1.json").records]
    assert following == [SOURCE.list_url(2, language="ko")]

    details, following = split(page_output(made, 2))
    assert PINNED not in details
    assert len(details) == 13
    assert following == []  # page 2 of 2


def archive_listed(db: Path, *notices: dict[str, Any]) -> None:
    """An archive that holds these notices as their list records say, after a finished run."""
    url = f"sqlite:///{db}"
    open_archive(url, create=True).dispose()
    store = Store(make_engine(url))
    run = store.start_run(UpbitAnnouncementsSpider.name)
    store.write(SOURCE.parse_list(answer_with(*notices), FIRST, "ko").records)
    store.finish_run(run, "finished", {})


def test_a_known_notice_is_asked_again_only_when_its_title_or_listed_at_moved(db):
    page = load("announcements_p1.json")
    archive_listed(db, *page["data"]["fixed_notices"], *page["data"]["notices"])
    notices = page["data"]["notices"]
    notices[0]["need_new_badge"] = not notices[0]["need_new_badge"]  # a badge: not a change
    notices[1]["listed_at"] = "2026-06-20T09:00:00+09:00"  # edited
    notices[2]["title"] += " (완료)"

    made = spider(db)
    made.run.recheck = timedelta(days=36500)  # every notice is young: within the window
    details, following = split(page_output(made, body=json.dumps(page).encode()))

    # Young notices are not asked again for their age: the list says what changed.
    assert details == [notices[1]["uuid"], notices[2]["uuid"]]
    assert following == []  # nothing new on the page


def test_a_redated_notice_last_on_a_page_reaches_back_to_its_listed_at(db):
    page = list_page("announcements_p1.json")
    made = spider(db)
    redated = next(r for r in page.records if r.external_id == "617145553")
    assert made.reached([*page.records[:3], redated]) == redated.updated_at
    assert made.reached(page.records) == page.records[-1].published_at
    assert made.reached([]) is None
