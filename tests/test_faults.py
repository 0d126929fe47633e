"""Faults and bad input: nothing archived is lost, nothing false gets in, the run says what."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from archive.cli import Exit
from archive.db import open_archive, resolve_url
from archive.records import Quarantined, RawResponse
from archive.store import Store
from crawler.cli import DEMO_SPIDERS
from crawler.mirror import Mirror, MirrorServer, Route
from crawler.synthetic import generate
from tests.helpers import FAST, FIXTURES, annals, crawl
from tests.test_crawl_gate import query, unblock

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]


def consistency(db: Path) -> tuple[str, int, int]:
    """PRAGMA integrity_check, versions without their document, documents whose current
    version is missing."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        orphans = conn.execute(
            "SELECT count(*) FROM versions v LEFT JOIN documents d ON d.id = v.document_id "
            "WHERE d.id IS NULL"
        ).fetchone()[0]
        dangling = conn.execute(
            "SELECT count(*) FROM documents d LEFT JOIN versions v ON v.document_id = d.id "
            "AND v.version = d.current_version WHERE v.id IS NULL"
        ).fetchone()[0]
    return integrity, orphans, dangling


def content(db: Path) -> tuple[list[tuple], list[tuple]]:
    """The archive's documents and versions, without fetch times."""
    docs = query(
        db,
        "SELECT source, kind, external_id, language, url, published_at, current_version, "
        "removed_at FROM documents ORDER BY source, kind, external_id, language",
    )
    versions = query(
        db,
        "SELECT d.external_id, d.language, v.version, v.content_hash, v.title, v.body_text, "
        "v.category, v.event_type, v.tags, v.symbols, v.published_at FROM versions v "
        "JOIN documents d ON d.id = v.document_id ORDER BY d.external_id, d.language, v.version",
    )
    return docs, versions


def steady_content(db: Path) -> tuple[list[tuple], list[tuple]]:
    """content(), less what each crawl dates by its own clock: a Square post archived from
    the feed has its relative time ("1h ago") resolved against the fetch time."""
    feed = {
        (external_id, language)
        for external_id, language in query(
            db,
            "SELECT d.external_id, d.language FROM documents d JOIN versions v ON "
            "v.document_id = d.id WHERE json_extract(v.extra, '$.from_feed')",
        )
    }
    docs, versions = content(db)
    docs = [(*d[:5], None, *d[6:]) if (d[2], d[3]) in feed else d for d in docs]
    versions = [
        (v[0], v[1], v[2], None, *v[4:10], None) if (v[0], v[1]) in feed else v for v in versions
    ]
    return docs, versions


# --- bad input ---------------------------------------------------------------------------


@pytest.fixture
def bad_mirror():
    mirror = Mirror(FIXTURES / "bad", FIXTURES / "gate")
    with MirrorServer(mirror) as server:
        yield mirror, server.url


def test_bad_input_ends_as_quarantine_refusal_or_correct_record(tmp_path, bad_mirror):
    _, url = bad_mirror
    db = tmp_path / "annals.db"
    result = crawl(db, url, "gate_announcements")
    # Nothing crashed: the run finished, said what went wrong, and exits non-zero.
    assert result.returncode == Exit.FAILED
    assert "gate_announcements: partial" in result.stdout
    assert "Traceback" not in result.stderr

    quarantined = dict(query(db, "SELECT url, error FROM quarantine"))

    def error(article: str) -> str:
        return quarantined[f"https://www.gate.com/announcements/article/{article}"]

    assert "cut short" in error("51331")
    assert "neither __NEXT_DATA__ nor a visible title" in error("51310")
    assert "not a plausible time" in error("51314")
    assert "undecodable" in error("51299")
    assert "empty page" in error("51293")
    assert len(quarantined) == 5
    # Every quarantined page kept its bytes for `annals reparse`.
    assert query(db, "SELECT count(*) FROM quarantine WHERE snapshot_id IS NULL") == [(0,)]
    for line in ("could not parse", "refused a record", "outside the source"):
        assert line in result.stderr

    rows = {
        r[0]: r[1:]
        for r in query(
            db,
            "SELECT d.external_id, v.title, d.published_at, v.category FROM documents d "
            "JOIN versions v ON v.document_id = d.id",
        )
    }
    # No junk version: nothing at all for the broken pages, nor for the redirected one.
    for article in ("51331", "51310", "51314", "51299", "51293", "51321"):
        assert article not in rows
    # The right record where the page still says enough.
    assert rows["51322"][:2] == (
        "Gate Launches Pre-Market Trading for SPCXUSDT Perpetual Futures (USDT-M)",
        "2026-05-22T07:56:11.000Z",
    )
    assert rows["51319"][1] == "2026-05-22T06:30:00.000Z"
    assert rows["51316"][2] is None  # unknown category: kept, without a name
    assert rows["51308"][1] == "2026-05-21T09:41:27.000Z"  # from the visible time line
    assert rows["51303"][0] == "Gate Alpha Will List Sapien Labs & Co (SPNL)"
    assert rows["51296"][0] == "Gate API v4 更新：统一账户借贷限额接口"
    counters = json.loads(query(db, "SELECT counters FROM crawl_runs")[0][0])
    assert counters["offsite"] == 1
    assert counters["quarantined"] == 5


def test_a_listing_that_suddenly_has_no_items_marks_nothing_removed(tmp_path, gate_mirror):
    mirror, url = gate_mirror
    unblock(mirror)
    db = tmp_path / "annals.db"
    assert crawl(db, url, "gate_announcements").returncode == 0
    empty = json.dumps({"code": 0, "message": "success", "data": {"total": 0, "list": []}})
    hub = (FIXTURES / "gate" / "announcements.html").read_text()
    start = hub.index('"listData":')
    end = hub.index('"categories"', start)
    hub = hub[:start] + '"listData":{"list":[],"total":0},' + hub[end:]
    mirror.prepend(
        Route("POST", "/api/web/v1/portal/announcement/list_article", content=empty.encode(),
              headers={"Content-Type": "application/json"}),
        Route("GET", "/announcements", content=hub.encode(), headers={"Content-Type": "text/html"}),
    )  # fmt: skip
    second = crawl(db, url, "gate_announcements")
    assert second.returncode == Exit.FAILED
    assert query(db, "SELECT count(*) FROM documents WHERE removed_at IS NOT NULL") == [(0,)]
    errors = {e for (e,) in query(db, "SELECT error FROM quarantine")}
    assert errors == {"listing has no items", "list endpoint answered no items on page 1"}


def test_a_response_over_the_size_limit_is_dropped(tmp_path, gate_mirror):
    mirror, url = gate_mirror
    unblock(mirror)
    huge = b"<html><body>" + b"<p>x</p>" * 40_000 + b"</body></html>"
    mirror.prepend(
        Route(
            "GET",
            "/announcements/article/51322",
            content=huge,
            headers={"Content-Type": "text/html"},
        )
    )
    db = tmp_path / "annals.db"
    result = crawl(db, url, "gate_announcements", "-s", "DOWNLOAD_MAXSIZE=200000")
    assert result.returncode == Exit.FAILED
    assert "larger than download max size" in result.stderr
    assert query(db, "SELECT count(*) FROM documents WHERE external_id = '51322'") == [(0,)]
    counters = json.loads(query(db, "SELECT counters FROM crawl_runs")[0][0])
    assert counters["refused"] == 1


def test_reparse_archives_what_parses_now_and_keeps_the_rest(tmp_path, bad_mirror):
    _, url = bad_mirror
    db = tmp_path / "annals.db"
    crawl(db, url, "gate_announcements")
    # A page an older parser failed on: its bytes were kept, so a fix needs no refetch.
    page = (FIXTURES / "gate" / "zh_article_102003.html").read_bytes()
    raw = RawResponse(
        "https://www.gate.com/zh/announcements/article/102003", 200, "text/html", page
    )
    engine = open_archive(resolve_url(str(db)))
    Store(engine).write([Quarantined(raw.url, "gate_announcements", "old parser bug", raw)])
    engine.dispose()
    before = query(db, "SELECT count(*) FROM quarantine WHERE resolved_at IS NULL")[0][0]

    result = annals("reparse", "--db", str(db))
    assert result.returncode == 0, result.stderr
    assert (
        f"{before} quarantined pages: 1 parsed (1 new documents, 1 new versions)" in result.stdout
    )
    assert result.stdout.count("still failing:") == before - 1
    assert query(
        db, "SELECT resolved_at IS NOT NULL FROM quarantine WHERE error = 'old parser bug'"
    ) == [(1,)]
    title = query(db, "SELECT v.title FROM versions v JOIN documents d ON d.id = v.document_id "
                      "WHERE d.external_id = '102003'")  # fmt: skip
    assert title
    assert title[0][0].startswith("Gate 关于 SAMSUNG")
    again = annals("reparse", "--db", str(db))
    assert f"{before - 1} quarantined pages: 0 parsed" in again.stdout


# --- crashes and concurrency -------------------------------------------------------------


@pytest.fixture
def big_mirror():
    routes, _ = generate(150)
    mirror = Mirror(routes=routes)
    with MirrorServer(mirror) as server:
        yield mirror, server.url


# The spiders of each source. A source's spiders share one archive, as in a real one, and
# are killed in turn; each source is a test of its own, so test workers share the sources.
SOURCES = {
    source: DEMO_SPIDERS[source]
    for source in ("gate", "binance", "okx", "bybit", "bitget", "kucoin")
}
# Each spider is killed this often before the final crawl, in at most 4 tries a kill (a
# try misses when the crawl ends before its moment).
KILLS_PER_SPIDER = 3
ATTEMPTS_PER_KILL = 4
# The paths each spider asks for on the shared mirror (robots.txt aside).
PATHS = {
    "gate_announcements": ("/announcements", "/api/web/"),
    "gate_square": ("/post",),
    "binance_announcements": ("/bapi/",),
    "okx_announcements": ("/api/v5/",),
    "bybit_announcements": ("/v5/",),
    "bitget_announcements": ("/api/v2/",),
    "kucoin_announcements": ("/api/v3/",),
}


def answered(mirror: Mirror, spider: str, since: int = 0) -> int:
    """How many of the mirror's answers since hit `since` went to the spider."""
    return sum(hit.path.startswith(PATHS[spider]) for hit in mirror.hits[since:])


class DelayedMirror(Mirror):
    """A mirror that takes `delay` seconds per answer, so a crawl lasts long enough for
    a kill to land in the middle of a listing."""

    def __init__(self, *folders: Path, routes: list[Route], delay: float) -> None:
        super().__init__(*folders, routes=routes)
        self.delay = delay

    def answer(self, method: str, target: str, raw_body: bytes, content_type: str) -> Route | None:
        route = super().answer(method, target, raw_body, content_type)
        time.sleep(self.delay)
        return route


@pytest.fixture
def every_source():
    """Gate's 150 synthetic articles, its Square feed, and the five recorded API mirrors,
    on one server with a small delay per answer."""
    routes, _ = generate(150)
    folders = [FIXTURES / name for name in ("gate", "binance", "okx", "bybit", "bitget", "kucoin")]
    mirror = DelayedMirror(*folders, routes=routes, delay=0.05)
    with MirrorServer(mirror) as server:
        yield mirror, server.url


@pytest.mark.slow
@pytest.mark.parametrize("source", list(SOURCES))
def test_killed_at_random_moments_every_spider_stays_whole_and_resumes(
    source, tmp_path, every_source
):
    spiders = SOURCES[source]
    mirror, url = every_source
    reference = tmp_path / "reference.db"
    done = crawl(reference, url, *spiders)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    # The length of each spider's crawl, in answers: the kills land within it.
    lengths = {spider: answered(mirror, spider) for spider in spiders}
    victim = tmp_path / "victim.db"
    seed = int(os.environ.get("ANNALS_CRASH_SEED", "20261123"))
    rng = random.Random(f"{seed}:{source}")
    kills: list[str] = []
    wanted = KILLS_PER_SPIDER * len(spiders)
    for attempt in range(ATTEMPTS_PER_KILL * wanted):
        # Each spider in turn until it is killed, 3 kills each: the last run of every
        # spider before the final crawl is a killed one.
        spider = spiders[len(kills) % len(spiders)]
        # Small batches: a killed run leaves part of its listing committed, the case a
        # next run that does not repair would never complete.
        command = [sys.executable, "-m", "archive", "crawl", spider, "--db", str(victim),
                   "--base-url", url, *FAST, "-s", "ANNALS_BATCH_SIZE=3",
                   *(["--full"] if attempt % 2 else [])]  # fmt: skip
        # The moment: after a random number of the spider's answers, then a random delay
        # shorter than one answer, so kills land inside the crawl, not in its start-up.
        moment = rng.randint(1, lengths[spider])
        asked = len(mirror.hits)
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while answered(mirror, spider, asked) < moment and proc.poll() is None:
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, mirror.delay))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills.append(spider)
        proc.wait()
        if victim.exists():
            assert consistency(victim) == ("ok", 0, 0), f"seed {seed}"
        if len(kills) >= wanted:
            break
    assert len(kills) >= wanted, (
        f"only {len(kills)} runs were still going when killed (seed {seed})"
    )
    assert set(kills) == set(spiders)
    final = crawl(victim, url, *spiders)
    assert final.returncode == 0, final.stdout + final.stderr[-3000:]
    assert consistency(victim) == ("ok", 0, 0)
    assert steady_content(victim) == steady_content(reference), f"seed {seed}"
    statuses = {s for (s,) in query(victim, "SELECT status FROM crawl_runs")}
    assert "running" not in statuses  # killed runs are recorded as interrupted


def test_two_scrapy_crawls_on_one_file_make_no_duplicates(tmp_path, big_mirror):
    _, url = big_mirror
    db = tmp_path / "annals.db"
    command = [sys.executable, "-m", "scrapy", "crawl", "gate_announcements",
               "-a", f"base_url={url}", "-s", f"ANNALS_DATABASE_URL={db}",
               "-s", "DOWNLOAD_DELAY=0", "-s", "AUTOTHROTTLE_ENABLED=False",
               "-s", "ANNALS_BATCH_SIZE=5", "-s", "LOG_LEVEL=WARNING"]  # fmt: skip
    open_archive(resolve_url(str(db)), create=True).dispose()
    procs = [
        subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert query(
        db,
        "SELECT count(*), count(DISTINCT source || kind || external_id || language) FROM documents",
    ) == [(150, 150)]
    assert query(db, "SELECT count(*) FROM versions") == [(150,)]
    assert query(db, "SELECT status FROM crawl_runs") == [("finished",), ("finished",)]


def test_a_database_locked_too_long_is_retried_then_reported(tmp_path, gate_mirror):
    mirror, url = gate_mirror
    unblock(mirror)
    db = tmp_path / "annals.db"
    assert crawl(db, url, "gate_announcements", "-a", "categories=delisted").returncode == 0
    before = content(db)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        result = crawl(db, url, "gate_announcements", "--full",
                       "-s", "ANNALS_BUSY_TIMEOUT_MS=100", "-s", "ANNALS_BUSY_ATTEMPTS=3")  # fmt: skip
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.returncode == Exit.FAILED
    assert "locked by another writer" in result.stderr
    assert "retrying" in result.stderr
    assert consistency(db) == ("ok", 0, 0)
    assert content(db) == before


# --- a full disk ------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip(
            f"cannot mount a 3 MiB tmpfs here ({done.stderr.strip()}): disk-full test skipped"
        )
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_stops_the_crawl_and_keeps_what_was_committed(tmp_path, small_disk):
    routes, _ = generate(400, paragraphs=10, incompressible=True)
    db = small_disk / "annals.db"
    with MirrorServer(Mirror(routes=routes)) as server:
        result = crawl(db, server.url, "gate_announcements", "-s", "ANNALS_BATCH_SIZE=10")
    assert result.returncode == Exit.FAILED
    assert "database or disk is full" in result.stderr
    assert "Everything written before is kept" in result.stderr
    assert consistency(db) == ("ok", 0, 0)
    kept = query(db, "SELECT count(*) FROM documents")[0][0]
    assert 0 < kept < 400
    # What the archive could not take is said on the summary line, with its number.
    assert re.search(r"gate_announcements: failed .*, [1-9][0-9]* unarchived$", result.stdout, re.M)
    assert query(db, "SELECT count(*) FROM versions")[0][0] == kept


# --- what never leaks --------------------------------------------------------------------


def test_logs_never_show_cookies_or_authorization(tmp_path, gate_mirror):
    mirror, url = gate_mirror
    unblock(mirror)
    mirror.prepend(
        Route("GET", "/announcements", content=(FIXTURES / "gate" / "announcements.html").read_bytes(),
              headers={"Content-Type": "text/html", "Set-Cookie": "session=c00kie-s3cret; Path=/"})
    )  # fmt: skip
    db = tmp_path / "annals.db"
    headers = json.dumps({"Authorization": "Bearer t0ken-s3cret", "Cookie": "id=c00kie-s3cret"})
    result = crawl(db, url, "gate_announcements", "--log-level", "DEBUG",
                   "-s", f"DEFAULT_REQUEST_HEADERS={headers}", "-s", "COOKIES_ENABLED=True")  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Crawled (200)" in result.stderr  # the debug log was on
    assert "s3cret" not in result.stderr + result.stdout
