"""Stopping a crawl (crawler.stopping): SIGINT/SIGTERM end `annals crawl` within seconds,
whatever the host does, with the run recorded "interrupted" and what was fetched kept;
and a crawl listens on no port."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from archive.cli import Exit
from crawler.mirror import Mirror, Route
from tests.helpers import FAST
from tests.hostile import Gate, Hanging, article_paths, start_crawl, wait_for
from tests.test_crawl_gate import query, unblock

pytestmark = pytest.mark.e2e

ARTICLES = "/announcements/article/"
FREE = 4  # article pages served before the host turns hostile


def hostile_articles(mirror: Mirror, route: type[Route], **fields: object) -> None:
    for path in article_paths(mirror, ARTICLES):
        mirror.prepend(route("GET", path, **fields))  # type: ignore[arg-type]


def article_hits(mirror: Mirror) -> list[float]:
    return [h.at for h in mirror.hits if h.path.startswith(ARTICLES)]


def run_row(db: Path) -> tuple[str, dict]:
    ((status, counters),) = query(db, "SELECT status, counters FROM crawl_runs")
    return status, json.loads(counters or "{}")


def signal_and_time(
    process: subprocess.Popen[str], signals: list[tuple[float, int]]
) -> tuple[float, float, str, str]:
    """Send each signal after its delay; the moment of the first, the seconds until the
    process ended, and its output. A process still running after 30 s is killed."""
    sent = None
    for delay, signum in signals:
        time.sleep(delay)
        process.send_signal(signum)
        sent = sent or time.monotonic()
    assert sent is not None
    try:
        out, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
    return sent, time.monotonic() - sent, out, err


@pytest.fixture
def hanging(gate_mirror) -> tuple[Mirror, str, Gate]:
    mirror, url = gate_mirror
    unblock(mirror)
    gate = Gate(FREE)
    hostile_articles(mirror, Hanging, gate=gate)
    try:
        yield mirror, url, gate
    finally:
        gate.released.set()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_the_host_hangs_stops_within_seconds_and_records_interrupted(
    tmp_path, hanging, signum
):
    mirror, url, gate = hanging
    db = tmp_path / "annals.db"
    process = start_crawl(db, url, "gate_announcements", *FAST)
    wait_for(lambda: gate.free < 0, 60, "a request to the hanging host")
    sent, took, out, err = signal_and_time(process, [(0.5, signum)])

    # Well under the 30 s download timeout that would end the hang on its own; the
    # bound leaves room for a loaded machine (the suite runs on every core).
    assert took < 12, (took, err)
    assert process.returncode == Exit.FAILED, err  # README: interrupted is exit 1
    assert "gate_announcements: interrupted" in out
    status, counters = run_row(db)
    assert status == "interrupted"
    # What was fetched before is archived: the batch in the pipeline was written.
    assert query(db, "SELECT count(*) FROM documents WHERE url LIKE '%/article/%'") != [(0,)]
    assert counters["new_documents"] >= 1
    assert [at for at in article_hits(mirror) if at > sent] == []


def test_a_signal_during_a_long_retry_after_stops_within_seconds(tmp_path, gate_mirror):
    mirror, url = gate_mirror
    unblock(mirror)
    mirror.prepend(
        *(
            Route("GET", path, status=429, headers={"Retry-After": "600"})
            for path in article_paths(mirror, ARTICLES)
        )
    )
    db = tmp_path / "annals.db"
    process = start_crawl(db, url, "gate_announcements", *FAST)
    wait_for(lambda: any(h.status == 429 for h in mirror.hits), 60, "the first 429")
    sent, took, _, err = signal_and_time(process, [(1.0, signal.SIGTERM)])

    assert took < 12, (took, err)  # the Retry-After was 600 s
    assert process.returncode == Exit.FAILED, err
    assert run_row(db)[0] == "interrupted"
    assert [at for at in article_hits(mirror) if at > sent] == []


def test_a_second_signal_stops_at_once_and_still_records_interrupted(tmp_path, hanging):
    mirror, url, gate = hanging
    db = tmp_path / "annals.db"
    # A grace long enough that only the second signal can end the crawl this soon.
    process = start_crawl(db, url, "gate_announcements", *FAST, "-s", "ANNALS_STOP_GRACE=60")
    wait_for(lambda: gate.free < 0, 60, "a request to the hanging host")
    sent, took, out, err = signal_and_time(process, [(0.5, signal.SIGINT), (0.5, signal.SIGINT)])

    # At once: the grace of 60 s, which the first signal began, is not waited for.
    assert took < 10, (took, err)
    assert process.returncode == Exit.FAILED, err
    assert "gate_announcements: interrupted" in out
    status, counters = run_row(db)
    assert status == "interrupted"
    assert counters["new_documents"] >= 1
    assert [at for at in article_hits(mirror) if at > sent] == []


def _listening_inodes(pid: int) -> set[str]:
    """The socket inodes of `pid` that listen on TCP (IPv4 or IPv6)."""
    fds = Path(f"/proc/{pid}/fd")
    sockets = set()
    for fd in fds.iterdir():
        try:
            target = fd.readlink().as_posix()
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            sockets.add(target[len("socket:[") : -1])
    listening = set()
    for table in ("tcp", "tcp6"):
        lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        for line in lines:
            fields = line.split()
            if fields[3] == "0A":  # TCP_LISTEN
                listening.add(fields[9])
    return sockets & listening


@pytest.mark.skipif(not Path("/proc/self/net/tcp").exists(), reason="needs Linux /proc")
def test_a_crawl_listens_on_no_port(tmp_path, hanging):
    """No telnet console, no remote-control server: nothing to connect to."""
    _, url, gate = hanging
    process = start_crawl(tmp_path / "annals.db", url, "gate_announcements", *FAST)
    try:
        wait_for(lambda: gate.free < 0, 60, "the crawl to be under way")
        time.sleep(0.5)  # Scrapy's extensions listen at engine start, long before
        assert process.poll() is None
        assert _listening_inodes(process.pid) == set()
    finally:
        process.kill()
        process.communicate()
