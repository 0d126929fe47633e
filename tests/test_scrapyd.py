"""Scrapyd: the project deploys as it is (`scrapyd-deploy`), and a crawl scheduled through
schedule.json fills the archive."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import FAST
from tests.test_crawl_gate import query, unblock

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call(url: str, data: dict[str, list[str]] | None = None) -> dict:
    body = urllib.parse.urlencode(data, doseq=True).encode() if data is not None else None
    with urllib.request.urlopen(url, data=body, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture
def scrapyd(tmp_path: Path) -> Iterator[str]:
    """A Scrapyd on 127.0.0.1 at a free port, with its eggs, logs and queue in tmp_path."""
    port = free_port()
    home = tmp_path / "scrapyd"
    home.mkdir()
    (home / "scrapyd.conf").write_text(
        "[scrapyd]\n"
        f"bind_address = 127.0.0.1\nhttp_port = {port}\n"
        f"eggs_dir = {home / 'eggs'}\nlogs_dir = {home / 'logs'}\ndbs_dir = {home / 'dbs'}\n"
        "items_dir =\npoll_interval = 0.5\nmax_proc = 2\n"
    )
    env = {**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    env.pop("ANNALS_DATABASE_URL", None)
    log = (home / "scrapyd.out").open("w")
    proc = subprocess.Popen([BIN / "scrapyd"], cwd=home, env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                call(url + "daemonstatus.json")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"scrapyd did not start: {(home / 'scrapyd.out').read_text()}")
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def test_deploy_to_scrapyd_and_schedule_a_crawl_that_fills_the_archive(
    tmp_path, scrapyd, gate_mirror
):
    mirror, mirror_url = gate_mirror
    unblock(mirror)
    deploy = subprocess.run(
        [BIN / "scrapyd-deploy", "node", "-p", "annals", "-v", "test"],
        cwd=ROOT, env={**os.environ, "SCRAPYD_URL": scrapyd},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    assert '"status": "ok"' in deploy.stdout
    spiders = call(scrapyd + "listspiders.json?project=annals")["spiders"]
    assert "gate_announcements" in spiders

    db = tmp_path / "annals.db"
    settings = [f"ANNALS_DATABASE_URL={db}", *(FAST[i + 1] for i in range(0, len(FAST), 2))]
    job = call(
        scrapyd + "schedule.json",
        {"project": ["annals"], "spider": ["gate_announcements"],
         "base_url": [mirror_url], "setting": settings},
    )["jobid"]  # fmt: skip
    deadline = time.monotonic() + 90
    while not any(
        j["id"] == job for j in call(scrapyd + "listjobs.json?project=annals")["finished"]
    ):
        assert time.monotonic() < deadline, "the scheduled crawl did not finish in 90 s"
        time.sleep(0.5)
    assert query(db, "SELECT spider, status FROM crawl_runs") == [
        ("gate_announcements", "finished")
    ]
    assert query(db, "SELECT count(*) > 10 FROM documents") == [(1,)]
