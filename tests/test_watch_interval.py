"""`annals watch` intervals: one for every source, another for some (`--interval
SPIDER=SECONDS`, ANNALS_WATCH_INTERVALS), never faster than a source's documented limit,
and the start line that says per spider how it is watched."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from archive.cli import Exit
from crawler.cli import _poll_plan, project_settings, project_spiders, watch_lines
from crawler.mirror import Mirror, MirrorServer
from crawler.push import CHANNELS, PushClient
from crawler.sources import bitfinex, bybit, htx, okx
from crawler.watch import PollInterval, seconds, spider_intervals
from tests.helpers import FIXTURES, annals
from tests.test_watch import Watching, runs, wait_for

KNOWN = project_spiders(project_settings())


def plan(*spiders: str, every: float = 30.0, **some: float) -> dict[str, PollInterval]:
    """The intervals `annals watch` resolves for these spiders, with the project's settings."""
    return _poll_plan(KNOWN, list(spiders), {}, project_settings(), every, some)


# --- resolution -------------------------------------------------------------------------


def test_an_interval_below_what_a_round_takes_at_the_source_limit_is_raised():
    # Bitfinex's documented limit is one request every 6 s: a 2 s poll cannot be had.
    (poll,) = plan(bitfinex.SOURCE.spider, every=2).values()
    assert poll.used == bitfinex.SOURCE.download_delay == poll.delay
    assert (
        poll.why() == f"raised from 2s: 1 list request a round, at most one every {poll.delay:g}s"
    )
    # HTX has no unfiltered list: a round asks the first page of every category.
    (poll,) = plan(htx.SOURCE.spider, every=1).values()
    assert poll.requests == len(htx.SOURCE.categories)
    assert poll.used == len(htx.SOURCE.categories) * htx.SOURCE.download_delay


def test_a_spider_interval_overrides_the_interval_of_every_other():
    polls = plan(okx.SOURCE.spider, bybit.SOURCE.spider, every=30, okx_announcements=5)
    assert polls[okx.SOURCE.spider].used == 5
    assert polls[bybit.SOURCE.spider].used == 30
    assert polls[bybit.SOURCE.spider].why() == ""  # as asked: nothing to explain


def test_intervals_that_are_not_seconds_above_zero_are_refused():
    assert seconds("2.5", "--interval") == 2.5
    for bad in ("0", "-3", "soon", "nan", "inf", None):
        with pytest.raises(ValueError, match="--interval takes a number of seconds"):
            seconds(bad, "--interval")
    with pytest.raises(ValueError, match="unknown spider okx; known: "):
        spider_intervals({"okx": 10}, KNOWN)
    assert spider_intervals({"okx_announcements": "10"}, KNOWN) == {"okx_announcements": 10.0}


class KeyedChannel(PushClient):
    url = "wss://example.invalid/ws"
    keys = ("ANNALS_TEST_INTERVAL_KEY", "ANNALS_TEST_INTERVAL_SECRET")


def test_the_start_line_says_push_or_polled_and_which_keys_are_missing(monkeypatch):
    monkeypatch.setitem(CHANNELS, okx.SOURCE.spider, KeyedChannel)
    monkeypatch.delenv("ANNALS_TEST_INTERVAL_KEY", raising=False)
    monkeypatch.setenv("ANNALS_TEST_INTERVAL_SECRET", "s")
    polls = plan(okx.SOURCE.spider, bitfinex.SOURCE.spider, "deribit_announcements", every=2)
    lines = dict(line.split(None, 1) for line in watch_lines(polls))
    assert lines[okx.SOURCE.spider] == "polled every 2s (keys not set: ANNALS_TEST_INTERVAL_KEY)"
    assert lines["deribit_announcements"] == "push (polled every 2s while its channel is down)"
    every = f"{bitfinex.SOURCE.download_delay:g}s"
    assert lines[bitfinex.SOURCE.spider].startswith(f"polled every {every} (raised from 2s")
    monkeypatch.setenv("ANNALS_TEST_INTERVAL_KEY", "k")
    lines = dict(line.split(None, 1) for line in watch_lines(polls))
    assert lines[okx.SOURCE.spider].startswith("push (polled every 2s")


# --- the command ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--interval", "okx_announcements=-1"], "--interval okx_announcements takes a number"),
        (["--interval", "okx_announcements=soon"], "--interval okx_announcements takes a number"),
        (["--interval", "nope=5"], "unknown spider nope"),
        (["--interval", "-2"], "--interval takes a number of seconds above 0"),
        (["-s", 'ANNALS_WATCH_INTERVALS={"okx_announcements": "x"}'], "takes a number"),
        (["-s", 'ANNALS_WATCH_INTERVALS={"okx": 3}'], "unknown spider okx"),
        (["-s", "ANNALS_WATCH_INTERVALS=okx:3"], "ANNALS_WATCH_INTERVALS"),
    ],
)
def test_bad_intervals_are_a_usage_error_and_nothing_starts(tmp_path, args, message):
    db = tmp_path / "annals.db"
    result = annals("watch", "okx_announcements", *args, "--db", str(db))
    assert result.returncode == Exit.USAGE, result.stderr
    assert message in result.stderr
    assert "watching" not in result.stderr
    assert not db.exists()


def first_pages(mirror: Mirror, url: str) -> list[float]:
    """When the mirror was asked the first list page at `url` (its path and query)."""
    parts = urlsplit(url)
    query = dict(p.split("=", 1) for p in parts.query.split("&"))
    return [h.at for h in list(mirror.hits) if h.path == parts.path and h.query == query]


def test_two_spiders_are_polled_each_at_its_own_interval(tmp_path: Path):
    mirror = Mirror(FIXTURES / "okx", FIXTURES / "bybit")
    db = tmp_path / "annals.db"
    okx_first, bybit_first = okx.SOURCE.list_url(1), bybit.SOURCE.list_url(1)
    with MirrorServer(mirror) as server:
        watch = Watching(
            db, server.url, "okx_announcements", "bybit_announcements",
            "--interval", "4", "--interval", "okx_announcements=1",
        )  # fmt: skip
        try:
            wait_for(lambda: len(first_pages(mirror, bybit_first)) >= 3, 60, "bybit's third poll")
            okx_polls = first_pages(mirror, okx_first)
            bybit_polls = first_pages(mirror, bybit_first)
        finally:
            _, _, err = watch.stop(signal.SIGTERM)

    assert "okx_announcements    polled every 1s" in err
    assert "bybit_announcements  polled every 4s" in err
    # Never sooner than the interval (a request may leave a little after its round began).
    gaps = {
        "okx": [b - a for a, b in itertools.pairwise(okx_polls)],
        "bybit": [b - a for a, b in itertools.pairwise(bybit_polls)],
    }
    assert min(gaps["bybit"]) > 4 - 0.5, gaps
    assert min(gaps["okx"]) > 1 - 0.5, gaps
    # In the time bybit was polled three times, okx was polled far more often.
    assert len(okx_polls) >= 2 * len(bybit_polls), gaps
    status = {name: status for name, (status, _) in runs(db).items()}
    assert set(status) == {"okx_announcements", "bybit_announcements"}


def test_the_start_line_names_the_interval_a_source_limit_imposes(tmp_path):
    # The source's own DOWNLOAD_DELAY (no -s DOWNLOAD_DELAY=0 here): Bitfinex's.
    mirror = Mirror(FIXTURES / "bitfinex")
    db = tmp_path / "annals.db"
    env = {**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    command = [sys.executable, "-m", "archive", "watch", "bitfinex_announcements"]
    with MirrorServer(mirror) as server:
        process = subprocess.Popen(
            [*command, "--interval", "2", "--db", str(db), "--base-url", server.url],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert process.stderr is not None
        try:
            lines = [process.stderr.readline() for _ in range(2)]
        finally:
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=30)
    delay = bitfinex.SOURCE.download_delay
    assert lines[0].startswith("watching into ")
    assert lines[1].split() == [
        "bitfinex_announcements", "polled", "every", f"{delay:g}s", "(raised", "from", "2s:",
        "1", "list", "request", "a", "round,", "at", "most", "one", "every", f"{delay:g}s)",
    ]  # fmt: skip
