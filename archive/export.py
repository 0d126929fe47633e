"""Streaming JSONL export: one object per document (its current version) or per version.

Rows are read in chunks and written as they come, so memory stays flat however
large the archive is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from archive.models import TABLES
from archive.normalize import format_time

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


def _query(filters: Filters, all_versions: bool) -> sa.Select[Any]:
    join = versions.c.document_id == documents.c.id
    if not all_versions:
        join = sa.and_(join, versions.c.version == documents.c.current_version)
    query = sa.select(
        documents.c.source,
        documents.c.kind,
        documents.c.external_id,
        documents.c.language,
        documents.c.url,
        documents.c.published_at,
        documents.c.first_seen_at,
        documents.c.last_seen_at,
        documents.c.removed_at,
        documents.c.current_version,
        versions.c.id.label("version_id"),
        versions.c.version,
        versions.c.seen_at,
        versions.c.title,
        versions.c.body_text,
        versions.c.category,
        versions.c.event_type,
        versions.c.tags,
        versions.c.symbols,
        versions.c.author,
        versions.c.updated_at,
        versions.c.content_hash,
        versions.c.extra,
    ).select_from(documents.join(versions, join))
    return filters.apply(query).order_by(
        documents.c.published_at, documents.c.id, versions.c.version
    )


def count(engine: Engine, filters: Filters, *, all_versions: bool = False) -> int:
    inner = _query(filters, all_versions).order_by(None).subquery()
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(inner)).scalar_one())


def _time(value: datetime | None) -> str | None:
    return format_time(value) if value is not None else None


def iter_objects(
    conn: Connection, filters: Filters, *, all_versions: bool
) -> Iterator[dict[str, Any]]:
    result = conn.execution_options(stream_results=True, yield_per=CHUNK).execute(
        _query(filters, all_versions)
    )
    for rows in result.partitions():
        by_version: dict[int, list[dict[str, Any]]] = {row.version_id: [] for row in rows}
        link_rows = conn.execute(
            sa.select(
                links.c.version_id,
                links.c.url,
                links.c.target_source,
                links.c.target_kind,
                links.c.target_external_id,
            )
            .where(links.c.version_id.in_(list(by_version)))
            .order_by(links.c.id)
        )
        for link in link_rows:
            target = None
            if link.target_external_id is not None:
                target = ":".join((link.target_source, link.target_kind, link.target_external_id))
            by_version[link.version_id].append({"url": link.url, "target": target})
        for row in rows:
            yield {
                "ref": f"{row.source}:{row.kind}:{row.external_id}:{row.language}",
                "source": row.source,
                "kind": row.kind,
                "external_id": row.external_id,
                "language": row.language,
                "url": row.url,
                "published_at": _time(row.published_at),
                "first_seen_at": _time(row.first_seen_at),
                "last_seen_at": _time(row.last_seen_at),
                "removed_at": _time(row.removed_at),
                "version": row.version,
                "current": row.version == row.current_version,
                "seen_at": _time(row.seen_at),
                "title": row.title,
                "body_text": row.body_text,
                "category": row.category,
                "event_type": row.event_type,
                "tags": row.tags,
                "symbols": row.symbols,
                "author": row.author,
                "updated_at": _time(row.updated_at),
                "content_hash": row.content_hash,
                "links": by_version[row.version_id],
                "extra": row.extra,
            }


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
    with engine.connect() as conn:
        for obj in iter_objects(conn, filters or Filters(), all_versions=all_versions):
            out.write(orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE))
            written += 1
            if progress and written % CHUNK == 0:
                progress(CHUNK)
    if progress:
        progress(written % CHUNK)
    return written


# --- Parquet ----------------------------------------------------------------------------------

PARQUET_ROW_GROUP = 10_000
_PARQUET_TIMES = (
    "published_at",
    "first_seen_at",
    "last_seen_at",
    "removed_at",
    "seen_at",
    "updated_at",
)


def parquet_schema() -> Any:
    """The Parquet columns: those of a JSONL line, times as timestamp[ms, UTC] and
    `extra` as JSON text (its keys differ from source to source)."""
    import pyarrow as pa

    time = pa.timestamp("ms", tz="UTC")
    text = pa.string()
    fields = [
        *((name, text) for name in ("ref", "source", "kind", "external_id", "language", "url")),
        *((name, time) for name in ("published_at", "first_seen_at", "last_seen_at")),
        ("removed_at", time),
        ("version", pa.int32()),
        ("current", pa.bool_()),
        ("seen_at", time),
        *((name, text) for name in ("title", "body_text", "category", "event_type")),
        ("tags", pa.list_(text)),
        ("symbols", pa.list_(text)),
        ("author", text),
        ("updated_at", time),
        ("content_hash", text),
        ("links", pa.list_(pa.struct([("url", text), ("target", text)]))),
        ("extra", text),
    ]
    return pa.schema(fields, metadata={"annals.times": "UTC"})


def export_parquet(
    engine: Engine,
    out: Path | IO[bytes],
    filters: Filters | None = None,
    *,
    all_versions: bool = False,
    progress: Callable[[int], None] | None = None,
    row_group_size: int = PARQUET_ROW_GROUP,
) -> int:
    """Write the objects `export_jsonl` writes as Parquet to a file or a binary stream,
    one row group at a time, so memory holds one row group however large the archive
    is; returns how many rows. Where the bytes land (and that a failed export leaves no
    partial file) is archive.targets' concern."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        from archive.db import ArchiveError

        raise ArchiveError(
            "annals export --format parquet needs pyarrow (the `parquet` extra of annals): "
            "pip install pyarrow"
        ) from exc
    schema = parquet_schema()
    group: list[dict[str, Any]] = []
    written = 0

    def flush(writer: Any) -> None:
        nonlocal group, written
        writer.write_table(pa.Table.from_pylist(group, schema=schema))
        written += len(group)
        if progress:
            progress(len(group))
        group = []

    with (
        pq.ParquetWriter(out, schema, compression="zstd") as writer,
        engine.connect() as conn,
    ):
        for obj in iter_objects(conn, filters or Filters(), all_versions=all_versions):
            for name in _PARQUET_TIMES:
                value = obj[name]
                obj[name] = datetime.fromisoformat(value) if value else None
            obj["extra"] = orjson.dumps(obj["extra"]).decode()
            group.append(obj)
            if len(group) >= row_group_size:
                flush(writer)
        if group:
            flush(writer)
    return written
