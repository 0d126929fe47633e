"""Benchmark: store N records through archive.store (dedup + versioning) against raw
sqlite3 executemany of the same rows, in one run; then export N versions and report
peak memory. Run: python -m bench.ingest [--records 100000]. Writes bench/out/ingest.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from archive.db import open_archive, resolve_url
from archive.normalize import format_time
from archive.records import Record
from archive.store import Store

BATCH = 1000
WORDS = "listing delisting token network upgrade trading pair spot futures reward".split()


def make_records(n: int, start: datetime, first: int = 0) -> list[Record]:
    records = []
    for i in range(first, first + n):
        body = " ".join(WORDS[(i + k) % len(WORDS)] for k in range(60))
        records.append(
            Record(
                source="bench",
                kind="announcement",
                external_id=str(i),
                language="en",
                url=f"https://example.invalid/a/{i}",
                title=f"Bench Will List Token {i} (T{i % 997:03d}X)",
                body_text=f"Paragraph one {i}.\n\n{body}",
                published_at=start + timedelta(seconds=i),
                category="New Listings",
                event_type="listing",
                tags=["T", "bench"],
                symbols=[f"T{i % 997:03d}X"],
                extra={"views": i},
            )
        )
    return records


def raw_rows(
    records: list[Record], now: str, first_id: int = 1
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    docs, vers = [], []
    for doc_id, r in enumerate(records, first_id):
        pub = format_time(r.published_at) if r.published_at else None
        docs.append((doc_id, r.source, r.kind, r.external_id, r.language, r.url, pub, now, now, 1))
        digest = hashlib.sha256((r.title or "").encode() + (r.body_text or "").encode()).hexdigest()
        vers.append(
            (
                doc_id,
                1,
                digest,
                r.title,
                r.body_text,
                r.category,
                "listing",
                json.dumps(r.tags),
                json.dumps(r.symbols),
                pub,
                json.dumps(r.extra),
                now,
            )
        )
    return docs, vers


def batches(n: int, start: datetime) -> Iterator[list[Record]]:
    """Records made a batch at a time, as a crawl hands them over: the benchmark does not
    keep 100k records alive, whose garbage-collection cost would fall on whoever
    allocates more, rather than on the work measured."""
    for first in range(0, n, BATCH):
        yield make_records(min(BATCH, n - first), start, first)


def bench_raw(path: Path, n: int, start: datetime) -> float:
    """The baseline: build each batch's rows (hash, JSON, times) and executemany them into
    the same tables the store fills, the full-text index included."""
    open_archive(resolve_url(str(path)), create=True).dispose()  # same schema and indexes
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    now = format_time(datetime.now(UTC))
    elapsed = 0.0
    next_id = 1
    for batch in batches(n, start):
        t0 = time.perf_counter()
        docs, vers = raw_rows(batch, now, next_id)
        with conn:
            conn.executemany(
                "INSERT INTO documents (id, source, kind, external_id, language, url, published_at,"
                " first_seen_at, last_seen_at, current_version) VALUES (?,?,?,?,?,?,?,?,?,?)",
                docs,
            )
            conn.executemany(
                "INSERT INTO versions (document_id, version, content_hash, title, body_text,"
                " category, event_type, tags, symbols, published_at, extra, seen_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                vers,
            )
            # The archive's full-text index is part of the schema: the same rows go in.
            conn.executemany(
                "INSERT INTO documents_fts (rowid, title, body, version) VALUES (?,?,?,1)",
                [(v[0], v[3], v[4]) for v in vers],
            )
        elapsed += time.perf_counter() - t0
        next_id += len(batch)
    conn.close()
    return elapsed


def bench_store(path: Path, n: int, start: datetime) -> float:
    """annals: Store.write per batch (normalize, hash, dedup, version, insert)."""
    engine = open_archive(resolve_url(str(path)), create=True)
    store = Store(engine)
    elapsed = 0.0
    for batch in batches(n, start):
        t0 = time.perf_counter()
        store.write(batch)
        elapsed += time.perf_counter() - t0
    engine.dispose()
    return elapsed


EXPORT_CHILD = """
import resource, sys
from archive.cli import main
sys.argv = ["annals", "export", "--all-versions", "--db", sys.argv[1], "-o", "-"]
try:
    main()
finally:
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def bench_export(path: Path) -> tuple[float, int, int]:
    """`annals export --all-versions` of an archive, as its own process: seconds, lines
    written, and the process's peak resident memory in KiB."""
    t0 = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", EXPORT_CHILD, str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=True,
    )
    elapsed = time.perf_counter() - t0
    messages = result.stderr.decode().split()
    lines = int(messages[messages.index("exported") + 1])
    peak_kib = int(messages[-1])
    return elapsed, lines, peak_kib


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    n = args.records
    with tempfile.TemporaryDirectory() as tmp:
        raw_s = bench_raw(Path(tmp) / "raw.db", n, start)
        store_s = bench_store(Path(tmp) / "store.db", n, start)
        # Same records again: all unchanged, the steady state of a cron run.
        again_s = bench_store(Path(tmp) / "store.db", n, start)
        results: dict[str, Any] = {
            "records": args.records,
            "raw_executemany_s": round(raw_s, 3),
            "store_s": round(store_s, 3),
            "store_unchanged_s": round(again_s, 3),
            "ratio_store_vs_raw": round(raw_s / store_s, 3),
        }
        sizes = []
        for name, count_ in (("small", n // 10), ("full", n)):
            path = Path(tmp) / f"export_{name}.db"
            bench_store(path, count_, start)
            seconds, count, peak = bench_export(path)
            sizes.append((count, peak))
            results[f"export_{name}_versions"] = count
            results[f"export_{name}_s"] = round(seconds, 3)
            results[f"export_{name}_peak_rss_mib"] = round(peak / 1024, 1)
        results["export_peak_ratio_full_vs_small"] = round(sizes[1][1] / sizes[0][1], 2)
    out = Path(__file__).with_name("out")
    out.mkdir(exist_ok=True)
    (out / "ingest.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
