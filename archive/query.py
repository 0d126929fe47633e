"""Read-only SQL over the archive, and the row formats the CLI prints."""

from __future__ import annotations

import base64
import csv
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, Any

import orjson
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from archive.db import ArchiveError

FORMATS = ("table", "csv", "json", "jsonl")

# PRAGMAs that only read, allowed even with an argument ("table_info(documents)").
_READ_PRAGMAS = frozenset(
    "table_info table_xinfo index_list index_info index_xinfo foreign_key_list "
    "database_list collation_list function_list module_list pragma_list compile_options".split()
)
_DENIED_FUNCTIONS = frozenset({"load_extension", "readfile", "writefile", "edit"})


class QueryRefused(ArchiveError):  # noqa: N818 - reads as what happened
    """The statement would change something; nothing was run."""


class QueryFailed(ArchiveError):  # noqa: N818
    pass


def _authorizer(action: int, arg1: str | None, arg2: str | None, *_: Any) -> int:
    """Let a statement read and nothing else: no writes, no ATTACH, no schema changes."""
    if action in (
        sqlite3.SQLITE_SELECT,
        sqlite3.SQLITE_READ,
        sqlite3.SQLITE_RECURSIVE,
        sqlite3.SQLITE_TRANSACTION,  # BEGIN/COMMIT of a read-only, query_only connection
    ):
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_FUNCTION:
        return (
            sqlite3.SQLITE_DENY if (arg2 or "").lower() in _DENIED_FUNCTIONS else sqlite3.SQLITE_OK
        )
    if action == sqlite3.SQLITE_PRAGMA and (arg2 is None or (arg1 or "").lower() in _READ_PRAGMAS):
        return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


def run_query(engine: Engine, sql: str) -> tuple[list[str], Iterator[Sequence[Any]]]:
    """Run one statement read-only; returns column names and a row iterator.

    SQLite: the file is opened read-only, `query_only` is on, and an authorizer
    refuses anything but reading. PostgreSQL: a READ ONLY transaction.
    """
    conn = engine.connect()
    if conn.dialect.name == "postgresql":
        return _run_postgres(conn, sql)
    try:
        if conn.dialect.name == "sqlite":
            _driver(conn).set_authorizer(_authorizer)
        result = conn.exec_driver_sql(sql)
    except DBAPIError as exc:
        conn.close()
        raise _explain(exc) from exc
    except Exception:
        conn.close()
        raise
    columns = list(result.keys()) if result.returns_rows else []

    def rows() -> Iterator[Sequence[Any]]:
        try:
            yield from result
        except DBAPIError as exc:
            raise _explain(exc) from exc
        finally:
            conn.close()

    return columns, rows()


def _run_postgres(conn: Connection, sql: str) -> tuple[list[str], Iterator[Sequence[Any]]]:
    """The statement in a READ ONLY transaction, as one statement: psycopg's `stream` uses
    the extended protocol, which refuses "SELECT 1; COMMIT; DELETE ..." whole (a second
    statement after a COMMIT would run outside the read-only transaction). The text is
    passed without parameters, so a `%` in it is only a character. Rows stream from the
    server, one at a time."""
    import psycopg

    driver = _driver(conn)
    driver.read_only = True  # the transaction psycopg begins is BEGIN ... READ ONLY
    cursor = driver.cursor()
    stream = cursor.stream(sql)
    try:
        first = next(stream, None)
    except psycopg.Error as exc:
        conn.close()
        raise _explain(exc) from exc
    except Exception:
        conn.close()
        raise
    columns = [column.name for column in cursor.description or []]

    def rows() -> Iterator[Sequence[Any]]:
        try:
            if first is not None:
                yield first
                yield from stream
        except psycopg.Error as exc:
            raise _explain(exc) from exc
        finally:
            cursor.close()
            conn.close()

    return columns, rows()


def _driver(conn: Connection) -> Any:
    return conn.connection.driver_connection


def _explain(exc: Exception) -> ArchiveError:
    message = str(exc.orig if isinstance(exc, DBAPIError) else exc).strip()
    lowered = message.lower()
    if (
        "not authorized" in lowered
        or "readonly" in lowered
        or "read-only" in lowered
        or "attempt to write" in lowered
        or "cannot execute" in lowered
    ):
        return QueryRefused(
            f"refused: `annals query` only reads the archive ({message}); nothing was changed"
        )
    if "one statement at a time" in lowered or "multiple commands" in lowered:
        return QueryRefused("refused: `annals query` runs one statement at a time")
    return QueryFailed(f"query failed: {message}")


# --- output -----------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, bytes | memoryview):
        return base64.b64encode(bytes(value)).decode()
    return value


def write_rows(out: IO[str], columns: list[str], rows: Iterable[Sequence[Any]], fmt: str) -> int:
    """Write rows as csv, json (one array of objects) or jsonl; returns the row count."""
    count = 0
    if fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_plain(v) for v in row])
            count += 1
    elif fmt == "jsonl":
        for row in rows:
            out.write(_json_row(columns, row) + "\n")
            count += 1
    elif fmt == "json":
        out.write("[")
        for row in rows:
            out.write(("," if count else "") + "\n" + _json_row(columns, row))
            count += 1
        out.write("\n]\n" if count else "]\n")
    else:
        raise ValueError(f"unknown format {fmt!r}")
    return count


def _json_row(columns: list[str], row: Sequence[Any]) -> str:
    obj = {name: _plain(value) for name, value in zip(columns, row, strict=True)}
    return orjson.dumps(obj, default=str).decode()
