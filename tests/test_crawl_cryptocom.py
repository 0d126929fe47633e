"""End to end: Crypto.com Exchange's announcement list crawled from a local mirror with
`annals crawl`. One answer is the whole list; its category filters repeat its items.
What the mirror holds is read from its files here.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from archive.cli import Exit
from crawler.mirror import Mirror, MirrorServer, Route
from tests.helpers import FIXTURES, crawl
from tests.test_crawl_api import iso_ms, runs
from tests.test_crawl_gate import query

pytestmark = pytest.mark.e2e

SPIDER = "cryptocom_announcements"
PATH = "/v1/public/get-announcements"
JSON = {"Content-Type": "application/json; charset=utf-8"}
CATEGORIES = ("list", "delist", "event", "product", "system")


def items(folder: Path, name: str = "announcements_all.json") -> list[dict[str, Any]]:
    return json.loads((folder / name).read_text())["result"]["data"]


def expected(folder: Path) -> dict[str, tuple[str, str, str, str]]:
    """id -> (title, published_at, url, category) as the archive should hold them."""
    return {
        i["id"]: (
            i["title"].replace("&amp;", "&"),
            iso_ms(i["announced_at"]),
            f"https://crypto.com/exchange/announcements/{i['category']}/{i['id']}",
            i["category"],
        )
        for i in items(folder)
    }


def archived(db: Path) -> dict[str, tuple[str, str, str, str]]:
    rows = query(
        db,
        "SELECT d.external_id, v.title, d.published_at, d.url, v.category FROM documents d "
        "JOIN versions v ON v.document_id = d.id AND v.version = d.current_version "
        "WHERE d.source = 'cryptocom'",
    )
    return {row[0]: tuple(row[1:]) for row in rows}


def list_hits(mirror: Mirror) -> list[str | None]:
    return [hit.query.get("category") for hit in mirror.hits if hit.path == PATH]


def message(code: int, text: str) -> bytes:
    return json.dumps(
        {"id": 0, "method": "public/get-announcements", "code": code, "message": text}
    ).encode()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    copy = tmp_path / "mirror" / "cryptocom"
    shutil.copytree(FIXTURES / "cryptocom", copy)
    return copy


@pytest.fixture
def mirror(folder: Path) -> Iterator[tuple[Mirror, str]]:
    served = Mirror(folder)
    with MirrorServer(served) as server:
        yield served, server.url


def test_one_answer_is_the_whole_archive_and_filters_add_no_document(tmp_path, folder, mirror):
    served, url = mirror
    db = tmp_path / "annals.db"

    first = crawl(db, url, SPIDER)
    assert first.returncode == Exit.OK, first.stdout + first.stderr
    assert archived(db) == expected(folder)
    assert list_hits(served) == [None]  # the unfiltered list, once
    status, counters = runs(db)[SPIDER]
    assert status == "finished"
    assert counters["new_documents"] == counters["new_versions"] == len(items(folder))
    # Spot checks, by hand: the table body, the maintenance window and impacted services.
    ((text, markup, event),) = query(
        db,
        "SELECT v.body_text, v.body_html, v.event_type FROM versions v JOIN documents d "
        "ON d.id = v.document_id WHERE d.external_id = '6a4f49f22c6bbca1e6bf34dd'",
    )
    assert text.startswith("Crypto.com Exchange will list the 1000PEPE perpetual contract")
    assert "1000PEPEUSD-PERP | 1,000 PEPE | 50x | July 9, 2026, 10:00 AM (UTC)" in text
    assert "<td>1000PEPEUSD-PERP</td>" in markup
    assert event == "listing"
    assert query(
        db,
        "SELECT d.published_at, v.event_type, json_extract(v.extra, '$.start_time'), "
        "json_extract(v.extra, '$.end_time'), "
        "json_extract(v.extra, '$.impacted_params.margin_trading_impacted') "
        "FROM documents d JOIN versions v ON v.document_id = d.id "
        "WHERE d.external_id = '6a4b1af3275d14ee7963bf64'",
    ) == [
        ("2026-07-06T04:00:00.000Z", "maintenance", "2026-07-10T02:00:00.000Z",
         "2026-07-10T04:00:00.000Z", "PARTIAL"),
    ]  # fmt: skip
    assert query(db, "SELECT count(*) FROM versions WHERE body_text = ''") == [(0,)]

    # Every category filter, unchanged: one request per listing, the same documents.
    served.hits.clear()
    every = crawl(db, url, SPIDER, "-a", f"categories={','.join(CATEGORIES)}")
    assert every.returncode == Exit.OK, every.stdout + every.stderr
    assert "0 new documents, 0 new versions" in every.stdout
    assert sorted(list_hits(served)) == sorted(CATEGORIES)
    assert archived(db) == expected(folder)

    # An edited title and an edited body: one version each; a change of the impacted
    # services alone (kept in extra) makes none.
    answer = json.loads((folder / "announcements_all.json").read_text())
    retitled, rebodied, reimpacted = answer["result"]["data"][1:4]
    assert reimpacted["impacted_params"] is not None
    retitled["title"] += " (Updated)"
    rebodied["content"] = rebodied["content"].replace("July", "August", 1)
    reimpacted["impacted_params"]["otc_trading_impacted"] = "PARTIAL"
    (folder / "announcements_all.json").write_text(json.dumps(answer))
    served.hits.clear()
    edited = crawl(db, url, SPIDER)
    assert edited.returncode == Exit.OK, edited.stdout + edited.stderr
    assert "0 new documents, 2 new versions" in edited.stdout
    assert list_hits(served) == [None]
    versions = dict(
        query(
            db,
            "SELECT d.external_id, count(*) FROM versions v JOIN documents d "
            "ON d.id = v.document_id GROUP BY d.external_id",
        )
    )
    assert (versions[retitled["id"]], versions[rebodied["id"]], versions[reimpacted["id"]]) == (
        2,
        2,
        1,
    )
    assert sum(versions.values()) == len(items(folder)) + 2
    assert archived(db)[retitled["id"]][0] == retitled["title"]


def test_rate_limits_errors_and_empty_answers_archive_nothing_and_remove_nothing(tmp_path, mirror):
    served, url = mirror
    db = tmp_path / "annals.db"
    assert crawl(db, url, SPIDER).returncode == Exit.OK
    versions = query(db, "SELECT count(*) FROM versions")

    # 42901 with its documented HTTP 429 (a block to BlockMiddleware), and with HTTP 200
    # (the envelope's rate-limit code): both retried after the backoff, then "blocked".
    served.hits.clear()
    limited = message(42901, "TOO_MANY_REQUESTS")
    served.prepend(
        Route("GET", PATH, query={"category": "list"}, status=429, headers=JSON, content=limited),
        Route("GET", PATH, query={"category": "delist"}, headers=JSON, content=limited),
    )
    blocked = crawl(db, url, SPIDER, "-a", "categories=list,delist", "-s", "ANNALS_BLOCK_RETRIES=1")
    assert blocked.returncode == Exit.BLOCKED, blocked.stdout + blocked.stderr
    status, counters = runs(db)[SPIDER]
    assert status == "blocked"
    assert (counters["blocked"], counters["blocked/rate_limited"]) == (2, 2)
    assert counters["blocked/rate_limit_code"] == 2
    assert sorted(list_hits(served)) == ["delist", "delist", "list", "list"]

    # Refusals (40001 with HTTP 400, 50001) and an answer with no items: quarantined, the
    # run "partial"; an empty list is no end of anything.
    served.prepend(
        Route("GET", PATH, query={"category": "event"}, status=400, headers=JSON,
              content=message(40001, "BAD_REQUEST")),
        Route("GET", PATH, query={"category": "product"}, headers=JSON,
              content=message(50001, "ERR_INTERNAL")),
        Route("GET", PATH, query={"category": "system"}, headers=JSON,
              content=b'{"id":0,"method":"public/get-announcements","code":0,"result":{"data":[]}}'),
    )  # fmt: skip
    refused = crawl(db, url, SPIDER, "-a", "categories=event,product,system")
    assert refused.returncode == Exit.FAILED, refused.stdout + refused.stderr
    status, counters = runs(db)[SPIDER]
    assert (status, counters["refused"], counters["quarantined"]) == ("partial", 2, 3)
    errors = dict(
        query(
            db, "SELECT q.url, q.error FROM quarantine q JOIN snapshots s ON s.id = q.snapshot_id"
        )
    )
    assert "code 40001: BAD_REQUEST" in errors[f"https://api.crypto.com{PATH}?category=event"]
    assert "code 50001: ERR_INTERNAL" in errors[f"https://api.crypto.com{PATH}?category=product"]
    assert "no items on its first page" in errors[f"https://api.crypto.com{PATH}?category=system"]

    assert query(db, "SELECT count(*) FROM versions") == versions
    assert query(db, "SELECT count(*) FROM documents WHERE removed_at IS NOT NULL") == [(0,)]
