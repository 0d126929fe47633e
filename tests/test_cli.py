"""Every `annals` command through its runner, as a user would call it."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archive.cli import Exit, app
from archive.db import head_revision
from archive.store import Store
from tests.helpers import rows

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


@pytest.mark.parametrize(
    "command",
    [
        ["query"],
        ["export"],
        ["history"],
        ["diff"],
        ["stats"],
        ["db", "upgrade"],
        ["crawl"],
        ["demo"],
        ["reparse"],
    ],
)
def test_every_command_has_help_with_an_example(command):
    result = invoke(*command, "--help")
    assert result.exit_code == 0
    assert "Example" in result.output
    assert "annals " + command[0] in result.output
    assert "--db" in result.output


def test_query_formats(archive: str):
    sql = (
        "SELECT external_id, current_version FROM documents WHERE kind = 'announcement' ORDER BY 1"
    )
    as_json = invoke("query", sql, "--db", str(archive), "--format", "json")
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout) == [
        {"external_id": "51310", "current_version": 1},
        {"external_id": "51322", "current_version": 2},
    ]
    as_jsonl = invoke("query", sql, "--db", str(archive), "--format", "jsonl")
    assert [json.loads(line)["external_id"] for line in as_jsonl.stdout.splitlines()] == [
        "51310",
        "51322",
    ]
    as_csv = invoke("query", sql, "--db", str(archive), "--format", "csv")
    assert as_csv.stdout.splitlines() == ["external_id,current_version", "51310,1", "51322,2"]
    as_table = invoke("query", sql, "--db", str(archive))
    assert "51322" in as_table.stdout
    assert "external_id" in as_table.stdout


def test_query_empty_result_as_json_is_an_empty_array(archive: str):
    result = invoke(
        "query", "SELECT * FROM documents WHERE false", "--db", str(archive), "-f", "json"
    )
    assert json.loads(result.stdout) == []


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM documents",
        "UPDATE versions SET title = 'x'",
        "INSERT INTO documents (source) VALUES ('x')",
        "DROP TABLE links",
        "ATTACH DATABASE '{tmp}/other.db' AS other",
        "PRAGMA journal_mode = DELETE",
        "SELECT 1; DELETE FROM documents",
        "COMMIT; DELETE FROM documents",
    ],
)
def test_query_that_writes_is_refused_and_changes_nothing(archive: str, engine, sql, tmp_path):
    if sql.startswith(("PRAGMA", "ATTACH")) and engine.dialect.name != "sqlite":
        pytest.skip("a SQLite statement: a syntax error on PostgreSQL")
    before = rows(engine, "SELECT count(*) FROM documents")[0][0]
    result = invoke("query", sql.format(tmp=tmp_path), "--db", str(archive))
    assert result.exit_code == Exit.REFUSED
    assert "refused" in result.stderr
    assert rows(engine, "SELECT count(*) FROM documents")[0][0] == before == 3
    assert not (tmp_path / "other.db").exists()


def test_query_with_a_syntax_error_says_so(archive: str):
    result = invoke("query", "SELEC nothing", "--db", str(archive))
    assert result.exit_code == Exit.FAILED
    assert "syntax error" in result.stderr


def test_command_on_a_missing_archive_says_how_to_create_it(tmp_path: Path):
    result = invoke("query", "SELECT 1", "--db", str(tmp_path / "nope.db"))
    assert result.exit_code == Exit.ARCHIVE
    assert "annals db upgrade" in result.stderr
    assert not (tmp_path / "nope.db").exists()


def test_database_from_environment(archive: str, monkeypatch):
    monkeypatch.setenv("ANNALS_DATABASE_URL", str(archive))
    result = invoke("query", "SELECT count(*) AS n FROM documents", "-f", "jsonl")
    assert json.loads(result.stdout) == {"n": 3}


def test_export_one_line_per_document_with_current_version(archive: str):
    result = invoke("export", "--db", str(archive))
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["ref"] for line in lines] == [
        "gate:post:21716532:en",
        "gate:announcement:51310:en",
        "gate:announcement:51322:en",
    ]
    spcx = lines[2]
    assert spcx["version"] == 2
    assert spcx["body_text"] == "Leverage from 1x to 10x."
    assert spcx["published_at"] == "2026-05-22T07:56:11.000Z"
    assert spcx["event_type"] == "listing"
    assert spcx["symbols"] == ["SPCX", "VLR"]  # the title's, then the Gate tag the record has
    for key in ("url", "first_seen_at", "last_seen_at", "title", "category", "tags", "links"):
        assert key in spcx
    assert lines[0]["links"] == [
        {
            "url": "https://www.gate.com/announcements/article/51322",
            "target": "gate:announcement:51322",
        }
    ]
    assert "exported 3 documents" in result.stderr


def test_export_filters_and_all_versions(archive: str):
    def refs(*args: str) -> list[tuple[str, int]]:
        result = invoke("export", "--db", str(archive), *args)
        assert result.exit_code == 0, result.output
        return [
            (json.loads(x)["external_id"], json.loads(x)["version"])
            for x in result.stdout.splitlines()
        ]

    assert refs("--event-type", "delisting") == [("51310", 1)]
    assert refs("--kind", "post") == [("21716532", 1)]
    assert refs("--since", "2026-05-22") == [("51322", 2)]
    assert refs("--until", "2026-05-01") == [("21716532", 1)]
    assert refs("--source", "binance") == []
    assert refs("--all-versions", "--since", "2026-05-22") == [("51322", 1), ("51322", 2)]


def test_export_to_gzip_file_and_refuse_overwrite(archive: str, tmp_path: Path):
    out = tmp_path / "out.jsonl.gz"
    assert invoke("export", "--db", str(archive), "-o", str(out)).exit_code == 0
    with gzip.open(out, "rt") as fh:
        assert len(fh.read().splitlines()) == 3
    again = invoke("export", "--db", str(archive), "-o", str(out))
    assert again.exit_code == Exit.REFUSED
    assert "--force" in again.stderr
    forced = invoke("export", "--db", str(archive), "-o", str(out), "--force", "--kind", "post")
    assert forced.exit_code == 0
    with gzip.open(out, "rt") as fh:
        assert len(fh.read().splitlines()) == 1
    assert not list(tmp_path.glob("*.partial"))


def test_export_rejects_bad_arguments(archive: str):
    assert invoke("export", "--db", str(archive), "--since", "someday").exit_code == Exit.USAGE
    assert invoke("export", "--db", str(archive), "--event-type", "rumour").exit_code == Exit.USAGE


def test_history_lists_versions_with_first_seen(archive: str):
    result = invoke("history", "gate:announcement:51322:en", "--db", str(archive), "-f", "json")
    assert result.exit_code == 0, result.output
    versions = json.loads(result.stdout)
    assert [(v["version"], v["current"]) for v in versions] == [(1, False), (2, True)]
    assert versions[0]["seen_at"] <= versions[1]["seen_at"]
    table = invoke("history", "gate:announcement:51322", "--db", str(archive))
    assert table.exit_code == 0
    assert "2 *" in table.stdout


def test_history_of_an_unknown_or_malformed_ref(archive: str):
    unknown = invoke("history", "gate:announcement:1", "--db", str(archive))
    assert unknown.exit_code == Exit.USAGE
    assert "no document" in unknown.stderr
    bad = invoke("history", "51322", "--db", str(archive))
    assert bad.exit_code == Exit.USAGE
    assert "SOURCE:KIND:EXTERNAL_ID" in bad.stderr


def test_diff_shows_the_edit(archive: str):
    result = invoke("diff", "gate:announcement:51322:en", "--db", str(archive))
    assert result.exit_code == 0, result.output
    assert "-Leverage from 1x to 5x." in result.stdout
    assert "+Leverage from 1x to 10x." in result.stdout
    assert "v1" in result.stdout
    assert "v2" in result.stdout
    explicit = invoke(
        "diff", "gate:announcement:51322:en", "--from", "2", "--to", "1", "--db", str(archive)
    )
    assert "+Leverage from 1x to 5x." in explicit.stdout


def test_diff_of_a_single_version_document(archive: str):
    result = invoke("diff", "gate:announcement:51310:en", "--db", str(archive))
    assert result.exit_code == Exit.USAGE
    assert "only version 1" in result.stderr
    missing = invoke("diff", "gate:announcement:51322:en", "--from", "7", "--db", str(archive))
    assert missing.exit_code == Exit.USAGE
    assert "no version 7" in missing.stderr


def test_stats(archive: str, store: Store):
    run_id = store.start_run("gate_announcements")
    store.finish_run(run_id, "finished", {"pages": 4})
    result = invoke("stats", "--db", str(archive), "--format", "json")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert {(s["kind"], s["documents"], s["versions"]) for s in stats["sources"]} == {
        ("announcement", 2, 3),
        ("post", 1, 1),
    }
    assert stats["quarantine_unresolved"] == 0
    assert stats["last_runs"][0]["counters"] == {"pages": 4}
    table = invoke("stats", "--db", str(archive))
    assert "gate_announcements" in table.stdout


def test_db_upgrade_creates_then_reports_current(tmp_path: Path):
    path = tmp_path / "new" / "annals.db"
    first = invoke("db", "upgrade", "--db", str(path))
    assert first.exit_code == 0
    assert f"-> {head_revision()}" in first.stdout
    second = invoke("db", "upgrade", "--db", str(path))
    assert "already at schema revision" in second.stdout
    assert invoke("query", "SELECT count(*) FROM documents", "--db", str(path)).exit_code == 0


def test_crawl_lists_its_spiders_and_refuses_unknown_ones(tmp_path: Path):
    listed = invoke("crawl", "--list")
    assert listed.exit_code == 0
    # A spider's line starts at the margin; its arguments follow, indented.
    names = [line.split()[0] for line in listed.stdout.splitlines() if not line[:1].isspace()]
    assert names == sorted(names)
    # The seventeen sources (Gate has two spiders: its announcements and Square).
    sources = ("gate binance okx bybit bitget kucoin upbit bithumb htx mexc cryptocom kraken "
               "bitfinex deribit bingx xt deepcoin").split()  # fmt: skip
    assert set(names) == {f"{source}_announcements" for source in sources} | {"gate_square"}
    unknown = invoke("crawl", "nope", "--db", str(tmp_path / "a.db"))
    assert unknown.exit_code == Exit.USAGE
    assert "unknown spider nope" in unknown.stderr
    assert invoke("crawl", "--db", str(tmp_path / "a.db")).exit_code == Exit.USAGE
    bad_arg = invoke("crawl", "gate_square", "-a", "novalue", "--db", str(tmp_path / "a.db"))
    assert bad_arg.exit_code == Exit.USAGE
    assert not (tmp_path / "a.db").exists()


# Runs one `annals` command as the console script does, then names the crawl libraries
# that were imported on the way.
CRAWL_LIBRARIES_IMPORTED = """
import sys
from archive.cli import main
try:
    main()
except SystemExit:
    pass
print("imported:", *sorted({name.partition(".")[0] for name in sys.modules} & {"scrapy", "twisted"}))
"""


@pytest.mark.parametrize(
    ("command", "shown", "imported"),
    [
        (["--help"], "crawl", ""),
        (["stats", "--help"], "Example", ""),
        (["search", "--help"], "Example", ""),
        (["crawl", "--help"], "Example", ""),
        (["query", "SELECT 42"], "42", ""),
        (["stats"], "quarantine: 0 unresolved", ""),
        (["crawl", "--list"], "gate_square", " scrapy twisted"),
    ],
)
def test_only_the_crawl_commands_import_scrapy(tmp_path: Path, command, shown, imported):
    # Scrapy and Twisted take a second to import: `annals query` or `--help` waits for
    # neither, while `annals --help` still lists the crawler's commands.
    db = tmp_path / "annals.db"
    assert invoke("db", "upgrade", "--db", str(db)).exit_code == 0
    result = subprocess.run(
        [sys.executable, "-c", CRAWL_LIBRARIES_IMPORTED, *command],
        capture_output=True,
        text=True,
        env={**os.environ, "ANNALS_DATABASE_URL": str(db)},
        timeout=120,
        check=False,
    )
    *output, last = result.stdout.splitlines()
    assert shown in "\n".join(output), result.stderr
    assert last == f"imported:{imported}"
