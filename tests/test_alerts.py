"""Alerts through Apprise: `annals crawl --notify json://127.0.0.1:PORT/hook` against the
OKX and KuCoin mirrors, delivered to a real HTTP endpoint on 127.0.0.1.

Private copies of the mirrors have their newest items dated minutes ago (the recorded
ones are months old, older than any maximum age): what is recent alerts once, the rest
never, and a second crawl (a restart) sends nothing again.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from archive.alerts import Filters, Target, claim, record
from archive.cli import Exit
from archive.db import make_engine, resolve_url, upgrade
from archive.normalize import utcnow
from archive.store import Store
from crawler.mirror import Mirror, MirrorServer
from tests.helpers import FIXTURES, alert_field, annals, crawl
from tests.test_crawl_api import mirror_items
from tests.test_crawl_gate import query

pytestmark = pytest.mark.e2e

SPIDERS = ("okx_announcements", "kucoin_announcements")
FAST_ALERTS = ("-s", "ANNALS_NOTIFY_BACKOFF=0.05", "-s", "ANNALS_NOTIFY_ATTEMPTS=3")
RECENT = 8  # items of each first page dated minutes ago


# --- the endpoint -------------------------------------------------------------------------


# --- the mirrors, their newest items made recent ------------------------------------------


def _items(exchange: str, data: dict[str, Any]) -> list[dict[str, Any]]:
    return data["data"][0]["details"] if exchange == "okx" else data["data"]["items"]


TIME = {"okx": "pTime", "kucoin": "cTime"}
TITLE = {"okx": "title", "kucoin": "annTitle"}


def make_recent(folder: Path, exchange: str, count: int = RECENT) -> list[str]:
    """Date the first `count` items of the first list page 1 to `count` minutes ago (in
    their order); return their titles."""
    path = folder / "announcements_p1.json"
    data = json.loads(path.read_text())
    now_ms = int(utcnow().timestamp() * 1000)
    items = _items(exchange, data)[:count]
    for n, item in enumerate(items, start=1):
        value = now_ms - n * 60_000
        item[TIME[exchange]] = str(value) if exchange == "okx" else value
    path.write_text(json.dumps(data))
    return [item[TITLE[exchange]] for item in items]


def retitle(folder: Path, exchange: str, index: int, title: str) -> None:
    path = folder / "announcements_p1.json"
    data = json.loads(path.read_text())
    _items(exchange, data)[index][TITLE[exchange]] = title
    path.write_text(json.dumps(data))


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for exchange in ("okx", "kucoin"):
        out[exchange] = tmp_path / "mirror" / exchange
        shutil.copytree(FIXTURES / exchange, out[exchange])
    return out


@pytest.fixture
def mirror_url(dirs: dict[str, Path]) -> Iterator[str]:
    with MirrorServer(Mirror(*dirs.values())) as server:
        yield server.url


def alert_rows(db: Path) -> list[tuple[Any, ...]]:
    return query(db, "SELECT document_id, version, status, attempts FROM alerts ORDER BY id")


def run_counters(db: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    rows = query(db, "SELECT spider, status, counters FROM crawl_runs ORDER BY id")
    return {spider: (status, json.loads(counters)) for spider, status, counters in rows}


# --- tests --------------------------------------------------------------------------------


def test_one_alert_per_recent_new_document_none_for_old_ones_none_twice(
    tmp_path, dirs, mirror_url, hook
):
    recent = make_recent(dirs["okx"], "okx")
    db = tmp_path / "annals.db"
    first = crawl(db, mirror_url, "okx_announcements", "--notify", hook.url, *FAST_ALERTS)
    assert first.returncode == Exit.OK, first.stdout + first.stderr
    # Every item of the mirror is archived; only the recent ones alerted, once each.
    assert query(db, "SELECT count(*) FROM documents")[0][0] > RECENT
    assert sorted(hook.titles()) == sorted(recent)
    assert f"{RECENT} alerts sent, 0 alerts failed" in first.stdout
    status, counters = run_counters(db)["okx_announcements"]
    assert (status, counters["alerts_sent"], counters["alerts_failed"]) == ("finished", RECENT, 0)
    rows = alert_rows(db)
    assert len(rows) == RECENT
    assert {(version, st, attempts) for _, version, st, attempts in rows} == {(1, "sent", 1)}

    # What one alert says: source, event type, symbols, title, times and lag, url.
    kstr = next(r for r in hook.received if "list Kestrel AI" in r["title"])
    assert kstr["title"] == "[okx listing] OKX to list Kestrel AI (KSTR) for spot trading"
    message = kstr["message"]
    assert alert_field(message, "source") == "okx"
    assert alert_field(message, "event type") == "listing"
    assert alert_field(message, "symbols") == "KSTR"
    assert alert_field(message, "url") == (
        "https://www.okx.com/help/okx-to-list-kestrel-ai-kstr-for-spot-trading"
    )
    published, first_seen = query(
        db,
        "SELECT published_at, first_seen_at FROM documents "
        "WHERE external_id = 'okx-to-list-kestrel-ai-kstr-for-spot-trading'",
    )[0]
    assert alert_field(message, "published") == published
    detected = alert_field(message, "detected")
    assert detected.startswith(first_seen)
    lag = float(detected.split("(lag ")[1].removesuffix(" s)"))
    assert 55 < lag < 600  # published a minute before the crawl

    # A restart: nothing new, nothing sent again.
    second = crawl(db, mirror_url, "okx_announcements", "--notify", hook.url, *FAST_ALERTS)
    assert second.returncode == Exit.OK, second.stdout + second.stderr
    assert "0 alerts sent, 0 alerts failed" in second.stdout
    assert len(hook.received) == RECENT
    assert len(alert_rows(db)) == RECENT


def test_a_destination_that_does_not_answer_never_holds_up_archiving(
    tmp_path, dirs, mirror_url, hook
):
    """The endpoint answers its first alert only once every document of the mirror is in
    the archive: were delivery in the crawl's way, the crawl could not get there."""
    make_recent(dirs["okx"], "okx", count=2)
    db = tmp_path / "annals.db"
    everything = len(mirror_items("okx"))

    def archived_all() -> bool:
        if not db.exists():
            return False
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return conn.execute("SELECT count(*) FROM documents").fetchone()[0] == everything

    hook.hold_until = archived_all
    result = crawl(
        db, mirror_url, "okx_announcements", "--notify", hook.url, "-s", "ANNALS_BATCH_SIZE=5",
        *FAST_ALERTS,
    )  # fmt: skip
    assert result.returncode == Exit.OK, result.stdout + result.stderr
    assert hook.held == [True, True]  # every document was archived while alerts waited
    assert len(hook.received) == 2


def test_max_age_decides_what_is_a_backfill(tmp_path, dirs, mirror_url, hook):
    make_recent(dirs["okx"], "okx")
    db = tmp_path / "annals.db"
    # Items a minute to eight minutes old: 5m lets the first four through.
    result = crawl(
        db, mirror_url, "okx_announcements", "--notify", hook.url, "--notify-max-age", "270s",
        *FAST_ALERTS,
    )  # fmt: skip
    assert result.returncode == Exit.OK, result.stdout + result.stderr
    assert len(hook.received) == 4


def test_an_endpoint_failing_twice_loses_nothing(tmp_path, dirs, mirror_url, hook):
    recent = make_recent(dirs["okx"], "okx", count=1)
    hook.failures = 2
    db = tmp_path / "annals.db"
    result = crawl(db, mirror_url, "okx_announcements", "--notify", hook.url, *FAST_ALERTS)
    assert result.returncode == Exit.OK, result.stdout + result.stderr
    assert hook.titles() == recent
    assert hook.requests == 3
    assert [(st, attempts) for _, _, st, attempts in alert_rows(db)] == [("sent", 3)]
    assert "not delivered (attempt 1 of 3), retrying" in result.stderr


def test_alerts_not_delivered_are_counted_and_sent_by_the_next_run(
    tmp_path, dirs, mirror_url, hook
):
    recent = make_recent(dirs["okx"], "okx", count=2)
    hook.failures = 3  # every attempt of the first alert
    db = tmp_path / "annals.db"
    first = crawl(db, mirror_url, "okx_announcements", "--notify", hook.url, *FAST_ALERTS)
    assert first.returncode == Exit.FAILED, first.stdout + first.stderr
    assert "okx_announcements: partial" in first.stdout
    assert "0 alerts sent, 2 alerts failed" in first.stdout
    assert "2 alerts could not be delivered (each destination tried 3 times)" in first.stderr
    assert hook.received == []
    # The destination failed every attempt of the first alert: the second is not tried.
    assert hook.requests == 3
    assert [(st, attempts) for _, _, st, attempts in alert_rows(db)] == [
        ("failed", 3),
        ("failed", 0),
    ]
    _, counters = run_counters(db)["okx_announcements"]
    assert counters["alerts_failed"] == 2

    second = crawl(db, mirror_url, "okx_announcements", "--notify", hook.url, *FAST_ALERTS)
    assert second.returncode == Exit.OK, second.stdout + second.stderr
    assert "2 alerts sent, 0 alerts failed" in second.stdout
    assert hook.titles() == recent[::-1]  # oldest first
    assert [(st, attempts) for _, _, st, attempts in alert_rows(db)] == [("sent", 4), ("sent", 1)]


def test_filters_by_event_type_source_and_symbol(tmp_path, dirs, mirror_url, hook):
    make_recent(dirs["okx"], "okx")
    make_recent(dirs["kucoin"], "kucoin")
    db = tmp_path / "annals.db"
    result = crawl(
        db, mirror_url, *SPIDERS, "--notify", hook.url, "--notify-on", "listing",
        "--notify-source", "okx", "--notify-symbol", "kstr", *FAST_ALERTS,
    )  # fmt: skip
    assert result.returncode == Exit.OK, result.stdout + result.stderr
    assert sorted(hook.titles()) == [
        "OKX to list Kestrel AI (KSTR) for spot trading",
        "OKX to list perpetual futures for KSTR crypto",
    ]

    # Each filter alone, on this archive (one destination per filter, nothing sent).
    store = Store(make_engine(resolve_url(str(db))))
    run_ids = dict(query(db, "SELECT spider, id FROM crawl_runs"))

    def titles(spider: str, **given: Any) -> list[str]:
        filters = Filters(max_age=timedelta(hours=1), **given)
        target = Target(f"json://127.0.0.1:1/{spider}/{sorted(given.items())}", "test")
        return sorted(
            a.title or "" for a in claim(store, spider, run_ids[spider], filters, [target])
        )

    okx_events = query(
        db,
        "SELECT v.title, v.event_type FROM versions v JOIN documents d ON d.id = v.document_id "
        "WHERE d.source = 'okx'",
    )
    assert sum(e == "delisting" for _, e in okx_events) > 1  # the older ones are too old
    assert titles("okx_announcements", event_types=frozenset({"delisting"})) == [
        "OKX to delist ORBT, PRSM and WHSK spot trading pairs"
    ]
    assert len(titles("kucoin_announcements")) == RECENT
    assert titles("kucoin_announcements", sources=frozenset({"okx"})) == []
    assert titles("okx_announcements", symbols=frozenset({"NIMB"})) == [
        "OKX to adjust the position tiers of NIMB perpetual futures",
        "OKX to list Nimbus Chain (NIMB) for spot trading",
    ]
    store.engine.dispose()


def test_notify_edits_sends_one_alert_per_new_version(tmp_path, dirs, mirror_url, hook):
    recent = make_recent(dirs["okx"], "okx", count=2)
    db = tmp_path / "annals.db"
    args = ("--notify", hook.url, "--notify-edits", *FAST_ALERTS)
    assert crawl(db, mirror_url, "okx_announcements", *args).returncode == Exit.OK
    assert sorted(hook.titles()) == sorted(recent)
    retitle(dirs["okx"], "okx", 0, f"{recent[0]} (updated)")

    second = crawl(db, mirror_url, "okx_announcements", *args)
    assert second.returncode == Exit.OK, second.stdout + second.stderr
    assert hook.titles()[2:] == [f"{recent[0]} (updated)"]
    assert hook.received[2]["title"].startswith("[okx edit (version 2)] ")
    assert [(v, st) for _, v, st, _ in alert_rows(db)] == [(1, "sent"), (1, "sent"), (2, "sent")]
    third = crawl(db, mirror_url, "okx_announcements", *args)
    assert third.returncode == Exit.OK
    assert len(hook.received) == 3


def test_without_notify_edits_an_edit_sends_nothing(tmp_path, dirs, mirror_url, hook):
    recent = make_recent(dirs["okx"], "okx", count=1)
    db = tmp_path / "annals.db"
    args = ("--notify", hook.url, *FAST_ALERTS)
    assert crawl(db, mirror_url, "okx_announcements", *args).returncode == Exit.OK
    retitle(dirs["okx"], "okx", 0, f"{recent[0]} (updated)")
    second = crawl(db, mirror_url, "okx_announcements", *args)
    assert "0 new documents, 1 new versions" in second.stdout
    assert hook.titles() == recent


def test_notify_from_the_environment_and_bad_options_are_refused(tmp_path, monkeypatch):
    db = tmp_path / "annals.db"
    base = "http://127.0.0.1:9"
    for args, message in [
        (("--notify", "nosuchscheme://x"), "not an Apprise URL"),
        (("--notify", "json://127.0.0.1/", "--notify-on", "listings"), "--notify-on takes"),
        (("--notify", "json://127.0.0.1/", "--notify-source", "nyse"), "unknown --notify-source"),
        (("--notify", "json://127.0.0.1/", "--notify-max-age", "1 hour"), "not a duration"),
        (("--notify-on", "listing"), "need --notify URL"),
    ]:
        result = crawl(db, base, "okx_announcements", *args)
        assert result.returncode == Exit.USAGE, (args, result.stderr)
        assert message in result.stderr
    assert not db.exists()
    monkeypatch.setenv("ANNALS_NOTIFY", "json://127.0.0.1/a, nosuchscheme://y")
    result = crawl(db, base, "okx_announcements")
    assert result.returncode == Exit.USAGE
    assert "nosuchscheme://y" in result.stderr


# --- the claim rules, on SQLite and PostgreSQL ----------------------------------------------


def test_claims_are_made_once_and_taken_over_only_from_runs_that_ended(store, make_record):
    """What a running run claimed is nobody else's; what a run that ended left failed or
    pending (a kill) is the next run's; what was sent is never claimed again."""
    now = utcnow()
    first = store.start_run("gate_announcements")
    store.write(
        [
            make_record("1", published_at=now - timedelta(minutes=5)),
            make_record("2", published_at=now - timedelta(minutes=10), title="Delist ABC"),
            make_record("3", published_at=now - timedelta(days=2)),  # a backfill
        ],
        run_id=first,
    )
    filters = Filters(max_age=timedelta(hours=1))
    target = Target("json://127.0.0.1:1/hook", "json://127.0.0.1:1/hook")
    claimed = claim(store, "gate_announcements", first, filters, [target])
    assert sorted(a.ref for a in claimed) == ["gate:announcement:1:en", "gate:announcement:2:en"]
    assert claim(store, "gate_announcements", first, filters, [target]) == []
    # Another worker of the spider, while the first is running: nothing to take.
    other = store.start_run("gate_announcements")
    assert claim(store, "gate_announcements", other, filters, [target]) == []
    # Only the other spider's own runs count.
    assert claim(store, "okx_announcements", other, filters, [target]) == []

    sent, failed = sorted(claimed, key=lambda a: a.ref)
    record(store, sent.id, True, 1, None)
    record(store, failed.id, False, 3, "not delivered after 3 attempts")
    store.finish_run(first, "partial", {})
    retaken = claim(store, "gate_announcements", other, filters, [target])
    assert [(a.id, a.ref) for a in retaken] == [(failed.id, failed.ref)]
    # A second destination gets its own alerts; the symbol filter applies to it.
    second = Target("json://127.0.0.1:2/hook", "json://127.0.0.1:2/hook")
    only_vlr = Filters(max_age=timedelta(hours=1), symbols=frozenset({"VLR"}))
    assert len(claim(store, "gate_announcements", other, only_vlr, [second])) == 2
    assert claim(store, "gate_announcements", other, Filters(max_age=timedelta(hours=1),
                 symbols=frozenset({"BTC"})), [Target("json://x/3", "x")]) == []  # fmt: skip


def test_db_upgrade_adds_the_alerts_table_to_an_archive_of_revision_0003(tmp_path):
    db = tmp_path / "annals.db"
    engine = make_engine(resolve_url(str(db)))
    upgrade(engine, "0003")
    engine.dispose()
    refused = crawl(db, "http://127.0.0.1:9", "okx_announcements", "--notify", "json://127.0.0.1/")
    assert refused.returncode == Exit.ARCHIVE, refused.stderr
    assert "annals db upgrade" in refused.stderr
    done = annals("db", "upgrade", "--db", str(db))
    assert done.returncode == Exit.OK, done.stderr
    assert query(db, "SELECT count(*) FROM alerts") == [(0,)]
