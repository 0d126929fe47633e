"""The faster forms of the rules in archive.symbols match where the plainer forms they
replace match, and the skips in front of them never skip a text a rule matches in.

The golden outputs (test_symbols_equivalence.py) guard what derive_symbols returns; these
guard the parts one by one, on every fixture text and on texts made to reach each case:
a rule written with a leading class (`_LEAD`, `_verbs`) against the same rule behind a
lookahead and a word boundary, each window cue against its rule, each skipping word
against every match of its rule.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from functools import cache

import pytest

from archive import symbols as s
from tests import test_symbols_equivalence as equivalence

# Texts at the edges of what the forms read: a ticker after each character that stops
# _START, multipliers, digits that are not ASCII, the letters a case-insensitive "s", "i"
# and "k" match besides their two cases, words inside words, brackets of both widths.
MADE = [
    "List ABC, 1000PEPE and 1INCH. Delist XYZ; delisted 2Z",
    "$BTC /ETH _SOL .ARB =OP :TIA -SUI ABC-USDT XYZ/USDT X_USDT 12ABC ١٢ABC 1٢ABC",
    "ſupport for ABC, ıntroducing DEF, İntroduce GHI, KEY options on ETH",
    "Trading for BTC, trade ETH to share 100 USDT, stake GT to win 5,000 CRO, share $5 in XYZ",
    "relist ABC; enlist DEF; xfor GHI; 0.5% for ABC; the ratio for ETH; ratios for BTC",
    "BTC Perpetual, ETH and SOL Quarterly Futures, XYZ\nPerpetual, ABC-30D, ABC\tdeposits",
    "TIA-20 token deposits, ORBX 원화 마켓, ABC 永续合约, XYZ 网络升级, ABC 입출금",
    "Sonic (S), (ARB, OP), HYPE3L, SOPH (Sophon), Story (IP), at 10:00 (UTC), (XAUt)",
    "launch xyz margin trading, futures trading for abc, list bnSOL and JitoSOL",
    "Stablecoins, including USDT; the following tokens: ABC, DEF and GHI; Launchpool: XYZ",
    "LIST ABC AND DEF; DELIST GHI, JKL & MNO; FOR ONE; SPOT TRADING FOR XYZ",
]


@cache
def texts() -> list[str]:
    found = {text for text, _ in equivalence._fixture_texts()}
    found.update(r.title for r in equivalence._labelled() if r.title)
    found.update(r.body_text for r in equivalence._labelled() if r.body_text)
    return sorted(found) + MADE


def spans(pattern: re.Pattern[str], text: str, a: int = 0, b: int | None = None) -> list:
    end = len(text) if b is None else b
    return [(m.span(), m.groups()) for m in pattern.finditer(text, a, end)]


def windows() -> Iterator[tuple[str, int, int]]:
    for text in texts():
        for a, b in s._windows(text):
            yield text, a, b


def test_a_rule_with_a_leading_ticker_class_matches_where_start_and_ticker_did():
    plain = re.compile(r"(?=[A-Z0-9])(?:" + s._START + "(" + s._T + r")(?:\s?[/_\-]\s?|:|\s)" + ")")
    led = re.compile("(" + s._LEAD + s._T_REST + r")(?:\s?[/_\-]\s?|:|\s)")
    listed_plain = re.compile(r"(?=[A-Z0-9])(?:" + s._START + "(" + s._LIST_OF + "))")
    listed = re.compile(s._LISTED)
    for text in texts():
        assert spans(led, text) == spans(plain, text), text
        assert spans(listed, text) == spans(listed_plain, text), text
        for a in range(0, len(text), 97):  # a window's start: the look back reads before it
            assert spans(led, text, a) == spans(plain, text, a), (text, a)


def test_verbs_match_where_a_word_boundary_and_a_lookahead_did():
    verbs = ("support(?:s|ed)?", "stak(?:e|es|ing)", "share", "ap[ry] on", "introduc(?:e|es)")
    verbs += ("yield on", "key", "skip", "list(?:s|ed)?", "options on", "for(?<!% for)")
    verbs += ("as?k", "ap?e", "a")
    first = "SsAaIiYyKkLlOoFf"
    plain = re.compile(
        rf"\b(?=[{first}])(?:"
        + "|".join(f"[{v[0].upper()}{v[0]}](?i:{v[1:]})" for v in verbs)
        + r")\s+(\w+)"
    )
    led = re.compile(s._verbs(first, *verbs) + r"\s+(\w+)")
    for text in texts():
        assert spans(led, text) == spans(plain, text), text
        lowered = text.lower()
        assert spans(led, lowered) == spans(plain, lowered), text


def test_a_verb_whose_first_letter_the_class_lacks_never_matches():
    # "resume" behind "SsOo...": the lookahead of the form before never admitted its R.
    pattern = re.compile(s._verbs("Ss", "support", "resume") + r"\s+(\w+)")
    assert pattern.search("resume XYZ") is None
    assert pattern.search("Resume or support XYZ")[1] == "XYZ"


def test_the_candidates_of_a_window_are_what_they_were():
    plain = re.compile(
        r"(?=[A-Z0-9(（])(?:[A-Z][A-Z0-9]+|\d[A-Z]|[(（][A-Z][)）]"
        r"|(?<![A-Za-z0-9])[A-Z](?=,|\s(?:and|&)\s|\s?[(（]))"
    )
    mixed = re.compile(r"(?=[A-Z])(?:(?<=[a-z])[A-Z]{3}|[A-Z]{2}[a-rt-z]\b)")
    amount = re.compile(
        r"(?=[0-9])(?:(?<![\d:.,])\d[\d,.]*(?:\s*(?:[KkMmBb]|million|billion))?\s+" + s._TOKEN + ")"
    )
    for text in texts():
        assert spans(s._CANDIDATE, text) == spans(plain, text), text
        assert bool(s._MIXED_HINT.search(text)) == bool(mixed.search(text)), text
        assert spans(s._AMOUNT, text) == spans(amount, text), text


def test_a_contract_matched_without_its_base_named_nothing():
    plain = re.compile(
        r"(?=[A-Z0-9])(?:" + s._START + "(" + s._T + r"?)(?:" + s._CONTRACT_QUOTES + r")"
        r"(?:-SWAP)?(?![A-Za-z0-9_\u24b6-\u24e9]))"
    )
    for text in texts():
        named = [(m.span(), m[1]) for m in plain.finditer(text) if m[1]]
        assert [(m.span(), m[1]) for m in s._CONTRACT.finditer(text)] == named, text


def test_a_window_cue_matches_wherever_its_rule_does():
    rules = [rule for rule in s._WINDOW_CUES if rule is not s._LIST]
    assert len(rules) == 7
    for text, a, b in windows():
        narrow = text.isascii() or not s._WIDE.search(text)
        for rule in rules:
            if rule.search(text, a, b):
                assert s._WINDOW_CUES[rule].search(text, a, b), (rule.pattern, text[a:b])
                if narrow:
                    assert s._NARROW_CUES[rule].search(text, a, b), (rule.pattern, text[a:b])


def test_no_character_but_itself_lowers_to_one_of_the_wide_characters():
    wide = set(s._WIDE.pattern.strip("[]"))
    assert {"永", "마", "上"} <= wide
    assert all(c.lower() == c for c in wide)
    others = (chr(i) for i in range(sys.maxunicode + 1))
    assert not [c for c in others if c not in wide and wide.intersection(c.lower())]


def caseless_texts() -> Iterator[tuple[str, str]]:
    for text in texts():
        if s._caseless(text):
            yield text, text.lower()


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        (s._PARTICIPATION, s._REWARDS),
        (s._TRADE_TO_WIN, s._REWARDS),
        (s._PRIZE_IN, ("share", "win")),
    ],
    ids=["participation", "trade to win", "prize in"],
)
def test_a_match_in_a_caseless_text_holds_one_of_the_words_that_let_it_run(pattern, words):
    seen = 0
    for text, _ in caseless_texts():
        for m in pattern.finditer(text):
            seen += 1
            assert any(word in m[0].lower() for word in words), (pattern.pattern, m[0])
    assert seen


def test_a_listing_verb_before_a_bracket_is_in_the_words_read_for_it():
    seen = 0
    for text in texts():
        for m in s._PAREN.finditer(text):
            begin = max(0, m.start() - 60)
            if s._LISTED_NAME.search(text, begin, m.start()):
                seen += 1
                assert s._listed_name(text, m.start()), text[begin : m.end()]
    assert seen


def test_a_market_trading_for_holds_one_of_its_words():
    seen = 0
    for text, _ in caseless_texts():
        for m in s._LOWER_TRADING.finditer(text):
            if m[2]:
                seen += 1
                assert any(w in m[0].lower() for w in s._LOWER_MARKET_TRADING), m[0]
    assert seen


def test_a_product_with_none_of_its_finer_words_ends_in_days():
    finer = s._FINER_WORDS[s._PRODUCT_OF]
    days = s._WORDLESS[s._PRODUCT_OF]
    seen = 0
    for text, a, b in windows():
        if not s._caseless(text):
            continue
        lowered = text.lower()
        for m in s._PRODUCT_OF.finditer(text, a, b):
            seen += 1
            rest = text[m.end() : b]
            assert any(w in lowered for w in finer) or days.match(rest), (m[0], rest[:20])
    assert seen


def test_every_participation_names_a_reward():
    # _Text skips them all in a caseless text that holds no reward word.
    for _, words, also in s._PARTICIPATIONS:
        assert set(also or words) <= set(s._REWARDS)
