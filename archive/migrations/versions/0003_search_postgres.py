"""Full-text search on PostgreSQL: pg_trgm and GIN trigram indexes on the versions' text.

On PostgreSQL: the `pg_trgm` extension (CREATE EXTENSION IF NOT EXISTS) and two GIN
indexes, `ix_versions_title_trgm` on `versions.title` and `ix_versions_body_trgm` on
`versions.body_text` (operator class gin_trgm_ops), which serve `ILIKE '%word%'`. Every
version is indexed, and a search keeps the current ones by joining `documents`
(archive/search.py says why, bench/RESULTS.md "search" measures it). On SQLite this
revision changes nothing: 0002's FTS5 table is SQLite's index.

pg_trgm is a trusted extension: a role that may CREATE in the database installs it. A
role that may not, or a server without the contrib package, stops this upgrade with a
message saying what to ask for; the transaction rolls back and the archive stays at
0002, unchanged. The indexes are built in the upgrade's transaction, so writers wait
for it (minutes on millions of versions); readers do not.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from archive.db import ArchiveError

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

INDEXES = {"ix_versions_title_trgm": "title", "ix_versions_body_trgm": "body_text"}


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    _create_pg_trgm(bind)
    # A GIN build sorts its entries in memory: more of it is several times faster.
    op.execute("SET LOCAL maintenance_work_mem = '256MB'")
    for name, column in INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON versions USING gin ({column} gin_trgm_ops)")


def _create_pg_trgm(bind: Connection) -> None:
    installed = "SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'"
    if bind.exec_driver_sql(installed).first() is not None:
        return
    available = "SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'"
    database = bind.exec_driver_sql("SELECT current_database()").scalar()
    if bind.exec_driver_sql(available).first() is None:
        raise ArchiveError(
            "annals search on PostgreSQL needs the pg_trgm extension, which this server "
            "does not have: install PostgreSQL's contrib package (postgresql-contrib) on "
            "the server, then run `annals db upgrade` again. Nothing was changed."
        )
    try:
        with bind.begin_nested():
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DBAPIError as exc:
        raise ArchiveError(
            f"annals search on PostgreSQL needs the pg_trgm extension, and this role may "
            f"not create it ({str(exc.orig).strip().splitlines()[0]}). Ask the database's "
            f"owner or a superuser to run `CREATE EXTENSION pg_trgm;` in {database}, then "
            "run `annals db upgrade` again. Nothing was changed."
        ) from None


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in INDEXES:
        op.execute(f"DROP INDEX {name}")
    # pg_trgm stays: other tables of this database may use it.
