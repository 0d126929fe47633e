"""End to end: Upbit's notices crawled from its recorded mirror on 127.0.0.1 by `annals
crawl` in a subprocess, into a real SQLite file. What the mirror holds is read from its
JSON files here (times converted with the standard library), not from the parsers."""

from __future__ import annotations

import html
import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from archive.cli import Exit
from crawler.mirror import Mirror, MirrorServer, Route
from tests.helpers import FIXTURES, crawl
from tests.test_crawl_gate import query

pytestmark = pytest.mark.e2e

SPIDER = "upbit_announcements"
LIST = "/api/v1/announcements"
PAGES = ("announcements_p1.json", "announcements_p2.json")
PAGE_SIZE = 20  # what the API serves a page (per_page=20, its most)
JSON = {"Content-Type": "application/json; charset=utf-8"}
PINNED = "776782191"


def utc_ms(kst: str) -> str:
    """An ISO time with its offset as annals stores it: UTC, milliseconds, Z."""
    moment = datetime.fromisoformat(kst).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def load(folder: Path, name: str) -> dict[str, Any]:
    return json.loads((folder / name).read_text())


def save(folder: Path, name: str, data: dict[str, Any]) -> None:
    (folder / name).write_text(json.dumps(data, ensure_ascii=False))


def listed(folder: Path) -> dict[str, dict[str, Any]]:
    """Every notice the mirror lists, pinned ones included, by uuid."""
    notices: dict[str, dict[str, Any]] = {}
    for name in PAGES:
        data = load(folder, name)["data"]
        for item in data["fixed_notices"] + data["notices"]:
            notices.setdefault(item["uuid"], item)
    return notices


def expected(folder: Path) -> dict[str, tuple[str, str, str]]:
    """uuid -> (title, published_at, url) as each notice's detail gives them."""
    rows = {}
    for uuid in listed(folder):
        item = load(folder, f"details/{uuid}.json")["data"]
        published = item.get("first_listed_at") or item["listed_at"]
        rows[uuid] = (
            html.unescape(item["title"]),
            utc_ms(published),
            f"https://www.upbit.com/service_center/notice?id={uuid}",
        )
    return rows


def archived(db: Path) -> dict[str, tuple[str, str, str]]:
    rows = query(
        db,
        "SELECT d.external_id, v.title, d.published_at, d.url FROM documents d "
        "JOIN versions v ON v.document_id = d.id AND v.version = d.current_version "
        "WHERE d.source = 'upbit' AND d.language = 'ko'",
    )
    return {row[0]: row[1:] for row in rows}


def last_run(db: Path) -> tuple[str, dict[str, Any]]:
    status, counters = query(db, "SELECT status, counters FROM crawl_runs ORDER BY id DESC")[0]
    return status, json.loads(counters)


def hits(mirror: Mirror) -> tuple[list[dict[str, str]], list[str]]:
    """(the list requests' queries, the uuids whose detail was asked), in order."""
    pages = [h.query for h in mirror.hits if h.path == LIST]
    details = [h.path.rsplit("/", 1)[1] for h in mirror.hits if h.path.startswith(f"{LIST}/")]
    return pages, details


def versions_of(db: Path, uuid: str) -> list[tuple[Any, ...]]:
    return query(
        db,
        "SELECT v.version, v.title, v.body_text, v.updated_at, "
        "json_extract(v.extra, '$.listed_at') FROM versions v "
        f"JOIN documents d ON d.id = v.document_id WHERE d.external_id = '{uuid}' "
        "ORDER BY v.version",
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A private copy of the recorded mirror, free to edit between crawls."""
    target = tmp_path / "mirror" / "upbit"
    shutil.copytree(FIXTURES / "upbit", target)
    return target


@pytest.fixture
def mirror(folder: Path) -> Iterator[tuple[Mirror, str]]:
    served = Mirror(folder)
    with MirrorServer(served) as server:
        yield served, server.url


def relist(folder: Path, notices: list[dict[str, Any]]) -> None:
    """The list as Upbit would serve these notices: by listed_at, newest first, 20 a page."""
    ordered = sorted(notices, key=lambda n: datetime.fromisoformat(n["listed_at"]), reverse=True)
    pinned = load(folder, PAGES[0])["data"]["fixed_notices"]
    pages = -(-len(ordered) // PAGE_SIZE)
    for number, name in enumerate(PAGES, 1):
        page = ordered[(number - 1) * PAGE_SIZE : number * PAGE_SIZE]
        data = {"total_pages": pages, "total_count": len(ordered), "notices": page}
        save(folder, name, {"success": True, "data": data | {"fixed_notices": pinned}})
    assert pages == len(PAGES)


def edit_detail(folder: Path, uuid: str, **fields: Any) -> None:
    answer = load(folder, f"details/{uuid}.json")
    answer["data"] |= fields
    save(folder, f"details/{uuid}.json", answer)


# --- the archive of the mirror, again unchanged, then edited ----------------------------------


def test_mirror_archived_whole_then_unchanged_then_one_version_per_edit(mirror, folder, tmp_path):
    served, url = mirror
    db = tmp_path / "annals.db"

    first = crawl(db, url, SPIDER)
    assert first.returncode == Exit.OK, first.stdout + first.stderr
    rows = expected(folder)
    assert len(rows) == 34  # 33 notices and the pinned one
    assert archived(db) == rows
    status, counters = last_run(db)
    assert status == "finished"
    assert counters["new_documents"] == counters["new_versions"] == len(rows)
    assert query(db, "SELECT count(*) FROM versions") == [(len(rows),)]
    assert query(db, "SELECT count(*) FROM quarantine") == [(0,)]
    pages, details = hits(served)
    # Pages 1 and 2 of 2, as public clients ask them; the pinned notice, repeated on both,
    # asked once; every notice's detail asked once.
    assert [(q["os"], q["page"], q["per_page"], q["category"]) for q in pages] == [
        ("web", "1", "20", "all"),
        ("web", "2", "20", "all"),
    ]
    assert sorted(details) == sorted(rows)
    # Every body is archived, Markdown read: lists as lines, tables as rows.
    bodies = dict(
        query(
            db,
            "SELECT d.external_id, v.body_text FROM documents d JOIN versions v ON v.document_id = d.id",
        )
    )
    assert all(bodies.values())
    assert not any("**" in text for text in bodies.values())

    # Spot checks, written out by hand.
    spot = query(
        db,
        "SELECT d.external_id, d.published_at, v.updated_at, v.category, "
        "json_extract(v.extra, '$.listed_at'), json_extract(v.extra, '$.time_source') "
        "FROM documents d JOIN versions v ON v.document_id = d.id "
        "WHERE d.external_id IN ('685177330', '617145553', '646208062', '978845179', "
        f"'{PINNED}') ORDER BY d.published_at",
    )
    assert spot == [
        (PINNED, "2026-03-02T01:00:00.000Z", "2026-05-11T00:30:00.000Z", "안내",
         "2026-05-11T00:30:00.000Z", None),
        ("978845179", "2026-05-24T02:25:00.000Z", None, "디지털 자산",
         "2026-05-24T02:25:00.000Z", "listed_at"),
        ("617145553", "2026-06-05T09:00:00.000Z", "2026-06-18T01:30:00.000Z", "거래",
         "2026-06-18T01:30:00.000Z", None),
        ("646208062", "2026-06-08T23:15:00.000Z", "2026-06-11T03:00:00.000Z", "입출금",
         "2026-06-11T03:00:00.000Z", None),
        ("685177330", "2026-06-19T07:05:31.000Z", None, "거래",
         "2026-06-19T07:05:31.000Z", None),
    ]  # fmt: skip
    assert "라벤더(LVDR) | KRW, USDT | Ethereum | 2026-06-19 19:00 KST 예정" in bodies["685177330"]
    assert (
        "<table>"
        in query(
            db,
            "SELECT v.body_html FROM versions v JOIN documents d ON d.id = v.document_id "
            "WHERE d.external_id = '685177330'",
        )[0][0]
    )
    assert bodies["732861395"].startswith("솔라리스(SLRS) 거래지원을 기념하여 거래 & 입금 이벤트")

    # Unchanged: the first page only, no detail, no version.
    served.hits.clear()
    second = crawl(db, url, SPIDER)
    assert second.returncode == Exit.OK, second.stdout + second.stderr
    assert "0 new documents, 0 new versions" in second.stdout
    pages, details = hits(served)
    assert ([q["page"] for q in pages], details) == (["1"], [])

    # Upbit edits: a new notice; an old one's title marked (완료), re-dated to the top of
    # page 1; a body edit, re-dated; the pinned notice re-pinned (listed_at only); every
    # badge flipped. The list is re-ordered by listed_at, as Upbit's is.
    notices = {uuid: item for uuid, item in listed(folder).items() if uuid != PINNED}
    for item in notices.values():
        item["need_new_badge"] = not item["need_new_badge"]
        item["need_update_badge"] = not item["need_update_badge"]
    new = dict(notices["685177330"], uuid="501234567", id=6210, title="신규 공지 안내",
               listed_at="2026-06-20T10:00:00+09:00", first_listed_at="2026-06-20T10:00:00+09:00")  # fmt: skip
    answer = load(folder, "details/685177330.json")
    answer["data"] |= {k: new[k] for k in ("uuid", "id", "title", "listed_at", "first_listed_at")}
    save(folder, "details/501234567.json", answer)
    served.prepend(
        Route("GET", f"{LIST}/501234567", headers=JSON, file=folder / "details/501234567.json")
    )
    retitled, rebodied = "868996276", "646208062"
    notices[retitled] |= {"title": notices[retitled]["title"] + " (완료)",
                          "listed_at": "2026-06-20T09:00:00+09:00"}  # fmt: skip
    notices[rebodied]["listed_at"] = "2026-06-19T18:00:00+09:00"
    relist(folder, [new, *notices.values()])
    first_page = load(folder, PAGES[0])["data"]
    assert [n["uuid"] for n in first_page["notices"][:2]] == ["501234567", retitled]
    first_page["fixed_notices"][0]["listed_at"] = "2026-06-20T08:00:00+09:00"
    for name in PAGES:
        page = load(folder, name)
        page["data"]["fixed_notices"] = first_page["fixed_notices"]
        save(folder, name, page)
    edit_detail(
        folder, retitled, title=notices[retitled]["title"], listed_at=notices[retitled]["listed_at"]
    )
    body = load(folder, f"details/{rebodied}.json")["data"]["body"]
    edit_detail(folder, rebodied, listed_at=notices[rebodied]["listed_at"],
                body=body.replace("11:40 (KST)", "11:45 (KST)"))  # fmt: skip
    edit_detail(folder, PINNED, listed_at="2026-06-20T08:00:00+09:00")
    edit_detail(folder, "685177330", need_new_badge=False, need_update_badge=True)

    served.hits.clear()
    edited = crawl(db, url, SPIDER)
    assert edited.returncode == Exit.OK, edited.stdout + edited.stderr
    assert "1 new documents, 3 new versions" in edited.stdout
    pages, details = hits(served)
    # Page 1 brought a new notice, page 2 nothing: the walk ends there. Only the new,
    # the edited and the re-pinned notices' details are asked, not the badged ones.
    assert [q["page"] for q in pages] == ["1", "2"]
    assert sorted(details) == sorted(["501234567", retitled, rebodied, PINNED])
    assert query(db, "SELECT count(*) FROM documents") == [(35,)]
    assert query(db, "SELECT count(*) FROM documents WHERE removed_at IS NOT NULL") == [(0,)]

    (v1, v2) = versions_of(db, retitled)
    assert (v1[0], v2[0]) == (1, 2)
    assert v2[1] == f"{v1[1]} (완료)"
    assert (v2[3], v2[4]) == ("2026-06-20T00:00:00.000Z", "2026-06-20T00:00:00.000Z")
    assert query(db, f"SELECT published_at FROM documents WHERE external_id = '{retitled}'") == [
        (rows[retitled][1],)
    ]
    (b1, b2) = versions_of(db, rebodied)
    assert "11:40 (KST)" in b1[2]
    assert b2[2] == b1[2].replace("11:40 (KST)", "11:45 (KST)")
    # Re-pinned: the same text, one version, its listed_at moved in extra.
    assert [(v[0], v[4]) for v in versions_of(db, PINNED)] == [(1, "2026-06-19T23:00:00.000Z")]
    assert [v[0] for v in versions_of(db, "685177330")] == [1]
    assert archived(db)["501234567"] == (
        "신규 공지 안내",
        "2026-06-20T01:00:00.000Z",
        "https://www.upbit.com/service_center/notice?id=501234567",
    )


# --- refusals and rate limits -----------------------------------------------------------------


def test_429_text_on_every_request_archives_nothing_and_the_run_is_blocked(
    mirror, folder, tmp_path
):
    served, url = mirror
    limited = {
        "status": 429,
        "content": b"Too many API requests.",
        "headers": {"Content-Type": "text/plain"},
    }
    served.prepend(
        Route("GET", LIST, **limited),
        *(Route("GET", f"{LIST}/{uuid}", **limited) for uuid in listed(folder)),
    )
    db = tmp_path / "annals.db"
    result = crawl(db, url, SPIDER, "-s", "ANNALS_BLOCK_RETRIES=1")

    assert result.returncode == Exit.BLOCKED, result.stdout + result.stderr
    assert f"{SPIDER}: blocked" in result.stdout
    assert query(db, "SELECT count(*) FROM documents") == [(0,)]
    assert query(db, "SELECT count(*) FROM quarantine") == [(0,)]
    status, counters = last_run(db)
    assert (status, counters["blocked"], counters["blocked/rate_limited"]) == ("blocked", 1, 2)
    pages, details = hits(served)
    assert (len(pages), details) == (2, [])  # the answer and one retry


def test_418_ban_on_details_and_a_cloudflare_challenge_archive_nothing(mirror, folder, tmp_path):
    """The list answers, every detail is banned (418), page 2 is a Cloudflare challenge:
    no list record stands in for a detail that was refused, nothing is marked removed."""
    served, url = mirror
    challenge = (
        b"<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>"
        b'<script src="/cdn-cgi/challenge-platform/h/b/orchestrate/chl_page/v1"></script>'
        b"</body></html>"
    )
    served.prepend(
        Route("GET", LIST, query={"page": "2"}, status=403, content=challenge,
              headers={"Content-Type": "text/html; charset=UTF-8", "Server": "cloudflare"}),
        *(Route("GET", f"{LIST}/{uuid}", status=418, content=b"", headers=JSON) for uuid in listed(folder)),
    )  # fmt: skip
    db = tmp_path / "annals.db"
    result = crawl(db, url, SPIDER, "-s", "ANNALS_BLOCK_RETRIES=1")

    assert result.returncode == Exit.BLOCKED, result.stdout + result.stderr
    assert query(db, "SELECT count(*) FROM documents") == [(0,)]
    assert query(db, "SELECT count(*) FROM quarantine") == [(0,)]
    status, counters = last_run(db)
    first_page = 1 + len(load(folder, PAGES[0])["data"]["notices"])  # and the pinned one
    assert status == "blocked"
    assert counters["blocked/banned"] == 2 * first_page  # each detail and its one retry
    assert counters["blocked/forbidden"] == 2
    assert counters["blocked"] == first_page + 1
    pages, details = hits(served)
    assert [q["page"] for q in pages] == ["1", "2", "2"]
    assert len(details) == 2 * first_page


def test_error_envelope_is_quarantined_never_archived_and_the_run_is_partial(mirror, tmp_path):
    served, url = mirror
    refusal = {"error": {"name": "validation_error", "message": "per_page must be 20 or less"}}
    served.prepend(
        Route("GET", LIST, status=400, content=json.dumps(refusal).encode(), headers=JSON)
    )
    db = tmp_path / "annals.db"
    result = crawl(db, url, SPIDER)

    assert result.returncode == Exit.FAILED, result.stdout + result.stderr
    assert f"{SPIDER}: partial" in result.stdout
    assert query(db, "SELECT count(*) FROM documents") == [(0,)]
    (error,) = query(
        db, "SELECT q.error FROM quarantine q JOIN snapshots s ON s.id = q.snapshot_id"
    )
    assert "code validation_error: per_page must be 20 or less" in error[0]
    status, counters = last_run(db)
    assert (status, counters["refused"], counters["quarantined"]) == ("partial", 1, 1)
    assert len(hits(served)[0]) == 1  # that listing stops
