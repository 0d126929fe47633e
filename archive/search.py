"""Full-text search over the current version of every document: the FTS5 index and its queries.

The index is the SQLite FTS5 table `documents_fts`: one row per document (its rowid is
`documents.id`) holding the title and body text of the document's current version and
that version's number. The store keeps it in step by calling `sync` inside the write's
transaction, so a batch that rolls back leaves the index as it was; nothing rebuilds it
by hand. Migration 0002 creates it and indexes what an older archive already holds.

Tokenizer: trigram. Announcements come in English and Chinese; unicode61 splits only on
spaces and punctuation, so a Chinese sentence is one token and a word inside it cannot
be found. Trigram indexes every 3-character sequence, so any substring of 3 characters
or more is found in any script, at a price:
- a term shorter than 3 characters (many Chinese words: 上线, 下架) cannot use the
  index; `search` then scans the current versions for it, slower but correct;
- matching is by substring, not by word: "list" also finds "delist" and "blacklist";
- the index is several times the size of the text (bench/RESULTS.md, "search").

PostgreSQL: not supported yet. `sync` does nothing there and `search` refuses with a
message; the plan is pg_trgm (the same substring semantics) once the scale-out issue
has landed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from archive.db import ArchiveError
from archive.export import Filters
from archive.models import TABLES
from archive.normalize import format_time

documents, versions = TABLES["documents"], TABLES["versions"]

FTS_TABLE = "documents_fts"
# bm25 weights of the indexed columns (title, body): a word in the title counts ten
# times a word in the body. Stored in the index's own config (migration 0002), so
# `ORDER BY rank` in Datasette and in plain SQL ranks the same way.
RANK = "bm25(10.0, 1.0)"
MIN_TERM = 3  # the trigram tokenizer matches nothing shorter
MARK = ("«", "»")  # around each match in a snippet
SNIPPET_TOKENS = 48  # trigram tokens, about as many characters

_fts = sa.table(FTS_TABLE, sa.column("rowid"), sa.column("rank"))
_fts_name: sa.ColumnClause[Any] = sa.literal_column(FTS_TABLE)


class SearchError(ArchiveError):
    pass


class SearchQueryError(SearchError):
    """The query is not valid FTS5 query syntax; the message says what to change."""


class SearchUnavailable(SearchError):  # noqa: N818 - reads as what happened
    """This database has no full-text index (PostgreSQL, for now)."""


# --- the index --------------------------------------------------------------------------------


def sync(conn: Connection, document_ids: Iterable[int | None]) -> int:
    """Bring the index entries of these documents in line with their current version,
    on the caller's connection and transaction; returns how many were (re)indexed.

    The store calls it at the end of each batch with every document the batch touched.
    Entries already at the current version are left alone (one lookup each), so an
    unchanged re-crawl costs almost nothing; a new document, a new version and a revert
    replace the entry. Does nothing on PostgreSQL (no index there yet).
    """
    if conn.dialect.name != "sqlite":
        return 0
    ids = [i for i in dict.fromkeys(document_ids) if i is not None]
    if not ids:
        return 0
    stale = conn.exec_driver_sql(
        f"SELECT d.id, f.version IS NOT NULL FROM documents d"
        f" LEFT JOIN {FTS_TABLE} f ON f.rowid = d.id"
        f" WHERE d.id IN (SELECT value FROM json_each(?))"
        f" AND f.version IS NOT d.current_version",
        (orjson.dumps(ids).decode(),),
    ).all()
    if not stale:
        return 0
    indexed = [doc_id for doc_id, present in stale if present]
    if indexed:
        conn.exec_driver_sql(
            f"DELETE FROM {FTS_TABLE} WHERE rowid IN (SELECT value FROM json_each(?))",
            (orjson.dumps(indexed).decode(),),
        )
    conn.exec_driver_sql(
        f"INSERT INTO {FTS_TABLE} (rowid, title, body, version)"
        " SELECT d.id, v.title, v.body_text, v.version FROM documents d"
        " JOIN versions v ON v.document_id = d.id AND v.version = d.current_version"
        " WHERE d.id IN (SELECT value FROM json_each(?))",
        (orjson.dumps([doc_id for doc_id, _ in stale]).decode(),),
    )
    return len(stale)


def rebuild(engine: Engine) -> int:
    """Index every document from scratch, in one transaction; returns how many. For rows
    that did not come through the store (`annals db copy` to SQLite); the store never
    needs it. Does nothing on PostgreSQL."""
    with engine.begin() as conn:
        if conn.dialect.name != "sqlite":
            return 0
        conn.exec_driver_sql(f"DELETE FROM {FTS_TABLE}")
        ids = conn.execute(sa.select(documents.c.id)).scalars().all()
        return sync(conn, ids)


def include_name(name: str | None, type_: str, _parents: Any = None) -> bool:
    """Alembic's `include_name` hook: the index and FTS5's shadow tables behind it
    (documents_fts_data, ...) are not described by the models; comparisons of the schema
    with the models leave them out."""
    return not (type_ == "table" and name is not None and name.startswith(FTS_TABLE))


def check(conn: Connection) -> None:
    """Raise if the index and its content disagree (FTS5's own integrity check)."""
    conn.exec_driver_sql(f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}) VALUES ('integrity-check')")


# --- queries ----------------------------------------------------------------------------------

# Anything that is FTS5 query syntax rather than plain words.
_ADVANCED = re.compile(r'["()*^]|\b(?:AND|OR|NOT|NEAR)\b|\b(?:title|body)\s*:')
_OPERATORS = frozenset({"AND", "OR", "NOT", "NEAR"})
_TERMS = re.compile(r'"((?:[^"]|"")*)"|(\w+)\s*(:)?')


@dataclass(frozen=True)
class Plan:
    """How a query runs: `match` goes to the FTS index (None: no index term), each of
    `scan` must occur in the title or body (checked row by row), `short` is what the
    index cannot match, for a warning."""

    match: str | None
    scan: tuple[str, ...] = ()
    short: tuple[str, ...] = ()


def plan(query: str) -> Plan:
    """Plain words: each is a substring that must occur (AND), punctuation allowed
    (`NXRA/USDT`); a word shorter than 3 characters is looked for by a scan. Anything
    with FTS5 syntax (quotes, AND/OR/NOT/NEAR, parentheses, `title:`, `*`) goes to the
    index as written."""
    text = query.strip()
    if not text:
        raise SearchQueryError("empty search query")
    if _ADVANCED.search(text):
        short = tuple(t for t in _advanced_terms(text) if len(t) < MIN_TERM)
        return Plan(match=text, short=short)
    words = list(dict.fromkeys(text.split()))
    indexed = [w for w in words if len(w) >= MIN_TERM]
    scan = tuple(w.lower() for w in words if len(w) < MIN_TERM)
    match = " ".join('"' + w + '"' for w in indexed) or None
    return Plan(match=match, scan=scan)


def _advanced_terms(text: str) -> list[str]:
    terms = []
    for match in _TERMS.finditer(text):
        phrase, word, colon = match.groups()
        if phrase is not None:
            terms.append(phrase.replace('""', '"'))
        elif not colon and word not in _OPERATORS and not word.isdigit():
            terms.append(word)
    return terms


@dataclass(frozen=True)
class Hit:
    ref: str
    source: str
    kind: str
    external_id: str
    language: str
    version: int
    published_at: datetime | None
    event_type: str
    title: str | None
    title_marked: str  # the title with its matches in « »
    snippet: str  # a passage of the body around the best match, matches in « »
    url: str
    score: float | None  # -bm25 (higher is better); None when found by a scan

    def as_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "source": self.source,
            "kind": self.kind,
            "external_id": self.external_id,
            "language": self.language,
            "version": self.version,
            "published_at": format_time(self.published_at) if self.published_at else None,
            "event_type": self.event_type,
            "title": self.title,
            "snippet": self.snippet,
            "url": self.url,
            "score": self.score,
        }


def search(
    engine: Engine, query: str, filters: Filters | None = None, *, limit: int = 20
) -> list[Hit]:
    """The current versions that match `query`, best first (bm25, title weighted over
    body), each with a snippet whose matches are marked « ». When the query has no term
    the index can match (every word shorter than 3 characters) they come newest first."""
    how = plan(query)
    with engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            raise SearchUnavailable(
                "annals search needs SQLite's full-text index; on PostgreSQL it is not "
                "available yet. Use `annals query` with ILIKE, or search a SQLite copy "
                "of the archive."
            )
        select = _select(how, filters or Filters()).limit(limit)
        try:
            rows = conn.execute(select).all()
        except OperationalError as exc:
            raise _explain(query, exc) from None
    return [_hit(row, how) for row in rows]


def _select(how: Plan, filters: Filters) -> sa.Select[Any]:
    current = sa.and_(
        versions.c.document_id == documents.c.id, versions.c.version == documents.c.current_version
    )
    columns = [
        documents.c.source,
        documents.c.kind,
        documents.c.external_id,
        documents.c.language,
        documents.c.url,
        documents.c.published_at,
        versions.c.version,
        versions.c.event_type,
        versions.c.title,
    ]
    if how.match is not None:
        query = (
            sa.select(
                *columns,
                sa.func.highlight(_fts_name, 0, *MARK).label("title_marked"),
                sa.func.snippet(_fts_name, 1, *MARK, "…", SNIPPET_TOKENS).label("snippet"),
                _fts.c.rank,
            )
            .select_from(
                _fts.join(documents, documents.c.id == _fts.c.rowid).join(versions, current)
            )
            .where(_fts_name.op("MATCH")(how.match))
            .order_by(_fts.c.rank)
        )
    else:
        query = (
            sa.select(
                *columns,
                versions.c.title.label("title_marked"),
                versions.c.body_text.label("snippet"),
                sa.null().label("rank"),
            )
            .select_from(documents.join(versions, current))
            .order_by(documents.c.published_at.desc(), documents.c.id.desc())
        )
    for term in how.scan:
        query = query.where(
            sa.or_(
                sa.func.instr(sa.func.lower(versions.c.title), term) > 0,
                sa.func.instr(sa.func.lower(versions.c.body_text), term) > 0,
            )
        )
    return filters.apply(query)


def _hit(row: Any, how: Plan) -> Hit:
    if how.match is not None:
        snippet = _mark(row.snippet or "", how.scan)
    else:
        snippet = _scan_snippet(row.snippet, how.scan)
    return Hit(
        ref=f"{row.source}:{row.kind}:{row.external_id}:{row.language}",
        source=row.source,
        kind=row.kind,
        external_id=row.external_id,
        language=row.language,
        version=row.version,
        published_at=row.published_at,
        event_type=row.event_type,
        title=row.title,
        title_marked=_mark(row.title_marked or "", how.scan),
        snippet=snippet,
        url=row.url,
        score=None if row.rank is None else float(f"{-row.rank:.4g}"),
    )


def _scan_snippet(body: str | None, terms: tuple[str, ...], width: int = SNIPPET_TOKENS) -> str:
    """A snippet like FTS5's, for rows found by a scan: the body around its first match."""
    text = body or ""
    lowered = text.lower()
    at = min((i for i in (lowered.find(t) for t in terms) if i >= 0), default=0)
    start = max(0, at - width // 3)
    end = min(len(text), start + width)
    piece = _mark(text[start:end], terms)
    return ("…" if start else "") + piece + ("…" if end < len(text) else "")


def _mark(text: str, terms: tuple[str, ...]) -> str:
    for term in terms:
        text = re.sub(re.escape(term), lambda m: MARK[0] + m[0] + MARK[1], text, flags=re.I)
    return text


def _explain(query: str, exc: OperationalError) -> ArchiveError:
    message = str(exc.orig)
    if "fts5" in message or "unterminated string" in message or "no such column" in message:
        return SearchQueryError(
            f"cannot search for {query!r}: {message}. Plain words need no syntax; with "
            "FTS5 syntax, close every double quote, write AND, OR, NOT in capitals, and quote "
            'a word with punctuation ("NXRA/USDT") or a column-like word ("10:00").'
        )
    return SearchError(f"search failed: {message}")
