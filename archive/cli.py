"""The `annals` command: query, export, history, diff, stats, search, serve, rederive
and the schema (`annals db`): each command reads its options, calls one function of the
archive that returns data, and prints it.

Commands that need Scrapy (`crawl`, `demo`, `reparse`) are registered by the crawler
package through the "annals.commands" entry point, so the archive works without Scrapy.
What only some commands use (rich's tables, the export, the search, history and diff, the
stats) is imported when one of them runs: `annals crawl` starts without them.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from datetime import datetime
from importlib.metadata import entry_points
from itertools import islice
from typing import IO, TYPE_CHECKING, Annotated, Any

import orjson
import sqlalchemy as sa
import typer

from archive import db as dbmod
from archive.cliutil import DbOption, Exit, archive_errors, command_process, fail, stderr
from archive.query import DEFAULT_TIMEOUT, FORMATS, run_query, write_rows
from archive.records import EVENT_TYPES
from archive.targets import STDOUT, open_target
from archive.timearg import ACCEPTED, TimeArgumentError, parse_time_argument

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from archive.export import Filters

app = typer.Typer(
    name="annals",
    help="An archive of crypto-exchange announcements and posts, every edit kept as a version.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
db_app = typer.Typer(
    help="The archive's schema.", no_args_is_help=True, rich_markup_mode="markdown"
)
app.add_typer(db_app, name="db")

FormatOption = Annotated[
    str, typer.Option("--format", "-f", help="table, csv, json (one array) or jsonl.")
]


def time_argument(value: str | datetime) -> datetime:
    """The parser of every time option: what archive.timearg accepts, else exit 2 with
    the forms it does accept."""
    if isinstance(value, datetime):
        return value
    try:
        return parse_time_argument(value)
    except TimeArgumentError as exc:
        raise typer.BadParameter(str(exc)) from None


SinceOption = Annotated[
    datetime | None,
    typer.Option(
        parser=time_argument, metavar="TIME", help=f"Published at or after this time: {ACCEPTED}."
    ),
]
UntilOption = Annotated[
    datetime | None,
    typer.Option(
        parser=time_argument, metavar="TIME", help=f"Published before this time: {ACCEPTED}."
    ),
]


SourceOption = Annotated[str | None, typer.Option(help="Only this exchange, e.g. gate.")]
EventTypeOption = Annotated[
    str | None, typer.Option("--event-type", help=f"One of {', '.join(EVENT_TYPES)}.")
]


def open_readonly(db: str | None) -> sa.Engine:
    return dbmod.open_archive(dbmod.resolve_url(db), readonly=True)


def _check_format(fmt: str, allowed: tuple[str, ...] = FORMATS) -> None:
    if fmt not in allowed:
        raise fail(f"--format must be one of {', '.join(allowed)}", Exit.USAGE)


def _check_event_type(event_type: str | None) -> None:
    if event_type and event_type not in EVENT_TYPES:
        raise fail(f"--event-type must be one of {', '.join(EVENT_TYPES)}", Exit.USAGE)


# --- query ------------------------------------------------------------------------------------


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="One SQL statement that reads.")],
    db: DbOption = None,
    fmt: FormatOption = "table",
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout", min=0, help="Stop the query after this many seconds; 0: no limit."
        ),
    ] = DEFAULT_TIMEOUT,
) -> None:
    """Run one read-only SQL statement on the archive.

    The archive is opened read-only: a statement that would write, ATTACH another
    database, change the schema or end the transaction (COMMIT, ROLLBACK) is refused
    and changes nothing. A query is stopped after `--timeout` seconds, and at once by
    Ctrl-C. csv, json and jsonl stream every row; the table shows the first
    1000 rows (a note says when there were more).

    Example:

        annals query "SELECT source, count(*) FROM documents GROUP BY source" --format csv
    """
    _check_format(fmt)
    with archive_errors(), _stopped_by_ctrl_c():
        engine = open_readonly(db)
        columns, rows = run_query(engine, sql, timeout=timeout)
        with closing(rows):
            try:
                if fmt == "table":
                    _print_table(columns, rows)
                else:
                    write_rows(sys.stdout, columns, rows, fmt)
                    sys.stdout.flush()
            except OSError as exc:
                _quiet_stdout(exc, STDOUT)
                raise fail(f"cannot write the rows: {exc.strerror or exc}") from None


TABLE_ROWS = 1000  # a table is laid out whole in memory: the rows beyond are not read


def _print_table(columns: list[str], rows: Iterator[Sequence[Any]]) -> None:
    from rich.table import Table

    table = Table(*columns, show_lines=False)
    for row in islice(rows, TABLE_ROWS):
        table.add_row(*(_cell(v) for v in row))
    more = next(rows, None) is not None
    _out().print(table)
    if more:
        stderr().print(
            f"note: only the first {TABLE_ROWS} rows are shown, the rest were not read; "
            "--format csv or jsonl streams them all",
            soft_wrap=True,
        )


@contextmanager
def _stopped_by_ctrl_c() -> Iterator[None]:
    try:
        yield
    except KeyboardInterrupt:
        raise fail("stopped by Ctrl-C; nothing was changed", Exit.INTERRUPTED) from None


def _out() -> Console:
    """stdout; when it is not a terminal, wide enough that tables are not wrapped at 80."""
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console = Console(highlight=False, soft_wrap=True, width=240)
    return console


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes | memoryview):
        return f"<{len(value)} bytes>"
    return str(value)


# --- export -----------------------------------------------------------------------------------


@app.command()
def export(
    output: Annotated[
        str,
        typer.Option(
            "--output",
            "-o",
            help="File to write (.gz compresses), or - for stdout. A symlink's target is "
            "written; a FIFO or a device gets the lines streamed into it.",
        ),
    ] = STDOUT,
    db: DbOption = None,
    source: SourceOption = None,
    kind: Annotated[str | None, typer.Option(help="announcement or post.")] = None,
    event_type: EventTypeOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    all_versions: Annotated[
        bool, typer.Option("--all-versions", help="One line per version, not per document.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    fmt: Annotated[
        str,
        typer.Option(
            "--format", "-f", help="jsonl, or parquet (the parquet extra; needs -o FILE)."
        ),
    ] = "jsonl",
) -> None:
    """Export the archive as JSONL: one object per document (its current version).

    Each line has the document's identity and ref, url, published_at, first_seen_at,
    last_seen_at, version, title, body_text, category, event_type, tags, symbols and
    links. Times are UTC ISO-8601 with milliseconds. It streams, so memory stays flat.
    `--format parquet` writes the same columns to a Parquet file (times as UTC
    timestamps, extra as JSON text), in row groups, for pandas, Polars or DuckDB.

    Example:

        annals export --source gate --event-type delisting --since 2026-01-01 -o delistings.jsonl.gz
        annals export --format parquet --all-versions -o versions.parquet
    """
    from archive.export import Filters, export_jsonl, export_parquet

    _check_format(fmt, ("jsonl", "parquet"))
    _check_event_type(event_type)
    filters = Filters(
        source=source,
        kind=kind,
        event_type=event_type,
        since=since,
        until=until,
    )
    if fmt == "parquet" and output == STDOUT:
        raise fail("--format parquet writes a file: give -o FILE.parquet", Exit.USAGE)
    with archive_errors():
        engine = open_readonly(db)
        try:
            with open_target(output, force=force, gzip_by_name=fmt == "jsonl") as out:
                if fmt == "parquet":
                    written = export_parquet(engine, out, filters, all_versions=all_versions)
                elif output == STDOUT:
                    written = export_jsonl(engine, out, filters, all_versions=all_versions)
                else:
                    written = _export_with_progress(engine, out, filters, all_versions)
        except OSError as exc:
            _quiet_stdout(exc, output)
            raise fail(f"cannot write {output}: {exc.strerror or exc}") from None
    stderr().print(f"exported {written} {'versions' if all_versions else 'documents'}")


def _quiet_stdout(exc: OSError, output: str) -> None:
    """After a reader closed stdout (`annals export | head`), point it at /dev/null, or
    Python's flush at exit fails a second time with a traceback."""
    if output == STDOUT and isinstance(exc, BrokenPipeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _export_with_progress(
    engine: sa.Engine, out: IO[bytes], filters: Filters, all_versions: bool
) -> int:
    from archive.export import count, export_jsonl

    if not stderr().is_terminal:
        return export_jsonl(engine, out, filters, all_versions=all_versions)
    from rich.progress import Progress

    total = count(engine, filters, all_versions=all_versions)
    with Progress(console=stderr(), transient=True) as progress:
        task = progress.add_task("exporting", total=total)
        return export_jsonl(
            engine,
            out,
            filters,
            all_versions=all_versions,
            progress=lambda n: progress.advance(task, n),
        )


# --- history and diff -------------------------------------------------------------------------


@app.command()
def history(
    ref: Annotated[str, typer.Argument(help="SOURCE:KIND:EXTERNAL_ID[:LANG]")],
    db: DbOption = None,
    fmt: FormatOption = "table",
) -> None:
    """List a document's versions with when each was first seen, and how many are edits.

    A version pulled from a push channel is marked (pushed); the article page that
    completes it, `annals watch`'s second version, is a completion, not an edit.

    Example:

        annals history gate:announcement:51322:en
    """
    from rich.table import Table

    from archive.diff import edits, history_rows, load_history
    from archive.normalize import format_time

    _check_format(fmt, ("table", "json", "jsonl"))
    with archive_errors():
        hist = load_history(open_readonly(db), ref)
    rows = history_rows(hist)
    if fmt != "table":
        columns = list(rows[0])
        write_rows(sys.stdout, columns, [list(r.values()) for r in rows], fmt)
        return
    console = _out()
    console.print(f"{hist.identity.ref()}  {hist.url}")
    published = format_time(hist.published_at) if hist.published_at else "unknown"
    removed = f"  removed {format_time(hist.removed_at)}" if hist.removed_at else ""
    console.print(f"published {published}{removed}")
    table = Table("version", "first seen (UTC)", "content hash", "title", "run")
    for row in rows:
        mark = f"{row['version']} *" if row["current"] else str(row["version"])
        title = row["title"] or ""
        if row["reverted_at"]:
            title += f"  (current again from {', '.join(row['reverted_at'])})"
        if row["pushed"]:
            title += "  (pushed)"
        if row["completes_push"]:
            title += "  (completes the push: article fetched)"
        table.add_row(
            mark, row["seen_at"], row["content_hash"][:12], title, str(row["crawl_run_id"] or "")
        )
    console.print(table)
    count = edits(hist)
    completed = " (completing a push is not one)" if any(r["completes_push"] for r in rows) else ""
    console.print(f"* current version; {count} edit{'' if count == 1 else 's'}{completed}")


@app.command()
def diff(
    ref: Annotated[str, typer.Argument(help="SOURCE:KIND:EXTERNAL_ID[:LANG]")],
    db: DbOption = None,
    from_: Annotated[
        int | None, typer.Option("--from", help="Older version (default: the one before --to).")
    ] = None,
    to: Annotated[
        int | None, typer.Option("--to", help="Newer version (default: current).")
    ] = None,
) -> None:
    """Print a unified diff of title and body text between two versions.

    A version that completes a pushed record (`annals watch` archived the push's title
    and brief, then the article page) is said to be one before its diff: it is no edit.

    Example:

        annals diff gate:announcement:51322:en --from 1 --to 2
    """
    from archive.diff import compared_versions, completion_notes, load_history, unified_diff

    with archive_errors():
        hist = load_history(open_readonly(db), ref)
        old, new = compared_versions(hist, from_, to)
        text = unified_diff(hist, old, new)
    for note in completion_notes(hist, old, new):
        typer.echo(note)
    typer.echo(text if text else f"versions {old} and {new} have the same title and body text")


# --- stats ------------------------------------------------------------------------------------


@app.command()
def stats(db: DbOption = None, fmt: FormatOption = "table") -> None:
    """Documents and versions per source and kind, quarantine size, the last runs.

    Example:

        annals stats --db annals.db
    """
    from rich.table import Table

    from archive.stats import archive_stats

    _check_format(fmt, ("table", "json"))
    with archive_errors():
        summary = archive_stats(open_readonly(db))
    if fmt == "json":
        typer.echo(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
        return
    console = _out()
    table = Table("source", "kind", "documents", "versions", "last seen (UTC)", title="archive")
    for row in summary.sources:
        table.add_row(
            row.source, row.kind, str(row.documents), str(row.versions), row.last_seen_at or ""
        )
    console.print(table)
    console.print(f"quarantine: {summary.quarantine_unresolved} unresolved")
    table = Table("run", "spider", "started (UTC)", "status", "counters", title="last runs")
    for run in summary.last_runs:
        counters = ", ".join(f"{k}={v}" for k, v in run.counters.items() if v)
        table.add_row(str(run.id), run.spider, run.started_at, run.status, counters)
    console.print(table)


# --- search and serve -----------------------------------------------------------------------


@app.command()
def search(
    query: Annotated[
        str, typer.Argument(help="Words that must all occur, or an FTS5 query (see above).")
    ],
    db: DbOption = None,
    source: SourceOption = None,
    event_type: EventTypeOption = None,
    since: SinceOption = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many results.")] = 20,
    fmt: FormatOption = "table",
) -> None:
    """Full-text search over the current version of every document, best match first.

    Plain words must all occur in the title or body, as substrings ("list" also finds
    "delisting"), in any language; punctuation is fine (NXRA/USDT). A title match ranks
    above a body match. Words of 3 characters or more use the index; shorter ones
    (上线, 下架) are found by scanning, which is slower. FTS5 syntax works too:
    "exact phrase", AND, OR, NOT, title:word. Each result gives the reference that
    `annals history` and `annals diff` take, a snippet with the match in « », and the URL.
    The same on PostgreSQL (pg_trgm indexes), except NEAR, * and ^, which only SQLite has.

    Example:

        annals search "delist USDT" --source gate --since 2026-01-01
    """
    from rich.markup import escape
    from rich.table import Table

    from archive import search as searchmod
    from archive.export import Filters

    _check_format(fmt)
    _check_event_type(event_type)
    filters = Filters(source=source, event_type=event_type, since=since)
    try:
        plan = searchmod.plan(query)
    except searchmod.SearchQueryError as exc:
        raise fail(escape(str(exc)), Exit.USAGE) from None
    if plan.short:
        stderr().print(
            f"note: {escape(', '.join(plan.short))}: shorter than {searchmod.MIN_TERM} characters, "
            "the index cannot match it inside an FTS5 query; write it as a plain word"
        )
    elif plan.scan and plan.match is None:
        stderr().print(
            f"note: every word is shorter than {searchmod.MIN_TERM} characters, so the "
            "current versions are scanned (slower) and results come newest first"
        )
    with archive_errors():
        try:
            hits = searchmod.search(open_readonly(db), query, filters, limit=limit)
        except searchmod.SearchQueryError as exc:
            raise fail(escape(str(exc)), Exit.USAGE) from None
    if fmt != "table":
        rows = [hit.as_dict() for hit in hits]
        columns = list(rows[0]) if rows else []
        write_rows(sys.stdout, columns, [list(r.values()) for r in rows], fmt)
        return
    console = _out()
    if not hits:
        console.print(f"no current version matches {query!r}")
        return
    table = Table("#", "published (UTC)", "ref", "title and snippet", "url", show_lines=True)
    for number, hit in enumerate(hits, 1):
        published = hit.as_dict()["published_at"] or ""
        cell = _highlighted(hit.title_marked or "(no title)", style="bold")
        cell.append("\n")
        cell.append_text(_highlighted(hit.snippet))
        table.add_row(str(number), published[:16], hit.ref, cell, hit.url)
    console.print(table)


def _highlighted(marked: str, style: str = "") -> Text:
    """« » around a match become a highlight."""
    from rich.text import Text

    from archive.search import MARK

    text = Text(style=style)
    opened, closed = MARK
    for i, part in enumerate(marked.replace(closed, opened).split(opened)):
        text.append(part, style="bold yellow" if i % 2 else "")
    return text


@app.command()
def serve(
    db: DbOption = None,
    host: Annotated[
        str, typer.Option(help="Address to listen on; 0.0.0.0 exposes it to the network.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8001,
    immutable: Annotated[
        bool,
        typer.Option(
            "--immutable",
            help="Open the file as immutable: faster, for a copy no crawl writes to any more.",
        ),
    ] = False,
) -> None:
    """Browse the archive in a web browser: Datasette, read-only.

    Needs the `serve` extra (pip install 'annals[serve]'). Opens with the table of
    current documents (search box, facets on source, kind, event type and category),
    canned queries (ranked search, latest listings, delistings in a date range, edits
    after publication, detection lag, everything citing an announcement) and, under
    Dashboards, a chart of announcements per exchange per week. SQLite archives only.

    Example:

        annals serve --db annals.db --port 8001
    """
    from rich.markup import escape

    from archive import serve as servemod

    url = dbmod.resolve_url(db)
    path = dbmod.sqlite_path(url)
    if path is None:
        raise fail(
            f"annals serve runs Datasette, which reads SQLite files only, not {dbmod.display(url)}",
            Exit.USAGE,
        )
    with archive_errors():
        open_readonly(db).dispose()  # there, and at the current schema
    try:
        datasette = servemod.datasette_app(path, immutable=immutable)
    except servemod.ServeUnavailable as exc:
        raise fail(escape(str(exc))) from None
    stderr().print(
        f"serving {path} read-only at http://{host}:{port}/{path.stem}/current_documents"
        " (Ctrl-C stops it)"
    )
    servemod.run(datasette, host, port)


# --- rederive ---------------------------------------------------------------------------------


@app.command()
def rederive(
    source: Annotated[
        str | None, typer.Option(help="Only this source's documents, e.g. binance.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would change; write nothing.")
    ] = False,
    db: DbOption = None,
) -> None:
    """Recompute `symbols` and `event_type` of every current version with today's rules.

    They are derived from what each version stores, so no version is added and no
    content hash changes. Work is committed in batches: an interrupted run keeps what it
    did, and running it again finishes the rest.

    Example:

        annals rederive --db annals.db --source binance
    """
    from archive.rederive import RederiveReport
    from archive.rederive import rederive as recompute
    from archive.store import Store

    report = RederiveReport(dry_run=dry_run)

    def kept(so_far: RederiveReport) -> None:
        nonlocal report
        report = so_far

    with archive_errors():
        engine = dbmod.open_archive(dbmod.resolve_url(db))
        try:
            report = recompute(Store(engine), source=source, dry_run=dry_run, progress=kept)
        except KeyboardInterrupt:
            done = (
                "nothing written (dry run)"
                if dry_run
                else f"the {report.changed} changes in them are kept; run it again to finish"
            )
            raise fail(f"interrupted after {report.checked} rows: {done}") from None
        finally:
            engine.dispose()
    if source is not None and report.checked == 0:
        raise fail(f"no documents of source {source!r} in the archive", Exit.USAGE)
    verb = "would change" if dry_run else "changed"
    typer.echo(
        f"{report.checked} current versions checked, {report.changed} {verb} "
        f"(symbols {report.symbols_changed}, event_type {report.event_types_changed})"
    )


# --- db ---------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(
    db: DbOption = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Add the archive's tables to a database that holds other tables."
        ),
    ] = False,
) -> None:
    """Create the archive, or bring its schema up to this version of annals.

    A database that holds tables but no annals schema (another program's SQLite file)
    is refused, as every command that writes refuses it, unless `--force` is given:
    then the archive's tables are added beside the others.

    Example:

        annals db upgrade --db annals.db
    """
    url = dbmod.resolve_url(db)
    path = dbmod.sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    with archive_errors():
        if not force:
            dbmod.refuse_foreign(url)
        engine = dbmod.make_engine(url)
        try:
            before, after = dbmod.upgrade(engine)
        finally:
            engine.dispose()
    where = dbmod.display(url)
    if before == after:
        typer.echo(f"{where} is already at schema revision {after}")
    else:
        typer.echo(f"{where}: schema revision {before or 'none'} -> {after}")


@db_app.command("copy")
def db_copy(
    from_: Annotated[
        str, typer.Option("--from", help="The archive to copy: a SQLite path or a database URL.")
    ],
    to: Annotated[
        str, typer.Option("--to", help="Where to: a new SQLite file or an empty database.")
    ],
    batch: Annotated[int, typer.Option(help="Rows per transaction.", min=1)] = 2000,
) -> None:
    """Copy an archive between SQLite and PostgreSQL, keeping every id; verify it.

    The target is created when missing. A copy that was interrupted continues where it
    stopped when run again. At the end the row counts of every table and the content
    hashes of every document are compared. Copy a quiet archive (no crawl running).

    Example:

        annals db copy --from annals.db --to postgresql+psycopg://annals@db.internal/annals
    """
    from archive.copy import CopyRefused, copy_archive

    def said(table: str, done: int, total: int) -> None:
        if done == total:
            stderr().print(f"{table}: {done} rows")

    with archive_errors():
        try:
            report = copy_archive(
                dbmod.resolve_url(from_), dbmod.resolve_url(to), batch=batch, progress=said
            )
        except CopyRefused as exc:
            raise fail(str(exc), Exit.REFUSED) from None
    copied = sum(report.copied.values())
    resumed = sum(report.resumed.values())
    again = f" ({resumed} were there from an earlier run)" if resumed else ""
    typer.echo(
        f"copied {copied} rows to {dbmod.display(dbmod.resolve_url(to))}{again}; verified: "
        f"row counts of {len(report.counts)} tables and the content hashes of "
        f"{report.documents} documents match"
    )


# --- entry point ------------------------------------------------------------------------------


def _load_plugins() -> None:
    for entry in entry_points(group="annals.commands"):
        try:
            register = entry.load()
        except ImportError as exc:  # e.g. Scrapy not installed: the archive still works
            logging.getLogger(__name__).debug("annals command %s unavailable: %s", entry.name, exc)
            continue
        register(app)


_load_plugins()


def main() -> None:
    if os.environ.get("ANNALS_DEBUG"):
        logging.basicConfig(level=logging.DEBUG)
    with command_process():
        app()
