"""Streaming export: JSONL lines built by the database, Parquet from column batches.

Each JSONL line is made in SQL where the rows are (SQLite's json_object, PostgreSQL's
to_json and concat; a version's links aggregated in a correlated subquery) and read
from the DBAPI cursor a chunk at a time: no Python object per row, so the export runs
near the database's own speed and memory stays flat however large the archive is.

The lines are byte for byte what orjson wrote of each row before (tests/test_export.py
keeps those bytes): both databases escape a string as orjson does (UTF-8 as it is; `"`,
`\\` and control characters escaped; the tests check every code point), times are the
stored fixed-width text (SQLite) or the same text from to_char (PostgreSQL), and the
JSON columns (tags, symbols, extra) are the compact text annals' serializer, orjson,
stored (SQLite's json() re-minifies it, keeping numbers and escapes as written).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.engine import Connection, Dialect, Engine

from archive.db import ArchiveError
from archive.models import TABLES

documents, versions, links = TABLES["documents"], TABLES["versions"], TABLES["links"]
CHUNK = 1000


@dataclass(frozen=True)
class Filters:
    """The filters `export` (and later `search`) share."""

    source: str | None = None
    kind: str | None = None
    event_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def apply(self, query: sa.Select[Any]) -> sa.Select[Any]:
        if self.source:
            query = query.where(documents.c.source == self.source)
        if self.kind:
            query = query.where(documents.c.kind == self.kind)
        if self.event_type:
            query = query.where(versions.c.event_type == self.event_type)
        if self.since:
            query = query.where(documents.c.published_at >= self.since)
        if self.until:
            query = query.where(documents.c.published_at < self.until)
        return query


def _query(filters: Filters, all_versions: bool, *columns: Any) -> sa.Select[Any]:
    join = versions.c.document_id == documents.c.id
    if not all_versions:
        join = sa.and_(join, versions.c.version == documents.c.current_version)
    query = sa.select(*columns).select_from(documents.join(versions, join))
    return filters.apply(query).order_by(
        documents.c.published_at, documents.c.id, versions.c.version
    )


def count(engine: Engine, filters: Filters, *, all_versions: bool = False) -> int:
    inner = _query(filters, all_versions, versions.c.id).order_by(None).subquery()
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(inner)).scalar_one())


# --- the fields, as each database writes them -----------------------------------------------


def _sql(text: str) -> Any:
    """A constant of the SQL itself (a key, a separator), not a bound parameter."""
    return sa.literal_column("'" + text.replace("'", "''") + "'", sa.Text)


def _joined(*parts: Any) -> Any:
    """`a || ':' || b ...`: NULL if any part is NULL."""
    out = parts[0]
    for part in parts[1:]:
        out = out.op("||")(_sql(":")).op("||")(part)
    return out


_REF = _joined(documents.c.source, documents.c.kind, documents.c.external_id, documents.c.language)
_TARGET = sa.case(
    (
        links.c.target_external_id.isnot(None),
        _joined(links.c.target_source, links.c.target_kind, links.c.target_external_id),
    )
)
_CURRENT = versions.c.version == documents.c.current_version

# Each field of a line, in the line's order, with what it holds.
TEXT, TIME, NUMBER, BOOL, JSON, LINKS = "text", "time", "number", "bool", "json", "links"
FIELDS: tuple[tuple[str, str, Any], ...] = (
    ("ref", TEXT, _REF),
    *((n, TEXT, documents.c[n]) for n in ("source", "kind", "external_id", "language", "url")),
    *(
        (n, TIME, documents.c[n])
        for n in ("published_at", "first_seen_at", "last_seen_at", "removed_at")
    ),
    ("version", NUMBER, versions.c.version),
    ("current", BOOL, _CURRENT),
    ("seen_at", TIME, versions.c.seen_at),
    *((n, TEXT, versions.c[n]) for n in ("title", "body_text", "category", "event_type")),
    ("tags", JSON, versions.c.tags),
    ("symbols", JSON, versions.c.symbols),
    ("author", TEXT, versions.c.author),
    ("updated_at", TIME, versions.c.updated_at),
    ("content_hash", TEXT, versions.c.content_hash),
    ("links", LINKS, None),
    ("extra", JSON, versions.c.extra),
)
_PG_TIME = 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'  # format_time's form; to_char truncates, as it does


def _pg_time(column: Any) -> Any:
    return sa.func.to_char(sa.func.timezone(_sql("UTC"), column), _sql(_PG_TIME))


class _SQLite:
    """Values for json_object: SQL values, or JSON (json(...) marks text as JSON)."""

    @staticmethod
    def value(kind: str, column: Any) -> Any:
        if kind == BOOL:
            return sa.case((column, sa.func.json(_sql("true"))), else_=sa.func.json(_sql("false")))
        if kind == JSON:
            return sa.func.json(column)
        if kind == LINKS:
            ordered = (
                sa.select(links.c.url, _TARGET.label("target"))
                .where(links.c.version_id == versions.c.id)
                .order_by(links.c.id)  # json_group_array keeps its input's order
                .correlate(versions)
                .subquery()
            )
            link = sa.func.json_object(_sql("url"), ordered.c.url, _sql("target"), ordered.c.target)
            return sa.select(sa.func.json_group_array(link)).scalar_subquery()
        return column  # text, numbers and times (stored as their ISO text) as they are

    @staticmethod
    def json_object(fields: Sequence[tuple[str, Any]]) -> Any:
        return sa.func.json_object(*(part for key, value in fields for part in (_sql(key), value)))

    @staticmethod
    def time_text(column: Any) -> Any:
        return column


class _Postgres:
    """JSON text for concat: json_build_object would put spaces around its colons."""

    @staticmethod
    def value(kind: str, column: Any) -> Any:
        if kind == TEXT:
            return sa.func.coalesce(sa.cast(sa.func.to_json(column), sa.Text), _sql("null"))
        if kind == TIME:
            quoted = _sql('"').op("||")(_pg_time(column)).op("||")(_sql('"'))
            return sa.func.coalesce(quoted, _sql("null"))
        if kind == NUMBER:
            return sa.func.coalesce(sa.cast(column, sa.Text), _sql("null"))
        if kind == BOOL:
            return sa.case((column, _sql("true")), else_=_sql("false"))
        if kind == JSON:
            return sa.cast(column, sa.Text)  # json keeps the text it was given
        assert kind == LINKS
        link = _Postgres.json_object(
            [
                ("url", _Postgres.value(TEXT, links.c.url)),
                ("target", _Postgres.value(TEXT, _TARGET)),
            ]
        )
        listed = sa.func.string_agg(link, aggregate_order_by(_sql(","), links.c.id))
        inner = sa.select(listed).where(links.c.version_id == versions.c.id).scalar_subquery()
        return sa.func.concat(_sql("["), inner, _sql("]"))

    @staticmethod
    def json_object(fields: Sequence[tuple[str, Any]]) -> Any:
        parts: list[Any] = []
        for i, (key, value) in enumerate(fields):
            parts += [_sql(("{" if i == 0 else ",") + f'"{key}":'), value]
        return sa.func.concat(*parts, _sql("}"))

    @staticmethod
    def time_text(column: Any) -> Any:
        return _pg_time(column)


def _flavour(dialect: Dialect) -> type[_SQLite] | type[_Postgres]:
    if dialect.name == "sqlite":
        return _SQLite
    if dialect.name == "postgresql":
        return _Postgres
    raise ArchiveError(f"annals export reads SQLite and PostgreSQL archives, not {dialect.name}")


def _line(dialect: Dialect) -> Any:
    """One export line, as the database writes it."""
    db = _flavour(dialect)
    return db.json_object([(name, db.value(kind, column)) for name, kind, column in FIELDS])


# --- reading the cursor -----------------------------------------------------------------------


def _driver_sql(query: sa.Select[Any], dialect: Dialect) -> tuple[str, Any]:
    """The SQL and DBAPI parameters of `query`, bound values processed by their types (a
    time filter becomes the stored text on SQLite), for a cursor of the driver's own."""
    compiled = query.compile(dialect=dialect)
    values = compiled.construct_params()
    for name, bind in compiled.binds.items():
        process = bind.type.bind_processor(dialect)
        if process is not None and values.get(name) is not None:
            values[name] = process(values[name])
    if compiled.positional:
        return compiled.string, tuple(values[name] for name in compiled.positiontup or ())
    return compiled.string, values


@contextmanager
def _cursor(conn: Connection, query: sa.Select[Any], *, text_as_bytes: bool) -> Iterator[Any]:
    """A DBAPI cursor over `query`'s rows, in the connection's transaction: on PostgreSQL
    a server-side (named) cursor, so rows come from the server a chunk at a time. With
    `text_as_bytes`, SQLite hands text over as its UTF-8 bytes, undecoded."""
    sql, params = _driver_sql(query, conn.dialect)
    driver: Any = conn.connection.dbapi_connection
    postgres = conn.dialect.name == "postgresql"
    cursor = driver.cursor(name="annals_export") if postgres else driver.cursor()
    as_bytes = text_as_bytes and not postgres
    text_factory = getattr(driver, "text_factory", None)
    if as_bytes:
        driver.text_factory = bytes
    try:
        cursor.execute(sql, params)
        yield cursor
    finally:
        cursor.close()
        if as_bytes:
            driver.text_factory = text_factory


def _chunks(
    conn: Connection, query: sa.Select[Any], size: int, *, text_as_bytes: bool = False
) -> Iterator[list[Any]]:
    with _cursor(conn, query, text_as_bytes=text_as_bytes) as cursor:
        while rows := cursor.fetchmany(size):
            yield rows


def jsonl_chunks(
    conn: Connection, filters: Filters, *, all_versions: bool, size: int = CHUNK
) -> Iterator[tuple[int, bytes]]:
    """The export's lines, `size` at a time: how many, and their bytes, each line ending in
    a newline. SQLite's lines stay bytes from the database to the file: decoding them to
    str and encoding them again doubled the export's time (bench/RESULTS.md, export)."""
    query = _query(filters, all_versions, _line(conn.dialect))
    for rows in _chunks(conn, query, size, text_as_bytes=True):
        lines = [row[0] for row in rows]
        if isinstance(lines[0], str):  # PostgreSQL's driver decodes
            yield len(lines), ("\n".join(lines) + "\n").encode()
        else:
            yield len(lines), b"\n".join(lines) + b"\n"


def export_jsonl(
    engine: Engine,
    out: IO[bytes],
    filters: Filters | None = None,
    *,
    all_versions: bool = False,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write one JSON line per document (or per version) to `out`; returns how many."""
    written = 0
    with engine.connect() as conn, conn.begin():
        for n, data in jsonl_chunks(conn, filters or Filters(), all_versions=all_versions):
            out.write(data)
            written += n
            if progress:
                progress(n)
    return written


# --- Parquet ----------------------------------------------------------------------------------

PARQUET_ROW_GROUP = 10_000
_NESTED = ("tags", "symbols", "links")  # lists: read by Arrow's JSON reader, batch by batch


def parquet_schema() -> Any:
    """The Parquet columns: those of a JSONL line, times as timestamp[ms, UTC] and
    `extra` as JSON text (its keys differ from source to source)."""
    import pyarrow as pa

    time = pa.timestamp("ms", tz="UTC")
    text = pa.string()
    kinds = {
        TEXT: text,
        TIME: time,
        NUMBER: pa.int32(),
        BOOL: pa.bool_(),
        JSON: pa.list_(text),  # tags and symbols; extra stays JSON text
        LINKS: pa.list_(pa.struct([("url", text), ("target", text)])),
    }
    fields = [(name, text if name == "extra" else kinds[kind]) for name, kind, _ in FIELDS]
    return pa.schema(fields, metadata={"annals.times": "UTC"})


def _parquet_columns(dialect: Dialect) -> list[Any]:
    """The columns Parquet reads, in FIELDS order, then the nested ones as one JSON
    object: scalars as the database holds them, times as their ISO text, extra as JSON
    text."""
    db = _flavour(dialect)
    columns = []
    for name, kind, column in FIELDS:
        if name in _NESTED:
            continue
        if kind == TIME:
            columns.append(db.time_text(column))
        elif kind == JSON:  # extra: its text, as the JSONL line holds it
            columns.append(sa.cast(db.value(JSON, column), sa.Text))
        elif kind == BOOL:
            columns.append(sa.case((column, sa.true()), else_=sa.false()))
        else:
            columns.append(column)
    nested = [(name, db.value(kind, column)) for name, kind, column in FIELDS if name in _NESTED]
    return [*columns, db.json_object(nested)]


def _record_batch(rows: list[Any], schema: Any) -> Any:
    """Arrow arrays made from the cursor's columns; the lists parsed by Arrow's JSON reader."""
    import pyarrow as pa
    import pyarrow.json as pa_json

    columns = list(zip(*rows, strict=True))
    nested_schema = pa.schema([schema.field(name) for name in _NESTED])
    lists = "\n".join(columns[-1]).encode()
    nested = pa_json.read_json(
        io.BytesIO(lists),
        read_options=pa_json.ReadOptions(use_threads=False, block_size=len(lists) + 1),
        parse_options=pa_json.ParseOptions(
            explicit_schema=nested_schema, unexpected_field_behavior="error"
        ),
    )
    scalars = iter(columns[:-1])
    arrays = []
    for field in schema:
        if field.name in _NESTED:
            arrays.append(nested.column(field.name).combine_chunks())
        elif pa.types.is_timestamp(field.type) or pa.types.is_string(field.type):
            arrays.append(pa.array(next(scalars), pa.string()).cast(field.type))
        else:  # a number, or a boolean (SQLite's is 0 or 1)
            arrays.append(pa.array(next(scalars)).cast(field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def export_parquet(
    engine: Engine,
    out: Path | IO[bytes],
    filters: Filters | None = None,
    *,
    all_versions: bool = False,
    progress: Callable[[int], None] | None = None,
    row_group_size: int = PARQUET_ROW_GROUP,
) -> int:
    """Write the rows `export_jsonl` writes as Parquet to a file or a binary stream,
    one row group at a time, so memory holds one row group however large the archive
    is; returns how many rows. Where the bytes land (and that a failed export leaves no
    partial file) is archive.targets' concern."""
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ArchiveError(
            "annals export --format parquet needs pyarrow (the `parquet` extra of annals): "
            "pip install pyarrow"
        ) from exc
    schema = parquet_schema()
    written = 0
    with (
        pq.ParquetWriter(out, schema, compression="zstd") as writer,
        engine.connect() as conn,
        conn.begin(),
    ):
        query = _query(filters or Filters(), all_versions, *_parquet_columns(conn.dialect))
        for rows in _chunks(conn, query, row_group_size):
            writer.write_batch(_record_batch(rows, schema))
            written += len(rows)
            if progress:
                progress(len(rows))
    return written
