"""Bitfinex parse layer on the saved mirror payloads: posts read by position, the end
cursor, error arrays; and the navigator's walk over them in process."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from archive.normalize import clean_title, format_time, html_to_text
from archive.records import Link, ParseError, RawResponse
from crawler.sources import bitfinex
from crawler.sources.parsing import EnvelopeError, ListPage
from crawler.spiders.api import BitfinexAnnouncementsSpider, BitgetAnnouncementsSpider
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

MIRROR = FIXTURES / "bitfinex"
SOURCE = bitfinex.SOURCE


def fetch(url: str) -> ListPage:
    name = mirror_file(MIRROR, url)
    assert name is not None, url
    return SOURCE.parse_list((MIRROR / name).read_bytes(), url)


def posts(name: str) -> list[list]:
    return json.loads((MIRROR / name).read_text())


def walk() -> list[tuple[str | None, ListPage]]:
    """Every page the module docstring says a walk asks: by the end cursor, until a page
    brings no post not seen before."""
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


def answer(*items: list) -> str:
    return json.dumps(list(items))


def test_posts_become_records_read_by_position_with_utc_ms_times():
    page = fetch(SOURCE.list_url())

    first = page.records[0]
    assert len(page.records) == 20
    assert (first.source, first.kind, first.language) == ("bitfinex", "announcement", "en")
    assert first.external_id == "1181"
    assert first.url == "https://www.bitfinex.com/posts/1181"
    assert first.title == "Bitfinex Lists Arbor (ARBR)"
    assert format_time(first.published_at) == "2026-06-20T09:12:41.337Z"  # MTS 1781946761337
    assert first.body_html.startswith("<p>We are pleased to announce that Arbor (ARBR)")
    assert "Trading pairs: ARBR/USD and ARBR/USD₮." in first.body_text
    assert first.extra == {}
    assert (first.category, first.event_type) == (None, None)


def test_every_field_of_every_post_comes_from_its_position():
    listed = {r.external_id: r for _, page in walk() for r in page.records}
    for post in posts("posts_hist_p1.json") + posts("posts_hist_p2.json"):
        record = listed[str(post[0])]
        assert record.published_at == datetime.fromtimestamp(post[1] / 1000, UTC)
        assert record.title == post[3]
        assert record.url == f"https://www.bitfinex.com/posts/{post[0]}"
        if post[4]:
            assert record.body_text == html_to_text(post[4])
    assert len(listed) == 31


def test_title_entities_are_decoded_by_the_archive_once():
    records = {r.external_id: r for r in fetch(SOURCE.list_url()).records}

    raw = records["1178"].title
    assert raw == "Scheduled Maintenance &amp; Upgrade: Kiln (KILN) Network"
    assert clean_title(raw) == "Scheduled Maintenance & Upgrade: Kiln (KILN) Network"
    assert clean_title("Rates &amp;amp; fees") == "Rates &amp; fees"  # decoded once, not twice


def test_an_empty_or_null_body_is_no_body():
    (empty,) = [r for _, page in walk() for r in page.records if r.external_id == "1141"]
    assert (empty.body_html, empty.body_text) == (None, None)

    post = posts("posts_hist_p1.json")[0]
    for body in (None, "", "   "):
        record = SOURCE.parse_list(answer([*post[:4], body, *post[5:]]), SOURCE.list_url())
        assert (record.records[0].body_html, record.records[0].body_text) == (None, None)


def test_body_html_is_sanitized_and_plain_text_kept_as_text():
    post = posts("posts_hist_p1.json")[0]
    markup = (
        '<p onclick="x()">New <a href="/posts/1152">pair</a> '
        '<a href="javascript:alert(1)">here</a></p><script>alert(1)</script>'
    )
    (record,) = SOURCE.parse_list(answer([*post[:4], markup]), SOURCE.list_url()).records
    assert "script" not in record.body_html
    assert "onclick" not in record.body_html
    assert "javascript" not in record.body_html
    assert record.body_text == "New pair here"
    assert record.links == [
        Link("https://www.bitfinex.com/posts/1152", "bitfinex", "announcement", "1152")
    ]

    (plain,) = SOURCE.parse_list(answer([*post[:4], "Just text."]), SOURCE.list_url()).records
    assert (plain.body_html, plain.body_text) == (None, "Just text.")


def test_posts_are_read_by_index_never_by_length():
    post = posts("posts_hist_p1.json")[0]
    short = post[:5]  # no placeholders after the body
    longer = [*post, 17, "more", {"x": 1}]  # the real array may be longer
    filled = [*post[:2], 42, *post[3:5], 99, 100]  # placeholders holding values
    parsed = [
        SOURCE.parse_list(answer(p), SOURCE.list_url()).records[0] for p in (short, longer, filled)
    ]
    assert {(r.external_id, r.title, r.published_at, r.body_html) for r in parsed} == {
        (parsed[0].external_id, post[3], parsed[0].published_at, parsed[0].body_html)
    }
    assert all(r.extra == {} for r in parsed)


def test_end_cursor_walk_reads_every_post_once_and_stops_on_the_repeat():
    seen = walk()

    assert [name for name, _ in seen] == [
        "posts_hist_p1.json",
        "posts_hist_p2.json",
        "posts_hist_p3.json",
    ]
    ids = [r.external_id for _, page in seen for r in page.records]
    assert len(ids) == 20 + 12 + 1
    assert len(set(ids)) == 31
    # Each page starts with the last post of the one before: the cursor is inclusive.
    assert seen[1][1].records[0].external_id == seen[0][1].records[-1].external_id == "1152"
    assert [r.external_id for r in seen[2][1].records] == ["1135"]


def test_next_cursor_is_the_last_posts_mts_and_steps_back_when_stuck():
    first = fetch(SOURCE.list_url())
    assert SOURCE.paging.next_window(first) == {"end_time": 1779963630405}

    last = fetch(SOURCE.list_url(end_time=1778234400000))
    assert SOURCE.paging.next_window(last, {"end_time": 1778234400000}) == {
        "end_time": 1778234399999
    }
    past = fetch(SOURCE.list_url(end_time=1778234399999))
    assert past.records == []
    assert SOURCE.paging.next_window(past, {"end_time": 1778234399999}) is None


def test_list_urls_match_the_mirror_routes():
    assert SOURCE.list_url() == "https://api-pub.bitfinex.com/v2/posts/hist?type=1&limit=20"
    assert SOURCE.list_url(end_time=1779963630405) == (
        "https://api-pub.bitfinex.com/v2/posts/hist?type=1&end=1779963630405&limit=20"
    )
    assert mirror_file(MIRROR, SOURCE.list_url(end_time=1779963630404)) == "posts_hist_p2_excl.json"
    assert mirror_file(MIRROR, SOURCE.list_url(size=8)) == "posts_hist_p1.json"
    with pytest.raises(ValueError, match="page sizes 8, 20"):
        SOURCE.list_url(size=50)
    with pytest.raises(ValueError, match="next_window"):
        SOURCE.list_url(2)


def test_requests_send_bitfinexs_origin_and_referer(tmp_path: Path):
    spider = spider_on(BitfinexAnnouncementsSpider, tmp_path / "annals.db")
    (request,) = drain(spider.start())
    assert request.headers["Origin"] == b"https://www.bitfinex.com"
    assert request.headers["Referer"] == b"https://www.bitfinex.com/"
    assert spider.settings.getfloat("DOWNLOAD_DELAY") == 6.0  # ten requests a minute
    assert 500 in request.meta["handle_httpstatus_list"]
    # Its 500s carry error arrays: read once, not retried as server faults; other
    # sources keep retrying them.
    assert 500 not in spider.settings.getlist("RETRY_HTTP_CODES")
    assert 502 in [int(code) for code in spider.settings.getlist("RETRY_HTTP_CODES")]
    other = spider_on(BitgetAnnouncementsSpider, tmp_path / "other.db")
    assert 500 in [int(code) for code in other.settings.getlist("RETRY_HTTP_CODES")]


@pytest.mark.parametrize("full", ["0", "1"])
def test_the_navigator_follows_the_cursor_and_stops_on_the_repeated_post(tmp_path, full):
    spider = spider_on(BitfinexAnnouncementsSpider, tmp_path / "annals.db", full=full)
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

    # The last post's page (the repeat alone) ends the walk: end=MTS-1 is never asked.
    assert asked == ["posts_hist_p1.json", "posts_hist_p2.json", "posts_hist_p3.json"]
    assert len(archived) == len(set(archived)) == 31


@pytest.mark.parametrize(
    ("body", "code", "message", "rate_limited"),
    [
        (["error", 11010, "ratelimit: error"], "11010", "ratelimit: error", True),
        (["error", 20060, "maintenance"], "20060", "maintenance", True),
        (["error", 10020, "limit: invalid"], "10020", "limit: invalid", False),
        (["error", 10001], "10001", "", False),
        ({"error": "ERR_RATE_LIMIT"}, "ERR_RATE_LIMIT", "", True),
        ({"error": "ERR_GENERIC", "message": "bad"}, "ERR_GENERIC", "bad", False),
    ],
)
def test_error_answers_raise_envelope_error(body, code, message, rate_limited):
    url = SOURCE.list_url()
    with pytest.raises(EnvelopeError) as caught:
        SOURCE.parse_list(json.dumps(body), url)
    assert (caught.value.code, caught.value.message) == (code, message)
    assert caught.value.rate_limited is rate_limited


def test_an_empty_list_is_the_end_not_an_error():
    page = SOURCE.parse_list(b"[]", SOURCE.list_url(end_time=1))
    assert (page.records, page.has_more) == ([], False)


def test_malformed_answers_raise_parse_error():
    with pytest.raises(ParseError, match="not JSON"):
        SOURCE.parse_list(b"[", SOURCE.list_url())
    with pytest.raises(ParseError, match="not a list of posts"):
        SOURCE.parse_list(b'{"posts": []}', SOURCE.list_url())
    with pytest.raises(ParseError, match="not a list of posts"):
        SOURCE.parse_list(b'"ok"', SOURCE.list_url())


def test_unusable_posts_are_left_out_and_listed(caplog):
    good, *others = posts("posts_hist_p1.json")[:4]
    no_id = [None, *others[0][1:]]
    bad_time = [others[1][0], "yesterday", *others[1][2:]]
    no_title = [others[2][0], others[2][1], None, None, "<p>x</p>"]
    with caplog.at_level(logging.WARNING, logger="crawler.sources.parsing"):
        page = SOURCE.parse_list(answer(good, no_id, bad_time, no_title, "post"), SOURCE.list_url())

    assert [r.external_id for r in page.records] == [str(good[0])]
    assert [u.index for u in page.unusable] == [1, 2, 3, 4]
    assert "no post id" in page.unusable[0].reason
    assert "no readable time" in page.unusable[1].reason
    assert "no title" in page.unusable[2].reason
    assert "not an object" in page.unusable[3].reason


def test_a_page_of_only_unusable_posts_raises_parse_error():
    with pytest.raises(ParseError, match="none of the"):
        SOURCE.parse_list(answer([None, None, None, "title"]), SOURCE.list_url())


def test_a_stored_answer_reparses_to_the_same_records():
    url = SOURCE.list_url(end_time=1779963630405)
    body = (MIRROR / "posts_hist_p2.json").read_bytes()
    raw = RawResponse(url=url, status=200, content_type="application/json", body=body)

    reparsed = BitfinexAnnouncementsSpider.parse_snapshot(raw)

    assert [r.identity for r in reparsed] == [r.identity for r in fetch(url).records]
    assert {r.language for r in reparsed} == {"en"}
    with pytest.raises(EnvelopeError):
        BitfinexAnnouncementsSpider.parse_snapshot(
            RawResponse(
                url=url, status=500, content_type=None, body=b'["error",20060,"maintenance"]'
            )
        )
