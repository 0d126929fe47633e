"""`annals serve`: Datasette on the archive, read-only, with metadata written for it.

The metadata (descriptions, time zones, facets, the search box, canned queries and
the weekly chart) is built here from the models, so a column added to the schema
shows up undescribed rather than silently wrong. Datasette and its chart plugin are
the optional extra `serve`; nothing here imports them until a server starts.
"""

from __future__ import annotations

import difflib
import types
from pathlib import Path
from typing import Any

from archive.models import TABLES, UTCDateTime
from archive.search import FTS_TABLE

TIME_NOTE = "UTC; ISO-8601 text with milliseconds, e.g. 2026-05-22T07:56:11.000Z."

TABLE_DESCRIPTIONS = {
    "documents": "One row per announcement or post and language; its text is in versions.",
    "versions": "Every state of a document's content; a new row only when what a reader "
    "sees changes (title, body, category, tags, author, publication time).",
    "links": "Links found in a version; target_* name the archived document they point at.",
    "snapshots": "Raw responses, stored once per sha256, zstd-compressed (zlib before 2026-12-02).",
    "crawl_runs": "One row per spider run, with its counters.",
    "quarantine": "Pages that failed to parse, with the error; their raw bytes are in snapshots.",
    "alerts": "Alerts sent (`--notify`): one row per document version and destination, so a "
    "restart never sends one twice.",
    "current_documents": "Each document with its current version: the table to browse and "
    "search. The search box finds documents containing every word (substrings of 3 "
    "characters or more, any language) in title or body; add _searchmode=raw to the URL "
    'for FTS5 syntax (OR, NOT, "phrases"). Every time is UTC and sorts as text.',
}

COLUMN_DESCRIPTIONS: dict[str, dict[str, str]] = {
    "documents": {
        "source": "The exchange: gate, binance, upbit, ... (`annals crawl --list`).",
        "kind": "announcement or post.",
        "external_id": "The exchange's own id of the item.",
        "language": "Language of this document (each language is its own document).",
        "url": "Canonical URL of the page.",
        "published_at": "The exchange's own publication time.",
        "first_seen_at": "When annals first saw the document; minus published_at, the "
        "detection lag.",
        "last_seen_at": "When annals last saw the document.",
        "current_version": "versions.version that is current (it can point back after a revert).",
        "removed_at": "When the page started answering 404/410; empty while it exists.",
    },
    "versions": {
        "document_id": "documents.id",
        "version": "1, 2, ... per document, in the order first seen.",
        "content_hash": "sha256 of what a reader sees, after normalization.",
        "title": "Title, normalized.",
        "body_text": "Body as plain text, normalized (NFC, whitespace).",
        "body_html": "Body HTML as the source gave it.",
        "category": "The source's own category name.",
        "event_type": "listing, delisting, maintenance, promotion, product, news or other.",
        "tags": "JSON array of the source's tags.",
        "symbols": "JSON array of tickers found in tags, title and body.",
        "author": "Author (posts).",
        "published_at": "Publication time as this version stated it.",
        "updated_at": "Update time, when the source gives one.",
        "extra": "JSON: source-specific fields, counters (views, likes), reverted_at; "
        "pushed (the push channel the version came from) and completes_push (the article "
        "page completing a pushed version: not an edit).",
        "seen_at": "When this version was first seen (its fetch time).",
        "crawl_run_id": "crawl_runs.id of the run that archived it.",
        "snapshot_id": "snapshots.id of the raw response it came from.",
    },
    "links": {
        "version_id": "versions.id of the version that contains the link.",
        "url": "The link as found.",
        "target_source": "Source of the archived document it points at, if known.",
        "target_kind": "Kind of that document.",
        "target_external_id": "External id of that document.",
    },
    "snapshots": {
        "url": "URL fetched.",
        "fetched_at": "When it was fetched.",
        "status": "HTTP status.",
        "content_type": "Content-Type header.",
        "sha256": "sha256 of the raw bytes.",
        "body": "The raw bytes: a zstd frame, or a zlib stream in older snapshots.",
    },
    "crawl_runs": {
        "spider": "Spider name.",
        "started_at": "When the run started.",
        "finished_at": "When it finished; empty while running or after a crash.",
        "status": "running, finished, partial, blocked, failed or interrupted.",
        "counters": "JSON: requests, pages, new_documents, new_versions, unchanged, ...",
    },
    "quarantine": {
        "url": "URL that failed to parse.",
        "spider": "Spider that fetched it.",
        "error": "Why it failed.",
        "snapshot_id": "snapshots.id of its raw bytes.",
        "seen_at": "When it was fetched.",
        "resolved_at": "When `annals reparse` archived it; empty while unresolved.",
    },
    "alerts": {
        "document_id": "documents.id",
        "version": "versions.version alerted (1: a new document; more: an edit).",
        "target": "sha256 of the destination's Apprise URL (which holds its tokens).",
        "target_url": "The destination's URL, its secrets masked.",
        "status": "pending, sent or failed.",
        "attempts": "Delivery attempts made.",
        "error": "Why the last attempt failed; empty once sent.",
        "crawl_run_id": "crawl_runs.id of the run that sent it.",
        "created_at": "When the alert was claimed for sending.",
        "sent_at": "When it was delivered; empty until then.",
    },
}

# The view's columns come from documents and versions.
_VIEW_TIMES = ("published_at", "first_seen_at", "last_seen_at", "removed_at")
VIEW_COLUMNS = {
    "id": "documents.id (the full-text index's rowid).",
    "ref": "SOURCE:KIND:EXTERNAL_ID:LANG, what `annals history` and `annals diff` take.",
    "version": "The current version's number.",
    **{c: COLUMN_DESCRIPTIONS["documents"][c] for c in ("source", "kind", "language", "url")},
    **{
        c: COLUMN_DESCRIPTIONS["versions"][c]
        for c in ("event_type", "category", "title", "body_text", "symbols", "tags", "author")
    },
    **{c: COLUMN_DESCRIPTIONS["documents"][c] for c in _VIEW_TIMES},
}

FACETS = ["source", "kind", "event_type", "category"]

_CURRENT = "JOIN versions v ON v.document_id = d.id AND v.version = d.current_version"
_REF = "d.source || ':' || d.kind || ':' || d.external_id || ':' || d.language AS ref"
_WEEK = "date(d.published_at, 'weekday 0', '-6 days')"  # the Monday that starts its week

CANNED_QUERIES: dict[str, dict[str, Any]] = {
    "search": {
        "title": "Search, ranked",
        "description": "Full-text search over current versions, best first (bm25, a title "
        'match weighs ten times a body match). FTS5 syntax: words, "phrases", AND, OR, '
        "NOT, title:word. Terms need 3 characters or more.",
        "sql": f"SELECT {_REF}, d.published_at, v.event_type, v.title,"
        f" snippet({FTS_TABLE}, -1, '«', '»', '…', 48) AS snippet, d.url"
        f" FROM {FTS_TABLE} f JOIN documents d ON d.id = f.rowid {_CURRENT}"
        f" WHERE {FTS_TABLE} MATCH :q ORDER BY f.rank LIMIT 100",
    },
    "latest_listings": {
        "title": "Latest listings across exchanges",
        "description": "The 200 most recent announcements classified as listings, every "
        "exchange side by side. Times UTC.",
        "sql": f"SELECT d.published_at, d.source, v.title, v.symbols, {_REF}, d.url"
        f" FROM documents d {_CURRENT}"
        " WHERE v.event_type = 'listing' AND d.kind = 'announcement'"
        " ORDER BY d.published_at DESC LIMIT 200",
    },
    "delistings": {
        "title": "Delistings in a date range",
        "description": "Delisting announcements published in [since, until): ISO dates in "
        "UTC, e.g. 2026-01-01. Leave until empty for 'up to now'.",
        "sql": f"SELECT d.published_at, d.source, v.title, v.symbols, {_REF}, d.url"
        f" FROM documents d {_CURRENT}"
        " WHERE v.event_type = 'delisting' AND d.published_at >= :since"
        " AND (:until = '' OR d.published_at < :until)"
        " ORDER BY d.published_at",
    },
    "edited_after_publication": {
        "title": "Documents edited after publication",
        "description": "Every edit seen (a version after the first, but not one that "
        "completes a pushed announcement from its article page), newest first, with "
        "the size of its diff against the version before: lines added plus removed (as "
        "in `annals diff`) and the change in characters. hours_after_publication is from "
        "published_at to when the edit was seen.",
        "sql": "SELECT ref, title, published_at, edit_seen_at, version,"
        " round((julianday(edit_seen_at) - julianday(published_at)) * 24, 1)"
        " AS hours_after_publication,"
        " annals_changed_lines(old_text, new_text) AS lines_changed,"
        " length(new_text) - length(old_text) AS chars_delta, url"
        f" FROM (SELECT {_REF}, v.title, d.published_at, v.seen_at AS edit_seen_at,"
        " v.version, d.url,"
        " coalesce(p.title, '') || char(10) || char(10) || coalesce(p.body_text, '')"
        " AS old_text,"
        " coalesce(v.title, '') || char(10) || char(10) || coalesce(v.body_text, '')"
        " AS new_text"
        " FROM versions v JOIN documents d ON d.id = v.document_id"
        " JOIN versions p ON p.document_id = v.document_id AND p.version = v.version - 1"
        # A version completing a pushed record from its article page is no edit.
        " WHERE v.version > 1 AND json_extract(v.extra, '$.completes_push') IS NULL"
        " ORDER BY v.seen_at DESC LIMIT 500)",
    },
    "detection_lag": {
        "title": "Detection lag per exchange",
        "description": "first_seen_at minus published_at, in minutes, per source and kind: "
        "how long after publication annals first saw a document. Documents first seen "
        "more than :max_days days late (backfills) are left out.",
        "sql": "WITH lag AS (SELECT d.source, d.kind,"
        " (julianday(d.first_seen_at) - julianday(d.published_at)) * 1440 AS minutes"
        " FROM documents d WHERE d.published_at IS NOT NULL"
        " AND julianday(d.first_seen_at) - julianday(d.published_at)"
        " <= CAST(coalesce(nullif(:max_days, ''), '7') AS REAL)),"
        " ranked AS (SELECT *, row_number() OVER (PARTITION BY source, kind ORDER BY minutes)"
        " AS n, count(*) OVER (PARTITION BY source, kind) AS total FROM lag)"
        " SELECT source, kind, total AS documents,"
        " round(min(minutes), 1) AS min_minutes,"
        " round(max(CASE WHEN n <= (total + 1) / 2 THEN minutes END), 1) AS median_minutes,"
        " round(max(CASE WHEN n <= (total * 9 + 9) / 10 THEN minutes END), 1) AS p90_minutes,"
        " round(max(minutes), 1) AS max_minutes"
        " FROM ranked GROUP BY source, kind ORDER BY source, kind",
    },
    "citing": {
        "title": "Everything citing an announcement",
        "description": "Documents whose versions link to the document :ref "
        "(SOURCE:KIND:EXTERNAL_ID, a language suffix is ignored), e.g. "
        "gate:announcement:51322. in_current_version says whether the link is still there.",
        "sql": "WITH r AS (SELECT :ref || ':' AS s),"
        " a AS (SELECT substr(s, 1, instr(s, ':') - 1) AS src,"
        " substr(s, instr(s, ':') + 1) AS rest FROM r),"
        " b AS (SELECT src, substr(rest, 1, instr(rest, ':') - 1) AS knd,"
        " substr(rest, instr(rest, ':') + 1) AS rest FROM a),"
        " t AS (SELECT src, knd, substr(rest, 1, instr(rest, ':') - 1) AS eid FROM b)"
        f" SELECT {_REF}, d.published_at, v.title, max(v.version = d.current_version)"
        " AS in_current_version, l.url AS link, d.url"
        " FROM t JOIN links l ON l.target_source = t.src AND l.target_kind = t.knd"
        " AND l.target_external_id = t.eid"
        " JOIN versions v ON v.id = l.version_id JOIN documents d ON d.id = v.document_id"
        " GROUP BY d.id ORDER BY d.published_at",
    },
    "announcements_per_week": {
        "title": "Announcements per exchange per week",
        "description": "The data of the weekly chart (Dashboards menu): announcements by "
        "publication week (starting Monday, UTC) and source.",
        "sql": f"SELECT {_WEEK} AS week, d.source, count(*) AS announcements"
        " FROM documents d WHERE d.kind = 'announcement' AND d.published_at IS NOT NULL"
        " GROUP BY week, d.source ORDER BY week, d.source",
    },
}


def _columns(table: str) -> dict[str, str]:
    """Descriptions of a table's columns, with the time zone and format of every time."""
    described = dict(COLUMN_DESCRIPTIONS.get(table, {}))
    for column in TABLES[table].columns:
        if isinstance(column.type, UTCDateTime):
            described[column.name] = f"{described.get(column.name, '')} {TIME_NOTE}".strip()
    return described


def dashboard(database: str) -> dict[str, Any]:
    """datasette-dashboards configuration: the weekly chart, with a date range filter."""
    return {
        "annals": {
            "title": "annals: announcements per exchange per week",
            "description": "Announcements by publication week (Monday start, UTC), per source.",
            "filters": {
                "since": {"name": "Published since (UTC)", "type": "date"},
                "until": {"name": "Published before (UTC)", "type": "date"},
            },
            "layout": [["per-week"]],
            "charts": {
                "per-week": {
                    "title": "Announcements per exchange per week",
                    "db": database,
                    "query": f"SELECT {_WEEK} AS week, d.source, count(*) AS announcements"
                    " FROM documents d WHERE d.kind = 'announcement'"
                    " AND d.published_at IS NOT NULL"
                    " [[ AND d.published_at >= :since ]] [[ AND d.published_at < :until ]]"
                    " GROUP BY week, d.source ORDER BY week, d.source",
                    "library": "vega-lite",
                    "display": {
                        "mark": {"type": "line", "point": True, "tooltip": True},
                        "encoding": {
                            "x": {"field": "week", "type": "temporal", "title": "week (UTC)"},
                            "y": {
                                "field": "announcements",
                                "type": "quantitative",
                                "title": "announcements",
                            },
                            "color": {"field": "source", "type": "nominal"},
                        },
                    },
                }
            },
        }
    }


def metadata(database: str) -> dict[str, Any]:
    """Datasette metadata for an archive served as `database`."""
    tables: dict[str, dict[str, Any]] = {
        name: {"description": TABLE_DESCRIPTIONS[name], "columns": _columns(name)}
        for name in TABLES
    }
    tables["documents"].update(facets=["source", "kind", "language"], sort_desc="published_at")
    tables["versions"].update(facets=["event_type", "category"], sort_desc="seen_at")
    tables["crawl_runs"].update(facets=["spider", "status"], sort_desc="started_at")
    tables["quarantine"].update(facets=["spider"], sort_desc="seen_at")
    tables["current_documents"] = {
        "description": TABLE_DESCRIPTIONS["current_documents"],
        "columns": {
            name: f"{text} {TIME_NOTE}" if name in _VIEW_TIMES else text
            for name, text in VIEW_COLUMNS.items()
        },
        "facets": FACETS,
        "sort_desc": "published_at",
        "fts_table": FTS_TABLE,
        "fts_pk": "id",
        "label_column": "title",
    }
    tables[FTS_TABLE] = {"hidden": True}
    return {
        "title": "annals",
        "description": "Announcements and posts of crypto exchanges, every edit kept as a "
        "version. Every time is UTC. Start with current_documents (search box, facets) or "
        "the canned queries below; the weekly chart is under Dashboards.",
        "source": "annals",
        "databases": {
            database: {
                "description": "The archive, opened read-only.",
                "tables": tables,
                "queries": CANNED_QUERIES,
            }
        },
        "plugins": {"datasette-dashboards": dashboard(database)},
    }


SETTINGS = {
    "truncate_cells_html": 300,  # bodies are long: table pages show their start
    "sql_time_limit_ms": 3000,
    "facet_time_limit_ms": 500,
}


def changed_lines(old: str | None, new: str | None) -> int:
    """Lines added plus lines removed between two texts, as `annals diff` shows them."""
    diff = difflib.unified_diff((old or "").split("\n"), (new or "").split("\n"), n=0)
    return sum(1 for line in diff if line[:1] in "+-" and not line.startswith(("+++", "---")))


class ServeUnavailable(Exception):  # noqa: N818 - reads as what happened
    """Datasette (the `serve` extra) is not installed."""


def datasette_app(path: Path, *, immutable: bool = False) -> Any:
    """A Datasette instance on the archive file at `path`, read-only: opened with
    SQLite's mode=ro (or immutable=1 for a copy nobody writes to any more)."""
    try:
        from datasette import hookimpl
        from datasette.app import Datasette
        from datasette.plugins import pm
    except ImportError as exc:
        raise ServeUnavailable("annals serve needs Datasette: pip install 'annals[serve]'") from exc

    def prepare_connection(conn: Any) -> None:
        conn.create_function("annals_changed_lines", 2, changed_lines, deterministic=True)

    if pm.get_plugin("annals") is None:
        # Datasette lists plugins by module: the SQL functions the canned queries use.
        plugin = types.ModuleType("annals.serve.functions")
        plugin.prepare_connection = hookimpl(prepare_connection)  # type: ignore[attr-defined]
        pm.register(plugin, name="annals")
    name = path.stem
    files = [] if immutable else [str(path)]
    immutables = [str(path)] if immutable else []
    return Datasette(files, immutables=immutables, metadata=metadata(name), settings=SETTINGS)


def run(datasette: Any, host: str, port: int) -> None:
    """Serve a `datasette_app` until interrupted, as `datasette serve` does."""
    import asyncio

    import uvicorn

    asyncio.run(datasette.invoke_startup())
    uvicorn.run(datasette.app(), host=host, port=port, log_level="info", lifespan="on")
