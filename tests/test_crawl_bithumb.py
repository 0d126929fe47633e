"""End to end: Bithumb's notice list crawled from a local mirror with `annals crawl`.

The API answers only its newest 20 notices, so history builds up crawl by crawl; its
bursts are answered with redirects. What the mirror holds is read from its files here.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from archive.cli import Exit
from crawler.mirror import Mirror, MirrorServer, Route
from tests.helpers import FIXTURES, crawl
from tests.test_crawl_api import Times, runs
from tests.test_crawl_gate import query

pytestmark = pytest.mark.e2e

SPIDER = "bithumb_announcements"
PATH = "/v1/notices"
JSON = {"Content-Type": "application/json; charset=utf-8"}
KST = timezone(timedelta(hours=9))


def notices(folder: Path) -> list[dict[str, Any]]:
    return json.loads((folder / "notices.json").read_text())


def number(notice: dict[str, Any]) -> str:
    return notice["pc_url"].split("?")[0].rstrip("/").rsplit("/", 1)[1]


def utc_ms(kst: str) -> str:
    moment = datetime.strptime(kst, "%Y-%m-%d %H:%M:%S").replace(tzinfo=KST)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def expected(items: list[dict[str, Any]]) -> dict[str, tuple[str, str, str, str]]:
    """number -> (title, published_at, url, category) as the archive should hold them."""
    return {
        number(n): (
            n["title"].replace("&amp;", "&"),
            utc_ms(n["published_at"]),
            f"https://feed.bithumb.com/notice/{number(n)}",
            n["categories"][0],
        )
        for n in items
    }


def archived(db: Path) -> dict[str, tuple[str, str, str, str]]:
    rows = query(
        db,
        "SELECT d.external_id, v.title, d.published_at, d.url, v.category FROM documents d "
        "JOIN versions v ON v.document_id = d.id AND v.version = d.current_version "
        "WHERE d.source = 'bithumb' AND d.language = 'ko'",
    )
    return {row[0]: tuple(row[1:]) for row in rows}


def list_hits(mirror: Mirror) -> list[dict[str, str]]:
    return [hit.query for hit in mirror.hits if hit.path == PATH]


def removed(db: Path) -> int:
    return query(db, "SELECT count(*) FROM documents WHERE removed_at IS NOT NULL")[0][0]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    copy = tmp_path / "mirror" / "bithumb"
    shutil.copytree(FIXTURES / "bithumb", copy)
    return copy


@pytest.fixture
def mirror(folder: Path) -> Iterator[tuple[Mirror, str]]:
    served = Mirror(folder)
    with MirrorServer(served) as server:
        yield served, server.url


def test_history_builds_up_crawl_by_crawl_and_nothing_fallen_off_is_removed(
    tmp_path, folder, mirror
):
    served, url = mirror
    db = tmp_path / "annals.db"
    first_list = notices(folder)

    first = crawl(db, url, SPIDER)
    assert first.returncode == Exit.OK, first.stdout + first.stderr
    assert archived(db) == expected(first_list)
    assert list_hits(served) == [{"count": "20"}]  # the documented maximum, once
    status, counters = runs(db)[SPIDER]
    assert (status, counters["new_documents"], counters["new_versions"]) == ("finished", 20, 20)
    # Spot checks, by hand: a notice before 09:00 KST is the day before in UTC; the id
    # is the number without "?category=5"; modified_at is the update time, and absent.
    spot = query(
        db,
        "SELECT d.external_id, d.published_at, d.url, v.updated_at, v.event_type, "
        "json_extract(v.extra, '$.categories') FROM documents d JOIN versions v "
        "ON v.document_id = d.id WHERE d.external_id IN ('1653211', '1653207', '1653192', "
        "'1653185', '1653166') ORDER BY d.external_id",
    )
    assert spot == [
        ("1653166", "2026-06-13T10:10:00.000Z", "https://feed.bithumb.com/notice/1653166",
         "2026-06-13T10:10:00.000Z", "product", '["거래유의","거래지원종료"]'),
        ("1653185", "2026-06-15T23:45:20.000Z", "https://feed.bithumb.com/notice/1653185",
         None, "maintenance", '["입출금"]'),
        ("1653192", "2026-06-17T02:00:00.000Z", "https://feed.bithumb.com/notice/1653192",
         "2026-06-18T00:30:12.000Z", "maintenance", '["점검"]'),
        ("1653207", "2026-06-18T10:40:02.000Z", "https://feed.bithumb.com/notice/1653207",
         "2026-06-18T10:40:02.000Z", "product", '["거래유의"]'),
        ("1653211", "2026-06-18T15:12:45.000Z", "https://feed.bithumb.com/notice/1653211",
         "2026-06-18T15:12:45.000Z", "maintenance", '["입출금"]'),
    ]  # fmt: skip
    assert query(db, "SELECT count(*) FROM versions WHERE body_html IS NOT NULL") == [(0,)]

    # Unchanged: one request, no version.
    served.hits.clear()
    second = crawl(db, url, SPIDER)
    assert second.returncode == Exit.OK, second.stdout + second.stderr
    assert "0 new documents, 0 new versions" in second.stdout
    assert len(list_hits(served)) == 1

    # The list moves on: three new notices on top, the three oldest fall off; one title is
    # edited, and another notice's modified_at alone moves (not what a reader sees).
    fresh = [
        first_list[0] | {
            "title": f"새 공지 {n}",
            "pc_url": f"https://feed.bithumb.com/notice/{1653300 + n}",
            "published_at": f"2026-06-20 0{n}:00:00",
            "modified_at": f"2026-06-20 0{n}:00:00",
            "categories": ["안내"],
        }
        for n in (3, 2, 1)
    ]  # fmt: skip
    moved = fresh + [dict(n) for n in first_list[:-3]]
    edited, touched = moved[5], moved[6]
    edited["title"] += " (수정)"
    touched["modified_at"] = "2026-06-20 10:00:00"
    (folder / "notices.json").write_text(json.dumps(moved, ensure_ascii=False))

    third = crawl(db, url, SPIDER)
    assert third.returncode == Exit.OK, third.stdout + third.stderr
    assert "3 new documents, 4 new versions" in third.stdout  # 3 first versions, 1 edit
    # Every notice ever listed is kept, the fallen-off ones as they were; none is removed.
    assert archived(db) == expected(first_list) | expected(moved)
    assert len(archived(db)) == 23
    assert removed(db) == 0
    assert query(
        db,
        "SELECT v.version, v.title FROM versions v JOIN documents d ON d.id = v.document_id "
        f"WHERE d.external_id = '{number(edited)}' ORDER BY v.version",
    ) == [(1, first_list[2]["title"]), (2, edited["title"])]
    assert query(
        db,
        "SELECT count(*) FROM versions v JOIN documents d ON d.id = v.document_id "
        f"WHERE d.external_id = '{number(touched)}'",
    ) == [(1,)]
    # 3:00 KST on June 20 is June 19 in UTC.
    assert archived(db)["1653303"][1] == "2026-06-19T18:00:00.000Z"


def test_redirects_empty_answers_and_errors_are_never_read_as_no_notices(tmp_path, mirror):
    served, url = mirror
    db = tmp_path / "annals.db"
    assert crawl(db, url, SPIDER).returncode == Exit.OK
    before = archived(db)

    # A burst answered with a redirect back to the list (a loop), then with nothing: both
    # are blocks, retried after the host's backoff, and the run ends "blocked".
    served.hits.clear()
    served.prepend(
        Times("GET", PATH, status=302, headers={"Location": f"{PATH}?count=20"}),
        Times("GET", PATH, status=200, headers=JSON, content=b""),
    )
    blocked = crawl(db, url, SPIDER, "-s", "ANNALS_BLOCK_RETRIES=1")
    assert blocked.returncode == Exit.BLOCKED, blocked.stdout + blocked.stderr
    assert f"{SPIDER}: blocked" in blocked.stdout
    status, counters = runs(db)[SPIDER]
    assert status == "blocked"
    assert counters["blocked"] == 1
    assert (counters["blocked/redirect"], counters["blocked/empty"]) == (1, 1)
    assert counters["redirect_loop"] == 0  # never followed
    assert [hit.status for hit in served.hits if hit.path == PATH] == [302, 200]

    # An error object (HTTP 400) is refused: quarantined, the run "partial".
    served.prepend(
        Route("GET", PATH, status=400, headers=JSON,
              content=b'{"error": {"name": "invalid_parameter", "message": "bad count"}}'),
    )  # fmt: skip
    refused = crawl(db, url, SPIDER)
    assert refused.returncode == Exit.FAILED, refused.stdout + refused.stderr
    status, counters = runs(db)[SPIDER]
    assert (status, counters["refused"], counters["quarantined"]) == ("partial", 1, 1)
    (error,) = query(db, "SELECT error FROM quarantine q JOIN snapshots s ON s.id = q.snapshot_id")
    assert "code invalid_parameter: bad count" in error[0]

    # Neither changed the archive, and nothing was marked removed.
    assert archived(db) == before
    assert query(db, "SELECT count(*) FROM versions") == [(len(before),)]
    assert removed(db) == 0
