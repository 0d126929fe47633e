"""Alembic environment: runs on the connection annals hands over, or on sqlalchemy.url."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from archive import search
from archive.db import make_engine
from archive.models import SQLModel

config = context.config
target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as conn:
        _run(conn)
    engine.dispose()


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode copies the table instead.
        render_as_batch=True,
        compare_type=True,
        # The full-text index (FTS5 and its shadow tables) is not in the models: never
        # let autogenerate propose dropping it.
        include_name=search.include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("annals migrations run online only: use `annals db upgrade`")
run_migrations_online()
