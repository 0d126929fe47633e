"""Benchmark: full-text search against a LIKE scan on a generated archive of ~1M versions.

Run: python -m bench.search [--documents 900000] [--edits 100000] [--db PATH]. The
archive is written through archive.store.Store in big batches, so the index is filled
exactly as a crawl fills it. In the same run it times `annals search` (the FTS5 index)
and the equivalent `LIKE '%word%'` scan over the current versions, and measures the
archive's size with and without the index (and with a unicode61 index instead, the
tokenizer not chosen). `--db PATH` keeps the archive and reuses it on the next run.
Writes bench/out/search.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from archive import search
from archive.db import open_archive, resolve_url
from archive.export import Filters
from archive.records import Record
from archive.store import Store

BATCH = 5000
RARE = "zephyrine"  # in one document of 10,000
COMMON = "delist"  # in the title of one document of 10
SOURCES = ("gate", "binance", "okx", "bybit", "bitget", "kucoin")
CURRENT = (
    "FROM documents d JOIN versions v ON v.document_id = d.id AND v.version = d.current_version"
)


class Text:
    """Announcement-like text: Zipf-distributed pseudo-words, tickers, and 10% Chinese."""

    def __init__(self, seed: int = 6) -> None:
        self.rng = random.Random(seed)
        letters = "abcdefghijklmnopqrstuvwxyz"
        self.words = [
            "".join(self.rng.choice(letters) for _ in range(self.rng.randint(3, 10)))
            for _ in range(20_000)
        ]
        self.cum_weights = list(itertools.accumulate(1 / (r + 1) for r in range(len(self.words))))
        self.tickers = [
            "".join(self.rng.choice(letters.upper()) for _ in range(self.rng.randint(3, 5)))
            for _ in range(3000)
        ]
        hanzi = [chr(c) for c in range(0x4E00, 0x4E00 + 2500)]
        self.ci = ["".join(self.rng.choices(hanzi, k=self.rng.randint(1, 4))) for _ in range(8000)]

    def english(self, n: int) -> str:
        words = self.rng.choices(self.words, cum_weights=self.cum_weights, k=n)
        sentences = [" ".join(words[i : i + 12]).capitalize() + "." for i in range(0, n, 12)]
        return " ".join(sentences)

    def chinese(self, n: int) -> str:
        """About n characters of Zipf-distributed 1-4 character words, no spaces."""
        words = self.rng.choices(self.ci, cum_weights=self.cum_weights[: len(self.ci)], k=n // 2)
        text = "".join(words)[:n]
        return "尊敬的用户，" + text[: n // 2] + "，交易对将于下周下架。" + text[n // 2 :] + "。"

    def record(self, i: int, start: datetime, edit: int = 0) -> Record:
        ticker = self.tickers[i % len(self.tickers)]
        zh = i % 10 == 9
        verb = "Delist" if i % 10 == 3 else "List"
        title = (
            f"关于上线 {ticker} 的公告" if zh else f"{SOURCES[i % 6].title()} Will {verb} {ticker}"
        )
        body = self.chinese(300) if zh else self.english(80)
        body += f" {ticker}/USDT."
        if i % 10_000 == 7:
            body += f" The {RARE} upgrade is scheduled."
        if edit:
            body += f" Update {edit}: the schedule changed."
        return Record(
            source=SOURCES[i % 6],
            kind="announcement",
            external_id=str(i),
            language="zh" if zh else "en",
            url=f"https://example.invalid/{SOURCES[i % 6]}/{i}",
            title=title,
            body_text=body,
            published_at=start + timedelta(minutes=i),
            category="Listings",
            tags=[ticker],
            symbols=[ticker],
        )


def generate(path: Path, documents: int, edits: int) -> dict[str, Any]:
    """Write `documents` new documents, then edit `edits` of them: documents + edits
    versions, all through Store.write."""
    engine = open_archive(resolve_url(str(path)), create=True)
    store = Store(engine)
    text = Text()
    start = datetime(2024, 1, 1, tzinfo=UTC)
    t0 = time.perf_counter()
    for first in range(0, documents, BATCH):
        store.write([text.record(i, start) for i in range(first, min(documents, first + BATCH))])
    t1 = time.perf_counter()
    step = max(1, documents // max(edits, 1))
    edited = list(range(0, documents, step))[:edits]
    for k in range(0, len(edited), BATCH):
        store.write([text.record(i, start, edit=1) for i in edited[k : k + BATCH]])
    t2 = time.perf_counter()
    engine.dispose()
    return {"write_new_s": round(t1 - t0, 1), "write_edits_s": round(t2 - t1, 1)}


def timed(fn: Callable[[], Any], repeat: int = 5) -> tuple[float, Any]:
    """Median wall time of `repeat` runs (after one warm-up run), and the result."""
    result = fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def queries(path: Path) -> dict[str, Any]:
    engine = open_archive(resolve_url(str(path)), readonly=True)
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    out: dict[str, Any] = {}

    def like_count(word: str) -> int:
        sql = f"SELECT count(*) {CURRENT} WHERE v.title LIKE ? OR v.body_text LIKE ?"
        return conn.execute(sql, (f"%{word}%", f"%{word}%")).fetchone()[0]

    def fts_count(word: str) -> int:
        sql = f"SELECT count(*) FROM {search.FTS_TABLE} WHERE {search.FTS_TABLE} MATCH ?"
        return conn.execute(sql, (f'"{word}"',)).fetchone()[0]

    def like_top(word: str) -> list[Any]:
        sql = (
            f"SELECT d.id {CURRENT} WHERE v.title LIKE ? OR v.body_text LIKE ?"
            " ORDER BY d.published_at DESC LIMIT 20"
        )
        return conn.execute(sql, (f"%{word}%", f"%{word}%")).fetchall()

    for label, word in (("rare", RARE), ("common", COMMON)):
        like_s, like_n = timed(lambda w=word: like_count(w), repeat=3)
        fts_s, fts_n = timed(lambda w=word: fts_count(w))
        assert like_n == fts_n, (word, like_n, fts_n)
        top_s, hits = timed(lambda w=word: search.search(engine, w, limit=20))
        like_top_s, _ = timed(lambda w=word: like_top(w), repeat=3)
        out[label] = {
            "word": word,
            "matching_documents": fts_n,
            "like_count_s": round(like_s, 4),
            "fts_count_s": round(fts_s, 5),
            "ratio_count": round(like_s / fts_s, 1),
            "like_top20_s": round(like_top_s, 4),
            "annals_search_top20_s": round(top_s, 5),
            "ratio_top20": round(like_top_s / top_s, 1),
            "results": len(hits),
        }
    filtered_s, _ = timed(
        lambda: search.search(engine, RARE, Filters(source="gate", event_type="listing"))
    )
    out["rare_filtered_search_s"] = round(filtered_s, 5)
    # Two Chinese characters: below the trigram index, so `annals search` scans.
    short_s, hits = timed(lambda: search.search(engine, "下架", limit=20), repeat=3)
    out["short_zh_scan_top20_s"] = round(short_s, 4)
    conn.close()
    engine.dispose()
    return out


def sizes(path: Path, workdir: Path) -> dict[str, Any]:
    """Compacted sizes: the archive as it is, without the index, with unicode61 instead."""
    src = sqlite3.connect(path)
    src.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    out: dict[str, Any] = {"file_mib": round(path.stat().st_size / 2**20, 1)}
    compact = workdir / "compact.db"
    compact.unlink(missing_ok=True)
    src.execute("VACUUM INTO ?", (str(compact),))
    src.close()
    out["with_index_mib"] = round(compact.stat().st_size / 2**20, 1)
    conn = sqlite3.connect(compact)
    conn.execute(f"DROP TABLE {search.FTS_TABLE}")
    conn.commit()
    conn.execute("VACUUM")
    out["without_index_mib"] = round(compact.stat().st_size / 2**20, 1)
    t0 = time.perf_counter()
    conn.execute("CREATE VIRTUAL TABLE u61 USING fts5(title, body, tokenize='unicode61')")
    conn.execute(
        f"INSERT INTO u61 (rowid, title, body) SELECT d.id, v.title, v.body_text {CURRENT}"
    )
    conn.commit()
    out["unicode61_build_s"] = round(time.perf_counter() - t0, 1)
    out["unicode61_finds_zh_word"] = conn.execute(
        "SELECT count(*) FROM u61 WHERE u61 MATCH '\"下架\"'"
    ).fetchone()[0]
    conn.execute("VACUUM")
    out["with_unicode61_instead_mib"] = round(compact.stat().st_size / 2**20, 1)
    conn.close()
    compact.unlink()
    out["index_share"] = round(1 - out["without_index_mib"] / out["with_index_mib"], 3)
    return out


def counts(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        return {
            "documents": conn.execute("SELECT count(*) FROM documents").fetchone()[0],
            "versions": conn.execute("SELECT count(*) FROM versions").fetchone()[0],
        }
    finally:
        conn.close()


def run(path: Path, workdir: Path, documents: int, edits: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    if not path.exists() or counts(path)["versions"] == 0:
        t0 = time.perf_counter()
        results["generation"] = generate(path, documents, edits)
        results["generation"]["total_s"] = round(time.perf_counter() - t0, 1)
    results.update(counts(path))
    results["queries"] = queries(path)
    results["size"] = sizes(path, workdir)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=900_000)
    parser.add_argument("--edits", type=int, default=100_000)
    parser.add_argument("--db", type=Path, help="keep the generated archive here (reused)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "search.db"
        results = run(path, Path(tmp), args.documents, args.edits)
    out = Path(__file__).with_name("out")
    out.mkdir(exist_ok=True)
    (out / "search.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
