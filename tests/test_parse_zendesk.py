"""The Zendesk Help Center parser (crawler.sources.zendesk), on both help centers' mirrors:
paging, identity, times, bodies, counters, errors, reparse."""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from archive.normalize import format_time, prepare
from archive.records import ParseError, RawResponse
from crawler.sources import deepcoin, xt
from crawler.sources.contract import Source
from crawler.sources.parsing import ListPage
from crawler.spiders.api import DeepcoinAnnouncementsSpider, XtAnnouncementsSpider
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

SOURCES = {"xt": xt.SOURCE, "deepcoin": deepcoin.SOURCE}
SPIDERS = {"xt": XtAnnouncementsSpider, "deepcoin": DeepcoinAnnouncementsSpider}


@pytest.fixture(params=sorted(SOURCES))
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def mirror(name: str) -> Path:
    return FIXTURES / name


def fetch(name: str, url: str) -> ListPage:
    file = mirror_file(mirror(name), url)
    assert file is not None, url
    return SOURCES[name].parse_list((mirror(name) / file).read_bytes(), url)


def recorded(name: str) -> list[dict[str, Any]]:
    """Every article of the mirror's list files, in order."""
    return [
        article
        for page in (1, 2)
        for article in json.loads((mirror(name) / f"articles_p{page}.json").read_text())["articles"]
    ]


def answer_with(*articles: dict[str, Any], next_page: str | None = None) -> str:
    return json.dumps(
        {
            "count": len(articles),
            "next_page": next_page,
            "page": 1,
            "page_count": 1,
            "per_page": 100,
            "previous_page": None,
            "articles": list(articles),
            "sort_by": "created_at",
            "sort_order": "desc",
        }
    )


def one(name: str, article: dict[str, Any]):
    source = SOURCES[name]
    (record,) = source.parse_list(answer_with(article), source.list_url()).records
    return record


# --- the walk -------------------------------------------------------------------------------


def test_walk_reads_every_article_once_newest_first_and_ends(name):
    source = SOURCES[name]
    seen: list[tuple[str | None, ListPage]] = []
    page, more = 1, True
    while more:
        url = source.list_url(page)
        listed = fetch(name, url)
        seen.append((mirror_file(mirror(name), url), listed))
        more, page = listed.has_more, page + 1
        assert page < 10, "the walk does not end"

    assert [file for file, _ in seen] == ["articles_p1.json", "articles_p2.json"]
    records = [r for _, listed in seen for r in listed.records]
    assert [r.external_id for r in records] == [str(a["id"]) for a in recorded(name)]
    assert len({r.external_id for r in records}) == len(records)
    times = [r.published_at for r in records]
    assert times == sorted(times, reverse=True)  # created_at order, the pinned one included
    # The page past the last is empty and says so.
    past = fetch(name, source.list_url(3))
    assert (past.records, past.has_more) == ([], False)


def test_list_urls_ask_created_at_order_in_the_help_centers_locale(name):
    source = SOURCES[name]
    url = source.list_url(2)
    host, locale, category = {
        "xt": ("xtsupport.zendesk.com", "en-us", "10304894611993"),
        "deepcoin": ("deepcoin.zendesk.com", "en-001", "360003875752"),
    }[name]
    assert url == (
        f"https://{host}/api/v2/help_center/{locale}/categories/{category}/articles.json"
        "?sort_by=created_at&sort_order=desc&include=sections&page=2&per_page=100"
    )
    assert mirror_file(mirror(name), url) == "articles_p2.json"
    assert source.headers("en") == {"Accept": "application/json"}
    assert source.language_of(url) == "en"
    assert source.list_url(1, size=20).endswith("page=1&per_page=20")
    with pytest.raises(ValueError, match=rf"{name} takes page sizes 1, 2, .*, 100, not 101"):
        source.list_url(1, size=101)


def test_next_page_decides_whether_more_follow(name):
    source = SOURCES[name]
    article = recorded(name)[0]
    url = source.list_url(1)
    more = source.parse_list(answer_with(article, next_page=url.replace("page=1", "page=2")), url)
    last = source.parse_list(answer_with(article), url)
    assert (more.has_more, last.has_more) == (True, False)
    # An answer without next_page at all falls back on its page_count.
    data = json.loads(answer_with(article))
    del data["next_page"]
    data["page_count"] = 2
    assert source.parse_list(json.dumps(data), url).has_more is True
    assert source.parse_list(json.dumps(data), source.list_url(2)).has_more is False


# --- fields ---------------------------------------------------------------------------------


def test_times_are_utc_ms_from_created_at_and_edited_at(name):
    article = recorded(name)[0]
    record = one(name, article)
    assert format_time(record.published_at) == article["created_at"].replace("Z", ".000Z")
    assert record.updated_at is not None
    assert format_time(record.updated_at) == article["edited_at"].replace("Z", ".000Z")

    # updated_at moves on votes: never read.
    moved = dict(article, updated_at="2030-01-01T00:00:00Z")
    assert one(name, moved).updated_at == record.updated_at
    assert one(name, dict(article, edited_at=None)).updated_at is None


def test_identity_is_the_numeric_id_whatever_the_title_or_url(name):
    article = recorded(name)[0]
    record = one(name, article)
    assert record.external_id == str(article["id"])
    assert record.url == article["html_url"]
    retitled = dict(
        article,
        title="Renamed",
        html_url=article["html_url"].rsplit("/", 1)[0] + f"/{article['id']}-Renamed",
    )
    assert one(name, retitled).identity == record.identity
    assert one(name, dict(article, id=str(article["id"]))).identity == record.identity


@pytest.mark.parametrize("bad_id", [None, "", "12a", 1.5e13, True, -5, "٣٤"])
def test_an_article_without_a_usable_id_is_unusable(name, bad_id):
    source = SOURCES[name]
    good, other = recorded(name)[:2]
    page = source.parse_list(answer_with(good, dict(other, id=bad_id)), source.list_url())
    assert [r.external_id for r in page.records] == [str(good["id"])]
    assert [u.index for u in page.unusable] == [1]
    assert "no article id" in page.unusable[0].reason


def test_url_without_html_url_is_the_id_page_in_the_locale(name):
    article = dict(recorded(name)[0], html_url=None)
    locale = {"xt": "en-us", "deepcoin": "en-001"}[name]
    host = SOURCES[name].hosts[0]
    assert one(name, article).url == f"https://{host}/hc/{locale}/articles/{article['id']}"


def test_title_entities_are_decoded_and_whitespace_normalized(name):
    article = dict(recorded(name)[0], title="  Trade &amp; Win\n  Up to 5,000&nbsp;USDT  ")
    assert one(name, article).title == "Trade & Win Up to 5,000 USDT"
    page = SOURCES[name].parse_list(
        answer_with(dict(article, title="  "), recorded(name)[1]), SOURCES[name].list_url()
    )
    assert "no title" in page.unusable[0].reason


def test_body_is_sanitized_html_with_its_text_and_links(name):
    article = dict(
        recorded(name)[0],
        body=(
            '<p onclick="steal()">Trade <a href="/hc/en-us/articles/1-Fees">fees</a> and '
            '<a href="javascript:alert(1)">this</a>.</p><script>alert(1)</script>'
            '<iframe src="https://evil.example"></iframe><p>Second&nbsp;line</p>'
        ),
    )
    record = one(name, article)
    assert record.body_html == (
        '<p>Trade <a href="/hc/en-us/articles/1-Fees">fees</a> and <a>this</a>.</p>'
        "<p>Second\xa0line</p>"
    )
    assert record.body_text == "Trade fees and this.\n\nSecond line"
    host = SOURCES[name].hosts[0]
    assert [link.url for link in record.links] == [f"https://{host}/hc/en-us/articles/1-Fees"]
    for empty in ("", "   ", None):
        blank = one(name, dict(article, body=empty))
        assert (blank.body_html, blank.body_text, blank.links) == (None, None, [])


def test_labels_are_tags_and_section_author_locale_are_extra(name):
    article = dict(recorded(name)[0], label_names=["new listing", " spot ", "", None])
    record = one(name, article)
    assert record.tags == ["new listing", "spot"]
    assert record.extra == {
        "section_id": str(article["section_id"]),
        "author_id": str(article["author_id"]),
        "locale": article["locale"],
    }
    assert record.category is None  # no sections sideloaded: no section name
    assert one(name, dict(article, label_names=None)).tags == []


def test_a_sideloaded_section_names_its_articles_category(name):
    """`include=sections` sideloads the sections of a page's articles (Zendesk's List
    Articles); each article's category is its section's name, looked up by id."""
    source = SOURCES[name]
    sections = json.loads((mirror(name) / "sections.json").read_text())["sections"]
    first, second = recorded(name)[:2]
    named = dict(first, section_id=sections[0]["id"])
    unnamed = dict(second, section_id=1)  # a section the answer does not sideload
    answer = json.loads(answer_with(named, unnamed))
    answer["sections"] = [*sections, {"id": 2, "name": None}, "junk"]
    page = source.parse_list(json.dumps(answer), source.list_url())
    assert [r.category for r in page.records] == [sections[0]["name"], None]
    # The lookup is not stored: the extra is the article's own.
    assert "annals_section_name" not in page.records[0].extra


def test_votes_position_pinning_and_updated_at_change_nothing_stored(name):
    article = recorded(name)[0]
    before = one(name, article)
    counted = copy.deepcopy(article) | {
        "vote_sum": 12,
        "vote_count": 15,
        "position": 3,
        "promoted": not article["promoted"],
        "updated_at": "2030-01-01T00:00:00Z",
    }
    after = one(name, counted)
    assert after == before
    assert prepare(after).content_hash == prepare(before).content_hash
    edited = one(name, dict(article, body=article["body"].replace("</p>", " Updated.</p>", 1)))
    assert prepare(edited).content_hash != prepare(before).content_hash


def test_a_time_that_does_not_read_makes_the_article_unusable(name, caplog):
    source = SOURCES[name]
    good, other = recorded(name)[:2]
    with caplog.at_level(logging.WARNING, logger="crawler.sources.parsing"):
        page = source.parse_list(
            answer_with(good, dict(other, created_at="soon")), source.list_url()
        )
    assert [r.external_id for r in page.records] == [str(good["id"])]
    assert "no readable time" in page.unusable[0].reason
    assert len(caplog.records) == 1


# --- answers that are not a list page -------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not JSON"),
        (b'{"error":"RecordNotFound","description":"Not found"}', "RecordNotFound"),
        (b'{"error":{"title":"Forbidden","message":"You do not have access"}}', "Forbidden"),
        (b"[]", "no articles list"),
        (b'{"articles": {"id": 1}}', "no articles list"),
        (b"Number of allowed API requests per minute exceeded", "not JSON"),
    ],
)
def test_an_answer_that_is_not_a_list_page_raises_parse_error(name, body, message):
    source = SOURCES[name]
    with pytest.raises(ParseError, match=message):
        source.parse_list(body, source.list_url())


def test_a_page_of_only_unusable_articles_raises_parse_error(name):
    source = SOURCES[name]
    with pytest.raises(ParseError, match="none of the 2 items"):
        source.parse_list(answer_with({"title": "no id"}, {"id": 1}), source.list_url())


# --- reparse --------------------------------------------------------------------------------


def test_a_stored_answer_reparses_to_the_same_records(name):
    source: Source = SOURCES[name]
    url = source.list_url(1)
    body = (mirror(name) / "articles_p1.json").read_bytes()
    raw = RawResponse(url=url, status=200, content_type="application/json", body=body)
    assert SPIDERS[name].parse_snapshot(raw) == source.parse_list(body, url).records


# --- the navigator, in process ----------------------------------------------------------------


def test_the_spider_asks_page_after_page_with_json_accept_until_next_page_is_null(name, tmp_path):
    spider = spider_on(SPIDERS[name], tmp_path / "annals.db")
    spider.run.start(spider.name)
    (request,) = drain(spider.start())
    assert request.headers.get("Accept") == b"application/json"
    assert request.meta["annals_url"] == SOURCES[name].list_url(1)

    first = feed(request, mirror_body(mirror(name), request.meta["annals_url"]))
    (following,) = requests(first)
    assert following.meta["annals_url"] == SOURCES[name].list_url(2)
    assert following.headers.get("Accept") == b"application/json"
    last = feed(following, mirror_body(mirror(name), following.meta["annals_url"]))
    assert requests(last) == []  # next_page null: no page 3
    archived = records(first) + records(last)
    assert [r.external_id for r in archived] == [str(a["id"]) for a in recorded(name)]
