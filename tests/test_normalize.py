"""Normalization on the real shapes: HTML text, times, tickers and event types."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from archive.normalize import (
    TimeParseError,
    classify_event,
    content_hash,
    extract_symbols,
    format_time,
    html_to_text,
    normalize_text,
    parse_time,
)
from tests.helpers import FIXTURES


def _gate_detail(name: str) -> dict:
    html = (FIXTURES / "gate" / name).read_text()
    data = re.search(r'<script id="__NEXT_DATA__"[^>]*>(.*?)</script>', html, re.S)
    assert data
    return json.loads(data.group(1))["props"]["pageProps"]["detail"]


def test_html_to_text_keeps_paragraphs_lists_and_tables():
    text = html_to_text(
        "<p>Dear users,</p>\n<p>Gate will list <strong>VLR</strong>&nbsp;&amp; more.</p>"
        "<ul><li>Pair: VLR/USDT</li><li>Deposits open</li></ul>"
        "<ol><li>first</li><li>second</li></ol>"
        "<table><tr><th>Token</th><th>Date</th></tr><tr><td>NXRA</td><td>05-28</td></tr></table>"
        "<p>Gate Team<br/>May 22, 2026</p><script>alert(1)</script>"
    )
    assert text == (
        "Dear users,\n\nGate will list VLR & more.\n\n- Pair: VLR/USDT\n- Deposits open\n\n"
        "1. first\n2. second\n\nToken | Date\nNXRA | 05-28\n\nGate Team\nMay 22, 2026"
    )


def test_html_to_text_of_a_real_article_body():
    text = html_to_text(_gate_detail("article_51319.html")["desc"])
    assert text.startswith(
        "Dear Gate users,\n\nGate will list Velora (VLR) in the Innovation Zone."
    )
    assert "- Trading pairs: VLR/USDT, VLR/ETH" in text
    assert "<" not in text


def test_normalize_text_nfc_and_whitespace():
    assert normalize_text("Cafe\u0301  au\u00a0lait \n\n\n\n next\u200b ") == "Café au lait\n\nnext"
    assert normalize_text("  ") == ""
    assert normalize_text(None) == ""


def test_normalize_text_drops_nul_even_when_nothing_else_is_left():
    assert normalize_text("\x00") == ""
    assert normalize_text("\x00\x00 ") == ""
    assert normalize_text("Gate\x00 lists") == "Gate lists"


def test_normalize_text_tidies_every_kind_of_space_at_line_edges():
    # Tabs, no-break and ideographic spaces, CRs and zero-width characters, at a line's
    # edges and between words: what a reader sees is words one space apart, lines
    # without edge spaces, at most one blank line.
    raw = "\t Gate \u3000 will\xa0list \r\n \u200bVLR\ufeff \x0b\n\n\n\n\u2028 Team\t"
    assert normalize_text(raw) == "Gate will list\nVLR\n\nTeam"


def test_html_to_text_breaks_between_runs_of_blocks_and_lines():
    text = html_to_text("<div><p>a</p><br><p></p><br></div>b<br><br>c<ul><li>d</li></ul>")
    assert text == "a\n\nb\nc\n\n- d"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1779431400, "2026-05-22T06:30:00.000Z"),
        ("1779431400", "2026-05-22T06:30:00.000Z"),
        (1779431400123, "2026-05-22T06:30:00.123Z"),
        ("1779431400123", "2026-05-22T06:30:00.123Z"),
        ("2025-12-16 10:36:50 UTC", "2025-12-16T10:36:50.000Z"),
        ("2026-09-29 10:53 (UTC+8)", "2026-09-29T02:53:00.000Z"),
        ("2026-05-22 10:00 (UTC)", "2026-05-22T10:00:00.000Z"),
        ("2026-04-09T13:52:07Z", "2026-04-09T13:52:07.000Z"),
        ("2026-04-09T21:52:07+08:00", "2026-04-09T13:52:07.000Z"),
    ],
)
def test_parse_time_to_utc(value, expected):
    assert format_time(parse_time(value)) == expected


def test_time_without_zone_is_read_in_the_given_zone():
    from datetime import timedelta, timezone

    plus8 = timezone(timedelta(hours=8))
    assert (
        format_time(parse_time("2026-09-29 10:53", default_tz=plus8)) == "2026-09-29T02:53:00.000Z"
    )


@pytest.mark.parametrize("value", ["", "soon", None, True, -5, "0", [1]])
def test_parse_time_refuses_what_is_not_a_time(value):
    with pytest.raises(TimeParseError):
        parse_time(value)


def test_format_time_refuses_naive_datetimes():
    with pytest.raises(ValueError, match="naive"):
        format_time(datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("title", "symbols"),
    [
        ("Gate Will List Velora (VLR) for Spot Trading", ["VLR"]),
        ("Gate Will Delist NXRA, QUIL and 19 Other Tokens", ["NXRA", "QUIL"]),
        ("Gate Will Launch ZHIPUG and MINIMAXG Perpetual Futures", ["ZHIPUG", "MINIMAXG"]),
        ("Gate Launches Pre-Market Trading for SPCXUSDT Perpetual Futures (USDT-M)", ["SPCX"]),
        ("Binance Adds AURL/FDUSD, GLCD/USDT & HYBL/USDT Trading Pairs", ["AURL", "GLCD", "HYBL"]),
        ("Delisting of BLIPUSDT and GNARUSDT Perpetual Contracts", ["BLIP", "GNAR"]),
        ("Bitget Will Delist ORBT/USDT and PRSM/USDT on 2026-06-21", ["ORBT", "PRSM"]),
        (
            "Gate Launchpool: Stake GT to Share 1,200,000 VLR",
            ["VLR"],
        ),  # GT is the entry, not the subject
        ("Gate Grid Trading Challenge: Share 20,000 USDT in Rewards", []),
        ("Binance Futures API: New Fields in the Exchange Information Endpoint (2026-05-27)", []),
        ("Gate 关于 SAMSUNG 永续合约分红派息结算的公告", ["SAMSUNG"]),
        ("KSTR-30D Fixed Promotion, Enjoy an APR of 150%!", ["KSTR"]),
        (
            "Binance Completes Integration of Ember Chain (EMBR) on BNB Smart Chain (BEP20)",
            ["EMBR"],
        ),
    ],
)
def test_extract_symbols_from_real_titles(title, symbols):
    assert extract_symbols(title) == symbols


def test_extract_symbols_reads_body_and_cashtags():
    body = html_to_text(_gate_detail("article_51310.html")["desc"])
    symbols = extract_symbols("Gate Will Delist NXRA, QUIL and 19 Other Tokens", body)
    assert symbols[:2] == ["NXRA", "QUIL"]
    assert len(symbols) == 21
    assert "USDT" not in symbols
    assert extract_symbols("Buying $BTC and $GT today (UTC)") == ["BTC", "GT"]


@pytest.mark.parametrize(
    ("title", "hint", "event"),
    [
        ("Gate Will Delist NXRA, QUIL and 19 Other Tokens", None, "delisting"),
        ("Notice of Removal of Spot Trading Pairs - 2026-05-09", None, "delisting"),
        ("Gate Will List Velora (VLR) for Spot Trading", None, "listing"),
        ("Gate Will Launch HYPSUSDT Perpetual Futures", None, "listing"),
        ("Kestrel AI (KSTR) Gets Listed on KuCoin! World Premiere!", None, "listing"),
        ("Scheduled Maintenance of the Tron (TRX) Network", None, "maintenance"),
        ("Gate CandyDrop Round 88: Trade to Share 400,000 HYPS", None, "promotion"),
        ("Gate API v4 Update: New Unified Account Borrowing Limit Endpoints", None, "product"),
        ("Bybit Publishes Its May 2026 Proof of Reserves", None, "news"),
        ("USDS Staking Now Live: Earn 2.24% APR", "promotion", "promotion"),
        ("Gate Will List Velora (VLR) for Spot Trading", "promotion", "listing"),
        ("Something plain", None, "other"),
    ],
)
def test_classify_event(title, hint, event):
    assert classify_event(title, hint) == event


def test_content_hash_covers_what_a_reader_sees():
    when = datetime(2026, 5, 22, tzinfo=UTC)
    base = content_hash("T", "body", "cat", ["a", "b"], "me", when)
    assert content_hash("T", "body", "cat", ["b", "a"], "me", when) == base
    for changed in (
        content_hash("T!", "body", "cat", ["a", "b"], "me", when),
        content_hash("T", "body.", "cat", ["a", "b"], "me", when),
        content_hash("T", "body", "cat2", ["a", "b"], "me", when),
        content_hash("T", "body", "cat", ["a"], "me", when),
        content_hash("T", "body", "cat", ["a", "b"], "you", when),
        content_hash("T", "body", "cat", ["a", "b"], "me", None),
    ):
        assert changed != base


@pytest.mark.parametrize(
    ("markup", "text"),
    [
        ("<html></html>", ""),
        ("<html><head><title>Tab</title></head></html>", ""),
        ("<p>First</p></body><body><p>Second</p>", "First\n\nSecond"),
        ("Lead<p>One</p></body><body>Tail", "Lead\n\nOne\n\nTail"),
    ],
)
def test_html_to_text_of_markup_with_no_body_or_two(markup: str, text: str) -> None:
    # lxml.html's fragment parser asserts one <body>; such a body is text, not a crash
    # that would lose the page (a parser's AssertionError is no ParseError).
    assert html_to_text(markup) == text
