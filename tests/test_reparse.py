"""Every spider can turn a stored response back into records, with no network, and
`annals reparse` archives what parses now."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from archive.normalize import format_time
from archive.records import ParseError, Quarantined, RawResponse
from archive.store import Store, snapshot_body
from crawler.cli import project_settings, project_spiders
from crawler.reparse import reparse_quarantine
from crawler.sources import binance, kucoin, okx
from crawler.spiders.api import (
    BinanceAnnouncementsSpider,
    KucoinAnnouncementsSpider,
    OkxAnnouncementsSpider,
)
from crawler.spiders.gate import GateAnnouncementsSpider
from crawler.spiders.gate_square import GateSquareSpider
from tests.helpers import FIXTURES, rows

FETCHED = datetime(2026, 6, 1, tzinfo=UTC)


def raw(url: str, path: str) -> RawResponse:
    return RawResponse(url, 200, None, (FIXTURES / path).read_bytes(), FETCHED)


def test_gate_article_and_post_snapshots_give_their_record():
    [article] = GateAnnouncementsSpider.parse_snapshot(
        raw("https://www.gate.com/zh/announcements/article/102003", "gate/zh_article_102003.html")
    )
    assert (article.external_id, article.language) == ("102003", "zh")
    [post] = GateSquareSpider.parse_snapshot(
        raw("https://www.gate.com/post/status/21716532", "gate/square_post_21716532.html")
    )
    assert post.kind == "post"


def test_gate_listings_give_no_record_and_bad_ones_still_fail():
    listing = raw("https://www.gate.com/announcements", "gate/announcements.html")
    assert GateAnnouncementsSpider.parse_snapshot(listing) == []
    challenge = raw(
        "https://www.gate.com/announcements/article/51321", "gate/challenge_edgeone.html"
    )
    with pytest.raises(ParseError):
        GateAnnouncementsSpider.parse_snapshot(challenge)


def test_api_list_snapshot_gives_its_records_in_the_url_language():
    url = kucoin.SOURCE.list_url(1, language="en")
    records = KucoinAnnouncementsSpider.parse_snapshot(raw(url, "kucoin/announcements_p1.json"))
    assert records
    assert {r.language for r in records} == {"en"}
    okx_records = OkxAnnouncementsSpider.parse_snapshot(
        raw(okx.SOURCE.list_url(1), "okx/announcements_p1.json")
    )
    assert okx_records


def test_binance_detail_snapshot_gives_the_full_record_and_its_list_gives_none():
    code = "047d70df37be53bcc3496077036ca5f7"
    [record] = BinanceAnnouncementsSpider.parse_snapshot(
        raw(binance.SOURCE.detail_url(code), f"binance/details/{code}.json")
    )
    assert record.external_id == code
    assert record.body_html
    listing = raw(binance.SOURCE.list_url(1), "binance/list_all_p1.json")
    assert BinanceAnnouncementsSpider.parse_snapshot(listing) == []


@pytest.mark.parametrize("snapshots", ["zstd", "zlib"])
def test_reparse_archives_what_parses_now_with_its_fetch_time_and_reports_the_rest(
    engine, snapshots
):
    article = raw(
        "https://www.gate.com/zh/announcements/article/102003", "gate/zh_article_102003.html"
    )
    challenge = raw(
        "https://www.gate.com/announcements/article/51321", "gate/challenge_edgeone.html"
    )
    Store(engine).write([
        Quarantined(article.url, "gate_announcements", "old parser bug", article),
        Quarantined(challenge.url, "gate_announcements", "challenge", challenge),
        Quarantined(article.url, "retired_spider", "old parser bug", article),
    ])  # fmt: skip
    if snapshots == "zlib":  # an archive written before snapshots were zstd
        with engine.begin() as conn:
            for snapshot_id, body in conn.execute(sa.text("SELECT id, body FROM snapshots")).all():
                old = zlib.compress(snapshot_body(body), 6)
                conn.execute(
                    sa.text("UPDATE snapshots SET body = :b WHERE id = :i"),
                    {"b": old, "i": snapshot_id},
                )
    spiders = project_spiders(project_settings())

    report = reparse_quarantine(engine, spiders)
    assert (report.pages, len(report.resolved)) == (3, 1)
    assert (report.written.new_documents, report.written.new_versions) == (1, 1)
    assert report.still_failing[0].startswith(f"{challenge.url}: ")
    assert report.still_failing[1] == f"{article.url}: no spider named 'retired_spider'"
    assert rows(engine, "SELECT seen_at FROM versions") == [(format_time(FETCHED),)]

    again = reparse_quarantine(engine, spiders, spider="gate_announcements")
    assert (again.pages, again.resolved, len(again.still_failing)) == (1, [], 1)
