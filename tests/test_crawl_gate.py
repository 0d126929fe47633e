"""End to end: real Scrapy crawling a local mirror of Gate into a real SQLite file."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from archive.cli import Exit
from archive.db import open_archive, resolve_url
from archive.normalize import format_time, utcnow
from crawler.mirror import Mirror, Route
from tests.helpers import FIXTURES, annals, crawl, crawl_lock_held

pytestmark = pytest.mark.e2e

LIST_API = "/api/web/v1/portal/announcement/list_article"


def query(db: Path, sql: str) -> list[tuple]:
    engine = open_archive(resolve_url(str(db)), readonly=True)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


def article_ids_with_pages(mirror_dir: Path) -> set[str]:
    """The articles the mirror answers with a real page (not a block)."""
    routes = json.loads((mirror_dir / "routes.json").read_text())
    return {
        r["path"].rsplit("/", 1)[1]
        for r in routes
        if r["path"].startswith("/announcements/article/")
        and r["status"] == 200
        and "challenge" not in r["file"]
    }


def unblock(mirror: Mirror) -> None:
    """Serve the two blocked articles as missing pages instead."""
    for article in ("51321", "51317"):
        mirror.prepend(Route("GET", f"/announcements/article/{article}", status=404))


def test_first_crawl_archives_the_mirror_with_titles_and_utc_times(
    tmp_path, gate_mirror, mirror_dir
):
    mirror, url = gate_mirror
    db = tmp_path / "annals.db"
    result = crawl(db, url, "gate_announcements")
    assert result.returncode == Exit.BLOCKED, result.stderr  # two articles are blocked on purpose
    assert "gate_announcements: blocked" in result.stdout

    full = query(
        db,
        "SELECT d.external_id, v.title, d.published_at, d.url FROM documents d "
        "JOIN versions v ON v.document_id = d.id AND v.version = d.current_version "
        "WHERE json_extract(v.extra, '$.listing_only') IS NULL ORDER BY d.external_id",
    )
    assert {row[0] for row in full} == article_ids_with_pages(mirror_dir)
    by_id = {row[0]: row[1:] for row in full}
    assert by_id["51322"] == (
        "Gate Launches Pre-Market Trading for SPCXUSDT Perpetual Futures (USDT-M)",
        "2026-05-22T07:56:11.000Z",
        "https://www.gate.com/announcements/article/51322",
    )
    # published_at is release_timestamp, not created_t (which is ten minutes earlier here).
    assert by_id["51319"][1] == "2026-05-22T06:30:00.000Z"

    # Listed articles whose page is missing keep what the listing says, marked as such;
    # the blocked ones are not archived at all.
    listed = json.loads((FIXTURES / "gate" / "list_article_p1.json").read_text())["data"]["total"]
    counts = query(
        db,
        "SELECT count(*), sum(json_extract(v.extra, '$.listing_only') = 'not_found') "
        "FROM documents d JOIN versions v ON v.document_id = d.id",
    )[0]
    assert counts == (listed - 2, listed - 2 - len(full))
    assert query(db, "SELECT count(*) FROM documents WHERE external_id IN ('51321', '51317')") == [
        (0,)
    ]

    run = query(db, "SELECT spider, status, counters FROM crawl_runs")
    assert run[0][:2] == ("gate_announcements", "blocked")
    counters = json.loads(run[0][2])
    assert counters["blocked"] == 2
    assert counters["new_documents"] == listed - 2
    assert counters["requests"] == len(mirror.hits)


def test_second_crawl_of_an_unchanged_mirror_creates_nothing_and_costs_a_request_per_listing(
    tmp_path, gate_mirror
):
    mirror, url = gate_mirror
    unblock(mirror)
    db = tmp_path / "annals.db"
    assert crawl(db, url, "gate_announcements").returncode == 0
    versions_before = query(db, "SELECT count(*) FROM versions")[0][0]
    mirror.hits.clear()

    second = crawl(db, url, "gate_announcements")
    assert second.returncode == 0, second.stderr
    assert "0 new documents, 0 new versions" in second.stdout
    assert query(db, "SELECT count(*) FROM versions")[0][0] == versions_before

    listings = {"/announcements", "/announcements/newlisted", "/announcements/delisted", LIST_API}
    for path in listings:
        assert sum(h.path == path for h in mirror.hits) == 1, path
    recheck_since = format_time(utcnow() - timedelta(days=3))
    young = query(db, f"SELECT count(*) FROM documents WHERE published_at >= '{recheck_since}'")[0][
        0
    ]
    articles = [h for h in mirror.hits if h.path.startswith("/announcements/article/")]
    assert len(articles) == young
    assert len(mirror.hits) <= len(listings) + 1 + young  # + robots.txt


def test_edited_body_gives_exactly_one_new_version_and_diff_shows_it(
    tmp_path, gate_mirror, mirror_dir
):
    mirror, url = gate_mirror
    unblock(mirror)
    db = tmp_path / "annals.db"
    assert crawl(db, url, "gate_announcements").returncode == 0
    page = mirror_dir / "article_51322.html"
    html = page.read_text()
    assert html.count("1x to 5x") >= 1
    page.write_text(html.replace("1x to 5x", "1x to 10x"))

    second = crawl(db, url, "gate_announcements", "--full")
    assert second.returncode == 0, second.stderr
    assert "1 new versions" in second.stdout
    versions = query(
        db,
        "SELECT v.version FROM versions v JOIN documents d ON d.id = v.document_id "
        "WHERE d.external_id = '51322' ORDER BY v.version",
    )
    assert versions == [(1,), (2,)]
    diff = annals("diff", "gate:announcement:51322:en", "--db", str(db))
    assert diff.returncode == 0
    assert "-" in diff.stdout
    assert "1x to 5x" in diff.stdout
    assert any(line.startswith("+") and "1x to 10x" in line for line in diff.stdout.splitlines())


def test_title_edited_in_the_listing_is_noticed_without_full(tmp_path, gate_mirror, mirror_dir):
    mirror, url = gate_mirror
    unblock(mirror)
    db = tmp_path / "annals.db"
    assert crawl(db, url, "gate_announcements").returncode == 0
    old = "Gate Will List Velora (VLR) for Spot Trading"
    new = "Gate Will List Velora (VLR) for Spot and Margin Trading"
    for name in (
        "article_51319.html",
        "list_article_p1.json",
        "announcements.html",
        "announcements_newlisted.html",
    ):
        path = mirror_dir / name
        path.write_text(path.read_text().replace(old, new))
    second = crawl(db, url, "gate_announcements")
    assert second.returncode == 0, second.stderr
    titles = query(
        db,
        "SELECT v.title FROM versions v JOIN documents d ON d.id = v.document_id "
        "WHERE d.external_id = '51319' ORDER BY v.version",
    )
    assert titles == [(old,), (new,)]


def test_challenge_and_567_never_become_records_and_the_run_says_blocked(tmp_path, gate_mirror):
    mirror, url = gate_mirror
    challenge = (FIXTURES / "gate" / "challenge_edgeone.html").read_bytes()
    mirror.prepend(
        Route("GET", "/announcements/article/51322", status=567, content=b"<html>EdgeOne</html>"),
        Route("GET", "/announcements/article/51319", status=200, content=challenge,
              headers={"Content-Type": "text/html"}),
        Route("GET", "/announcements/delisted", status=200, content=challenge,
              headers={"Content-Type": "text/html"}),
    )  # fmt: skip
    db = tmp_path / "annals.db"
    result = crawl(db, url, "gate_announcements")
    assert result.returncode == Exit.BLOCKED
    assert "blocked" in result.stdout
    blocked = ("51322", "51319", "51321", "51317")
    assert query(db, f"SELECT count(*) FROM documents WHERE external_id IN {blocked}") == [(0,)]
    assert query(db, "SELECT count(*) FROM quarantine") == [(0,)]
    snapshots = query(db, "SELECT url FROM snapshots")
    assert not any(any(b in u for b in blocked) for (u,) in snapshots)
    status, counters = query(db, "SELECT status, counters FROM crawl_runs")[0]
    assert status == "blocked"
    counters = json.loads(counters)
    assert counters["blocked"] == 5
    assert counters["blocked/edgeone"] == 3  # the first answer and two retries
    # Each blocked request was retried, then given up.
    assert sum(h.path == "/announcements/article/51322" for h in mirror.hits) == 3


def test_retry_after_is_honoured(tmp_path, gate_mirror):
    mirror, url = gate_mirror
    unblock(mirror)
    mirror.prepend(
        Route("GET", "/announcements/article/51322", status=429, headers={"Retry-After": "1"})
    )
    db = tmp_path / "annals.db"
    result = crawl(db, url, "gate_announcements", "-s", "ANNALS_BLOCK_RETRIES=1")
    assert result.returncode == Exit.BLOCKED
    hits = [h.at for h in mirror.hits if h.path == "/announcements/article/51322"]
    assert len(hits) == 2
    assert hits[1] - hits[0] >= 0.95


def test_known_article_answering_404_is_marked_removed_not_deleted(tmp_path, gate_mirror):
    mirror, url = gate_mirror
    unblock(mirror)
    db = tmp_path / "annals.db"
    assert crawl(db, url, "gate_announcements").returncode == 0
    mirror.prepend(Route("GET", "/announcements/article/51310", status=410))
    assert crawl(db, url, "gate_announcements", "--full").returncode == 0
    removed = query(
        db,
        "SELECT d.external_id, count(v.id) FROM documents d JOIN versions v "
        "ON v.document_id = d.id WHERE d.removed_at IS NOT NULL GROUP BY d.id",
    )
    assert removed == [("51310", 1)]


def test_robots_disallowing_the_list_endpoint_falls_back_to_the_sitemap(tmp_path, gate_mirror):
    mirror, url = gate_mirror
    unblock(mirror)
    mirror.prepend(
        Route("GET", "/robots.txt", content=b"User-agent: *\nDisallow: /api/\n",
              headers={"Content-Type": "text/plain"})
    )  # fmt: skip
    db = tmp_path / "annals.db"
    result = crawl(db, url, "gate_announcements", "--log-level", "INFO")
    assert result.returncode == 0, result.stderr
    assert not any(h.path == LIST_API for h in mirror.hits)
    assert "robots.txt disallows" in result.stderr
    assert any(h.path.startswith("/sitemaps/") for h in mirror.hits)


def test_zh_article_is_its_own_document_with_utc_time(tmp_path, gate_mirror):
    mirror, url = gate_mirror
    unblock(mirror)
    db = tmp_path / "annals.db"
    crawl(db, url, "gate_announcements", "-a", "lang=en,zh", "-a", "sitemap=1")
    row = query(
        db,
        "SELECT d.language, d.url, d.published_at FROM documents d WHERE d.external_id = '102003'",
    )
    # release_timestamp 1790650416; the page shows 2026-09-29 10:53 (UTC+8).
    assert row == [
        ("zh", "https://www.gate.com/zh/announcements/article/102003", "2026-09-29T02:53:36.000Z")
    ]


def test_overlapping_crawl_is_refused_at_once(tmp_path, gate_mirror):
    _, url = gate_mirror
    db = tmp_path / "annals.db"
    with crawl_lock_held(resolve_url(str(db))):
        started = time.monotonic()
        result = crawl(db, url, "gate_announcements")
        assert result.returncode == Exit.LOCKED
        assert "another annals crawl is running" in result.stderr
        assert time.monotonic() - started < 15
    assert crawl(db, url, "gate_announcements").returncode in (Exit.OK, Exit.BLOCKED)


def test_a_run_that_fetched_nothing_fails(tmp_path):
    db = tmp_path / "annals.db"
    result = crawl(db, "http://127.0.0.1:9", "gate_announcements", "-s", "RETRY_TIMES=0")
    assert result.returncode == Exit.FAILED
    assert "gate_announcements: failed" in result.stdout
    assert query(db, "SELECT status FROM crawl_runs") == [("failed",)]


def test_scrapy_crawl_works_the_same(tmp_path, gate_mirror):
    mirror, url = gate_mirror
    unblock(mirror)
    db = tmp_path / "annals.db"
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-m", "scrapy", "crawl", "gate_announcements", "-a", f"base_url={url}",
         "-s", f"ANNALS_DATABASE_URL={db}", "-s", "DOWNLOAD_DELAY=0",
         "-s", "AUTOTHROTTLE_ENABLED=False", "-s", "LOG_LEVEL=WARNING"],
        cwd=root, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert query(db, "SELECT status FROM crawl_runs") == [("finished",)]
    assert query(db, "SELECT count(*) > 0 FROM documents") == [(1,)]


def test_bad_base_url_is_a_usage_error_not_a_silent_success(tmp_path):
    result = annals(
        "crawl", "gate_announcements", "--db", str(tmp_path / "a.db"), "--base-url", "localhost"
    )
    assert result.returncode != 0
    assert "base_url" in result.stdout + result.stderr
