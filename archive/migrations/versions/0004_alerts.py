"""Alerts: one row per document version sent (or being sent) to one destination.

`alerts` records what `annals crawl --notify` delivered through Apprise: the document
and version (1 for a new document, 2 on for an edit), the destination (`target`, the
sha256 of its Apprise URL, which holds tokens; `target_url`, the URL with its secrets
masked), the outcome (`pending`, `sent`, `failed`), attempts, the last error, the run
that sent it and when. Unique (document_id, version, target): a restart never sends
one again. The same on SQLite and PostgreSQL.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from archive.models import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "document_id",
            sa.Integer(),
            sa.ForeignKey("documents.id", ondelete="RESTRICT"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("target_url", sa.String(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(), nullable=True),
        sa.Column("crawl_run_id", sa.Integer(), sa.ForeignKey("crawl_runs.id"), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("document_id", "version", "target", name="uq_alerts_version_target"),
    )
    op.create_index("ix_alerts_crawl_run_id", "alerts", ["crawl_run_id"])


def downgrade() -> None:
    op.drop_table("alerts")
