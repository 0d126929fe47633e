"""End to end: Bitfinex's posts feed crawled from its local mirror by `annals crawl`.

The first crawl is made once (a module fixture) and each test works on a copy of its
archive, so the file runs five crawl subprocesses. What the mirror holds is read from
its JSON files here, not from the parser.
"""

from __future__ import annotations

import html
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from archive.cli import Exit
from crawler.mirror import Hit, Mirror, MirrorServer, Route
from tests.helpers import FIXTURES, crawl
from tests.test_crawl_api import Times, iso_ms, runs
from tests.test_crawl_gate import query

pytestmark = pytest.mark.e2e

SPIDER = "bitfinex_announcements"
PATH = "/v2/posts/hist"
JSON = {"Content-Type": "application/json"}
PAGES = ("posts_hist_p1.json", "posts_hist_p2.json", "posts_hist_p3.json")


def posts(folder: Path) -> dict[str, list[Any]]:
    """Every post the mirror's pages hold, by id, as the feed spells it."""
    found = {str(p[0]): p for name in PAGES for p in json.loads((folder / name).read_text())}
    assert found, folder
    return found


def archived(db: Path) -> dict[str, tuple[str, str, str]]:
    """external id -> (title, published_at, url) of the current versions."""
    rows = query(
        db,
        "SELECT d.external_id, v.title, d.published_at, d.url FROM documents d "
        "JOIN versions v ON v.document_id = d.id AND v.version = d.current_version "
        "WHERE d.source = 'bitfinex'",
    )
    return {row[0]: row[1:] for row in rows}


def ends_asked(hits: list[Hit]) -> list[str | None]:
    return [h.query.get("end") for h in hits if h.path == PATH]


def edit(folder: Path, name: str, post_id: int, change: Any) -> None:
    path = folder / name
    page = json.loads(path.read_text())
    for post in page:
        if post[0] == post_id:
            change(post)
    path.write_text(json.dumps(page, ensure_ascii=False))


@dataclass
class FirstCrawl:
    db: Path
    hits: list[Hit]
    stdout: str


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> FirstCrawl:
    """The first crawl of the recorded mirror, made once for the file."""
    db = tmp_path_factory.mktemp("bitfinex") / "annals.db"
    mirror = Mirror(FIXTURES / "bitfinex")
    with MirrorServer(mirror) as server:
        result = crawl(db, server.url, SPIDER)
    assert result.returncode == Exit.OK, result.stdout + result.stderr
    return FirstCrawl(db, list(mirror.hits), result.stdout)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A private copy of the mirror, free to edit."""
    target = tmp_path / "mirror"
    shutil.copytree(FIXTURES / "bitfinex", target)
    return target


@pytest.fixture
def served(folder: Path) -> Iterator[tuple[Mirror, str]]:
    mirror = Mirror(folder)
    with MirrorServer(mirror) as server:
        yield mirror, server.url


@pytest.fixture
def db(tmp_path: Path, first: FirstCrawl) -> Path:
    """A copy of the first crawl's archive."""
    copy = tmp_path / "annals.db"
    shutil.copy(first.db, copy)
    return copy


def test_first_crawl_archives_every_post_once_by_the_inclusive_end_cursor(first):
    expected = posts(FIXTURES / "bitfinex")
    assert archived(first.db) == {
        key: (html.unescape(p[3]), iso_ms(p[1]), f"https://www.bitfinex.com/posts/{key}")
        for key, p in expected.items()
    }
    assert len(expected) == 31
    assert query(first.db, "SELECT count(*) FROM documents") == [(31,)]
    assert query(first.db, "SELECT count(*) FROM versions") == [(31,)]
    status, counters = runs(first.db)[SPIDER]
    assert (status, counters["new_documents"], counters["new_versions"]) == ("finished", 31, 31)

    # The cursor: page 1, then end=<MTS of its last post> (page 2 starts with that post
    # again), then end=<MTS of the oldest> (that post alone): nothing unseen, the walk
    # ends; end=<MTS - 1> is never asked, nor the undocumented id= cursor.
    assert ends_asked(first.hits) == [None, "1779963630405", "1778234400000"]
    assert all(
        h.query.get("type") == "1" and h.query.get("limit") == "20"
        for h in first.hits
        if h.path == PATH
    )
    assert not any("id" in h.query for h in first.hits)
    for repeated in ("1152", "1135"):  # each listed on two pages
        assert query(
            first.db,
            "SELECT count(*), max(d.current_version) FROM documents d JOIN versions v "
            f"ON v.document_id = d.id WHERE d.external_id = '{repeated}'",
        ) == [(1, 1)]

    # Spot checks, written out by hand.
    spot = query(
        first.db,
        "SELECT d.external_id, d.published_at, d.url, d.language, v.title, v.body_text, "
        "v.body_html, v.event_type FROM documents d JOIN versions v ON v.document_id = d.id "
        "WHERE d.external_id IN ('1181', '1178', '1141') ORDER BY d.external_id",
    )
    assert spot[0][:6] == (
        "1141", "2026-05-15T09:30:00.000Z", "https://www.bitfinex.com/posts/1141", "en",
        "Bitfinex Mobile App 5.12 Released", "",
    )  # fmt: skip
    assert spot[0][6] is None  # an empty body
    assert spot[1][4] == "Scheduled Maintenance & Upgrade: Kiln (KILN) Network"
    assert spot[1][7] == "maintenance"
    assert spot[2][:5] == (
        "1181", "2026-06-20T09:12:41.337Z", "https://www.bitfinex.com/posts/1181", "en",
        "Bitfinex Lists Arbor (ARBR)",
    )  # fmt: skip
    assert "Trading pairs: ARBR/USD and ARBR/USD₮." in spot[2][5]
    assert spot[2][6].startswith("<p>We are pleased to announce")
    assert spot[2][7] == "listing"


def test_unchanged_feed_gives_no_version_and_one_request(db, served):
    mirror, url = served
    versions = query(db, "SELECT count(*) FROM versions")

    result = crawl(db, url, SPIDER)

    assert result.returncode == Exit.OK, result.stdout + result.stderr
    assert "0 new documents, 0 new versions" in result.stdout
    assert query(db, "SELECT count(*) FROM versions") == versions
    assert ends_asked(mirror.hits) == [None]


def test_title_or_body_edit_is_one_new_version_and_placeholders_are_none(db, served, folder):
    mirror, url = served
    p1 = "posts_hist_p1.json"
    edit(folder, p1, 1181, lambda p: p.__setitem__(3, p[3] + " (updated)"))
    edit(folder, p1, 1179, lambda p: p.__setitem__(4, p[4].replace("20x", "25x")))
    # Values in the positions that are not public (a counter, say) and a longer array.
    edit(folder, p1, 1178, lambda p: (p.__setitem__(2, 7), p.__setitem__(5, 3), p.append(9)))

    result = crawl(db, url, SPIDER)

    assert result.returncode == Exit.OK, result.stdout + result.stderr
    assert "0 new documents, 2 new versions" in result.stdout
    assert ends_asked(mirror.hits) == [None]  # nothing new on page 1: the walk ends there
    rows = query(
        db,
        "SELECT d.external_id, v.version, v.title, v.body_text FROM versions v "
        "JOIN documents d ON d.id = v.document_id WHERE d.external_id IN ('1181', '1179', '1178') "
        "ORDER BY d.external_id, v.version",
    )
    assert [(r[0], r[1]) for r in rows] == [
        ("1178", 1),
        ("1179", 1),
        ("1179", 2),
        ("1181", 1),
        ("1181", 2),
    ]
    assert rows[4][2] == "Bitfinex Lists Arbor (ARBR) (updated)"
    assert "Maximum leverage: 25x." in rows[2][3]
    assert "Maximum leverage: 20x." in rows[1][3]


def test_error_array_is_refused_never_archived_and_the_run_is_partial(db, served):
    mirror, url = served
    refusal = json.dumps(["error", 10020, "limit: invalid"]).encode()
    mirror.prepend(Route("GET", PATH, status=500, content=refusal, headers=JSON))
    before = query(db, "SELECT count(*) FROM versions")

    result = crawl(db, url, SPIDER)

    assert result.returncode == Exit.FAILED, result.stdout + result.stderr
    assert f"{SPIDER}: partial" in result.stdout
    assert query(db, "SELECT count(*) FROM versions") == before
    assert query(db, "SELECT count(*) FROM documents WHERE removed_at IS NOT NULL") == [(0,)]
    status, counters = runs(db)[SPIDER]
    assert (status, counters["refused"], counters["quarantined"]) == ("partial", 1, 1)
    ((error,),) = query(
        db, "SELECT error FROM quarantine q JOIN snapshots s ON s.id = q.snapshot_id"
    )
    assert "code 10020: limit: invalid" in error
    # Its body is read at once (not retried as a server fault); the listing stops there.
    assert ends_asked(mirror.hits) == [None]


def test_rate_limit_and_maintenance_are_retried_then_the_run_is_blocked(db, served):
    mirror, url = served
    maintenance = json.dumps(["error", 20060, "maintenance"]).encode()
    mirror.prepend(
        Times("GET", PATH, status=429, content=b'{"error":"ERR_RATE_LIMIT"}', headers=JSON),
        Route("GET", PATH, status=500, content=maintenance, headers=JSON),
    )
    before = query(db, "SELECT count(*) FROM versions")

    # Bitfinex blocks an IP for up to 60 s and the spider waits that long; capped here.
    result = crawl(
        db, url, SPIDER, "-s", "ANNALS_BLOCK_RETRIES=1", "-s", "ANNALS_MAX_RETRY_AFTER=0.1"
    )

    assert result.returncode == Exit.BLOCKED, result.stdout + result.stderr
    assert f"{SPIDER}: blocked" in result.stdout
    assert query(db, "SELECT count(*) FROM versions") == before
    assert query(db, "SELECT count(*) FROM quarantine") == [(0,)]
    assert query(db, "SELECT count(*) FROM documents WHERE removed_at IS NOT NULL") == [(0,)]
    status, counters = runs(db)[SPIDER]
    assert status == "blocked"
    assert (counters["blocked/rate_limited"], counters["blocked/rate_limit_code"]) == (1, 2)
    assert counters["blocked"] == 1
    # The 429, then maintenance, then its one retry.
    assert [h.status for h in mirror.hits if h.path == PATH] == [429, 500, 500]
