"""Kraken parse layer on the saved mirror payloads (WordPress REST posts): records, times,
entities, bodies, categories, paging and the end of the list, error objects, reparse."""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path

import pytest
from scrapy.http import TextResponse

from archive.normalize import format_time, html_to_text, prepare
from archive.records import ParseError, Quarantined, RawResponse
from crawler.sources import kraken
from crawler.sources.parsing import EnvelopeError, ListPage
from crawler.spiders.api import KrakenAnnouncementsSpider
from tests.helpers import FIXTURES, drain, mirror_body, mirror_file, output, records, spider_on

MIRROR = FIXTURES / "kraken"
RECORDED = 10  # the size the mirror's pages were recorded at (production asks 100)
PAGES = ("posts_p1.json", "posts_p2.json", "posts_p3.json")


def list_page(name: str, page: int = 1, size: int = RECORDED) -> ListPage:
    url = kraken.SOURCE.list_url(page, size=size)
    assert mirror_file(MIRROR, url) == name
    return kraken.SOURCE.parse_list((MIRROR / name).read_bytes(), url)


def recorded_posts() -> list[dict]:
    return [post for name in PAGES for post in json.loads((MIRROR / name).read_text())]


def post(post_id: int) -> dict:
    return copy.deepcopy(next(p for p in recorded_posts() if p["id"] == post_id))


def parse(*items: dict, url: str | None = None) -> ListPage:
    return kraken.SOURCE.parse_list(json.dumps(list(items)), url or kraken.SOURCE.list_url(1))


def one(item: dict):
    (record,) = parse(item).records
    return record


# --- records --------------------------------------------------------------------------------


def test_a_post_becomes_a_record_with_utc_ms_times_and_its_full_body():
    page = list_page("posts_p1.json")

    first = page.records[0]
    assert len(page.records) == 10
    assert (first.source, first.kind, first.language) == ("kraken", "announcement", "en")
    assert first.external_id == "41977"  # id is an integer in the API
    assert first.title == "CRVD is available for trading!"
    # date_gmt "2026-06-20T00:40:12"; date (California) is still June 19, 17:40
    assert format_time(first.published_at) == "2026-06-20T00:40:12.000Z"
    assert format_time(first.updated_at) == "2026-06-20T00:47:12.000Z"  # modified_gmt
    assert (
        first.url == "https://blog.kraken.com/product/asset-listings/crvd-is-available-for-trading"
    )
    assert first.body_html.startswith("<p>Corvid (CRVD) is now available for trading on Kraken!")
    assert first.body_text == html_to_text(first.body_html)  # the text of what is kept
    assert first.body_text.startswith("Corvid (CRVD) is now available for trading")
    assert (first.category, first.event_type) == ("asset-listings", "listing")
    assert first.extra == {
        "slug": "crvd-is-available-for-trading",
        "category_slugs": ["asset-listings"],
        "category_ids": [212],
        "tag_ids": [],
        "author_id": 31,
    }
    assert first.symbols is None


def test_every_recorded_post_is_read_with_its_own_link_and_date_gmt():
    by_id = {
        r.external_id: r for n, name in enumerate(PAGES, 1) for r in list_page(name, n).records
    }
    posts = recorded_posts()
    assert len(by_id) == len(posts) == 28
    for item in posts:
        record = by_id[str(item["id"])]
        assert record.url == item["link"]
        assert format_time(record.published_at) == item["date_gmt"] + ".000Z"
        assert record.body_html  # every post has a body


def test_the_body_is_the_content_not_the_excerpt_and_is_sanitized():
    item = post(41940)
    item["content"]["rendered"] = (
        '<p onclick="steal()">Margin <a href="https://support.kraken.com/x" style="c">live</a>'
        '</p>\n\n\n\n<script>alert(1)</script><ul class="wp-block-list"><li>GAS/USD</li></ul>'
        '<p><a href="javascript:alert(1)">bad</a></p>'
    )
    record = one(item)
    assert record.body_html == (
        '<p>Margin <a href="https://support.kraken.com/x">live</a></p>\n\n\n\n'
        "<ul><li>GAS/USD</li></ul><p><a>bad</a></p>"
    )
    assert [link.url for link in record.links] == ["https://support.kraken.com/x"]
    assert "[&hellip;]" not in record.body_html


def test_a_password_protected_post_has_no_body():
    item = post(41977)
    item["content"] = {"rendered": "", "protected": True}
    record = one(item)
    assert (record.body_html, record.body_text, record.extra["protected"]) == (None, None, True)


@pytest.mark.parametrize(
    ("rendered", "title"),
    [
        (
            "Kraken Pro&#8217;s new portfolio view is here",
            "Kraken Pro’s new portfolio view is here",
        ),
        ("Refer a friend &#8211; you both get $50", "Refer a friend – you both get $50"),
        ("Q&#038;A: &#8220;staking&#8221;  explained\n", "Q&A: “staking” explained"),
        ("Fees &amp; limits &lt;2026&gt;", "Fees & limits <2026>"),
    ],
)
def test_titles_have_entities_decoded_and_whitespace_normalized(rendered, title):
    item = post(41977)
    item["title"]["rendered"] = rendered
    assert one(item).title == title


def test_recorded_titles_with_entities_are_decoded():
    titles = {r.external_id: r.title for r in list_page("posts_p1.json").records}
    assert titles["41931"] == (
        "Kraken Pro: trailing stop limit orders arrive on mobile – what you need to know"
    )


# --- times ----------------------------------------------------------------------------------


def test_date_gmt_is_read_as_utc_and_date_is_never_used():
    item = post(41977)
    item["date"] = "2001-01-01T00:00:00"  # a local time without zone: ignored
    assert format_time(one(item).published_at) == "2026-06-20T00:40:12.000Z"


def test_the_repeated_local_hour_of_the_autumn_change_is_told_apart_by_date_gmt():
    # 2026-11-01 01:30 happens twice in California (PDT, then PST).
    first, second = post(41977), post(41962)
    first["date"] = second["date"] = "2026-11-01T01:30:00"
    first["date_gmt"], second["date_gmt"] = "2026-11-01T08:30:00", "2026-11-01T09:30:00"
    page = parse(second, first)
    assert [format_time(r.published_at) for r in page.records] == [
        "2026-11-01T09:30:00.000Z",
        "2026-11-01T08:30:00.000Z",
    ]


@pytest.mark.parametrize("date_gmt", [None, "", "0000-00-00T00:00:00", "soon"])
def test_a_post_without_a_readable_date_gmt_is_unusable_not_dated_by_date(date_gmt, caplog):
    bad = post(41977)
    bad["date_gmt"] = date_gmt
    with caplog.at_level(logging.WARNING):
        page = parse(bad, post(41962))
    assert [r.external_id for r in page.records] == ["41962"]
    (unusable,) = page.unusable
    assert unusable.index == 0
    assert "41977: no readable time" in unusable.reason


# --- identity -------------------------------------------------------------------------------


def test_the_id_is_the_identity_whatever_its_form_or_link():
    as_number, as_text, moved = post(41977), post(41977), post(41977)
    as_text["id"] = "41977"
    moved["link"] = "https://blog.kraken.com/news/crvd-is-available-for-trading"
    moved["slug"] = "crvd-is-available-for-trading"
    identities = {one(item).identity for item in (as_number, as_text, moved)}
    assert identities == {("kraken", "announcement", "41977", "en")}


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("id", None, "no integer id (None)"),
        ("id", True, "no integer id (True)"),
        ("id", "abc", "no integer id ('abc')"),
        ("title", {"rendered": "  "}, "41977: no title"),
        ("title", "CRVD", "41977: no title"),
    ],
)
def test_an_item_without_id_or_title_is_left_out_and_listed(field, value, reason, caplog):
    bad = post(41977)
    bad[field] = value
    with caplog.at_level(logging.WARNING):
        page = parse(bad, post(41962))
    assert [r.external_id for r in page.records] == ["41962"]
    assert [u.reason for u in page.unusable] == [reason]


def test_a_post_without_link_takes_its_guid_shortlink():
    item = post(41977)
    del item["link"]
    record = one(item)
    assert (record.url, record.extra["url_source"]) == ("https://blog.kraken.com/?p=41977", "guid")


def test_a_page_of_only_unusable_items_or_not_objects_raises_parse_error():
    bad = post(41977)
    bad["id"] = None
    with pytest.raises(ParseError, match="none of the 2 items could be read"):
        parse(bad, "not a post")


# --- categories -----------------------------------------------------------------------------


def test_the_category_is_the_permalinks_and_every_slug_and_id_is_kept():
    record = one(post(41940))
    assert record.url.startswith("https://blog.kraken.com/product/asset-listings/")
    assert (record.category, record.event_type) == ("asset-listings", "listing")
    assert record.extra["category_slugs"] == ["asset-listings", "margin"]
    assert record.extra["category_ids"] == [212, 215]
    categories = {
        r.external_id: (r.category, r.event_type) for r in list_page("posts_p1.json").records
    }
    assert categories["41931"] == ("kraken-pro", "product")
    assert categories["41918"] == ("news", "news")


def test_the_category_falls_back_to_the_classes_or_the_link():
    flat = post(41940)
    flat["link"] = "https://blog.kraken.com/expanded-margin-pairs"  # a %postname% permalink
    assert one(flat).category == "asset-listings"
    old = post(41940)
    del old["class_list"]  # WordPress before 6.5
    assert (one(old).category, one(old).extra["category_slugs"]) == ("asset-listings", [])
    nothing = post(41940)
    del nothing["class_list"]
    nothing["link"] = "https://blog.kraken.com/expanded-margin-pairs"
    assert (one(nothing).category, one(nothing).event_type) == (None, None)


def test_fields_that_change_without_an_edit_change_nothing_stored():
    before = one(post(41940))
    item = post(41940)
    item["sticky"] = True
    item["class_list"].insert(7, "sticky")
    item["comment_status"] = "open"
    item["_links"]["version-history"] = [{"count": 9, "href": "https://example.invalid/r"}]
    item["_links"]["replies"] = [{"embeddable": True, "href": "https://example.invalid/c"}]
    item["excerpt"]["rendered"] = "<p>Another summary [&hellip;]</p>"
    item["featured_media"] = 0
    item["modified_gmt"] = "2026-06-30T10:00:00"  # a save without an edit moves it
    after = one(item)
    assert prepare(after).content_hash == prepare(before).content_hash
    assert after.extra == before.extra


def test_a_post_answered_with_only_the_fields_asked_reads_the_same():
    # The mirror answers whole posts; WordPress answers only `_fields`.
    for item in recorded_posts():
        trimmed = {name: item[name] for name in kraken.FIELDS}
        assert one(trimmed) == one(item)


def test_an_edit_of_title_or_body_changes_the_content_hash():
    before = prepare(one(post(41940))).content_hash
    retitled, rewritten = post(41940), post(41940)
    retitled["title"]["rendered"] += " (updated)"
    rewritten["content"]["rendered"] = rewritten["content"]["rendered"].replace("3x", "5x")
    assert prepare(one(retitled)).content_hash != before
    assert prepare(one(rewritten)).content_hash != before


# --- paging and the end of the list ---------------------------------------------------------


def test_list_urls_ask_the_documented_maximum_and_match_the_mirror_routes():
    fields = "id%2Cdate_gmt%2Cmodified_gmt%2Clink%2Cguid%2Cslug%2Ctitle%2Ccontent%2Ccategories"
    assert kraken.SOURCE.list_url(2) == (
        "https://blog.kraken.com/wp-json/wp/v2/posts?order=desc&orderby=date"
        f"&_fields={fields}%2Ctags%2Cclass_list%2Cauthor&page=2&per_page=100"
    )
    for n, name in enumerate(PAGES, 1):
        assert mirror_file(MIRROR, kraken.SOURCE.list_url(n, size=RECORDED)) == name
    assert (
        mirror_file(MIRROR, kraken.SOURCE.list_url(4, size=RECORDED)) == "posts_invalid_page.json"
    )
    with pytest.raises(ValueError, match=r"kraken takes page sizes 1, 2, .*, 100, not 101"):
        kraken.SOURCE.list_url(1, size=101)


def test_every_page_with_posts_asks_for_the_next_even_a_short_one():
    """Only the 400 past the last page ends the list: a short page may be a cache's or a
    plugin's answer to a per_page it does not honour."""
    assert list_page("posts_p1.json").has_more is True
    assert list_page("posts_p2.json", 2).has_more is True
    last = list_page("posts_p3.json", 3)
    assert (len(last.records), last.has_more) == (len(recorded_posts()) - 20, True)


def test_the_mirror_answers_the_production_size_in_one_page():
    url = kraken.SOURCE.list_url(1)  # per_page=100, more than the mirror holds
    answer = json.loads(mirror_body(MIRROR, url))
    assert answer == recorded_posts()
    page = kraken.SOURCE.parse_list(mirror_body(MIRROR, url), url)
    assert (len(page.records), page.has_more) == (len(recorded_posts()), True)
    # The page after it holds nothing, which ends the list (as the 400 would).
    after = kraken.SOURCE.list_url(2)
    assert kraken.SOURCE.parse_list(mirror_body(MIRROR, after), after).has_more is False


def test_the_400_past_the_last_page_is_the_end_of_the_list_not_an_error():
    page = list_page("posts_invalid_page.json", 4)
    assert (page.records, page.has_more, page.unusable) == ([], False, [])


@pytest.mark.parametrize(
    "answer",
    [
        {"code": "rest_invalid_param", "message": "Invalid parameter(s): per_page",
         "data": {"status": 400, "params": {"per_page": "per_page must be between 1 (inclusive) and 100 (inclusive)"}}},
        {"code": "rest_forbidden", "message": "Sorry, you are not allowed to do that.", "data": {"status": 401}},
    ],
)  # fmt: skip
def test_any_other_error_object_is_a_refusal(answer):
    with pytest.raises(EnvelopeError) as caught:
        kraken.SOURCE.parse_list(json.dumps(answer), kraken.SOURCE.list_url(1))
    assert caught.value.code == answer["code"]
    assert caught.value.message == answer["message"]
    assert caught.value.rate_limited is False


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html><body>Bad Request</body></html>", "answer is not JSON"),
        (b'{"posts": []}', "answer is not an array of posts"),
        (b'"posts"', "answer is not an array of posts"),
    ],
)
def test_an_answer_that_is_no_array_of_posts_raises_parse_error(body, reason):
    with pytest.raises(ParseError, match=reason):
        kraken.SOURCE.parse_list(body, kraken.SOURCE.list_url(1))


def test_an_empty_array_ends_the_list():
    page = kraken.SOURCE.parse_list(b"[]", kraken.SOURCE.list_url(1))
    assert (page.records, page.has_more) == ([], False)


# --- the spider -----------------------------------------------------------------------------


def test_the_spider_asks_per_page_100_with_browser_headers_and_lets_400_through(tmp_path):
    spider = spider_on(KrakenAnnouncementsSpider, tmp_path / "annals.db")
    (request,) = drain(spider.start())
    assert request.meta["annals_url"] == kraken.SOURCE.list_url(1)
    assert request.meta["handle_httpstatus_list"] == [400]
    assert request.headers[b"Accept-Language"] == b"en-US,en;q=0.9"
    assert request.headers[b"User-Agent"].startswith(b"Mozilla/5.0")
    assert b"sec-ch-ua" in request.headers
    assert (spider.name, spider.languages) == ("kraken_announcements", ["en"])


def test_a_400_that_is_not_the_end_of_the_list_is_quarantined_as_refused(tmp_path):
    spider = spider_on(KrakenAnnouncementsSpider, tmp_path / "annals.db")
    spider.run.start(spider.name)
    (request,) = drain(spider.start())
    body = json.dumps({"code": "rest_invalid_param", "message": "Invalid parameter(s): page"})
    response = TextResponse(
        request.url, status=400, body=body.encode(), request=request,
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    (quarantined,) = output(request, response)
    assert isinstance(quarantined, Quarantined)
    assert "error answer code rest_invalid_param: Invalid parameter(s): page" in quarantined.error

    end = TextResponse(
        request.url, status=400, body=(MIRROR / "posts_invalid_page.json").read_bytes(),
        request=request, headers={"Content-Type": "application/json"},
    )  # fmt: skip
    # A first page past the end holds nothing: quarantined as an empty first page.
    assert not records(output(request, end))


def test_a_stored_answer_reparses_to_the_same_records():
    url = kraken.SOURCE.list_url(2, size=RECORDED)
    body = (MIRROR / "posts_p2.json").read_bytes()
    raw = RawResponse(url=url, status=200, content_type="application/json", body=body)
    reparsed = KrakenAnnouncementsSpider.parse_snapshot(raw)
    assert reparsed == kraken.SOURCE.parse_list(body, url).records
    assert [r.external_id for r in reparsed][:2] == ["41845", "41833"]
    end = RawResponse(url=kraken.SOURCE.list_url(4), status=400, content_type="application/json",
                      body=(MIRROR / "posts_invalid_page.json").read_bytes())  # fmt: skip
    assert KrakenAnnouncementsSpider.parse_snapshot(end) == []


def test_the_demo_serves_the_tested_mirror():
    from crawler.cli import DEMO_SPIDERS, MIRRORS

    assert DEMO_SPIDERS["kraken"] == ("kraken_announcements",)
    assert (FIXTURES / "kraken").resolve() == (MIRRORS / "kraken").resolve()
    assert Path(FIXTURES / "kraken").is_symlink()
