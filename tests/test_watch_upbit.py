"""`annals watch upbit_announcements` with the user's API key: a real watch process against
the local mirror, whose one port serves Upbit's notice API and its private WebSocket
(crawler.mirror_push.UpbitChannel, which checks the key's JWT), into a real SQLite file
read as a user would; and the push parser on its own."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from archive.cli import Exit
from archive.normalize import content_hash, utcnow
from archive.records import ParseError, RawResponse
from archive.serve import CANNED_QUERIES, changed_lines
from crawler.mirror import Mirror, MirrorServer, Route
from crawler.mirror_push import UpbitChannel
from crawler.sources import upbit
from crawler.spiders.api import UpbitAnnouncementsSpider
from tests.helpers import FIXTURES
from tests.test_watch import Watching, archived, rows, runs, wait_for

LIST_API = "/api/v1/announcements"
JSON = {"Content-Type": "application/json; charset=utf-8"}
KST = timezone(timedelta(hours=9))
# Upbit's keys are 40 characters; the mirror verifies the JWT with this secret.
ACCESS_KEY = "test-access-key-0123456789abcdefghijklmn"
SECRET_KEY = "test-secret-key-0123456789abcdefghijklmn"
RECORDED = "685177330"  # the newest notice of the recorded first list page
KEYS = ("ANNALS_UPBIT_ACCESS_KEY", "ANNALS_UPBIT_SECRET_KEY")
QUICK = ("-s", "ANNALS_PUSH_HEARTBEAT=0.3", "-s", "ANNALS_PUSH_BACKOFF=0.2")


def kst(moment: datetime) -> str:
    return moment.astimezone(KST).replace(microsecond=0).isoformat()


def notice(uuid: str, title: str, body: str | None, *, category: str = "trade") -> dict[str, Any]:
    """A pushed notice (`category` the WebSocket's key), first listed a moment ago."""
    now = kst(datetime.now(UTC) - timedelta(seconds=2))
    return {
        "uuid": uuid,
        "title": title,
        "category": category,
        "url": f"https://upbit.com/service_center/notice?id={uuid}",
        "first_listed_at": now,
        "listed_at": now,
        "body": body,
    }


def listed(pushed: dict[str, Any], ident: int, label: str = "거래") -> dict[str, Any]:
    """The list's item for a notice: Korean label, internal id, no body."""
    item = {k: pushed[k] for k in ("uuid", "title", "first_listed_at", "listed_at")}
    return {**item, "id": ident, "category": label, "need_new_badge": True}


def detail(pushed: dict[str, Any], ident: int, label: str = "거래") -> Route:
    data = {**listed(pushed, ident, label), "body": pushed["body"], "attachments": []}
    content = json.dumps({"success": True, "data": data}, ensure_ascii=False).encode()
    return Route("GET", f"{LIST_API}/{pushed['uuid']}", headers=JSON, content=content)


def first_list_page(*newest: dict[str, Any]) -> Route:
    recorded = json.loads((FIXTURES / "upbit" / "announcements_p1.json").read_bytes())
    recorded["data"]["notices"] = [*newest, *recorded["data"]["notices"]]
    content = json.dumps(recorded, ensure_ascii=False).encode()
    return Route(
        "GET", LIST_API, headers=JSON, content=content, query={"category": "all", "page": "1"}
    )


def versions(db: Path, uuid: str) -> list[tuple[int, str, str | None, dict[str, Any]]]:
    sql = (
        "SELECT v.version, v.title, v.body_text, v.extra FROM versions v "
        "JOIN documents d ON d.id = v.document_id WHERE d.source = 'upbit' "
        "AND d.external_id = ? ORDER BY v.version"
    )
    return [(n, t, b, json.loads(e or "{}")) for n, t, b, e in rows(db, sql, uuid)]


def pushes(db: Path) -> int:
    """The watch's count of pushes archived so far (its run's counters as it goes)."""
    run = runs(db).get("upbit_announcements")
    return int(run[1].get("watch/pushed", 0)) if run else 0


def quarantined(db: Path) -> list[tuple[str, str]]:
    return [(u, e) for u, e in rows(db, "SELECT url, error FROM quarantine ORDER BY id")]


@pytest.fixture
def upbit_push_mirror() -> Iterator[tuple[Mirror, UpbitChannel, str]]:
    channel = UpbitChannel(ACCESS_KEY, SECRET_KEY)
    mirror = Mirror(FIXTURES / "upbit", channels=[channel])
    with MirrorServer(mirror) as server:
        yield mirror, channel, server.url


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANNALS_UPBIT_ACCESS_KEY", ACCESS_KEY)
    monkeypatch.setenv("ANNALS_UPBIT_SECRET_KEY", SECRET_KEY)


@pytest.mark.e2e
@pytest.mark.usefixtures("keys")
def test_an_upbit_push_is_archived_at_once_with_its_body_an_edit_is_one_version_and_a_drop_caught_up(
    tmp_path, upbit_push_mirror
):
    mirror, channel, url = upbit_push_mirror
    db = tmp_path / "annals.db"
    body = "라벤더 **KRW** 마켓 거래지원을 개시합니다.\n\n- 입금: 즉시\n- 거래: 18:00"
    pushed = notice("901000001", "푸시(PUSH) KRW 마켓 디지털 자산 추가", body)
    edited = {
        **pushed,
        "title": f"{pushed['title']} (거래 시간 변경)",
        "body": body.replace("18:00", "19:00"),
        "listed_at": kst(datetime.now(UTC)),
    }
    large = notice("901000002", "대형(BIG) 입출금 일시 중단 안내", None, category="wallet")
    large_body = "네트워크 업그레이드로 입출금을 일시 중단합니다."
    missed = notice("901000003", "부재(AWAY) KRW 마켓 디지털 자산 추가", "놓친 공지입니다.")
    mirror.prepend(detail({**large, "body": large_body}, 9002, "입출금"), detail(missed, 9003))
    watch = Watching(db, url, "upbit_announcements", "--interval", "600", *QUICK)
    try:
        wait_for(channel.subscribed, 30, "the subscription")
        wait_for(lambda: watch.logged("round done"), 60, "the first poll")
        assert archived(db, "upbit", RECORDED)

        # A notice pushed with its body is the whole document, archived at once.
        sent = channel.publish(pushed)
        wait_for(lambda: archived(db, "upbit", pushed["uuid"]), 5, "the pushed notice")
        assert time.time() - sent < 1.0  # from the server's send to the row being there
        ((_, title, text, extra),) = versions(db, pushed["uuid"])
        assert title == pushed["title"]
        assert text is not None
        assert "KRW 마켓 거래지원을 개시합니다" in text
        assert "18:00" in text
        assert extra["pushed"] == "CREATED"
        # An edit pushed as UPDATED is one new version; the same state again is none.
        channel.publish(edited, "UPDATED")
        wait_for(lambda: len(versions(db, pushed["uuid"])) == 2, 5, "the edit")
        channel.publish(edited, "UPDATED")
        wait_for(lambda: pushes(db) == 3, 5, "the repeated push")

        # A notice pushed without its body (Upbit leaves a large one out) is archived at
        # once, then completed by its detail.
        channel.publish(large)
        wait_for(lambda: len(versions(db, large["uuid"])) == 2, 10, "the completion")
        # Without its body again, for a notice the archive has whole: not archived (a
        # version with less), its detail is asked instead, and its edit is a version.
        large_edit = f"{large_body} 재개 일정은 추후 안내합니다."
        mirror.prepend(detail({**large, "body": large_edit}, 9002, "입출금"))
        channel.publish(large, "UPDATED")
        wait_for(lambda: len(versions(db, large["uuid"])) == 3, 10, "the edit in the detail")
        # Upbit's own keep-alive.
        wait_for(lambda: channel.pings >= 1, 5, "a PING")

        # The connection drops; meanwhile a notice appears on the list only. The list
        # shows the pushed notice too, as it is now: it is not asked again.
        mirror.prepend(first_list_page(listed(missed, 9003), listed(edited, 9001)))
        channel.drop_all()
        wait_for(lambda: channel.connections >= 2 and channel.subscribed(), 10, "a reconnect")
        wait_for(lambda: archived(db, "upbit", missed["uuid"]), 15, "the catch-up poll")
        wait_for(lambda: watch.logged("round done", 2), 15, "the catch-up poll's end")
    finally:
        took, _out, err = watch.stop(signal.SIGTERM)

    assert took < 5, (took, err)
    assert watch.process.returncode == Exit.OK, err
    status, counters = runs(db)["upbit_announcements"]
    assert status == "finished"
    assert counters["watch/pushed"] == 4
    assert counters["watch/completions"] == 1
    assert counters["watch/pushed_known"] == 1
    assert counters["watch/reconnects"] == 1
    assert "watch/key_refused" not in counters
    # Every connection had a token of its own (the mirror refuses a nonce seen before).
    assert (channel.connections, channel.refused) == (2, 0)

    # The push and the list are one document, at the notice's public page.
    sql = "SELECT url FROM documents WHERE source = 'upbit' AND external_id = ?"
    page = upbit.SOURCE.article_url.format(id=pushed["uuid"])
    assert rows(db, sql, pushed["uuid"]) == [(page,)]
    (_, t1, b1, _e1), (_, t2, b2, e2) = versions(db, pushed["uuid"])
    assert (t1, t2) == (pushed["title"], edited["title"])
    assert b1 is not None
    assert b2 is not None
    assert "18:00" in b1
    assert "19:00" in b2
    assert e2["pushed"] == "UPDATED"
    assert "completes_push" not in e2
    detail_paths = {h.path for h in mirror.hits if h.path.startswith(f"{LIST_API}/")}
    assert f"{LIST_API}/{pushed['uuid']}" not in detail_paths
    # Times: the push's KST, stored in UTC.
    ((published,),) = rows(
        db, "SELECT published_at FROM documents WHERE external_id = ?", pushed["uuid"]
    )
    first_listed = datetime.fromisoformat(pushed["first_listed_at"])
    assert datetime.fromisoformat(published).replace(tzinfo=UTC) == first_listed

    # The bodiless push, then its detail: the completion, with the list's category label.
    (_, _, lb1, le1), (_, _, lb2, le2), (_, _, lb3, le3) = versions(db, large["uuid"])
    assert lb3 is not None
    assert lb3.endswith("재개 일정은 추후 안내합니다.")
    assert "completes_push" not in le3
    assert not lb1  # no body yet
    assert le1["push_incomplete"] is True
    assert lb2 == large_body
    assert le2.get("completes_push") is True
    categories = rows(
        db,
        "SELECT DISTINCT v.category FROM versions v JOIN documents d ON d.id = v.document_id "
        "WHERE d.external_id = ?",
        large["uuid"],
    )
    assert categories == [("입출금",)]
    ((_, missed_title, _, missed_extra),) = versions(db, missed["uuid"])
    assert missed_title == missed["title"]
    assert "pushed" not in missed_extra

    # The pushed message is its version's snapshot, at the channel's URL.
    snapshots = rows(
        db,
        "SELECT s.url, s.status FROM versions v JOIN documents d ON d.id = v.document_id "
        "JOIN snapshots s ON s.id = v.snapshot_id WHERE d.external_id = ? ORDER BY v.version",
        pushed["uuid"],
    )
    assert snapshots == [(upbit.PUSH_URL, 101)] * 2
    # The edit is an edit to `annals serve`; the completion is not.
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        conn.create_function("annals_changed_lines", 2, changed_lines)
        edits = conn.execute(CANNED_QUERIES["edited_after_publication"]["sql"]).fetchall()
    finally:
        conn.close()
    large_page = upbit.SOURCE.article_url.format(id=large["uuid"])
    assert sorted(row[-1] for row in edits) == sorted([page, large_page])
    assert [row[4] for row in edits if row[-1] == large_page] == [3]


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("in_band", "answer"),
    [(False, "HTTP 401"), (True, "INVALID_AUTH")],
    ids=["refused-handshake", "invalid-auth-answer"],
)
def test_a_wrong_secret_is_refused_and_the_notices_are_polled(
    tmp_path, monkeypatch, in_band, answer
):
    channel = UpbitChannel(ACCESS_KEY, SECRET_KEY, refuse_in_band=in_band)
    mirror = Mirror(FIXTURES / "upbit", channels=[channel])
    monkeypatch.setenv("ANNALS_UPBIT_ACCESS_KEY", ACCESS_KEY)
    monkeypatch.setenv("ANNALS_UPBIT_SECRET_KEY", SECRET_KEY[::-1])
    db = tmp_path / "annals.db"
    missed = notice(
        "901000004", "폴링(POLL) KRW 마켓 디지털 자산 추가", "폴링으로 찾은 공지입니다."
    )
    with MirrorServer(mirror) as server:
        watch = Watching(db, server.url, "upbit_announcements", "--interval", "1", *QUICK)
        try:
            wait_for(lambda: channel.refused >= 2, 30, "the refused tokens")
            wait_for(lambda: watch.logged("round done"), 60, "the first poll")
            # Polled at the interval while the key is refused.
            mirror.prepend(first_list_page(listed(missed, 9004)), detail(missed, 9004))
            wait_for(lambda: archived(db, "upbit", missed["uuid"]), 15, "a later poll")
            wait_for(lambda: watch.logged("refused the API key", 2), 15, "the refusals logged")
        finally:
            took, _, err = watch.stop(signal.SIGTERM)

    assert took < 5, (took, err)
    assert channel.subscribed() == 0
    assert channel.connections == (channel.refused if in_band else 0)
    # The log names what to check (never the secret); `annals stats` counts the refusals.
    assert f"Upbit refused the API key ({answer}): check ANNALS_UPBIT_ACCESS_KEY" in err
    assert SECRET_KEY[::-1] not in err
    status, counters = runs(db)["upbit_announcements"]
    assert counters["watch/key_refused"] >= 2
    assert counters["watch/rounds"] >= 2
    assert "watch/pushed" not in counters
    assert status in ("finished", "interrupted")  # nothing lost: polled all along


@pytest.mark.e2e
def test_without_keys_upbit_is_polled_and_no_websocket_is_opened(
    tmp_path, upbit_push_mirror, monkeypatch
):
    _, channel, url = upbit_push_mirror
    for name in KEYS:
        monkeypatch.delenv(name, raising=False)
    db = tmp_path / "annals.db"
    watch = Watching(db, url, "upbit_announcements", "--interval", "600", *QUICK)
    try:
        wait_for(lambda: watch.logged("round done"), 60, "the first poll")
    finally:
        took, _, err = watch.stop(signal.SIGTERM)

    assert took < 5, (took, err)
    assert archived(db, "upbit", RECORDED)
    assert channel.connections == 0
    assert channel.refused == 0
    assert f"polled, not pushed: {', '.join(KEYS)} not set" in err
    status, counters = runs(db)["upbit_announcements"]
    assert status == "finished"
    assert "watch/pushed" not in counters


@pytest.mark.e2e
@pytest.mark.usefixtures("keys")
def test_a_broken_push_is_quarantined_and_the_run_is_partial(tmp_path, upbit_push_mirror):
    _, channel, url = upbit_push_mirror
    db = tmp_path / "annals.db"
    watch = Watching(db, url, "upbit_announcements", "--interval", "600", *QUICK)
    try:
        wait_for(channel.subscribed, 30, "the subscription")
        # The first poll, and the catch-up poll the subscription asks for: stopped after
        # them, the watch cut no round (its status is what the push earned).
        wait_for(lambda: watch.logged("round done", 2), 60, "the first polls")
        channel.publish({"title": "uuid 없는 공지", "category": "notice", "body": "x"})
        wait_for(lambda: quarantined(db), 5, "the quarantined push")
        good = notice("901000005", "정상(OK) 공지", "본문")
        channel.publish(good)  # the channel goes on
        wait_for(lambda: archived(db, "upbit", good["uuid"]), 5, "the next push")
    finally:
        took, _, err = watch.stop(signal.SIGTERM)

    assert took < 5, (took, err)
    ((where, error),) = quarantined(db)
    assert where == upbit.PUSH_URL
    assert "no uuid or id" in error
    assert watch.process.returncode == Exit.FAILED, err  # partial is exit 1
    status, counters = runs(db)["upbit_announcements"]
    assert (status, counters["quarantined"]) == ("partial", 1)


# --- the parser ---------------------------------------------------------------------------


def message(**fields: Any) -> bytes:
    base = {"type": "announcement", "event_type": "CREATED", "stream_type": "REALTIME"}
    return json.dumps({**base, **fields, "timestamp": 1}, ensure_ascii=False).encode()


def test_a_pushed_notice_is_the_record_its_detail_gives():
    raw = (FIXTURES / "upbit" / "details" / "160231646.json").read_bytes()
    data = json.loads(raw)["data"]
    detail_url = upbit.SOURCE.detail_url(data["uuid"], "ko")
    from_detail = upbit.SOURCE.parse_detail(raw, detail_url, "ko")
    fields = {k: data[k] for k in ("uuid", "title", "first_listed_at", "listed_at", "body")}
    pushed = upbit.parse_push(message(**fields, category="maintenance"))  # 점검's key
    assert pushed is not None
    same = ("identity", "url", "title", "body_text", "body_html", "published_at", "category")
    assert {f: getattr(pushed, f) for f in same} == {f: getattr(from_detail, f) for f in same}
    assert pushed.event_type == from_detail.event_type == "maintenance"

    def digest(r: Any) -> str:
        return content_hash(r.title, r.body_text, r.category, r.tags, r.author, r.published_at)

    assert digest(pushed) == digest(from_detail)
    assert pushed.extra["listed_at"] == from_detail.extra["listed_at"]
    assert pushed.extra["pushed"] == "CREATED"
    assert "push_incomplete" not in pushed.extra
    # A Korean label is read as the list gives it; `wallet` is the list's 입출금.
    labelled = upbit.parse_push(message(**fields, category="점검"))
    assert labelled is not None
    assert labelled.category == "점검"
    wallet = upbit.parse_push(message(**fields, category="wallet"))
    assert wallet is not None
    assert wallet.category == "입출금"
    # Its stored message reads again (`annals reparse`), by its WebSocket URL.
    stored = RawResponse(upbit.PUSH_URL, 101, "application/json", message(**fields), utcnow())
    (again,) = UpbitAnnouncementsSpider.parse_snapshot(stored)
    assert (again.identity, again.body_text) == (from_detail.identity, from_detail.body_text)


def test_a_push_without_its_body_is_marked_incomplete_and_other_messages_are_no_records():
    pushed = upbit.parse_push(
        message(uuid="1", title="t", first_listed_at="2026-09-01T09:00:00+09:00", body=None)
    )
    assert pushed is not None
    assert pushed.body_text is None
    assert pushed.extra["push_incomplete"] is True
    assert pushed.published_at == datetime(2026, 9, 1, 0, 0, tzinfo=UTC)
    assert upbit.parse_push(b'{"status": "UP"}') is None
    refusal = b'{"error": {"name": "INVALID_AUTH", "message": "bad token"}}'
    assert upbit.parse_push(refusal) is None
    assert upbit.push_error(json.loads(refusal)) == ("INVALID_AUTH", "bad token")
    assert upbit.push_error({"status": "UP"}) is None


@pytest.mark.parametrize(
    "fields",
    [
        {"title": "no uuid", "first_listed_at": "2026-09-01T09:00:00+09:00"},
        {"uuid": "1", "title": "", "first_listed_at": "2026-09-01T09:00:00+09:00"},
        {"uuid": "1", "title": "t", "first_listed_at": "어제"},
        {"uuid": "1", "title": "t", "first_listed_at": "2026-09-01T09:00:00+09:00", "body": 3},
    ],
)
def test_a_broken_push_is_a_parse_error(fields):
    with pytest.raises(ParseError) as caught:
        upbit.parse_push(message(**fields))
    assert caught.value.url == upbit.PUSH_URL


def test_not_json_is_a_parse_error():
    with pytest.raises(ParseError):
        upbit.parse_push(b"\x00not json")


def test_the_subscription_asks_bodies_and_names_the_websockets_category_keys():
    ticket, data_type, fmt = upbit.push_request("t-1", ["trade", "dtw", "staking"])
    assert ticket == {"ticket": "t-1"}
    assert fmt == {"format": "DEFAULT"}
    assert data_type == {
        "type": "announcement",
        "include_body": True,
        "categories": ["trade", "wallet", "service"],
    }
    # No filter: every category, by leaving the list out.
    assert "categories" not in upbit.push_request("t-2")[1]
    assert set(upbit.PUSH_CATEGORIES) == set(upbit.SOURCE.categories)
