"""What an archive holds, as `annals stats` shows it: documents and versions per source
and kind, the unresolved quarantine, the last crawl runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from archive.models import TABLES
from archive.normalize import format_time

LAST_RUNS = 10


@dataclass(frozen=True)
class SourceCount:
    source: str
    kind: str
    documents: int
    versions: int
    last_seen_at: str | None


@dataclass(frozen=True)
class RunSummary:
    id: int
    spider: str
    started_at: str
    finished_at: str | None
    status: str
    counters: dict[str, Any]


@dataclass(frozen=True)
class ArchiveStats:
    """Times are UTC ISO-8601 text, as the export writes them."""

    sources: list[SourceCount]
    quarantine_unresolved: int
    last_runs: list[RunSummary]


def archive_stats(engine: Engine, last_runs: int = LAST_RUNS) -> ArchiveStats:
    docs, vers, quarantine, runs = (
        TABLES[t] for t in ("documents", "versions", "quarantine", "crawl_runs")
    )
    with engine.connect() as conn:
        per_source = conn.execute(
            sa.select(
                docs.c.source,
                docs.c.kind,
                sa.func.count(sa.distinct(docs.c.id)),
                sa.func.count(vers.c.id),
                sa.func.max(docs.c.last_seen_at),
            )
            .select_from(docs.outerjoin(vers, vers.c.document_id == docs.c.id))
            .group_by(docs.c.source, docs.c.kind)
            .order_by(docs.c.source, docs.c.kind)
        ).all()
        unresolved = conn.execute(
            sa.select(sa.func.count()).where(quarantine.c.resolved_at.is_(None))
        ).scalar_one()
        recent = conn.execute(sa.select(runs).order_by(runs.c.id.desc()).limit(last_runs)).all()
    return ArchiveStats(
        sources=[
            SourceCount(s, k, d, v, format_time(seen) if seen else None)
            for s, k, d, v, seen in per_source
        ],
        quarantine_unresolved=unresolved,
        last_runs=[
            RunSummary(
                id=r.id,
                spider=r.spider,
                started_at=format_time(r.started_at),
                finished_at=format_time(r.finished_at) if r.finished_at else None,
                status=r.status,
                counters=r.counters,
            )
            for r in recent
        ],
    )
