"""End to end: XT and Deepcoin, the two Zendesk help centers, crawled from a local mirror.

One server on 127.0.0.1 serves private copies of both recorded mirrors; every `annals
crawl` runs both spiders in one process (CI time). What a mirror holds is read from its
JSON files here, not from the parser.
"""

from __future__ import annotations

import html
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from archive.cli import Exit
from crawler.cli import DEMO_SPIDERS, project_settings, project_spiders
from crawler.mirror import Mirror, MirrorServer, Route
from tests.helpers import FIXTURES, crawl
from tests.test_crawl_api import runs
from tests.test_crawl_gate import query

pytestmark = pytest.mark.e2e

SOURCES = ("xt", "deepcoin")
SPIDERS = tuple(f"{source}_announcements" for source in SOURCES)
LIST_PATHS = {
    "xt": "/api/v2/help_center/en-us/categories/10304894611993/articles.json",
    "deepcoin": "/api/v2/help_center/en-001/categories/360003875752/articles.json",
}
JSON = {"Content-Type": "application/json; charset=utf-8"}
# Zendesk's rate-limit answer, as captured (Content-Length 50).
LIMITED = b"Number of allowed API requests per minute exceeded"


def hits(mirror: Mirror, source: str) -> int:
    return sum(hit.path == LIST_PATHS[source] for hit in mirror.hits)


# --- what the mirrors hold, from their files ------------------------------------------------


def list_files(folder: Path) -> list[Path]:
    return [folder / f"articles_p{n}.json" for n in (1, 2)]


def recorded(source: str) -> dict[str, dict[str, Any]]:
    """Every article of a mirror's list files, by id."""
    return {
        str(article["id"]): article
        for path in list_files(FIXTURES / source)
        for article in json.loads(path.read_text())["articles"]
    }


def archived(db: Path, source: str) -> dict[str, tuple[Any, ...]]:
    """external id -> (title, published_at, url, updated_at, tags) of current versions."""
    rows = query(
        db,
        "SELECT d.external_id, v.title, d.published_at, d.url, v.updated_at, v.tags "
        "FROM documents d JOIN versions v ON v.document_id = d.id "
        f"AND v.version = d.current_version WHERE d.source = '{source}'",
    )
    return {row[0]: row[1:] for row in rows}


def expected(source: str) -> dict[str, tuple[Any, ...]]:
    return {
        key: (
            html.unescape(a["title"]),
            a["created_at"].replace("Z", ".000Z"),
            a["html_url"],
            a["edited_at"].replace("Z", ".000Z"),
            json.dumps(a["label_names"], separators=(",", ":")),
        )
        for key, a in recorded(source).items()
    }


def edit(path: Path, change: Any) -> None:
    """Rewrite one mirror file: `change(data)` edits the parsed answer in place."""
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


# --- the mirror -----------------------------------------------------------------------------


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, Path]:
    """Private copies of both mirrors, free to edit between crawls."""
    copies = {source: tmp_path / "mirror" / source for source in SOURCES}
    for source, target in copies.items():
        shutil.copytree(FIXTURES / source, target)
    return copies


@pytest.fixture
def served(dirs: dict[str, Path]) -> Iterator[tuple[Mirror, str]]:
    mirror = Mirror(*dirs.values())
    with MirrorServer(mirror) as server:
        yield mirror, server.url


# --- the tests ------------------------------------------------------------------------------


def test_crawls_archive_every_article_once_then_only_edits(tmp_path, served, dirs):
    mirror, url = served
    db = tmp_path / "annals.db"
    # XT's page 2 starts with page 1's last article, as when one is published between the
    # two requests: it is still one document.
    page1, page2 = list_files(dirs["xt"])
    shifted = json.loads(page2.read_text())
    shifted["articles"].insert(0, json.loads(page1.read_text())["articles"][-1])
    mirror.prepend(
        Route("GET", LIST_PATHS["xt"], query={"page": "2"}, headers=JSON,
              content=json.dumps(shifted).encode()),
    )  # fmt: skip

    first = crawl(db, url, *SPIDERS)
    assert first.returncode == Exit.OK, first.stdout + first.stderr
    for source in SOURCES:
        assert archived(db, source) == expected(source), source
        status, counters = runs(db)[f"{source}_announcements"]
        assert status == "finished"
        assert counters["new_documents"] == counters["new_versions"] == len(recorded(source))
        asked = [h.query for h in mirror.hits if h.path == LIST_PATHS[source]]
        # Publication order, the largest page Zendesk documents, and no page after the
        # one whose next_page is null.
        assert asked == [
            {
                "sort_by": "created_at",
                "sort_order": "desc",
                "include": "sections",
                "page": str(n),
                "per_page": "100",
            }
            for n in (1, 2)
        ], source
    assert query(db, "SELECT count(*) FROM documents") == query(db, "SELECT count(*) FROM versions")
    assert query(db, "SELECT count(*) FROM quarantine") == [(0,)]

    # Spot checks, written out by hand.
    spot = query(
        db,
        "SELECT d.source, d.external_id, d.language, d.published_at, v.title, "
        "json_extract(v.extra, '$.section_id') FROM documents d JOIN versions v "
        "ON v.document_id = d.id WHERE d.external_id IN "
        "('59512488344960', '58887890803603', '59511051605370') ORDER BY d.external_id",
    )
    assert spot == [
        ("xt", "58887890803603", "en", "2026-06-05T16:16:40.000Z",
         "XT.COM Copy Trading Week: Follow Top Traders & Win Up to 5,000 USDT", "900000040263"),
        ("deepcoin", "59511051605370", "en", "2026-06-24T09:00:27.000Z",
         "Deepcoin Will List KSTRUSDT Perpetual Contract", "360008197332"),
        ("xt", "59512488344960", "en", "2026-06-24T10:02:11.000Z",
         "XT Announcement on Launching KSTR (Kestrel AI)", "900000043823"),
    ]  # fmt: skip
    bodies = dict(
        query(
            db,
            "SELECT d.external_id, v.body_text FROM documents d JOIN versions v "
            "ON v.document_id = d.id WHERE d.external_id IN ('58778788677389', '59511051605370')",
        )
    )
    assert "Coin | New fee\nDOGE | 4\nLTC | 0.001\nXRP | 0.2" in bodies["58778788677389"]
    assert "at 18:00 (UTC+8) on June 24, 2026" in bodies["59511051605370"]
    assert (
        "Risk warning: trading perpetual contracts involves high risk" in (bodies["59511051605370"])
    )

    # Unchanged: no version, one list request each.
    versions = query(db, "SELECT count(*) FROM versions")
    mirror.hits.clear()
    second = crawl(db, url, *SPIDERS)
    assert second.returncode == Exit.OK, second.stdout + second.stderr
    assert second.stdout.count("0 new documents, 0 new versions") == len(SPIDERS)
    assert query(db, "SELECT count(*) FROM versions") == versions
    assert [hits(mirror, source) for source in SOURCES] == [1, 1]

    # A title edit and a body edit are one version each; votes, position, pinning and
    # updated_at alone are none.
    xt_title, xt_votes = "59485396025346", "59444767162980"
    dc_body, dc_votes = "59511051605370", "59482584717385"

    def xt_change(data: dict[str, Any]) -> None:
        for article in data["articles"]:
            if str(article["id"]) == xt_title:
                article["title"] = article["name"] = article["title"] + " (Updated)"
                article["edited_at"] = article["updated_at"] = "2026-06-25T01:00:00Z"
            if str(article["id"]) == xt_votes:
                article |= {"vote_sum": 4, "vote_count": 6, "position": 2, "promoted": True,
                            "updated_at": "2026-06-25T02:00:00Z"}  # fmt: skip

    def dc_change(data: dict[str, Any]) -> None:
        for article in data["articles"]:
            if str(article["id"]) == dc_body:
                article["body"] = article["body"].replace("up to 50x", "up to 75x")
                article["edited_at"] = "2026-06-25T03:00:00Z"
                article["vote_sum"] = 9
            if str(article["id"]) == dc_votes:
                article |= {"vote_sum": -2, "vote_count": 2, "updated_at": "2026-06-25T04:00:00Z"}

    edit(list_files(dirs["xt"])[0], xt_change)
    edit(list_files(dirs["deepcoin"])[0], dc_change)
    third = crawl(db, url, *SPIDERS)
    assert third.returncode == Exit.OK, third.stdout + third.stderr
    assert third.stdout.count("0 new documents, 1 new versions") == len(SPIDERS)
    history = query(
        db,
        "SELECT d.external_id, v.version, v.title, v.updated_at, v.body_text FROM documents d "
        "JOIN versions v ON v.document_id = d.id WHERE d.external_id IN "
        f"('{xt_title}', '{xt_votes}', '{dc_body}', '{dc_votes}') ORDER BY d.external_id, v.version",
    )
    changed = {(row[0], row[1]): row[2:] for row in history}
    assert set(changed) == {
        (xt_title, 1), (xt_title, 2), (xt_votes, 1), (dc_body, 1), (dc_body, 2), (dc_votes, 1)
    }  # fmt: skip
    assert changed[(xt_title, 2)][:2] == (
        "XT Futures Will Launch KSTR USDT-M Perpetual Futures (Updated)",
        "2026-06-25T01:00:00.000Z",
    )
    assert "Leverage: up to 75x" in changed[(dc_body, 2)][2]
    assert changed[(dc_body, 2)][1] == "2026-06-25T03:00:00.000Z"


def test_rate_limits_and_errors_archive_nothing_and_fail_the_run(tmp_path, served):
    mirror, url = served
    db = tmp_path / "annals.db"
    assert crawl(db, url, *SPIDERS).returncode == Exit.OK
    versions = query(db, "SELECT count(*) FROM versions")

    # Every list request answers Zendesk's 429 with Retry-After 30 s, capped here at 0.5 s:
    # more than the test backoff (0.05 s), so the pause shows Retry-After was read.
    limited = [
        Route("GET", LIST_PATHS[source], status=429, content=LIMITED,
              headers={"Content-Type": "text/plain", "Retry-After": "30"})
        for source in SOURCES
    ]  # fmt: skip
    mirror.prepend(*limited)
    mirror.hits.clear()
    result = crawl(db, url, *SPIDERS, "-s", "ANNALS_BLOCK_RETRIES=1",
                   "-s", "ANNALS_MAX_RETRY_AFTER=0.5")  # fmt: skip
    assert result.returncode == Exit.BLOCKED, result.stdout + result.stderr
    assert result.stderr.count("Retry-After asks for 30s; waiting ANNALS_MAX_RETRY_AFTER") == 4
    for source in SOURCES:
        status, counters = runs(db)[f"{source}_announcements"]
        assert (status, counters["blocked"], counters["blocked/rate_limited"]) == ("blocked", 1, 2)
        tries = [h.at for h in mirror.hits if h.path == LIST_PATHS[source]]
        assert len(tries) == 2  # the answer and one retry
        assert tries[1] - tries[0] >= 0.5  # Retry-After, capped; not the test backoff

    # The category answers Zendesk's 404 (a category removed or made private).
    for route in limited:
        mirror.routes.remove(route)
    mirror.prepend(
        *(
            Route("GET", LIST_PATHS[source], status=404, headers=JSON,
                  content=b'{"error":"RecordNotFound","description":"Not found"}')
            for source in SOURCES
        )
    )  # fmt: skip
    mirror.hits.clear()
    result = crawl(db, url, *SPIDERS)
    assert result.returncode == Exit.FAILED, result.stdout + result.stderr
    for source in SOURCES:
        status, counters = runs(db)[f"{source}_announcements"]
        assert (status, counters["fetch_errors"]) == ("failed", 1)
        assert hits(mirror, source) == 1

    # Neither archived anything, quarantined anything or marked anything removed.
    assert query(db, "SELECT count(*) FROM versions") == versions
    assert query(db, "SELECT count(*) FROM documents WHERE removed_at IS NOT NULL") == [(0,)]
    assert query(db, "SELECT count(*) FROM quarantine") == [(0,)]


def test_both_help_centers_are_in_the_demo_and_in_crawl_all():
    assert DEMO_SPIDERS["xt"] == ("xt_announcements",)
    assert DEMO_SPIDERS["deepcoin"] == ("deepcoin_announcements",)
    assert set(SPIDERS) <= set(project_spiders(project_settings()))  # what --all runs
