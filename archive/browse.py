"""`annals search` and `annals serve`, added to the CLI through the "annals.commands"
entry point (archive.store imports archive.search, so the commands live apart from it)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from archive import db as dbmod
from archive import search as searchmod
from archive.cli import (
    DbOption,
    Exit,
    FormatOption,
    SinceOption,
    _check_format,
    _out,
    archive_errors,
    err,
    fail,
    open_readonly,
)
from archive.export import Filters
from archive.query import write_rows
from archive.records import EVENT_TYPES


def register_search(app: typer.Typer) -> None:
    app.command("search")(search)


def register_serve(app: typer.Typer) -> None:
    app.command("serve")(serve)


def search(
    query: Annotated[
        str, typer.Argument(help="Words that must all occur, or an FTS5 query (see above).")
    ],
    db: DbOption = None,
    source: Annotated[str | None, typer.Option(help="Only this exchange, e.g. gate.")] = None,
    event_type: Annotated[
        str | None, typer.Option("--event-type", help=f"One of {', '.join(EVENT_TYPES)}.")
    ] = None,
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
    _check_format(fmt)
    if event_type and event_type not in EVENT_TYPES:
        raise fail(f"--event-type must be one of {', '.join(EVENT_TYPES)}", Exit.USAGE)
    filters = Filters(source=source, event_type=event_type, since=since)
    try:
        plan = searchmod.plan(query)
    except searchmod.SearchQueryError as exc:
        raise fail(escape(str(exc)), Exit.USAGE) from None
    if plan.short:
        err.print(
            f"note: {escape(', '.join(plan.short))}: shorter than {searchmod.MIN_TERM} characters, "
            "the index cannot match it inside an FTS5 query; write it as a plain word"
        )
    elif plan.scan and plan.match is None:
        err.print(
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
    text = Text(style=style)
    opened, closed = searchmod.MARK
    for i, part in enumerate(marked.replace(closed, opened).split(opened)):
        text.append(part, style="bold yellow" if i % 2 else "")
    return text


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
    err.print(
        f"serving {path} read-only at http://{host}:{port}/{path.stem}/current_documents"
        " (Ctrl-C stops it)"
    )
    servemod.run(datasette, host, port)
