"""Quarantined pages with their stored responses, for `annals reparse` (which re-runs the
parsers on them without fetching again)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from archive.models import TABLES
from archive.normalize import utcnow
from archive.records import RawResponse
from archive.store import snapshot_body

quarantine, snapshots = TABLES["quarantine"], TABLES["snapshots"]


@dataclass
class Stored:
    """A stored response and who fetched it."""

    key: int  # quarantine.id
    spider: str | None
    error: str | None
    raw: RawResponse


def _raw(row: Any) -> RawResponse:
    return RawResponse(
        url=row.s_url,
        status=row.status,
        content_type=row.content_type,
        body=snapshot_body(row.body),
        fetched_at=row.fetched_at,
    )


def pending(engine: Engine, spider: str | None = None) -> Iterator[Stored]:
    """Unresolved quarantine rows that kept their response, oldest first."""
    query = (
        sa.select(
            quarantine.c.id,
            quarantine.c.spider,
            quarantine.c.error,
            snapshots.c.url.label("s_url"),
            snapshots.c.status,
            snapshots.c.content_type,
            snapshots.c.body,
            snapshots.c.fetched_at,
        )
        .join(snapshots, snapshots.c.id == quarantine.c.snapshot_id)
        .where(quarantine.c.resolved_at.is_(None))
        .order_by(quarantine.c.id)
    )
    if spider:
        query = query.where(quarantine.c.spider == spider)
    with engine.connect().execution_options(annals_read=True) as conn:
        for row in conn.execute(query):
            yield Stored(row.id, row.spider, row.error, _raw(row))


def resolve(engine: Engine, ids: list[int]) -> None:
    if not ids:
        return
    with engine.begin() as conn:
        conn.execute(
            quarantine.update().where(quarantine.c.id.in_(ids)).values(resolved_at=utcnow())
        )
