"""End to end: MEXC crawled from its recorded mirror with real Scrapy (`annals crawl` in a
subprocess) into a real SQLite file. What the mirror holds is read from its JSON files
here, not from the parsers."""

from __future__ import annotations

import html
import json
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from archive.cli import Exit
from archive.normalize import format_time, utcnow
from crawler.cli import DEMO_SPIDERS, MIRRORS
from crawler.mirror import Mirror, MirrorServer, Route
from tests.helpers import FIXTURES, crawl
from tests.test_crawl_gate import query

pytestmark = pytest.mark.e2e

SPIDER = "mexc_announcements"
TOP, LISTINGS = "360000254192", "15425930840735"  # every announcement; new listings
PINNED = "17826001108805"  # on top of the first page, the oldest article of all
LIST_PATH = "/help/announce/api/en-US/section/{}/articles"
DETAIL_PATH = "/help/announce/api/en-US/article/{}"
QUICK = ("-s", "ANNALS_BLOCK_RETRIES=1")
HTML = {"Content-Type": "text/html"}
ACCESS_DENIED = (
    b"<HTML><HEAD>\n<TITLE>Access Denied</TITLE>\n</HEAD><BODY>\n<H1>Access Denied</H1>\n \n"
    b"You don't have permission to access this resource on this server.<P>\n"
    b"Reference&#32;&#35;18&#46;2f3c1002&#46;1790000000&#46;1a2b3c4d\n</BODY>\n</HTML>\n"
)
CHALLENGE = (
    b'<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title></head><body>'
    b"<noscript>Enable JavaScript and cookies to continue</noscript><script>"
    b"window._cf_chl_opt={cType:'managed'};</script></body></html>"
)
CLOUDFLARE = HTML | {"Server": "cloudflare", "cf-mitigated": "challenge"}


# --- what the mirror holds, from its files --------------------------------------------------


def results(folder: Path, name: str) -> list[dict[str, Any]]:
    return json.loads((folder / name).read_text())["data"]["results"]


def mirror_items(folder: Path = FIXTURES / "mexc") -> dict[str, dict[str, Any]]:
    """Every article any list file of the mirror holds, by id (the same in every file)."""
    items: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob("articles_*.json")):
        for item in results(folder, path.name):
            assert items.setdefault(str(item["id"]), item) == item, item["id"]
    assert items
    return items


def iso_ms(created_at: str) -> str:
    """createdAt as annals stores it: UTC, milliseconds."""
    moment = datetime.fromisoformat(created_at.replace("Z", "+00:00")).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def expected(folder: Path = FIXTURES / "mexc") -> dict[str, tuple[str, str, str, str]]:
    """id -> (title, published_at, url, category) as the archive should hold them."""
    return {
        key: (
            html.unescape(item["title"]),
            iso_ms(item["createdAt"]),
            "https://www.mexc.com" + item["routerUrl"],
            ", ".join(section["name"] for section in item["parentSections"]),
        )
        for key, item in mirror_items(folder).items()
    }


def paragraphs(folder: Path, key: str) -> list[str]:
    """The text of each paragraph and list item of an article's detail body."""
    body = json.loads((folder / "details" / f"{key}.json").read_text())["data"]["body"]
    return [html.unescape(text) for text in re.findall(r"<(?:p|li)>(.*?)</(?:p|li)>", body)]


def archived(db: Path) -> dict[str, tuple[str, str, str, str]]:
    rows = query(
        db,
        "SELECT d.external_id, v.title, d.published_at, d.url, v.category FROM documents d "
        "JOIN versions v ON v.document_id = d.id AND v.version = d.current_version "
        "WHERE d.source = 'mexc'",
    )
    return {row[0]: tuple(row[1:]) for row in rows}


def versions(db: Path, key: str) -> list[tuple[Any, ...]]:
    return query(
        db,
        "SELECT v.version, v.title, v.body_text FROM versions v JOIN documents d "
        f"ON d.id = v.document_id WHERE d.external_id = '{key}' ORDER BY v.version",
    )


def last_run(db: Path) -> tuple[str, dict[str, Any]]:
    status, counters = query(db, "SELECT status, counters FROM crawl_runs ORDER BY id DESC")[0]
    return status, json.loads(counters)


def list_hits(mirror: Mirror, section: str = TOP) -> list[dict[str, str]]:
    return [h.query for h in mirror.hits if h.path == LIST_PATH.format(section)]


def detail_hits(mirror: Mirror) -> list[str]:
    prefix = DETAIL_PATH.format("")
    return [h.path.removeprefix(prefix) for h in mirror.hits if h.path.startswith(prefix)]


def edit(folder: Path, name: str, key: str, **fields: Any) -> None:
    path = folder / name
    answer = json.loads(path.read_text())
    (item,) = [i for i in answer["data"]["results"] if str(i["id"]) == key]
    item.update(fields)
    path.write_text(json.dumps(answer, ensure_ascii=False))


# --- the mirror -----------------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A private copy of the recorded mirror, free to edit between crawls."""
    target = tmp_path / "mirror" / "mexc"
    shutil.copytree(FIXTURES / "mexc", target)
    return target


@pytest.fixture
def served(folder: Path) -> Iterator[tuple[Mirror, str]]:
    mirror = Mirror(folder)
    with MirrorServer(mirror) as server:
        yield mirror, server.url


# --- first crawl, second crawl, edits, a blocked detail -------------------------------------


def test_mirror_archived_whole_then_unchanged_then_edited(tmp_path, folder, served):
    mirror, url = served
    db = tmp_path / "annals.db"

    first = crawl(db, url, SPIDER)

    assert first.returncode == Exit.OK, first.stdout + first.stderr
    assert archived(db) == expected()
    assert len(expected()) == 30
    status, counters = last_run(db)
    assert (status, counters["new_documents"], counters["new_versions"]) == ("finished", 30, 30)
    # Production asks 30 a page: the whole sample is one list request; a detail each.
    assert list_hits(mirror) == [{"page": "1", "perPage": "30"}]
    assert sorted(detail_hits(mirror)) == sorted(expected())
    for key in expected():
        ((version, _, text),) = versions(db, key)
        assert version == 1
        shown = paragraphs(folder, key)
        assert shown, key
        assert all(paragraph in text for paragraph in shown), key
    # Spot checks, written out by hand.
    spot = query(
        db,
        "SELECT d.external_id, d.published_at, v.title, v.category, v.event_type, v.body_html "
        "FROM documents d JOIN versions v ON v.document_id = d.id WHERE d.external_id IN "
        f"('{PINNED}', '17826033580805', '17826035422370') ORDER BY d.external_id",
    )
    assert spot == [
        (PINNED, "2026-06-02T04:00:00.000Z",
         "MEXC Zero-Fee Carnival: 0 Fees on 100+ Spot & Futures Pairs", "Latest Events",
         "promotion",
         "<p>From June 2 to July 31, 2026, trade 100+ spot &amp; futures pairs with zero maker "
         "fees.</p>"),
        ("17826033580805", "2026-07-06T08:00:00.412Z",
         "MEXC Will Add the 1INCH/USDE Spot Trading Pair", "New Listings", "listing",
         "<p>MEXC will open the 1INCH/USDE spot trading pair at 10:00 AM (UTC) on July 7, 2026. "
         "Deposits of 1INCH remain open.</p>"),
        ("17826035422370", "2026-07-08T06:30:15.000Z",
         "[Initial Futures Listing] MEXC Will Launch KWRIUSDT Perpetual Futures with Up to 50x "
         "Leverage", "New Listings", "listing",
         "<p>MEXC Futures will launch the KWRIUSDT USDT-M perpetual contract at 08:00 (UTC) on "
         "July 8, 2026.</p><ul><li>Maximum leverage: 50x</li><li>Funding interval: every 4 "
         "hours</li></ul>"),
    ]  # fmt: skip

    # Unchanged: one list request, no version, a detail only for a young article.
    mirror.hits.clear()
    second = crawl(db, url, SPIDER)
    assert second.returncode == Exit.OK, second.stdout + second.stderr
    assert "0 new documents, 0 new versions" in second.stdout
    assert len(list_hits(mirror)) == 1
    recheck_since = format_time(utcnow() - timedelta(days=3))
    young = query(db, f"SELECT count(*) FROM documents WHERE published_at >= '{recheck_since}'")
    assert len(detail_hits(mirror)) == young[0][0]

    # A title edit and a body edit: one version each. A counter and a badge alone: none.
    # A detail that answers Cloudflare's challenge: not archived, not marked removed.
    retitled, rewritten, badged, challenged = (
        "17826036512976",
        "17826034531260",
        "17826032842122",
        "17826031812390",
    )
    title = html.unescape(mirror_items()[retitled]["title"])
    for name in ("articles_all_p1.json", "articles_new_listings_p1.json"):
        edit(folder, name, retitled, title=f"{title} (Updated)")
    edit(folder, "articles_all_p1.json", badged, viewCount=1843, isTop=True, isNew=True)
    detail = folder / "details" / f"{rewritten}.json"
    answer = json.loads(detail.read_text())
    answer["data"]["body"] = answer["data"]["body"].replace("08:00 (UTC)", "09:00 (UTC)")
    detail.write_text(json.dumps(answer))
    mirror.prepend(
        Route("GET", DETAIL_PATH.format(challenged), status=403, headers=CLOUDFLARE,
              content=CHALLENGE)
    )  # fmt: skip
    mirror.hits.clear()

    edited = crawl(db, url, SPIDER, "--full", *QUICK)

    assert edited.returncode == Exit.BLOCKED, edited.stdout + edited.stderr
    assert "0 new documents, 2 new versions" in edited.stdout
    assert [v[1] for v in versions(db, retitled)] == [title, f"{title} (Updated)"]
    (_, before), (_, after) = [(v[0], v[2]) for v in versions(db, rewritten)]
    assert after == before.replace("08:00 (UTC)", "09:00 (UTC)") != before
    assert len(versions(db, badged)) == 1
    assert len(versions(db, challenged)) == 1
    assert query(db, "SELECT count(*) FROM documents WHERE removed_at IS NOT NULL") == [(0,)]
    assert query(db, "SELECT count(*) FROM quarantine") == [(0,)]
    status, counters = last_run(db)
    assert (status, counters["blocked"], counters["blocked/challenge"]) == ("blocked", 1, 2)
    assert detail_hits(mirror).count(challenged) == 2  # the answer and one retry
    assert len(set(detail_hits(mirror))) == 30  # --full: every detail again


# --- pinned article, two sections -----------------------------------------------------------


def test_a_known_pinned_article_does_not_stop_the_next_crawl_and_sections_share_documents(
    tmp_path, folder, served
):
    mirror, url = served
    db = tmp_path / "annals.db"
    # The first crawl sees the pinned article above the oldest page only.
    pinned = results(folder, "articles_all_p1.json")[0]
    oldest = results(folder, "articles_all_p3.json")
    assert str(pinned["id"]) == PINNED
    recorded = (folder / "articles_all_p1.json").read_text()
    short = {"code": 0, "msg": "success", "data": {"results": [pinned, *oldest], "pageCount": 1}}
    (folder / "articles_all_p1.json").write_text(json.dumps(short))
    first = crawl(db, url, SPIDER, "-a", "page_size=10")
    assert first.returncode == Exit.OK, first.stdout + first.stderr
    assert set(archived(db)) == {PINNED, *(str(i["id"]) for i in oldest)}

    # Then the whole list, by pages of 10, and the listings subsection too.
    (folder / "articles_all_p1.json").write_text(recorded)
    mirror.hits.clear()
    second = crawl(db, url, SPIDER, "-a", "page_size=10", "-a", f"categories={TOP},{LISTINGS}")

    assert second.returncode == Exit.OK, second.stdout + second.stderr
    assert archived(db) == expected()
    assert "19 new documents, 19 new versions" in second.stdout
    # Page 1 starts with the known pinned article; pages 2 and 3 are still asked, and the
    # walk ends on page 3, which brings nothing new.
    assert [q["page"] for q in list_hits(mirror)] == ["1", "2", "3"]
    asked = detail_hits(mirror)
    known = {PINNED, *(str(i["id"]) for i in oldest)}
    assert sorted(asked) == sorted(set(expected()) - known)
    assert PINNED not in asked
    # The subsection lists the same articles: each is fetched and archived once.
    assert list_hits(mirror, LISTINGS)
    assert len(asked) == len(set(asked))
    assert query(db, "SELECT count(*) FROM documents") == [(30,)]
    assert query(db, "SELECT count(*) FROM versions") == [(30,)]


# --- refusals -------------------------------------------------------------------------------


def test_access_denied_and_an_error_answer_archive_nothing_and_fail_the_run(tmp_path, served):
    mirror, url = served
    error = {"code": 500, "msg": "system error", "data": None}
    mirror.prepend(
        Route("GET", LIST_PATH.format(TOP), status=403, headers=HTML, content=ACCESS_DENIED),
        Route("GET", LIST_PATH.format(LISTINGS), headers={"Content-Type": "application/json"},
              content=json.dumps(error).encode()),
    )  # fmt: skip
    db = tmp_path / "annals.db"

    result = crawl(db, url, SPIDER, "-a", f"categories={TOP},{LISTINGS}", *QUICK)

    assert result.returncode == Exit.BLOCKED, result.stdout + result.stderr
    assert f"{SPIDER}: blocked" in result.stdout
    assert query(db, "SELECT count(*) FROM documents") == [(0,)]
    # The error answer is kept in quarantine, the block page is not kept at all.
    (error_row,) = query(db, "SELECT error FROM quarantine")
    assert "code 500: system error" in error_row[0]
    status, counters = last_run(db)
    assert (status, counters["blocked"], counters["blocked/akamai"]) == ("blocked", 1, 2)
    assert counters["refused"] == 1
    assert len(list_hits(mirror)) == 2  # the answer and one retry
    assert len(list_hits(mirror, LISTINGS)) == 1  # a refusal is not retried
    assert detail_hits(mirror) == []


def test_demo_serves_the_tested_mirror():
    assert DEMO_SPIDERS["mexc"] == (SPIDER,)
    assert (FIXTURES / "mexc").resolve() == (MIRRORS / "mexc").resolve()
