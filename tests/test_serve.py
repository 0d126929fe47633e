"""`annals serve`: the metadata Datasette gets, its canned queries on a real archive, the
server over HTTP on 127.0.0.1, and the search page rendered by headless Chromium."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from archive import serve
from archive.cli import app
from archive.db import open_archive, resolve_url
from archive.models import TABLES, UTCDateTime
from archive.records import Link, Record
from archive.search import FTS_TABLE
from archive.store import Store

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts" / "serve"
T0 = datetime(2026, 5, 18, 9, tzinfo=UTC)  # a Monday


def record(external_id: str, title: str, body: str, **fields: Any) -> Record:
    values: dict[str, Any] = {
        "source": "gate",
        "kind": "announcement",
        "external_id": external_id,
        "language": "en",
        "url": f"https://www.gate.com/announcements/article/{external_id}",
        "title": title,
        "body_text": body,
        "published_at": T0,
        "seen_at": T0 + timedelta(minutes=5),
    }
    values.update(fields)
    return Record(**values)


def fill(path: Path) -> None:
    """Two exchanges over two weeks: listings, a delisting edited after publication, and a
    Square post citing an announcement."""
    engine = open_archive(resolve_url(str(path)), create=True)
    store = Store(engine)
    store.write(
        [
            record("51322", "Gate Will List Velora (VLR) for Spot Trading", "VLR/USDT opens."),
            record(
                "51310",
                "Gate Will Delist NXRA and QUIL",
                "Trading of NXRA/USDT ends on 2026-05-28.",
                published_at=T0 + timedelta(days=1),
                seen_at=T0 + timedelta(days=1, minutes=2),
            ),
            record(
                "900",
                "Binance Will List Puffin (PUF)",
                "Binance will list PUF.",
                source="binance",
                url="https://www.binance.com/en/support/announcement/900",
                published_at=T0 + timedelta(days=8),
                seen_at=T0 + timedelta(days=8, minutes=10),
            ),
            record(
                "21716532",
                None,
                "See the Velora listing",
                kind="post",
                url="https://www.gate.com/post/status/21716532",
                links=[
                    Link(
                        "https://www.gate.com/announcements/article/51322",
                        "gate",
                        "announcement",
                        "51322",
                    )
                ],
            ),
        ]
    )
    store.write(
        [
            record(
                "51310",
                "Gate Will Delist NXRA and QUIL",
                "Trading of NXRA/USDT ends on 2026-05-29.\nWithdrawals stay open.",
                published_at=T0 + timedelta(days=1),
                seen_at=T0 + timedelta(days=1, hours=3),
            )
        ]
    )
    engine.dispose()


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("serve") / "annals.db"
    fill(path)
    return path


# --- metadata and canned queries, without a server ------------------------------------------


def test_metadata_describes_every_table_column_and_time():
    meta = serve.metadata("annals")
    tables = meta["databases"]["annals"]["tables"]
    for name, table in TABLES.items():
        described = tables[name]["columns"]
        for column in table.columns:
            if column.name == "id":
                continue
            assert described.get(column.name), f"{name}.{column.name} has no description"
            if isinstance(column.type, UTCDateTime):
                assert "UTC" in described[column.name], f"{name}.{column.name}: no time zone"
    view = tables["current_documents"]
    assert (view["fts_table"], view["fts_pk"]) == (FTS_TABLE, "id")
    assert view["facets"] == ["source", "kind", "event_type", "category"]
    assert "UTC" in view["columns"]["published_at"]
    assert set(meta["databases"]["annals"]["queries"]) >= {
        "search",
        "latest_listings",
        "delistings",
        "edited_after_publication",
        "detection_lag",
        "citing",
        "announcements_per_week",
    }
    chart = meta["plugins"]["datasette-dashboards"]["annals"]["charts"]["per-week"]
    assert chart["db"] == "annals"
    assert chart["library"] == "vega-lite"


def canned(archive: Path, name: str, **params: str) -> list[dict[str, Any]]:
    """Run a canned query as Datasette would: read-only, with annals' SQL functions."""
    conn = sqlite3.connect(f"file:{archive}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    conn.create_function("annals_changed_lines", 2, serve.changed_lines, deterministic=True)
    try:
        sql = serve.CANNED_QUERIES[name]["sql"]
        return [dict(row) for row in conn.execute(sql, params)]
    finally:
        conn.close()


def test_canned_queries_answer_what_they_say(archive: Path):
    latest = canned(archive, "latest_listings")
    assert [r["ref"] for r in latest] == [
        "binance:announcement:900:en",
        "gate:announcement:51322:en",
    ]
    delistings = canned(archive, "delistings", since="2026-05-01", until="")
    assert [r["ref"] for r in delistings] == ["gate:announcement:51310:en"]
    assert canned(archive, "delistings", since="2026-05-01", until="2026-05-19") == []
    [edit] = canned(archive, "edited_after_publication")
    assert edit["ref"] == "gate:announcement:51310:en"
    assert (edit["version"], edit["lines_changed"]) == (2, 3)  # one line out, two in
    assert edit["hours_after_publication"] == 3.0
    lag = {(r["source"], r["kind"]): r for r in canned(archive, "detection_lag", max_days="")}
    assert lag[("gate", "announcement")]["median_minutes"] == 2.0
    assert lag[("binance", "announcement")]["max_minutes"] == 10.0
    citing = canned(archive, "citing", ref="gate:announcement:51322:en")
    assert [(r["ref"], r["in_current_version"]) for r in citing] == [("gate:post:21716532:en", 1)]
    weeks = canned(archive, "announcements_per_week")
    assert [(r["week"], r["source"], r["announcements"]) for r in weeks] == [
        ("2026-05-18", "gate", 2),
        ("2026-05-25", "binance", 1),
    ]
    ranked = canned(archive, "search", q="velora")
    assert [r["ref"] for r in ranked] == ["gate:announcement:51322:en", "gate:post:21716532:en"]


def test_changed_lines_counts_like_annals_diff():
    assert serve.changed_lines("a\nb\nc", "a\nB\nc\nd") == 3
    assert serve.changed_lines("same", "same") == 0
    assert serve.changed_lines(None, "new") == 2  # "" -> "new": one line out, one in


def test_serve_without_the_extra_says_how_to_install(archive: Path, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasette", None)  # as if not installed
    result = CliRunner().invoke(app, ["serve", "--db", str(archive)])
    assert result.exit_code == 1
    assert "pip install 'annals[serve]'" in result.output


def test_serve_refuses_a_database_that_is_not_a_sqlite_file():
    url = "postgresql+psycopg://annals@127.0.0.1:1/annals"
    result = CliRunner().invoke(app, ["serve", "--db", url])
    assert result.exit_code == 2
    assert "SQLite files only" in result.output


# --- the server ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def digest(path: Path) -> str:
    h = hashlib.sha256()
    for part in (path, Path(f"{path}-wal")):
        if part.exists():
            h.update(part.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def server(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`annals serve` in its own process on a free port of 127.0.0.1; its base URL."""
    pytest.importorskip("datasette", reason="the serve extra is not installed")
    port = free_port()
    log = tmp_path_factory.mktemp("serve-log") / "serve.log"
    env = {**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    env.pop("ANNALS_DATABASE_URL", None)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "archive", "serve", "--db", str(archive), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"annals serve exited with {process.returncode}:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(f"{base}/-/versions.json", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"annals serve did not answer in 60 s:\n{log.read_text()}")
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, response.read().decode()


def get_json(url: str) -> Any:
    return json.loads(get(url)[1])


def test_table_page_canned_query_and_search_over_http(server: str, archive: Path):
    before = digest(archive)
    status, page = get(f"{server}/annals/current_documents")
    assert status == 200
    assert "Gate Will Delist NXRA and QUIL" in page
    assert "Binance Will List Puffin (PUF)" in page

    status, page = get(f"{server}/annals/latest_listings")
    assert status == 200
    assert "Binance Will List Puffin (PUF)" in page
    delist = get_json(f"{server}/annals/delistings.json?since=2026-05-01&until=&_shape=array")
    assert [row["ref"] for row in delist] == ["gate:announcement:51310:en"]
    citing = get_json(f"{server}/annals/citing.json?ref=gate:announcement:51322&_shape=array")
    assert [row["ref"] for row in citing] == ["gate:post:21716532:en"]
    edits = get_json(f"{server}/annals/edited_after_publication.json?_shape=array")
    assert [(row["ref"], row["lines_changed"]) for row in edits] == [
        ("gate:announcement:51310:en", 3)
    ]

    status, page = get(f"{server}/annals/current_documents?_search=delist")
    assert status == 200
    assert 'name="_search"' in page  # the search box
    assert "Gate Will Delist NXRA and QUIL" in page
    assert "Gate Will List Velora" not in page
    found = get_json(
        f"{server}/annals/current_documents.json?_shape=array&_search="
        + urllib.parse.quote("NXRA/USDT")
    )
    assert [row["ref"] for row in found] == ["gate:announcement:51310:en"]
    # The index follows the current version: the superseded date is not found.
    assert get_json(f"{server}/annals/current_documents.json?_shape=array&_search=05-28") == []

    status, page = get(f"{server}/-/dashboards/annals")
    assert status == 200
    assert "Announcements per exchange per week" in page
    status, script = get(f"{server}/-/static-plugins/datasette_dashboards/vega-lite.min.js")
    assert status == 200
    assert len(script) > 100_000
    assert digest(archive) == before, "serving changed the archive"


def test_datasette_refuses_to_write(server: str):
    sql = urllib.parse.quote("UPDATE documents SET url = 'x'")
    with pytest.raises(urllib.error.HTTPError) as caught:
        get(f"{server}/annals.json?sql={sql}")
    caught.value.close()
    assert caught.value.code == 400


# --- the browser --------------------------------------------------------------------------------


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip(
            "SKIPPED: no chromium on PATH (Debian's `chromium` package; .ci/run installs it): "
            "the search page was not checked in a browser"
        )
    return found


def browse(url: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",  # tests run as root in CI containers
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            *args,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_search_page_renders_in_headless_chromium(server: str, tmp_path: Path):
    url = f"{server}/annals/current_documents?_search=velora"
    dom = browse(url, tmp_path / "profile", "--dump-dom")
    assert dom.returncode == 0, dom.stderr
    body = re.search(r"<tbody>(.*?)</tbody>", dom.stdout, re.S)
    assert body is not None, dom.stdout[:2000]
    result_rows = re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S)
    assert len(result_rows) == 2
    assert "Gate Will List Velora (VLR) for Spot Trading" in result_rows[0] + result_rows[1]
    assert "gate:post:21716532:en" in result_rows[0] + result_rows[1]
    assert "2 rows where search matches" in dom.stdout

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "search.png"
    shot.unlink(missing_ok=True)
    taken = browse(url, tmp_path / "profile", "--window-size=1400,2000", f"--screenshot={shot}")
    assert taken.returncode == 0, taken.stderr
    assert shot.stat().st_size > 10_000
    print(f"screenshot of the search page: {shot}")


def test_weekly_chart_renders_in_headless_chromium(server: str, tmp_path: Path):
    url = f"{server}/-/dashboards/annals"
    dom = browse(url, tmp_path / "profile", "--virtual-time-budget=15000", "--dump-dom")
    assert dom.returncode == 0, dom.stderr
    # Vega draws the chart as an SVG whose class is "marks", from the bundled scripts.
    assert re.search(r'<svg[^>]*class="marks"', dom.stdout), dom.stdout[-3000:]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "chart.png"
    shot.unlink(missing_ok=True)
    browse(
        url,
        tmp_path / "profile",
        "--virtual-time-budget=15000",
        "--window-size=1400,900",
        f"--screenshot={shot}",
    )
    print(f"screenshot of the weekly chart: {shot}")
