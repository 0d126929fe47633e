"""What to alert, from the archive itself: versions a spider's runs wrote, not yet sent.

Nothing here is kept in memory between calls. After each committed batch the notifier
(crawler.alerts) claims, in one write transaction, every (version, destination) that
- was written by a run of its spider (`versions.crawl_run_id`),
- is a new document (version 1), or an edit (version 2 on) when edits are asked for
  (a version that completes a pushed record from its article page is no edit),
- was published within the maximum age (`documents.published_at`; a document without a
  publication time is never alerted: its age cannot be told, and a first crawl of a
  source without times must not send its whole history),
- passes the filters (event type, source, symbols),
- has no `alerts` row that was sent, or is being sent by a run that is still running.

So a restart sends nothing twice (the sent rows stay), and what a killed or failed run
could not send is claimed again by the next run of the spider while it is young enough.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from archive.models import TABLES
from archive.normalize import format_time, utcnow
from archive.store import Store

alerts = TABLES["alerts"]
documents = TABLES["documents"]
versions = TABLES["versions"]
crawl_runs = TABLES["crawl_runs"]


@dataclass(frozen=True)
class Filters:
    """Which documents alert. An empty set lets everything through."""

    max_age: timedelta
    event_types: frozenset[str] = frozenset()
    sources: frozenset[str] = frozenset()
    symbols: frozenset[str] = frozenset()  # upper case
    edits: bool = False

    def admits_symbols(self, symbols: Sequence[str]) -> bool:
        return not self.symbols or any(s.upper() in self.symbols for s in symbols or ())


@dataclass(frozen=True)
class Target:
    """One destination: its Apprise URL, the key the alerts table knows it by and the
    form of it that may be shown (tokens masked)."""

    url: str
    shown: str

    @property
    def key(self) -> str:
        return hashlib.sha256(self.url.encode()).hexdigest()


@dataclass(frozen=True)
class Alert:
    """A claimed alert: the row's id, where it goes and what it says."""

    id: int
    target: str  # Target.key
    document_id: int
    version: int
    source: str
    event_type: str
    symbols: list[str]
    title: str | None
    published_at: datetime | None
    first_seen_at: datetime
    seen_at: datetime
    url: str
    ref: str

    @property
    def is_edit(self) -> bool:
        return self.version > 1

    def subject(self) -> str:
        what = f"edit (version {self.version})" if self.is_edit else self.event_type
        return f"[{self.source} {what}] {self.title or self.url}"

    def body(self) -> str:
        """Source, event type, symbols, title, publication time, detection lag, url."""
        detected = self.seen_at if self.is_edit else self.first_seen_at
        edit = f" (edit, version {self.version})" if self.is_edit else ""
        lines = [
            f"source: {self.source}",
            f"event type: {self.event_type}{edit}",
            f"symbols: {', '.join(self.symbols) or '-'}",
            f"title: {self.title or '-'}",
            f"published: {format_time(self.published_at) if self.published_at else '-'}",
            f"detected: {format_time(detected)}" + _lag(self.published_at, detected),
            f"url: {self.url}",
            f"ref: {self.ref}",
        ]
        return "\n".join(lines)


def _lag(published: datetime | None, seen: datetime) -> str:
    if published is None:
        return ""
    seconds = (seen - published).total_seconds()
    return f" (lag {seconds:.1f} s)"


def _candidates(
    conn: Connection, spider: str, run_id: int, filters: Filters, now: datetime
) -> list[Any]:
    since = now - filters.max_age
    # Runs that may have written a young enough version: running, or finished since.
    runs = sa.select(crawl_runs.c.id).where(
        crawl_runs.c.spider == spider,
        sa.or_(crawl_runs.c.finished_at.is_(None), crawl_runs.c.finished_at >= since),
    )
    query = (
        sa.select(
            versions.c.document_id,
            versions.c.version,
            versions.c.title,
            versions.c.event_type,
            versions.c.symbols,
            versions.c.seen_at,
            versions.c.extra,
            documents.c.source,
            documents.c.kind,
            documents.c.external_id,
            documents.c.language,
            documents.c.published_at,
            documents.c.first_seen_at,
            documents.c.url,
        )
        .join(documents, documents.c.id == versions.c.document_id)
        .where(
            versions.c.crawl_run_id.in_(runs),
            documents.c.published_at.is_not(None),
            documents.c.published_at >= since,
        )
    )
    # Oldest first: alerts arrive in the order things were published.
    query = query.order_by(documents.c.published_at, versions.c.document_id, versions.c.version)
    if not filters.edits:
        query = query.where(versions.c.version == 1)
    if filters.event_types:
        query = query.where(versions.c.event_type.in_(sorted(filters.event_types)))
    if filters.sources:
        query = query.where(documents.c.source.in_(sorted(filters.sources)))
    # A version completing a pushed record from its article page (extra.completes_push)
    # is no edit: the pushed version was the document's alert.
    return [
        row
        for row in conn.execute(query)
        if filters.admits_symbols(row.symbols) and not (row.extra or {}).get("completes_push")
    ]


def _claims(conn: Connection, keys: list[tuple[int, int]]) -> dict[tuple[int, int, str], Any]:
    """The alerts rows of these versions, with whether their run is still running."""
    if not keys:
        return {}
    owner = crawl_runs.alias("owner")
    query = (
        sa.select(
            alerts.c.id,
            alerts.c.document_id,
            alerts.c.version,
            alerts.c.target,
            alerts.c.status,
            alerts.c.crawl_run_id,
            owner.c.status.label("run_status"),
        )
        .select_from(alerts.outerjoin(owner, owner.c.id == alerts.c.crawl_run_id))
        .where(alerts.c.document_id.in_(sorted({d for d, _ in keys})))
    )
    wanted = set(keys)
    return {
        (r.document_id, r.version, r.target): r
        for r in conn.execute(query)
        if (r.document_id, r.version) in wanted
    }


def claim(
    store: Store, spider: str, run_id: int, filters: Filters, targets: Sequence[Target]
) -> list[Alert]:
    """Claim for this run, in one write transaction, every alert due (module docstring):
    a new `pending` row, or a row that failed or was left pending by a run that is no
    longer running. Two processes never claim the same row: writers are serialized
    (SQLite's BEGIN IMMEDIATE, PostgreSQL's advisory lock, archive.db)."""
    now = utcnow()

    def run(conn: Connection) -> list[Alert]:
        rows = _candidates(conn, spider, run_id, filters, now)
        existing = _claims(conn, [(r.document_id, r.version) for r in rows])
        claimed: list[Alert] = []
        for row in rows:
            for target in targets:
                found = existing.get((row.document_id, row.version, target.key))
                if found is None:
                    alert_id = conn.execute(
                        alerts.insert()
                        .values(
                            document_id=row.document_id,
                            version=row.version,
                            target=target.key,
                            target_url=target.shown,
                            status="pending",
                            attempts=0,
                            crawl_run_id=run_id,
                            created_at=now,
                        )
                        .returning(alerts.c.id)
                    ).scalar_one()
                elif found.status == "sent" or found.run_status == "running":
                    continue
                else:  # failed, or pending in a run that died: this run sends it
                    conn.execute(
                        alerts.update()
                        .where(alerts.c.id == found.id)
                        .values(status="pending", crawl_run_id=run_id)
                    )
                    alert_id = found.id
                ref = f"{row.source}:{row.kind}:{row.external_id}:{row.language}"
                claimed.append(
                    Alert(
                        id=alert_id,
                        target=target.key,
                        document_id=row.document_id,
                        version=row.version,
                        source=row.source,
                        event_type=row.event_type,
                        symbols=list(row.symbols or []),
                        title=row.title,
                        published_at=row.published_at,
                        first_seen_at=row.first_seen_at,
                        seen_at=row.seen_at,
                        url=row.url,
                        ref=ref,
                    )
                )
        return claimed

    return store.in_transaction(run)


def record(store: Store, alert_id: int, sent: bool, attempts: int, error: str | None) -> None:
    """The outcome of one delivery on its row."""
    values: dict[str, Any] = {
        "status": "sent" if sent else "failed",
        "attempts": alerts.c.attempts + attempts,
        "error": None if sent else error,
    }
    if sent:
        values["sent_at"] = utcnow()
    query = alerts.update().where(alerts.c.id == alert_id).values(**values)
    store.in_transaction(lambda conn: conn.execute(query))
