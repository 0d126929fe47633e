"""`annals db copy`: move an archive between SQLite and PostgreSQL, resumable and verified.

Rows are copied table by table in foreign-key order, in id order, keeping their ids,
one transaction per batch. A copy that stops half-way (Ctrl-C, a lost connection)
is resumed by running it again: each table continues after the highest id the target
holds, once the target's rows are checked to be this source's. At the end the row
count of every table and the content hashes of every document are compared.

Only the archive's own tables are copied. Derived data (a search index) is rebuilt
on the target by its own code, never copied. Copy a quiet archive: rows that change
in the source after they were copied (a crawl still running) are not copied again.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from archive import db as dbmod
from archive.bulk import insert_many
from archive.models import TABLES

logger = logging.getLogger(__name__)

# Foreign-key order: every row's parents are copied before it.
ORDER = ("documents", "snapshots", "crawl_runs", "versions", "links", "quarantine", "alerts")
# Columns that never change once a row is written: what "the same row" means when a
# copy is resumed (documents' last_seen_at or a run's status may move in between).
IDENTITY = {
    "documents": ("source", "kind", "external_id", "language"),
    "snapshots": ("sha256",),
    "crawl_runs": ("spider", "started_at"),
    "versions": ("document_id", "version", "content_hash"),
    "links": ("version_id", "url"),
    "quarantine": ("url", "spider", "seen_at"),
    "alerts": ("document_id", "version", "target"),
}
BATCH = 2000


class CopyError(dbmod.ArchiveError):
    """The copy could not be done or did not verify; the message says what to do."""


class CopyRefused(CopyError):  # noqa: N818 - reads as what happened
    """The target holds something else: nothing was written."""


@dataclass
class CopyReport:
    copied: dict[str, int] = field(default_factory=dict)  # rows copied by this run
    resumed: dict[str, int] = field(default_factory=dict)  # rows already there
    counts: dict[str, int] = field(default_factory=dict)  # rows in the target at the end
    documents: int = 0  # documents whose content hashes were compared


def copy_archive(
    source_url: str,
    target_url: str,
    *,
    batch: int = BATCH,
    progress: Callable[[str, int, int], None] | None = None,
) -> CopyReport:
    """Copy the archive at `source_url` into `target_url` (created when missing), or
    finish a copy that stopped; then verify it. `progress(table, done, total)`."""
    if _same(source_url, target_url):
        raise CopyRefused("--from and --to name the same archive")
    source = dbmod.open_archive(source_url, readonly=True)
    target = _open_target(target_url)
    report = CopyReport()
    try:
        with source.connect() as src, _reading(target) as dst:
            starts = _resume_points(src, dst, target_url)
        for name in ORDER:
            report.resumed[name] = _copy_table(
                source, target, name, starts[name], batch, report, progress
            )
        if target.dialect.name == "postgresql":
            _reset_sequences(target)
        _rebuild_derived(target)
        _verify(source, target, report)
    finally:
        source.dispose()
        target.dispose()
    return report


def _reading(engine: Engine) -> Connection:
    """A connection that only reads: no write lock (archive.db)."""
    return engine.connect().execution_options(annals_read=True)


def _same(a: str, b: str) -> bool:
    pa, pb = dbmod.sqlite_path(a), dbmod.sqlite_path(b)
    if pa is not None and pb is not None:
        return pa.resolve() == pb.resolve()
    return sa.engine.make_url(a) == sa.engine.make_url(b)


def _open_target(url: str) -> Engine:
    """The target at this code's schema: created (tables and all) when it is missing or
    an empty database; an archive at an older schema must be upgraded first."""
    path = dbmod.sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        dbmod.refuse_foreign(url)  # looked at read-only: a foreign file is left as it was
    except dbmod.NotAnArchiveError:
        raise CopyRefused(
            f"{dbmod.display(url)} holds tables but no annals archive: "
            "copy into an empty database or a new file"
        ) from None
    engine = dbmod.make_engine(url)
    if dbmod.current_revision(engine) is None:
        dbmod.upgrade(engine)
    engine.dispose()
    return dbmod.open_archive(url)


def _resume_points(src: Connection, dst: Connection, target_url: str) -> dict[str, int]:
    """For each table, the id after which to copy: 0 for an empty target, else the
    highest id it holds, once its first and last rows are found to be the source's."""
    starts: dict[str, int] = {}
    for name in ORDER:
        table = TABLES[name]
        low, high = dst.execute(sa.select(sa.func.min(table.c.id), sa.func.max(table.c.id))).one()
        starts[name] = high or 0
        for row_id in {low, high} - {None}:
            if _identity(dst, name, row_id) != _identity(src, name, row_id):
                raise CopyRefused(
                    f"{dbmod.display(target_url)} is not empty and is not a copy of this "
                    f"source ({name} row {row_id} differs): copy into an empty database, "
                    "or resume with the source the copy was started from"
                )
    return starts


def _identity(conn: Connection, name: str, row_id: int) -> tuple[Any, ...] | None:
    table = TABLES[name]
    columns = [table.c[c] for c in IDENTITY[name]]
    row = conn.execute(sa.select(*columns).where(table.c.id == row_id)).one_or_none()
    return tuple(row) if row is not None else None


def _copy_table(
    source: Engine,
    target: Engine,
    name: str,
    after: int,
    batch: int,
    report: CopyReport,
    progress: Callable[[str, int, int], None] | None,
) -> int:
    """Copy the rows of `name` with ids above `after`, `batch` per transaction; returns
    how many the target held already."""
    table = TABLES[name]
    columns = [c.name for c in table.columns]
    with source.connect() as src:
        total = src.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
        already = src.execute(
            sa.select(sa.func.count()).select_from(table).where(table.c.id <= after)
        ).scalar_one()
    done, copied = already, 0
    if progress:
        progress(name, done, total)
    for rows in _batches(source, table, after, batch):
        with target.begin() as dst:
            insert_many(dst, table, columns, rows)
        done += len(rows)
        copied += len(rows)
        if progress:
            progress(name, done, total)
    report.copied[name] = copied
    return int(already)


def _batches(source: Engine, table: sa.Table, after: int, size: int) -> Iterator[list[Any]]:
    """The rows after id `after`, in id order, `size` at a time (keyset paging: every
    batch is one short indexed read, whatever the table's size)."""
    last = after
    while True:
        with source.connect() as src:
            rows = [
                tuple(row)
                for row in src.execute(
                    sa.select(*table.columns)
                    .where(table.c.id > last)
                    .order_by(table.c.id)
                    .limit(size)
                )
            ]
        if not rows:
            return
        yield rows
        last = rows[-1][0]  # id is every table's first column


def _reset_sequences(engine: Engine) -> None:
    """Rows came with their ids, so PostgreSQL's sequences never moved: set each one past
    its table's highest id, or the next crawl's insert would collide. Then ANALYZE, as
    after any bulk load: the planner's statistics still describe empty tables."""
    with engine.begin() as conn:
        for name in ORDER:
            conn.exec_driver_sql(
                f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                f"coalesce((SELECT max(id) FROM {name}), 0) + 1, false)"
            )
    analyze = engine.connect().execution_options(isolation_level="AUTOCOMMIT", annals_read=True)
    with analyze as conn:
        conn.exec_driver_sql(f"ANALYZE {', '.join(ORDER)}")


def _rebuild_derived(engine: Engine, size: int = 5000) -> None:
    """Derived tables are the target's own business, rebuilt from the copied rows: the
    full-text index (archive.search, SQLite only) is brought up to date document by
    document, as the store does after each batch; it is idempotent, so a resumed copy
    costs one lookup per document already indexed."""
    try:
        from archive import search
    except ImportError:  # a build without search
        return
    sync = getattr(search, "sync", None)
    if sync is None or engine.dialect.name != "sqlite":
        return
    documents = TABLES["documents"]
    with _reading(engine) as conn:
        ids = list(conn.execute(sa.select(documents.c.id).order_by(documents.c.id)).scalars())
    for start in range(0, len(ids), size):
        with engine.begin() as conn:
            sync(conn, ids[start : start + size])


def _verify(source: Engine, target: Engine, report: CopyReport) -> None:
    """Row counts per table, then the content hashes of every document, on both sides."""
    with source.connect() as src, _reading(target) as dst:
        for name in ORDER:
            table = TABLES[name]
            query = sa.select(sa.func.count()).select_from(table)
            have, want = dst.execute(query).scalar_one(), src.execute(query).scalar_one()
            report.counts[name] = have
            if have != want:
                raise CopyError(
                    f"verification failed: {name} has {have} rows in the target and {want} "
                    "in the source (did a crawl write to the source during the copy? "
                    "run the copy again)"
                )
        mine, theirs = _hash_digest(dst), _hash_digest(src)
    report.documents = mine[0]
    if mine != theirs:
        raise CopyError(
            "verification failed: the content hashes of the documents differ between "
            "source and target (did a crawl write to the source during the copy?)"
        )


def _hash_digest(conn: Connection) -> tuple[int, int]:
    """(documents, a digest of the set of (document identity, content hash) pairs). The
    digest is a sum of per-pair hashes, so it does not depend on the order rows come in
    (SQLite and PostgreSQL sort text differently)."""
    documents, versions = TABLES["documents"], TABLES["versions"]
    query = sa.select(
        documents.c.source,
        documents.c.kind,
        documents.c.external_id,
        documents.c.language,
        versions.c.content_hash,
    ).select_from(documents.outerjoin(versions, versions.c.document_id == documents.c.id))
    total, docs = 0, set()
    for row in conn.execute(query.execution_options(yield_per=10_000)):
        docs.add(tuple(row[:4]))
        pair = "\x00".join(str(v) for v in row).encode()
        total = (total + int.from_bytes(hashlib.sha256(pair).digest())) % (1 << 256)
    return len(docs), total
