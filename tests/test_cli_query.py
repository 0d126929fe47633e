"""`annals query` on what is not a reading statement, on a query that runs too long or
is stopped with Ctrl-C, and on a result too large for a table."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from archive.cli import TABLE_ROWS, Exit, app
from tests.helpers import rows

runner = CliRunner()

# Counts for ever: no row comes out before it is stopped.
ENDLESS = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r"


def invoke(*args: str):
    return runner.invoke(app, list(args))


@pytest.mark.parametrize(
    "sql",
    [
        "COMMIT",
        "ROLLBACK",
        "BEGIN",
        "end",
        "  -- COMMIT\n rollback ;",
        "/* first */ COMMIT",
        "",
        "   \n\t ",
        ";",
        "-- only a comment",
        "/* only a comment */",
    ],
)
def test_query_refuses_transaction_control_and_empty_statements(archive: str, engine, sql):
    result = invoke("query", "--db", archive, "--", sql)
    assert result.exit_code == Exit.REFUSED, result.output
    assert "refused" in result.stderr
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert rows(engine, "SELECT count(*) FROM documents")[0][0] == 3


def test_query_stops_at_its_timeout(archive: str):
    started = time.monotonic()
    result = invoke("query", ENDLESS, "--db", archive, "--timeout", "1")
    took = time.monotonic() - started
    assert result.exit_code == Exit.FAILED, result.output
    assert "query stopped after 1 s (--timeout)" in result.stderr
    assert "Traceback" not in result.output
    assert took < 10


def test_query_timeout_zero_is_no_limit_and_a_quick_query_is_not_stopped(archive: str):
    result = invoke("query", "SELECT count(*) AS n FROM documents", "--db", archive,
                    "-f", "csv", "--timeout", "0")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["n", "3"]


def test_query_help_gives_the_default_timeout():
    result = invoke("query", "--help")
    assert "--timeout" in result.output
    assert "60" in result.output


def annals_env() -> dict[str, str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    env.pop("ANNALS_DATABASE_URL", None)
    return env


def wait_until_running(process: subprocess.Popen[str], archive: str, database: str) -> None:
    """Until the query is running: the archive file open in the process (SQLite), the
    statement active on the server (PostgreSQL). Imports alone take a second or two."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        if database.startswith("sqlite"):
            fds = Path(f"/proc/{process.pid}/fd")
            try:
                opened = {str(fd.readlink()) for fd in fds.iterdir()}
            except FileNotFoundError:
                opened = set()
            if str(Path(archive).resolve()) in opened:
                time.sleep(0.3)  # opened in run_query, a moment before it runs
                return
        elif active_queries(database):
            return
        time.sleep(0.05)
    raise AssertionError("the query never started")


def active_queries(database: str) -> int:
    engine = sa.create_engine(database, poolclass=sa.NullPool)
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND state = 'active' AND query LIKE 'WITH RECURSIVE%'"
                )
            ).scalar_one()
        )


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to see the query")
def start_interruptible(args: list[str]) -> subprocess.Popen[str]:
    """`annals` with SIGINT at its default, as a shell starts a command in the foreground.
    Python turns SIGINT into KeyboardInterrupt only when it starts with the default, and a
    child inherits an ignored SIGINT (Scrapy's second-signal handler leaves SIG_IGN, for
    one): a test worker that ignores it would hand that on, and the query never stop. A
    handler of the worker's own is not inherited: the child starts at the default."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "archive", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=annals_env(),
        )
    finally:
        signal.signal(signal.SIGINT, previous)


def test_ctrl_c_stops_a_running_query_at_once(archive: str, database: str):
    process = start_interruptible(["query", ENDLESS, "--db", archive, "--timeout", "0"])
    with process:  # its pipes closed, whatever happens
        try:
            wait_until_running(process, archive, database)
            interrupted = time.monotonic()
            process.send_signal(signal.SIGINT)
            _, errors = process.communicate(timeout=15)
            took = time.monotonic() - interrupted
        finally:
            process.kill()
            process.wait()
    assert process.returncode == Exit.INTERRUPTED, errors
    assert "stopped by Ctrl-C" in errors
    assert "Traceback" not in errors
    assert took < 3, f"exited {took:.2f} s after SIGINT"
    if not database.startswith("sqlite"):
        assert active_queries(database) == 0  # cancelled on the server too


def max_rss(args: list[str], timeout: float = 120) -> tuple[int, str, str, float]:
    """Run `annals`; its exit code, stdout, stderr and peak resident memory in MB."""
    process = subprocess.Popen(
        [sys.executable, "-m", "archive", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=annals_env(),
    )
    assert process.stdout is not None
    assert process.stderr is not None
    streams = {"out": process.stdout, "err": process.stderr}
    texts: dict[str, str] = {}
    readers = [
        threading.Thread(target=lambda k=k, f=f: texts.__setitem__(k, f.read()))
        for k, f in streams.items()
    ]
    for reader in readers:
        reader.start()
    killer = threading.Timer(timeout, process.kill)
    killer.start()
    try:
        # wait4, not wait: the peak memory of this one process, not of every child so far
        _, status, usage = os.wait4(process.pid, 0)
    finally:
        killer.cancel()
    process.returncode = os.waitstatus_to_exitcode(status)
    for reader in readers:
        reader.join()
    for stream in streams.values():
        stream.close()
    return process.returncode, texts["out"], texts["err"], usage.ru_maxrss / 1024


def test_table_shows_a_capped_number_of_rows_and_memory_stays_flat(archive: str, database: str):
    """A huge result as a table: the first TABLE_ROWS rows and a note, the rest never
    read, so memory stays where a one-row query leaves it (a table of every row of a
    big query grew to 763 MB in 12 s)."""
    pad = "printf('%0200d', n)" if database.startswith("sqlite") else "lpad(n::text, 200, '0')"
    huge = (
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 300000) "
        f"SELECT n, {pad} AS padding FROM r"
    )
    code, _, errors, small = max_rss(["query", "SELECT 1 AS n", "--db", archive])
    assert code == 0, errors
    code, out, errors, peak = max_rss(["query", huge, "--db", archive])
    assert code == 0, errors
    shown = [line for line in out.splitlines() if line.startswith("│ ")]
    assert len(shown) == TABLE_ROWS
    assert shown[-1].split()[1] == str(TABLE_ROWS)
    assert f"only the first {TABLE_ROWS} rows are shown" in errors
    assert "--format csv or jsonl" in errors
    assert peak - small < 40, f"peak RSS {peak:.0f} MB against {small:.0f} MB for one row"
