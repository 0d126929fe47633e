"""Full-text search: the FTS5 index over each document's current version, and a view.

On SQLite: `documents_fts` (trigram tokenizer; rowid = documents.id; title, body and
the indexed version number), filled from what the archive already holds, with bm25
weights title 10, body 1 as its rank; and the view `current_documents` (each document
with its current version), which `annals serve` wires to Datasette's search box.
On other databases (PostgreSQL) this revision changes nothing: search is SQLite-only
for now (see archive/search.py).

The SQL is written out here rather than imported from archive.search: a migration
describes the schema as it was at this revision, whatever the code becomes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(
        "CREATE VIRTUAL TABLE documents_fts USING fts5("
        "title, body, version UNINDEXED, tokenize = 'trigram')"
    )
    op.execute("INSERT INTO documents_fts (documents_fts, rank) VALUES ('rank', 'bm25(10.0, 1.0)')")
    op.execute(
        "INSERT INTO documents_fts (rowid, title, body, version)"
        " SELECT d.id, v.title, v.body_text, v.version FROM documents d"
        " JOIN versions v ON v.document_id = d.id AND v.version = d.current_version"
    )
    op.execute(
        "CREATE VIEW current_documents AS SELECT"
        " d.id,"
        " d.source || ':' || d.kind || ':' || d.external_id || ':' || d.language AS ref,"
        " d.published_at, d.source, d.kind, d.language, v.event_type, v.category, v.title,"
        " d.url, d.current_version AS version, v.symbols, v.tags, v.author,"
        " d.first_seen_at, d.last_seen_at, d.removed_at, v.body_text"
        " FROM documents d"
        " JOIN versions v ON v.document_id = d.id AND v.version = d.current_version"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("DROP VIEW current_documents")
    op.execute("DROP TABLE documents_fts")
