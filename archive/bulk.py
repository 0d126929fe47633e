"""Bulk SQL that works the same on SQLite and PostgreSQL, and fast on both: many-row
INSERTs and large IN lists (the store's hot paths, measured by bench/ingest)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection

# SQLite allows 32766 bound values per statement; stay well under it.
_MAX_VALUES = 30_000


def insert_many(
    conn: Connection,
    table: sa.Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    returning: Sequence[str] = (),
) -> list[Any]:
    """INSERT rows given as value sequences in `columns` order; with `returning`, give back
    those columns of every inserted row (in no promised order: return a key with them).

    On SQLite the values go straight to the DBAPI after each column's own bind
    processor (applied column by column): SQLAlchemy's per-row parameter handling
    costs more than the insert itself there (bench/ingest). Elsewhere it is Core's
    executemany, whose RETURNING PostgreSQL batches natively.
    """
    if not rows:
        return []
    if conn.dialect.name != "sqlite":
        stmt = table.insert()
        params = [dict(zip(columns, row, strict=True)) for row in rows]
        if returning:
            return list(conn.execute(stmt.returning(*(table.c[c] for c in returning)), params))
        conn.execute(stmt, params)
        return []
    by_column = list(zip(*rows, strict=True))
    for i, name in enumerate(columns):
        proc = table.c[name].type.bind_processor(conn.dialect)
        if proc is not None:
            by_column[i] = tuple(None if v is None else proc(v) for v in by_column[i])
    values = list(zip(*by_column, strict=True))
    head = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES "
    placeholder = f"({', '.join('?' * len(columns))})"
    if not returning:
        conn.exec_driver_sql(head + placeholder, values)
        return []
    out: list[Any] = []
    per_statement = max(1, _MAX_VALUES // len(columns))
    for start in range(0, len(values), per_statement):
        chunk = values[start : start + per_statement]
        sql = f"{head}{', '.join([placeholder] * len(chunk))} RETURNING {', '.join(returning)}"
        out.extend(conn.exec_driver_sql(sql, tuple(itertools.chain.from_iterable(chunk))).all())
    return out


def member_of(
    conn: Connection,
    column: sa.ColumnElement[Any],
    values: Sequence[Any] = (),
    *,
    key: str | None = None,
) -> Any:
    """`column IN values` as one bound parameter (a JSON array read by json_each on
    SQLite, an array on PostgreSQL): compiled once and cheap for thousands of values.

    With `key`, the parameter is that named one, left unbound: pass `members(conn,
    values)` under that name when executing (a statement built once, run many times)."""
    value = None if key else members(conn, values)
    if conn.dialect.name == "postgresql":
        return column == sa.any_(sa.bindparam(key, value, type_=ARRAY(column.type)))
    each = sa.func.json_each(sa.bindparam(key, value))
    return column.in_(sa.select(each.table_valued("value").c.value))


def members(conn: Connection, values: Sequence[Any]) -> Any:
    """The value of member_of's parameter on this connection's database."""
    if conn.dialect.name == "postgresql":
        return list(values)
    return orjson.dumps(list(values)).decode()
