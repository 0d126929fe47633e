"""A URL a payload gives that `urlsplit` cannot read (an unbalanced '[' in its host raises
ValueError) is one bad link or item, never a crashed parse or a failed batch."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from archive.store import Store
from crawler.sources import bybit, gate, gate_square, okx
from tests.helpers import FIXTURES, rows

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _broken(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://[{rest}"


def test_a_sitemap_entry_with_an_unreadable_url_is_skipped_and_the_rest_read():
    body = (FIXTURES / "gate" / "sitemap-announcement-001.xml").read_text()
    url = "https://www.gate.com/sitemaps/sitemap-announcement-001.xml"
    whole = gate.parse_sitemap(body, url)
    first = body.split("<loc>", 1)[1].split("</loc>", 1)[0]
    entries = gate.parse_sitemap(body.replace(first, _broken(first), 1), url)
    assert [e.url for e in entries] == [e.url for e in whole][1:]


def test_an_unreadable_link_in_a_body_leaves_the_other_links_tickers(
    store: Store, engine, make_record
):
    body = (
        '<p>Trade <a href="https://[www.gate.com/trade/XYZ_USDT">here</a> and '
        '<a href="https://www.gate.com/trade/KORV_USDT">KORV/USDT</a>.</p>'
    )
    store.write([make_record(title="Gate Will List Two Tokens", body_html=body, tags=[])])
    (symbols,) = rows(engine, "SELECT symbols FROM versions")[0]
    assert "KORV" in json.loads(symbols)


def test_a_list_item_with_an_unreadable_url_is_an_unusable_item():
    for module, name, fixture in (
        (bybit, "bybit", "announcements_p1.json"),
        (okx, "okx", "announcements_p1.json"),
    ):
        data = json.loads((FIXTURES / name / fixture).read_text())
        items = data["result"]["list"] if name == "bybit" else data["data"][0]["details"]
        items[0]["url"] = _broken(items[0]["url"])
        page = module.SOURCE.parse_list(json.dumps(data), module.SOURCE.list_url(1))
        assert [u.index for u in page.unusable] == [0], name
        assert "no article URL" in page.unusable[0].reason
        assert len(page.records) == len(items) - 1


def test_a_square_post_with_an_unreadable_link_keeps_it_as_written():
    page = (FIXTURES / "gate" / "square_post_21716532.html").read_text()
    good = 'href="https://www.gate.com/announcements/article/'
    assert good in page
    broken = page.replace(good, 'href="https://[www.gate.com/announcements/article/', 1)
    url = "https://www.gate.com/post/status/21716532"
    record = gate_square.parse_post(broken, url, fetched_at=NOW)
    assert record.body_text
    assert any(link.url.startswith("https://[www.gate.com/") for link in record.links)
