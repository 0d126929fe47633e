"""`annals rederive`: derived fields recomputed in place on an archive made with old rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archive.cli import Exit, app
from archive.rederive import rederive
from archive.store import Store
from tests.helpers import RecordFactory, rows

runner = CliRunner()

LISTING = "Binance Will List Lumen (LUMN)"
LISTING_BODY = "<p>Binance will open trading for LUMN/USDT at 10:00 AM (UTC).</p>"
API_UPDATE = "API Update: New Endpoint for Order Amendments"
API_BODY = "<p>POST /api/v5/trade/amend-order is now available for EEA users.</p>"


@pytest.fixture
def old_archive(database: str, db_path: Path, store: Store, make_record: RecordFactory) -> str:
    """An archive written by the old extractor: its wrong answers (AM, POST, EEA) stored
    as the old parsers handed them over, and an event type the old rules got wrong."""
    store.write(
        [
            make_record(
                "lumn",
                source="binance",
                title=LISTING,
                body_html=LISTING_BODY,
                category="New Cryptocurrency Listing",
                tags=[],
                symbols=["LUMN", "AM"],
            ),
            make_record(
                "amend",
                source="okx",
                title=API_UPDATE,
                body_html=API_BODY,
                category="announcements-api",
                tags=[],
                symbols=["POST", "EEA"],
            ),
        ]
    )
    # A second version of the listing, still with the old answer; the first stays as it was.
    store.write(
        [
            make_record(
                "lumn",
                source="binance",
                title=LISTING,
                body_html=LISTING_BODY + "<p>Withdrawals open at 11:00 AM (UTC).</p>",
                category="New Cryptocurrency Listing",
                tags=[],
                symbols=["LUMN", "AM"],
            )
        ]
    )
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE versions SET event_type = 'other'")
    return str(db_path) if database.startswith("sqlite") else database


def _state(engine) -> list[tuple]:
    return rows(
        engine,
        "SELECT d.source, v.version, v.symbols, v.event_type, v.content_hash, "
        "v.version = d.current_version FROM versions v JOIN documents d ON d.id = v.document_id "
        "ORDER BY d.source, v.version",
    )


def _current(engine, source: str) -> tuple[list[str], str]:
    symbols, event = rows(
        engine,
        "SELECT v.symbols, v.event_type FROM versions v JOIN documents d "
        "ON d.id = v.document_id AND v.version = d.current_version WHERE d.source = :s",
        s=source,
    )[0]
    return json.loads(symbols), event


def test_rederive_fixes_current_versions_in_place(old_archive: str, engine):
    before = _state(engine)

    result = runner.invoke(app, ["rederive", "--db", old_archive, "--source", "binance"])

    assert result.exit_code == 0, result.output
    assert "1 current versions checked, 1 changed" in result.output
    assert _current(engine, "binance") == (["LUMN"], "listing")
    assert _current(engine, "okx") == (["POST", "EEA"], "other")  # --source kept it out
    after = _state(engine)
    assert len(after) == len(before) == 3  # no version added
    assert [r[4] for r in after] == [r[4] for r in before]  # no content hash touched
    old_first = next(r for r in after if r[0] == "binance" and r[1] == 1)
    assert json.loads(old_first[2]) == ["LUMN", "AM"]  # not the current version: as it was

    result = runner.invoke(app, ["rederive", "--db", old_archive])
    assert result.exit_code == 0, result.output
    assert "2 current versions checked, 1 changed" in result.output
    assert _current(engine, "okx") == ([], "product")

    again = runner.invoke(app, ["rederive", "--db", old_archive])
    assert "2 current versions checked, 0 changed" in again.output


def test_rederive_dry_run_counts_and_writes_nothing(old_archive: str, engine):
    before = _state(engine)

    result = runner.invoke(app, ["rederive", "--db", old_archive, "--dry-run"])

    assert result.exit_code == 0, result.output
    assert "2 current versions checked, 2 would change" in result.output
    assert "symbols 2, event_type 2" in result.output
    assert _state(engine) == before


def test_rederive_of_an_unknown_source_says_so(old_archive: str):
    result = runner.invoke(app, ["rederive", "--db", old_archive, "--source", "nope"])
    assert result.exit_code == Exit.USAGE
    assert "no documents of source 'nope'" in result.output


def test_rederive_in_small_batches_checks_every_document(
    old_archive: str, engine, store: Store, make_record: RecordFactory
):
    store.write([make_record(str(n), symbols=["PM"], tags=[]) for n in range(7)])
    report = rederive(store, batch=2)
    assert (report.checked, report.changed) == (9, 9)
    assert rederive(store, batch=3).changed == 0


def test_rederive_on_a_missing_archive_fails_without_creating_one(tmp_path: Path):
    result = runner.invoke(app, ["rederive", "--db", str(tmp_path / "none.db")])
    assert result.exit_code == Exit.ARCHIVE
    assert not (tmp_path / "none.db").exists()


def test_rederive_has_help_with_an_example():
    result = runner.invoke(app, ["rederive", "--help"])
    assert result.exit_code == 0
    assert "annals rederive" in result.output
    assert "--source" in result.output
    assert "--dry-run" in result.output


def test_rederive_agrees_with_ingest(store: Store, engine, make_record: RecordFactory):
    """What the store derived at ingest is what rederive derives from the stored row."""
    store.write(
        [
            make_record(
                "51322", title="Gate Will List Velora (VLR) at 10:00 AM (UTC)", tags=["VLR"]
            ),
            make_record(
                "post-1",
                source="gate_square",
                kind="post",
                title=None,
                body_html='<p><a class="post-cashtag" href="/trade/BTC_USDT">$BTC</a> up</p>',
                tags=["ETH"],
                category=None,
            ),
            make_record(
                "lumn",
                source="binance",
                title="Binance Will Open Trading for New Pairs",
                body_html='<p><a href="https://www.binance.com/en/trade/LUMN_USDT">LUMN</a></p>',
                category="New Cryptocurrency Listing",
                tags=[],
            ),
        ]
    )
    stored = rows(engine, "SELECT symbols, event_type FROM versions ORDER BY id")
    assert [json.loads(s) for s, _ in stored] == [["VLR"], ["BTC", "ETH"], ["LUMN"]]
    report = rederive(store)
    assert (report.checked, report.changed) == (3, 0)


def test_an_interrupted_rederive_keeps_its_batches_and_a_second_run_finishes(
    store: Store, engine, make_record: RecordFactory
):
    store.write([make_record(str(n), symbols=["AM"], tags=[]) for n in range(5)])

    def interrupt(report) -> None:
        raise KeyboardInterrupt  # after the first batch committed

    with pytest.raises(KeyboardInterrupt):
        rederive(store, batch=2, progress=interrupt)
    symbols = [json.loads(s) for (s,) in rows(engine, "SELECT symbols FROM versions ORDER BY id")]
    assert symbols == [["VLR"], ["VLR"], ["AM"], ["AM"], ["AM"]]

    report = rederive(store, batch=2)
    assert (report.checked, report.changed) == (5, 3)
