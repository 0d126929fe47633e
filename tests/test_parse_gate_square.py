"""Gate Square parsers on the saved Square pages: the seed post, a zh post, the feed, times."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from archive.normalize import TimeParseError, html_to_text, prepare
from archive.records import Link, ParseError
from crawler.sources.gate_square import (
    canonical_post_url,
    parse_feed,
    parse_post,
    parse_relative_time,
    post_ref,
    resolve_link,
)

FIXTURES = Path(__file__).parent / "fixtures" / "gate"
SEED_URL = "https://www.gate.com/post/status/21716532"
ZH_URL = "https://www.gate.com/post/status/21716980"
FETCHED = datetime(2026, 4, 9, 15, 0, tzinfo=UTC)


def read(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.fixture(scope="module")
def seed():
    return parse_post(read("square_post_21716532.html"), SEED_URL, fetched_at=FETCHED)


@pytest.fixture(scope="module")
def seed_text(seed) -> str:
    return html_to_text(seed.body_html)


# --- the seed post (acceptance) ---------------------------------------------------------


def test_seed_body_starts_with_its_hashtag_lines(seed_text):
    assert seed_text.startswith(
        "#Gate广场四月发帖挑战 🧠\n\n#MetaReleasesMuseSpark | AI Creativity Just Entered a New Era"
    )


def test_seed_body_keeps_the_whole_text(seed_text):
    assert "Structure, originality, and human insight will always define true value." in seed_text
    assert seed_text.endswith("#CreatorCarvinal #MetaReleasesMuseSpark")


def test_seed_tags_are_its_hashtags_without_the_hash(seed):
    assert seed.tags == ["Gate广场四月发帖挑战", "MetaReleasesMuseSpark", "CreatorCarvinal"]


def test_seed_link_points_at_announcement_50520(seed):
    assert (
        Link("https://www.gate.com/announcements/article/50520", "gate", "announcement", "50520")
        in seed.links
    )
    assert all("/post/topic/" not in link.url for link in seed.links)


@pytest.mark.parametrize(
    "chrome",
    [
        "Access hundreds of perpetual contracts",
        "Launchpool",
        "Futures Points",
        "View Original",
        "This page may contain third-party content",
        "See Disclaimer",
        "Trending Topics",
        "BitcoinETF",
        "Great breakdown",  # a comment
        "4,812",
        "Follow",
        "Gate Square",
        "All rights reserved",
    ],
)
def test_seed_body_has_no_site_chrome(seed_text, chrome):
    assert chrome not in seed_text


def test_seed_time_is_the_posts_absolute_time(seed):
    assert seed.published_at == utc(2026, 4, 9, 13, 52, 7)


def test_seed_identity_author_and_counts(seed):
    assert (seed.source, seed.kind, seed.external_id, seed.language) == (
        "gate",
        "post",
        "21716532",
        "en",
    )
    assert seed.url == SEED_URL
    assert seed.title is None
    assert seed.author == "Carvinal"
    assert seed.extra == {
        "author_handle": "carvinal",
        "author_url": "https://www.gate.com/profile/carvinal",
        "likes": 128,
        "comments": 36,
        "reposts": 12,
        "views": 4812,
    }


def test_post_fetched_from_a_mirror_keeps_site_urls():
    record = parse_post(
        read("square_post_21716532.html"),
        "http://127.0.0.1:8080/post/status/21716532",
        fetched_at=FETCHED,
    )
    assert record.external_id == "21716532"
    assert record.url == SEED_URL


# --- the zh post ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def zh_post():
    return parse_post(read("square_post_21716980.html"), ZH_URL, fetched_at=FETCHED)


def test_zh_post_language_is_the_contents_not_the_pages(zh_post):
    assert zh_post.language == "zh"  # <html lang="en">, <div class="post-content" lang="zh">


def test_zh_post_has_cjk_hashtags_and_cashtag_symbols(zh_post):
    assert zh_post.tags == ["Gate广场四月发帖挑战", "今日行情"]
    assert zh_post.symbols is None  # derived by the store from the stored HTML
    assert prepare(zh_post).symbols == ["BTC", "GT"]
    assert zh_post.links == []  # hashtags and cashtags are not links
    assert zh_post.author == "老K看盘"
    assert zh_post.published_at == utc(2026, 4, 9, 14, 59, 32)


def test_zh_post_body_is_the_post_only(zh_post):
    text = html_to_text(zh_post.body_html)
    assert text.startswith("#Gate广场四月发帖挑战 #今日行情\n\n比特币今天在 8 万附近来回震荡，$BTC")
    assert text.endswith("仅代表个人观点，不构成投资建议。")
    assert "同意" not in text  # the comment
    assert "以太坊" not in text  # the sidebar topic


@pytest.mark.parametrize(
    "name", ["square_feed.html", "challenge_edgeone.html", "blocked_akamai.html"]
)
def test_page_without_post_content_raises_parse_error(name):
    with pytest.raises(ParseError) as err:
        parse_post(read(name), SEED_URL, fetched_at=FETCHED)
    assert err.value.url == SEED_URL


def test_post_without_an_id_raises_parse_error():
    body = b'<html><body><div class="post-content"><p>hello</p></div></body></html>'
    with pytest.raises(ParseError, match="no post id"):
        parse_post(body, "https://www.gate.com/post", fetched_at=FETCHED)


def test_post_with_only_a_relative_time_is_dated_from_the_fetch():
    body = (
        '<html><body><article class="post-detail" data-post-id="5">'
        '<time class="post-time">2h ago</time><div class="post-content"><p>gm '
        '<a href="/post/status/4">earlier</a></p></div></article></body></html>'
    )
    record = parse_post(body, "https://www.gate.com/post/status/5", fetched_at=FETCHED)
    assert record.published_at == utc(2026, 4, 9, 13)
    assert record.language == "en"
    assert record.links == [Link("https://www.gate.com/post/status/4", "gate", "post", "4")]


def test_post_page_cut_short_is_a_parse_error():
    whole = (FIXTURES / "square_post_21716532.html").read_bytes()
    with pytest.raises(ParseError, match="cut short"):
        parse_post(
            whole[: len(whole) * 2 // 3],
            "https://www.gate.com/post/status/21716532",
            fetched_at=FETCHED,
        )


# --- URLs and links ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "post_id"),
    [
        ("https://www.gate.com/post/status/21716532", "21716532"),
        ("https://www.gate.io/post/status/21716532", "21716532"),
        ("https://gate.io/post/status/21716532/", "21716532"),
        ("https://www.gate.com/zh/post/status/21716532?ref=share", "21716532"),
        ("/post/status/21716532", "21716532"),
        ("https://www.gate.com/post", None),
        ("https://www.gate.com/post/topic/BitcoinETF", None),
        ("https://www.gate.com/announcements/article/50520", None),
        ("https://example.com/post/status/21716532", None),
    ],
)
def test_post_ref_reads_every_post_url_form(url, post_id):
    assert post_ref(url) == post_id


def test_canonical_post_url():
    assert canonical_post_url("21716532") == SEED_URL


@pytest.mark.parametrize(
    ("href", "expected"),
    [
        (
            "https://www.gate.com/announcements/article/50520",
            Link(
                "https://www.gate.com/announcements/article/50520", "gate", "announcement", "50520"
            ),
        ),
        (
            "https://www.gate.io/article/51322",
            Link("https://www.gate.io/article/51322", "gate", "announcement", "51322"),
        ),
        (
            "/announcements/article/51322/some-slug",
            Link(
                "https://www.gate.com/announcements/article/51322/some-slug",
                "gate",
                "announcement",
                "51322",
            ),
        ),
        (
            "/zh/announcements/article/102003",
            Link(
                "https://www.gate.com/zh/announcements/article/102003",
                "gate",
                "announcement",
                "102003",
            ),
        ),
        (
            "https://www.gate.io/post/status/21716980",
            Link("https://www.gate.io/post/status/21716980", "gate", "post", "21716980"),
        ),
        (
            "/post/status/21716980",
            Link("https://www.gate.com/post/status/21716980", "gate", "post", "21716980"),
        ),
        ("/post/topic/BitcoinETF", Link("https://www.gate.com/post/topic/BitcoinETF")),
        ("https://example.com/article/1", Link("https://example.com/article/1")),
        ("/trade/BTC_USDT", Link("https://www.gate.com/trade/BTC_USDT")),
    ],
)
def test_resolve_link_sets_targets_for_gate_documents(href, expected):
    assert resolve_link(href, SEED_URL) == expected


# --- the feed ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def feed():
    page = parse_feed(read("square_feed.html"), "https://www.gate.com/post", fetched_at=FETCHED)
    assert page.unusable == []
    return page.entries


def test_feed_has_six_posts_in_page_order(feed):
    assert [e.post_id for e in feed] == [
        "21716980",
        "21716911",
        "21716702",
        "21716532",
        "21715877",
        "21714410",
    ]
    assert feed[3].url == SEED_URL


def test_feed_relative_times_resolve_against_the_fetch_time(feed):
    assert [(e.relative_time, e.published_at) for e in feed] == [
        ("刚刚", FETCHED),
        ("5分钟前", FETCHED - timedelta(minutes=5)),
        ("32m ago", FETCHED - timedelta(minutes=32)),
        ("1h ago", FETCHED - timedelta(hours=1)),
        ("2h ago", FETCHED - timedelta(hours=2)),
        ("3h ago", FETCHED - timedelta(hours=3)),
    ]


def test_feed_flags_the_block_cut_short(feed):
    assert [e.truncated for e in feed] == [False, False, False, True, False, False]
    seed = feed[3]
    assert "Show more" not in seed.body_text
    assert seed.body_text.endswith("built directly into the platforms we use every day.")


def test_feed_entries_carry_author_tags_language_and_body_only(feed):
    zh = feed[0]
    assert (zh.author, zh.language) == ("老K看盘", "zh")
    assert zh.tags == ["Gate广场四月发帖挑战", "今日行情"]
    assert feed[4].tags == ["SOL", "Altseason"]
    for entry in feed:
        assert entry.body_text
        for chrome in ("Follow", "刚刚", "ago", "Trending Topics", "Loading"):
            assert chrome not in entry.body_text
    assert "I'm watching." in feed[4].body_text  # &#x27; decoded


def test_page_without_a_feed_raises_parse_error():
    with pytest.raises(ParseError, match="no Square feed"):
        parse_feed(read("challenge_edgeone.html"), "https://www.gate.com/post", fetched_at=FETCHED)


def test_empty_feed_is_an_empty_list():
    body = '<main><div class="square-feed"></div></main>'
    assert parse_feed(body, "https://www.gate.com/post/topic/X", fetched_at=FETCHED) == ([], [])


def without_the_first_post_id(feed: bytes) -> bytes:
    """The feed page with its first block naming no post: no post-id attribute, and a
    time link that points at no post."""
    broken = re.sub(rb'data-post-id="\d+"', b'data-post-id=""', feed, count=1)
    return re.sub(
        rb'class="feed-time" href="/post/status/\d+"',
        b'class="feed-time" href="/post"',
        broken,
        count=1,
    )


def test_a_block_that_names_no_post_is_reported_not_dropped():
    broken = without_the_first_post_id(read("square_feed.html"))
    feed = parse_feed(broken, "https://www.gate.com/post", fetched_at=FETCHED)
    assert [u.index for u in feed.unusable] == [0]
    assert "no post id" in feed.unusable[0].reason
    assert len(feed.entries) == 5


# --- relative times ---------------------------------------------------------------------

NOW = utc(2026, 4, 9, 15, 0, 30)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("刚刚", NOW),
        ("just now", NOW),
        ("Just now", NOW),
        ("30秒前", NOW - timedelta(seconds=30)),
        ("5分钟前", NOW - timedelta(minutes=5)),
        ("32m ago", NOW - timedelta(minutes=32)),
        ("1 minute ago", NOW - timedelta(minutes=1)),
        ("an hour ago", NOW - timedelta(hours=1)),
        ("1h ago", NOW - timedelta(hours=1)),
        ("2h ago", NOW - timedelta(hours=2)),
        ("3 hours ago", NOW - timedelta(hours=3)),
        ("3小时前", NOW - timedelta(hours=3)),
        ("2d ago", NOW - timedelta(days=2)),
        ("3天前", NOW - timedelta(days=3)),
        ("1w ago", NOW - timedelta(weeks=1)),
        ("昨天", NOW - timedelta(days=1)),
        ("yesterday", NOW - timedelta(days=1)),
        ("昨天 13:52", utc(2026, 4, 8, 13, 52)),
        ("2026-04-09 13:52", utc(2026, 4, 9, 13, 52)),
        ("2026-04-09 13:52:07", utc(2026, 4, 9, 13, 52, 7)),
        ("2026-04-09 13:52 UTC", utc(2026, 4, 9, 13, 52)),
        ("2026-04-09 21:52 (UTC+8)", utc(2026, 4, 9, 13, 52)),
        ("04-09 13:52", utc(2026, 4, 9, 13, 52)),
        ("12-31 23:00", utc(2025, 12, 31, 23)),
    ],
)
def test_parse_relative_time_reads_feed_times(text, expected):
    assert parse_relative_time(text, NOW) == expected


def test_parse_relative_time_reads_a_naive_now_as_utc():
    assert parse_relative_time("1h ago", datetime(2026, 4, 9, 15)) == utc(2026, 4, 9, 14)


@pytest.mark.parametrize("text", ["", "soon", "3 months ago", "2年前", "13-45 10:00", "h ago"])
def test_parse_relative_time_rejects_unknown_forms(text):
    with pytest.raises(TimeParseError):
        parse_relative_time(text, NOW)
