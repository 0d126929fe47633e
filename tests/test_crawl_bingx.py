"""End to end: BingX's eleven modules crawled from a local mirror by `annals crawl`.

What the mirror holds is read from its JSON files here, not from the parser.
"""

from __future__ import annotations

import html
import json
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from archive.cli import Exit
from crawler.cli import DEMO_SPIDERS, MIRRORS
from crawler.mirror import Mirror, MirrorServer, Route
from crawler.sources import bingx
from tests.helpers import FIXTURES, crawl
from tests.test_crawl_gate import query

pytestmark = pytest.mark.e2e

SPIDER = "bingx_announcements"
LIST_PATH = "/openApi/content/v1/announcement"
JSON = {"Content-Type": "application/json"}
UTC8 = timezone(timedelta(hours=8))
MODULES = tuple(bingx.SOURCE.categories)
KESTREL = "34576466370381"  # a spot listing, copied into FuturesListing by a test


def iso_ms(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def mirror_items(folder: Path) -> dict[str, tuple[str, str, str, str]]:
    """external id -> (title, UTC ms time, absolute URL, body text), every module."""
    items = {}
    for path in sorted(folder.glob("announcement_*_p*.json")):
        for i in json.loads(path.read_text())["data"]["list"]:
            url = i.get("url") or i["link"]
            url = url if url.startswith("https://") else f"https://bingx.com{url}"
            if "releaseTime" in i:
                published = datetime.fromisoformat(i["releaseTime"])
            else:
                published = datetime.fromisoformat(i["time"]).replace(tzinfo=UTC8)
            article = re.search(r"(\d+)$", url)
            assert article is not None
            items[article.group(1)] = (
                i["title"],
                iso_ms(published),
                url,
                html.unescape(i["content"]),
            )
    return items


def archived(db: Path) -> dict[str, tuple[str, str, str, str]]:
    rows = query(
        db,
        "SELECT d.external_id, v.title, d.published_at, d.url, v.body_text FROM documents d "
        "JOIN versions v ON v.document_id = d.id AND v.version = d.current_version "
        "WHERE d.source = 'bingx'",
    )
    return {row[0]: row[1:] for row in rows}


def versions_of(db: Path, external_id: str) -> list[tuple[int, str, str]]:
    return query(
        db,
        "SELECT v.version, v.category, v.body_text FROM versions v "
        f"JOIN documents d ON d.id = v.document_id WHERE d.external_id = '{external_id}' "
        "ORDER BY v.version",
    )


def last_run(db: Path) -> tuple[str, dict[str, Any]]:
    status, counters = query(db, "SELECT status, counters FROM crawl_runs ORDER BY id DESC")[0]
    return status, json.loads(counters)


def list_hits(mirror: Mirror) -> list[tuple[str, str]]:
    return [(h.query["contentType"], h.query["page"]) for h in mirror.hits if h.path == LIST_PATH]


def edit(path: Path, change: Any) -> None:
    answer = json.loads(path.read_text())
    change(answer["data"])
    path.write_text(json.dumps(answer, ensure_ascii=False))


def page_file(folder: Path, module: str, page: int = 1) -> Path:
    return folder / f"announcement_{module}_p{page}.json"


@pytest.fixture
def bingx_dir(tmp_path: Path) -> Path:
    target = tmp_path / "mirror" / "bingx"
    shutil.copytree(FIXTURES / "bingx", target)
    return target


@pytest.fixture
def bingx_mirror(bingx_dir: Path) -> Iterator[tuple[Mirror, str]]:
    mirror = Mirror(bingx_dir)
    with MirrorServer(mirror) as server:
        yield mirror, server.url


def test_every_module_is_archived_whole_and_a_second_crawl_reads_one_page_each(
    tmp_path, bingx_dir, bingx_mirror
):
    mirror, url = bingx_mirror

    def documented_form(data: dict) -> None:  # the doc's field names: link, a zone-less time
        [item] = data["list"]
        item["link"] = item.pop("url").removeprefix("https://bingx.com")
        item["time"] = datetime.fromisoformat(item.pop("releaseTime")).strftime("%Y-%m-%d %H:%M:%S")

    edit(page_file(bingx_dir, "SystemMaintenance"), documented_form)
    db = tmp_path / "annals.db"

    first = crawl(db, url, SPIDER)
    assert first.returncode == Exit.OK, first.stdout + first.stderr
    expected = mirror_items(bingx_dir)
    assert len(expected) == 31
    assert archived(db) == expected
    status, counters = last_run(db)
    # Two modules list nothing yet: no broken answer, the run is complete.
    assert (status, counters["quarantined"]) == ("finished", 0)
    assert counters["new_documents"] == counters["new_versions"] == 31
    # Every module once, and LatestAnnouncements' second page: 10 + 2 of a total of 12
    # (the empty third page is never asked); no page size is sent.
    assert sorted(list_hits(mirror)) == sorted(
        [(module, "1") for module in MODULES] + [("LatestAnnouncements", "2")]
    )
    assert all("pageSize" not in h.query for h in mirror.hits)
    assert {h.query["language"] for h in mirror.hits if h.path == LIST_PATH} == {"en-us"}

    # Spot checks, written out by hand.
    spot = query(
        db,
        "SELECT d.external_id, d.published_at, d.url, v.category, v.event_type, "
        "json_extract(v.extra, '$.time_source') FROM documents d JOIN versions v "
        "ON v.document_id = d.id WHERE d.external_id IN "
        "('34575103308002', '34571522855155', '34565678422611') ORDER BY d.external_id",
    )
    assert spot == [
        ("34565678422611", "2026-06-01T04:00:33.000Z",
         "https://bingx.com/en/support/articles/34565678422611", "Delisting", "delisting", None),
        ("34571522855155", "2026-06-11T01:15:36.000Z",
         "https://bingx.com/en/support/articles/34571522855155", "SystemMaintenance",
         "maintenance", "time"),
        # 07:30 in UTC+8 is the day before in UTC.
        ("34575103308002", "2026-06-19T23:30:18.000Z",
         "https://bingx.com/en/support/articles/34575103308002", "AssetMaintenance",
         "maintenance", None),
    ]  # fmt: skip
    assert archived(db)["34563882099104"][3].endswith("2026 & resume once the network is stable.")

    mirror.hits.clear()
    second = crawl(db, url, SPIDER)
    assert second.returncode == Exit.OK, second.stdout + second.stderr
    assert "0 new documents, 0 new versions" in second.stdout
    assert query(db, "SELECT count(*) FROM versions") == [(31,)]
    assert sorted(list_hits(mirror)) == sorted((module, "1") for module in MODULES)


def test_an_item_in_two_modules_is_one_document_that_keeps_its_first_category(
    tmp_path, bingx_dir, bingx_mirror
):
    _, url = bingx_mirror
    spot, futures = page_file(bingx_dir, "SpotListing"), page_file(bingx_dir, "FuturesListing")
    kestrel = json.loads(spot.read_text())["data"]["list"][0]
    assert kestrel["url"].endswith(KESTREL)

    def add_kestrel(data: dict) -> None:  # as that module would list it
        data["list"].insert(0, kestrel | {"type": "FuturesListing"})
        data["total"] += 1

    def drop_kestrel(data: dict) -> None:
        data["list"] = [i for i in data["list"] if not i["url"].endswith(KESTREL)]
        data["total"] -= 1

    listed, unlisted = {}, {}  # module -> its first page with Kestrel, without it
    for module, path, change in (
        ("SpotListing", spot, drop_kestrel),
        ("FuturesListing", futures, add_kestrel),
    ):
        before = path.read_text()
        edit(path, change)
        listed[module], unlisted[module] = (
            (before, path.read_text()) if module == "SpotListing" else (path.read_text(), before)
        )
        path.write_text(listed[module])
    db = tmp_path / "annals.db"
    first = crawl(db, url, SPIDER)
    assert first.returncode == Exit.OK, first.stdout + first.stderr
    assert "31 new documents, 31 new versions" in first.stdout
    [(_, kept, _)] = versions_of(db, KESTREL)
    assert kept in listed
    other = ({*listed} - {kept}).pop()

    # Kestrel now only in its other module; a content edited; nothing else changed.
    page_file(bingx_dir, kept).write_text(unlisted[kept])

    def reword(data: dict) -> None:
        data["list"][0]["content"] += " Please cancel your orders in time."

    edit(page_file(bingx_dir, "Delisting"), reword)
    second = crawl(db, url, SPIDER)
    assert second.returncode == Exit.OK, second.stdout + second.stderr
    assert "0 new documents, 1 new versions" in second.stdout
    assert [v[:2] for v in versions_of(db, KESTREL)] == [(1, kept)]
    bodies = [body for _, _, body in versions_of(db, "34572707776711")]
    assert len(bodies) == 2
    assert bodies[1] == f"{bodies[0]} Please cancel your orders in time."

    # And back again: the item in its first module, gone from the other.
    page_file(bingx_dir, kept).write_text(listed[kept])
    page_file(bingx_dir, other).write_text(unlisted[other])
    third = crawl(db, url, SPIDER, "--full")
    assert third.returncode == Exit.OK, third.stdout + third.stderr
    assert "0 new documents, 0 new versions" in third.stdout
    assert [v[:2] for v in versions_of(db, KESTREL)] == [(1, kept)]
    assert query(db, "SELECT count(*) FROM versions") == [(32,)]


def test_rate_limit_and_error_envelopes_archive_nothing_and_fail_the_run(tmp_path, bingx_mirror):
    mirror, url = bingx_mirror
    limit = {"code": 100410, "msg": "Request rate limit exceeded, please retry later", "data": None}
    refusal = {"code": 100400, "msg": "Invalid parameter language", "data": None}
    mirror.prepend(
        Route("GET", LIST_PATH, query={"contentType": "Delisting"},
              content=json.dumps(refusal).encode(), headers=JSON),
        Route("GET", LIST_PATH, content=json.dumps(limit).encode(), headers=JSON),
    )  # fmt: skip
    db = tmp_path / "annals.db"
    result = crawl(db, url, SPIDER, "-s", "ANNALS_BLOCK_RETRIES=1")

    assert result.returncode == Exit.BLOCKED, result.stdout + result.stderr
    assert f"{SPIDER}: blocked" in result.stdout
    assert query(db, "SELECT count(*) FROM documents") == [(0,)]
    [(error,)] = query(
        db, "SELECT error FROM quarantine q JOIN snapshots s ON s.id = q.snapshot_id"
    )
    assert "code 100400: Invalid parameter language" in error
    status, counters = last_run(db)
    assert (status, counters["refused"], counters["blocked"]) == ("blocked", 1, 10)
    assert counters["blocked/rate_limit_code"] == 20  # ten modules: the answer and one retry
    hits = list_hits(mirror)
    assert len(hits) == 21
    assert {page for _, page in hits} == {"1"}


def test_demo_serves_the_tested_mirror():
    assert DEMO_SPIDERS["bingx"] == (SPIDER,)
    assert (FIXTURES / "bingx").resolve() == (MIRRORS / "bingx").resolve()
