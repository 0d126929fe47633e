"""Gate announcement parsers on the saved Gate pages: listings, list API, sitemap, articles."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from archive.normalize import html_to_text, prepare
from archive.records import ParseError
from crawler.sources import gate
from crawler.sources.gate import (
    ListItem,
    article_ref,
    canonical_article_url,
    list_api_body,
    parse_article,
    parse_count,
    parse_list_api,
    parse_listing_page,
    parse_sitemap,
)
from crawler.sources.parsing import EnvelopeError

FIXTURES = Path(__file__).parent / "fixtures" / "gate"
SITE = "https://www.gate.com"
API_URL = SITE + gate.SOURCE.list_path
FETCHED = datetime(2026, 10, 1, tzinfo=UTC)
NEXT_DATA = re.compile(rb'<script id="__NEXT_DATA__"[^>]*>(.*?)</script>', re.S)
NAV_AND_CHROME = (
    "Access hundreds of perpetual contracts",
    "Launchpool",
    "Log In",
    "Sign Up",
    "All rights reserved",
    "Telegram",
    "Facebook",
    "Gate Announcements | Gate.com",
)


def read(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def article(name: str, url: str, **kwargs: Any):
    return parse_article(read(name), url, fetched_at=FETCHED, **kwargs)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


# --- URLs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://www.gate.io/article/51322", ("51322", "en")),
        ("https://gate.io/article/51322/", ("51322", "en")),
        ("https://www.gate.com/announcements/article/51322", ("51322", "en")),
        ("https://gate.com/announcements/article/51322/some-slug", ("51322", "en")),
        ("https://www.gate.com/announcements/article/51322?ref=x#top", ("51322", "en")),
        ("http://www.gate.com/announcements/article/51322/", ("51322", "en")),
        ("/announcements/article/51322", ("51322", "en")),
        ("/article/51322", ("51322", "en")),
        ("https://www.gate.com/zh/announcements/article/102003", ("102003", "zh")),
        ("/zh/announcements/article/102003/", ("102003", "zh")),
        ("https://www.gate.com/zh-tw/announcements/article/7", ("7", "zh-tw")),
        ("https://www.gate.com/en/announcements/article/7", ("7", "en")),
    ],
)
def test_article_ref_reads_every_url_form(url, expected):
    assert article_ref(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "https://www.gate.com/announcements",
        "https://www.gate.com/announcements/newlisted",
        "https://www.gate.com/announcements/article/",
        "https://www.gate.com/announcements/article/abc",
        "https://www.gate.com/post/status/21716532",
        "https://example.com/announcements/article/51322",
        "https://www.gate.com.evil.io/article/51322",
        "ftp://www.gate.com/article/51322",
        "",
    ],
)
def test_article_ref_rejects_other_urls(url):
    assert article_ref(url) is None


def test_canonical_article_url_has_a_locale_prefix_except_for_english():
    assert canonical_article_url("51322") == "https://www.gate.com/announcements/article/51322"
    assert canonical_article_url("51322", "en") == canonical_article_url("51322")
    assert (
        canonical_article_url("102003", "zh")
        == "https://www.gate.com/zh/announcements/article/102003"
    )


def test_categories_are_keyed_by_cate_id_with_their_event_hint():
    assert gate.SOURCE.categories[61].key == "61"
    assert {c: gate.SOURCE.categories[c].event_type for c in (61, 38, 37)} == dict.fromkeys(
        (61, 38, 37), "listing"
    )
    assert (
        gate.SOURCE.categories[15].event_type
        == gate.SOURCE.categories[87].event_type
        == "delisting"
    )
    assert gate.SOURCE.categories[32].event_type == "promotion"
    assert gate.SOURCE.categories[109].event_type == "product"
    assert 101 not in gate.SOURCE.categories  # real id, unknown name: no guessed category


@pytest.mark.parametrize(
    ("shown", "count"),
    [(8638, 8638), ("8,638", 8638), ("8,638 views", 8638), ("2,316 次浏览", 2316),
     ("1.2K", 1200), ("3M", 3_000_000), ("1.5万", 15000), ("", None), ("many", None)],
)  # fmt: skip
def test_parse_count_reads_shown_counters(shown, count):
    assert parse_count(shown) == count


# --- listing pages ----------------------------------------------------------------------


def test_hub_page_gives_the_first_screen_with_pinned_items_first():
    page = parse_listing_page(read("announcements.html"), SITE + "/announcements")
    assert len(page.items) == 15
    assert page.category == "lastest"
    assert [i.external_id for i in page.items[:3]] == ["51257", "51246", "51331"]
    first = page.items[0]
    assert first.url == "https://www.gate.com/announcements/article/51257"
    assert first.published_at == utc(2026, 5, 19, 10, 9, 44)
    assert first.views == 18260
    assert first.language == "en"
    assert not first.title_truncated
    by_id = {i.external_id: i for i in page.items}
    assert by_id["51316"].tags == ["ZHIPUG", "MINIMAXG"]
    assert by_id["51314"].tags == []
    assert by_id["51316"].cate_id == 37


def test_list_item_publication_time_is_release_timestamp_not_created_t():
    page = parse_listing_page(read("announcements.html"), SITE + "/announcements")
    item = next(i for i in page.items if i.external_id == "51319")
    assert item.published_at == utc(2026, 5, 22, 6, 30)
    assert item.created_at == utc(2026, 5, 22, 6, 20)


def test_newlisted_page_holds_listing_categories_only():
    page = parse_listing_page(
        read("announcements_newlisted.html"), SITE + "/announcements/newlisted"
    )
    assert (len(page.items), page.category) == (14, "newlisted")
    assert {i.cate_id for i in page.items} == {61, 38, 37}


def test_delisted_page_holds_delistings():
    page = parse_listing_page(read("announcements_delisted.html"), SITE + "/announcements/delisted")
    assert (len(page.items), page.category) == (6, "delisted")
    assert {i.cate_id for i in page.items} == {15, 87}
    assert page.items[0].tags == ["NXRA", "QUIL"]


def test_listing_page_under_a_locale_prefix_gives_that_language():
    page = parse_listing_page(
        read("announcements_delisted.html"), SITE + "/zh/announcements/delisted"
    )
    assert {i.language for i in page.items} == {"zh"}
    assert page.items[0].url == "https://www.gate.com/zh/announcements/article/51310"


@pytest.mark.parametrize(
    "body",
    [
        read("challenge_edgeone.html"),
        NEXT_DATA.sub(
            rb'<script id="__NEXT_DATA__">{not json</script>', read("announcements.html")
        ),
        read("article_51322.html"),  # JSON, but no listData
    ],
    ids=["no-next-data", "not-json", "no-list-data"],
)
def test_listing_page_without_list_data_raises_parse_error(body):
    with pytest.raises(ParseError) as err:
        parse_listing_page(body, SITE + "/announcements")
    assert err.value.url == SITE + "/announcements"


def test_next_data_is_found_whatever_its_attribute_order():
    body = read("announcements.html").replace(
        b'<script id="__NEXT_DATA__" type="application/json" crossorigin="anonymous">',
        b'<script crossorigin="anonymous" type="application/json" id="__NEXT_DATA__">',
    )
    assert len(parse_listing_page(body, SITE + "/announcements").items) == 15


# --- the list API -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "count"),
    [("list_article_p1.json", 15), ("list_article_p2.json", 15), ("list_article_p3.json", 10)],
)
def test_list_api_pages_hold_their_items(name, count):
    page = parse_list_api(read(name), API_URL)
    assert len(page.items) == count


def test_list_api_pages_together_hold_forty_items_newest_first():
    items = [
        item
        for name in ("list_article_p1.json", "list_article_p2.json", "list_article_p3.json")
        for item in parse_list_api(read(name), API_URL).items
    ]
    assert len({i.external_id for i in items}) == 40
    times = [i.published_at for i in items]
    assert all(times)
    assert times == sorted(times, reverse=True)


def test_list_api_page_past_the_end_is_empty():
    page = parse_list_api(read("list_article_empty.json"), API_URL)
    assert page.items == []
    assert page.unusable == []


def test_list_api_delisted_page():
    page = parse_list_api(read("list_article_delisted_p1.json"), API_URL)
    assert len(page.items) == 6


def test_list_api_error_envelope_raises_envelope_error():
    body = json.dumps({"code": 10001, "message": "too many requests", "data": None})
    with pytest.raises(EnvelopeError) as err:
        parse_list_api(body, API_URL)
    assert (err.value.code, err.value.message, err.value.url) == (
        "10001",
        "too many requests",
        API_URL,
    )


@pytest.mark.parametrize(
    "body",
    [
        b"<html>405 Not Allowed</html>",
        b"[]",
        b'{"message": "success"}',
        b'{"code": 0, "message": "success", "data": null}',
        b'{"code": 0, "message": "success", "data": {"total": 1}}',
        b'{"code": 0, "message": "success", "data": {"list": "oops"}}',
    ],
)
def test_list_api_bad_json_or_shape_raises_parse_error(body):
    with pytest.raises(ParseError):
        parse_list_api(body, API_URL)


def test_list_api_item_without_an_id_is_skipped_with_a_warning(caplog):
    body = json.dumps(
        {
            "code": 0,
            "message": "success",
            "data": {"total": 2, "list": [{"title": "no id"}, {"id": 7, "title": "Seven"}]},
        }
    )
    with caplog.at_level(logging.WARNING, logger="crawler.sources.gate"):
        page = parse_list_api(body, API_URL)
    assert [i.external_id for i in page.items] == ["7"]
    assert [(u.index, u.reason) for u in page.unusable] == [(0, "no usable id")]
    assert "no usable id" in caplog.text


def test_list_item_title_cut_by_the_list_is_flagged():
    body = json.dumps(
        {"code": 0, "data": {"list": [{"id": 1, "title": "Gate Will List Something Very..."}]}}
    )
    assert parse_list_api(body, API_URL).items[0].title_truncated


def _route_for(body: dict[str, Any]) -> str | None:
    """The file the mirror answers for a POST body (first matching route wins)."""
    routes = json.loads(read("routes.json"))
    for route in routes:
        wanted = route.get("body", {}).items()
        if (route["method"], route["path"]) == ("POST", gate.SOURCE.list_path) and all(
            body.get(k) == v for k, v in wanted
        ):
            return route["file"]
    return None


@pytest.mark.parametrize(
    ("page", "category", "file"),
    [
        (1, None, "list_article_p1.json"),
        (2, None, "list_article_p2.json"),
        (3, None, "list_article_p3.json"),
        (4, None, "list_article_empty.json"),
        (1, "delisted", "list_article_delisted_p1.json"),
        (2, "delisted", "list_article_empty.json"),
    ],
)
def test_list_api_body_reaches_the_page_it_asks_for(page, category, file):
    body = list_api_body(page, category=category)
    assert _route_for(body) == file
    assert _route_for({k: str(v) for k, v in body.items()}) == file  # as a form body


def test_list_api_body_names_the_page_size_both_ways():
    assert list_api_body(1, size=20) == {"page": 1, "limit": 20, "size": 20}
    assert list_api_body(2, category="delisted")["cate_level"] == 1
    with pytest.raises(ValueError, match="from 1"):
        list_api_body(0)


# --- the sitemap ------------------------------------------------------------------------


def test_sitemap_lists_every_article_with_its_language():
    entries = parse_sitemap(read("sitemap-announcement-001.xml"), SITE + gate.SOURCE.sitemap_path)
    assert len(entries) == 8
    zh = entries[0]
    assert (zh.external_id, zh.language) == ("102003", "zh")
    assert zh.url == "https://www.gate.com/zh/announcements/article/102003"
    assert zh.lastmod == utc(2026, 9, 29, 2, 53, 36)
    assert {e.language for e in entries[1:]} == {"en"}
    assert "51321" in {e.external_id for e in entries}


def test_sitemap_skips_urls_that_are_not_articles():
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        "<url><loc>https://www.gate.com/announcements</loc></url>"
        "<url><loc>https://www.gate.io/article/51322</loc></url>"
        "<url><loc>https://www.gate.com/announcements/article/51322</loc></url>"
        "</urlset>"
    )
    entries = parse_sitemap(xml, SITE + gate.SOURCE.sitemap_path)
    assert [(e.url, e.lastmod) for e in entries] == [
        ("https://www.gate.com/announcements/article/51322", None)
    ]


@pytest.mark.parametrize("body", [read("challenge_edgeone.html"), b"<urlset", b""])
def test_sitemap_that_is_not_a_urlset_raises_parse_error(body):
    with pytest.raises(ParseError):
        parse_sitemap(body, SITE + gate.SOURCE.sitemap_path)


# --- articles ---------------------------------------------------------------------------

# fmt: off
ARTICLES = [  # file, url, title, published_at, category, cate_id, tags
    ("article_51322.html", SITE + "/announcements/article/51322",
     "Gate Launches Pre-Market Trading for SPCXUSDT Perpetual Futures (USDT-M)",
     utc(2026, 5, 22, 7, 56, 11), "New Crypto Listings", 61, ["SPCX"]),
    ("article_51319.html", SITE + "/announcements/article/51319",
     "Gate Will List Velora (VLR) for Spot Trading",
     utc(2026, 5, 22, 6, 30), "New Spot Listings", 38, ["VLR"]),
    ("article_51310.html", SITE + "/announcements/article/51310",
     "Gate Will Delist NXRA, QUIL and 19 Other Tokens",
     utc(2026, 5, 21, 12), "Delistings", 15, ["NXRA", "QUIL"]),
    ("article_51331.html", SITE + "/announcements/article/51331",
     "Gate Futures Points Airdrop #120: Claim 60 HYPE3L",
     utc(2026, 5, 22, 10, 0, 2), "Airdrops & Promotions", 32, ["HYPE3L"]),
    ("article_51257.html", SITE + "/announcements/article/51257",
     "Polymarket Trading Experience Refreshed, First Prediction Loss-Cover Bonus Distributing",
     utc(2026, 5, 19, 10, 9, 44), None, 101, []),
    ("zh_article_102003.html", SITE + "/zh/announcements/article/102003",
     "Gate 关于 SAMSUNG 永续合约分红派息结算的公告",
     utc(2026, 9, 29, 2, 53, 36), "Dividend Distribution", 109, ["SAMSUNG"]),
]
# fmt: on
ARTICLE_IDS = [a[0] for a in ARTICLES]


@pytest.mark.parametrize(
    ("name", "url", "title", "published", "category", "cate_id", "tags"), ARTICLES, ids=ARTICLE_IDS
)
def test_article_gives_a_whole_record(name, url, title, published, category, cate_id, tags):
    record = article(name, url)
    assert record.title == title
    assert record.published_at == published
    assert record.category == category
    assert record.extra["cate_id"] == cate_id
    assert record.tags == tags
    assert record.symbols is None  # derived by the store from what it stores
    symbols = prepare(record).symbols
    assert set(tags) <= set(symbols)  # Gate's tags are tickers
    assert (record.source, record.kind) == ("gate", "announcement")
    assert record.url == canonical_article_url(record.external_id, record.language)
    assert record.raw is None
    assert record.seen_at is None


@pytest.mark.parametrize(("name", "url"), [a[:2] for a in ARTICLES], ids=ARTICLE_IDS)
def test_article_body_has_no_navigation_footer_or_views(name, url):
    text = html_to_text(article(name, url).body_html)
    assert text.startswith(("Dear Gate users,", "尊敬的 Gate 用户"))
    for chrome in (*NAV_AND_CHROME, " views", "次浏览"):
        assert chrome not in text


def test_article_time_is_release_timestamp_not_created_t():
    record = article("article_51319.html", SITE + "/announcements/article/51319")
    assert record.published_at == utc(2026, 5, 22, 6, 30)
    assert record.extra["created_at"] == "2026-05-22T06:20:00.000Z"


def test_zh_article_is_its_own_document_with_a_precise_utc_time():
    record = article("zh_article_102003.html", SITE + "/zh/announcements/article/102003")
    assert (record.external_id, record.language) == ("102003", "zh")
    assert record.url == "https://www.gate.com/zh/announcements/article/102003"
    # The page shows "2026-09-29 10:53 (UTC+8)"; the timestamp keeps the seconds.
    assert record.published_at == utc(2026, 9, 29, 2, 53, 36)
    assert record.extra["views"] == 2316
    assert record.event_type == "product"


def test_article_title_is_never_the_seo_title():
    record = article("article_51322.html", SITE + "/announcements/article/51322")
    assert "|" not in (record.title or "")


def test_article_body_keeps_lists_tables_and_decodes_entities():
    text = html_to_text(
        article("article_51331.html", SITE + "/announcements/article/51331").body_html
    )
    assert "Tier | Futures Points required | Reward per user | Quota" in text
    assert "1. Open the Futures Points page and click “Redeem” next to Airdrop #120." in text
    assert "- Each user may redeem one tier only." in text
    assert "2026-05-22 10:00 (UTC) – 2026-05-29 10:00 (UTC)" in text
    text = html_to_text(
        article("article_51322.html", SITE + "/announcements/article/51322").body_html
    )
    assert "Funding rate cap: ±2%" in text
    assert "Gate Team\nMay 22, 2026" in text


def test_article_views_come_from_the_page():
    record = article("article_51322.html", SITE + "/announcements/article/51322")
    assert record.extra["views"] == 8638
    assert record.event_type == "listing"


def test_article_views_after_a_comment_are_read():
    # The views line is found by walking the text after the title; a comment between
    # (a rendering framework leaves them) holds no text but is followed by the line.
    body = read("article_51322.html").replace(
        b'<span class="ann-detail_views__Mz1tR">',
        b'<span class="ann-detail_views__Mz1tR"><!-- v -->',
    )
    assert b"<!-- v -->8,638 views" in body
    record = parse_article(body, SITE + "/announcements/article/51322", fetched_at=FETCHED)
    assert record.extra["views"] == 8638


def test_delisting_symbols_hold_every_delisted_token():
    record = article("article_51310.html", SITE + "/announcements/article/51310")
    assert record.event_type == "delisting"
    symbols = prepare(record).symbols
    assert symbols[:2] == ["NXRA", "QUIL"]
    assert {"BLIX", "NOVAI", "ZETR"} <= set(symbols)
    assert len(symbols) == 21


@pytest.mark.parametrize(
    "url",
    [
        "https://www.gate.io/article/51322",
        "https://www.gate.com/announcements/article/51322/some-slug",
        "/announcements/article/51322?from=list",
    ],
)
def test_article_reached_by_another_url_form_is_the_same_document(url):
    record = article("article_51322.html", url)
    assert (record.external_id, record.language) == ("51322", "en")
    assert record.url == "https://www.gate.com/announcements/article/51322"


def test_article_at_an_unknown_url_raises_parse_error():
    with pytest.raises(ParseError, match="not a Gate announcement URL"):
        article("article_51322.html", SITE + "/announcements/newlisted")


@pytest.mark.parametrize("name", ["challenge_edgeone.html", "blocked_akamai.html"])
def test_challenge_or_block_page_never_becomes_a_record(name):
    url = SITE + "/announcements/article/51321"
    item = ListItem("51321", "USDS Staking Now Live", url, published_at=utc(2026, 5, 22, 7, 5, 21))
    with pytest.raises(ParseError):
        article(name, url)
    with pytest.raises(ParseError):
        article(name, url, item=item)


# --- the visible page when __NEXT_DATA__ is missing or broken ---------------------------


def without_next_data(name: str) -> bytes:
    return NEXT_DATA.sub(b"", read(name))


def with_broken_next_data(name: str) -> bytes:
    return NEXT_DATA.sub(
        rb'<script id="__NEXT_DATA__" type="application/json">{"props": {"pageProps": </script>',
        read(name),
    )


@pytest.mark.parametrize("spoil", [without_next_data, with_broken_next_data])
@pytest.mark.parametrize(("name", "url"), [a[:2] for a in ARTICLES[:5]], ids=ARTICLE_IDS[:5])
def test_article_without_usable_next_data_falls_back_to_the_visible_page(spoil, name, url):
    full = article(name, url)
    fallback = parse_article(spoil(name), url, fetched_at=FETCHED)
    assert fallback.title == full.title
    assert fallback.published_at == full.published_at
    assert html_to_text(fallback.body_html) == html_to_text(full.body_html)
    assert fallback.extra["views"] == full.extra["views"]


def test_zh_fallback_reads_the_utc_plus_8_line_to_the_minute():
    url = SITE + "/zh/announcements/article/102003"
    record = parse_article(without_next_data("zh_article_102003.html"), url, fetched_at=FETCHED)
    assert record.title == "Gate 关于 SAMSUNG 永续合约分红派息结算的公告"
    assert record.published_at == utc(2026, 9, 29, 2, 53)
    assert html_to_text(record.body_html).startswith("尊敬的 Gate 用户")


def test_fallback_prefers_the_list_items_release_time_and_keeps_its_category():
    url = SITE + "/zh/announcements/article/102003"
    item = ListItem(
        "102003",
        "Gate 关于 SAMSUNG 永续合约分红派息结算的公告",
        url,
        cate_id=109,
        published_at=utc(2026, 9, 29, 2, 53, 36),
        tags=["SAMSUNG"],
        views=2000,
        language="zh",
    )
    record = parse_article(
        without_next_data("zh_article_102003.html"), url, fetched_at=FETCHED, item=item
    )
    assert record.published_at == utc(2026, 9, 29, 2, 53, 36)
    assert (record.category, record.tags) == ("Dividend Distribution", ["SAMSUNG"])
    assert record.extra["views"] == 2316  # the page's count is newer than the list's


def test_detail_without_release_timestamp_uses_the_item_then_the_page():
    name, url = "article_51319.html", SITE + "/announcements/article/51319"
    body = read(name).replace(b',"release_timestamp":"1779431400"', b"")
    assert b"release_timestamp" not in body
    item = ListItem(
        "51319", "Gate Will List Velora (VLR)...", url, published_at=utc(2026, 5, 22, 6, 30, 1)
    )
    assert parse_article(body, url, fetched_at=FETCHED, item=item).published_at == utc(
        2026, 5, 22, 6, 30, 1
    )
    assert parse_article(body, url, fetched_at=FETCHED).published_at == utc(2026, 5, 22, 6, 30)


def test_truncated_list_title_never_overrides_the_page_title():
    url = SITE + "/announcements/article/51322"
    item = ListItem(
        "51322",
        "Gate Launches Pre-Market Trading for SPCXUSDT...",
        url,
        cate_id=61,
        title_truncated=True,
    )
    full = "Gate Launches Pre-Market Trading for SPCXUSDT Perpetual Futures (USDT-M)"
    assert article("article_51322.html", url, item=item).title == full
    fallback = parse_article(
        without_next_data("article_51322.html"), url, fetched_at=FETCHED, item=item
    )
    assert fallback.title == full


def test_item_for_another_article_is_ignored():
    url = SITE + "/announcements/article/51322"
    item = ListItem("1", "Other", canonical_article_url("1"), cate_id=15, tags=["OTHER"])
    record = parse_article(
        without_next_data("article_51322.html"), url, fetched_at=FETCHED, item=item
    )
    assert (record.category, record.tags, record.extra["cate_id"]) == (None, [], None)


def test_fallback_page_whose_body_selector_misses_raises_parse_error():
    url = SITE + "/announcements/article/51322"
    body = without_next_data("article_51322.html").replace(b" rich-text", b"")
    with pytest.raises(ParseError, match="no visible body"):
        parse_article(body, url, fetched_at=FETCHED)


def test_page_claiming_another_id_keeps_the_urls_identity(caplog):
    url = SITE + "/announcements/article/51322"
    body = read("article_51322.html").replace(b'"id":51322', b'"id":99')
    with caplog.at_level(logging.WARNING, logger="crawler.sources.gate"):
        record = parse_article(body, url, fetched_at=FETCHED)
    assert record.external_id == "51322"
    assert "says it is article 99" in caplog.text
