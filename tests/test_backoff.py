"""Backing off the host: a 429, 503 or block pauses every request to it (crawler.backoff),
measured at a real server on 127.0.0.1 that says "come back later" for ten seconds."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from itertools import pairwise

import pytest

from archive.cli import Exit
from crawler.cli import project_settings
from crawler.mirror import Mirror, MirrorServer
from tests.helpers import FAST, FIXTURES, annals
from tests.hostile import Refusing, Window, article_paths, retried, start_crawl, wait_for
from tests.test_crawl_gate import article_ids_with_pages, query, unblock

pytestmark = pytest.mark.e2e

WINDOW = 10.0
ARTICLES = "/announcements/article/"
BINANCE_DETAIL = "/bapi/composite/v1/public/cms/article/detail/query"


@pytest.mark.parametrize(
    ("status", "headers", "settings"),
    [
        pytest.param(429, {"Retry-After": "10"}, [], id="429-retry-after"),
        pytest.param(503, {"Retry-After": "10"}, [], id="503-retry-after"),
        # No Retry-After: the backoff (4 s, then 8 s, jittered) probes with the retry.
        pytest.param(
            429, {}, ["-s", "ANNALS_BLOCK_BACKOFF=4", "-s", "ANNALS_BLOCK_RETRIES=4"], id="429"
        ),
    ],
)
def test_a_host_that_says_come_back_later_gets_only_the_retry_until_then(
    tmp_path, gate_mirror, mirror_dir, status, headers, settings
):
    mirror, url = gate_mirror
    unblock(mirror)
    window = Window(WINDOW)
    mirror.prepend(
        *(
            Refusing("GET", path, status=status, headers=headers, window=window)
            for path in article_paths(mirror, ARTICLES)
        )
    )
    db = tmp_path / "annals.db"
    # The production delay between requests (a local mirror needs none, but the pace
    # after a pause is what is measured); AutoThrottle stays off to keep it short.
    delay = project_settings().getfloat("DOWNLOAD_DELAY")
    result = annals("crawl", "gate_announcements", "--db", str(db), "--base-url", url, *FAST,
                    "-s", f"DOWNLOAD_DELAY={delay}", *settings)  # fmt: skip

    assert result.returncode == Exit.OK, result.stdout + result.stderr
    archived = query(
        db,
        "SELECT d.external_id FROM documents d JOIN versions v ON v.document_id = d.id "
        "WHERE json_extract(v.extra, '$.listing_only') IS NULL",
    )
    assert {row[0] for row in archived} == article_ids_with_pages(mirror_dir) - {"51321", "51317"}
    assert window.opened is not None
    # What was already on its way when the window opened may still arrive; after that,
    # only retries of what was refused, and with Retry-After not even those.
    inside = retried(mirror, status, window.opened + 0.5, window.opened + WINDOW - 0.5)
    assert [hit.path for hit, retry in inside if not retry] == []
    if headers:
        assert inside == []
    # When the window is over, the first request is a retry; nothing was refused after.
    after = retried(mirror, status, window.opened + WINDOW - 0.5, float("inf"))
    assert after[0][1], after[0]
    assert all(hit.status != status for hit in mirror.hits if hit.at > window.opened + WINDOW)


@pytest.fixture
def binance_mirror() -> Iterator[tuple[Mirror, str]]:
    mirror = Mirror(FIXTURES / "binance")
    with MirrorServer(mirror) as server:
        yield mirror, server.url


def test_binance_style_paced_spider_sends_nothing_new_in_the_window_then_keeps_its_pace(
    tmp_path, binance_mirror
):
    """Binance's documented one request a second: a 429 with Retry-After holds it, the
    retry goes first when the wait is over, and the pace after it is the documented one."""
    mirror, url = binance_mirror
    window = Window(WINDOW)
    mirror.prepend(
        Refusing("GET", BINANCE_DETAIL, status=429, headers={"Retry-After": "5"}, window=window)
    )
    db = tmp_path / "annals.db"
    # The spider's own DOWNLOAD_DELAY (1 s) and concurrency (1) stay: no FAST here.
    process = start_crawl(db, url, "binance_announcements", "-s", "AUTOTHROTTLE_ENABLED=False")
    try:
        wait_for(
            lambda: (
                window.opened is not None
                and len([h for h in mirror.hits if h.at > window.opened + WINDOW]) >= 4
            ),
            90,
            "four requests after the window",
        )
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
    assert window.opened is not None
    inside = retried(mirror, 429, window.opened + 0.5, window.opened + WINDOW - 0.5)
    # Retry-After: 5 in a ten-second window: the one retry at five seconds, nothing else.
    assert [(hit.path, retry) for hit, retry in inside] == [(BINANCE_DETAIL, True)]
    after = [hit for hit, _ in retried(mirror, 429, window.opened + WINDOW - 0.5, float("inf"))]
    assert after[0].status == 200
    gaps = [b.at - a.at for a, b in pairwise(after)]
    assert gaps, after
    assert min(gaps) >= 0.95, gaps  # the documented second between requests
