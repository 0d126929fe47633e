"""`annals watch binance_announcements` with Binance's keyed CMS WebSocket: a real watch
process against the local mirror, whose one port serves Binance's list and detail
answers and its WebSocket (crawler.mirror_push.BinanceChannel, which checks the API key
header and the HMAC signature as Binance does), into a real SQLite file read as a user
would. Beside them, the signer and the push's parser."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from archive.cli import Exit
from archive.normalize import utcnow
from archive.records import ParseError, RawResponse
from crawler.mirror import Mirror, MirrorServer, Route
from crawler.mirror_push import BinanceChannel
from crawler.sources import binance
from crawler.spiders.api import BinanceAnnouncementsSpider
from tests.helpers import FIXTURES, Hook
from tests.test_watch import Watching, archived, rows, runs, wait_for

pytestmark = pytest.mark.e2e

LIST = "/bapi/composite/v1/public/cms/article/list/query"
DETAIL = "/bapi/composite/v1/public/cms/article/detail/query"
JSON = {"Content-Type": "application/json; charset=utf-8"}
KEY, SECRET = "mirror-api-key", "mirror-api-secret"
TOPIC = "com_announcement_en"
RECORDED = "d1b77ac59bf3776e1fa5cdc7fc607e0e"  # a recorded listing of catalog 48
LISTING = (48, "New Cryptocurrency Listing")
FAST_PUSH = (
    "-s", "ANNALS_PUSH_HEARTBEAT=0.3",
    "-s", "ANNALS_PUSH_BACKOFF=0.2",
    "-s", "ANNALS_BINANCE_PUSH_LOOKUP_BACKOFF=0.1",
)  # fmt: skip


def recorded_detail() -> dict[str, Any]:
    return json.loads((FIXTURES / "binance" / "details" / f"{RECORDED}.json").read_bytes())


def new_article(n: int) -> tuple[str, str, int]:
    """(code, title, publication time in ms) of an announcement published a moment ago."""
    code = hashlib.md5(f"article {n}".encode()).hexdigest()
    return code, f"Binance Will List Pushcoin {n} (PSH{n}) with Seed Tag Applied", now_ms()


def now_ms() -> int:
    return int(time.time() * 1000) - 1000


def detail_route(code: str, title: str, published: int) -> Route:
    """The detail answer of a new article: the recorded one's body, another code, title
    and time."""
    answer = recorded_detail()
    answer["data"] |= {"code": code, "title": title, "publishDate": published}
    return Route(
        "GET",
        DETAIL,
        headers=JSON,
        content=json.dumps(answer).encode(),
        query={"articleCode": code},
    )


def list_route(mirror: Mirror, *newest: tuple[str, str, int], catalog: str | None = None) -> Route:
    """The first list page (the unfiltered list, or one catalog's) as the mirror answers it
    at the spider's page size, with `newest` on top of catalog 48."""
    query = {"type": "1", "pageNo": "1", "pageSize": str(binance.SOURCE.page_size)}
    if catalog:
        query["catalogId"] = catalog
    target = f"{LIST}?{'&'.join(f'{k}={v}' for k, v in query.items())}"
    route = Mirror(FIXTURES / "binance").route_for("GET", target, b"", "")
    assert route is not None
    answer = json.loads(route.payload(query))
    (top,) = [c for c in answer["data"]["catalogs"] if c["catalogId"] == LISTING[0]]
    items = [{"id": 1, "code": c, "title": t, "type": 1, "releaseDate": p} for c, t, p in newest]
    top["articles"] = [*items, *top["articles"]]
    top["total"] += len(items)
    match = {"catalogId": catalog, "pageNo": "1"}
    return Route("GET", LIST, headers=JSON, content=json.dumps(answer).encode(), query=match)


def pushed(title: str, published: int, body: str | None) -> dict[str, Any]:
    """The `data` of a DATA message, as Binance documents it."""
    catalog_id, catalog_name = LISTING
    return {
        "catalogId": catalog_id,
        "catalogName": catalog_name,
        "publishDate": published,
        "title": title,
        "body": body,
        "disclaimer": "Trade on-the-go. Prices are subject to high market risk.",
    }


def versions(db: Path, code: str) -> list[tuple[int, str, str | None, dict[str, Any]]]:
    sql = (
        "SELECT v.version, v.title, v.body_text, v.extra FROM versions v "
        "JOIN documents d ON d.id = v.document_id WHERE d.source = 'binance' "
        "AND d.external_id = ? ORDER BY v.version"
    )
    return [(n, t, b, json.loads(e or "{}")) for n, t, b, e in rows(db, sql, code)]


def first_pages(mirror: Mirror) -> int:
    return sum(h.path == LIST and h.query.get("pageNo") == "1" for h in mirror.hits)


@pytest.fixture
def binance_push() -> Iterator[tuple[Mirror, BinanceChannel, str]]:
    channel = BinanceChannel(KEY, SECRET)
    mirror = Mirror(FIXTURES / "binance", channels=[channel])
    with MirrorServer(mirror) as server:
        yield mirror, channel, server.url


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANNALS_BINANCE_API_KEY", KEY)
    monkeypatch.setenv("ANNALS_BINANCE_API_SECRET", SECRET)


def test_a_binance_push_is_archived_at_its_listed_code_within_a_second_and_a_drop_is_caught_up(
    tmp_path, binance_push, keys, hook: Hook
):
    mirror, channel, url = binance_push
    db = tmp_path / "annals.db"
    (code1, title1, time1), (code2, title2, time2) = new_article(1), new_article(2)
    (code3, title3, time3), (missed, missed_title, missed_time) = new_article(3), new_article(4)
    body = recorded_detail()["data"]["body"]
    watch = Watching(
        db, url, "binance_announcements", "--interval", "600", *FAST_PUSH,
        "--notify", hook.url, "-s", "ANNALS_NOTIFY_BACKOFF=0.05",
    )  # fmt: skip
    try:
        wait_for(lambda: channel.subscribed(TOPIC), 30, "the watch to connect")
        wait_for(lambda: watch.logged("round done"), 60, "the first poll")
        assert archived(db, "binance", RECORDED)
        # The handshake carried the key and a valid signature, and Binance's SUBSCRIBE.
        assert channel.refusals == []
        assert {"command": "SUBSCRIBE", "value": TOPIC} in channel.commands

        # Listed as soon as pushed: archived at the list's code with the push's body.
        mirror.prepend(
            list_route(mirror, (code1, title1, time1)), detail_route(code1, title1, time1)
        )
        sent = channel.publish(pushed(title1, time1, body))
        wait_for(lambda: archived(db, "binance", code1), 5, "the pushed item")
        assert time.time() - sent < 1.0  # from the server's send to the row being there
        ((_, title, text, extra),) = versions(db, code1)
        assert title == title1
        assert text
        assert "Fellow Binancian" in text
        assert extra["pushed"] == TOPIC
        # Its detail was asked to complete it; the same body makes no second version.
        wait_for(
            lambda: any(h.query.get("articleCode") == code1 for h in mirror.hits), 5, "the detail"
        )

        # Pushed without a body, and listed only a moment later: the list is asked again,
        # the push archived, then completed from the detail (marked, no edit).
        mirror.prepend(detail_route(code2, title2, time2))
        asked = first_pages(mirror)
        channel.publish(pushed(title2, time2, None))
        wait_for(lambda: first_pages(mirror) >= asked + 2, 5, "the list asked again")
        mirror.prepend(list_route(mirror, (code2, title2, time2), (code1, title1, time1)))
        wait_for(lambda: len(versions(db, code2)) >= 2, 10, "the push and its completion")
        (_, _, text1, extra1), (_, title2_done, text2, extra2) = versions(db, code2)
        assert not text1  # no body in the push
        assert extra1["pushed"] == TOPIC
        assert title2_done == title2
        assert text2
        assert "Fellow Binancian" in text2
        assert extra2.get("completes_push") is True
        # The keep-alive is the WebSocket ping Binance asks for.
        wait_for(lambda: channel.pings >= 1, 5, "a ping")

        # The connection drops; meanwhile an announcement appears on the list only.
        listed = [
            (missed, missed_title, missed_time),
            (code2, title2, time2),
            (code1, title1, time1),
        ]
        mirror.prepend(list_route(mirror, *listed), detail_route(missed, missed_title, missed_time))
        channel.drop_all()
        wait_for(lambda: channel.connections >= 2 and channel.subscribed(TOPIC), 10, "a reconnect")
        wait_for(lambda: archived(db, "binance", missed), 10, "the catch-up poll")
        wait_for(lambda: watch.logged("round done", 2), 10, "the catch-up poll's end")

        # Pushed on the new connection, the same way.
        mirror.prepend(list_route(mirror, (code3, title3, time3), *listed))
        mirror.prepend(detail_route(code3, title3, time3))
        channel.publish(pushed(title3, time3, body))
        wait_for(lambda: archived(db, "binance", code3), 5, "the push after the reconnect")
        wait_for(
            lambda: any(h.query.get("articleCode") == code3 for h in mirror.hits), 5, "its detail"
        )
        time.sleep(0.3)  # its detail's answer is read
    finally:
        took, _out, err = watch.stop(signal.SIGTERM)

    assert took < 5, (took, err)
    assert watch.process.returncode == Exit.OK, err
    # One document per announcement, at the site's URL of its code.
    sql = "SELECT url FROM documents WHERE source = 'binance' AND external_id = ?"
    assert rows(db, sql, code1) == [(f"https://www.binance.com/en/support/announcement/{code1}",)]
    assert len(versions(db, code1)) == 1
    assert len(versions(db, code3)) == 1
    ((_, _, _, missed_extra),) = versions(db, missed)
    assert "pushed" not in missed_extra
    assert "completes_push" not in missed_extra
    status, counters = runs(db)["binance_announcements"]
    assert status == "finished"
    assert counters["watch/pushed"] == 3
    assert counters["watch/completions"] == 3
    assert counters["watch/reconnects"] == 1
    assert counters.get("watch/unarchived", 0) == 0
    # One alert per young new document (the recorded lists are months old).
    assert sorted(hook.titles()) == sorted([title1, title2, title3, missed_title])
    # The signed query is not in the log (the path is).
    assert "signature=" not in err
    assert SECRET not in err


def test_a_push_never_listed_is_quarantined_and_counted_and_connections_are_renewed(
    tmp_path, binance_push, keys
):
    mirror, channel, url = binance_push
    db = tmp_path / "annals.db"
    _, title, published = new_article(5)
    watch = Watching(
        db, url, "binance_announcements", "-a", "categories=48", "--interval", "600", *FAST_PUSH,
        "-s", "ANNALS_BINANCE_PUSH_LOOKUPS=3",
        "-s", "ANNALS_BINANCE_PUSH_MAX_AGE=3",
    )  # fmt: skip
    try:
        wait_for(lambda: channel.subscribed(TOPIC), 30, "the watch to connect")
        wait_for(lambda: watch.logged("round done"), 60, "the first poll")
        asked = first_pages(mirror)
        channel.publish(pushed(title, published, None))
        sql = "SELECT url, error FROM quarantine WHERE spider = 'binance_announcements'"
        ((where, error),) = wait_for(lambda: rows(db, sql), 10, "the quarantined push")
        assert where == binance.PUSH_URL
        assert title in error
        assert "not in the list after 3 tries" in error
        # Looked up in its catalog's list (the spider reads catalog 48), three times.
        lookups = [h for h in mirror.hits if h.path == LIST and h.query.get("pageNo") == "1"]
        assert len(lookups) - asked >= 3
        assert all(h.query.get("catalogId") == "48" for h in lookups)
        # Before its time is up, the connection is replaced and the list caught up.
        # the first poll and the catch-up after the first subscription
        wait_for(lambda: watch.logged("round done", 2), 10, "the first catch-up poll")
        wait_for(lambda: channel.connections >= 2, 10, "a renewed connection")
        wait_for(lambda: channel.subscribed(TOPIC), 10, "the renewed subscription")
        # Stopped between polls (the next renewal is seconds away).
        wait_for(lambda: watch.logged("round done", 3), 10, "the catch-up poll after it")
    finally:
        took, _out, err = watch.stop(signal.SIGTERM)

    assert took < 5, (took, err)
    assert watch.process.returncode == Exit.FAILED, err  # partial: something was not archived
    status, counters = runs(db)["binance_announcements"]
    assert status == "partial", err
    assert counters["quarantined"] == 1
    assert counters["watch/unmatched"] == 1
    assert counters["watch/renewals"] >= 1
    assert "renewing the connection" in err
    # A renewal is no fault: no warning that the channel went down.
    assert "push channel down" not in err
    assert not rows(db, "SELECT 1 FROM documents WHERE title = ?", title)


def test_a_push_still_looked_up_when_the_watch_stops_is_counted_as_not_archived(
    tmp_path, binance_push, keys
):
    mirror, channel, url = binance_push
    db = tmp_path / "annals.db"
    _, title, published = new_article(6)
    watch = Watching(
        db, url, "binance_announcements", "-a", "categories=48", "--interval", "600", *FAST_PUSH,
        "-s", "ANNALS_BINANCE_PUSH_LOOKUP_BACKOFF=30",  # its second look is far away
    )  # fmt: skip
    try:
        wait_for(lambda: channel.subscribed(TOPIC), 30, "the watch to connect")
        wait_for(lambda: watch.logged("round done", 2), 60, "the first polls")
        asked = first_pages(mirror)
        channel.publish(pushed(title, published, None))
        wait_for(lambda: first_pages(mirror) > asked, 5, "its first lookup")
    finally:
        took, _out, err = watch.stop(signal.SIGTERM)

    assert took < 5, (took, err)
    assert watch.process.returncode == Exit.FAILED, err
    status, counters = runs(db)["binance_announcements"]
    assert status == "partial", err  # stopped between polls, but a push was not archived
    assert counters["push_unarchived"] == 1
    assert not rows(db, "SELECT 1 FROM quarantine")


def test_a_wrong_secret_is_refused_by_the_server_and_the_source_is_polled(
    tmp_path, binance_push, monkeypatch
):
    mirror, channel, url = binance_push
    db = tmp_path / "annals.db"
    monkeypatch.setenv("ANNALS_BINANCE_API_KEY", KEY)
    monkeypatch.setenv("ANNALS_BINANCE_API_SECRET", "not-the-secret")
    watch = Watching(db, url, "binance_announcements", "--interval", "1", *FAST_PUSH)
    try:
        wait_for(lambda: 401 in channel.refusals, 30, "the refused handshake")
        wait_for(lambda: archived(db, "binance", RECORDED), 60, "the first poll")
        polls = first_pages(mirror)
        wait_for(lambda: first_pages(mirror) > polls, 10, "the next poll")  # polled at 1 s
        assert channel.connections == 0
        assert channel.subscribed(TOPIC) == 0
        wait_for(lambda: watch.logged("Binance refused the API key"), 5, "the reason in the log")
    finally:
        took, _out, err = watch.stop(signal.SIGTERM)

    assert took < 5, (took, err)
    assert "HTTP 401" in err
    _, counters = runs(db)["binance_announcements"]
    assert counters["watch/key_refused"] >= 1
    assert "watch/pushed" not in counters
    assert "signature=" not in err


def test_without_keys_binance_is_polled_and_no_connection_is_made(
    tmp_path, binance_push, monkeypatch
):
    mirror, channel, url = binance_push
    db = tmp_path / "annals.db"
    monkeypatch.delenv("ANNALS_BINANCE_API_KEY", raising=False)
    monkeypatch.delenv("ANNALS_BINANCE_API_SECRET", raising=False)
    watch = Watching(db, url, "binance_announcements", "--interval", "1")
    try:
        wait_for(lambda: archived(db, "binance", RECORDED), 60, "the first poll")
        polls = first_pages(mirror)
        wait_for(lambda: first_pages(mirror) > polls, 10, "the next poll")
    finally:
        took, _, err = watch.stop(signal.SIGTERM)

    assert took < 5, (took, err)
    assert channel.connections == 0
    assert channel.refusals == []
    assert "polled, not pushed: ANNALS_BINANCE_API_KEY, ANNALS_BINANCE_API_SECRET not set" in err


# --- the signer, the server's check and the parser -----------------------------------------


def test_the_query_is_signed_over_its_parameters_sorted_by_name():
    params = {
        "random": "56724ac693184379ae23ffe5e910063c",
        "topic": "topic1",
        "recvWindow": "30000",
        "timestamp": "1753244327210",
    }
    payload = "random=56724ac693184379ae23ffe5e910063c&recvWindow=30000&timestamp=1753244327210&topic=topic1"
    expected = hmac.new(b"s3cret", payload.encode(), hashlib.sha256).hexdigest()
    assert binance.signed_query(params, "s3cret") == f"{payload}&signature={expected}"
    # Several topics are one parameter, "|" between them (sent %-encoded, signed as sent).
    query = binance.push_query([TOPIC, "com_announcement_zh"], "s3cret", 1, "r")
    assert dict(parse_qsl(query))["topic"] == f"{TOPIC}|com_announcement_zh"


class _Request:
    def __init__(self, path: str, key: str | None) -> None:
        self.path = path
        self.headers = {BinanceChannel.KEY_HEADER: key} if key else {}


def test_the_mirror_refuses_a_wrong_key_signature_or_time_as_binance_does():
    channel = BinanceChannel(KEY, SECRET)
    good = binance.push_query([TOPIC], SECRET, now_ms(), "0123456789abcdef")
    assert channel.refuse(_Request(f"/sapi/wss?{good}", KEY)) is None  # type: ignore[arg-type]
    wrong_secret = binance.push_query([TOPIC], "guess", now_ms(), "0123456789abcdef")
    old = binance.push_query([TOPIC], SECRET, now_ms() - 60_000, "0123456789abcdef")
    tampered = good.replace(TOPIC, "com_announcement_xx")
    for path, key, status, code in (
        (good, None, 401, -2015),
        (good, "another-key", 401, -2015),
        (wrong_secret, KEY, 401, -1022),
        (tampered, KEY, 401, -1022),
        (old, KEY, 400, -1021),
    ):
        refusal = channel.refuse(_Request(f"/sapi/wss?{path}", key))  # type: ignore[arg-type]
        assert refusal is not None
        assert (refusal[0], json.loads(refusal[1])["code"]) == (status, code)


def message(data: Any, topic: str = TOPIC, kind: str = "DATA") -> bytes:
    encoded = json.dumps(data) if isinstance(data, dict) else data
    return json.dumps({"type": kind, "topic": topic, "data": encoded}).encode()


def test_a_pushed_announcement_becomes_the_listed_documents_record():
    title = "Binance Will List Kestrel AI (KSTR) with Seed Tag Applied"
    got = binance.parse_push(message(pushed(f"  {title} ", 1781589612904, None)))
    assert got is not None
    assert (got.language, got.title, got.catalog_id) == ("en", title, 48)
    assert got.published_at.isoformat() == "2026-06-16T06:00:12.904000+00:00"
    page = binance.SOURCE.parse_list(
        (FIXTURES / "binance" / "list_c48_p1.json").read_bytes(), binance.SOURCE.endpoint
    )
    listed = binance.push_match(got, page.records)
    assert listed is not None
    assert listed.external_id == RECORDED
    record = binance.pushed_record(got, listed)
    assert record.identity == listed.identity
    assert record.url == listed.url
    assert (record.category, record.event_type) == (LISTING[1], "listing")
    assert record.body_html is None
    assert record.extra["pushed"] == TOPIC
    # The same title published far from the push's time is another announcement.
    later = binance.parse_push(message(pushed(title, 1781589612904 + 3_600_000, None)))
    assert later is not None
    assert binance.push_match(later, page.records) is None
    # Command answers carry none; a broken DATA message is a parse error.
    assert binance.parse_push(message("SUCCESS", kind="COMMAND")) is None
    for broken in (
        message("not json"),
        message(pushed("", 1, None)),
        message({**pushed("t", 1, None), "publishDate": None}),
        message(pushed("t", 1, None), topic="com_announcement_xx"),
        b"[",
    ):
        with pytest.raises(ParseError):
            binance.parse_push(broken)
    # Stored, a push alone names no code: it stays in quarantine on `annals reparse`.
    raw = RawResponse(
        binance.PUSH_URL, 101, "application/json", message(pushed(title, 1, None)), utcnow()
    )
    with pytest.raises(ParseError, match="names no article code"):
        BinanceAnnouncementsSpider.parse_snapshot(raw)
    assert urlsplit(binance.PUSH_URL).path == BinanceChannel.path


def test_the_signed_query_and_the_key_stay_out_of_a_debug_log(binance_push, caplog):
    """The websockets library logs each handshake line at DEBUG: a Binance connection's
    shows its path only, and not the API key."""
    from websockets.sync.client import connect

    from crawler.push import _hide_signed_requests

    _, channel, url = binance_push
    _hide_signed_requests()
    query = binance.push_query([TOPIC], SECRET, now_ms(), "0123456789abcdef")
    target = url.replace("http://", "ws://") + f"{BinanceChannel.path}?{query}"
    headers = {BinanceChannel.KEY_HEADER: KEY}
    with (
        caplog.at_level(logging.DEBUG, logger="websockets.client"),
        connect(target, additional_headers=headers) as ws,
    ):
        ws.send(json.dumps({"command": "SUBSCRIBE", "value": TOPIC}))
        assert json.loads(ws.recv(timeout=5))["data"] == "SUCCESS"
    logged = caplog.text
    assert "> GET /sapi/wss?..." in logged
    assert "signature" not in logged
    assert KEY not in logged
    assert channel.connections == 1
