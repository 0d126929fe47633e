"""Every loss is counted under its reason and changes the run's status; what cannot be read
is quarantined with its bytes; the worst outcome wins (failed > blocked > partial >
finished). Real crawls of a local mirror, through `annals crawl`."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from archive.cli import Exit
from archive.store import snapshot_body
from crawler.cli import exit_code
from crawler.extensions import LOSSES, decide_status
from crawler.mirror import Mirror, MirrorServer, Route
from crawler.sources import gate
from tests.helpers import FIXTURES, crawl
from tests.test_crawl_api import LIST_PATHS, runs
from tests.test_crawl_gate import query, unblock
from tests.test_parse_gate_square import without_the_first_post_id

pytestmark = pytest.mark.e2e

JSON = {"Content-Type": "application/json"}
HTML = {"Content-Type": "text/html; charset=utf-8"}
ARTICLE = "/announcements/article/51322"
DEEP = 100_000


def rows(db: Path, sql: str, *params: Any) -> list[tuple]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute(sql, params).fetchall()


def quarantine(db: Path) -> list[tuple[str, str, bytes | None]]:
    """(url, error, snapshot bytes) of every quarantine row."""
    return [
        (url, error, snapshot_body(body) if body is not None else None)
        for url, error, body in query(
            db,
            "SELECT q.url, q.error, s.body FROM quarantine q "
            "LEFT JOIN snapshots s ON s.id = q.snapshot_id ORDER BY q.id",
        )
    ]


class SlowMirror(Mirror):
    """A mirror whose answers to some paths come late (a host that hangs)."""

    def __init__(self, *folders: Path, slow: dict[str, float]) -> None:
        super().__init__(*folders)
        self.slow = slow

    def answer(self, method: str, target: str, raw_body: bytes, content_type: str) -> Route | None:
        route = super().answer(method, target, raw_body, content_type)
        time.sleep(self.slow.get(target.split("?", 1)[0], 0.0))
        return route


@pytest.fixture
def served() -> Iterator[Any]:
    """Serve a mirror for one test: `url = served(mirror)`."""
    servers: list[MirrorServer] = []

    def serve(mirror: Mirror) -> str:
        server = MirrorServer(mirror).__enter__()
        servers.append(server)
        return server.url

    yield serve
    for server in servers:
        server.__exit__(None, None, None)


def only_run(db: Path) -> tuple[str, dict[str, Any]]:
    ((status, counters),) = query(db, "SELECT status, counters FROM crawl_runs")
    return status, json.loads(counters)


# --- requests Scrapy drops on its own ---------------------------------------------------------


def test_an_article_redirecting_to_itself_is_a_counted_redirect_loop(tmp_path, served):
    mirror = Mirror(FIXTURES / "gate")
    unblock(mirror)
    mirror.prepend(Route("GET", ARTICLE, status=302, headers={"Location": ARTICLE}))
    db = tmp_path / "annals.db"
    result = crawl(db, served(mirror), "gate_announcements")

    assert result.returncode == Exit.FAILED, result.stdout
    assert "gate_announcements: partial" in result.stdout
    status, counters = only_run(db)
    assert (status, counters["redirect_loop"]) == ("partial", 1)
    assert f"redirect loop, not archived: {served_url(result)}{ARTICLE}" in result.stderr
    assert query(db, "SELECT count(*) FROM documents WHERE external_id = '51322'") == [(0,)]
    # Asked once, then once more by the redirect: never a third time.
    assert sum(hit.path == ARTICLE for hit in mirror.hits) == 1


def served_url(result: Any) -> str:
    """The mirror's origin, as the crawl's command line gave it."""
    args = result.args
    return str(args[args.index("--base-url") + 1])


def test_a_redirect_circle_is_a_loop_and_too_many_hops_are_counted(tmp_path, served):
    mirror = Mirror(FIXTURES / "gate")
    unblock(mirror)
    other = "/announcements/article/51319"
    mirror.prepend(
        Route("GET", ARTICLE, status=301, headers={"Location": f"{ARTICLE}?a=1"}),
        Route("GET", ARTICLE, status=302, query={"a": "1"}, headers={"Location": ARTICLE}),
        *(Route("GET", other, status=302, query={"n": str(n)} if n else {"n": None},
                headers={"Location": f"{other}?n={n + 1}"}) for n in range(10)),
    )  # fmt: skip
    db = tmp_path / "annals.db"
    result = crawl(db, served(mirror), "gate_announcements")
    assert result.returncode == Exit.FAILED
    status, counters = only_run(db)
    assert status == "partial"
    assert counters["redirect_loop"] == 1
    assert counters["too_many_redirects"] == 1
    assert "more than 5 redirects" in result.stderr


def test_a_redirect_to_a_page_already_asked_for_is_a_counted_duplicate(tmp_path, served):
    mirror = Mirror(FIXTURES / "gate")
    unblock(mirror)
    other = "/announcements/article/51319"
    mirror.prepend(Route("GET", ARTICLE, status=302, headers={"Location": other}))
    db = tmp_path / "annals.db"
    result = crawl(db, served(mirror), "gate_announcements")
    # Scrapy's dupefilter drops the second request for 51319, whichever came first.
    assert result.returncode == Exit.FAILED, result.stdout
    status, counters = only_run(db)
    assert (status, counters["duplicates"]) == ("partial", 1)
    assert sum(hit.path == other for hit in mirror.hits) == 1


# --- items and pages that cannot be read -----------------------------------------------------


@pytest.fixture
def bybit_dir(tmp_path: Path) -> Path:
    target = tmp_path / "mirror" / "bybit"
    shutil.copytree(FIXTURES / "bybit", target)
    return target


def test_a_bybit_item_without_publish_time_is_dated_by_its_date_timestamp(
    tmp_path, served, bybit_dir
):
    page = bybit_dir / "announcements_p1.json"
    data = json.loads(page.read_text())
    items = data["result"]["list"]
    dated, lost = items[0], items[1]
    del dated["publishTime"]
    del lost["publishTime"]
    del lost["dateTimestamp"]
    page.write_text(json.dumps(data))
    db = tmp_path / "annals.db"
    result = crawl(db, served(Mirror(bybit_dir)), "bybit_announcements")

    assert result.returncode == Exit.FAILED, result.stderr[-2000:]
    status, counters = only_run(db)
    assert (status, counters["unusable_items"], counters["quarantined"]) == ("partial", 1, 1)
    dates = rows(
        db,
        "SELECT d.published_at, json_extract(v.extra, '$.time_source') FROM documents d "
        "JOIN versions v ON v.document_id = d.id WHERE d.url = ?",
        dated["url"],
    )
    expected = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(dated["dateTimestamp"]) // 1000))
    assert [(at[:19], source) for at, source in dates] == [(expected, "dateTimestamp")]
    assert rows(db, "SELECT count(*) FROM documents WHERE url = ?", lost["url"]) == [(0,)]
    # The answer that held it is kept, bytes and all, with what was wrong.
    ((_, error, body),) = quarantine(db)
    assert "unusable items (item 1:" in error
    assert "no readable time" in error
    assert body is not None
    assert json.loads(body) == data


def test_a_gate_list_item_without_an_id_is_counted_and_its_page_quarantined(tmp_path, served):
    answer = json.loads((FIXTURES / "gate" / "list_article_p2.json").read_text())
    del answer["data"]["list"][0]["id"]
    answer["data"]["list"][0]["url"] = "/announcements/lastest"
    mirror = Mirror(FIXTURES / "gate")
    unblock(mirror)
    content = json.dumps(answer).encode()
    mirror.prepend(
        Route("POST", gate.SOURCE.list_path, content=content, headers=JSON, body={"page": 2})
    )
    db = tmp_path / "annals.db"
    result = crawl(db, served(mirror), "gate_announcements")
    assert result.returncode == Exit.FAILED, result.stdout
    status, counters = only_run(db)
    assert (status, counters["unusable_items"], counters["quarantined"]) == ("partial", 1, 1)
    ((_, error, body),) = quarantine(db)
    assert error == "1 unusable items (item 0: no usable id)"
    assert body == content


def test_a_square_feed_block_without_a_post_id_is_counted_and_its_page_quarantined(
    tmp_path, served
):
    feed = (FIXTURES / "gate" / "square_feed.html").read_bytes()
    broken = without_the_first_post_id(feed)
    mirror = Mirror(FIXTURES / "gate")
    unblock(mirror)
    html = {"Content-Type": "text/html; charset=utf-8"}
    mirror.prepend(Route("GET", "/post/topic/Broken", content=broken, headers=html))
    db = tmp_path / "annals.db"
    result = crawl(db, served(mirror), "gate_square", "-a", "topics=Broken")
    assert result.returncode == Exit.FAILED, result.stdout
    status, counters = only_run(db)
    assert (status, counters["unusable_items"], counters["quarantined"]) == ("partial", 1, 1)
    ((_, error, body),) = quarantine(db)
    assert error == "1 unusable items (item 0: a feed block with no post id)"
    assert body == broken
    # The other posts of the page are archived.
    blocks = len(re.findall(rb'class="feed-item', feed))
    assert rows(db, "SELECT count(*) FROM documents") == [(blocks - 1,)]


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_json_nested_100000_deep_is_quarantined_not_a_crash(tmp_path, served):
    kucoin = f'{{"code":"200000","data":{{"items":{nested(DEEP).decode()}}}}}'.encode()
    page = (FIXTURES / "gate" / "announcements_newlisted.html").read_text()
    start = page.index('<script id="__NEXT_DATA__"')
    start = page.index(">", start) + 1
    end = page.index("</script>", start)
    page = page[:start] + nested(DEEP).decode() + page[end:]
    mirror = Mirror(FIXTURES / "gate", FIXTURES / "kucoin")
    unblock(mirror)
    mirror.prepend(
        Route("GET", LIST_PATHS["kucoin"], content=kucoin, headers=JSON),
        Route("GET", "/announcements/newlisted", content=page.encode(), headers=HTML),
        Route("POST", gate.SOURCE.list_path, content=nested(DEEP), headers=JSON, body={"page": 2}),
    )
    db = tmp_path / "annals.db"
    result = crawl(db, served(mirror), "kucoin_announcements", "gate_announcements")

    assert "RecursionError" not in result.stderr
    assert "Traceback" not in result.stderr
    assert result.returncode == Exit.FAILED
    statuses = {spider: status for spider, (status, _) in runs(db).items()}
    assert statuses == {"kucoin_announcements": "partial", "gate_announcements": "partial"}
    kept = {url: (error, body) for url, error, body in quarantine(db)}
    assert len(kept) == 3
    for error, body in kept.values():
        assert "nested deeper than" in error
        assert body is not None
        assert len(body) >= 2 * DEEP  # the bytes as they came
    assert any(url.endswith("/announcements/newlisted") for url in kept)


# --- status precedence -----------------------------------------------------------------------


def test_a_timeout_that_lost_an_article_and_a_block_end_failed_not_blocked(tmp_path, served):
    # The mirror's two blocked articles stay blocked; one more article hangs past the timeout.
    mirror = SlowMirror(FIXTURES / "gate", slow={ARTICLE: 3.0})
    db = tmp_path / "annals.db"
    result = crawl(db, served(mirror), "gate_announcements",
                   "-s", "DOWNLOAD_TIMEOUT=1", "-s", "RETRY_TIMES=0")  # fmt: skip

    assert result.returncode == Exit.FAILED, result.stdout
    assert "gate_announcements: failed" in result.stdout
    status, counters = only_run(db)
    assert status == "failed"
    assert counters["timeouts"] == 1
    assert counters["blocked"] == 2
    assert counters["errors"] >= 1
    assert query(db, "SELECT count(*) FROM documents WHERE external_id = '51322'") == [(0,)]


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_each_loss_makes_a_run_partial(loss):
    stats = {"response_received_count": 3, LOSSES[loss]: 1}
    assert decide_status("finished", stats) == "partial"


@pytest.mark.parametrize(
    ("stats", "status"),
    [
        ({}, "finished"),
        ({"annals/quarantined": 1}, "partial"),
        ({"annals/quarantined": 1, "annals/blocked": 1}, "blocked"),
        ({"annals/blocked": 1, "annals/errors": 2}, "failed"),
        ({"annals/blocked": 1, "annals/timeouts": 1}, "failed"),
        ({"annals/quarantined": 1, "annals/fetch_errors": 1}, "failed"),
        ({"annals/blocked": 1, "response_received_count": 0}, "blocked"),
        ({"response_received_count": 0}, "failed"),
    ],
)
def test_the_worst_outcome_wins(stats, status):
    assert decide_status("finished", {"response_received_count": 3, **stats}) == status
    # A stop from outside is said as such; a crash is a failure whatever else happened.
    assert decide_status("shutdown", stats) == "interrupted"
    assert decide_status("archive_error", stats) == "failed"


@pytest.mark.parametrize(
    ("statuses", "code"),
    [
        (["finished", "finished"], Exit.OK),
        (["finished", "partial"], Exit.FAILED),
        (["partial", "blocked"], Exit.BLOCKED),
        (["blocked", "interrupted"], Exit.FAILED),
        (["blocked", "failed", "partial"], Exit.FAILED),
        (["finished", "running"], Exit.FAILED),
    ],
)
def test_a_crawl_of_several_spiders_exits_with_its_worst_run(statuses, code):
    assert exit_code(statuses) == code


def test_a_gate_listing_page_answering_404_is_a_counted_loss(tmp_path, served):
    mirror = Mirror(FIXTURES / "gate")
    unblock(mirror)
    mirror.prepend(Route("GET", "/announcements/delisted", status=404, content=b"not here"))
    db = tmp_path / "annals.db"
    result = crawl(db, served(mirror), "gate_announcements")
    assert result.returncode == Exit.FAILED, result.stdout
    status, counters = only_run(db)
    assert (status, counters["listing_missing"]) == ("partial", 1)
    # What the other listings and the list endpoint give is archived.
    assert rows(db, "SELECT count(*) FROM documents")[0][0] > 0
