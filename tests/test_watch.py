"""`annals watch` end to end: a real watch process against the local mirror on 127.0.0.1,
whose one port serves the sources' HTTP routes and Deribit's WebSocket channel
(crawler.mirror_push), into a real SQLite file, which the test reads as a user would."""

from __future__ import annotations

import json
import os
import shutil
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
from archive.normalize import utcnow
from archive.records import RawResponse
from crawler.mirror import Mirror, MirrorServer, Route
from crawler.mirror_push import DeribitChannel
from crawler.sources import deribit
from crawler.spiders.api import DeribitAnnouncementsSpider
from tests.helpers import FAST, FIXTURES, Hook, annals
from tests.hostile import Gate, Hanging

pytestmark = pytest.mark.e2e

DERIBIT_LIST = "/api/v2/public/get_announcements"
OKX_LIST = "/api/v5/support/announcements"
JSON = {"Content-Type": "application/json"}


class Watching:
    """`annals watch` in its own process, as systemd would start it; its log collected."""

    def __init__(self, db: Path, base_url: str, *args: str) -> None:
        env = {**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"}
        env.pop("ANNALS_DATABASE_URL", None)
        command = [sys.executable, "-m", "archive", "watch", *args, "--db", str(db)]
        self.process = subprocess.Popen(
            [*command, "--base-url", base_url, *FAST, "--log-level", "INFO"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.log: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line)

    def logged(self, text: str, times: int = 1) -> bool:
        return sum(text in line for line in list(self.log)) >= times

    def stop(self, signum: int) -> tuple[float, str, str]:
        """Send the signal; the seconds until the process ended, its output and log."""
        sent = time.monotonic()
        self.process.send_signal(signum)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        took = time.monotonic() - sent
        self._reader.join(5)
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        out = self.process.stdout.read()
        self.process.stdout.close()
        self.process.stderr.close()
        return took, out, "".join(self.log)


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.005)
    return value


def rows(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """A query on the SQLite file, read-only, as another program would; [] before it exists."""
    if not db.exists():
        return []
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()
    except sqlite3.OperationalError:  # not created yet
        return []


def archived(db: Path, source: str, external_id: str) -> bool:
    sql = "SELECT 1 FROM documents WHERE source = ? AND external_id = ?"
    return bool(rows(db, sql, source, external_id))


def runs(db: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    found = rows(db, "SELECT spider, status, counters FROM crawl_runs ORDER BY id")
    return {spider: (status, json.loads(counters or "{}")) for spider, status, counters in found}


def announcement(ident: int, title: str) -> dict[str, Any]:
    """A Deribit announcement object, published a moment ago."""
    return {
        "id": ident,
        "title": title,
        "body": f"<p>{title}.</p>",
        "publication_timestamp": ident,
        "important": False,
        "confirmation": False,
    }


def now_ms(offset: int = 0) -> int:
    return int(time.time() * 1000) - 1000 + offset


@pytest.fixture
def deribit_mirror() -> Iterator[tuple[Mirror, DeribitChannel, str]]:
    channel = DeribitChannel()
    mirror = Mirror(FIXTURES / "deribit", channels=[channel])
    with MirrorServer(mirror) as server:
        yield mirror, channel, server.url


def deribit_first_page(*newest: dict[str, Any]) -> Route:
    """Deribit's first list page with `newest` on top of the recorded ones."""
    recorded = json.loads((FIXTURES / "deribit" / "announcements_p1.json").read_bytes())
    recorded["result"] = [*newest, *recorded["result"]]
    body = json.dumps(recorded).encode()
    return Route("GET", DERIBIT_LIST, headers=JSON, content=body, query={"start_timestamp": None})


def test_a_pushed_deribit_announcement_is_archived_within_a_second_and_a_drop_is_caught_up(
    tmp_path, deribit_mirror, hook: Hook
):
    mirror, channel, url = deribit_mirror
    db = tmp_path / "annals.db"
    # A long interval: only the push and the catch-up poll can archive what follows.
    watch = Watching(
        db,
        url,
        "deribit_announcements",
        "--interval",
        "600",
        "--notify",
        hook.url,
        "-s",
        "ANNALS_NOTIFY_BACKOFF=0.05",
        "-s",
        "ANNALS_PUSH_HEARTBEAT=0.5",
        "-s",
        "ANNALS_PUSH_BACKOFF=0.2",
    )
    try:
        wait_for(lambda: channel.subscribed, 30, "the watch to subscribe")
        # The first poll archived the recorded list (its last page is the empty one).
        wait_for(lambda: archived(db, "deribit", "1781942417482"), 30, "the first poll")

        pushed = announcement(now_ms(), "Pushed: BTC-PERPETUAL funding change")
        sent = channel.publish(pushed)
        wait_for(lambda: archived(db, "deribit", str(pushed["id"])), 5, "the pushed item")
        assert time.time() - sent < 1.0  # from the server's send to the row being there

        # Heartbeats are answered as Deribit asks (public/test for each test_request).
        wait_for(lambda: channel.tests_answered >= 1, 5, "a public/test answer")

        # The connection drops; meanwhile an announcement appears on the list only.
        missed = announcement(now_ms(1), "Published while the watch was away")
        mirror.prepend(deribit_first_page(missed, pushed))
        channel.drop_all()
        wait_for(lambda: channel.connections >= 2 and channel.subscribed, 10, "a reconnect")
        wait_for(lambda: archived(db, "deribit", str(missed["id"])), 10, "the catch-up poll")

        # The path goes dead (nothing arrives, nothing closes): three heartbeats of
        # silence and the watch connects anew.
        channel.freeze()
        wait_for(lambda: channel.connections >= 3, 10, "a new connection after the silence")
        wait_for(lambda: channel.subscribed, 10, "the new subscription")
        after = announcement(now_ms(2), "Pushed on the new connection")
        channel.publish(after)
        wait_for(lambda: archived(db, "deribit", str(after["id"])), 5, "the push after it")
        # Stopped between polls: the first one and the three catch-ups are done.
        wait_for(lambda: watch.logged("round done", 4), 10, "the last catch-up poll")
    finally:
        took, out, err = watch.stop(signal.SIGTERM)

    assert took < 5, (took, err)
    # The push and the list give one document: the list's copy of the pushed item is
    # no new version.
    sql = (
        "SELECT d.url, count(v.id) FROM documents d JOIN versions v ON v.document_id = d.id "
        "WHERE d.external_id = ? GROUP BY d.id"
    )
    ((doc_url, versions),) = rows(db, sql, str(pushed["id"]))
    assert versions == 1
    assert doc_url == deribit.SOURCE.article_url.format(timestamp=pushed["publication_timestamp"])
    # One run for the whole watch, stopped between polls: finished, exit 0.
    assert watch.process.returncode == Exit.OK, err
    assert "deribit_announcements: finished" in out
    status, counters = runs(db)["deribit_announcements"]
    assert status == "finished"
    assert counters["watch/pushed"] == 2
    # Every connection after the first is a reconnect, counted: the drop and the silence
    # make two, and a loaded machine can miss a heartbeat of 0.5 s and make one more.
    assert counters["watch/reconnects"] == channel.connections - 1 >= 2
    # Alerts: one per new announcement young enough (the recorded list is months old),
    # pushed or polled, none twice though the list gave the pushed one again.
    assert sorted(hook.titles()) == sorted(a["title"] for a in (pushed, missed, after))
    assert counters["alerts_sent"] == 3
    assert counters["close_reason"] == "shutdown"
    # The pushed message is the snapshot of its version (reparse reads it again).
    ((snapshot_url, snapshot_status),) = rows(
        db,
        "SELECT s.url, s.status FROM versions v JOIN documents d ON d.id = v.document_id "
        "JOIN snapshots s ON s.id = v.snapshot_id WHERE d.external_id = ?",
        str(pushed["id"]),
    )
    assert (snapshot_url, snapshot_status) == (deribit.PUSH_URL, 101)


def test_an_item_added_to_a_first_list_page_is_archived_within_the_interval(tmp_path):
    folder = tmp_path / "okx"
    shutil.copytree(FIXTURES / "okx", folder)
    mirror = Mirror(folder)
    db = tmp_path / "annals.db"
    with MirrorServer(mirror) as server:
        watch = Watching(db, server.url, "okx_announcements", "--interval", "1")
        try:

            def first_pages() -> int:
                return sum(h.path == OKX_LIST and h.query.get("page") == "1" for h in mirror.hits)

            # The second round began: the first one walked the list and archived it.
            wait_for(lambda: first_pages() >= 2, 30, "a second poll")
            before = rows(db, "SELECT count(*) FROM documents")[0][0]
            page = folder / "announcements_p1.json"
            data = json.loads(page.read_bytes())
            slug = "okx-to-list-watched-coin-wtch-for-spot-trading"
            data["data"][0]["details"].insert(
                0,
                {
                    "annType": "announcements-new-listings",
                    "title": "OKX to list Watched Coin (WTCH) for spot trading",
                    "url": f"https://www.okx.com/help/{slug}",
                    "pTime": str(now_ms()),
                    "businessPTime": str(now_ms()),
                },
            )
            staged = folder / "p1.tmp"
            staged.write_text(json.dumps(data))
            staged.replace(page)  # whole, never half-written
            added = time.monotonic()
            wait_for(lambda: archived(db, "okx", slug), 10, "the new item")
            assert time.monotonic() - added < 1 + 1  # the interval, plus a second
            assert rows(db, "SELECT count(*) FROM documents")[0][0] == before + 1
            # The run is one row for the whole watch; `annals stats` sees it going.
            status, counters = runs(db)["okx_announcements"]
            assert status == "running"
            assert counters["watch/rounds"] >= 2
        finally:
            took, _, err = watch.stop(signal.SIGINT)

    assert took < 5, (took, err)
    assert watch.process.returncode in (Exit.OK, Exit.FAILED), err  # mid-round: interrupted
    status, counters = runs(db)["okx_announcements"]
    assert status in ("finished", "interrupted")
    assert counters["watch/rounds"] >= 2
    # Incremental: each later poll asked the first page only (nothing new past it).
    pages = [h.query.get("page") for h in mirror.hits if h.path == OKX_LIST]
    assert pages.count("2") <= 2  # the first round, and the one that found the new item


def test_sigterm_mid_poll_commits_what_was_received_and_records_interrupted(tmp_path):
    # The first page answers; the second hangs: the stop comes in the middle of a poll,
    # with the first page's records still in the pipeline's batch (written only by size,
    # 100, or at the stop).
    gate = Gate(0)
    mirror = Mirror(FIXTURES / "okx")
    mirror.prepend(Hanging("GET", OKX_LIST, headers=JSON, query={"page": "2"}, gate=gate))
    db = tmp_path / "annals.db"
    with MirrorServer(mirror) as server:
        watch = Watching(
            db, server.url, "okx_announcements", "--interval", "600",
            "-s", "ANNALS_WATCH_FLUSH_SECONDS=600",
        )  # fmt: skip
        try:
            wait_for(lambda: gate.free < 0, 30, "the second page's request")
            assert rows(db, "SELECT count(*) FROM documents") in ([], [(0,)])
            took, out, err = watch.stop(signal.SIGTERM)
        finally:
            gate.released.set()

    assert took < 5, (took, err)
    assert watch.process.returncode == Exit.FAILED, err  # README: interrupted is exit 1
    assert "okx_announcements: interrupted" in out
    first_page = json.loads((FIXTURES / "okx" / "announcements_p1.json").read_bytes())
    listed = len(first_page["data"][0]["details"])
    assert rows(db, "SELECT count(*) FROM documents WHERE source = 'okx'") == [(listed,)]
    status, counters = runs(db)["okx_announcements"]
    assert (status, counters["new_documents"], counters["watch/rounds"]) == (
        "interrupted",
        listed,
        1,
    )


def test_watch_refuses_an_interval_of_zero_and_unknown_spiders(tmp_path):
    db = str(tmp_path / "annals.db")
    result = annals("watch", "okx_announcements", "--interval", "0", "--db", db)
    assert result.returncode == Exit.USAGE
    assert "--interval" in result.stderr
    result = annals("watch", "nope", "--db", db)
    assert result.returncode == Exit.USAGE
    assert "unknown spider nope" in result.stderr


def test_a_pushed_announcement_is_the_record_the_list_gives():
    page = json.loads((FIXTURES / "deribit" / "announcements_p1.json").read_bytes())
    listed = deribit.SOURCE.parse_list(
        json.dumps(page).encode(), deribit.SOURCE.endpoint, "en"
    ).records[0]
    item = {**page["result"][0], "unread": 1, "action": "added"}
    message = {
        "jsonrpc": "2.0",
        "method": "subscription",
        "params": {"channel": "announcements", "data": item},
    }
    pushed = deribit.parse_push(json.dumps(message).encode())
    assert pushed is not None
    fields = ("identity", "url", "title", "body_text", "body_html", "published_at", "extra")
    assert {f: getattr(pushed, f) for f in fields} == {f: getattr(listed, f) for f in fields}
    # Its stored message reads again (`annals reparse`), by its WebSocket URL.
    raw = RawResponse(
        deribit.PUSH_URL, 101, "application/json", json.dumps(message).encode(), utcnow()
    )
    (again,) = DeribitAnnouncementsSpider.parse_snapshot(raw)
    assert (again.identity, again.title) == (listed.identity, listed.title)
    # Answers and heartbeats carry no announcement.
    assert deribit.parse_push(b'{"jsonrpc": "2.0", "id": 2, "result": ["announcements"]}') is None
