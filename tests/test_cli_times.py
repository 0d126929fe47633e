"""Every time option of the CLI reads the same forms (a date, an ISO time with its zone, a
time ago) and refuses anything else with exit 2 and the forms it accepts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from archive.cli import Exit, app
from archive.store import Store
from tests.helpers import RecordFactory

runner = CliRunner()

# (command, option): every time option of every command.
TIME_OPTIONS = [("export", "--since"), ("export", "--until"), ("search", "--since")]


def invoke(*args: str):
    return runner.invoke(app, list(args))


def plain(text: str) -> str:
    """An error panel's text on one line: no box, no wrapping."""
    return " ".join(text.replace("│", " ").split())


def run(command: str, option: str, value: str, archive: str):
    extra = ["gate"] if command == "search" else []
    return invoke(command, *extra, option, value, "--db", archive)


@pytest.mark.parametrize(
    "value",
    [
        "2026",  # read as unix seconds until now: 1970-01-01T00:33:46Z
        "20260101",  # read as 1970-08-23
        "1779436571",
        "tuesday",  # read as today
        "next week",
        "+25:00",  # a traceback
        "2026-05-01T00:00+25:00",
        "2026-05-01T12:00",  # no zone: which 12:00?
        "2026-13-01",
        "7x",
        "",
    ],
)
@pytest.mark.parametrize(("command", "option"), TIME_OPTIONS)
def test_a_time_option_refuses_what_is_not_a_time(
    archive: str, command: str, option: str, value: str
):
    result = run(command, option, value, archive)
    assert result.exit_code == Exit.USAGE, result.output
    message = plain(result.output)
    assert f"Invalid value for '{option}': not a time: {value!r}" in message
    for form in ("2026-05-01", "2026-05-01T12:00Z", "2026-05-01T14:00+02:00", "7d", "24h"):
        assert form in message
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def published(lines: str) -> list[str]:
    return [json.loads(line)["external_id"] for line in lines.splitlines()]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--since", "2026-05-22"], ["51322"]),
        (["--since", "2026-05-22T07:56:11Z"], ["51322"]),  # published 07:56:11.000Z
        (["--since", "2026-05-22T07:56:11.001Z"], []),
        (["--since", "2026-05-22T09:56:11+02:00"], ["51322"]),
        (["--since", "2026-05-22t09:56:12+02:00"], []),
        (["--until", "2026-05-21 12:00:00.001Z"], ["21716532", "51310"]),
        (["--since", "2026-04-09", "--until", "2026-05-21T12:00Z"], ["21716532"]),
    ],
)
def test_export_reads_dates_and_times_with_their_zone(archive: str, args, expected):
    result = invoke("export", "--db", archive, *args)
    assert result.exit_code == 0, result.output
    assert published(result.stdout) == expected


def test_a_time_ago_counts_back_from_now(
    archive: str, database: str, store: Store, make_record: RecordFactory
):
    now = datetime.now(UTC)
    store.write(
        [
            make_record("90001", published_at=now - timedelta(hours=2)),
            make_record("90002", published_at=now - timedelta(days=3)),
            make_record("90003", published_at=now - timedelta(days=10)),
        ]
    )

    def since(value: str) -> list[str]:
        result = invoke("export", "--db", archive, "--since", value)
        assert result.exit_code == 0, result.output
        return published(result.stdout)

    assert since("90m") == []
    assert since("24h") == ["90001"]
    assert since("7d") == ["90002", "90001"]
    assert since("2w") == ["90003", "90002", "90001"]
    until = invoke("export", "--db", archive, "--since", "2w", "--until", "1d")
    assert published(until.stdout) == ["90003", "90002"]
    if not database.startswith("sqlite"):
        return  # annals search reads SQLite's full-text index only
    found = invoke("search", "Velora", "--since", "5d", "--db", archive, "-f", "jsonl")
    assert found.exit_code == 0, found.output
    assert sorted(json.loads(line)["ref"] for line in found.stdout.splitlines()) == [
        "gate:announcement:90001:en",
        "gate:announcement:90002:en",
    ]


def test_every_time_option_says_what_it_accepts_in_its_help():
    for command in {command for command, _ in TIME_OPTIONS}:
        result = invoke(command, "--help")
        assert result.exit_code == 0
        assert "TIME" in result.output
        assert "7d" in plain(result.output)
