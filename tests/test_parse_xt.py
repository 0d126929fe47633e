"""XT's help center on its saved mirror: the first article exactly, and the sample's traps
(crawler.sources.zendesk's behaviour on both help centers: tests/test_parse_zendesk.py)."""

from __future__ import annotations

from archive.normalize import format_time
from crawler.sources import xt
from tests.helpers import FIXTURES, mirror_file

MIRROR = FIXTURES / "xt"


def page(number: int):
    url = xt.SOURCE.list_url(number)
    file = mirror_file(MIRROR, url)
    assert file == f"articles_p{number}.json"
    return {
        r.external_id: r for r in xt.SOURCE.parse_list((MIRROR / file).read_bytes(), url).records
    }


def test_first_article_fields():
    first = next(iter(page(1).values()))
    assert (first.source, first.kind, first.language) == ("xt", "announcement", "en")
    assert first.external_id == "59512488344960"
    assert first.title == "XT Announcement on Launching KSTR (Kestrel AI)"
    assert first.url == (
        "https://xtsupport.zendesk.com/hc/en-us/articles/"
        "59512488344960-XT-Announcement-on-Launching-KSTR-Kestrel-AI"
    )
    assert format_time(first.published_at) == "2026-06-24T10:02:11.000Z"
    assert format_time(first.updated_at) == "2026-06-24T10:05:43.000Z"
    assert first.tags == ["new listing", "spot"]
    assert first.extra["section_id"] == "900000043823"  # "New Listing" (confirmed)
    assert first.body_text.startswith("Dear XT Users,\n\nXT.COM will list KSTR (Kestrel AI)")
    assert "- Deposit: 2026-06-24 08:00 (UTC)\n- Trading: 2026-06-25 10:00 (UTC)" in first.body_text
    assert "<li>Deposit: 2026-06-24 08:00 (UTC)</li>" in first.body_html


def test_entities_tables_and_the_pinned_article():
    first, second = page(1), page(2)
    copy = first["58887890803603"]
    assert copy.title == "XT.COM Copy Trading Week: Follow Top Traders & Win Up to 5,000 USDT"
    assert "share a 5,000 USDT prize pool" in copy.body_text  # &nbsp; read as a space
    fees = second["58778788677389"]
    assert "<table><tr><th>Coin</th><th>New fee</th></tr>" in fees.body_html
    assert "Coin | New fee\nDOGE | 4\nLTC | 0.001\nXRP | 0.2" in fees.body_text
    # The promoted (pinned) article is dated by created_at, in its place in the order.
    pinned = first["58977976534172"]
    assert format_time(pinned.published_at) == "2026-06-08T09:09:01.000Z"
    assert "promoted" not in pinned.extra


def test_chinese_is_the_zh_cn_locale():
    url = xt.SOURCE.list_url(1, language="zh")
    assert "/api/v2/help_center/zh-cn/categories/10304894611993/articles.json?" in url
    assert xt.SOURCE.language_of(url) == "zh"
