"""The source contract's URL building and paging forms, on small sources made here: a
path-templated endpoint and detail, an end-only cursor, a one-answer list, a bare answer,
sent headers, walked categories. The sources of crawler.sources use these in earnest;
these tests pin the forms themselves."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from archive.records import Record
from crawler.sources.contract import (
    Bare,
    Detail,
    Envelope,
    Items,
    OnePage,
    PageNumbers,
    Source,
    TimeWindows,
)
from crawler.sources.parsing import Category, EnvelopeError, ListPage


def _record(item: Any, language: str) -> Record:
    return SOURCE.announcement(
        language,
        str(item["id"]),
        f"https://example.test/a/{item['id']}",
        title=item["title"],
        published_at=datetime.fromtimestamp(item["ms"] / 1000, UTC),
    )


def _detail(data: Any, url: str, language: str, listed: Record | None) -> Record:
    raise NotImplementedError


SOURCE = Source(
    source="example",
    spider="example_announcements",
    hosts=("api.example.test",),
    endpoint="https://api.example.test/help/{language}/section/{category}/articles",
    paging=PageNumbers("page", size="perPage"),
    page_size=30,
    page_sizes=frozenset({10, 30}),
    envelope=Envelope(ok="0"),
    items=lambda data, url: Items(data["data"], bool(data["data"])),
    record=_record,
    categories={"7": Category("7", "Listings", "listing"), "9": Category("9", "Other", None)},
    category_param="section",
    category_default="1",
    languages={"ko": "ko-KR", "en": "en-US"},
    language_in="path",
    language_key="",
    detail=Detail("https://api.example.test/help/{language}/article/{id}", None, _detail),
    headers_sent={"X-Source-Key": "annals"},
)


def test_a_path_template_takes_the_language_and_category_and_leaves_them_out_of_the_query():
    assert SOURCE.list_url(2, category="7", language="en") == (
        "https://api.example.test/help/en-US/section/7/articles?page=2&perPage=30"
    )
    # No category asked: the source's default one, in the path too.
    assert SOURCE.list_url(language="ko", size=10) == (
        "https://api.example.test/help/ko-KR/section/1/articles?page=1&perPage=10"
    )
    assert SOURCE.language_of("https://api.example.test/help/en-US/section/1/articles") == "en"
    assert SOURCE.language_of("https://api.example.test/help/xx/section/1/articles") == "ko"


def test_a_detail_template_is_filled_quoted_and_recognised_by_its_path():
    url = SOURCE.detail_url("12 3/4", "en")
    assert url == "https://api.example.test/help/en-US/article/12%203%2F4"
    assert SOURCE.is_detail(url)
    assert SOURCE.is_detail("https://api.example.test/help/ko-KR/article/55")
    assert not SOURCE.is_detail("https://api.example.test/help/ko-KR/section/1/articles")
    assert not SOURCE.is_detail("https://api.example.test/help/ko-KR/article/55/more")


def test_sent_headers_go_with_a_header_chosen_language():
    assert SOURCE.headers("en") == {"X-Source-Key": "annals"}
    by_header = replace(SOURCE, language_in="header", language_key="Accept-Language")
    assert by_header.headers("ko") == {"X-Source-Key": "annals", "Accept-Language": "ko-KR"}


def test_an_end_only_cursor_sends_its_end_and_size_and_steps_back_when_stuck():
    cursor = replace(
        SOURCE,
        endpoint="https://api.example.test/posts",
        paging=TimeWindows(start=None, end="end", size="limit"),
        page_sizes=frozenset({30}),
        category_default=None,
    )
    assert cursor.list_url() == "https://api.example.test/posts?limit=30"
    assert cursor.list_url(end_time=1000) == "https://api.example.test/posts?end=1000&limit=30"
    with pytest.raises(ValueError, match=r"not \{'start_time'\}"):
        cursor.list_url(start_time=5)

    def page(*ms: int) -> ListPage:
        items = [{"id": m, "title": "t", "ms": m} for m in ms]
        return ListPage(records=[_record(i, "en") for i in items], has_more=True)

    paging = cursor.paging
    assert isinstance(paging, TimeWindows)
    assert paging.next_window(page(3000, 2000)) == {"end_time": 2000}  # inclusive
    # The cursor item alone came back: the end moves one millisecond back.
    assert paging.next_window(page(2000), {"end_time": 2000}) == {"end_time": 1999}
    assert paging.next_window(ListPage(records=[], has_more=False), {"end_time": 1999}) is None


def test_a_one_answer_list_asks_no_page_and_refuses_one():
    one = replace(
        SOURCE,
        endpoint="https://api.example.test/notices",
        paging=OnePage(size="count"),
        page_sizes=frozenset({20}),
        page_size=20,
        category_default=None,
    )
    assert one.list_url() == "https://api.example.test/notices?count=20"
    with pytest.raises(ValueError, match="whole list on one page"):
        one.list_url(2)
    bare = replace(one, paging=OnePage(), page_size=0, page_sizes=frozenset())
    assert bare.list_url() == "https://api.example.test/notices"


def test_a_bare_answer_is_read_by_items_alone():
    bare = replace(SOURCE, envelope=Bare())
    page = bare.parse_list(b'{"data": [{"id": 1, "title": "A", "ms": 0}]}', "u")
    assert [r.external_id for r in page.records] == ["1"]
    with pytest.raises(EnvelopeError, match="code 5"):
        SOURCE.parse_list(b'{"code": 5, "msg": "no", "data": []}', "u")
