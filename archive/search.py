"""Full-text search over the current version of every document: the indexes and their queries.

SQLite: the FTS5 table `documents_fts`, one row per document (its rowid is
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

PostgreSQL: pg_trgm, the same trigram idea, as GIN indexes on `versions.title` and
`versions.body_text` (migration 0003) that serve `ILIKE '%word%'`, the same substring
semantics. Every version is indexed and the current ones are kept by the join with
`documents`: an index cannot be filtered by a join, and a table of current text kept
in step (as on SQLite), measured on 1M versions, answered a rare word no faster (a
common one 5.9x faster) for a second copy of the text, half a gigabyte, and a second
write path (bench/RESULTS.md, "search"). PostgreSQL keeps these indexes itself, so
`sync` has nothing to do there. The FTS5 syntax is read into the same conditions
(`_parse`) and bm25 is approximated in SQL (`_pg_rank`).
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable, Iterable
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
# PostgreSQL's pg_trgm GIN indexes (migration 0003), which the models do not describe.
TRGM_INDEXES = frozenset({"ix_versions_title_trgm", "ix_versions_body_trgm"})
# For one search's transaction on PostgreSQL: a word in a tenth of 1M versions makes a
# bitmap of 100,000 rows, which at the default 4MB goes lossy, and then every row of
# its pages is checked again (a count: 4.2 s, against 1.2 s at 64MB; bench/search).
PG_WORK_MEM = "64MB"

_fts = sa.table(FTS_TABLE, sa.column("rowid"), sa.column("rank"))
_fts_name: sa.ColumnClause[Any] = sa.literal_column(FTS_TABLE)


class SearchError(ArchiveError):
    pass


class SearchQueryError(SearchError):
    """The query is not valid FTS5 query syntax, or syntax this database's search does not
    have; the message says what to change."""


# --- the index --------------------------------------------------------------------------------


def sync(conn: Connection, document_ids: Iterable[int | None]) -> int:
    """Bring the index entries of these documents in line with their current version,
    on the caller's connection and transaction; returns how many were (re)indexed.

    The store calls it at the end of each batch with every document the batch touched.
    Entries already at the current version are left alone (one lookup each), so an
    unchanged re-crawl costs almost nothing; a new document, a new version and a revert
    replace the entry. Does nothing on PostgreSQL, which keeps its indexes itself.
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
    needs it. Does nothing on PostgreSQL (see `sync`)."""
    with engine.begin() as conn:
        if conn.dialect.name != "sqlite":
            return 0
        conn.exec_driver_sql(f"DELETE FROM {FTS_TABLE}")
        ids = conn.execute(sa.select(documents.c.id)).scalars().all()
        return sync(conn, ids)


def include_name(name: str | None, type_: str, _parents: Any = None) -> bool:
    """Alembic's `include_name` hook: the indexes are not described by the models (SQLite's
    FTS5 table and its shadow tables, documents_fts_data, ...; PostgreSQL's trigram
    indexes); comparisons of the schema with the models leave them out."""
    if name is None:
        return True
    if type_ == "table":
        return not name.startswith(FTS_TABLE)
    return not (type_ == "index" and name in TRGM_INDEXES)


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
    score: float | None  # -bm25 (higher is better); None when found by a scan alone

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
    body; on PostgreSQL its approximation, `_pg_rank`), each with a snippet whose matches
    are marked « ». When the query has no term the index can match (every word shorter
    than 3 characters) they come newest first."""
    how = plan(query)
    select, marks = statement(engine.dialect.name, query, filters or Filters())
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SET LOCAL work_mem = '{PG_WORK_MEM}'")
        try:
            rows = conn.execute(select.limit(limit)).all()
        except OperationalError as exc:
            raise _explain(query, exc) from None
    fts_snippet = engine.dialect.name == "sqlite" and how.match is not None
    return [_hit(row, marks, fts_snippet) for row in rows]


def statement(dialect: str, query: str, filters: Filters) -> tuple[sa.Select[Any], tuple[str, ...]]:
    """The SELECT that `search` runs on this dialect (EXPLAIN it to see which index
    answers), and the terms that `_hit` still has to mark in titles and snippets."""
    how = plan(query)
    if dialect != "postgresql":
        return _select(how, filters), how.scan
    expr = _parse(query, how.match) if how.match is not None else None
    marks = tuple(dict.fromkeys(t.text.lower() for t in _ranked_terms(expr))) + how.scan
    return _pg_select(expr, how.scan, filters), marks


def _current() -> sa.ColumnElement[bool]:
    return sa.and_(
        versions.c.document_id == documents.c.id, versions.c.version == documents.c.current_version
    )


def _hit_columns() -> list[sa.ColumnElement[Any]]:
    return [
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


def _select(how: Plan, filters: Filters) -> sa.Select[Any]:
    """SQLite: the FTS5 index ranks and cuts the snippets; short words are scanned."""
    current, columns = _current(), _hit_columns()
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


def _hit(row: Any, marks: tuple[str, ...], fts_snippet: bool) -> Hit:
    """A row as a hit. `fts_snippet`: FTS5 cut the snippet and marked the indexed terms
    (only `marks`, the scanned ones, are left to mark); otherwise `row.snippet` is the
    whole body and the passage around the first of `marks` is cut here."""
    body = row.snippet or ""
    snippet = _mark(body, marks) if fts_snippet else _scan_snippet(body, marks)
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
        title_marked=_mark(row.title_marked or "", marks),
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
        return _syntax_error(query, message)
    return SearchError(f"search failed: {message}")


def _syntax_error(query: str, message: str) -> SearchQueryError:
    return SearchQueryError(
        f"cannot search for {query!r}: {message}. Plain words need no syntax; with "
        "FTS5 syntax, close every double quote, write AND, OR, NOT in capitals, and quote "
        'a word with punctuation ("NXRA/USDT") or a column-like word ("10:00").'
    )


# --- PostgreSQL: the FTS5 syntax as ILIKE conditions, bm25 approximated ------------------------


@dataclass(frozen=True)
class Term:
    """A phrase that must occur as a substring: in `column` (title, body), or in either."""

    text: str
    column: str | None = None


@dataclass(frozen=True)
class Node:
    """`op` over `items`: AND, OR, or NOT (the first item and none of the others)."""

    op: str
    items: tuple[Term | Node, ...]


Expr = Term | Node

_COLUMNS = {"title": versions.c.title, "body": versions.c.body_text}
_WEIGHTS = {"title": 10.0, "body": 1.0}  # as RANK
_K1, _B = 1.2, 0.75  # FTS5's bm25 constants
_TOKEN = re.compile(r'\s*(?:"((?:[^"]|"")*)"|((?:\w|[^\x00-\x7f])+)|(\S))')
_UNSUPPORTED = {"NEAR": "NEAR", "*": "a prefix (*)", "^": "a first-token match (^)", "+": "+"}


def _parse(query: str, match: str) -> Expr:
    """`match` (an FTS5 query: phrases, barewords, AND/OR/NOT binding in that order from
    NOT, parentheses, `title:`/`body:`) read as FTS5 reads it. NEAR, `*`, `^` and `+`
    are refused: the PostgreSQL search has no token positions to give them meaning."""
    return _Parser(query, match).parse()


class _Parser:
    def __init__(self, query: str, match: str) -> None:
        self.query = query
        self.tokens: list[tuple[str, str]] = []
        for m in _TOKEN.finditer(match):
            phrase, word, other = m.groups()
            if phrase is not None:
                self.tokens.append(("phrase", phrase.replace('""', '"')))
            elif word is not None:
                self.tokens.append(("word", word))
            else:
                self.tokens.append(("punct", other))
        self.at = 0

    def parse(self) -> Expr:
        expr = self._or(None)
        if self.at < len(self.tokens):
            raise self._error(f'syntax error near "{self.tokens[self.at][1]}"')
        return expr

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def _error(self, message: str) -> SearchQueryError:
        return _syntax_error(self.query, message)

    def _or(self, column: str | None) -> Expr:
        return self._chain("OR", self._and, column)

    def _and(self, column: str | None) -> Expr:
        items = [self._not(column)]
        while (token := self._peek()) not in (None, ("punct", ")"), ("word", "OR")):
            if token == ("word", "AND"):
                self.at += 1
            items.append(self._not(column))
        return items[0] if len(items) == 1 else Node("AND", tuple(items))

    def _not(self, column: str | None) -> Expr:
        return self._chain("NOT", self._primary, column)

    def _chain(
        self, operator: str, operand: Callable[[str | None], Expr], column: str | None
    ) -> Expr:
        """Operands joined by one operator word, left to right: `a OR b OR c`."""
        items = [operand(column)]
        while self._peek() == ("word", operator):
            self.at += 1
            items.append(operand(column))
        return items[0] if len(items) == 1 else Node(operator, tuple(items))

    def _primary(self, column: str | None) -> Expr:
        token = self._peek()
        if token is None:
            raise self._error("the query ends where a word was expected")
        self.at += 1
        kind, text = token
        if text in _UNSUPPORTED and kind != "phrase":
            raise SearchQueryError(
                f"cannot search for {self.query!r}: {_UNSUPPORTED[text]} is FTS5 syntax that "
                "search on PostgreSQL does not have (it has phrases, AND, OR, NOT, "
                "parentheses, title: and body:); without it, every word matches as a substring"
            )
        if token == ("punct", "("):
            expr = self._or(column)
            if self._peek() != ("punct", ")"):
                raise self._error("unclosed parenthesis")
            self.at += 1
            return expr
        if kind == "word" and text in _OPERATORS:
            raise self._error(f'syntax error near "{text}"')
        if kind == "word" and self._peek() == ("punct", ":"):
            if text not in _COLUMNS:
                raise self._error(f"no such column: {text}")
            self.at += 1
            return self._primary(text)
        if kind == "punct":
            raise self._error(
                "unterminated string" if text == '"' else f'syntax error near "{text}"'
            )
        return Term(text, column)


def _ranked_terms(expr: Expr | None) -> list[Term]:
    """The terms a match is ranked by: those it must contain (not under NOT), long enough
    for the index."""
    if expr is None:
        return []
    if isinstance(expr, Term):
        return [expr] if len(expr.text) >= MIN_TERM else []
    items = expr.items[:1] if expr.op == "NOT" else expr.items
    return [term for item in items for term in _ranked_terms(item)]


def _contains(text: str, column: str | None = None) -> sa.ColumnElement[bool]:
    """`text` occurs in the column, or in either, in any case: ILIKE, which pg_trgm's GIN
    indexes serve for 3 characters or more."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    columns = [_COLUMNS[column]] if column else list(_COLUMNS.values())
    return sa.or_(*(c.ilike(f"%{escaped}%", escape="\\") for c in columns))


def _pg_where(expr: Expr) -> sa.ColumnElement[bool]:
    if isinstance(expr, Term):
        # As in FTS5 syntax on SQLite, a term below the trigram limit matches nothing.
        return _contains(expr.text, expr.column) if len(expr.text) >= MIN_TERM else sa.false()
    first, *rest = (_pg_where(item) for item in expr.items)
    if expr.op == "OR":
        return sa.or_(first, *rest)
    if expr.op == "AND":
        return sa.and_(first, *rest)
    # NOT: a NULL title must not turn "not in the title" into "unknown".
    return sa.and_(first, *(sa.not_(sa.func.coalesce(r, sa.false())) for r in rest))


def _pg_rank(terms: list[Term]) -> sa.ColumnElement[float]:
    """FTS5's bm25, negated as its rank is (lower is better): per term, the column
    weights times the term's hits in each column, saturated against the document's
    length in trigram tokens. Two differences: no idf (every term weighs the same;
    counting each term's documents would cost a scan of its matches), so for one term
    the order is FTS5's, for several it can differ; and the average length is the
    matches', not the whole archive's (a sample of the archive costs a rare word more
    than it saves a common one: bench/RESULTS.md)."""
    texts = {name: sa.func.coalesce(col, "") for name, col in _COLUMNS.items()}
    lengths = {name: sa.func.char_length(text) for name, text in texts.items()}
    size = _size(versions.c.title, versions.c.body_text)
    relative = sa.func.coalesce(size / sa.func.nullif(sa.func.avg(size).over(), 0), 1.0)
    norm = _K1 * (1 - _B + _B * relative)
    scores = []
    for term in terms:
        needle = sa.func.lower(sa.literal(term.text))
        hits = _total(
            _WEIGHTS[name] * _occurrences(lengths[name], texts[name], needle)
            for name in texts
            if term.column in (None, name)
        )
        scores.append(hits * (_K1 + 1) / (hits + norm))
    return -_total(scores)


def _size(title: sa.ColumnElement[Any], body: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """A document's length in trigram tokens: each column's characters less two."""
    return _total(
        sa.func.greatest(sa.func.char_length(sa.func.coalesce(c, "")) - 2, 0) for c in (title, body)
    )


def _occurrences(
    length: sa.ColumnElement[Any], text: sa.ColumnElement[Any], needle: sa.ColumnElement[Any]
) -> sa.ColumnElement[Any]:
    """How often `needle` (lower case) occurs in `text`, in any case: what removing it
    takes off the length. (A lower-cased text can be longer, "İ": never below 0.)"""
    removed = length - sa.func.char_length(sa.func.replace(sa.func.lower(text), needle, ""))
    return sa.cast(sa.func.greatest(removed, 0), sa.Float) / sa.func.char_length(needle)


def _total(parts: Iterable[sa.ColumnElement[Any]]) -> sa.ColumnElement[Any]:
    return functools.reduce(operator.add, parts)


def _pg_select(expr: Expr | None, scan: tuple[str, ...], filters: Filters) -> sa.Select[Any]:
    terms = _ranked_terms(expr)
    rank: sa.ColumnElement[Any] = _pg_rank(terms) if terms else sa.null()
    query = sa.select(
        *_hit_columns(),
        versions.c.title.label("title_marked"),
        versions.c.body_text.label("snippet"),
        rank.label("rank"),
    ).select_from(documents.join(versions, _current()))
    if expr is not None:
        query = query.where(_pg_where(expr))
    for term in scan:
        query = query.where(_contains(term))
    order = [documents.c.published_at.desc().nulls_last(), documents.c.id.desc()]
    return filters.apply(query.order_by(*([sa.literal_column("rank")] if terms else []), *order))
