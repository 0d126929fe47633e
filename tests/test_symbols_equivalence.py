"""`derive_symbols` and `derive_event` give what they gave before the rules were made
faster: every text of tests/fixtures (the labelled set, the recorded Gate pages of the
recorded mirror, every string of the JSON fixtures and the text of the HTML ones) against
outputs written once, by the rules as they were, in symbols_golden.json.

A rewrite that changes one output fails here. A change of the rules that is meant to
change outputs writes the file again: `python -m tests.test_symbols_equivalence`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from archive import symbols
from archive.normalize import html_to_text, prepare
from archive.records import Record
from archive.symbols import derive_event, derive_symbols
from bench import symbols as bench
from crawler.sources import gate
from crawler.synthetic import generate_recorded

FIXTURES = Path(__file__).parent / "fixtures"
GOLDEN = FIXTURES / "symbols_golden.json"
# Sources whose name changes what is read: own codes, ticker tags, Bitfinex's UST.
SOURCES = ("gate", "gate_square", "bitfinex", "upbit", "binance")


def _labelled() -> Iterator[Record]:
    for part in bench.PARTS:
        yield from map(bench.record_of, bench.load(part))


def _recorded() -> Iterator[Record]:
    routes, _ = generate_recorded(5)
    for route in routes:
        if "/announcements/article/" in route.path:
            yield gate.parse_article(
                route.content, "https://www.gate.com" + route.path, fetched_at=datetime.now(UTC)
            )


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _fixture_texts() -> Iterator[tuple[str, str | None]]:
    """(text, html) of every string of every fixture outside the labelled set."""
    paths = sorted(
        Path(d) / f for d, _, files in os.walk(FIXTURES, followlinks=True) for f in files
    )
    for path in paths:
        if path.relative_to(FIXTURES).parts[0] in ("symbols", GOLDEN.name):
            continue
        raw = path.read_bytes().decode("utf-8", "replace")
        values: list[str] = [raw]
        if path.suffix in (".json", ".jsonl"):
            try:
                docs = [json.loads(line) for line in raw.splitlines() if line.strip()]
                if path.suffix == ".json":
                    docs = [json.loads(raw)]
            except ValueError:
                docs = [raw]
            values = [s for doc in docs for s in _strings(doc)]
        for value in values:
            if value.strip():
                yield (html_to_text(value), value) if "<" in value else (value, None)


def cases() -> Iterator[tuple[str, str]]:
    """(key, output) of every derivation compared: the key is a digest of the input."""
    for record in (*_labelled(), *_recorded()):
        p = prepare(record)
        args = (record.source, p.title, p.body_text, record.body_html, p.tags)
        yield _case(("record", *args, p.category), args, (p.title, p.category, p.body_text))
    for text, html in _fixture_texts():
        title = text.strip().split("\n", 1)[0][:200]
        for source in SOURCES:
            args = (source, None, text, html, [])
            yield _case(("post", *args), args, None)
            args = (source, title, text, html, [])
            yield _case(("page", *args), args, (title, source, text) if source == "gate" else None)


def _case(key: tuple[Any, ...], args: tuple[Any, ...], event: tuple[Any, ...] | None):
    digest = hashlib.sha1(repr(key).encode()).hexdigest()[:12]
    out = ",".join(derive_symbols(*args))
    if event is not None:
        out += "|" + derive_event(*event)
    return digest, out


def test_outputs_are_unchanged() -> None:
    golden = json.loads(GOLDEN.read_text())
    seen = 0
    for key, out in cases():
        if key in golden:
            seen += 1
            assert out == golden[key], key
    # Fixtures come and go: most of the golden inputs must still be there.
    assert seen >= 0.9 * len(golden)


def test_words_a_rule_needs_are_in_its_every_match() -> None:
    """A title or post rule is skipped where the text lacks the words it needs: every
    match of it on every fixture text holds one of them."""
    texts = [text.lower() for text, _ in _fixture_texts()]
    texts += [r.title.lower() for r in _labelled() if r.title]
    texts += ["gate will list abc (abc)", "binance will delist xyz", "new listing: abc"]
    rules = [(p, words) for _, p, words in (*symbols._STRONG, *symbols._WEAK, *symbols._POST)]
    assert sum(words is not None for _, words in rules) >= 20
    for pattern, words in rules:
        for text in texts:
            if words is not None and pattern.search(text):
                assert any(word in text for word in words), (pattern.pattern, text)


def test_skips_read_what_the_rules_read() -> None:
    """A rule's finer words each hold one of its words (it runs on no text more), and a
    window cue is what the rule's list must be followed by."""
    for rule, finer in symbols._FINER_WORDS.items():
        words = next(w for p, _, _, w, _ in symbols._CONTEXT_RULES if p is rule)
        assert all(any(word in f for word in words) for f in finer), rule.pattern
    for rule, cue in symbols._WINDOW_CUES.items():
        if rule is not symbols._LIST:
            ahead = cue.pattern.removeprefix("[A-Z0-9)）](?:").removesuffix(")")
            assert cue.pattern == f"[A-Z0-9)）](?:{ahead})", cue.pattern
            assert rule.pattern.endswith(f"(?={ahead})"), rule.pattern


def test_literal_first_forms_match_as_the_rules_do() -> None:
    """The bracket rules that start with "(" match where those that start with "[(（]" do
    in a text with no full-width bracket; a window with a contract holds a contract cue; a
    unit or a prize is tried at every text that it matches (_ends_with)."""
    texts = [text for text, _ in _fixture_texts()]
    texts += [r.body_text or "" for r in (*_labelled(), *_recorded())]
    texts += ["(BTC) (S) (ARB, OP) SOPH (Sophon) $ETH a$SOL PF_XBTUSD xPF_ETHUSD BTCUSDT ZPERP"]
    pairs = [
        (symbols._PAREN, symbols._HALF_PAREN),
        (symbols._ONE_LETTER, symbols._HALF_ONE_LETTER),
        (symbols._PAREN_LIST, symbols._HALF_PAREN_LIST),
        (symbols._NAME_AFTER, symbols._HALF_NAME_AFTER),
    ]
    found = 0
    for text in texts:
        if "（" not in text:
            for rule, half in pairs:
                assert [m.span() for m in rule.finditer(text)] == [
                    m.span() for m in half.finditer(text)
                ]
        for m in symbols._CONTRACT.finditer(text):
            found += 1
            assert any(cue.search(text, m.start(), m.end()) for _, cue in symbols._CONTRACT_CUES)
        for m in symbols._AMOUNT.finditer(text):
            before = text[max(0, m.start() - 16) : m.start()]
            for pattern, ends in (
                (symbols._UNIT, symbols._UNIT_ENDS),
                (symbols._PRIZE, symbols._PRIZE_ENDS),
            ):
                assert symbols._ends_with(before, ends, pattern) == bool(pattern.search(before))
    assert found > 10


if __name__ == "__main__":
    found = dict(cases())
    GOLDEN.write_text(json.dumps(found, sort_keys=True, indent=0) + "\n")
    print(len(found), GOLDEN.stat().st_size)
