"""`annals history` and `annals diff` on a document that `annals watch` archived from a
push channel and then completed from its article page: the completion
(`extra.completes_push`) is labelled as one and is not counted as an edit; a later
change of the article is."""

from __future__ import annotations

import json
import signal
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archive.cli import Exit, app
from archive.serve import CANNED_QUERIES, changed_lines
from archive.store import Store
from tests.helpers import RecordFactory, annals
from tests.test_watch import Watching, archived, wait_for
from tests.test_watch_gate import (
    LISTING,
    article,
    first_list_page,
    gate_push_mirror,  # noqa: F401 - the fixture
    listed,
    update,
    versions,
)

COMPLETION = "v2 completes the pushed record (article fetched): not an edit"


def edits_listed(db: Path) -> list[tuple[str, int]]:
    """The refs and versions `annals serve`'s edited_after_publication query lists."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        conn.create_function("annals_changed_lines", 2, changed_lines)
        conn.row_factory = sqlite3.Row
        sql = CANNED_QUERIES["edited_after_publication"]["sql"]
        return [(row["ref"], row["version"]) for row in conn.execute(sql)]
    finally:
        conn.close()


@pytest.mark.e2e
def test_a_watchs_push_then_completion_then_edit_is_one_edit_in_history_and_diff(
    tmp_path,
    gate_push_mirror,  # noqa: F811
):
    mirror, channel, url = gate_push_mirror
    db = tmp_path / "annals.db"
    ident, title = 900031, "Gate Will List DIFFX (DIFFX) for Spot Trading"
    edited = "Gate Will List DIFFX (DIFFX) for Spot Trading and Margin"
    mirror.prepend(article(ident, title))
    watch = Watching(
        db,
        url,
        "gate_announcements",
        "--interval",
        "600",  # only the push and the catch-up poll archive what follows
        "-s",
        "ANNALS_PUSH_HEARTBEAT=0.3",
        "-s",
        "ANNALS_PUSH_BACKOFF=0.2",
    )
    try:
        wait_for(lambda: channel.subscribed(LISTING), 60, "the subscription")
        wait_for(lambda: watch.logged("round done"), 60, "the first poll")
        channel.publish(LISTING, update(ident, title))
        wait_for(lambda: archived(db, "gate", str(ident)), 30, "the pushed item")
        wait_for(lambda: len(versions(db, str(ident))) >= 2, 30, "the completion")
        # Then Gate edits the article; the list shows it, and the catch-up poll after a
        # reconnect fetches the young article again: a true edit.
        mirror.prepend(article(ident, edited), first_list_page(listed(ident, edited)))
        channel.drop_all()
        wait_for(lambda: len(versions(db, str(ident))) >= 3, 30, "the edit")
    finally:
        _, _, log = watch.stop(signal.SIGTERM)

    ref = f"gate:announcement:{ident}:en"
    history = annals("history", ref, "--db", str(db), "-f", "json")
    assert history.returncode == 0, history.stderr + log
    found = [
        (v["version"], v["pushed"], v["completes_push"], v["edit"])
        for v in json.loads(history.stdout)
    ]
    assert found == [(1, True, False, False), (2, False, True, False), (3, False, False, True)]
    table = annals("history", ref, "--db", str(db))
    assert "(completes the push: article fetched)" in table.stdout
    assert "1 edit (completing a push is not one)" in table.stdout

    completion = annals("diff", ref, "--from", "1", "--to", "2", "--db", str(db))
    assert completion.returncode == 0, completion.stderr
    lines = completion.stdout.splitlines()
    assert lines[0] == COMPLETION
    assert f"-Brief of: {title}" in lines  # the push's brief, replaced by the article
    # The last change is the edit: no completion said, the title's change shown.
    last = annals("diff", ref, "--db", str(db))
    assert "completes" not in last.stdout
    assert f"-{title}" in last.stdout.splitlines()
    assert f"+{edited}" in last.stdout.splitlines()
    assert edits_listed(db) == [(ref, 3)]


@pytest.fixture
def pushed_then_completed(store: Store, make_record: RecordFactory, database: str) -> str:
    """Through the store as `annals watch` writes them: the push's record (title, brief),
    the article completing it, then an edit of the article."""
    published = datetime(2026, 12, 1, 10, tzinfo=UTC)
    common = {"published_at": published, "title": "Gate Will List ABC (ABC)"}
    store.write([make_record("7001", body_html="<p>Brief.</p>", extra={"pushed": LISTING},
                             **common)])  # fmt: skip
    store.write([make_record("7001", body_html="<p>Brief.</p><p>Trading opens at 10:00.</p>",
                             extra={"completes_push": True}, **common)])  # fmt: skip
    store.write([make_record("7001", body_html="<p>Brief.</p><p>Trading opens at 11:00.</p>",
                             extra={}, **common)])  # fmt: skip
    return database


def test_history_counts_edits_without_the_completion(pushed_then_completed: str):
    runner = CliRunner()
    db = pushed_then_completed
    result = runner.invoke(app, ["history", "gate:announcement:7001", "--db", db, "-f", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["edit"] for r in rows] == [False, False, True]
    assert [r["completes_push"] for r in rows] == [False, True, False]


def test_diff_says_a_completion_in_the_range_and_nothing_for_an_edit(pushed_then_completed: str):
    runner = CliRunner()
    db = pushed_then_completed
    ref = "gate:announcement:7001:en"
    whole = runner.invoke(app, ["diff", ref, "--from", "1", "--to", "3", "--db", db])
    assert whole.exit_code == 0, whole.output
    assert whole.stdout.splitlines()[0] == COMPLETION
    assert "+Trading opens at 11:00." in whole.stdout.splitlines()
    edit = runner.invoke(app, ["diff", ref, "--db", db])  # v2 -> v3, the default
    assert edit.stdout.splitlines()[0].startswith("---")
    assert "-Trading opens at 10:00." in edit.stdout.splitlines()
    backwards = runner.invoke(app, ["diff", ref, "--from", "2", "--to", "1", "--db", db])
    assert backwards.stdout.splitlines()[0] == COMPLETION
    missing = runner.invoke(app, ["diff", ref, "--from", "9", "--db", db])
    assert missing.exit_code == Exit.USAGE
