"""What the crawler's commands (crawler.cli) share with the archive's (archive.cli): exit
codes, the `--db` option, one line and an exit code for the archive's errors, and the
garbage collector's part in the process.

It imports no command, so the crawler's commands are registered without an import cycle.
"""

from __future__ import annotations

import enum
import functools
import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import sqlalchemy as sa
import typer

from archive import db as dbmod
from archive.query import QueryRefused
from archive.targets import TargetError, TargetExistsError

if TYPE_CHECKING:
    from rich.console import Console


class Exit(enum.IntEnum):
    """Exit codes, as the README lists them."""

    OK = 0
    FAILED = 1  # something went wrong; the message says what
    USAGE = 2  # bad arguments
    BLOCKED = 3  # a crawl ended blocked by the source
    LOCKED = 4  # another crawl holds the archive's lock
    ARCHIVE = 5  # no archive there, not an annals archive, or it needs `annals db upgrade`
    REFUSED = 6  # a write through `annals query`, an export over an existing file
    INTERRUPTED = 130  # stopped by Ctrl-C (SIGINT), as a shell reports it


class _Process:
    """What the cyclic garbage collector does in the `annals` process (command_process).

    Start-up makes some 150,000 objects that live as long as the process: the modules,
    classes and functions of Scrapy, SQLAlchemy, Pydantic and the archive. The collector
    walks all of them at each of its full collections while they are made, and several
    times more as the interpreter exits, only to find them alive (0.14 s of a crawl's
    start-up, 0.3 s of its exit). gc.freeze() moves what exists into a generation it
    never walks."""

    owned = False  # main() runs this process's command (not a test, not a script)
    starting = False  # a crawl's start-up is running without the collector


# Allocations (less deallocations) between two collections of the youngest generation
# while a crawl runs; Python's default is 700. Each of those collections cost a crawl
# about half a millisecond whatever it found, some 450 of them in a first crawl of 3,000
# Gate articles (0.45 s of CPU in all); at 10,000 they are 15, 0.08 s in all, and the
# process's peak memory stayed the same (bench/RESULTS.md, 2026-12-03 afternoon).
CRAWL_GC_THRESHOLD = 10_000


@contextmanager
def command_process() -> Iterator[None]:
    """The `annals` process running its one command (archive.cli.main): at its end what
    is left is frozen, so the interpreter's exit does not walk it. The commands close
    what they open (connections, files) before they return, and atexit's handlers
    (logging's flush) still run."""
    _Process.owned = True
    try:
        yield
    finally:
        gc.freeze()


def starting_up() -> None:
    """A crawl's start-up begins (`annals crawl`, `annals watch`): no cyclic collection
    until started(). Only in the `annals` process: a test or a script that calls a
    command keeps its collector as it was."""
    if _Process.owned and gc.isenabled():
        gc.disable()
        _Process.starting = True


def started() -> None:
    """The crawl begins: what start-up made is frozen and the collector runs again, so
    what the pages make is collected, less often (CRAWL_GC_THRESHOLD)."""
    if _Process.starting:
        _Process.starting = False
        gc.freeze()
        gc.set_threshold(CRAWL_GC_THRESHOLD, *gc.get_threshold()[1:])
        gc.enable()


@functools.cache
def stderr() -> Console:
    """rich's console on stderr, made when first written to: a crawl that ends well writes
    nothing there, and starts without importing rich."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)


DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar=dbmod.ENV_URL,
        help="Archive: a SQLite path or a database URL. Default $ANNALS_DATABASE_URL, "
        "else ./annals.db.",
        show_envvar=False,
    ),
]


def fail(message: str, code: Exit = Exit.FAILED) -> typer.Exit:
    stderr().print(f"[bold red]annals:[/] {message}", soft_wrap=True)
    return typer.Exit(int(code))


@contextmanager
def archive_errors() -> Iterator[None]:
    """Turn the archive's own errors into one line and an exit code, not a traceback."""
    try:
        yield
    except (dbmod.ArchiveNotFoundError, dbmod.NeedsUpgradeError) as exc:
        raise fail(str(exc), Exit.ARCHIVE) from None
    except (QueryRefused, TargetExistsError) as exc:
        raise fail(str(exc), Exit.REFUSED) from None
    except dbmod.ArchiveError as exc:
        # archive.diff's errors are history's and diff's: the module (and the models it
        # reads) is imported for them, not for every command.
        from archive.diff import NothingToCompare, UnknownDocument

        usage = isinstance(exc, TargetError | UnknownDocument | NothingToCompare)
        raise fail(str(exc), Exit.USAGE if usage else Exit.FAILED) from None
    except sa.exc.OperationalError as exc:
        raise fail(f"database error: {exc.orig}") from None
