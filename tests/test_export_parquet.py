"""`annals export --format parquet`: the same rows and filters as JSONL, typed columns,
written in row groups, never over an existing file."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archive.cli import app
from archive.db import open_archive, resolve_url
from archive.export import Filters, export_parquet
from archive.records import Link
from archive.store import Store
from tests.helpers import RecordFactory

pq = pytest.importorskip("pyarrow.parquet", reason="the parquet extra is not installed")
runner = CliRunner()


@pytest.fixture
def archive(db_path: Path, make_record: RecordFactory) -> Path:
    engine = open_archive(resolve_url(str(db_path)), create=True)
    store = Store(engine)
    store.write(
        [
            make_record("51322", body_html="<p>Leverage from 1x to 5x.</p>"),
            make_record(
                "51310",
                title="Gate Will Delist NXRA",
                category="Delistings",
                published_at=datetime(2026, 5, 21, 12, tzinfo=UTC),
            ),
            make_record(
                "21716532",
                kind="post",
                title=None,
                body_text="#Gate see this",
                published_at=datetime(2026, 4, 9, 13, 52, 7, 250000, tzinfo=UTC),
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
    store.write([make_record("51322", body_html="<p>Leverage from 1x to 10x.</p>")])
    engine.dispose()
    return db_path


def export(*args: str):
    return runner.invoke(app, ["export", *args])


def jsonl(archive: Path, *args: str) -> list[dict]:
    result = export("--db", str(archive), *args)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--all-versions"],
        ["--event-type", "delisting"],
        ["--kind", "post"],
        ["--since", "2026-05-01", "--until", "2026-05-22"],
    ],
)
def test_parquet_holds_what_jsonl_holds(archive: Path, tmp_path: Path, args: list[str]):
    out = tmp_path / "out.parquet"
    result = export("--db", str(archive), "--format", "parquet", "-o", str(out), *args)
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    expected = jsonl(archive, *args)
    assert table.num_rows == len(expected)
    for row, want in zip(table.to_pylist(), expected, strict=True):
        for name in (
            "published_at",
            "first_seen_at",
            "last_seen_at",
            "seen_at",
            "removed_at",
            "updated_at",
        ):
            value = row.pop(name)
            assert (
                value.isoformat(timespec="milliseconds").replace("+00:00", "Z") if value else None
            ) == want.pop(name)
        assert json.loads(row.pop("extra")) == want.pop("extra")
        assert row == want


def test_parquet_columns_are_typed(archive: Path, tmp_path: Path):
    out = tmp_path / "out.parquet"
    export("--db", str(archive), "--format", "parquet", "-o", str(out))
    schema = pq.read_schema(out)
    assert str(schema.field("published_at").type) == "timestamp[ms, tz=UTC]"
    assert str(schema.field("version").type) == "int32"
    assert str(schema.field("tags").type) == "list<element: string>"
    post = next(r for r in pq.read_table(out).to_pylist() if r["kind"] == "post")
    assert post["links"] == [
        {
            "url": "https://www.gate.com/announcements/article/51322",
            "target": "gate:announcement:51322",
        }
    ]
    assert post["published_at"] == datetime(2026, 4, 9, 13, 52, 7, 250000, tzinfo=UTC)


def test_parquet_is_written_in_row_groups(archive: Path, tmp_path: Path):
    engine = open_archive(resolve_url(str(archive)), readonly=True)
    out = tmp_path / "out.parquet"
    written = export_parquet(engine, out, Filters(), all_versions=True, row_group_size=2)
    engine.dispose()
    meta = pq.ParquetFile(out).metadata
    assert (written, meta.num_rows, meta.num_row_groups) == (4, 4, 2)


def test_parquet_refuses_stdout_and_an_existing_file(archive: Path, tmp_path: Path):
    to_stdout = export("--db", str(archive), "--format", "parquet")
    assert to_stdout.exit_code == 2
    assert "give -o FILE.parquet" in to_stdout.output
    out = tmp_path / "out.parquet"
    out.write_bytes(b"keep me")
    again = export("--db", str(archive), "--format", "parquet", "-o", str(out))
    assert again.exit_code == 6
    assert out.read_bytes() == b"keep me"
    forced = export("--db", str(archive), "--format", "parquet", "-o", str(out), "--force")
    assert forced.exit_code == 0, forced.output
    assert pq.read_table(out).num_rows == 3
    assert not (tmp_path / "out.parquet.partial").exists()


def test_unknown_export_format_is_refused(archive: Path):
    result = export("--db", str(archive), "--format", "xlsx")
    assert result.exit_code == 2
    assert "jsonl, parquet" in result.output
