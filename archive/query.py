"""Read-only SQL over the archive, and the row formats the CLI prints."""

from __future__ import annotations

import base64
import csv
import re
import sqlite3
import time
from collections.abc import Generator, Iterable, Sequence
from typing import IO, Any

import orjson
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from archive.db import ArchiveError

FORMATS = ("table", "csv", "json", "jsonl")
DEFAULT_TIMEOUT = 60.0  # seconds; a query that runs longer is stopped
# SQLite calls the progress handler every this many virtual-machine instructions (well
# under a millisecond), so a deadline or a Ctrl-C ends even a query that returns no row.
PROGRESS_STEPS = 1000

Rows = Generator[Sequence[Any], None, None]

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


class QueryTimeout(QueryFailed):
    """The statement ran past --timeout and was stopped."""


# Leading whitespace, comments and empty statements, then the first word.
_LEADING = re.compile(r"(?:\s+|--[^\n]*|/\*.*?(?:\*/|\Z)|;)*", re.DOTALL)
_WORD = re.compile(r"[A-Za-z]+")
# Statements that end or open a transaction: `annals query` owns its read-only one.
_TRANSACTION = frozenset("begin commit end rollback savepoint release start abort".split())


def refuse_non_reading(sql: str) -> None:
    """Refuse, before anything runs, what is no statement at all (empty, comments only)
    and transaction control (COMMIT, ROLLBACK, BEGIN, ...): a COMMIT would end the
    read-only transaction the statement runs in."""
    match = _LEADING.match(sql)
    rest = sql[match.end() if match else 0 :]
    if not rest:
        raise QueryRefused(
            "refused: the statement is empty (only spaces or comments); "
            "give `annals query` one SQL statement that reads"
        )
    word = _WORD.match(rest)
    if word and word.group().lower() in _TRANSACTION:
        raise QueryRefused(
            f"refused: {word.group().upper()} controls a transaction; `annals query` runs "
            "one statement that reads, in a read-only transaction of its own"
        )


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


def run_query(
    engine: Engine, sql: str, *, timeout: float | None = DEFAULT_TIMEOUT
) -> tuple[list[str], Rows]:
    """Run one statement read-only; returns column names and a row iterator. The query
    is stopped after `timeout` seconds (None or 0: never), rows handed out included.

    SQLite: the file is opened read-only, `query_only` is on, and an authorizer
    refuses anything but reading; a progress handler enforces the deadline and lets
    Ctrl-C through. PostgreSQL: a READ ONLY transaction with `statement_timeout`.
    """
    refuse_non_reading(sql)
    conn = engine.connect()
    if conn.dialect.name == "postgresql":
        return _run_postgres(conn, sql, timeout)
    watch = _Watch(timeout)
    try:
        if conn.dialect.name == "sqlite":
            driver = _driver(conn)
            driver.set_authorizer(_authorizer)
            driver.set_progress_handler(watch, PROGRESS_STEPS)
        result = conn.exec_driver_sql(sql)
    except DBAPIError as exc:
        conn.close()
        raise watch.explain(exc) from exc
    except BaseException:
        conn.close()
        raise
    columns = list(result.keys()) if result.returns_rows else []

    def rows() -> Rows:
        try:
            yield from result
        except DBAPIError as exc:
            raise watch.explain(exc) from exc
        finally:
            conn.close()

    return columns, rows()


class _Watch:
    """SQLite's progress handler: stops the statement at its deadline. A Ctrl-C raises
    KeyboardInterrupt inside it, which SQLite turns into "interrupted" too; `explain`
    tells the two apart."""

    def __init__(self, timeout: float | None) -> None:
        self.timeout = timeout or None
        self.deadline = time.monotonic() + timeout if timeout else None
        self.timed_out = False

    def __call__(self) -> int:
        if self.deadline is not None and time.monotonic() > self.deadline:
            self.timed_out = True
            return 1
        return 0

    def explain(self, exc: DBAPIError) -> BaseException:
        if "interrupted" not in str(exc.orig).lower():
            return _explain(exc)
        if self.timed_out:
            return _timed_out(self.timeout)
        return KeyboardInterrupt()


def _timed_out(timeout: float | None) -> QueryTimeout:
    return QueryTimeout(
        f"query stopped after {timeout:g} s (--timeout); give it more time with "
        "--timeout SECONDS, or --timeout 0 for no limit"
    )


def _run_postgres(conn: Connection, sql: str, timeout: float | None) -> tuple[list[str], Rows]:
    """The statement in a READ ONLY transaction, as one statement: psycopg's `stream` uses
    the extended protocol, which refuses "SELECT 1; COMMIT; DELETE ..." whole (a second
    statement after a COMMIT would run outside the read-only transaction). The text is
    passed without parameters, so a `%` in it is only a character. Rows stream from the
    server, one at a time. psycopg cancels the query on the server at a Ctrl-C."""
    import psycopg

    driver = _driver(conn)
    driver.read_only = True  # the transaction psycopg begins is BEGIN ... READ ONLY
    cursor = driver.cursor()

    def explain(exc: psycopg.Error) -> ArchiveError:
        if isinstance(exc, psycopg.errors.QueryCanceled) and timeout:
            return _timed_out(timeout)
        return _explain(exc)

    try:
        cursor.execute(f"SET LOCAL statement_timeout = {round((timeout or 0) * 1000)}")
        stream = cursor.stream(sql)
        first = next(stream, None)
    except psycopg.Error as exc:
        conn.close()
        raise explain(exc) from exc
    except BaseException:
        conn.close()
        raise
    columns = [column.name for column in cursor.description or []]

    def rows() -> Rows:
        try:
            if first is not None:
                yield first
                yield from stream
        except psycopg.Error as exc:
            raise explain(exc) from exc
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
