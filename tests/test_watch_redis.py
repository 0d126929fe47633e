"""`annals watch` with the shared frontier (ANNALS_REDIS_URL, crawler.frontier): a real
watch process whose requests go through Redis on 127.0.0.1, against the local mirror,
into a real SQLite file. Round after round is polled (scrapy-redis' duplicate filter
forgets each round's fingerprints, crawler.frontier_scheduler), and Gate's push still
archives at once and is completed from its article page through the frontier."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from crawler.mirror import Mirror, MirrorServer, Route
from crawler.mirror_push import GateChannel
from tests.helpers import FIXTURES
from tests.test_frontier import PREFIX, redis_url  # noqa: F401 - the fixture
from tests.test_watch import Watching, archived, runs, wait_for
from tests.test_watch_gate import LISTING, article, first_list_page, listed, update, versions

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

HUB = "/announcements"  # Gate's hub page: the first request of every round, not dont_filter


@pytest.fixture
def frontier_env(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> str:  # noqa: F811
    """The watch's environment names the frontier, as on a machine of a shared crawl."""
    monkeypatch.setenv("ANNALS_REDIS_URL", redis_url)
    monkeypatch.setenv("ANNALS_FRONTIER_KEY", PREFIX)
    return redis_url


def gate_mirror(*channels: GateChannel) -> Mirror:
    mirror = Mirror(FIXTURES / "gate", channels=list(channels))
    # The two articles the recorded mirror blocks on purpose are missing pages here.
    for blocked in ("51321", "51317"):
        mirror.prepend(Route("GET", f"/announcements/article/{blocked}", status=404))
    return mirror


def fingerprints(redis_url: str) -> int:  # noqa: F811
    """How many request fingerprints the watch's round holds in Redis."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        return sum(int(client.scard(key)) for key in client.scan_iter(f"{PREFIX}:*:dupefilter"))
    finally:
        client.close()


@pytest.fixture
def served() -> Iterator[tuple[Mirror, str]]:
    mirror = gate_mirror()  # no push channel: Gate is polled at the interval
    with MirrorServer(mirror) as server:
        yield mirror, server.url


def test_a_watch_on_the_redis_frontier_polls_round_after_round_with_one_rounds_fingerprints(
    tmp_path, served, frontier_env
):
    mirror, url = served
    db = tmp_path / "annals.db"
    new_id, new_title = 900011, "Gate Will List ROUND (ROUND) for Spot Trading"
    mirror.prepend(article(new_id, new_title))
    # The frontier's idle time, which ends a crawl worker, is shorter than the interval:
    # a watch is not done between its rounds, and does not say so.
    idle = ("-s", "ANNALS_IDLE_SECONDS=0.2")
    watch = Watching(db, url, "gate_announcements", "--interval", "2", *idle)
    try:
        peak = 0  # round 1's fingerprints: the list's pages and every article it fetched

        def first_round_done() -> bool:
            nonlocal peak
            peak = max(peak, fingerprints(frontier_env))
            return watch.logged("round done")

        wait_for(first_round_done, 60, "the first round")
        wait_for(lambda: watch.logged("round done", 3), 60, "a third round")
        # An announcement appears on the list: a later round finds and fetches it.
        mirror.prepend(first_list_page(listed(new_id, new_title)))
        wait_for(lambda: archived(db, "gate", str(new_id)), 30, "the new announcement")
        done = sum("round done" in line for line in watch.log)
        wait_for(lambda: watch.logged("round done", done + 2), 60, "two rounds more")
        later = fingerprints(frontier_env)
    finally:
        _, _, err = watch.stop(signal.SIGTERM)

    rounds = sum("round done" in line for line in watch.log)
    # Every round asked the hub page again: none was dropped as round 1's duplicate.
    hub_hits = sum(hit.path == HUB for hit in mirror.hits)
    assert hub_hits >= rounds >= 5
    # What round 1 asked is forgotten: the set holds one round's fingerprints, not all.
    assert later < peak
    status, counters = runs(db)["gate_announcements"]
    assert status == "finished", err
    assert counters["frontier"].startswith("gate_announcements#")  # through Redis
    assert counters["watch/rounds"] >= rounds
    assert counters["duplicates"] == 0
    assert "the frontier was empty" not in err
    ((_, title, body, _),) = versions(db, str(new_id))
    assert title == new_title
    assert len(body) > len(f"{new_title}.")  # its article page, not the list's brief


def test_a_gate_push_is_archived_and_completed_through_the_redis_frontier(tmp_path, frontier_env):
    channel = GateChannel()
    mirror = gate_mirror(channel)
    db = tmp_path / "annals.db"
    pushed_id, missed_id = 900021, 900022
    pushed_title = "Gate Will List FRONT (FRONT) for Spot Trading"
    missed_title = "Gate Will List AWAYR (AWAYR) for Spot Trading"
    mirror.prepend(article(pushed_id, pushed_title), article(missed_id, missed_title))
    with MirrorServer(mirror) as server:
        watch = Watching(
            db,
            server.url,
            "gate_announcements",
            "--interval",
            "600",  # only the push and the catch-up polls archive what follows
            "-s",
            "ANNALS_PUSH_HEARTBEAT=0.3",
            "-s",
            "ANNALS_PUSH_BACKOFF=0.2",
        )
        try:
            wait_for(lambda: channel.subscribed(LISTING), 60, "the subscription")
            wait_for(lambda: watch.logged("round done"), 60, "the first poll")
            channel.publish(LISTING, update(pushed_id, pushed_title))
            wait_for(lambda: archived(db, "gate", str(pushed_id)), 30, "the pushed item")
            wait_for(lambda: len(versions(db, str(pushed_id))) >= 2, 30, "the completion")
            # The channel drops; meanwhile the list gets one more: the catch-up poll, a
            # second round on the frontier, archives it.
            mirror.prepend(first_list_page(listed(missed_id, missed_title)))
            channel.drop_all()
            wait_for(lambda: channel.connections >= 2, 30, "a reconnect")
            wait_for(lambda: archived(db, "gate", str(missed_id)), 30, "the catch-up poll")
            wait_for(lambda: watch.logged("round done", 2), 30, "the catch-up poll's end")
        finally:
            _, _, err = watch.stop(signal.SIGTERM)

    (_, _, body1, extra1), (_, title2, body2, extra2) = versions(db, str(pushed_id))
    assert extra1 == {"pushed": LISTING}
    assert (title2, extra2.get("completes_push")) == (pushed_title, True)
    assert len(body2) > len(body1)
    ((_, missed, _, _),) = versions(db, str(missed_id))
    assert missed == missed_title
    assert sum(hit.path == HUB for hit in mirror.hits) >= 2  # both rounds asked the hub
    status, counters = runs(db)["gate_announcements"]
    assert status == "finished", err
    assert counters["frontier"].startswith("gate_announcements#")
    assert (counters["watch/pushed"], counters["watch/completions"]) == (1, 1)
    assert counters["duplicates"] == 0
