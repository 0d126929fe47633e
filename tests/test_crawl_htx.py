"""End to end: HTX's five lists crawled from a local mirror by `annals crawl`.

What the mirror holds is read from its JSON files here, not from the parser.
"""

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
from crawler.cli import DEMO_SPIDERS, MIRRORS
from crawler.mirror import Mirror, MirrorServer, Route
from tests.helpers import FIXTURES, crawl
from tests.test_crawl_gate import query

pytestmark = pytest.mark.e2e

SPIDER = "htx_announcements"
LIST_PATH = "/-/x/support/public/getList/v2"
JSON = {"Content-Type": "application/json"}
LISTS = {  # twoLevelId -> the mirror's file prefix
    "360000039942": "new_listings",
    "360000039481": "latest_news",
    "64971881385864": "delistings",
    "360000039982": "deposit_withdrawal",
    "360000070201": "api",
}
QUILLON = "54870022004874"  # listed in New Listings and in Latest News


def iso_ms(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{millis:03d}Z"


def mirror_items(folder: Path) -> dict[str, tuple[str, str, str]]:
    """external id -> (title as a reader sees it, UTC ms time, article URL), every list."""
    items = {}
    for path in sorted(folder.glob("*_p*.json")):
        for i in json.loads(path.read_text())["data"]["list"]:
            title = " ".join(html.unescape(i["title"]).split())
            items[str(i["id"])] = (
                title,
                iso_ms(i["showTime"]),
                f"https://www.htx.com/support/{i['id']}",
            )
    return items


def archived(db: Path) -> dict[str, tuple[str, str, str]]:
    rows = query(
        db,
        "SELECT d.external_id, v.title, d.published_at, d.url FROM documents d "
        "JOIN versions v ON v.document_id = d.id AND v.version = d.current_version "
        "WHERE d.source = 'htx'",
    )
    return {row[0]: row[1:] for row in rows}


def category_of(db: Path, external_id: str) -> list[tuple[int, str]]:
    return query(
        db,
        "SELECT v.version, v.category FROM versions v JOIN documents d ON d.id = v.document_id "
        f"WHERE d.external_id = '{external_id}' ORDER BY v.version",
    )


def last_run(db: Path) -> tuple[str, dict[str, Any]]:
    status, counters = query(db, "SELECT status, counters FROM crawl_runs ORDER BY id DESC")[0]
    return status, json.loads(counters)


def list_hits(mirror: Mirror) -> list[tuple[str, str]]:
    return [(h.query["twoLevelId"], h.query["page"]) for h in mirror.hits if h.path == LIST_PATH]


def edit(path: Path, change: Any) -> None:
    answer = json.loads(path.read_text())
    change(answer["data"]["list"])
    path.write_text(json.dumps(answer))


@pytest.fixture
def htx_dir(tmp_path: Path) -> Path:
    target = tmp_path / "mirror" / "htx"
    shutil.copytree(FIXTURES / "htx", target)
    return target


@pytest.fixture
def htx_mirror(htx_dir: Path) -> Iterator[tuple[Mirror, str]]:
    mirror = Mirror(htx_dir)
    with MirrorServer(mirror) as server:
        yield mirror, server.url


def test_every_list_is_archived_whole_once_and_a_second_crawl_reads_one_page_each(
    tmp_path, htx_dir, htx_mirror
):
    mirror, url = htx_mirror
    # The list moved by one between two requests: page 2 starts with page 1's last item.
    page_1 = json.loads((htx_dir / "new_listings_p1.json").read_text())["data"]["list"]
    edit(htx_dir / "new_listings_p2.json", lambda items: items.insert(0, page_1[-1]))
    db = tmp_path / "annals.db"

    first = crawl(db, url, SPIDER)
    assert first.returncode == Exit.OK, first.stdout + first.stderr
    expected = mirror_items(htx_dir)
    assert len(expected) == 31
    assert archived(db) == expected
    status, counters = last_run(db)
    assert status == "finished"
    assert counters["new_documents"] == counters["new_versions"] == 31
    assert query(db, "SELECT count(*) FROM versions") == [(31,)]
    # Every list, at the largest limit; New Listings has two pages (totalPage 2), so its
    # third (empty) page is never asked.
    assert sorted(list_hits(mirror)) == sorted(
        [(level, "1") for level in LISTS] + [("360000039942", "2")]
    )
    assert {h.query["limit"] for h in mirror.hits if h.path == LIST_PATH} == {"50"}
    assert {h.query["language"] for h in mirror.hits if h.path == LIST_PATH} == {"en-us"}

    # Spot checks, written out by hand.
    spot = query(
        db,
        "SELECT d.external_id, d.published_at, v.title, v.category, v.event_type, v.body_text, "
        "json_extract(v.extra, '$.deal_pair') FROM documents d JOIN versions v "
        "ON v.document_id = d.id WHERE d.external_id IN "
        "('54870011193038', '54870019706459', '54870018925287') ORDER BY d.external_id",
    )
    assert spot == [
        ("54870011193038", "2026-06-19T12:10:05.902Z",
         "HTX to Open Trading for Caldera (CLDR) at 14:00 (UTC) on June 20, 2026",
         "New Listings", "listing", "", "spot_CLDR/USDT"),
        ("54870018925287", "2026-07-02T07:00:12.508Z",
         "HTX Will Delist ORVO, PLSM and WYRD on July 10, 2026", "Delistings", "delisting", "",
         None),
        ("54870019706459", "2026-07-03T14:00:08.233Z",
         "HTX Launches Zero-Fee Trading Week for QLLN/USDT & TSRA/USDT", "Latest News",
         "promotion", "", None),
    ]  # fmt: skip
    # Quillon, in two lists: one document, one version, in one of the two.
    assert query(db, f"SELECT count(*) FROM documents WHERE external_id = '{QUILLON}'") == [(1,)]
    [(_, category)] = category_of(db, QUILLON)
    assert category in ("New Listings", "Latest News")

    mirror.hits.clear()
    second = crawl(db, url, SPIDER)
    assert second.returncode == Exit.OK, second.stdout + second.stderr
    assert "0 new documents, 0 new versions" in second.stdout
    assert query(db, "SELECT count(*) FROM versions") == [(31,)]
    assert sorted(list_hits(mirror)) == sorted((level, "1") for level in LISTS)


def test_an_item_met_first_in_its_other_list_keeps_its_category_and_edits_make_one_version(
    tmp_path, htx_dir, htx_mirror
):
    _, url = htx_mirror
    db = tmp_path / "annals.db"
    assert crawl(db, url, SPIDER).returncode == Exit.OK
    [(_, kept)] = category_of(db, QUILLON)
    prefix = {"New Listings": "new_listings", "Latest News": "latest_news"}
    first_list, other_list = (
        htx_dir / f"{prefix[kept]}_p1.json",
        htx_dir / f"{prefix[({*prefix} - {kept}).pop()]}_p1.json",
    )
    saved = first_list.read_text()
    retitled = "54870014074483"  # a delisting, on the first page of its list

    # Quillon now only in its other list; one title edited; order numbers all changed.
    edit(first_list, lambda items: items.remove(next(i for i in items if str(i["id"]) == QUILLON)))

    def retitle(items: list[dict]) -> None:
        for item in items:
            if str(item["id"]) == retitled:
                item["title"] += " (Updated)"

    edit(htx_dir / "delistings_p1.json", retitle)
    for path in htx_dir.glob("*_p1.json"):
        edit(path, lambda items: [item.update(orderNo=item["orderNo"] + 7) for item in items])
    second = crawl(db, url, SPIDER)
    assert second.returncode == Exit.OK, second.stdout + second.stderr
    assert "0 new documents, 1 new versions" in second.stdout
    assert category_of(db, QUILLON) == [(1, kept)]
    titles = query(
        db,
        "SELECT v.version, v.title FROM versions v JOIN documents d ON d.id = v.document_id "
        f"WHERE d.external_id = '{retitled}' ORDER BY v.version",
    )
    assert titles == [
        (1, "HTX Will Delist the KRBL/USDT Trading Pair"),
        (2, "HTX Will Delist the KRBL/USDT Trading Pair (Updated)"),
    ]

    # And back: in its first list again, gone from the other. Still the one version.
    first_list.write_text(saved)
    edit(other_list, lambda items: items.remove(next(i for i in items if str(i["id"]) == QUILLON)))
    third = crawl(db, url, SPIDER, "--full")
    assert third.returncode == Exit.OK, third.stdout + third.stderr
    assert "0 new documents, 0 new versions" in third.stdout
    assert category_of(db, QUILLON) == [(1, kept)]
    assert query(db, "SELECT count(*) FROM versions") == [(32,)]
    assert query(db, "SELECT count(*) FROM documents WHERE removed_at IS NOT NULL") == [(0,)]


def test_rate_limit_and_error_envelopes_archive_nothing_and_fail_the_run(tmp_path, htx_mirror):
    mirror, url = htx_mirror
    limit = {"code": 429, "msg": "Too many requests", "msgId": None, "data": None}
    refusal = {"code": 500, "msg": "system error", "msgId": None, "data": None}
    mirror.prepend(
        Route("GET", LIST_PATH, query={"twoLevelId": "360000070201"},
              content=json.dumps(refusal).encode(), headers=JSON),
        Route("GET", LIST_PATH, content=json.dumps(limit).encode(), headers=JSON),
    )  # fmt: skip
    db = tmp_path / "annals.db"
    result = crawl(db, url, SPIDER, "-s", "ANNALS_BLOCK_RETRIES=1")

    assert result.returncode == Exit.BLOCKED, result.stdout + result.stderr
    assert f"{SPIDER}: blocked" in result.stdout
    assert query(db, "SELECT count(*) FROM documents") == [(0,)]
    assert query(db, "SELECT count(*) FROM versions") == [(0,)]
    # The refusal is quarantined (its bytes kept); the rate limits are not answers to keep.
    [(error,)] = query(
        db, "SELECT error FROM quarantine q JOIN snapshots s ON s.id = q.snapshot_id"
    )
    assert "code 500: system error" in error
    status, counters = last_run(db)
    assert (status, counters["refused"], counters["blocked"]) == ("blocked", 1, 4)
    assert counters["blocked/rate_limit_code"] == 8  # four lists: the answer and one retry
    hits = list_hits(mirror)
    assert len(hits) == 9
    assert {page for _, page in hits} == {"1"}


def test_demo_serves_the_tested_mirror():
    assert DEMO_SPIDERS["htx"] == (SPIDER,)
    assert (FIXTURES / "htx").resolve() == (MIRRORS / "htx").resolve()
