"""Repair: a crawl after one that stopped half-way (killed, failed, interrupted) walks every
listing of every spider back to the last complete crawl, and so archives what the broken
crawl never reached.

Each spider is stopped the same deterministic way: the mirror holds back the second page
of its listing (the answer never comes), the crawl archives what the first page brought,
and then it is killed with SIGKILL. The next run must end with the archive an
uninterrupted crawl makes.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from archive.cli import Exit
from crawler.mirror import Mirror, MirrorServer, Route
from crawler.sources import gate
from tests.helpers import FAST, FIXTURES, crawl
from tests.test_crawl_api import EXCHANGES, LIST_PATHS
from tests.test_faults import steady_content

pytestmark = pytest.mark.e2e

# spider -> (method, path) of its listing: the requests after the first one are held back.
LISTINGS = {
    "gate_announcements": ("POST", gate.SOURCE.list_path),
    # Square's feed is one page: what is held back is the second post page.
    "gate_square": ("GET", "/post/status/"),
    **{f"{exchange}_announcements": ("GET", LIST_PATHS[exchange]) for exchange in EXCHANGES},
}

# At production page sizes (Binance and KuCoin ask 50) these small mirrors are one page:
# their crawls here ask the size the mirror was recorded at, so page 2 exists to hold.
PAGING = {
    spider: ["-a", "page_size=10"] for spider in ("binance_announcements", "kucoin_announcements")
}


class HoldingMirror(Mirror):
    """A mirror that, while `holding` names a listing, answers its first request and holds
    every later one until released (a source that hangs after page 1)."""

    def __init__(self, *folders: Path) -> None:
        super().__init__(*folders)
        self.holding: tuple[str, str] | None = None
        self.held = threading.Event()  # a request is being held back
        self.release = threading.Event()
        self._served = 0

    def hold(self, listing: tuple[str, str] | None) -> None:
        self.holding, self._served = listing, 0
        self.held.clear()
        self.release.clear()

    def answer(self, method: str, target: str, raw_body: bytes, content_type: str) -> Route | None:
        route = super().answer(method, target, raw_body, content_type)
        if self.holding and method == self.holding[0] and target.startswith(self.holding[1]):
            self._served += 1
            if self._served > 1:
                self.held.set()
                self.release.wait(60)
        return route


@pytest.fixture(scope="module")
def holding_mirror() -> Iterator[tuple[HoldingMirror, str]]:
    mirror = HoldingMirror(FIXTURES / "gate", *(FIXTURES / e for e in EXCHANGES))
    # The two blocked Gate articles answer 404, so an uninterrupted crawl is complete.
    for article in ("51321", "51317"):
        mirror.prepend(Route("GET", f"/announcements/article/{article}", status=404))
    with MirrorServer(mirror) as server:
        try:
            yield mirror, server.url
        finally:
            mirror.release.set()


@pytest.fixture(scope="module")
def references(
    holding_mirror: tuple[HoldingMirror, str], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], Any]:
    """What an uninterrupted crawl of a spider archives. Crawled the first time a test of
    the spider asks, once per module: a test worker crawls only the spiders it tests."""
    mirror, url = holding_mirror
    folder = tmp_path_factory.mktemp("reference")
    found: dict[str, Any] = {}

    def reference(spider: str) -> Any:
        if spider not in found:
            mirror.hold(None)
            db = folder / f"{spider}.db"
            result = crawl(db, url, spider, *PAGING.get(spider, []))
            assert result.returncode == Exit.OK, result.stdout + result.stderr[-3000:]
            found[spider] = steady_content(db)
        return found[spider]

    return reference


def documents(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return int(conn.execute("SELECT count(*) FROM documents").fetchone()[0])
    except sqlite3.OperationalError:  # the tables are not made yet
        return 0


def crawl_until_held_then_kill(db: Path, url: str, spider: str, mirror: HoldingMirror) -> int:
    """Run the spider until its listing's second page is held and what the first page
    brought is archived (no new document for a second); SIGKILL it; the documents kept."""
    command = [sys.executable, "-m", "archive", "crawl", spider, "--db", str(db),
               "--base-url", url, *FAST, *PAGING.get(spider, []),
               # every record written at once; the held page must not stop the others
               "-s", "ANNALS_BATCH_SIZE=1", "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=8"]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert mirror.held.wait(60), f"{spider} never asked for a second page"
        count, since = documents(db), time.monotonic()
        while time.monotonic() - since < 1.0:
            time.sleep(0.1)
            now = documents(db)
            if now != count:
                count, since = now, time.monotonic()
        assert proc.poll() is None, f"{spider} ended on its own"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    return documents(db)


@pytest.mark.parametrize("spider", list(LISTINGS))
def test_a_crawl_killed_after_the_first_page_is_repaired_by_the_next(
    spider, tmp_path, holding_mirror, references
):
    mirror, url = holding_mirror
    expected = references(spider)
    db = tmp_path / "annals.db"
    mirror.hold(LISTINGS[spider])
    try:
        kept = crawl_until_held_then_kill(db, url, spider, mirror)
    finally:
        mirror.hold(None)
        mirror.release.set()
    # The kill lost something: some of the listing was archived, not all of it.
    assert 0 < kept < len(expected[0]), (spider, kept, len(expected[0]))

    result = crawl(db, url, spider, *PAGING.get(spider, []))
    assert result.returncode == Exit.OK, result.stdout + result.stderr[-3000:]
    assert "walking the listings back to the beginning" in result.stderr
    assert steady_content(db) == expected
