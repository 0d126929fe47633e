"""The faster forms of archive.symbols' alternations and cues against the plainer ones
they replace: the quote alternation grouped by first letter (_by_first), verbs grouped by
their second letter (_after_first), the list cue found from its words, and the patterns
compiled where first used."""

from __future__ import annotations

import re

from archive import symbols as s
from tests.test_symbols_forms import texts, windows


def test_an_alternation_by_first_letter_matches_as_the_flat_one() -> None:
    words = s.QUOTES | s.FIAT | {"A", "AB", "ABC"}
    flat = "|".join(sorted(words, key=len, reverse=True))
    grouped = s._by_first(words)
    assert grouped.count("|") < flat.count("|") + len(words)
    made = " ".join(words) + " ABCD USDTM usdt BTCUSDT XBT/USDT GT3L A/AB ABC-ETH"
    for flags in (0, re.I):
        plain = re.compile(rf"(?:{flat})(?![A-Za-z0-9])", flags)
        fast = re.compile(rf"(?:{grouped})(?![A-Za-z0-9])", flags)
        for text in [*texts(), made]:
            assert [m.span() for m in plain.finditer(text)] == [
                m.span() for m in fast.finditer(text)
            ]


def test_the_list_cue_holds_in_a_window_wherever_the_plain_one_or_the_list_does() -> None:
    plain = re.compile(r"\s(?:and|&)\s+[\dA-Z]")
    cue = s._WINDOW_CUES[s._LIST]
    held = 0
    for text, a, b in windows():
        if plain.search(text, a, b) or s._LIST.search(text, a, b):
            held += 1
            assert cue.search(text, a, b), text[a:b]
    assert held > 50


def test_a_pattern_compiled_later_is_compiled_once() -> None:
    assert s._POST_LOWER() is s._POST_LOWER()
    assert s._BECOMES().search("ticker change: ORBX becomes ORBT")


def _flat_after_first(*verbs: str) -> str:
    """_after_first as it was: one branch a verb."""
    branches = []
    for verb in verbs:
        first, second = f"[{verb[0].upper()}{verb[0]}]", verb[1:2]
        plain = second.isascii() and second.isalpha() and second.lower() not in "iks"
        if plain and verb[2:3] not in ("?", "*", "+", "{"):
            branches.append(f"[{second.upper()}{second.lower()}](?<={first}.)(?i:{verb[2:]})")
        else:
            branches.append(f"(?<={first})(?i:{verb[1:]})")
    return "(?:" + "|".join(branches) + ")"


VERBS = (
    ("support(?:s|ed)?(?: for)?", "open(?:s)?", "introduc(?:e|es|ing)", "to include"),
    ("trading (?:of|for|on)", "subscribe to", "suspend(?:s|ed)?", "swap(?:s)? of", "trade"),
    ("buy(?: and sell)?", "sell(?: and buy)?", "launch(?:es|ed|ing)?", "ap[ry] on", "yield on"),
    ("interest on", "for(?<!% for)(?<!ratio for)", "list(?:s|ed|ing)?", "delist(?:s|ed)?"),
    ("win", "will list", "share", "stake", "staking", "kickstarter:", "withdrawals?"),
)


def test_verbs_grouped_by_second_letter_match_as_one_branch_a_verb_did() -> None:
    verbs = [v for group in VERBS for v in group]
    first = "".join(sorted({c for v in verbs for c in (v[0], v[0].upper())}))
    grouped = re.compile(s._verbs(first, *verbs) + r"\s+(\S+)")
    flat = re.compile(f"[{first}](?<!\\w.)" + _flat_after_first(*verbs) + r"\s+(\S+)")
    assert grouped.pattern.count("[Uu]") == 1 < flat.pattern.count("[Uu]")
    made = " ".join(f"{v.split('(')[0]} ABC, ſupport İntroduce ıield SUPPORT xtrade" for v in verbs)
    found = 0
    for text in [*texts(), made]:
        spans = [m.span() for m in flat.finditer(text)]
        found += len(spans)
        assert [m.span() for m in grouped.finditer(text)] == spans, text
    assert found > 100


def test_a_title_rule_in_its_searched_form_finds_the_titles_of_its_fast_form() -> None:
    rules = [(p, s._SEARCHED_PARTS.get(p.pattern)) for _, p, _ in (*s._STRONG, *s._WEAK)]
    assert sum(parts is not None for _, parts in rules) >= 15
    found = set(texts())
    words = [w for _, _, ws in (*s._STRONG, *s._WEAK) for w in ws or ()]
    made = [
        *words,
        *(f"{w} x" for w in words),
        *(f"x{w}" for w in words),
        *(f"a {w}:b 1,000 {w}" for w in words),
    ]
    titles = sorted({t.lower() for t in found} | {t.upper() for t in found} | set(made))
    matched = 0
    for searched, parts in rules:
        if parts is None:
            continue
        # Each alternative is a whole pattern: no bracket or class was cut.
        branches = s._branches(parts[1])
        assert "|".join(branches) == parts[1]
        assert len(branches) > 1
        for branch in branches:
            re.compile(branch)
        fast = s._fast(*parts[:2], word=parts[2])
        assert s._needed(searched) == s._needed(fast)
        for title in titles:
            hit = bool(fast.search(title))
            matched += hit
            assert bool(searched.search(title)) == hit, (fast.pattern, title)
    assert matched > 1000


def test_alternatives_that_start_with_a_class_match_as_those_that_looked_back() -> None:
    candidate = re.compile(
        r"[A-Z0-9(（](?:(?<=[A-Z])[A-Z0-9]+|(?<=[0-9])[A-Z]|(?<=[(（])[A-Z][)）]"
        r"|(?<=[A-Z])(?<![A-Za-z0-9].)(?=,|\s(?:and|&)\s|\s?[(（]))"
    )
    mixed = re.compile(r"[A-Z](?:(?<=[a-z][A-Z])[A-Z]{2}|[A-Z][a-rt-z]\b)")
    made = "aBCD xABC ABc ABs 2Z 22 (S) (（S） W, H and M G (Gravity) AB1 A1B"
    for text in [*texts(), made]:
        assert [m.span() for m in s._CANDIDATE.finditer(text)] == [
            m.span() for m in candidate.finditer(text)
        ], text
        assert bool(s._MIXED_HINT.search(text)) == bool(mixed.search(text)), text
