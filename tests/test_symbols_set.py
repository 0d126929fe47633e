"""The ticker / event-type evaluation set is well formed (tests/fixtures/symbols/README.md).

`bench/symbols` scores the extractor against these files, so a malformed line, a duplicate
id, an unknown event type or a held-out item that is also in the development part would
make its numbers wrong without anyone noticing. Every file present is checked; the seven
sources of the first set must be there, in both parts, with at least 500 items. The
extractor's held-out scores on the eleven sources of issue 13 must not drop below floors
(scores only: the held-out errors are not printed).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from archive.records import EVENT_TYPES

SET_DIR = Path(__file__).parent / "fixtures" / "symbols"
SPLITS = ("dev", "heldout")
FIRST_SOURCES = ("gate", "gate_square", "binance", "okx", "bybit", "bitget", "kucoin")
ALL_SOURCES = (
    *FIRST_SOURCES,
    *"upbit bithumb htx mexc cryptocom kraken bitfinex deribit bingx xt deepcoin".split(),
)
REQUIRED = {
    "id": str,
    "source": str,
    "kind": str,
    "language": str,
    "title": (str, type(None)),
    "body_html": (str, type(None)),
    "body_text": (str, type(None)),
    "tags": list,
    "category": (str, type(None)),
    "symbols": list,
    "event_type": str,
}
OPTIONAL = {"note": str}
_ID = re.compile(r"(?P<source>[a-z_]+)-(?P<split>dev|heldout)-(?P<n>\d{4})")


def _items() -> list[tuple[Path, int, dict[str, Any]]]:
    found = []
    for split in SPLITS:
        for path in sorted((SET_DIR / split).glob("*.jsonl")):
            lines = path.read_text(encoding="utf-8").splitlines()
            for number, line in enumerate(lines, 1):
                found.append((path, number, json.loads(line)))
    return found


ITEMS = _items()


def _where(path: Path, number: int) -> str:
    return f"{path.parent.name}/{path.name}:{number}"


def _text_key(row: dict[str, Any]) -> str:
    """What a reader sees first: the title, or a post's body; case and spacing folded."""
    text = row["title"] if row["title"] is not None else row["body_html"] or row["body_text"]
    return " ".join(unicodedata.normalize("NFKC", text or "").casefold().split())


def test_the_set_is_not_empty():
    assert len(ITEMS) > 0


@pytest.mark.parametrize(("path", "number", "row"), ITEMS, ids=[_where(p, n) for p, n, _ in ITEMS])
def test_each_line_follows_the_format(path: Path, number: int, row: dict[str, Any]):
    missing = set(REQUIRED) - set(row)
    unknown = set(row) - set(REQUIRED) - set(OPTIONAL)
    assert not missing, f"missing keys {sorted(missing)}"
    assert not unknown, f"keys the format does not have {sorted(unknown)}"
    for key, kind in {**REQUIRED, **OPTIONAL}.items():
        if key in row:
            assert isinstance(row[key], kind), f"{key} is {type(row[key]).__name__}"

    split, source = path.parent.name, path.stem
    assert source in ALL_SOURCES
    assert row["source"] == source
    match = _ID.fullmatch(row["id"])
    assert match, f"id {row['id']!r} is not <source>-<split>-NNNN"
    assert (match["source"], match["split"]) == (source, split)

    assert row["kind"] == ("post" if source == "gate_square" else "announcement")
    assert row["language"], "language is empty"
    if row["kind"] == "announcement":
        assert row["title"], "an announcement has a title"
    else:
        assert row["body_html"] or row["body_text"], "a post has a body"
    assert not (row["body_html"] and row["body_text"]), "body_html or body_text, not both"
    assert row["event_type"] in EVENT_TYPES

    assert all(isinstance(tag, str) and tag for tag in row["tags"])
    symbols = row["symbols"]
    assert all(isinstance(s, str) and s for s in symbols)
    assert len(set(symbols)) == len(symbols), "a symbol is listed twice"
    assert all(s == s.upper() and not s.isspace() and " " not in s for s in symbols)


@pytest.mark.parametrize(("path", "number", "row"), ITEMS, ids=[_where(p, n) for p, n, _ in ITEMS])
def test_every_symbol_is_written_in_its_item(path: Path, number: int, row: dict[str, Any]):
    """Policy rule 1: a label is a ticker the item writes (title, body, links, tags)."""
    seen = " ".join(
        [row["title"] or "", row["body_html"] or "", row["body_text"] or "", *row["tags"]]
    ).upper()
    unwritten = [s for s in row["symbols"] if s not in seen]
    assert not unwritten, f"{unwritten} appear nowhere in the item"


def test_ids_are_unique_in_the_whole_set():
    counts = Counter(row["id"] for _, _, row in ITEMS)
    assert [i for i, n in counts.items() if n > 1] == []


def test_every_first_source_is_in_both_parts_with_500_items_in_all():
    by_part = Counter((row["source"], path.parent.name) for path, _, row in ITEMS)
    absent = [(s, p) for s in FIRST_SOURCES for p in SPLITS if by_part[(s, p)] == 0]
    assert absent == []
    assert sum(by_part[(s, p)] for s in FIRST_SOURCES for p in SPLITS) >= 500


def test_every_source_present_has_both_parts():
    by_part = Counter((row["source"], path.parent.name) for path, _, row in ITEMS)
    sources = {source for source, _ in by_part}
    assert [s for s in sorted(sources) for p in SPLITS if by_part[(s, p)] == 0] == []


def test_the_held_out_part_is_about_a_third_of_each_source():
    by_part = Counter((row["source"], path.parent.name) for path, _, row in ITEMS)
    for source in {s for s, _ in by_part}:
        total = by_part[(source, "dev")] + by_part[(source, "heldout")]
        assert 0.2 <= by_part[(source, "heldout")] / total <= 0.4, source


def test_no_held_out_item_repeats_a_development_item():
    dev = {_text_key(row) for path, _, row in ITEMS if path.parent.name == "dev"}
    repeated = [
        row["id"]
        for path, _, row in ITEMS
        if path.parent.name == "heldout" and _text_key(row) in dev
    ]
    assert repeated == []


# The extractor on the eleven sources of issue 13, held-out part (bench/RESULTS.md, "symbols
# on the eleven new sources"): a little below what was measured, so that a change of the
# rules that loses an item of these sources fails here. The held-out part is scored, never
# tuned on; a rule that gains items may raise these.
NEW_SOURCE_FLOORS = {
    # source: (precision, recall, event accuracy)
    "upbit": (0.86, 0.94, 0.90),
    "bithumb": (0.93, 0.83, 0.93),
    "htx": (0.99, 0.95, 0.99),
    "mexc": (0.95, 0.95, 0.99),
    "cryptocom": (0.94, 0.99, 0.93),
    "kraken": (0.99, 0.95, 0.93),
    "bitfinex": (0.91, 0.91, 0.89),
    "deribit": (0.99, 0.94, 0.84),
    "bingx": (0.95, 0.99, 0.99),
    "xt": (0.89, 0.85, 0.94),
    "deepcoin": (0.94, 0.94, 0.88),
}


@pytest.fixture(scope="module")
def held_out_scores():
    from bench import symbols as bench

    return bench.score(bench.load("heldout", SET_DIR))


@pytest.mark.parametrize("source", sorted(NEW_SOURCE_FLOORS))
def test_the_extractor_keeps_its_held_out_scores_on_the_new_sources(source, held_out_scores):
    score = held_out_scores[source]
    floors = NEW_SOURCE_FLOORS[source]
    measured = (score.precision, score.recall, score.event_accuracy)
    below = [
        f"{name} {got:.3f} < {floor}"
        for name, got, floor in zip(
            ("precision", "recall", "event accuracy"), measured, floors, strict=True
        )
        if got < floor
    ]
    # Only the scores: the held-out items' errors are not shown (nobody tunes on them).
    assert below == []
