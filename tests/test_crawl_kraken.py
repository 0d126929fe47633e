"""End to end: Kraken's blog (WordPress REST posts) crawled from a local mirror.

`annals crawl kraken_announcements` runs in a subprocess against a private copy of the
recorded mirror on 127.0.0.1, into a real SQLite file. What the mirror holds is read from
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
from crawler.mirror import Mirror, MirrorServer, Route
from tests.helpers import FIXTURES, crawl
from tests.test_crawl_gate import query

pytestmark = pytest.mark.e2e

SPIDER = "kraken_announcements"
POSTS = "/wp-json/wp/v2/posts"
PAGES = ("posts_p1.json", "posts_p2.json", "posts_p3.json")
JSON = {"Content-Type": "application/json; charset=UTF-8"}


@dataclass
class Times(Route):
    """A route that answers only its first `times` matching requests."""

    times: int = 1

    def matches(self, method: str, path: str, query: dict[str, str], body: dict[str, Any]) -> bool:
        if self.times > 0 and super().matches(method, path, query, body):
            self.times -= 1
            return True
        return False


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A private copy of the recorded mirror, free to edit between crawls."""
    target = tmp_path / "mirror" / "kraken"
    shutil.copytree(FIXTURES / "kraken", target)
    return target


@pytest.fixture
def served(folder: Path) -> Iterator[tuple[Mirror, str]]:
    mirror = Mirror(folder)
    with MirrorServer(mirror) as server:
        yield mirror, server.url


def posts(folder: Path) -> list[dict[str, Any]]:
    return [post for name in PAGES for post in json.loads((folder / name).read_text())]


def expected(folder: Path) -> dict[str, tuple[str, str, str]]:
    """id -> (title, published_at, url), from the mirror's files."""
    return {
        str(p["id"]): (html.unescape(p["title"]["rendered"]), p["date_gmt"] + ".000Z", p["link"])
        for p in posts(folder)
    }


def archived(db: Path) -> dict[str, tuple[str, str, str]]:
    rows = query(
        db,
        "SELECT d.external_id, v.title, d.published_at, d.url FROM documents d "
        "JOIN versions v ON v.document_id = d.id AND v.version = d.current_version "
        "WHERE d.source = 'kraken'",
    )
    return {row[0]: row[1:] for row in rows}


def last_run(db: Path) -> tuple[str, dict[str, Any]]:
    ((status, counters),) = query(
        db, "SELECT status, counters FROM crawl_runs ORDER BY id DESC LIMIT 1"
    )
    return status, json.loads(counters)


def list_hits(mirror: Mirror) -> list[dict[str, str]]:
    return [hit.query for hit in mirror.hits if hit.path == POSTS]


def edit(folder: Path, name: str, post_id: int, change: Any) -> None:
    path = folder / name
    page = json.loads(path.read_text())
    change(next(p for p in page if p["id"] == post_id))
    path.write_text(json.dumps(page))


def test_the_blog_is_archived_whole_then_only_edits_make_versions(tmp_path, folder, served):
    mirror, url = served
    db = tmp_path / "annals.db"
    # A server that answers 10 posts a page whatever `per_page` asks (a cache, a plugin,
    # the recorded sample): pages of 10, 10 and 8, then the 400 past the last page. A
    # short page is not the end; the 400 is.
    mirror.prepend(
        *(Route("GET", POSTS, headers=JSON, file=folder / f"posts_p{n}.json",
                query={"page": str(n)}) for n in (1, 2, 3)),
        Route("GET", POSTS, status=400, headers=JSON, file=folder / "posts_invalid_page.json"),
    )  # fmt: skip

    result = crawl(db, url, SPIDER)

    assert result.returncode == Exit.OK, result.stdout + result.stderr
    assert archived(db) == expected(folder)
    assert len(archived(db)) == 28
    status, counters = last_run(db)
    assert (status, counters["new_documents"], counters["new_versions"]) == ("finished", 28, 28)
    assert (counters["quarantined"], counters["refused"]) == (0, 0)
    assert query(db, "SELECT count(*) FROM quarantine") == [(0,)]
    assert [(h["page"], h["per_page"]) for h in list_hits(mirror)] == [
        (str(n), "100") for n in (1, 2, 3, 4)
    ]
    # Spot checks, written out by hand: UTC from date_gmt (the California date is a day
    # earlier), entities decoded, the permalink's category, the full body.
    spot = query(
        db,
        "SELECT d.external_id, d.published_at, d.url, v.title, v.category, v.event_type, "
        "v.updated_at FROM documents d JOIN versions v ON v.document_id = d.id "
        "WHERE d.external_id IN ('41977', '41931', '41858') ORDER BY d.external_id",
    )
    assert spot == [
        ("41858", "2026-06-03T20:12:45.000Z",
         "https://blog.kraken.com/news/kraken-will-delist-twne-fzzl-and-pyre-on-june-17",
         "Kraken will delist TWNE, FZZL and PYRE on June 17", "news", "delisting",
         "2026-06-03T20:19:45.000Z"),
        ("41931", "2026-06-15T15:00:00.000Z",
         "https://blog.kraken.com/product/kraken-pro/kraken-pro-trailing-stop-limit-orders-arrive-on-mobile",
         "Kraken Pro: trailing stop limit orders arrive on mobile – what you need to know",
         "kraken-pro", "product", "2026-06-15T15:12:00.000Z"),
        ("41977", "2026-06-20T00:40:12.000Z",
         "https://blog.kraken.com/product/asset-listings/crvd-is-available-for-trading",
         "CRVD is available for trading!", "asset-listings", "listing",
         "2026-06-20T00:47:12.000Z"),
    ]  # fmt: skip
    ((body_html, body_text),) = query(
        db,
        "SELECT v.body_html, v.body_text FROM versions v JOIN documents d "
        "ON d.id = v.document_id WHERE d.external_id = '41940'",
    )
    assert body_html.startswith("<p>Margin trading is now live for the following pairs")
    assert "<ul><li>GAS/USD</li>" in body_html  # sanitized: the block classes are gone
    assert "GAS/USD" in body_text  # the body, not the excerpt
    assert "eligibility" in body_text

    # A second crawl of the unchanged blog, at the production size: one request.
    mirror.hits.clear()
    result = crawl(db, url, SPIDER)
    assert result.returncode == Exit.OK, result.stdout + result.stderr
    status, counters = last_run(db)
    first_page = json.loads((folder / "posts_p1.json").read_text())  # what it answers
    assert (status, counters["new_versions"], counters["unchanged"]) == (
        "finished",
        0,
        len(first_page),
    )
    assert [(h["page"], h["per_page"]) for h in list_hits(mirror)] == [("1", "100")]
    assert list_hits(mirror)[0]["_fields"].split(",")[:3] == ["id", "date_gmt", "modified_gmt"]
    assert query(db, "SELECT count(*) FROM versions") == [(28,)]

    # A title edit and a body edit: one version each. Fields that move without an edit
    # (sticky, classes, comment status, revision count, excerpt, modified_gmt): none.
    def retitle(p: dict[str, Any]) -> None:
        p["title"]["rendered"] = p["title"]["rendered"].replace("need to know", "should know")

    def rewrite(p: dict[str, Any]) -> None:
        p["content"]["rendered"] = p["content"]["rendered"].replace("June 17", "June 18")

    def churn(p: dict[str, Any]) -> None:
        p["sticky"] = True
        p["class_list"].append("sticky")
        p["comment_status"] = "open"
        p["_links"]["version-history"] = [{"count": 7, "href": "https://blog.kraken.com/r"}]
        p["excerpt"]["rendered"] = "<p>A new summary [&hellip;]</p>"
        p["modified_gmt"] = "2026-06-30T10:00:00"

    edit(folder, "posts_p1.json", 41931, retitle)
    edit(folder, "posts_p1.json", 41858, rewrite)
    edit(folder, "posts_p1.json", 41940, churn)
    edit(folder, "posts_p2.json", 41795, churn)
    mirror.hits.clear()
    result = crawl(db, url, SPIDER)
    assert result.returncode == Exit.OK, result.stdout + result.stderr
    status, counters = last_run(db)
    # The first page is enough: it brings nothing new (two edits, the rest unchanged).
    assert (status, counters["new_versions"], counters["unchanged"]) == (
        "finished",
        2,
        len(first_page) - 2,
    )
    versions = dict(
        query(
            db,
            "SELECT d.external_id, count(*) FROM versions v JOIN documents d "
            "ON d.id = v.document_id GROUP BY d.external_id HAVING count(*) > 1",
        )
    )
    assert versions == {"41858": 2, "41931": 2}
    assert archived(db)["41931"][0] == (
        "Kraken Pro: trailing stop limit orders arrive on mobile – what you should know"
    )
    ((body,),) = query(
        db,
        "SELECT v.body_text FROM versions v JOIN documents d ON d.id = v.document_id "
        "WHERE d.external_id = '41858' AND v.version = 2",
    )
    assert "June 18" in body
    assert "June 17" not in body
    assert len(list_hits(mirror)) == 1


def shifted(folder: Path, new_post: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """The list after `new_post` is published on top, in pages of 10."""
    items = [new_post, *posts(folder)]
    return [items[i : i + 10] for i in range(0, len(items), 10)]


def test_a_post_published_between_two_pages_is_one_document_and_the_next_run_gets_it(
    tmp_path, folder, served
):
    mirror, url = served
    db = tmp_path / "annals.db"
    new_post = json.loads((folder / "posts_p1.json").read_text())[0]
    new_post |= {"id": 41990, "date_gmt": "2026-06-21T09:00:00", "date": "2026-06-21T02:00:00",
                 "link": "https://blog.kraken.com/product/asset-listings/nwpt-is-available"}  # fmt: skip
    new_post["title"] = {"rendered": "NWPT is available for trading!"}
    routes = []
    for n, page in enumerate(shifted(folder, new_post), 1):
        (folder / f"shifted_p{n}.json").write_text(json.dumps(page))
        routes.append(
            Route("GET", POSTS, headers=JSON, file=folder / f"shifted_p{n}.json",
                  query={"page": str(n), "per_page": "10"})
        )  # fmt: skip
    # The first page is asked before the post is published; the others after.
    first = Times("GET", POSTS, headers=JSON, file=folder / "posts_p1.json",
                  query={"page": "1", "per_page": "10"})  # fmt: skip
    mirror.prepend(first, *routes)

    result = crawl(db, url, SPIDER, "-a", "page_size=10")

    assert result.returncode == Exit.OK, result.stdout + result.stderr
    # The last post of page 1 came again on top of page 2: one document, one version.
    assert archived(db) == expected(folder)
    assert query(db, "SELECT count(*) FROM versions") == [(28,)]
    assert [h["page"] for h in list_hits(mirror)] == ["1", "2", "3", "4"]  # 4: the 400
    status, counters = last_run(db)
    assert (status, counters["new_documents"], counters["quarantined"]) == ("finished", 28, 0)

    # The next run finds the new post on top, then a page with nothing new, and stops.
    mirror.hits.clear()
    result = crawl(db, url, SPIDER, "-a", "page_size=10")
    assert result.returncode == Exit.OK, result.stdout + result.stderr
    assert archived(db)["41990"] == (
        "NWPT is available for trading!",
        "2026-06-21T09:00:00.000Z",
        "https://blog.kraken.com/product/asset-listings/nwpt-is-available",
    )
    assert [h["page"] for h in list_hits(mirror)] == ["1", "2"]
    status, counters = last_run(db)
    assert (status, counters["new_documents"], counters["new_versions"]) == ("finished", 1, 1)

    # Cloudflare's rate limit (error 1015: a 429 page, Retry-After 30), then its managed
    # challenge (a 403 with cf-mitigated: challenge, counted as a challenge) on the retry: never parsed, nothing
    # archived or marked removed, the run ends blocked.
    limited = (
        b"<!DOCTYPE html><html><head><title>Access denied | blog.kraken.com used "
        b"Cloudflare to restrict access</title></head><body><h1>Error 1015</h1><h2>You "
        b"are being rate limited</h2><p>The owner of this website (blog.kraken.com) has "
        b"banned you temporarily from accessing this website.</p></body></html>"
    )
    challenge = (
        b"<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>"
        b'<script src="/cdn-cgi/challenge-platform/h/g/orchestrate/chl_page/v1">'
        b"</script></body></html>"
    )
    mirror.prepend(
        Times("GET", POSTS, status=429, content=limited,
              headers={"Content-Type": "text/html; charset=UTF-8", "Retry-After": "30"}),
        Route("GET", POSTS, status=403, content=challenge,
              headers={"Content-Type": "text/html; charset=UTF-8", "cf-mitigated": "challenge"}),
    )  # fmt: skip
    mirror.hits.clear()
    result = crawl(db, url, SPIDER, "-s", "ANNALS_BLOCK_RETRIES=1",
                   "-s", "ANNALS_MAX_RETRY_AFTER=0.4")  # fmt: skip
    assert result.returncode == Exit.BLOCKED, result.stdout + result.stderr
    assert f"{SPIDER}: blocked" in result.stdout
    status, counters = last_run(db)
    assert (status, counters["blocked"], counters["new_versions"]) == ("blocked", 1, 0)
    assert (counters["blocked/rate_limited"], counters["blocked/challenge"]) == (1, 1)
    assert query(db, "SELECT count(*) FROM documents WHERE removed_at IS NOT NULL") == [(0,)]
    assert query(db, "SELECT count(*), count(DISTINCT document_id) FROM versions") == [(29, 29)]
    assert query(db, "SELECT count(*) FROM quarantine") == [(0,)]
    hits = [hit for hit in mirror.hits if hit.path == POSTS]
    assert [hit.status for hit in hits] == [429, 403]
    # Retry-After (30 s) honoured, capped by ANNALS_MAX_RETRY_AFTER: not the 0.05 s backoff.
    assert hits[1].at - hits[0].at >= 0.4
