"""Benchmark the scale-out pieces, each against its baseline in the same run:

- ingest: `archive.store.Store` writing N records to PostgreSQL against the same to
  SQLite (bench.ingest's records and batches), all new, then all unchanged;
- crawl: two workers sharing one frontier (Redis) against one worker, crawling a
  generated Gate mirror into one PostgreSQL archive; pages per second are the mirror's
  requests over the time from its first request to its last (the workers' start-up and
  idle wait are left out), once with no delay (the machine is the limit) and once with
  a politeness delay per worker (the source's pace is the limit, as in production).

Run: python -m bench.scale [--records 100000] [--articles 600]
[--postgres postgresql://postgres@127.0.0.1/postgres] [--redis redis://127.0.0.1:6379/14].
It makes and drops its own databases on that server. Writes bench/out/scale.json.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import redis
from sqlalchemy.engine import make_url

from archive.db import open_archive, resolve_url
from archive.store import Store
from bench.ingest import batches
from crawler.mirror import Mirror, MirrorServer
from crawler.synthetic import generate


def store_seconds(url: str, n: int, start: datetime) -> float:
    engine = open_archive(url, create=True)
    store = Store(engine)
    elapsed = 0.0
    for batch in batches(n, start):
        t0 = time.perf_counter()
        store.write(batch)
        elapsed += time.perf_counter() - t0
    engine.dispose()
    return elapsed


class Databases:
    """Fresh PostgreSQL databases on a server, dropped at the end."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.admin = psycopg.connect(admin_url, autocommit=True)
        self.names: list[str] = []

    def new(self) -> str:
        name = f"annals_bench_{os.getpid()}_{secrets.token_hex(3)}"
        self.admin.execute(f"CREATE DATABASE {name}")
        self.names.append(name)
        url = make_url(self.admin_url).set(drivername="postgresql+psycopg", database=name)
        return url.render_as_string(hide_password=False)

    def close(self) -> None:
        for name in self.names:
            self.admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        self.admin.close()


def bench_ingest(n: int, dbs: Databases) -> dict[str, Any]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = resolve_url(str(Path(tmp) / "store.db"))
        sqlite_new = store_seconds(sqlite, n, start)
        sqlite_again = store_seconds(sqlite, n, start)
    pg = dbs.new()
    pg_new = store_seconds(pg, n, start)
    pg_again = store_seconds(pg, n, start)
    return {
        "records": n,
        "sqlite_store_s": round(sqlite_new, 3),
        "sqlite_store_unchanged_s": round(sqlite_again, 3),
        "postgres_store_s": round(pg_new, 3),
        "postgres_store_unchanged_s": round(pg_again, 3),
        "ratio_postgres_vs_sqlite": round(sqlite_new / pg_new, 3),
        "ratio_postgres_vs_sqlite_unchanged": round(sqlite_again / pg_again, 3),
    }


def crawl(
    workers: int, articles: int, dbs: Databases, redis_url: str, settings: dict[str, str]
) -> dict[str, Any]:
    """`workers` processes of `annals crawl` sharing one frontier; pages per second."""
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter("annals-bench:*"):
        client.delete(key)
    client.close()
    routes, _ = generate(articles)
    mirror = Mirror(routes=routes)
    pg = dbs.new()
    env = {**os.environ, "ANNALS_REDIS_URL": redis_url, "ANNALS_IDLE_SECONDS": "6",
           "ANNALS_FRONTIER_KEY": "annals-bench"}  # fmt: skip
    with MirrorServer(mirror) as server:
        command = [sys.executable, "-m", "archive", "crawl", "gate_announcements", "--db", pg,
                   "--base-url", server.url]  # fmt: skip
        for name, value in settings.items():
            command += ["-s", f"{name}={value}"]
        t0 = time.perf_counter()
        procs = [
            subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            for _ in range(workers)
        ]
        for proc in procs:
            _, err = proc.communicate()
            if proc.returncode != 0:
                raise SystemExit(f"a worker failed ({proc.returncode}): {err[-2000:]!r}")
        wall = time.perf_counter() - t0
    hits = [h.at for h in mirror.hits]
    busy = max(hits) - min(hits)
    with psycopg.connect(make_url(pg).set(drivername="postgresql").render_as_string(False)) as c:
        split = c.execute("SELECT (counters->>'requests')::int FROM crawl_runs ORDER BY id")
        per_worker = [n for (n,) in split.fetchall()]
    return {
        "requests": len(hits),
        "requests_per_worker": per_worker,
        "crawling_s": round(busy, 2),
        "wall_s": round(wall, 2),
        "pages_per_s": round(len(hits) / busy, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--articles", type=int, default=600)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--only", choices=("ingest", "crawl"), help="Run one part.")
    args = parser.parse_args()
    dbs = Databases(args.postgres)
    results: dict[str, Any] = {}
    try:
        if args.only != "crawl":
            results["ingest"] = bench_ingest(args.records, dbs)
        fast = {"DOWNLOAD_DELAY": "0", "AUTOTHROTTLE_ENABLED": "False",
                "CONCURRENT_REQUESTS_PER_DOMAIN": "8", "LOG_LEVEL": "WARNING"}  # fmt: skip
        polite = {**fast, "DOWNLOAD_DELAY": "0.05", "CONCURRENT_REQUESTS_PER_DOMAIN": "1"}
        # Without a delay a crawl of `articles` is over before a second worker's first
        # look at the frontier (5 s): five times as many pages there.
        crawls = (
            ("crawl_no_delay", fast, 5 * args.articles),
            ("crawl_polite", polite, args.articles),
        )
        for name, settings, articles in crawls if args.only != "ingest" else ():
            one = crawl(1, articles, dbs, args.redis, settings)
            two = crawl(2, articles, dbs, args.redis, settings)
            results[name] = {
                "articles": articles,
                "one_worker": one,
                "two_workers": two,
                "ratio_two_vs_one": round(two["pages_per_s"] / one["pages_per_s"], 2),
            }
    finally:
        dbs.close()
    out = Path(__file__).with_name("out")
    out.mkdir(exist_ok=True)
    (out / "scale.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
