"""The shared frontier: several worker processes crawl one source into one PostgreSQL
archive through Redis (scrapy-redis), each URL fetched once; a killed worker's loss is
made good by the next round."""

from __future__ import annotations

import os
import pickle
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from scrapy.utils.request import request_from_dict

from archive.db import open_archive, resolve_url
from archive.records import Identity, RawResponse
from archive.store import Known
from crawler.mirror import Mirror, MirrorServer
from crawler.sources.gate import ListItem
from crawler.spiders.gate import GateAnnouncementsSpider
from crawler.synthetic import generate
from tests.helpers import PostgresServer, annals_crawler, crawl, rows
from tests.test_postgres import content

REDIS = os.environ.get("ANNALS_TEST_REDIS", "redis://127.0.0.1:6379/15")
# Slow enough that a crawl lasts longer than a waiting worker's 5-second look at the
# frontier (Scrapy's engine heartbeat), so both workers get work.
WORKER = ["-s", "DOWNLOAD_DELAY=0.05", "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=1",
          "-s", "AUTOTHROTTLE_ENABLED=False", "-s", "ANNALS_BLOCK_BACKOFF=0.05"]  # fmt: skip
# The round's only worker: no delay (the last setting of a name wins).
ALONE = ["-s", "DOWNLOAD_DELAY=0"]
ARTICLES = 150


# This session's frontier keys: another test run on the same Redis never meets them.
PREFIX = f"annals-test-{os.getpid()}-{secrets.token_hex(3)}"


@pytest.fixture
def redis_url() -> Iterator[str]:
    import redis

    client = redis.Redis.from_url(REDIS, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        pytest.skip(
            f"NO REDIS at {REDIS} ({exc}): the shared-frontier tests are SKIPPED "
            "(start it, or set ANNALS_TEST_REDIS)"
        )

    def clean() -> None:
        for key in client.scan_iter(f"{PREFIX}:*"):
            client.delete(key)

    clean()
    try:
        yield REDIS
    finally:
        clean()
        client.close()


@pytest.fixture
def synthetic() -> Iterator[tuple[Mirror, str]]:
    routes, _ = generate(ARTICLES)
    mirror = Mirror(routes=routes)
    with MirrorServer(mirror) as server:
        yield mirror, server.url


def worker(pg: str, url: str, redis_url: str, *, alone: bool = False) -> subprocess.Popen[str]:
    """`annals crawl` as a worker of the shared frontier, in its own process. `alone`: the
    round's only worker, which need neither crawl slowly nor wait for another's requests."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning",
           "ANNALS_REDIS_URL": redis_url, "ANNALS_IDLE_SECONDS": "1" if alone else "6",
           "ANNALS_FRONTIER_KEY": PREFIX}  # fmt: skip
    env.pop("ANNALS_DATABASE_URL", None)
    command = [sys.executable, "-m", "archive", "crawl", "gate_announcements", "--db", pg,
               "--base-url", url, *WORKER, *(ALONE if alone else [])]  # fmt: skip
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def fetched(mirror: Mirror) -> Counter[tuple[str, str, str]]:
    """How often each request (method, path, body) reached the mirror, robots.txt aside."""
    return Counter(
        (hit.method, hit.path, repr(sorted(hit.body.items())))
        for hit in mirror.hits
        if hit.path != "/robots.txt"
    )


def runs(pg: str) -> list[tuple]:
    engine = open_archive(pg, readonly=True)
    try:
        return rows(
            engine,
            "SELECT status, counters ->> 'frontier', (counters ->> 'requests')::int "
            "FROM crawl_runs ORDER BY id",
        )
    finally:
        engine.dispose()


def reference(tmp_path: Path, mirror: Mirror, url: str) -> Counter[tuple[str, str, str]]:
    """One process, no frontier: what it fetches and archives is the yardstick."""
    db = tmp_path / "reference.db"
    result = crawl(db, url, "gate_announcements")
    assert result.returncode == 0, result.stderr
    once = fetched(mirror)
    mirror.hits.clear()
    return once


def test_requests_and_their_callback_arguments_survive_redis() -> None:
    """scrapy-redis pickles Request.to_dict(): callbacks are spider methods, and Gate's
    cb_kwargs (ListItem, Known, RawResponse dataclasses) must come back equal."""
    spider = GateAnnouncementsSpider.from_crawler(
        annals_crawler(GateAnnouncementsSpider), base_url="http://127.0.0.1:1"
    )
    now = datetime(2026, 11, 24, tzinfo=UTC)
    item = ListItem("51322", "Title", "https://www.gate.com/announcements/article/51322", 38,
                    now, now, ("SPCX",), 5, "brief", False, "en")  # fmt: skip
    known = Known(now, now, now, None, "Title", {"views": 5})
    listing = RawResponse("https://www.gate.com/announcements", 200, "text/html", b"<html/>", now)
    key = Identity("gate", "announcement", "51322", "en")
    requests = [
        spider.article(key, item, known, listing),
        spider.list_page(2, "en"),
    ]
    for request in requests:
        back = request_from_dict(pickle.loads(pickle.dumps(request.to_dict(spider=spider))),
                                 spider=spider)  # fmt: skip
        assert back.callback == request.callback
        assert back.errback == request.errback
        assert back.cb_kwargs == request.cb_kwargs
        assert (back.method, back.url, back.body) == (request.method, request.url, request.body)
        assert back.meta == request.meta


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.redis
def test_two_workers_fetch_each_url_once_and_archive_what_one_process_does(
    tmp_path, synthetic, redis_url, pg_server: PostgresServer
):
    mirror, url = synthetic
    once = reference(tmp_path, mirror, url)
    pg = pg_server.archive()
    procs = [worker(pg, url, redis_url) for _ in range(2)]
    outputs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outputs]

    together = fetched(mirror)
    assert set(together.values()) == {1}  # nothing fetched twice, by either worker
    assert together == once  # and everything one process fetches
    assert sum(h.path == "/robots.txt" for h in mirror.hits) <= 2  # once per worker
    assert content(pg) == content(resolve_url(str(tmp_path / "reference.db")))

    worker_runs = runs(pg)
    assert [status for status, _, _ in worker_runs] == ["finished", "finished"]
    assert len({frontier for _, frontier, _ in worker_runs}) == 1  # one round
    assert all(requests > 0 for _, _, requests in worker_runs)  # both took part
    assert sum(requests for _, _, requests in worker_runs) == len(mirror.hits)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.redis
def test_a_worker_killed_mid_crawl_loses_nothing_once_the_next_round_ran(
    tmp_path, synthetic, redis_url, pg_server: PostgresServer
):
    mirror, url = synthetic
    reference(tmp_path, mirror, url)
    pg = pg_server.archive()
    victim, survivor = worker(pg, url, redis_url), worker(pg, url, redis_url)
    deadline = time.monotonic() + 60
    while len(mirror.hits) < 60 and time.monotonic() < deadline:
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    _, err = survivor.communicate(timeout=240)
    assert survivor.returncode == 0, err[-2000:]
    statuses = sorted(status for status, _, _ in runs(pg))
    assert statuses == ["finished", "running"]  # the victim never said how it ended

    # A worker started afterwards opens the next round, marks the dead run and walks the
    # listings back far enough to fetch what died with the victim.
    restarted = worker(pg, url, redis_url, alone=True)
    _, err = restarted.communicate(timeout=240)
    assert restarted.returncode == 0, err[-2000:]
    assert "did not finish" in err
    got, want = content(pg), content(resolve_url(str(tmp_path / "reference.db")))
    missing = sorted(set(want[0]) - set(got[0]))
    extra = sorted(set(got[0]) - set(want[0]))
    assert (missing, extra) == ([], []), err[-3000:]
    assert got == want
    final = runs(pg)
    assert sorted(status for status, _, _ in final) == ["finished", "finished", "interrupted"]
    assert len({frontier for _, frontier, _ in final}) == 2  # two rounds


@pytest.mark.postgres
@pytest.mark.redis
def test_the_seeder_of_the_next_round_repairs_what_a_dead_round_left_out(
    tmp_path, synthetic, redis_url, pg_server: PostgresServer
):
    """Made deterministic: a round whose only worker died after archiving the first and
    third list pages' articles but not the second's. The next round's seeder must walk
    past the first page (all known) to find them, not stop there."""
    mirror, url = synthetic
    reference(tmp_path, mirror, url)
    pg = pg_server.archive()
    first = worker(pg, url, redis_url, alone=True)
    _, err = first.communicate(timeout=240)
    assert first.returncode == 0, err[-2000:]
    engine = open_archive(pg)
    lost = [str(200_015 + k) for k in range(15)]  # the list endpoint's second page
    with engine.begin() as conn:
        ids = [
            i
            for (i,) in conn.exec_driver_sql(
                "SELECT id FROM documents WHERE external_id = ANY(%(ids)s)", {"ids": lost}
            )
        ]
        conn.exec_driver_sql("DELETE FROM links WHERE version_id IN "
                             "(SELECT id FROM versions WHERE document_id = ANY(%(ids)s))", {"ids": ids})  # fmt: skip
        conn.exec_driver_sql("DELETE FROM versions WHERE document_id = ANY(%(ids)s)", {"ids": ids})
        conn.exec_driver_sql("DELETE FROM documents WHERE id = ANY(%(ids)s)", {"ids": ids})
        conn.exec_driver_sql("UPDATE crawl_runs SET status = 'running'")  # it never said
    engine.dispose()

    mirror.hits.clear()
    second = worker(pg, url, redis_url, alone=True)
    _, err = second.communicate(timeout=240)
    assert second.returncode == 0, err[-2000:]
    assert "did not finish" in err
    assert content(pg) == content(resolve_url(str(tmp_path / "reference.db")))
    refetched = {h.path.rsplit("/", 1)[1] for h in mirror.hits if "/article/" in h.path}
    assert refetched == set(lost)  # what was missing, and nothing else
