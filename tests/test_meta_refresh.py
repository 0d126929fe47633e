"""A page with <meta http-equiv="refresh"> is never followed (METAREFRESH_ENABLED is off in
crawler.settings): a WAF interstitial that refreshes itself is a block, retried and counted
as one; any other such page is read as it is, or quarantined with its bytes. Real crawls
of a local mirror of Gate, through `annals crawl`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from archive.cli import Exit
from crawler.mirror import Mirror, Route
from tests.helpers import crawl
from tests.test_crawl_gate import query, unblock

pytestmark = pytest.mark.e2e

ARTICLE = "/announcements/article/51322"
OTHER = "/announcements/article/51319"
HTML = {"Content-Type": "text/html; charset=utf-8"}


def crawl_answering(
    gate_mirror: tuple[Mirror, str], db: Path, refresh_to: str, head: bytes, body: bytes
) -> tuple[Mirror, subprocess.CompletedProcess[str]]:
    """A crawl of Gate's mirror whose ARTICLE answers a page that refreshes to `refresh_to`."""
    mirror, url = gate_mirror
    unblock(mirror)
    refresh = f'<meta http-equiv="refresh" content="0;url={refresh_to}">'.encode()
    page = b"<!DOCTYPE html><html><head>" + head + refresh + b"</head><body>" + body
    mirror.prepend(Route("GET", ARTICLE, content=page + b"</body></html>", headers=HTML))
    return mirror, crawl(db, url, "gate_announcements")


def test_an_interstitial_that_refreshes_itself_is_a_retried_block(tmp_path, gate_mirror):
    db = tmp_path / "annals.db"
    mirror, result = crawl_answering(
        gate_mirror,
        db,
        ARTICLE,
        b"<title>Just a moment...</title>",
        b"<noscript>Enable JavaScript</noscript><script>window._cf_chl_opt={};</script>",
    )

    assert result.returncode == Exit.BLOCKED, result.stderr
    ((status, counters),) = query(db, "SELECT status, counters FROM crawl_runs")
    counters = json.loads(counters)
    assert status == "blocked"
    # The first answer and two retries, each a challenge; never a "duplicate".
    assert counters["blocked/challenge"] == 3
    assert counters["duplicates"] == 0
    assert sum(hit.path == ARTICLE for hit in mirror.hits) == 3
    assert query(db, "SELECT count(*) FROM documents WHERE external_id = '51322'") == [(0,)]


def test_a_page_that_refreshes_to_another_url_is_kept_never_followed(tmp_path, gate_mirror):
    db = tmp_path / "annals.db"
    moved = b"<p>" + b"This announcement has moved to another address on the site. " * 4
    mirror, result = crawl_answering(
        gate_mirror, db, f"{OTHER}?moved=1", b"<title>Moved</title>", moved + b"</p>"
    )

    assert result.returncode == Exit.FAILED, result.stderr
    ((status,),) = query(db, "SELECT status FROM crawl_runs")
    assert status == "partial"
    quarantined = query(db, "SELECT url FROM quarantine")
    assert [u for (u,) in quarantined] == [f"https://www.gate.com{ARTICLE}"]
    assert not any(hit.query.get("moved") for hit in mirror.hits)
    assert query(db, "SELECT count(*) FROM documents WHERE external_id = '51319'") == [(1,)]
