"""MEXC parse layer on the saved mirror answers: list items, details, paging, envelopes,
blocks; and the navigator's decisions on them in process (pinned article, details)."""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from archive.db import make_engine, open_archive
from archive.normalize import format_time, prepare
from archive.records import ParseError, RawResponse
from archive.store import Store
from archive.symbols import category_event
from crawler.blocks import classify
from crawler.sources import mexc
from crawler.sources.parsing import EnvelopeError, ListPage
from crawler.spiders.api import MexcAnnouncementsSpider
from tests.helpers import FIXTURES, drain, feed, mirror_body, mirror_file, records, requests
from tests.helpers import spider_on as _spider_on

MIRROR = FIXTURES / "mexc"
SOURCE = mexc.SOURCE
RECORDED = 10  # the mirror's pages were recorded at perPage=10
TOP = "360000254192"  # the announcements section
LISTINGS = "15425930840735"  # its new-listings subsection
PINNED = "17826001108805"  # the README's pinned article, on top of the first page


def load(name: str) -> dict[str, Any]:
    return json.loads((MIRROR / name).read_text())


def fetch(url: str) -> ListPage:
    name = mirror_file(MIRROR, url)
    assert name is not None, url
    return SOURCE.parse_list((MIRROR / name).read_bytes(), url)


def walk(category: str | None = None, size: int = RECORDED) -> list[tuple[str | None, ListPage]]:
    """Every page a spider asks for, following has_more, as the docstring says."""
    seen: list[tuple[str | None, ListPage]] = []
    page = 1
    while True:
        url = SOURCE.list_url(page, category=category, size=size)
        result = SOURCE.parse_list(mirror_body(MIRROR, url), url)
        seen.append((mirror_file(MIRROR, url), result))
        if not result.has_more or not result.records:
            return seen
        page += 1
        assert page < 10, "the walk does not end"


def answer_with(*items: dict[str, Any], pages: int = 1) -> str:
    return json.dumps({"code": 0, "msg": "success", "data": {"results": items, "pageCount": pages}})


def item(**fields: Any) -> dict[str, Any]:
    return {
        "id": 17826099999999,
        "title": "[Initial Listing] MEXC Will List Example (EXMP)",
        "createdAt": "2026-07-10T08:00:00Z",
        "sectionId": int(LISTINGS),
        "routerUrl": "/support/articles/17826099999999",
        "parentSections": [{"name": "New Listings"}],
    } | fields


def parse_one(**fields: Any):
    (record,) = SOURCE.parse_list(answer_with(item(**fields)), SOURCE.list_url()).records
    return record


def detail_of(article_id: str) -> bytes:
    return (MIRROR / "details" / f"{article_id}.json").read_bytes()


# --- list items -----------------------------------------------------------------------------


def test_list_items_become_records_with_utc_ms_times():
    page = fetch(SOURCE.list_url(size=RECORDED))

    assert len(page.records) == RECORDED
    second = page.records[1]  # the first is the pinned article
    assert (second.source, second.kind, second.language) == ("mexc", "announcement", "en")
    assert second.external_id == "17826036590405"
    assert second.title == "MEXC Launchpool: Stake USDT to Share 1,200,000 KWRI"
    # createdAt "2026-07-09T12:00:00Z"
    assert format_time(second.published_at) == "2026-07-09T12:00:00.000Z"
    assert second.url == "https://www.mexc.com/support/articles/17826036590405"
    assert second.category == "Latest Events"
    assert second.extra == {"section_id": "15425930840758"}
    assert (second.body_html, second.body_text) == (None, None)  # the detail has the body
    assert prepare(second).event_type == "promotion"


def test_listing_subsection_gives_its_event_type():
    listed = parse_one()

    assert listed.category == "New Listings"
    assert listed.event_type == "listing"
    assert prepare(listed).event_type == "listing"


def test_title_entities_are_decoded_and_spaces_normalized():
    pinned = fetch(SOURCE.list_url(size=RECORDED)).records[0]
    assert load("articles_all_p1.json")["data"]["results"][0]["title"].count("&amp;") == 1
    assert pinned.title == "MEXC Zero-Fee Carnival: 0 Fees on 100+ Spot & Futures Pairs"

    assert (
        parse_one(title="  MEXC  Will List\tA &lt;B&gt; (AB) ").title == "MEXC Will List A <B> (AB)"
    )


@pytest.mark.parametrize(
    ("created_at", "stored"),
    [
        ("2026-07-06T08:00:00.412Z", "2026-07-06T08:00:00.412Z"),  # with milliseconds
        ("2026-07-06T08:00:00Z", "2026-07-06T08:00:00.000Z"),  # whole seconds
        ("2026-07-06T08:00:00.412345Z", "2026-07-06T08:00:00.412Z"),  # microseconds cut
        ("2026-07-06T08:00:00", "2026-07-06T08:00:00.000Z"),  # no zone: UTC all the same
        ("2026-07-06T16:00:00+08:00", "2026-07-06T08:00:00.000Z"),  # an offset is honoured
    ],
)
def test_created_at_is_read_as_utc_with_or_without_fraction(created_at, stored):
    assert format_time(parse_one(createdAt=created_at).published_at) == stored


def test_the_sample_time_with_milliseconds_keeps_them():
    records_by_id = {r.external_id: r for _, page in walk() for r in page.records}
    assert format_time(records_by_id["17826033580805"].published_at) == "2026-07-06T08:00:00.412Z"


@pytest.mark.parametrize("value", [17826099999999, "17826099999999", " 17826099999999 "])
def test_id_is_kept_as_its_digits_whether_number_or_text(value):
    assert parse_one(id=value).external_id == "17826099999999"


def test_url_is_the_router_path_on_the_site_else_built_from_the_id():
    assert parse_one().url == "https://www.mexc.com/support/articles/17826099999999"
    assert parse_one(routerUrl=None).url == "https://www.mexc.com/support/articles/17826099999999"
    # A router URL off MEXC's site is not trusted as the canonical URL.
    assert (
        parse_one(routerUrl="https://evil.example/x").url
        == "https://www.mexc.com/support/articles/17826099999999"
    )
    (zh,) = SOURCE.parse_list(answer_with(item(routerUrl=None)), SOURCE.list_url(), "zh").records
    assert zh.url == "https://www.mexc.com/zh-CN/support/articles/17826099999999"


def test_category_is_the_parent_section_names_else_the_known_sections():
    several = [{"name": "Announcements"}, {"name": "New Listings"}]
    assert parse_one(parentSections=several).category == "Announcements, New Listings"
    assert parse_one(parentSections=[]).category == "New Listings"  # section 15425930840735
    assert parse_one(parentSections=None, sectionId=1).category is None
    assert parse_one(parentSections="New Listings").category == "New Listings"  # not a list
    assert parse_one(sectionId=None).extra == {}


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"id": None}, "no usable id"),
        ({"id": 1.78e13}, "no usable id"),
        ({"id": True}, "no usable id"),
        ({"id": "abc"}, "no usable id"),
        ({"title": " "}, "no title"),
        ({"createdAt": "soon"}, "no readable time"),
        ({"createdAt": None}, "no readable time"),
    ],
)
def test_an_unusable_item_is_left_out_and_listed(fields, reason):
    page = SOURCE.parse_list(
        answer_with(item(id=17826000000001), item(**fields)), SOURCE.list_url()
    )

    assert [r.external_id for r in page.records] == ["17826000000001"]
    (unusable,) = page.unusable
    assert unusable.index == 1
    assert reason in unusable.reason


def test_a_page_of_only_unusable_items_or_a_wrong_shape_is_a_parse_error():
    url = SOURCE.list_url()
    with pytest.raises(ParseError, match="none of the 1 items"):
        SOURCE.parse_list(answer_with(item(title=None)), url)
    with pytest.raises(ParseError, match="not JSON"):
        SOURCE.parse_list(b"<html>Access Denied</html>", url)
    with pytest.raises(ParseError, match=r"data\.results is not a list"):
        SOURCE.parse_list(json.dumps({"code": 0, "msg": "success", "data": []}), url)
    with pytest.raises(ParseError, match=r"data\.results is not a list"):
        SOURCE.parse_list(json.dumps({"code": 0, "data": {"results": None}}), url)
    with pytest.raises(ParseError, match="no code"):
        SOURCE.parse_list(json.dumps({"data": {"results": []}}), url)


@pytest.mark.parametrize(
    "answer",
    [
        {"code": 500, "msg": "system error", "data": None},
        {"code": "401", "msg": "unauthorized"},
        {"code": -1, "msg": "", "data": {"results": []}},
    ],
)
def test_a_failure_envelope_is_refused_not_rate_limited(answer):
    with pytest.raises(EnvelopeError) as caught:
        SOURCE.parse_list(json.dumps(answer), SOURCE.list_url())
    assert caught.value.code == str(answer["code"])
    assert caught.value.message == answer["msg"]
    assert not caught.value.rate_limited


def test_a_success_code_as_text_is_success():
    text = json.dumps({"code": "0", "msg": "success", "data": {"results": [item()]}})
    assert len(SOURCE.parse_list(text, SOURCE.list_url()).records) == 1


# --- paging ---------------------------------------------------------------------------------


def test_the_top_section_walk_reads_every_announcement_once_and_ends_at_page_count():
    seen = walk()

    assert [name for name, _ in seen] == [
        "articles_all_p1.json",
        "articles_all_p2.json",
        "articles_all_p3.json",
    ]
    assert [page.has_more for _, page in seen] == [True, True, False]
    ids = [r.external_id for _, page in seen for r in page.records]
    assert len(ids) == len(set(ids)) == 30
    assert ids[0] == PINNED
    # Newest first after the pinned article, which is the oldest of all.
    times = [r.published_at for _, page in seen for r in page.records]
    assert times[1:] == sorted(times[1:], reverse=True)
    assert times[0] == min(times)


def test_production_size_asks_the_whole_sample_in_one_page():
    ((name, page),) = walk(size=SOURCE.page_size)

    assert name is None  # the mirror re-pages its recorded files to 30
    assert len(page.records) == 30
    assert not page.has_more


def test_without_page_count_a_full_page_asks_for_more():
    url = SOURCE.list_url(size=3)
    full = json.dumps({"code": 0, "data": {"results": [item(id=n) for n in (1, 2, 3)]}})
    short = json.dumps({"code": 0, "data": {"results": [item(id=1)]}})
    assert SOURCE.parse_list(full, url).has_more
    assert not SOURCE.parse_list(short, url).has_more
    assert not SOURCE.parse_list(answer_with(pages=3), SOURCE.list_url(2)).has_more  # empty


def test_a_subsection_lists_the_same_announcements_under_the_same_identity():
    listings = [r for _, page in walk(LISTINGS) for r in page.records]
    everything = {r.external_id: r for _, page in walk() for r in page.records}

    assert len({r.external_id for r in listings}) == 12
    for record in listings:
        assert everything[record.external_id].identity == record.identity
        assert everything[record.external_id].category == record.category
        assert everything[record.external_id].url == record.url


def test_list_urls_put_locale_and_section_in_the_path():
    assert SOURCE.list_url() == (
        "https://www.mexc.com/help/announce/api/en-US/section/360000254192/articles"
        "?page=1&perPage=30"
    )
    assert SOURCE.list_url(2, category=LISTINGS, language="zh", size=10) == (
        "https://www.mexc.com/help/announce/api/zh-CN/section/15425930840735/articles"
        "?page=2&perPage=10"
    )
    assert mirror_file(MIRROR, SOURCE.list_url(2, size=10)) == "articles_all_p2.json"
    assert mirror_file(MIRROR, SOURCE.list_url(category=LISTINGS, size=10)) == (
        "articles_new_listings_p1.json"
    )
    with pytest.raises(ValueError, match="page sizes 3, 8, 10, 20, 30, not 50"):
        SOURCE.list_url(size=50)
    assert SOURCE.language_of(SOURCE.list_url(language="zh")) == "zh"


def test_every_known_section_reads_as_its_event_type():
    for category in SOURCE.categories.values():
        assert category_event(category.name) == category.event_type, category.name


def test_requests_send_browser_headers():
    headers = SOURCE.headers("zh")
    assert headers["User-Agent"].startswith("Mozilla/5.0")
    assert "Sec-Ch-Ua" in headers
    assert "locale" not in headers  # the locale is in the path


# --- details --------------------------------------------------------------------------------


def test_detail_gives_the_listed_record_its_sanitized_body():
    listed = {r.external_id: r for r in fetch(SOURCE.list_url(size=RECORDED)).records}
    article = "17826035422370"
    url = SOURCE.detail_url(article)

    record = SOURCE.parse_detail(detail_of(article), url, "en", listed[article])

    assert url == "https://www.mexc.com/help/announce/api/en-US/article/17826035422370"
    assert SOURCE.is_detail(url)
    assert not SOURCE.is_detail(SOURCE.list_url())
    assert (record.external_id, record.title, record.url, record.category) == (
        article,
        listed[article].title,
        listed[article].url,
        "New Listings",
    )
    assert record.published_at == listed[article].published_at
    assert record.body_html is not None
    assert "<li>Maximum leverage: 50x</li>" in record.body_html
    assert record.body_text == (
        "MEXC Futures will launch the KWRIUSDT USDT-M perpetual contract at 08:00 (UTC) on "
        "July 8, 2026.\n\n- Maximum leverage: 50x\n- Funding interval: every 4 hours"
    )


def test_detail_body_entities_are_decoded_in_the_text():
    listed = fetch(SOURCE.list_url(size=RECORDED)).records[0]
    record = SOURCE.parse_detail(detail_of(PINNED), SOURCE.detail_url(PINNED), "en", listed)
    assert record.body_text == (
        "From June 2 to July 31, 2026, trade 100+ spot & futures pairs with zero maker fees."
    )


def test_detail_html_is_sanitized_and_article_links_are_resolved():
    body = (
        '<p onclick="x()">See <a href="/support/articles/17826036512976">the listing</a> and '
        '<a href="https://www.mexc.com/zh-CN/support/articles/17826035422370">futures</a>, '
        '<a href="https://example.org/kwri">Kiwari</a>.</p><script>alert(1)</script>'
    )
    answer = json.dumps({"code": 0, "msg": "success", "data": {"body": body}})
    listed = parse_one()

    record = SOURCE.parse_detail(answer, SOURCE.detail_url(listed.external_id), "en", listed)

    assert record.body_html is not None
    assert "script" not in record.body_html
    assert "onclick" not in record.body_html
    assert record.body_text == "See the listing and futures, Kiwari."
    assert [(link.url, link.target_external_id) for link in record.links] == [
        ("https://www.mexc.com/support/articles/17826036512976", "17826036512976"),
        ("https://www.mexc.com/zh-CN/support/articles/17826035422370", "17826035422370"),
        ("https://example.org/kwri", None),
    ]


def test_detail_without_body_keeps_the_listing():
    listed = parse_one()
    answer = json.dumps({"code": 0, "data": {"body": None}})
    record = SOURCE.parse_detail(answer, SOURCE.detail_url(listed.external_id), "en", listed)
    assert (record.body_html, record.body_text, record.title) == (None, None, listed.title)


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ({"code": 0, "data": None}, "data is not an object"),
        ({"code": 0, "data": {"content": "<p>x</p>"}}, "data has no body"),
        ({"code": 0, "data": {"body": ["<p>x</p>"]}}, "data.body is a list"),
        ({"code": 0, "data": {"id": 17826000000001, "body": "<p>x</p>"}}, "holds article"),
    ],
)
def test_a_wrong_detail_is_a_parse_error(answer, error):
    listed = parse_one()
    with pytest.raises(ParseError, match=error):
        SOURCE.parse_detail(json.dumps(answer), SOURCE.detail_url(listed.external_id), "en", listed)


def test_a_detail_for_another_article_than_listed_is_refused():
    listed = parse_one()
    with pytest.raises(ParseError, match="not the listed 17826099999999"):
        SOURCE.parse_detail(detail_of(PINNED), SOURCE.detail_url(PINNED), "en", listed)


def test_a_failure_envelope_on_a_detail_is_refused():
    answer = json.dumps({"code": 404, "msg": "article not found", "data": None})
    with pytest.raises(EnvelopeError, match="article not found"):
        SOURCE.parse_detail(answer, SOURCE.detail_url(PINNED), "en", parse_one(id=PINNED))


# --- reparse --------------------------------------------------------------------------------


def raw(url: str, body: bytes) -> RawResponse:
    return RawResponse(url, 200, "application/json", body, datetime(2026, 7, 10, tzinfo=UTC))


def test_reparse_of_a_list_answer_gives_no_records_the_details_are_archived():
    url = SOURCE.list_url(size=RECORDED)
    assert MexcAnnouncementsSpider.parse_snapshot(raw(url, mirror_body(MIRROR, url))) == []


def test_reparse_of_a_detail_alone_needs_its_title_and_time_in_the_detail():
    url = SOURCE.detail_url(PINNED)
    with pytest.raises(ParseError, match="detail without its listing"):
        MexcAnnouncementsSpider.parse_snapshot(raw(url, detail_of(PINNED)))

    whole = {"code": 0, "data": {**item(id=int(PINNED)), "body": "<p>Zero fees.</p>"}}
    (record,) = MexcAnnouncementsSpider.parse_snapshot(raw(url, json.dumps(whole).encode()))
    assert (record.external_id, record.body_text, record.language) == (PINNED, "Zero fees.", "en")


def test_reparse_of_a_list_with_an_unusable_item_still_fails():
    url = SOURCE.list_url()
    body = answer_with(item(), item(id=None)).encode()
    with pytest.raises(ParseError, match="1 unusable items"):
        MexcAnnouncementsSpider.parse_snapshot(raw(url, body))


# --- blocks ---------------------------------------------------------------------------------

ACCESS_DENIED = (
    b"<HTML><HEAD>\n<TITLE>Access Denied</TITLE>\n</HEAD><BODY>\n<H1>Access Denied</H1>\n \n"
    b"You don't have permission to access \"http&#58;&#47;&#47;www&#46;mexc&#46;com&#47;help"
    b'&#47;announce&#47;api&#47;en&#45;US&#47;section&#47;360000254192&#47;articles&#63;" on '
    b"this server.<P>\nReference&#32;&#35;18&#46;2f3c1002&#46;1790000000&#46;1a2b3c4d\n"
    b"</BODY>\n</HTML>\n"
)
CHALLENGE = (
    b'<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title>'
    b'<meta http-equiv="refresh" content="360"></head><body><noscript>Enable JavaScript and '
    b"cookies to continue</noscript><script>(function(){window._cf_chl_opt={cType:'managed'};"
    b"var a=document.createElement('script');a.src='/cdn-cgi/challenge-platform/h/g/orchestrate"
    b"/chl_page/v1';document.head.appendChild(a);}());</script></body></html>"
)


def test_mexc_block_pages_are_blocks():
    html_type = {"content-type": "text/html"}
    assert classify(403, html_type, ACCESS_DENIED) == "akamai"
    cloudflare = html_type | {"server": "cloudflare", "cf-mitigated": "challenge"}
    assert classify(403, cloudflare, CHALLENGE) == "challenge"
    # Cloudflare's mark alone says so, whatever the page and status.
    assert classify(200, {"cf-mitigated": "challenge"}, b"{}") == "challenge"
    # Without it, the 403 is still a block (never a deletion).
    assert classify(403, html_type | {"server": "cloudflare"}, CHALLENGE) == "forbidden"
    assert (
        classify(200, {"content-type": "application/json"}, mirror_body(MIRROR, SOURCE.list_url()))
        is None
    )


# --- the navigator, in process --------------------------------------------------------------


def spider_on(db: Path, **arguments: str) -> MexcAnnouncementsSpider:
    spider = _spider_on(MexcAnnouncementsSpider, db, page_size=str(RECORDED), **arguments)
    spider.run.start(spider.name)
    return spider


def first_page(spider: MexcAnnouncementsSpider, body: bytes | None = None) -> list[Any]:
    (request,) = drain(spider.start())
    return feed(request, body or mirror_body(MIRROR, request.meta["annals_url"]))


def archive(db: Path, *names: str, finished: datetime | None = None) -> None:
    """A finished crawl (started at `finished`) that archived the listed articles of
    these list files with their details."""
    url = f"sqlite:///{db}"
    open_archive(url, create=True).dispose()
    store = Store(make_engine(url))
    run = store.start_run(MexcAnnouncementsSpider.name, started_at=finished)
    listed = [
        r for name in names for r in SOURCE.parse_list((MIRROR / name).read_bytes(), "u").records
    ]
    store.write(
        [
            SOURCE.parse_detail(detail_of(r.external_id), SOURCE.detail_url(r.external_id), "en", r)
            for r in listed
        ]
    )
    store.finish_run(run, "finished", {})


def detail_ids(output: list[Any]) -> list[str]:
    return [r.cb_kwargs["listed"].external_id for r in requests(output) if "listed" in r.cb_kwargs]


def next_pages(output: list[Any]) -> list[str]:
    return [r.meta["annals_url"] for r in requests(output) if "listing" in r.cb_kwargs]


def test_a_known_pinned_article_on_top_neither_ends_the_listing_nor_is_fetched_again(tmp_path):
    db = tmp_path / "annals.db"
    archive(db, "articles_latest_events_p1.json")  # the pinned article among them

    output = first_page(spider_on(db))

    new = [r["id"] for r in load("articles_all_p1.json")["data"]["results"]]
    known = {str(r["id"]) for r in load("articles_latest_events_p1.json")["data"]["results"]}
    assert detail_ids(output) == [str(i) for i in new if str(i) not in known]
    assert PINNED not in detail_ids(output)
    assert next_pages(output) == [SOURCE.list_url(2, size=RECORDED)]
    assert records(output) == []  # only details are archived


def test_an_old_pinned_article_does_not_end_the_repair_walk(tmp_path):
    db = tmp_path / "annals.db"
    results = load("articles_all_p1.json")["data"]["results"]
    pinned, last = results[0]["createdAt"], results[-1]["createdAt"]
    assert pinned < last  # the sample's pinned article is older than the whole page
    # The last complete crawl started after the pinned article and before the page's last
    # item; the crawl after it broke off.
    archive(db, "articles_all_p1.json", finished=datetime(2026, 6, 10, tzinfo=UTC))
    url = f"sqlite:///{db}"
    store = Store(make_engine(url))
    store.finish_run(store.start_run(MexcAnnouncementsSpider.name), "failed", {})

    output = first_page(spider_on(db))

    assert detail_ids(output) == []
    assert next_pages(output) == [SOURCE.list_url(2, size=RECORDED)]


def test_the_same_article_in_two_sections_is_fetched_once_per_run(tmp_path):
    db = tmp_path / "annals.db"
    spider = spider_on(db, categories=f"{TOP},{LISTINGS}")
    top, sub = drain(spider.start())
    asked = feed(top, mirror_body(MIRROR, top.meta["annals_url"]))
    again = feed(sub, mirror_body(MIRROR, sub.meta["annals_url"]))

    assert len(detail_ids(asked)) == RECORDED
    in_both = set(detail_ids(asked)) & {
        str(r["id"]) for r in load("articles_new_listings_p1.json")["data"]["results"]
    }
    assert in_both
    assert not set(detail_ids(again)) & in_both


def test_unchanged_title_of_an_old_article_asks_no_detail_an_edited_one_does(tmp_path):
    db = tmp_path / "annals.db"
    archive(db, "articles_all_p1.json")
    page = load("articles_all_p1.json")
    edited = page["data"]["results"][3]
    edited["title"] = html.unescape(edited["title"]) + " (Updated)"

    output = first_page(spider_on(db), json.dumps(page).encode())

    assert detail_ids(output) == [str(edited["id"])]
    assert next_pages(output) == []  # nothing new: the listing ends


def test_list_and_detail_requests_carry_the_browser_headers(tmp_path):
    spider = spider_on(tmp_path / "annals.db", lang="zh")
    (listing,) = drain(spider.start())
    english = mirror_body(MIRROR, SOURCE.list_url(size=RECORDED))  # the mirror has no zh-CN
    (detail, *_) = [r for r in requests(feed(listing, english)) if "listed" in r.cb_kwargs]

    assert "/help/announce/api/zh-CN/section/360000254192/articles" in listing.url
    assert "/help/announce/api/zh-CN/article/" in detail.url
    for request in (listing, detail):
        assert request.headers[b"User-Agent"].startswith(b"Mozilla/5.0")
        assert request.headers[b"Sec-Fetch-Mode"] == b"navigate"
