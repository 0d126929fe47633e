"""End to end: Deribit's announcements crawled from its local mirror by `annals crawl`.

The first crawl is made once (a module fixture) and each test works on a copy of its
archive, so the file runs five crawl subprocesses. What the mirror holds is read from
its JSON files here, not from the parser.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from archive.cli import Exit
from archive.normalize import html_to_text
from crawler.mirror import Hit, Mirror, MirrorServer, Route
from tests.helpers import FIXTURES, crawl
from tests.test_crawl_api import Times, iso_ms, runs
from tests.test_crawl_gate import query

pytestmark = pytest.mark.e2e

SPIDER = "deribit_announcements"
PATH = "/api/v2/public/get_announcements"
JSON = {"Content-Type": "application/json"}
PAGES = ("announcements_p1.json", "announcements_p2.json", "announcements_p3.json")
METHOD = "https://www.deribit.com/api/v2/public/get_announcements"


def announcements(folder: Path) -> dict[str, dict[str, Any]]:
    """Every announcement the mirror's pages hold, by id, as the API spells it."""
    found = {
        str(item["id"]): item
        for name in PAGES
        for item in json.loads((folder / name).read_text())["result"]
    }
    assert found, folder
    return found


def archived(db: Path) -> dict[str, tuple[str, str, str, str]]:
    """external id -> (title, published_at, url, body_text) of the current versions."""
    rows = query(
        db,
        "SELECT d.external_id, v.title, d.published_at, d.url, v.body_text FROM documents d "
        "JOIN versions v ON v.document_id = d.id AND v.version = d.current_version "
        "WHERE d.source = 'deribit'",
    )
    return {row[0]: row[1:] for row in rows}


def cursors_asked(hits: list[Hit]) -> list[str | None]:
    return [h.query.get("start_timestamp") for h in hits if h.path == PATH]


def edit(folder: Path, name: str, change: Callable[[dict[str, Any]], None]) -> None:
    path = folder / name
    answer = json.loads(path.read_text())
    change(answer)
    path.write_text(json.dumps(answer, ensure_ascii=False))


def rpc_error(code: int, message: str) -> bytes:
    error = {"code": code, "message": message, "data": {"reason": message}}
    return json.dumps({"jsonrpc": "2.0", "error": error, "usIn": 1, "usOut": 2}).encode()


@dataclass
class FirstCrawl:
    db: Path
    hits: list[Hit]


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> FirstCrawl:
    """The first crawl of the recorded mirror, made once for the file."""
    db = tmp_path_factory.mktemp("deribit") / "annals.db"
    mirror = Mirror(FIXTURES / "deribit")
    with MirrorServer(mirror) as server:
        result = crawl(db, server.url, SPIDER)
    assert result.returncode == Exit.OK, result.stdout + result.stderr
    return FirstCrawl(db, list(mirror.hits))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A private copy of the mirror, free to edit."""
    target = tmp_path / "mirror"
    shutil.copytree(FIXTURES / "deribit", target)
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


def test_first_crawl_archives_every_announcement_once_by_the_inclusive_cursor(first):
    expected = announcements(FIXTURES / "deribit")
    assert archived(first.db) == {
        key: (
            item["title"],
            iso_ms(item["publication_timestamp"]),
            f"{METHOD}?start_timestamp={item['publication_timestamp']}&count=1",
            html_to_text(item["body"]),
        )
        for key, item in expected.items()
    }
    assert len(expected) == 30
    assert query(first.db, "SELECT count(*) FROM documents") == [(30,)]
    assert query(first.db, "SELECT count(*) FROM versions") == [(30,)]
    status, counters = runs(first.db)[SPIDER]
    assert (status, counters["new_documents"], counters["new_versions"]) == ("finished", 30, 30)

    # The cursor: the newest page, then start_timestamp=<its last item's time> (the page
    # starts with that item again), then the oldest item's time (that item alone):
    # nothing unseen, the walk ends; the time - 1 is never asked. Every page asks the
    # documented maximum, 50.
    assert cursors_asked(first.hits) == [None, "1779788727000", "1778482800000"]
    assert {h.query.get("count") for h in first.hits if h.path == PATH} == {"50"}
    for repeated in ("1779788727000", "1778482800000"):  # each listed on two pages
        assert query(
            first.db,
            "SELECT count(*), max(d.current_version) FROM documents d JOIN versions v "
            f"ON v.document_id = d.id WHERE d.external_id = '{repeated}'",
        ) == [(1, 1)]

    # Spot checks, written out by hand: flags in extra; an id that is not its time.
    spot = query(
        first.db,
        "SELECT d.external_id, d.published_at, d.url, d.language, v.title, v.body_html, "
        "json_extract(v.extra, '$.important'), json_extract(v.extra, '$.confirmation') "
        "FROM documents d JOIN versions v ON v.document_id = d.id "
        "WHERE d.external_id IN ('1781942417482', '1780306200000', '1778482800000') "
        "ORDER BY d.external_id",
    )
    assert spot[0][:4] == (
        "1778482800000", "2026-05-11T07:00:00.000Z",
        f"{METHOD}?start_timestamp=1778482800000&count=1", "en",
    )  # fmt: skip
    assert spot[0][6:] == (1, None)  # no confirmation field
    assert spot[1][:5] == (
        "1780306200000", "2026-06-01T11:00:00.000Z",
        f"{METHOD}?start_timestamp=1780311600000&count=1", "en",
        "Deribit Terms of Service update",
    )  # fmt: skip
    assert spot[1][6:] == (0, 1)
    assert spot[2][4] == "Scheduled maintenance – Tuesday 23 June 2026, 08:00 UTC"
    assert spot[2][5].startswith("<p>Dear traders,</p>")
    assert spot[2][6:] == (1, 0)


def test_unchanged_answers_give_no_version_and_one_request(db, served, folder):
    mirror, url = served
    # The envelope's timings change on every call; they are not the announcements.
    edit(folder, "announcements_p1.json", lambda a: a.update(usIn=1, usOut=2, usDiff=1))
    versions = query(db, "SELECT count(*) FROM versions")

    result = crawl(db, url, SPIDER)

    assert result.returncode == Exit.OK, result.stdout + result.stderr
    assert "0 new documents, 0 new versions" in result.stdout
    assert query(db, "SELECT count(*) FROM versions") == versions
    assert cursors_asked(mirror.hits) == [None]


def test_title_or_body_edit_is_one_new_version_and_the_important_flag_none(db, served, folder):
    mirror, url = served

    def change(answer: dict[str, Any]) -> None:
        first, second, third = answer["result"][:3]
        first["title"] += " (updated)"
        second["body"] = second["body"].replace("08:00 UTC", "09:00 UTC")
        third["important"] = True  # a flag, kept in extra: no version of its own

    edit(folder, "announcements_p1.json", change)

    result = crawl(db, url, SPIDER)

    assert result.returncode == Exit.OK, result.stdout + result.stderr
    assert "0 new documents, 2 new versions" in result.stdout
    assert cursors_asked(mirror.hits) == [None]
    rows = query(
        db,
        "SELECT d.external_id, v.version, v.title, v.body_text, "
        "json_extract(v.extra, '$.important') FROM versions v "
        "JOIN documents d ON d.id = v.document_id "
        "WHERE d.external_id IN ('1781942417482', '1781876702119', '1781775000000') "
        "ORDER BY d.external_id, v.version",
    )
    assert [(r[0], r[1]) for r in rows] == [
        ("1781775000000", 1),
        ("1781876702119", 1),
        ("1781876702119", 2),
        ("1781942417482", 1),
        ("1781942417482", 2),
    ]
    assert rows[0][4] == 1  # the flag is current, in the one version
    assert "09:00 UTC" in rows[2][3]
    assert "09:00 UTC" not in rows[1][3]
    assert rows[4][2] == "Scheduled maintenance – Tuesday 23 June 2026, 08:00 UTC (updated)"


def test_error_object_is_refused_never_archived_and_the_run_is_partial(db, served):
    mirror, url = served
    refusal = rpc_error(-32602, "Invalid params")
    mirror.prepend(Route("GET", PATH, status=400, content=refusal, headers=JSON))
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
    assert "code -32602: Invalid params" in error
    assert cursors_asked(mirror.hits) == [None]


def test_rate_limits_and_maintenance_are_retried_then_the_run_is_blocked(db, served):
    mirror, url = served
    mirror.prepend(
        Times("GET", PATH, status=429, content=rpc_error(10028, "too_many_requests"), headers=JSON),
        Times("GET", PATH, content=rpc_error(10066, "too_many_concurrent_requests"), headers=JSON),
        Route("GET", PATH, content=rpc_error(11051, "system_maintenance"), headers=JSON),
    )
    before = query(db, "SELECT count(*) FROM versions")

    result = crawl(db, url, SPIDER, "-s", "ANNALS_BLOCK_RETRIES=1")

    assert result.returncode == Exit.BLOCKED, result.stdout + result.stderr
    assert f"{SPIDER}: blocked" in result.stdout
    assert query(db, "SELECT count(*) FROM versions") == before
    assert query(db, "SELECT count(*) FROM quarantine") == [(0,)]
    assert query(db, "SELECT count(*) FROM documents WHERE removed_at IS NOT NULL") == [(0,)]
    status, counters = runs(db)[SPIDER]
    assert status == "blocked"
    assert (counters["blocked/rate_limited"], counters["blocked/rate_limit_code"]) == (1, 2)
    assert counters["blocked"] == 1
    # The 429 (BlockMiddleware's retry), then 10066 (the envelope's retry), then 11051.
    assert [h.status for h in mirror.hits if h.path == PATH] == [429, 200, 200]
