"""The only writer of the archive: identity, dedup and versioning, one transaction per batch.

A batch is written whole or not at all. Within it, documents are inserted before
the versions that point at them and `current_version` is moved in the same
transaction, so no reader ever sees a version without its document or a document
pointing at a missing version.

Revert rule: a version is identified by its content, so a document whose text
goes back to an earlier version gets no new row: `current_version` points back
at that earlier version and the time of the revert is appended to that
version's `extra["reverted_at"]`.

Snapshots: the raw bytes of a response are kept (once per sha256, compressed) when
they gave a new version or failed to parse. A re-fetch of unchanged content, whose
page may differ only in a view counter, adds no snapshot. A snapshot's body is one
zstd frame (level 3); archives written before hold zlib streams, which stay as they
are: `snapshot_body` tells the two apart by their first bytes and reads both.
"""

from __future__ import annotations

import hashlib
import logging
import zlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import astuple, dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
import zstandard
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from archive import search
from archive.bulk import insert_many, member_of, members
from archive.db import ArchiveError
from archive.models import TABLES
from archive.normalize import Prepared, format_time, prepare, utcnow
from archive.records import Identity, Item, Quarantined, RawResponse, Record, Removed

logger = logging.getLogger(__name__)

documents = TABLES["documents"]
versions = TABLES["versions"]
snapshots = TABLES["snapshots"]
links = TABLES["links"]
crawl_runs = TABLES["crawl_runs"]
quarantine = TABLES["quarantine"]

T = TypeVar("T")

# Every zstd frame starts with these bytes; a zlib stream starts with 0x78.
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# Level 3, zstd's default: on the pages of every source's fixtures it compresses 3 times
# faster than zlib's level 6 did, for 5% more bytes; level 4 doubles the time for 2% less.
SNAPSHOT_LEVEL = 3

_IDENTITY = ("id", "source", "kind", "external_id", "language")
_DOCUMENT_COLUMNS = (
    "source",
    "kind",
    "external_id",
    "language",
    "url",
    "published_at",
    "first_seen_at",
    "last_seen_at",
    "current_version",
)
_VERSION_COLUMNS = (
    "document_id",
    "version",
    "content_hash",
    "title",
    "body_text",
    "body_html",
    "category",
    "event_type",
    "tags",
    "symbols",
    "author",
    "published_at",
    "updated_at",
    "extra",
    "seen_at",
    "crawl_run_id",
    "snapshot_id",
)
# Link's fields, in order (archive.records.Link).
_LINK_COLUMNS = ("version_id", "url", "target_source", "target_kind", "target_external_id")


class ArchiveBusyError(ArchiveError):
    """Another writer held the database for longer than the retries allow."""


@dataclass
class BatchResult:
    """What one batch did; the pipeline adds these up into the run's counters."""

    new_documents: int = 0
    new_versions: int = 0
    unchanged: int = 0
    reverted: int = 0
    quarantined: int = 0
    removed: int = 0
    snapshots: int = 0

    def add(self, other: BatchResult) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass(frozen=True, slots=True)
class Known:
    """What a crawler needs to know about an archived document to decide whether to fetch it."""

    published_at: datetime | None
    first_seen_at: datetime
    last_seen_at: datetime
    removed_at: datetime | None
    title: str | None
    extra: dict[str, Any]
    # The current version's category: a source listed by category keeps an announcement
    # in the first one it was archived from (crawler.spiders.api).
    category: str | None = None


@dataclass(slots=True)
class _DocState:
    """A document as the batch sees it: loaded from the database, then moved in memory."""

    id: int | None = None
    current_version: int | None = None
    max_version: int = 0
    hashes: dict[str, int] = field(default_factory=dict)  # content_hash -> version
    extras: dict[int, dict[str, Any]] = field(default_factory=dict)  # version -> extra
    last_seen_at: datetime | None = None


@dataclass
class _Plan:
    """What a batch will write, decided in memory against the loaded document states."""

    states: dict[Identity, _DocState]
    new_docs: dict[Identity, datetime] = field(default_factory=dict)  # -> first_seen_at
    new_versions: list[tuple[Identity, int, Prepared]] = field(default_factory=list)
    extra_updates: dict[tuple[Identity, int], dict[str, Any]] = field(default_factory=dict)
    latest: dict[Identity, Prepared] = field(default_factory=dict)

    def decide(self, p: Prepared, result: BatchResult) -> None:
        state = self.states.get(p.identity)
        if state is None:
            state = self.states[p.identity] = _DocState()
            self.new_docs[p.identity] = p.seen_at
            result.new_documents += 1
        if state.last_seen_at is None or p.seen_at > state.last_seen_at:
            state.last_seen_at = p.seen_at
        self.latest[p.identity] = p
        known = state.hashes.get(p.content_hash)
        if known is None:
            state.max_version += 1
            state.hashes[p.content_hash] = state.current_version = state.max_version
            state.extras[state.max_version] = dict(p.record.extra)
            self.new_versions.append((p.identity, state.max_version, p))
            result.new_versions += 1
            return
        merged = {**state.extras.get(known, {}), **p.record.extra}
        if known == state.current_version:
            result.unchanged += 1
        else:
            # Back to an earlier text: point at that version and note when.
            merged["reverted_at"] = [*merged.get("reverted_at", []), format_time(p.seen_at)]
            state.current_version = known
            result.reverted += 1
        if merged != state.extras.get(known):
            state.extras[known] = merged
            self.extra_updates[(p.identity, known)] = merged


def _is_busy(exc: BaseException) -> bool:
    if not isinstance(exc, OperationalError):
        return False
    message = str(exc.orig).lower()
    # SQLite's busy timeout, or PostgreSQL's lock_timeout on the write lock (archive.db).
    return any(m in message for m in ("database is locked", "database is busy", "lock timeout"))


def _one_source(conn: Connection) -> tuple[Any, ...]:
    """The documents of one (source, kind, language) whose external ids are among the
    bound "ids": what known() and a batch's lookup of its documents both ask."""
    return (
        documents.c.source == sa.bindparam("source"),
        documents.c.kind == sa.bindparam("kind"),
        member_of(conn, documents.c.external_id, key="ids"),
        documents.c.language == sa.bindparam("language"),
    )


class Store:
    """Writes parsed items into the archive. Construct with an engine from `archive.db`."""

    def __init__(self, engine: Engine, *, busy_attempts: int = 8, busy_wait_max: float = 8.0):
        self.engine = engine
        self.busy_attempts = busy_attempts
        self.busy_wait_max = busy_wait_max
        self._planned_for: float | None = None  # PostgreSQL: documents at the last ANALYZE
        self._grown = 0  # documents this store added since
        self._known_select: sa.Select[Any] | None = None  # for this engine's dialect
        self._states_select: sa.Select[Any] | None = None  # _load_states' lookup, likewise
        self._snapshots_select: sa.Select[Any] | None = None  # _write_snapshots', likewise

    # --- crawl runs ---------------------------------------------------------------------------

    def start_run(
        self,
        spider: str,
        started_at: datetime | None = None,
        counters: dict[str, Any] | None = None,
    ) -> int:
        row = {"spider": spider, "started_at": started_at or utcnow(), "status": "running"}
        return self._retrying(
            lambda conn: conn.execute(
                crawl_runs.insert()
                .values(**row, counters=counters or {})
                .returning(crawl_runs.c.id)
            ).scalar_one()
        )

    def finish_run(self, run_id: int, status: str, counters: dict[str, Any]) -> None:
        query = (
            crawl_runs.update()
            .where(crawl_runs.c.id == run_id)
            .values(status=status, counters=counters, finished_at=utcnow())
        )
        self._retrying(lambda conn: conn.execute(query))

    def run_progress(self, run_id: int, counters: dict[str, Any]) -> None:
        """A run still going (`annals watch`) shows its counters so far; its status stays."""
        query = crawl_runs.update().where(crawl_runs.c.id == run_id).values(counters=counters)
        self._retrying(lambda conn: conn.execute(query))

    def latest_runs(self, spider: str, before_id: int, limit: int = 100) -> list[Any]:
        """The spider's runs before `before_id`, newest first: (id, status, started_at,
        counters)."""
        query = (
            sa.select(
                crawl_runs.c.id, crawl_runs.c.status, crawl_runs.c.started_at, crawl_runs.c.counters
            )
            .where(crawl_runs.c.spider == spider, crawl_runs.c.id < before_id)
            .order_by(crawl_runs.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect().execution_options(annals_read=True) as conn:
            return list(conn.execute(query).all())

    def mark_interrupted(self, spider: str, before_id: int, keep: Sequence[int] = ()) -> int:
        """Runs of `spider` still "running" from a process that died: say so, keeping
        what their counters say (a shared crawl's round). `keep`: ids of runs known to be
        alive (the other workers of a shared crawl)."""
        dead = sa.select(crawl_runs.c.id, crawl_runs.c.counters).where(
            crawl_runs.c.spider == spider,
            crawl_runs.c.id < before_id,
            crawl_runs.c.status == "running",
            crawl_runs.c.id.not_in(list(keep)),
        )
        update = (
            crawl_runs.update()
            .where(crawl_runs.c.id == sa.bindparam("run_id"))
            .values(
                status="interrupted",
                counters=sa.bindparam("said", type_=crawl_runs.c.counters.type),
            )
        )

        def mark(conn: Connection) -> int:
            found = conn.execute(dead).all()
            if found:
                said = [
                    {"run_id": i, "said": {**(c or {}), "close_reason": "process died"}}
                    for i, c in found
                ]
                conn.execute(update, said)
            return len(found)

        return self._retrying(mark)

    def known(self, keys: Sequence[Identity]) -> dict[Identity, Known]:
        """The archived documents among `keys`, with their current title, extra and category."""
        out: dict[Identity, Known] = {}
        groups: dict[tuple[str, str, str], list[str]] = defaultdict(list)
        for key in keys:
            groups[(key.source, key.kind, key.language)].append(key.external_id)
        # A read: no write lock (see archive.db's BEGIN IMMEDIATE).
        with self.engine.connect().execution_options(annals_read=True) as conn:
            query = self._known_query(conn)
            for (source, kind, language), external_ids in groups.items():
                params = {"source": source, "kind": kind, "language": language}
                params["ids"] = members(conn, external_ids)
                # Rows unpacked, in the select's order: a lookup by name for each field
                # cost a listing page's lookup a fifth of its time.
                rows = conn.execute(query, params)
                for external_id, published, first, last, removed, title, extra, category in rows:
                    out[Identity(source, kind, external_id, language)] = Known(
                        published_at=published,
                        first_seen_at=first,
                        last_seen_at=last,
                        removed_at=removed,
                        title=title,
                        extra=extra or {},
                        category=category,
                    )
        return out

    def _known_query(self, conn: Connection) -> sa.Select[Any]:
        """known()'s lookup, built once: a spider asks it for every listing page, and
        building the statement cost more than running it."""
        if self._known_select is None:
            query: sa.Select[Any] = (
                sa.select(
                    documents.c.external_id,
                    documents.c.published_at,
                    documents.c.first_seen_at,
                    documents.c.last_seen_at,
                    documents.c.removed_at,
                    versions.c.title,
                    versions.c.extra,
                    versions.c.category,
                )
                .select_from(
                    documents.outerjoin(
                        versions,
                        sa.and_(
                            versions.c.document_id == documents.c.id,
                            versions.c.version == documents.c.current_version,
                        ),
                    )
                )
                .where(*_one_source(conn))
            )
            self._known_select = query
        return self._known_select

    # --- items ----------------------------------------------------------------------------------

    def write(
        self,
        items: Sequence[Item | Prepared],
        *,
        run_id: int | None = None,
        now: datetime | None = None,
    ) -> BatchResult:
        """Write one batch in one transaction; retried whole while the database is locked.
        Records may come prepared (`prepare`), with the `now` they were prepared at."""
        if not items:
            return BatchResult()
        now = now or utcnow()
        prepared = _prepared(items, now)
        result = self._retrying(lambda conn: self._write(conn, prepared, run_id, now))
        if self.engine.dialect.name == "postgresql" and result.new_documents:
            self._keep_statistics(result.new_documents)
        return result

    def prepare(
        self, items: Sequence[Item], now: datetime
    ) -> list[Prepared | Quarantined | Removed]:
        """A batch normalized and hashed as `write` would, ahead of it, with the ticker
        rules and event type derived now for each record whose content the archive does
        not hold yet (one read; the rest are never scanned, as in `write`). For a writer
        thread (crawler.pipelines): its batch then leaves the thread little but SQL, which
        runs without the GIL. What `write` stores is the same, derived here or there."""
        prepared = _prepared(items, now)
        records = [p for p in prepared if isinstance(p, Prepared)]
        if not records:
            return prepared
        with self.engine.connect().execution_options(annals_read=True) as conn:
            states = self._load_states(conn, records)
        new: set[tuple[Identity, str]] = set()
        for p in records:
            state = states.get(p.identity)
            if state is not None and p.content_hash in state.hashes:
                continue
            if (p.identity, p.content_hash) not in new:
                new.add((p.identity, p.content_hash))
                _ = p.symbols, p.event_type  # cached on the record for `write`
        return prepared

    def _keep_statistics(self, added: int) -> None:
        """PostgreSQL looks documents up by identity with a plan made from the table's
        statistics. Autovacuum refreshes them, but a bulk load (a first crawl, a backfill)
        outruns it: planned for an empty table, each lookup scans every document of a
        source. So the store analyzes the tables each time it has doubled them (a few
        times in all, a few hundred milliseconds each)."""
        if self._planned_for is None:
            with self.engine.connect().execution_options(annals_read=True) as conn:
                rows = conn.exec_driver_sql(
                    "SELECT reltuples FROM pg_class WHERE relname = 'documents'"
                ).scalar()
            self._planned_for = max(float(rows or 0), 0.0)
        self._grown += added
        if self._grown < max(1000.0, self._planned_for):
            return
        with self.engine.connect().execution_options(
            isolation_level="AUTOCOMMIT", annals_read=True
        ) as conn:
            conn.exec_driver_sql("ANALYZE documents, versions, snapshots")
        self._planned_for += self._grown
        self._grown = 0

    def in_transaction(self, fn: Callable[[Connection], T]) -> T:
        """Run `fn` in one write transaction, retried while another writer holds the
        lock (what a batch of the store gets; `annals rederive` uses it too)."""
        return self._retrying(fn)

    def _retrying(self, fn: Callable[[Connection], T]) -> T:
        retrying = Retrying(
            retry=retry_if_exception(_is_busy),
            stop=stop_after_attempt(self.busy_attempts),
            wait=wait_random_exponential(multiplier=0.2, max=self.busy_wait_max),
            before_sleep=lambda state: logger.warning(
                "archive is locked by another writer, retrying (attempt %d of %d)",
                state.attempt_number,
                self.busy_attempts,
            ),
        )
        try:
            for attempt in retrying:
                with attempt, self.engine.begin() as conn:
                    return fn(conn)
        except RetryError as exc:
            raise ArchiveBusyError(
                f"the archive stayed locked by another writer through {self.busy_attempts} "
                "attempts; nothing of this batch was written. Is another crawl running on it?"
            ) from exc.last_attempt.exception()
        raise AssertionError("unreachable")  # pragma: no cover

    def _write(
        self,
        conn: Connection,
        items: Sequence[Prepared | Quarantined | Removed],
        run_id: int | None,
        now: datetime,
    ) -> BatchResult:
        result = BatchResult()
        records = [i for i in items if isinstance(i, Prepared)]
        plan = _Plan(self._load_states(conn, records))
        for p in records:
            plan.decide(p, result)
        failed = [i for i in items if isinstance(i, Quarantined)]
        raws = [p.record.raw for _, _, p in plan.new_versions if p.record.raw]
        raws += [q.raw for q in failed if q.raw]
        snapshot_ids = self._write_snapshots(conn, raws, now, result)
        if plan.new_docs:
            self._insert_documents(conn, plan)
        if plan.new_versions:
            self._insert_versions(conn, plan, snapshot_ids, run_id)
        if plan.extra_updates:
            self._update_extras(conn, plan)
        self._update_documents(conn, plan)
        if failed:
            insert_many(
                conn,
                quarantine,
                ("url", "spider", "error", "snapshot_id", "seen_at"),
                [
                    (
                        q.url,
                        q.spider,
                        q.error,
                        snapshot_ids.get(id(q.raw)) if q.raw else None,
                        q.seen_at or now,
                    )
                    for q in failed
                ],
            )
            result.quarantined += len(failed)
        for item in items:
            if isinstance(item, Removed):
                result.removed += self._mark_removed(conn, item, now)
        # The full-text index follows each document's current version, in this transaction.
        search.sync(conn, [plan.states[key].id for key in plan.latest])
        return result

    # --- snapshots ------------------------------------------------------------------------------

    def _write_snapshots(
        self, conn: Connection, raws: list[RawResponse], now: datetime, result: BatchResult
    ) -> dict[int, int]:
        """Store the snapshots of `raws` that are not stored yet; returns the snapshot id
        of each of `raws`, keyed by the object's id(), so each body is hashed once."""
        digests = {id(raw): _sha(raw) for raw in raws}
        by_sha = {digests[id(raw)]: raw for raw in raws}
        if not by_sha:
            return {}
        if self._snapshots_select is None:
            self._snapshots_select = sa.select(snapshots.c.sha256, snapshots.c.id).where(
                member_of(conn, snapshots.c.sha256, key="shas")
            )
        query = self._snapshots_select
        ids: dict[str, int] = dict(conn.execute(query, {"shas": members(conn, list(by_sha))}).all())
        # A compressor per batch: one is not safe to share between threads.
        compress = zstandard.ZstdCompressor(level=SNAPSHOT_LEVEL).compress
        missing = [
            (
                raw.url,
                raw.fetched_at or now,
                raw.status,
                raw.content_type,
                sha,
                compress(raw.body),
            )
            for sha, raw in by_sha.items()
            if sha not in ids
        ]
        if missing:
            columns = ("url", "fetched_at", "status", "content_type", "sha256", "body")
            ids.update(insert_many(conn, snapshots, columns, missing, returning=("sha256", "id")))
            result.snapshots += len(missing)
        return {key: ids[digest] for key, digest in digests.items()}

    # --- documents and versions -----------------------------------------------------------------

    def _load_states(
        self, conn: Connection, records: Sequence[Prepared]
    ) -> dict[Identity, _DocState]:
        """The archived documents of `records`, each with the number, hash and extra of
        every version: one statement for each (source, kind, language) of the batch."""
        groups: dict[tuple[str, str, str], list[str]] = defaultdict(list)
        for key in dict.fromkeys(p.identity for p in records):
            groups[(key.source, key.kind, key.language)].append(key.external_id)
        states: dict[Identity, _DocState] = {}
        by_id: dict[int, _DocState] = {}
        query = self._states_query(conn)
        for (source, kind, language), external_ids in groups.items():
            params = {"source": source, "kind": kind, "language": language}
            params["ids"] = members(conn, external_ids)
            rows: Sequence[Any] = conn.execute(query, params).all()
            for doc_id, external_id, current, number, digest, extra in rows:
                state = by_id.get(doc_id)
                if state is None:
                    state = by_id[doc_id] = _DocState(id=doc_id, current_version=current)
                    states[Identity(source, kind, external_id, language)] = state
                if number is not None:
                    state.hashes[digest] = number
                    state.extras[number] = extra
                    state.max_version = max(state.max_version, number)
        return states

    def _states_query(self, conn: Connection) -> sa.Select[Any]:
        """_load_states' lookup, built once like known()'s: building it cost several times
        what running it does on a batch of 100."""
        if self._states_select is None:
            query: sa.Select[Any] = (
                sa.select(
                    documents.c.id,
                    documents.c.external_id,
                    documents.c.current_version,
                    versions.c.version,
                    versions.c.content_hash,
                    versions.c.extra,
                )
                .select_from(
                    documents.outerjoin(versions, versions.c.document_id == documents.c.id)
                )
                .where(*_one_source(conn))
            )
            self._states_select = query
        return self._states_select

    @staticmethod
    def _insert_documents(conn: Connection, plan: _Plan) -> None:
        rows = [
            (
                *key,
                plan.latest[key].record.url,
                plan.latest[key].record.published_at,
                first_seen,
                plan.states[key].last_seen_at,
                plan.states[key].current_version,
            )
            for key, first_seen in plan.new_docs.items()
        ]
        returned = insert_many(conn, documents, _DOCUMENT_COLUMNS, rows, returning=_IDENTITY)
        for doc_id, *key in returned:
            plan.states[Identity(*key)].id = doc_id

    @staticmethod
    def _insert_versions(
        conn: Connection, plan: _Plan, snapshot_ids: dict[int, int], run_id: int | None
    ) -> None:
        rows = [
            (
                plan.states[key].id,
                number,
                p.content_hash,
                p.title,
                p.body_text,
                p.record.body_html,
                p.category,
                p.event_type,
                p.tags,
                p.symbols,
                p.author,
                p.record.published_at,
                p.record.updated_at,
                p.record.extra,
                p.seen_at,
                run_id,
                snapshot_ids.get(id(p.record.raw)) if p.record.raw else None,
            )
            for key, number, p in plan.new_versions
        ]
        with_links = [(plan.states[k].id, n, p) for k, n, p in plan.new_versions if p.record.links]
        returned = insert_many(
            conn,
            versions,
            _VERSION_COLUMNS,
            rows,
            returning=("document_id", "version", "id") if with_links else (),
        )
        if not with_links:
            return
        ids = {(doc_id, number): id_ for doc_id, number, id_ in returned}
        link_rows = [
            (ids[(doc_id, number)], *astuple(link))
            for doc_id, number, p in with_links
            for link in dict.fromkeys(p.record.links)
        ]
        insert_many(conn, links, _LINK_COLUMNS, link_rows)

    @staticmethod
    def _update_extras(conn: Connection, plan: _Plan) -> None:
        conn.execute(
            _UPDATE_EXTRA,
            [
                {"doc_id": plan.states[key].id, "ver": ver, "new_extra": extra}
                for (key, ver), extra in plan.extra_updates.items()
            ],
        )

    @staticmethod
    def _update_documents(conn: Connection, plan: _Plan) -> None:
        updates = [
            {
                "doc_id": plan.states[key].id,
                "seen": plan.states[key].last_seen_at,
                "cur": plan.states[key].current_version,
                "new_url": p.record.url,
                "pub": p.record.published_at,
            }
            for key, p in plan.latest.items()
            if key not in plan.new_docs
        ]
        if updates:
            conn.execute(_UPDATE_DOCUMENT, updates)

    @staticmethod
    def _mark_removed(conn: Connection, item: Removed, now: datetime) -> int:
        source, kind, external_id, language = item.identity
        result = conn.execute(
            documents.update()
            .where(
                documents.c.source == source,
                documents.c.kind == kind,
                documents.c.external_id == external_id,
                documents.c.language == language,
                documents.c.removed_at.is_(None),
            )
            .values(removed_at=item.seen_at or now)
        )
        return result.rowcount or 0


# The batch's UPDATEs, built once (building one cost more than running it on a batch).
_UPDATE_EXTRA = (
    versions.update()
    .where(
        versions.c.document_id == sa.bindparam("doc_id"),
        versions.c.version == sa.bindparam("ver"),
    )
    .values(extra=sa.bindparam("new_extra", type_=versions.c.extra.type))
)
_SEEN = sa.bindparam("seen", type_=documents.c.last_seen_at.type)
_UPDATE_DOCUMENT = (
    documents.update()
    .where(documents.c.id == sa.bindparam("doc_id"))
    .values(
        # A reparse of an old snapshot never moves last_seen_at backwards.
        last_seen_at=sa.case(
            (documents.c.last_seen_at < _SEEN, _SEEN), else_=documents.c.last_seen_at
        ),
        current_version=sa.bindparam("cur"),
        url=sa.bindparam("new_url"),
        published_at=sa.func.coalesce(
            sa.bindparam("pub", type_=documents.c.published_at.type),
            documents.c.published_at,
        ),
        # Seen again, so it is back.
        removed_at=None,
    )
)


def _prepared(
    items: Sequence[Item | Prepared], now: datetime
) -> list[Prepared | Quarantined | Removed]:
    """A batch with its records normalized and hashed (those already prepared as they are)."""
    return [prepare(i, now) if isinstance(i, Record) else i for i in items]


def snapshot_body(stored: bytes) -> bytes:
    """The raw response bytes of a snapshot's `body` column: a zstd frame, or a zlib
    stream in snapshots written before zstd. Every reader of snapshots goes through it."""
    if stored[:4] == ZSTD_MAGIC:
        return zstandard.ZstdDecompressor().decompress(stored)
    return zlib.decompress(stored)


def _sha(raw: RawResponse) -> str:
    return hashlib.sha256(raw.body).hexdigest()
