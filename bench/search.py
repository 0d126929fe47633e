"""Benchmark: full-text search against a LIKE scan on a generated archive of ~1M versions.

Run: python -m bench.search [--documents 900000] [--edits 100000] [--db PATH]
[--postgres URL] [--no-sqlite-sizes]. The archive is written through
archive.store.Store in big batches, so the index is filled exactly as a crawl fills it.
In the same run it times `annals search` (the FTS5 index) and the equivalent
`LIKE '%word%'` scan over the current versions, and measures the archive's size with
and without the index (and with a unicode61 index instead, the tokenizer not chosen).
`--db PATH` keeps the archive and reuses it on the next run.

`--postgres URL` (an empty database, or one this benchmark filled before) does the
same on PostgreSQL with the same archive: the SQLite file's documents and versions are
COPYed in at revision 0002, then `upgrade` to head builds pg_trgm's indexes over them
(timed, as `annals db upgrade` does on an existing archive); `annals search` is timed
beside `ILIKE` on a connection that cannot use the trigram indexes (bitmap scans
off), the pair alternated; every answer is compared with SQLite's. A table of the
current text with its own indexes, the design not chosen, is built and measured too.
Writes bench/out/search.json.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from archive import search
from archive.db import make_engine, open_archive, resolve_url, upgrade
from archive.export import Filters
from archive.models import TABLES
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


# --- PostgreSQL ---------------------------------------------------------------------------------

PG_RUNS = 5  # alternated pairs per question


def load_postgres(path: Path, url: str) -> dict[str, Any]:
    """The SQLite archive's documents and versions into the PostgreSQL database at `url`
    with COPY (at revision 0002: no trigram index yet), then the upgrade to head, which
    builds the trigram indexes over what is there. Skipped when the rows are there."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            if conn.exec_driver_sql("SELECT to_regclass('versions')").scalar() is not None:
                loaded = conn.exec_driver_sql("SELECT count(*) FROM versions").scalar()
                if loaded == counts(path)["versions"]:
                    return {"reused": True}
        upgrade(engine, "0002")
        t0 = time.perf_counter()
        _copy_rows(path, engine)
        t1 = time.perf_counter()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE documents, versions")
        t2 = time.perf_counter()
        upgrade(engine)
        t3 = time.perf_counter()
    finally:
        engine.dispose()
    return {
        "copy_s": round(t1 - t0, 1),
        "analyze_s": round(t2 - t1, 1),
        "index_build_s": round(t3 - t2, 1),
    }


def _copy_rows(path: Path, engine: sa.Engine) -> None:
    src = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for name in ("documents", "versions"):
            columns = ", ".join(c.name for c in TABLES[name].columns)
            with cursor.copy(f"COPY {name} ({columns}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                for row in src.execute(f"SELECT {columns} FROM {name} ORDER BY id"):
                    copy.write_row(row)
        raw.commit()
    finally:
        raw.close()
        src.close()


@contextlib.contextmanager
def without_trigram_indexes(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection that cannot use the trigram indexes, as before migration 0003:
    bitmap scans, the only way PostgreSQL reads a GIN index, are off for it."""
    with engine.connect() as conn:
        conn.exec_driver_sql("SET enable_bitmapscan = off")
        yield conn


def alternated(baseline: Callable[[], Any], candidate: Callable[[], Any]) -> dict[str, Any]:
    """Each side once to warm up, then PG_RUNS pairs, baseline first; every time kept."""
    baseline(), candidate()
    pairs = []
    for _ in range(PG_RUNS):
        t0 = time.perf_counter()
        baseline()
        t1 = time.perf_counter()
        candidate()
        t2 = time.perf_counter()
        pairs.append((t1 - t0, t2 - t1))
    base = [round(b, 4) for b, _ in pairs]
    cand = [round(c, 5) for _, c in pairs]
    return {
        "baseline_s": base,
        "candidate_s": cand,
        "ratios": [round(b / c, 1) for b, c in pairs],
        "median_ratio": round(statistics.median(b / c for b, c in pairs), 1),
    }


# psycopg's placeholders; the pattern is bound as {"pattern": f"%{word}%"}.
ILIKE = "WHERE v.title ILIKE %(pattern)s OR v.body_text ILIKE %(pattern)s"


def pg_queries(path: Path, url: str) -> dict[str, Any]:
    lite = open_archive(resolve_url(str(path)), readonly=True)
    pg = open_archive(url, readonly=True)
    out: dict[str, Any] = {}
    try:
        with pg.connect() as conn, without_trigram_indexes(pg) as scan:
            for label, word in (("rare", RARE), ("common", COMMON)):
                count_sql = f"SELECT count(*) {CURRENT} {ILIKE}"
                top_sql = f"SELECT d.id {CURRENT} {ILIKE} ORDER BY d.published_at DESC LIMIT 20"
                like = {"pattern": f"%{word}%"}
                n = conn.exec_driver_sql(count_sql, like).scalar()
                assert n == scan.exec_driver_sql(count_sql, like).scalar(), word
                out[label] = {
                    "word": word,
                    "matching_documents": n,
                    "count": alternated(
                        lambda s=count_sql, p=like: scan.exec_driver_sql(s, p).scalar(),
                        lambda s=count_sql, p=like: conn.exec_driver_sql(s, p).scalar(),
                    ),
                    "top20": alternated(
                        lambda s=top_sql, p=like: scan.exec_driver_sql(s, p).all(),
                        lambda w=word: search.search(pg, w, limit=20),
                    ),
                }
        filtered = Filters(source="gate", event_type="listing")
        out["rare_filtered_search_s"] = round(
            timed(lambda: search.search(pg, RARE, filtered))[0], 5
        )
        out["short_zh_scan_top20_s"] = round(
            timed(lambda: search.search(pg, "下架", limit=20), repeat=3)[0], 4
        )
        out["same_answers_as_sqlite"] = same_answers(lite, pg)
    finally:
        for engine in (lite, pg):
            engine.dispose()
    return out


def same_answers(lite: sa.Engine, pg: sa.Engine) -> dict[str, int]:
    """Every match of each question, as a set of refs, on both: they must be equal."""
    questions = {
        RARE: Filters(),
        COMMON: Filters(),
        f"{RARE} gate listing": Filters(source="gate", event_type="listing"),
        "下架": Filters(),
        f"{COMMON} USDT": Filters(source="binance"),
        f'"{RARE} upgrade" OR zqxjv': Filters(),
    }
    found = {}
    for query, filters in questions.items():
        words = query.removesuffix(" gate listing")
        a = {h.ref for h in search.search(lite, words, filters, limit=10**7)}
        b = {h.ref for h in search.search(pg, words, filters, limit=10**7)}
        assert a == b, (query, len(a), len(b), sorted(a ^ b)[:5])
        found[query] = len(a)
    return found


def pg_sizes(url: str) -> dict[str, float]:
    engine = make_engine(url)
    mib = "round(pg_relation_size('{}') / 1048576.0, 1)"
    try:
        with engine.connect() as conn:
            row = conn.exec_driver_sql(
                "SELECT round(pg_database_size(current_database()) / 1048576.0, 1),"
                " round(pg_total_relation_size('versions') / 1048576.0, 1),"
                + ", ".join(mib.format(name) for name in sorted(search.TRGM_INDEXES))
            ).one()
    finally:
        engine.dispose()
    names = ["database_mib", "versions_with_indexes_mib"] + [
        f"{name}_mib" for name in sorted(search.TRGM_INDEXES)
    ]
    return dict(zip(names, map(float, row), strict=True))


def current_text_table(url: str) -> dict[str, Any]:
    """The design not chosen: a table of each document's current title and body with its
    own trigram indexes (what a store would keep in step), its build, size, and counts
    beside the chosen indexes on every version joined with documents."""
    engine = make_engine(url)
    out: dict[str, Any] = {}
    try:
        with engine.connect() as conn:
            transaction = conn.begin()
            t0 = time.perf_counter()
            conn.exec_driver_sql(
                f"CREATE TABLE current_text AS SELECT d.id, v.title, v.body_text {CURRENT}"
            )
            conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '256MB'")
            for column in ("title", "body_text"):
                conn.exec_driver_sql(
                    f"CREATE INDEX ON current_text USING gin ({column} gin_trgm_ops)"
                )
            conn.exec_driver_sql("ANALYZE current_text")
            out["build_s"] = round(time.perf_counter() - t0, 1)
            out["total_mib"] = float(
                conn.exec_driver_sql(
                    "SELECT round(pg_total_relation_size('current_text') / 1048576.0, 1)"
                ).scalar()
            )
            for label, word in (("rare", RARE), ("common", COMMON)):
                on_table = f"SELECT count(*) FROM current_text v {ILIKE}"
                on_versions = f"SELECT count(*) {CURRENT} {ILIKE}"
                like = {"pattern": f"%{word}%"}
                n = conn.exec_driver_sql(on_table, like).scalar()
                assert n == conn.exec_driver_sql(on_versions, like).scalar(), word
                out[f"{label}_count"] = alternated(
                    lambda s=on_versions, p=like: conn.exec_driver_sql(s, p).scalar(),
                    lambda s=on_table, p=like: conn.exec_driver_sql(s, p).scalar(),
                )
            transaction.rollback()
    finally:
        engine.dispose()
    return out


def run(
    path: Path, workdir: Path, documents: int, edits: int, postgres: str | None, sqlite_sizes: bool
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    if not path.exists() or counts(path)["versions"] == 0:
        t0 = time.perf_counter()
        results["generation"] = generate(path, documents, edits)
        results["generation"]["total_s"] = round(time.perf_counter() - t0, 1)
    results.update(counts(path))
    results["queries"] = queries(path)
    if sqlite_sizes:
        results["size"] = sizes(path, workdir)
    if postgres:
        results["postgres"] = {"load": load_postgres(path, postgres)}
        results["postgres"]["queries"] = pg_queries(path, postgres)
        results["postgres"]["size"] = pg_sizes(postgres)
        results["postgres"]["current_text_table"] = current_text_table(postgres)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=900_000)
    parser.add_argument("--edits", type=int, default=100_000)
    parser.add_argument("--db", type=Path, help="keep the generated archive here (reused)")
    parser.add_argument("--postgres", help="a PostgreSQL database URL: measure it there too")
    parser.add_argument(
        "--no-sqlite-sizes", action="store_true", help="skip SQLite's compacted sizes (minutes)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "search.db"
        results = run(
            path,
            Path(tmp),
            args.documents,
            args.edits,
            args.postgres,
            sqlite_sizes=not args.no_sqlite_sizes,
        )
    out = Path(__file__).with_name("out")
    out.mkdir(exist_ok=True)
    (out / "search.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
