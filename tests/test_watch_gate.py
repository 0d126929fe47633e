"""`annals watch gate_announcements` end to end: a real watch process against the local
mirror, whose one port serves Gate's pages and its announcement WebSocket
(crawler.mirror_push.GateChannel), into a real SQLite file read as a user would."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from archive.records import ParseError
from archive.serve import CANNED_QUERIES, changed_lines
from crawler.mirror import Mirror, MirrorServer, Route
from crawler.mirror_push import GateChannel
from crawler.sources import gate
from tests.helpers import FIXTURES, Hook
from tests.test_watch import Watching, archived, rows, runs, wait_for

pytestmark = pytest.mark.e2e

LIST_API = gate.SOURCE.list_path
LISTING = "announcement.summary_listing"
HTML = {"Content-Type": "text/html; charset=utf-8"}
JSON = {"Content-Type": "application/json; charset=utf-8"}
RECORDED_TITLE = "Gate Launches Pre-Market Trading for SPCXUSDT Perpetual Futures (USDT-M)"


def article(ident: int, title: str) -> Route:
    """Gate's article page for `ident`: the recorded 51322 page with another id, title
    and release time (now)."""
    page = (FIXTURES / "gate" / "article_51322.html").read_text()
    now = int(time.time())
    page = page.replace(RECORDED_TITLE, title).replace('"id":51322', f'"id":{ident}')
    body = page.replace('"release_timestamp":"1779436571"', f'"release_timestamp":"{now}"').encode()
    return Route("GET", f"/announcements/article/{ident}", headers=HTML, content=body)


def first_list_page(*newest: dict[str, Any]) -> Route:
    """The list endpoint's first page with `newest` on top of the recorded items."""
    recorded = json.loads((FIXTURES / "gate" / "list_article_p1.json").read_bytes())
    recorded["data"]["list"] = [*newest, *recorded["data"]["list"]]
    body = json.dumps(recorded).encode()
    return Route("POST", LIST_API, headers=JSON, content=body, body={"page": 1})


def listed(ident: int, title: str) -> dict[str, Any]:
    now = int(time.time())
    return {
        "id": ident,
        "title": title,
        "brief": f"{title}.",
        "url": f"/announcements/article/{ident}",
        "cate_id": 61,
        "created_t": now,
        "release_timestamp": str(now),
        "tags": "",
        "views": 1,
    }


def update(ident: int, title: str) -> dict[str, Any]:
    """The `result` of a pushed update, its origin_url in the short /article/{id} form."""
    return {
        "lang": "en",
        "origin_url": f"https://www.gate.com/article/{ident}",
        "title": title,
        "brief": f"Brief of: {title}",
        "published_at": int(time.time()),
    }


@pytest.fixture
def gate_push_mirror() -> Iterator[tuple[Mirror, GateChannel, str]]:
    channel = GateChannel()
    mirror = Mirror(FIXTURES / "gate", channels=[channel])
    # The two articles the recorded mirror blocks on purpose are missing pages here.
    for blocked in ("51321", "51317"):
        mirror.prepend(Route("GET", f"/announcements/article/{blocked}", status=404))
    with MirrorServer(mirror) as server:
        yield mirror, channel, server.url


def versions(db: Path, external_id: str) -> list[tuple[int, str, str, dict[str, Any]]]:
    sql = (
        "SELECT v.version, v.title, v.body_text, v.extra FROM versions v "
        "JOIN documents d ON d.id = v.document_id WHERE d.source = 'gate' "
        "AND d.external_id = ? ORDER BY v.version"
    )
    return [(n, t, b, json.loads(e or "{}")) for n, t, b, e in rows(db, sql, external_id)]


def test_a_gate_push_is_archived_within_a_second_completed_from_its_article_and_caught_up(
    tmp_path, gate_push_mirror, hook: Hook
):
    mirror, channel, url = gate_push_mirror
    db = tmp_path / "annals.db"
    pushed_id, missed_id, late_id = 900001, 900002, 900003
    late_title = "Gate Will List LATE (LATE) for Spot Trading"
    pushed_title = "Gate Will List PUSHX (PUSHX) for Spot Trading"
    missed_title = "Gate Will List AWAY (AWAY) for Spot Trading"
    mirror.prepend(article(pushed_id, pushed_title), article(missed_id, missed_title))
    watch = Watching(
        db,
        url,
        "gate_announcements",
        "--interval",
        "600",  # only the push and the catch-up poll can archive what follows
        "--notify",
        hook.url,
        "--notify-edits",
        "-s",
        "ANNALS_NOTIFY_BACKOFF=0.05",
        "-s",
        "ANNALS_PUSH_HEARTBEAT=0.3",
        "-s",
        "ANNALS_PUSH_BACKOFF=0.2",
    )
    try:
        wait_for(lambda: all(channel.subscribed(c) for c in gate.PUSH_CHANNELS), 30, "subscribed")
        wait_for(lambda: archived(db, "gate", "51322"), 30, "the first poll")

        sent = channel.publish(LISTING, update(pushed_id, pushed_title))
        wait_for(lambda: archived(db, "gate", str(pushed_id)), 5, "the pushed item")
        assert time.time() - sent < 1.0  # from the server's send to the row being there
        # Then its article completes it: a second version, marked as the completion.
        found = wait_for(lambda: len(versions(db, str(pushed_id))) >= 2, 10, "the completion")
        assert found
        (_, title1, body1, extra1), (_, title2, body2, extra2) = versions(db, str(pushed_id))
        assert (title1, body1) == (pushed_title, f"Brief of: {pushed_title}")
        assert extra1 == {"pushed": LISTING}
        assert title2 == pushed_title
        assert len(body2) > len(body1)  # the article's text, not the brief
        assert extra2.get("completes_push") is True
        # A push of an article the archive has from its page already is not archived:
        # its brief would be a version going back to less.
        channel.publish(LISTING, update(51322, RECORDED_TITLE))
        wait_for(lambda: watch.logged("pushed gate:announcement:51322"), 5, "the known push")
        # The keep-alive is Gate's own ping.
        wait_for(lambda: channel.pings >= 1, 5, "an announcement.ping")

        # A push whose article page is not there yet (404): the push record stays.
        mirror.prepend(Route("GET", f"/announcements/article/{late_id}", status=404))
        channel.publish(LISTING, update(late_id, late_title))
        wait_for(lambda: archived(db, "gate", str(late_id)), 5, "the push of the late page")
        late_path = f"/announcements/article/{late_id}"
        wait_for(lambda: any(h.path == late_path for h in mirror.hits), 10, "its 404")
        mirror.prepend(article(late_id, late_title))  # now it is there

        # The connection drops; meanwhile an announcement appears on the list only, and
        # the list shows the late one too: the catch-up poll archives the first and
        # completes the second.
        mirror.prepend(
            first_list_page(listed(missed_id, missed_title), listed(late_id, late_title))
        )
        channel.drop_all()
        wait_for(lambda: channel.connections >= 2, 10, "a reconnect")
        wait_for(lambda: channel.subscribed(LISTING), 10, "the new subscription")
        wait_for(lambda: archived(db, "gate", str(missed_id)), 15, "the catch-up poll")
        wait_for(lambda: watch.logged("round done", 2), 15, "the catch-up poll's end")
    finally:
        took, _, err = watch.stop(signal.SIGTERM)

    assert took < 5, (took, err)
    # One document for the push and its article, at the site's canonical URL.
    sql = "SELECT url FROM documents WHERE source = 'gate' AND external_id = ?"
    assert rows(db, sql, str(pushed_id)) == [(gate.canonical_article_url(str(pushed_id)),)]
    assert len(versions(db, str(pushed_id))) == 2  # the catch-up poll added none
    ((_, missed_title_archived, _, missed_extra),) = versions(db, str(missed_id))
    assert missed_title_archived == missed_title
    assert "completes_push" not in missed_extra
    assert len(versions(db, "51322")) == 1
    (_, _, late_body, late_extra1), (_, _, _, late_extra2) = versions(db, str(late_id))
    assert late_body == f"Brief of: {late_title}"
    assert late_extra1 == {"pushed": LISTING}
    assert late_extra2.get("completes_push") is True
    _, counters = runs(db)["gate_announcements"]
    assert counters["watch/pushed"] == 2
    assert counters["watch/pushed_known"] == 1
    assert counters["watch/completions"] == 2
    assert counters["not_found"] >= 1  # the late page's first answer
    # Alerts, edits included: one per young new document (the push's, at once), none
    # for the completion; the recorded list is months old.
    assert sorted(hook.titles()) == sorted([pushed_title, missed_title, late_title])
    assert counters["alerts_sent"] == 3
    assert counters["watch/reconnects"] == 1
    # The completion is no edit: `annals serve`'s query of edits does not list it.
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        conn.create_function("annals_changed_lines", 2, changed_lines)
        edits = conn.execute(CANNED_QUERIES["edited_after_publication"]["sql"]).fetchall()
    finally:
        conn.close()
    assert edits == []


def message(result: Any, channel: str = LISTING, event: str = "update") -> bytes:
    return json.dumps(
        {"time": 1, "time_ms": 1000, "channel": channel, "event": event, "result": result}
    ).encode()


@pytest.mark.parametrize(
    ("origin_url", "lang", "external_id", "language", "url"),
    [
        # The channel's short form and the site's own form are one document.
        (
            "https://www.gate.com/article/228103",
            "en",
            "228103",
            "en",
            "announcements/article/228103",
        ),
        (
            "https://www.gate.com/announcements/article/228103",
            "en",
            "228103",
            "en",
            "announcements/article/228103",
        ),
        (
            "https://www.gate.io/article/228103",
            "en",
            "228103",
            "en",
            "announcements/article/228103",
        ),
        # The channel says "cn" where the site's locale is zh; a prefix in the URL wins.
        (
            "https://www.gate.com/article/228103",
            "cn",
            "228103",
            "zh",
            "zh/announcements/article/228103",
        ),
        (
            "https://www.gate.com/zh/article/228103",
            "en",
            "228103",
            "zh",
            "zh/announcements/article/228103",
        ),
    ],
)
def test_a_pushed_update_has_the_identity_the_article_page_has(
    origin_url, lang, external_id, language, url
):
    result = {
        "lang": lang,
        "origin_url": origin_url,
        "title": "Gate Will List X (X)",
        "brief": " Trading opens  soon. ",
        "published_at": 1764600000,
    }
    record = gate.parse_push(message(result))
    assert record is not None
    assert (record.external_id, record.language) == (external_id, language)
    assert record.url == f"https://www.gate.com/{url}"
    assert gate.article_ref(record.url) == (external_id, language)
    assert (record.title, record.body_text) == ("Gate Will List X (X)", "Trading opens soon.")
    assert record.published_at is not None
    assert record.published_at.isoformat() == "2025-12-01T14:40:00+00:00"
    assert record.event_type == "listing"
    assert gate.push_language("zh") == "cn"


def test_other_messages_are_not_records_and_a_broken_update_is_a_parse_error():
    assert gate.parse_push(message({"status": "success"}, event="subscribe")) is None
    assert gate.parse_push(message(None, channel="announcement.pong", event="")) is None
    for broken in (
        None,
        {"origin_url": "https://example.com/article/1", "title": "t", "published_at": 1},
        {"origin_url": "https://www.gate.com/article/1", "title": "", "published_at": 1},
        {"origin_url": "https://www.gate.com/article/1", "title": "t"},
    ):
        with pytest.raises(ParseError):
            gate.parse_push(message(broken))
    with pytest.raises(ParseError):
        gate.parse_push(b"not json")
