"""The archive's tables (SQLModel). Column names are a public interface: keep them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel

from archive.normalize import format_time


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """An aware UTC datetime.

    On SQLite it is TEXT in fixed-width ISO-8601 with milliseconds and a Z
    ('2026-05-22T07:56:11.000Z'), so ORDER BY and string comparison with an ISO
    prefix such as '2026-05-22' sort in time order. On PostgreSQL it is timestamptz.
    """

    impl = sa.String(24)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(sa.DateTime(timezone=True))
        return dialect.type_descriptor(sa.String(24))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if dialect.name == "postgresql":
            return value.astimezone(UTC)
        return format_time(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, datetime):
            return value.astimezone(UTC)
        return datetime.fromisoformat(value)


def _time(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


def _json(default: Any) -> Any:
    return Field(default_factory=default, sa_type=sa.JSON, nullable=False)


class Document(SQLModel, table=True):
    __tablename__ = "documents"
    __table_args__ = (
        sa.UniqueConstraint(
            "source", "kind", "external_id", "language", name="uq_documents_identity"
        ),
        sa.Index("ix_documents_source_published", "source", "kind", "published_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=32)
    kind: str = Field(max_length=32)
    external_id: str = Field(max_length=255)
    language: str = Field(max_length=16)
    url: str
    published_at: datetime | None = _time()
    first_seen_at: datetime | None = _time(nullable=False)
    last_seen_at: datetime | None = _time(nullable=False)
    current_version: int | None = Field(default=None)
    removed_at: datetime | None = _time()


class Snapshot(SQLModel, table=True):
    __tablename__ = "snapshots"

    id: int | None = Field(default=None, primary_key=True)
    url: str
    fetched_at: datetime | None = _time(nullable=False)
    status: int
    content_type: str | None = None
    sha256: str = Field(max_length=64, unique=True)
    body: bytes = Field(
        sa_type=sa.LargeBinary,
        description="response bytes, zstd-compressed (zlib before 2026-12-02)",
    )


class CrawlRun(SQLModel, table=True):
    __tablename__ = "crawl_runs"
    __table_args__ = (sa.Index("ix_crawl_runs_spider_started", "spider", "started_at"),)

    id: int | None = Field(default=None, primary_key=True)
    spider: str = Field(max_length=64)
    started_at: datetime | None = _time(nullable=False)
    finished_at: datetime | None = _time()
    status: str = Field(default="running", max_length=16)
    counters: dict[str, Any] = _json(dict)


class Version(SQLModel, table=True):
    __tablename__ = "versions"
    __table_args__ = (
        sa.UniqueConstraint("document_id", "version", name="uq_versions_document_version"),
        sa.UniqueConstraint("document_id", "content_hash", name="uq_versions_document_hash"),
    )

    id: int | None = Field(default=None, primary_key=True)
    document_id: int = Field(foreign_key="documents.id", ondelete="RESTRICT")
    version: int
    content_hash: str = Field(max_length=64)
    title: str | None = None
    body_text: str | None = None
    body_html: str | None = None
    category: str | None = None
    event_type: str = Field(max_length=16)
    tags: list[str] = _json(list)
    symbols: list[str] = _json(list)
    author: str | None = None
    published_at: datetime | None = _time()
    updated_at: datetime | None = _time()
    extra: dict[str, Any] = _json(dict)
    seen_at: datetime | None = _time(nullable=False)
    crawl_run_id: int | None = Field(default=None, foreign_key="crawl_runs.id", index=True)
    snapshot_id: int | None = Field(default=None, foreign_key="snapshots.id")


class Link(SQLModel, table=True):
    __tablename__ = "links"
    __table_args__ = (
        sa.Index("ix_links_target", "target_source", "target_kind", "target_external_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="versions.id", index=True)
    url: str
    target_source: str | None = None
    target_kind: str | None = None
    target_external_id: str | None = None


class Quarantine(SQLModel, table=True):
    __tablename__ = "quarantine"

    id: int | None = Field(default=None, primary_key=True)
    url: str
    spider: str = Field(max_length=64)
    error: str
    snapshot_id: int | None = Field(default=None, foreign_key="snapshots.id")
    seen_at: datetime | None = _time(nullable=False)
    resolved_at: datetime | None = _time(index=True)


class Alert(SQLModel, table=True):
    """One alert: a document's version (1: new, 2 on: an edit) sent to one destination.
    Unique per (document, version, target), so no restart sends it again."""

    __tablename__ = "alerts"
    __table_args__ = (
        sa.UniqueConstraint("document_id", "version", "target", name="uq_alerts_version_target"),
    )

    id: int | None = Field(default=None, primary_key=True)
    document_id: int = Field(foreign_key="documents.id", ondelete="RESTRICT")
    version: int
    # sha256 of the Apprise URL (which holds tokens); target_url is its masked form.
    target: str = Field(max_length=64)
    target_url: str
    status: str = Field(max_length=16)  # pending, sent, failed
    attempts: int = 0
    error: str | None = None
    crawl_run_id: int | None = Field(default=None, foreign_key="crawl_runs.id", index=True)
    created_at: datetime | None = _time(nullable=False)
    sent_at: datetime | None = _time()


TABLES: dict[str, sa.Table] = {
    str(model.__tablename__): model.__table__  # type: ignore[union-attr]
    for model in (Document, Snapshot, CrawlRun, Version, Link, Quarantine, Alert)
}
