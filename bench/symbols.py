"""Benchmark: how right `symbols` and `event_type` are, against the hand-labelled set in
tests/fixtures/symbols/ (dev/ and heldout/, one JSON object a line; the README there).

Each item goes through `archive.normalize.prepare`, exactly as the store derives a
version's fields at ingest (and `annals rederive` later). Symbols are compared as a set
per item, micro-averaged: precision = right / reported, recall = right / labelled.
Event types: accuracy. Printed per source and over all, for each part apart.

Run: python -m bench.symbols [--part dev|heldout|all] [--errors] [--source S] [--time N]
`--time N` also prints what deriving costs: CPU microseconds an item, the best of N passes
over the part (the store derives every version it writes). Writes bench/out/symbols.json.
The default part is dev: the held-out part is scored only on purpose (`--part heldout` or
`all`), once the rules are frozen.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archive.normalize import prepare
from archive.records import Record

SET_DIR = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "symbols"
OUT = Path(__file__).resolve().parent / "out" / "symbols.json"
PARTS = ("dev", "heldout")


def load(part: str, root: Path = SET_DIR) -> list[dict[str, Any]]:
    """Every labelled item of one part, in file order (sources in name order)."""
    items: list[dict[str, Any]] = []
    for path in sorted((root / part).glob("*.jsonl")):
        with path.open(encoding="utf-8") as lines:
            items.extend(json.loads(line) for line in lines if line.strip())
    return items


def record_of(item: dict[str, Any]) -> Record:
    """A labelled item as the record a parser would have made of it."""
    return Record(
        source=item["source"],
        kind=item.get("kind") or "announcement",
        external_id=item["id"],
        language=item.get("language") or "en",
        url="",
        title=item.get("title"),
        body_html=item.get("body_html"),
        body_text=item.get("body_text"),
        tags=list(item.get("tags") or []),
        category=item.get("category"),
    )


def predict(item: dict[str, Any]) -> tuple[list[str], str]:
    """What the store would store for this item: (symbols, event_type)."""
    record = record_of(item)
    prepared = prepare(record)
    return prepared.symbols, prepared.event_type


@dataclass
class Score:
    items: int = 0
    right: int = 0  # labelled symbols reported
    reported: int = 0
    labelled: int = 0
    events_right: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def add(self, item: dict[str, Any], symbols: list[str], event: str) -> None:
        got, want = set(symbols), set(item["symbols"])
        self.items += 1
        self.right += len(got & want)
        self.reported += len(got)
        self.labelled += len(want)
        self.events_right += event == item["event_type"]
        if got != want or event != item["event_type"]:
            self.errors.append(
                {
                    "id": item["id"],
                    "title": item.get("title") or (item.get("body_text") or "")[:80],
                    "missed": sorted(want - got),
                    "false": sorted(got - want),
                    "event": event,
                    "event_labelled": item["event_type"],
                }
            )

    @property
    def precision(self) -> float:
        return self.right / self.reported if self.reported else 1.0

    @property
    def recall(self) -> float:
        return self.right / self.labelled if self.labelled else 1.0

    @property
    def event_accuracy(self) -> float:
        return self.events_right / self.items if self.items else 1.0

    def summary(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "event_accuracy": round(self.event_accuracy, 4),
            "labelled": self.labelled,
            "reported": self.reported,
            "right": self.right,
        }


def score(items: Iterable[dict[str, Any]]) -> dict[str, Score]:
    """Scores per source and under "all"."""
    scores: dict[str, Score] = {"all": Score()}
    for item in items:
        symbols, event = predict(item)
        scores.setdefault(item["source"], Score()).add(item, symbols, event)
        scores["all"].add(item, symbols, event)
    return scores


def cost_us(items: list[dict[str, Any]], passes: int) -> float:
    """CPU microseconds `predict` takes an item: the best of `passes` passes over `items`
    (the least disturbed by other work on the machine)."""
    best = float("inf")
    for _ in range(passes):
        start = time.process_time()
        for item in items:
            predict(item)
        best = min(best, time.process_time() - start)
    return best / len(items) * 1e6


def _table(part: str, scores: dict[str, Score]) -> Iterator[str]:
    yield f"## {part}"
    yield "| source | items | precision | recall | event accuracy |"
    yield "|---|---|---|---|---|"
    for name in [*sorted(s for s in scores if s != "all"), "all"]:
        s = scores[name]
        label = f"**{name}**" if name == "all" else name
        yield (
            f"| {label} | {s.items} | {s.precision:.3f} | {s.recall:.3f} | {s.event_accuracy:.3f} |"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=(*PARTS, "all"), default="dev")
    parser.add_argument("--source", help="score one source only")
    parser.add_argument("--errors", action="store_true", help="list misses and false positives")
    parser.add_argument("--set", type=Path, default=SET_DIR, help="the set's directory")
    parser.add_argument("--time", type=int, metavar="N", help="time N passes, print the best")
    args = parser.parse_args(argv)
    out: dict[str, Any] = {}
    for part in PARTS if args.part == "all" else (args.part,):
        items = [i for i in load(part, args.set) if args.source in (None, i["source"])]
        if not items:
            print(f"no items in {args.set / part}", file=sys.stderr)
            return 1
        scores = score(items)
        print("\n".join(_table(part, scores)) + "\n")
        if args.errors:
            for error in scores["all"].errors:
                event = (
                    f" event {error['event']} (labelled {error['event_labelled']})"
                    if error["event"] != error["event_labelled"]
                    else ""
                )
                print(
                    f"{error['id']}: {error['title'][:90]!r} missed {error['missed']} "
                    f"false {error['false']}{event}"
                )
            print()
        out[part] = {name: s.summary() for name, s in scores.items()}
        if args.time:
            us = cost_us(items, args.time)
            print(f"{part}: {us:.0f} µs an item (CPU, best of {args.time} passes)\n")
            out[part]["us_per_item"] = round(us, 1)
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
