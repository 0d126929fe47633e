"""Benchmark: `annals export --all-versions` against the sqlite3 CLI's `-json` output of the
same rows, on generated archives of 100,000 and 1,000,000 versions.

Run: python -m bench.export [--sizes 100000,1000000] [--runs 2] [--dir DIR]. Each archive
is made through the archive's own schema (`open_archive(create=True)`: migrations,
indexes, the full-text index) and filled with raw sqlite3 inserts of what the store
writes: documents, versions (a fifth of the documents edited once), links, the index's
rows; JSON columns as the store's serializer (orjson) writes them. `--dir DIR` keeps the
archives and reuses them on the next run. Then, alternating, for each archive and run:
`annals export --all-versions -o -` as a child process (stdout to /dev/null; wall time,
peak RSS from the child's rusage) and `sqlite3 -json` of the same join of documents and
versions, the same columns in the same order. Writes bench/out/export.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from archive.db import open_archive, resolve_url
from archive.normalize import format_time

BATCH = 20_000
SOURCES = ("gate", "binance", "okx", "bybit", "bitget", "kucoin")
# The columns of an export line, as the sqlite3 CLI is asked for them.
BASELINE_SQL = (
    "SELECT d.source, d.kind, d.external_id, d.language, d.url, d.published_at,"
    " d.first_seen_at, d.last_seen_at, d.removed_at, v.version,"
    " v.version = d.current_version AS current, v.seen_at, v.title, v.body_text, v.category,"
    " v.event_type, json(v.tags) AS tags, json(v.symbols) AS symbols, v.author, v.updated_at,"
    " v.content_hash, json(v.extra) AS extra"
    " FROM documents d JOIN versions v ON v.document_id = d.id"
    " ORDER BY d.published_at, d.id, v.version"
)


class Texts:
    """A pool of announcement-like titles and bodies: English, Chinese, quotes, emoji and
    control characters, so the export escapes what real archives hold."""

    def __init__(self, seed: int = 15, size: int = 4000) -> None:
        rng = random.Random(seed)
        letters = "abcdefghijklmnopqrstuvwxyz"
        words = ["".join(rng.choices(letters, k=rng.randint(2, 9))) for _ in range(5000)]
        hanzi = [chr(c) for c in range(0x4E00, 0x4E00 + 2500)]
        self.tickers = [
            "".join(rng.choices(letters.upper(), k=rng.randint(3, 5))) for _ in range(997)
        ]
        self.bodies = []
        for i in range(size):
            if i % 10 == 9:
                body = "尊敬的用户，" + "".join(rng.choices(hanzi, k=300)) + "。"
            else:
                body = " ".join(rng.choices(words, k=110)).capitalize() + "."
            if i % 7 == 0:
                body += ' He said "list it" \\ now 🚀\n\nTab\there.\x01'
            self.bodies.append(body)

    def row_text(self, i: int, edit: int) -> tuple[str, str, str]:
        ticker = self.tickers[i % len(self.tickers)]
        title = f"{SOURCES[i % 6].title()} Will List {ticker} (#{i})"
        body = f"{self.bodies[i % len(self.bodies)]} {ticker}/USDT."
        if edit:
            body += f" Update {edit}: the schedule changed."
        return title, body, ticker


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _rows(
    texts: Texts, first: int, last: int, edited_every: int, start: datetime
) -> Iterator[tuple[tuple[Any, ...], list[tuple[Any, ...]], tuple[Any, ...] | None]]:
    """Per document: its row, its versions' rows and a link row for posts (every 10th)."""
    for i in range(first, last):
        doc_id = i + 1
        published = start + timedelta(minutes=i, milliseconds=i % 1000)
        pub = format_time(published)
        seen = format_time(published + timedelta(minutes=3))
        n_versions = 2 if i % edited_every == 0 else 1
        kind = "post" if i % 10 == 0 else "announcement"
        source = SOURCES[i % 6]
        doc = (
            doc_id, source, kind, str(i), "zh" if i % 10 == 9 else "en",
            f"https://example.invalid/{source}/{i}", pub, seen, seen, n_versions,
            seen if i % 97 == 0 else None,
        )  # fmt: skip
        vers = []
        for number in range(1, n_versions + 1):
            title, body, ticker = texts.row_text(i, number - 1)
            digest = hashlib.sha256(f"{title}\n{body}".encode()).hexdigest()
            extra = {"views": i, "cate_id": i % 30, "ratio": i / 7} if i % 3 else {}
            vers.append(
                (
                    doc_id, number, digest, title if kind == "announcement" else None, body,
                    "Listings", "listing", _json([ticker]), _json([ticker]),
                    "Carvinal" if kind == "post" else None, pub, None, _json(extra), seen,
                )
            )  # fmt: skip
        link = None
        if kind == "post" and i:
            link = (f"https://example.invalid/a/{i - 1}", source, "announcement", str(i - 1))
        yield doc, vers, link


def build(path: Path, n_versions: int) -> float:
    """An archive of `n_versions` versions (a fifth of the documents edited once): the
    schema through open_archive, the rows through raw inserts. Returns seconds."""
    t0 = time.perf_counter()
    open_archive(resolve_url(str(path)), create=True).dispose()
    edited_every = 5
    documents = n_versions * edited_every // (edited_every + 1)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous = OFF")
    texts = Texts()
    start = datetime(2020, 1, 1, tzinfo=UTC)
    version_id = 0
    for first in range(0, documents, BATCH):
        docs, vers, links = [], [], []
        for doc, doc_versions, link in _rows(
            texts, first, min(documents, first + BATCH), edited_every, start
        ):
            docs.append(doc)
            vers.extend(doc_versions)
            version_id += len(doc_versions)
            if link:
                links.append((version_id, *link))
        with conn:
            conn.executemany(
                "INSERT INTO documents (id, source, kind, external_id, language, url,"
                " published_at, first_seen_at, last_seen_at, current_version, removed_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                docs,
            )
            conn.executemany(
                "INSERT INTO versions (document_id, version, content_hash, title, body_text,"
                " category, event_type, tags, symbols, author, published_at, updated_at, extra,"
                " seen_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                vers,
            )
            conn.executemany(
                "INSERT INTO links (version_id, url, target_source, target_kind,"
                " target_external_id) VALUES (?,?,?,?,?)",
                links,
            )
    with conn:  # the full-text index holds the current versions, as the store keeps it
        conn.execute(
            "INSERT INTO documents_fts (rowid, title, body, version)"
            " SELECT d.id, v.title, v.body_text, v.version FROM documents d"
            " JOIN versions v ON v.document_id = d.id AND v.version = d.current_version"
        )
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return time.perf_counter() - t0


def _run(command: list[str]) -> tuple[float, int, bytes]:
    """Run `command` with stdout to /dev/null: wall seconds, peak RSS in KiB (the child's
    own rusage), its stderr."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - t0
        child.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        message = err.read()
    if child.returncode:
        raise SystemExit(f"{command[0]} failed: {message.decode(errors='replace')}")
    return elapsed, usage.ru_maxrss, message


def annals_export(path: Path) -> dict[str, Any]:
    seconds, peak, message = _run(
        [sys.executable, "-m", "archive", "export", "--all-versions", "--db", str(path)]
    )
    words = message.decode().split()
    lines = int(words[words.index("exported") + 1])
    return {"s": round(seconds, 2), "peak_rss_mib": round(peak / 1024, 1), "lines": lines}


def sqlite_json(path: Path) -> dict[str, Any]:
    seconds, peak, _ = _run(["sqlite3", "-readonly", "-json", str(path), BASELINE_SQL])
    return {"s": round(seconds, 2), "peak_rss_mib": round(peak / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--dir", type=Path, help="keep the archives here and reuse them")
    args = parser.parse_args()
    if shutil.which("sqlite3") is None:
        raise SystemExit("the sqlite3 command-line shell is the baseline: install it")
    workdir = args.dir or Path(tempfile.mkdtemp(prefix="annals-bench-export-"))
    workdir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "sqlite3": subprocess.run(
            ["sqlite3", "-version"], capture_output=True, text=True, check=True
        ).stdout.split()[0],
        "load_before": os.getloadavg(),
        "archives": {},
    }
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            path = workdir / f"export_{size}.db"
            entry: dict[str, Any] = {"runs": []}
            if not path.exists():
                entry["build_s"] = round(build(path, size), 1)
            for _ in range(args.runs):
                annals = annals_export(path)
                baseline = sqlite_json(path)
                ratio = round(baseline["s"] / annals["s"], 2)
                entry["runs"].append({"annals": annals, "sqlite3_json": baseline, "ratio": ratio})
                print(size, entry["runs"][-1], flush=True)
            results["archives"][str(size)] = entry
    finally:
        if args.dir is None:
            shutil.rmtree(workdir)
    results["load_after"] = os.getloadavg()
    out = Path(__file__).with_name("out")
    out.mkdir(exist_ok=True)
    (out / "export.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
