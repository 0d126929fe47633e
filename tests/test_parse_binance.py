"""Binance parse layer on the saved mirror payloads: list, detail, node tree, envelopes."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest

from archive.normalize import classify_event, extract_symbols, format_time, prepare
from archive.records import ParseError, Record
from crawler.sources import binance, nodetree
from crawler.sources.parsing import EnvelopeError, ListPage
from tests.helpers import FIXTURES, mirror_file

MIRROR = FIXTURES / "binance"
FETCHED = datetime(2026, 6, 20, 12, 0, tzinfo=UTC)
LUMN = "047d70df37be53bcc3496077036ca5f7"  # listed in catalogs 48 and 49
NIMB_AIRDROP = "8acf304e8d6029fa864a55f14a598820"  # listed in catalogs 48 and 128
LEGACY = "360030421472"  # published 2019: a legacy digit code and an HTML body
CURRENT = "5c1e9a0b7d3f48e2a6b4c8d0e2f41a37"  # the 2026 detail answer's shape
RECORDED = 10  # the size the mirror's list pages were recorded at (production asks 50)


def list_page(name: str, page: int = 1, category: str | None = None) -> ListPage:
    url = binance.SOURCE.list_url(page, category=category, size=RECORDED)
    assert mirror_file(MIRROR, url) == name
    return binance.SOURCE.parse_list((MIRROR / name).read_bytes(), url)


def detail(code: str, listed: Record | None = None) -> Record:
    body = (MIRROR / "details" / f"{code}.json").read_bytes()
    return binance.SOURCE.parse_detail(body, binance.SOURCE.detail_url(code), listed=listed)


def test_list_items_become_records_with_utc_ms_times():
    page = list_page("list_c48_p1.json", category="48")

    first = page.records[0]
    assert len(page.records) == 10
    assert first.source == "binance"
    assert first.kind == "announcement"
    assert first.external_id == "bdde772060dea41fca715342ee381c22"
    assert first.language == "en"
    assert first.title == (
        "Binance Futures Will Launch USDⓈ-Margined KSTRUSDT Perpetual Contract (2026-06-18)"
    )
    # releaseDate 1781776961337
    assert format_time(first.published_at) == "2026-06-18T10:02:41.337Z"
    assert first.url == (
        "https://www.binance.com/en/support/announcement/bdde772060dea41fca715342ee381c22"
    )
    assert first.category == "New Cryptocurrency Listing"
    assert first.extra["catalog_id"] == 48
    assert first.extra["article_id"] == 269543
    assert classify_event(first.title, first.event_type) == "listing"
    assert first.body_html is None  # the list has no body: the spider fetches the detail
    assert first.body_text is None


def test_list_has_more_until_the_last_page_and_not_past_it():
    assert list_page("list_c48_p1.json", 1, "48").has_more is True
    assert list_page("list_c48_p2.json", 2, "48").has_more is True
    last = list_page("list_c48_p3.json", 3, "48")
    assert (len(last.records), last.has_more) == (4, False)  # 10 + 10 + 4 of 24
    empty = list_page("list_c48_p4.json", 4, "48")
    assert (empty.records, empty.has_more) == ([], False)


def test_all_catalogs_page_has_more_while_one_catalog_has_more():
    assert list_page("list_all_p2.json", 2).has_more is True  # catalog 48 still has 3
    assert list_page("list_all_p3.json", 3).has_more is False
    assert list_page("list_all_p4.json", 4).records == []


def test_article_in_two_catalogs_gets_one_external_id():
    in_listings = next(
        r
        for name, page in (("list_c48_p2.json", 2), ("list_c48_p3.json", 3))
        for r in list_page(name, page, "48").records
        if r.external_id == LUMN
    )
    in_news = next(
        r for r in list_page("list_c49_p1.json", 1, "49").records if r.external_id == LUMN
    )

    assert in_listings.identity == in_news.identity
    assert in_listings.url == in_news.url
    assert (in_listings.category, in_news.category) == (
        "New Cryptocurrency Listing",
        "Latest Binance News",
    )


def test_article_twice_on_one_page_gives_one_record_with_both_catalogs():
    records = list_page("list_all_p1.json").records

    airdrop = [r for r in records if r.external_id == NIMB_AIRDROP]
    assert len(airdrop) == 1
    assert sorted(airdrop[0].extra["catalog_ids"]) == [48, 128]
    assert len({r.external_id for r in records}) == len(records)


def test_detail_category_is_the_same_whichever_catalog_listed_it():
    via_news = next(
        r for r in list_page("list_c49_p1.json", 1, "49").records if r.external_id == LUMN
    )

    from_news = detail(LUMN, listed=via_news)
    alone = detail(LUMN)

    assert from_news.identity == alone.identity
    assert from_news.category == alone.category == "New Cryptocurrency Listing"
    assert from_news.extra["catalog_id"] == 48
    assert sorted(from_news.extra["catalog_ids"]) == [48, 49]


def test_detail_becomes_the_archived_record():
    record = detail(LUMN)

    assert record.external_id == LUMN
    assert record.title == "Binance Will List Lumen Protocol (LUMN) with Seed Tag Applied"
    # publishDate 1779349699806
    assert format_time(record.published_at) == "2026-05-21T07:48:19.806Z"
    assert record.url == f"https://www.binance.com/en/support/announcement/{LUMN}"
    assert record.body_text is not None
    assert "LUMN/USDT, LUMN/USDC and LUMN/TRY trading pairs at 2026-05-22 10:00 (UTC)" in (
        record.body_text
    )
    assert "- Trading: 2026-05-22 10:00 (UTC)" in record.body_text
    assert classify_event(record.title, record.event_type) == "listing"
    assert record.symbols is None
    assert extract_symbols(record.title, record.body_text) == ["LUMN"]
    assert record.extra["disclaimer"].startswith("Disclaimer:")


def test_delisting_detail_names_its_tokens():
    record = detail("8b927817cf5b36e00df5f296e9d43931")

    assert record.category == "Delisting"
    assert classify_event(record.title, record.event_type) == "delisting"
    assert extract_symbols(record.title, record.body_text)[:3] == ["ORBT", "PRSM", "WHSK"]
    assert "ORBT/BTC, ORBT/USDT, PRSM/TRY" in (record.body_text or "")


def test_maintenance_detail_keeps_its_hint():
    record = detail("82beb602022a29e462da31112e6b579a")

    assert record.category == "Wallet Maintenance Updates"
    assert classify_event(record.title, record.event_type) == "maintenance"
    assert "DOT" in extract_symbols(record.title, record.body_text)


def test_node_tree_to_html_keeps_paragraphs_lists_tables_and_links():
    tree = json.loads(json.loads((MIRROR / "details" / f"{LUMN}.json").read_text())["data"]["body"])
    markup = nodetree.node_tree_to_html(tree)

    assert markup.startswith("<p>Fellow Binancians,</p>")
    assert "<ul><li><strong>Deposit Opening: </strong>Opened</li>" in markup
    assert '<a href="https://www.binance.com/en/support/faq">Seed Tag FAQ</a>' in markup
    assert "target=" not in markup
    assert "rel=" not in markup

    table = detail("bdde772060dea41fca715342ee381c22")
    assert "<table><tbody><tr><td>USDⓈ-M Perpetual Contract</td><td>KSTRUSDT</td></tr>" in (
        table.body_html or ""
    )
    assert "Launch Time | 2026-06-18 12:30 (UTC)" in (table.body_text or "")


def test_node_tree_to_html_escapes_text_and_drops_unsafe_markup():
    def element(tag: str, *child: dict, **attr: object) -> dict:
        return {"node": "element", "tag": tag, "attr": attr, "child": list(child)}

    def text(value: str) -> dict:
        return {"node": "text", "text": value}

    tree = {
        "node": "root",
        "child": [
            element("p", text("<script>alert(1)</script> & AT&amp;T")),
            element("script", text("steal()")),
            element("style", text("p{}")),
            element("a", text("bad"), href="javascript:alert(1)"),
            element("a", text("ok"), href='https://example.com/?a=1&b="2"'),
            element("custom-box", element("em", text("kept"))),
            element("td", text("x"), colspan="2", onclick="evil()"),
            {"node": "comment", "text": "hidden"},
        ],
    }

    markup = nodetree.node_tree_to_html(tree)

    assert markup == (
        "<p>&lt;script&gt;alert(1)&lt;/script&gt; &amp; AT&amp;T</p>"
        "<a>bad</a>"
        '<a href="https://example.com/?a=1&amp;b=&quot;2&quot;">ok</a>'
        "<em>kept</em>"
        '<td colspan="2">x</td>'
    )


def test_list_urls_match_the_mirror_routes():
    # Production asks the largest size the list takes.
    assert binance.SOURCE.list_url(2, category="161") == (
        "https://www.binance.com/bapi/composite/v1/public/cms/article/list/query"
        "?type=1&catalogId=161&pageNo=2&pageSize=50"
    )
    assert mirror_file(MIRROR, binance.SOURCE.list_url(2, category="161", size=RECORDED)) == (
        "list_c161_p2.json"
    )
    assert mirror_file(MIRROR, binance.SOURCE.list_url(3, size=RECORDED)) == "list_all_p3.json"
    with pytest.raises(
        ValueError, match="binance takes page sizes 1, 2, 5, 10, 15, 20, 50, not 30"
    ):
        binance.SOURCE.list_url(1, size=30)
    assert mirror_file(MIRROR, binance.SOURCE.detail_url(LUMN)) == f"details/{LUMN}.json"
    assert binance.SOURCE.headers("zh") == {"lang": "zh-CN"}
    with pytest.raises(ValueError, match="pages start at 1"):
        binance.SOURCE.list_url(0)


def test_every_saved_detail_parses_with_a_body():
    for path in sorted((MIRROR / "details").glob("*.json")):
        record = detail(path.stem)
        assert record.external_id == path.stem
        assert record.body_text, path.name


@pytest.mark.parametrize(
    ("answer", "rate_limited"),
    [
        ({"code": "000002", "message": "illegal parameter", "data": None, "success": False}, False),
        ({"code": "000000", "message": None, "data": None, "success": False}, False),
        ({"code": 100001, "message": "busy", "data": None}, False),
    ],
)
def test_failure_envelope_raises_envelope_error(answer, rate_limited):
    url = binance.SOURCE.list_url(1)
    with pytest.raises(EnvelopeError) as caught:
        binance.SOURCE.parse_list(json.dumps(answer), url)
    assert caught.value.rate_limited is rate_limited
    assert caught.value.url == url


def test_success_code_given_as_a_number_is_accepted():
    binance.SOURCE.envelope.check({"code": 0, "success": True, "data": {}}, "u")


def test_malformed_json_raises_parse_error():
    with pytest.raises(ParseError, match="not JSON"):
        binance.SOURCE.parse_list(b'{"code":"000000",', binance.SOURCE.list_url(1))
    with pytest.raises(ParseError, match="catalogs"):
        binance.SOURCE.parse_list(
            b'{"code":"000000","success":true,"data":{}}', binance.SOURCE.list_url(1)
        )


def test_detail_whose_body_is_not_a_node_tree_raises_parse_error():
    answer = {"code": "000000", "success": True, "data": {"code": LUMN, "title": "T"}}
    answer["data"] |= {"publishDate": 1779349699806, "body": "{not json"}
    with pytest.raises(ParseError, match="node tree"):
        binance.SOURCE.parse_detail(json.dumps(answer), binance.SOURCE.detail_url(LUMN))


def test_unreadable_article_is_skipped_and_logged(caplog):
    answer = json.loads((MIRROR / "list_c49_p1.json").read_text())
    articles = answer["data"]["catalogs"][0]["articles"]
    articles[0]["releaseDate"] = "soon"
    del articles[1]["code"]

    with caplog.at_level(logging.WARNING, logger="crawler.sources.binance"):
        page = binance.SOURCE.parse_list(json.dumps(answer), binance.SOURCE.list_url(1))

    assert len(page.records) == len(articles) - 2
    assert len(caplog.records) == 2
    assert "releaseDate" in caplog.text


def test_page_of_only_unreadable_articles_raises_parse_error():
    answer = json.loads((MIRROR / "list_c49_p1.json").read_text())
    for article in answer["data"]["catalogs"][0]["articles"]:
        article["title"] = ""
    with pytest.raises(ParseError, match="none of the"):
        binance.SOURCE.parse_list(json.dumps(answer), binance.SOURCE.list_url(1))


def test_unknown_catalog_is_accepted_without_a_hint():
    answer = json.loads((MIRROR / "list_c49_p1.json").read_text())
    answer["data"]["catalogs"][0] |= {"catalogId": 999, "catalogName": "Brand New"}

    page = binance.SOURCE.parse_list(json.dumps(answer), binance.SOURCE.list_url(1))

    assert {(r.category, r.event_type) for r in page.records} == {("Brand New", None)}


# --- every real body, code and style form -----------------------------------------------------


def element(tag: str, *child: dict, **attr: object) -> dict:
    return {"node": "element", "tag": tag, "attr": attr, "child": list(child)}


def text(value: str) -> dict:
    return {"node": "text", "text": value}


def answer(**data: object) -> bytes:
    fields = {"code": CURRENT, "title": "T", "publishDate": 1781856012345} | data
    return json.dumps({"code": "000000", "success": True, "data": fields}).encode()


def parsed(**data: object) -> Record:
    return binance.SOURCE.parse_detail(answer(**data), binance.SOURCE.detail_url(CURRENT))


def test_pre_2020_article_has_an_html_body_and_a_digit_code():
    listed = next(
        r for r in list_page("list_c48_p3.json", 3, "48").records if r.external_id == LEGACY
    )
    record = detail(LEGACY, listed=listed)

    assert record.external_id == LEGACY == listed.external_id
    assert record.url == f"https://www.binance.com/en/support/announcement/{LEGACY}"
    assert format_time(record.published_at) == "2019-06-11T09:12:40.517Z"
    assert record.category == "New Cryptocurrency Listing"
    assert record.body_text is not None
    assert record.body_text.startswith(
        "Fellow Binancians,\n\nBinance will list Quasar Ledger (QSRL)"
    )
    assert "QSRL/BTC, QSRL/BNB and QSRL/USDT trading pairs at 2019/06/12 10:00 AM (UTC)" in (
        record.body_text
    )
    assert "- Fees & Limits: 0.1% trading fee" in record.body_text
    assert record.body_text.endswith("Binance Team\n2019/06/11")
    # The node tree's allow-list: links kept with their href only, no style, no target.
    markup = record.body_html or ""
    assert '<a href="https://www.binance.com/en/trade/QSRL_BTC">QSRL/BTC</a>' in markup
    assert "<p><span><strong>Note:</strong> QSRL is a relatively new token" in markup
    assert "style=" not in markup
    assert "target=" not in markup
    assert [link.url for link in record.links] == [
        "https://www.binance.com/en/trade/QSRL_BTC",
        "https://www.binance.com/en/trade/QSRL_BNB",
        "https://www.binance.com/en/trade/QSRL_USDT",
        "https://quasar-ledger.example.org/",
    ]


def test_html_body_and_node_tree_body_go_through_one_sanitizer():
    markup = (
        '<p onclick="evil()">AT&amp;T &lt;b&gt; <script>steal()</script>'
        '<a href="javascript:alert(1)">bad</a> <a href="/en/trade/X_USDT" target="_blank">ok</a>'
        "<!-- a comment --></p><custom-box><em>kept</em></custom-box>"
        '<table><tr><td colspan="2" style="width:50%"><p>a</p><p>b</p></td></tr></table>'
    )
    tree = {
        "node": "root",
        "child": [
            element(
                "p",
                text("AT&amp;T &lt;b&gt; "),
                element("script", text("steal()")),
                element("a", text("bad"), href="javascript:alert(1)"),
                text(" "),
                element("a", text("ok"), href="/en/trade/X_USDT", target="_blank"),
                {"node": "comment", "text": " a comment "},
                onclick="evil()",
            ),
            element("custom-box", element("em", text("kept"))),
            element(
                "table",
                element(
                    "tr",
                    element("td", element("p", text("a")), element("p", text("b")), colspan="2"),
                ),
            ),
        ],
    }
    expected = (
        '<p>AT&amp;T &lt;b&gt; <a>bad</a> <a href="/en/trade/X_USDT">ok</a></p><em>kept</em>'
        '<table><tr><td colspan="2">a<br>b</td></tr></table>'
    )
    from_html = parsed(body=markup)
    from_string = parsed(body=json.dumps(tree))
    from_object = parsed(body=tree)

    assert from_html.body_html == from_string.body_html == expected
    assert from_object.body_html == from_string.body_html
    assert from_html.body_text == from_string.body_text == "AT&T <b> bad ok\n\nkept\n\na\nb"
    assert [link.url for link in from_html.links] == ["https://www.binance.com/en/trade/X_USDT"]
    assert from_html.links == from_string.links == from_object.links


def test_node_tree_object_body_is_the_same_record_as_its_json_string():
    saved = json.loads((MIRROR / "details" / f"{LUMN}.json").read_text())
    as_string = detail(LUMN)
    saved["data"]["body"] = json.loads(saved["data"]["body"])
    as_object = binance.SOURCE.parse_detail(json.dumps(saved), binance.SOURCE.detail_url(LUMN))
    assert as_object.body_html == as_string.body_html
    assert as_object.body_text == as_string.body_text


@pytest.mark.parametrize(
    "style", ["color: #707a8a;", ["color:hsl(0,", "0%,", "60%);"], [], None, {"odd": 1}]
)
def test_style_is_a_string_or_a_list_of_fragments(style):
    tree = {
        "node": "root",
        "child": [
            element("p", element("span", text("Trading opens at 10:00 AM (UTC)."), style=style)),
            element("a", text("pair"), href=["https://www.binance.com/en/trade/A_USDT"]),
        ],
    }
    record = parsed(body=json.dumps(tree))
    assert record.body_html == (
        "<p><span>Trading opens at 10:00 AM (UTC).</span></p>"
        '<a href="https://www.binance.com/en/trade/A_USDT">pair</a>'
    )
    assert record.body_text == "Trading opens at 10:00 AM (UTC).\n\npair"


def test_saved_style_fragments_render():
    record = detail(CURRENT)
    raw = json.loads((MIRROR / "details" / f"{CURRENT}.json").read_text())["data"]["body"]
    assert '"style":["color:hsl(0,","0%,","60%);"]' in raw  # the fixture has the real shape
    assert (
        "<p><span><strong>Note: </strong>TSRG deposits open at 2026-06-19 12:00 (UTC).</span></p>"
        in (record.body_html or "")
    )


def test_2026_detail_keeps_the_risk_warning_out_of_the_announcement():
    record = detail(CURRENT)

    assert record.external_id == CURRENT
    assert (
        record.title == "Binance Will List Tessera (TSRG) with TSRG/USDT and TSRG/USDC Spot Pairs"
    )
    assert format_time(record.published_at) == "2026-06-19T08:00:12.345Z"
    # firstCatalogId/firstCatalogName stand for catalogId/catalogName.
    assert (record.category, record.extra["catalog_id"], record.extra["catalog_ids"]) == (
        "Latest Binance News",
        49,
        [49],
    )
    assert record.body_text is not None
    assert "TSRG/USDT and TSRG/USDC spot trading pairs at 2026-06-20 10:00 AM (UTC)" in (
        record.body_text
    )
    assert "Risk Warning" not in record.body_text
    assert "Risk Warning" not in (record.body_html or "")
    assert record.extra["risk_warning"].startswith("Risk Warning: Cryptocurrency trading is")
    assert record.updated_at is None  # lastUpdateTime 0: never updated
    assert record.extra["share_count"] == 37
    assert record.extra["related_articles"][0]["code"] == "d1b77ac59bf3776e1fa5cdc7fc607e0e"
    # pairs, contentJson and footer are null in the recorded answer: nothing to keep.
    assert not {"pairs", "content_json", "footer"} & set(record.extra)
    assert [link.url for link in record.links] == [
        "https://www.binance.com/en/trade/TSRG_USDT",
        "https://www.binance.com/en/trade/TSRG_USDC",
    ]


def test_2026_detail_optional_fields_are_kept_when_present():
    pairs = [{"symbol": "TSRGUSDT", "base": "TSRG", "quote": "USDT"}]
    record = parsed(
        body=json.dumps({"node": "root", "child": [element("p", text("x"))]}),
        firstCatalogId=48,
        firstCatalogName="New Cryptocurrency Listing",
        secondCatalogId=49,
        secondCatalogName="Latest Binance News",
        thirdCatalogId=None,
        pairs=pairs,
        contentJson={"blocks": []},
        footer="<p>Binance Team</p>",
        lastUpdateTime=1781942400000,
    )
    assert (record.category, record.extra["catalog_ids"]) == (
        "New Cryptocurrency Listing",
        [48, 49],
    )
    assert record.extra["pairs"] == pairs
    assert record.extra["content_json"] == {"blocks": []}
    assert record.extra["footer"] == "<p>Binance Team</p>"
    assert format_time(record.updated_at) == "2026-06-20T08:00:00.000Z"


def test_risk_warning_and_share_count_do_not_change_the_content_hash():
    saved = json.loads((MIRROR / "details" / f"{CURRENT}.json").read_text())
    first = prepare(detail(CURRENT))
    saved["data"]["shareCount"] = 9000
    saved["data"]["riskWarning"] = json.dumps({"node": "root", "child": [text("Other warning")]})
    again = binance.SOURCE.parse_detail(json.dumps(saved), binance.SOURCE.detail_url(CURRENT))
    assert prepare(again).content_hash == first.content_hash
    assert again.extra["risk_warning"] == "Other warning"


def test_legacy_digit_codes_are_codes_everywhere():
    code = "115001032752"
    listed = {
        "id": 1,
        "code": code,
        "title": "Binance Lists ABC",
        "type": 1,
        "releaseDate": 1520000000000,
    }
    page = {
        "catalogId": 48,
        "catalogName": "New Cryptocurrency Listing",
        "total": 1,
        "articles": [listed],
    }
    body = {"code": "000000", "success": True, "data": {"catalogs": [page]}}
    record = binance.SOURCE.parse_list(json.dumps(body), binance.SOURCE.list_url(1)).records[0]
    assert record.external_id == code
    assert record.url == f"https://www.binance.com/en/support/announcement/{code}"
    assert binance.SOURCE.detail_url(code).endswith(f"?articleCode={code}")
    # A link to another announcement, by either code form, points at that document.
    tree = {
        "node": "root",
        "child": [
            element(
                "a", text("old"), href=f"https://www.binance.com/en/support/announcement/{code}"
            ),
            element("a", text("new"), href=f"/zh-CN/support/announcement/{LUMN}"),
        ],
    }
    links = parsed(code=code, body=tree).links
    assert [(link.target_source, link.target_external_id) for link in links] == [
        ("binance", code),
        ("binance", LUMN),
    ]


def test_detail_whose_body_is_neither_a_node_tree_nor_text_raises_parse_error():
    with pytest.raises(ParseError, match="not a node tree or HTML"):
        parsed(body=12)
    html_text = parsed(body="[Update] Trading resumes at 10:00 AM (UTC).")
    assert html_text.body_text == "[Update] Trading resumes at 10:00 AM (UTC)."
