"""`annals demo --watch`: the bundled mirrors served live with their push channels,
`annals watch --all` against them, and a publisher of made-up announcements; run as a
user would, into a SQLite file read afterwards."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from crawler.cli import DEMO_SPIDERS, MIRRORS
from crawler.demo_watch import FEEDS, Publisher
from crawler.mirror import Mirror
from crawler.mirror_push import DeribitChannel
from tests.helpers import annals

pytestmark = pytest.mark.e2e

ARRIVED = re.compile(r"^arrived: (\w+) \((push|polled)\) '(.+)', lag (\d+\.\d+)s$")


def query(db: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def versions_by_document(db: Path) -> dict[int, int]:
    return dict(query(db, "SELECT document_id, count(*) FROM versions GROUP BY document_id"))


def arrivals(stdout: str) -> list[tuple[str, str, str, float]]:
    found = [ARRIVED.match(line) for line in stdout.splitlines()]
    return [(m[1], m[2], m[3], float(m[4])) for m in found if m]


def test_demo_watch_prints_pushed_and_polled_arrivals_and_a_second_run_changes_no_page(tmp_path):
    db = tmp_path / "demo.db"
    first = annals("demo", "--watch", "--seconds", "5", "--db", str(db), timeout=400)
    assert first.returncode == 0, first.stdout + first.stderr
    came = arrivals(first.stdout)
    assert {(source, how) for source, how, _, _ in came} == {("deribit", "push"), ("okx", "polled")}
    assert "0 not archived" in first.stdout
    # Each arrival is a document of its source in the archive, under its title.
    for source, _, title, _ in came:
        sql = (
            "SELECT d.source FROM documents d JOIN versions v ON v.document_id = d.id"
            f" WHERE v.title = '{title}'"
        )
        assert query(db, sql) == [(source,)], title
    # The watch's start line says how each source is watched: OKX at the demo's interval.
    assert re.search(r"okx_announcements +polled every 2s", first.stderr)
    # Every push channel the mirror speaks is read, the keyed ones with the demo's keys.
    for spider in ("deribit", "gate", "binance", "upbit"):
        assert re.search(rf"{spider}_announcements +push", first.stderr), first.stderr
    assert "refused the API key" not in first.stderr
    # One watch run per spider, which `annals stats` shows.
    names = [n for spiders in DEMO_SPIDERS.values() for n in spiders]
    assert sorted(spider for (spider,) in query(db, "SELECT spider FROM crawl_runs")) == sorted(
        names
    )
    stats = annals("stats", "--db", str(db))
    assert stats.returncode == 0, stats.stderr
    assert "watch/rounds" in stats.stdout
    before = versions_by_document(db)

    second = annals("demo", "--watch", "--seconds", "3", "--db", str(db), timeout=400)
    assert second.returncode == 0, second.stdout + second.stderr
    assert arrivals(second.stdout)
    after = versions_by_document(db)
    # The recorded pages made no version; what the second demo published is new documents.
    assert {d: after[d] for d in before} == before
    assert len(after) == len(before) + len(arrivals(second.stdout))


def test_a_published_item_tops_the_first_list_page_which_keeps_its_size():
    channel = DeribitChannel()
    mirror = Mirror(*(MIRRORS / source for source in DEMO_SPIDERS), channels=[channel])
    publisher = Publisher(mirror, channel)
    for feed in FEEDS:
        url = feed.facts.list_url(1)
        parts = urlsplit(url)
        target = f"{parts.path}?{parts.query}"
        recorded = feed.facts.parse_list(mirror.route_for("GET", target).payload(), url, "en")
        published = publisher.publish(feed)
        page = mirror.route_for("GET", target)
        assert page is not None
        listed = feed.facts.parse_list(page.payload(), url, "en").records
        assert listed[0].external_id == published.external_id
        assert listed[0].title == published.title
        assert [r.identity for r in listed[1:]] == [r.identity for r in recorded.records[:-1]]
        # No subscriber yet: the pushed feed's item is on its list only.
        assert published.how == "polled"


def test_sigterm_stops_the_demo_and_its_watch_with_the_runs_recorded(tmp_path):
    db = tmp_path / "demo.db"
    env = {**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    env.pop("ANNALS_DATABASE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "archive", "demo", "--watch", "--db", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        for line in process.stdout:  # until the first polled arrival
            lines.append(line.rstrip("\n"))
            if line.startswith("arrived: okx (polled)"):
                break
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    lines += rest.splitlines()
    assert process.returncode == 0, lines
    assert any(line.startswith("arrived: okx (polled)") for line in lines)
    # The watch was stopped too, and says how each of its runs ended.
    names = [n for spiders in DEMO_SPIDERS.values() for n in spiders]
    assert {line.split(":")[0] for line in lines if " (run " in line} == set(names)
    statuses = dict(query(db, "SELECT spider, status FROM crawl_runs"))
    assert set(statuses) == set(names)
    assert "running" not in statuses.values()
