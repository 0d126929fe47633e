"""`annals export` JSONL: the exact bytes of every line on both databases (golden files
written by the export of 2026-11, when each line was a Python dict through orjson), and
what pandas and DuckDB read from them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from archive.cli import app
from archive.normalize import format_time
from archive.records import Identity, Link, Record, Removed
from archive.store import Store
from tests.helpers import FIXTURES

GOLDEN = FIXTURES / "export"
SEEN = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
runner = CliRunner()


def varied_records(seen: datetime) -> list[list[Record | Removed]]:
    """Batches that give an archive of what export has to escape and nest: Chinese, emoji,
    quotes, backslashes, control characters, nulls, nested extra, links with and without
    a target, an edit, a revert and a removed document."""
    zh = Record(
        source="gate", kind="announcement", external_id="51322", language="zh",
        url="https://www.gate.com/zh/announcements/article/51322",
        title="关于上线 SPCX（SpaceX）的公告", body_text="尊敬的用户：\n\n芝麻开门将上线 SPCX/USDT。",
        published_at=datetime(2026, 5, 22, 7, 56, 11, 123000, tzinfo=UTC),
        category="新币上线", tags=["SPCX"],
        extra={"cate_id": 27, "created_at": "2026-05-22T07:50:00.000Z", "空": "中文键"},
        seen_at=seen,
    )  # fmt: skip
    quoted = Record(
        source="gate", kind="announcement", external_id="51400", language="en",
        url="https://www.gate.com/announcements/article/51400?a=1&b=</script>",
        title='Gate Lists "QUOTE" \\ Back/Slash 🚀',
        body_text='Tab\there, bell\x07, start\x01, del\x7f.\n\n"Quoted" 👍🏽 é e\u0301',
        published_at=datetime(2026, 5, 23, tzinfo=UTC),
        updated_at=datetime(2026, 5, 23, 1, 2, 3, 456000, tzinfo=UTC),
        category="New Spot Listings", tags=["QUOTE", "A\\B"], author="Ops \"Desk\"",
        extra={
            "stats": {"views": 8638, "ratio": 0.1, "big": 12345678901234567, "neg": -3,
                      "tiny": 1e-7, "huge": 1e300, "one": 1.0, "flags": [True, False, None]},
            "note": "nul\x00 unit\x1f line\u2028 </script>", "empty": {}, "list": [],
        },
        seen_at=seen,
    )  # fmt: skip
    post = Record(
        source="gate", kind="post", external_id="21716532", language="en",
        url="https://www.gate.com/post/status/21716532", title=None,
        body_text="#Gate see this 🎉 https://www.gate.com/announcements/article/51400",
        published_at=datetime(2026, 4, 9, 13, 52, 7, tzinfo=UTC), author="Carvinal 🐳",
        tags=["Gate"], extra={"likes": 3, "from_feed": True},
        links=[
            Link("https://www.gate.com/announcements/article/51400", "gate", "announcement",
                 "51400"),
            Link("https://example.com/a?x=\"1\"&y=中"),
        ],
        seen_at=seen,
    )  # fmt: skip
    bare = Record(
        source="binance", kind="announcement", external_id="0xABC", language="en",
        url="https://www.binance.com/en/support/announcement/0xABC", title="Maintenance",
        body_text=None, body_html="<p>Short.</p>",
        published_at=datetime(2026, 3, 1, 0, 0, 0, 1000, tzinfo=UTC), seen_at=seen,
    )  # fmt: skip
    later = seen + timedelta(hours=1)
    return [
        [zh, quoted, post, bare],
        [  # an edit of each announcement with a body
            replace(zh, body_text="尊敬的用户：\n\n上线时间改为 10:00（UTC+8）。", seen_at=later),
            replace(quoted, extra={"stats": {"views": 9000}}, tags=["QUOTE"], seen_at=later),
        ],
        [replace(zh, seen_at=later + timedelta(hours=1))],  # a revert to version 1
        [
            Removed(
                Identity("binance", "announcement", "0xABC", "en"),
                bare.url,
                seen_at=later + timedelta(hours=2),
            )
        ],
    ]


@pytest.fixture
def varied(engine: sa.Engine, database: str, db_path: Path) -> str:
    """The varied archive's --db."""
    store = Store(engine)
    for batch in varied_records(SEEN):
        store.write(batch)
    return str(db_path) if database.startswith("sqlite") else database


def export_bytes(db: str, *args: str, tmp_path: Path) -> bytes:
    out = tmp_path / "export.jsonl"
    result = runner.invoke(app, ["export", "--db", db, "-o", str(out), "--force", *args])
    assert result.exit_code == 0, result.output
    return out.read_bytes()


@pytest.mark.parametrize(
    ("args", "golden"),
    [([], "varied.jsonl"), (["--all-versions"], "varied_all_versions.jsonl")],
)
def test_export_writes_the_same_bytes_as_before(varied: str, tmp_path: Path, args, golden):
    assert export_bytes(varied, *args, tmp_path=tmp_path) == (GOLDEN / golden).read_bytes()


def test_pandas_and_duckdb_read_every_line_as_it_was_written(varied: str, tmp_path: Path):
    import duckdb  # both in the test extra: the readers researchers use on the export
    import pandas

    data = export_bytes(varied, "--all-versions", tmp_path=tmp_path)
    path = tmp_path / "export.jsonl"
    expected = [orjson.loads(line) for line in data.splitlines()]
    assert len(expected) == 6

    frame = pandas.read_json(path, lines=True)
    assert list(frame.columns) == list(expected[0])
    assert frame["ref"].tolist() == [e["ref"] for e in expected]
    assert frame["body_text"].tolist() == [e["body_text"] for e in expected]
    assert frame["extra"].tolist() == [e["extra"] for e in expected]
    assert frame["links"].tolist() == [e["links"] for e in expected]
    assert frame["current"].tolist() == [e["current"] for e in expected]
    published = [t.isoformat(timespec="milliseconds") for t in frame["published_at"]]
    assert published == [e["published_at"].replace("Z", "+00:00") for e in expected]

    rows = duckdb.connect().execute(
        "SELECT ref, version, current, title, body_text, tags, links, epoch_ms(seen_at)"
        " FROM read_json(?, format = 'newline_delimited')",
        [str(path)],
    )
    assert rows.fetchall() == [
        (
            e["ref"], e["version"], e["current"], e["title"], e["body_text"], e["tags"],
            e["links"], int(datetime.fromisoformat(e["seen_at"]).timestamp() * 1000),
        )
        for e in expected
    ]  # fmt: skip


def test_parquet_holds_the_golden_lines(varied: str, tmp_path: Path):
    import pyarrow.parquet as pq  # the parquet extra, in the test extra

    out = tmp_path / "export.parquet"
    args = ["export", "--db", varied, "--format", "parquet", "--all-versions", "-o", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    golden = (GOLDEN / "varied_all_versions.jsonl").read_bytes().splitlines()
    table = pq.read_table(out)
    for row, want in zip(table.to_pylist(), map(orjson.loads, golden), strict=True):
        for name, value in row.items():
            if isinstance(value, datetime):
                row[name] = format_time(value)
        assert row.pop("extra") == orjson.dumps(want.pop("extra")).decode()
        assert row == want


def test_the_database_escapes_every_code_point_as_orjson_does(engine: sa.Engine):
    """What keeps the lines the same bytes: the database's JSON string for any text is
    orjson's (PostgreSQL text cannot hold NUL, so it starts at U+0001)."""
    from archive.export import TEXT, _flavour

    db = _flavour(engine.dialect)
    value = db.value(TEXT, sa.cast(sa.bindparam("text"), sa.Text))
    query = sa.select(db.json_object([("k", value)]))
    first = 0 if engine.dialect.name == "sqlite" else 1
    points = [chr(c) for c in range(first, 0x110000) if not 0xD800 <= c < 0xE000]
    texts = ["".join(points[i : i + 2000]) for i in range(0, len(points), 2000)]
    with engine.connect() as conn:
        written = [conn.execute(query, {"text": text}).scalar_one() for text in texts]
    assert written == [orjson.dumps({"k": text}).decode() for text in texts]
