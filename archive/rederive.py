"""Recompute the derived fields (`symbols`, `event_type`) of current versions in place.

They are derived, not content (archive.symbols reads only what a version stores), so
today's rules may give an old archive better answers without a new version: the
content hash, the version numbers and every other column stay as they are. Work goes
in batches of documents, one write transaction each, so an interrupted run keeps the
batches it committed and a second run picks up the rest (rows already right are
checked and left alone).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from archive.models import TABLES
from archive.store import Store
from archive.symbols import derive

logger = logging.getLogger(__name__)

documents = TABLES["documents"]
versions = TABLES["versions"]

BATCH = 1000  # documents per transaction: a few milliseconds of write lock each


@dataclass
class RederiveReport:
    checked: int = 0  # current versions read
    changed: int = 0  # rows whose symbols or event_type changed
    symbols_changed: int = 0
    event_types_changed: int = 0
    dry_run: bool = False


def rederive(
    store: Store,
    *,
    source: str | None = None,
    dry_run: bool = False,
    batch: int = BATCH,
    progress: Callable[[RederiveReport], None] | None = None,
) -> RederiveReport:
    """Recompute symbols and event_type of every document's current version (of `source`
    only, when given); with `dry_run`, count what would change and write nothing."""
    report = RederiveReport(dry_run=dry_run)
    after = 0
    while True:
        step = functools.partial(_batch, after=after, source=source, size=batch, dry_run=dry_run)
        done = store.in_transaction(step)
        if done is None:
            break
        # Counted once the batch committed: an interrupted run reports what it kept.
        after, checked, symbols_changed, events_changed, changed = done
        report.checked += checked
        report.changed += changed
        report.symbols_changed += symbols_changed
        report.event_types_changed += events_changed
        if progress is not None:
            progress(report)
    logger.info(
        "rederive: %d current versions checked, %d changed%s",
        report.checked,
        report.changed,
        " (dry run)" if dry_run else "",
    )
    return report


def _batch(
    conn: Connection, *, after: int, source: str | None, size: int, dry_run: bool
) -> tuple[int, int, int, int, int] | None:
    """One batch of documents after id `after`: (last document id, rows checked, symbols
    changed, event types changed, rows changed), None when there are no more."""
    query = (
        sa.select(
            documents.c.id,
            documents.c.source,
            versions.c.id,
            versions.c.title,
            versions.c.body_text,
            versions.c.body_html,
            versions.c.tags,
            versions.c.category,
            versions.c.symbols,
            versions.c.event_type,
        )
        .join(
            versions,
            (versions.c.document_id == documents.c.id)
            & (versions.c.version == documents.c.current_version),
        )
        .where(documents.c.id > after)
        .order_by(documents.c.id)
        .limit(size)
    )
    if source is not None:
        query = query.where(documents.c.source == source)
    rows = conn.execute(query).all()
    if not rows:
        return None
    updates: list[dict[str, Any]] = []
    symbols_changed = events_changed = 0
    for _doc_id, doc_source, version_id, title, body_text, body_html, tags, category, *old in rows:
        symbols, event_type = derive(doc_source, title, body_text, body_html, tags, category)
        old_symbols, old_event = old
        if symbols == old_symbols and event_type == old_event:
            continue
        symbols_changed += symbols != old_symbols
        events_changed += event_type != old_event
        updates.append({"vid": version_id, "new_symbols": symbols, "new_event": event_type})
    if updates and not dry_run:
        conn.execute(
            versions.update()
            .where(versions.c.id == sa.bindparam("vid"))
            .values(symbols=sa.bindparam("new_symbols"), event_type=sa.bindparam("new_event")),
            updates,
        )
    return int(rows[-1][0]), len(rows), symbols_changed, events_changed, len(updates)
