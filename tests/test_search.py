"""Full-text search: the index follows the current versions through edits, reverts, crashes
and migrations; `annals search` ranks, filters, explains bad queries; on SQLite and on
PostgreSQL, with the same answers on both."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from archive import search
from archive.cli import app
from archive.db import make_engine, open_archive, resolve_url, upgrade
from archive.export import Filters
from archive.models import TABLES
from archive.store import Store
from tests.helpers import PostgresServer, RecordFactory, rows

runner = CliRunner()


def refs(engine: sa.Engine, query: str, **filters: Any) -> list[str]:
    return [hit.ref for hit in search.search(engine, query, Filters(**filters))]


def assert_index_in_step(engine: sa.Engine) -> None:
    """One index row per document, holding exactly its current version's title and body.
    (SQLite: PostgreSQL keeps its indexes on the versions themselves.)"""
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        search.check(conn)
        indexed = conn.exec_driver_sql(
            f"SELECT rowid, version, title, body FROM {search.FTS_TABLE} ORDER BY rowid"
        ).all()
        current = conn.exec_driver_sql(
            "SELECT d.id, d.current_version, v.title, v.body_text FROM documents d"
            " JOIN versions v ON v.document_id = d.id AND v.version = d.current_version"
            " ORDER BY d.id"
        ).all()
    assert indexed == current


def test_finds_a_document_by_a_word_of_its_body_in_english_and_chinese(
    store: Store, engine, make_record: RecordFactory
):
    store.write(
        [
            make_record(
                "1", title="System upgrade", body_html="<p>Deposits pause for maintenance.</p>"
            ),
            make_record(
                "1",
                language="zh",
                title="系统升级公告",
                body_html="<p>充值将暂停，进行系统维护升级。</p>",
            ),
            make_record("2", title="Gate Will List VLR", body_html="<p>Trading opens.</p>"),
        ]
    )
    assert refs(engine, "maintenance") == ["gate:announcement:1:en"]
    assert refs(engine, "维护升级") == ["gate:announcement:1:zh"]
    # Two characters: below the trigram index, found by a scan.
    assert refs(engine, "维护") == ["gate:announcement:1:zh"]
    [hit] = search.search(engine, "维护升级")
    assert "«维护升级»" in hit.snippet
    assert hit.url == "https://www.gate.com/announcements/article/1"


def test_title_match_ranks_above_body_match(store: Store, engine, make_record: RecordFactory):
    store.write(
        [
            make_record("1", title="Weekly report", body_html="<p>Velora, and Velora again.</p>"),
            make_record("2", title="Gate Will List Velora", body_html="<p>Spot trading.</p>"),
            *(
                make_record(str(n), title=f"Notice {n}", body_html="<p>Nothing here.</p>")
                for n in range(3, 9)
            ),
        ]
    )
    assert refs(engine, "velora") == ["gate:announcement:2:en", "gate:announcement:1:en"]
    first, second = search.search(engine, "velora")
    assert first.score is not None
    assert second.score is not None
    assert first.score > second.score


def test_never_returns_a_superseded_versions_text(store: Store, engine, make_record: RecordFactory):
    store.write([make_record(body_html="<p>Trading starts at 10:00 for Quokkacoin.</p>")])
    store.write([make_record(body_html="<p>Trading starts at 11:00 for Wombatcoin.</p>")])
    assert refs(engine, "quokkacoin") == []
    [hit] = search.search(engine, "trading starts")
    assert hit.version == 2
    assert "Quokkacoin" not in hit.snippet
    assert "«Trading» «starts» at 11:00" in hit.snippet


def test_index_follows_an_edit_and_a_revert(store: Store, engine, make_record: RecordFactory):
    store.write([make_record(body_html="<p>Deposits open for Alphatoken.</p>")])
    store.write([make_record(body_html="<p>Deposits open for Betatoken.</p>")])
    assert (refs(engine, "alphatoken"), refs(engine, "betatoken")) == (
        [],
        ["gate:announcement:51322:en"],
    )
    result = store.write([make_record(body_html="<p>Deposits open for Alphatoken.</p>")])
    assert result.reverted == 1
    assert (refs(engine, "alphatoken"), refs(engine, "betatoken")) == (
        ["gate:announcement:51322:en"],
        [],
    )
    assert_index_in_step(engine)


@pytest.mark.sqlite_only
def test_unchanged_recrawl_leaves_the_index_alone(store: Store, engine, make_record):
    store.write([make_record("1"), make_record("2")])
    with engine.begin() as conn:
        assert search.sync(conn, [1, 2]) == 0
    store.write([make_record("1", extra={"views": 99}), make_record("2")])
    assert_index_in_step(engine)


def test_crash_mid_batch_leaves_index_and_tables_consistent(
    store: Store, engine, make_record: RecordFactory
):
    store.write([make_record("1", title="Original title Kestrel")])
    # As in test_store: the third record cannot be stored, after the batch's document
    # and versions were written in the same transaction.
    bad = make_record("3", extra={"unstorable": object()})
    with pytest.raises(TypeError):
        store.write(
            [
                make_record("2", title="Brand new Heron"),
                make_record("1", title="Edited title Osprey"),
                bad,
            ]
        )
    assert refs(engine, "kestrel") == ["gate:announcement:1:en"]
    assert refs(engine, "osprey") == refs(engine, "heron") == []
    assert_index_in_step(engine)
    # And the next batch indexes as if nothing had happened.
    store.write([make_record("2", title="Brand new Heron")])
    assert refs(engine, "heron") == ["gate:announcement:2:en"]
    assert_index_in_step(engine)


def test_migration_0002_indexes_an_archive_filled_at_0001(tmp_path: Path):
    url = resolve_url(str(tmp_path / "old.db"))
    engine = make_engine(url)
    upgrade(engine, "0001")
    now = datetime(2026, 5, 22, 7, 56, tzinfo=UTC)
    with engine.begin() as conn:
        for doc_id, language, title, body in (
            (1, "en", "Gate Will Delist NXRA", "NXRA/USDT trading ends."),
            (2, "zh", "Gate 将下架 NXRA", "NXRA/USDT 交易对将于下周停止交易。"),
        ):
            conn.execute(
                TABLES["documents"].insert(),
                {
                    "id": doc_id,
                    "source": "gate",
                    "kind": "announcement",
                    "external_id": "51310",
                    "language": language,
                    "url": f"https://www.gate.com/{language}/announcements/article/51310",
                    "published_at": now,
                    "first_seen_at": now,
                    "last_seen_at": now,
                    "current_version": 2,
                },
            )
            for number, text in ((1, "An older text, Ptarmigan."), (2, body)):
                conn.execute(
                    TABLES["versions"].insert(),
                    {
                        "document_id": doc_id,
                        "version": number,
                        "content_hash": f"{doc_id}-{number}",
                        "title": title,
                        "body_text": text,
                        "event_type": "delisting",
                        "tags": [],
                        "symbols": ["NXRA"],
                        "extra": {},
                        "seen_at": now,
                    },
                )
    upgrade(engine)
    assert sorted(refs(engine, "NXRA/USDT")) == [
        "gate:announcement:51310:en",
        "gate:announcement:51310:zh",
    ]
    assert refs(engine, "停止交易") == ["gate:announcement:51310:zh"]
    assert refs(engine, "ptarmigan") == []
    assert_index_in_step(engine)
    engine.dispose()


@pytest.mark.sqlite_only
def test_rebuild_reindexes_rows_that_bypassed_the_store(store: Store, engine, make_record):
    store.write([make_record("1"), make_record("2", title="Gate Will List Puffin")])
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DELETE FROM {search.FTS_TABLE}")
    assert refs(engine, "puffin") == []
    assert search.rebuild(engine) == 2
    assert refs(engine, "puffin") == ["gate:announcement:2:en"]
    assert_index_in_step(engine)


@pytest.mark.parametrize(
    ("query", "match", "scan"),
    [
        ("delist USDT", '"delist" "USDT"', ()),
        ("NXRA/USDT 10:00", '"NXRA/USDT" "10:00"', ()),
        ("下架 USDT", '"USDT"', ("下架",)),
        ("上线", None, ("上线",)),
        ('"spot trading" OR futures', '"spot trading" OR futures', ()),
        ("title:delist NOT perpetual", "title:delist NOT perpetual", ()),
    ],
)
def test_plain_words_are_quoted_and_fts5_syntax_passes_through(query, match, scan):
    plan = search.plan(query)
    assert (plan.match, plan.scan) == (match, scan)


def test_short_term_inside_fts5_syntax_is_reported():
    assert search.plan("USDT OR 上线").short == ("上线",)
    assert search.plan("NEAR(delist USDT, 10)").short == ()


# --- the command ------------------------------------------------------------------------------


@pytest.fixture
def archive(database: str, db_path: Path, store: Store, make_record: RecordFactory) -> str:
    """Three documents; its --db: the SQLite file's path, or the PostgreSQL URL."""
    store.write(
        [
            make_record(
                "51310",
                title="Gate Will Delist NXRA, QUIL and 19 Other Tokens",
                body_html="<p>NXRA/USDT trading ends on 2026-05-28.</p>",
                category="Delistings",
                published_at=datetime(2026, 5, 21, 12, tzinfo=UTC),
            ),
            make_record(
                "51322",
                title="Gate Launches SPCXUSDT Perpetual Futures",
                body_html="<p>Leverage from 1x to 5x. USDT margined.</p>",
                published_at=datetime(2026, 5, 22, 7, 56, 11, tzinfo=UTC),
            ),
            make_record(
                "900",
                source="binance",
                title="Binance Will Delist NXRA",
                body_html="<p>Binance will delist NXRA/USDT.</p>",
                published_at=datetime(2025, 12, 1, tzinfo=UTC),
            ),
        ]
    )
    return str(db_path) if database.startswith("sqlite") else database


def invoke(*args: str):
    return runner.invoke(app, list(args))


@pytest.mark.parametrize("command", ["search", "serve"])
def test_command_has_help_with_an_example(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert "Example" in result.output
    assert f"annals {command}" in result.output
    assert "--db" in result.output


def test_search_prints_ranked_results_with_ref_snippet_and_url(archive: str):
    result = invoke("search", "delist USDT", "--db", archive, "--format", "jsonl")
    assert result.exit_code == 0, result.output
    hits = {h["ref"]: h for h in map(json.loads, result.stdout.splitlines())}
    assert sorted(hits) == ["binance:announcement:900:en", "gate:announcement:51310:en"]
    gate = hits["gate:announcement:51310:en"]
    assert gate["url"] == "https://www.gate.com/announcements/article/51310"
    assert gate["snippet"] == "NXRA/«USDT» trading ends on 2026-05-28."
    assert gate["published_at"] == "2026-05-21T12:00:00.000Z"
    assert gate["version"] == 1
    assert gate["score"] > 0
    # The ref is what `annals history` takes.
    history = invoke("history", gate["ref"], "--db", archive)
    assert history.exit_code == 0, history.output

    table = invoke("search", "delist USDT", "--db", archive)
    assert table.exit_code == 0
    assert "gate:announcement:51310:en" in table.stdout
    assert "Gate Will Delist NXRA" in table.stdout


def test_search_filters(archive: str):
    def found(*args: str) -> list[str]:
        result = invoke("search", *args, "--db", archive, "-f", "json")
        assert result.exit_code == 0, result.output
        return [h["ref"] for h in json.loads(result.stdout)]

    assert found("NXRA", "--source", "binance") == ["binance:announcement:900:en"]
    assert found("NXRA", "--since", "2026-01-01") == ["gate:announcement:51310:en"]
    assert sorted(found("USDT", "--event-type", "delisting")) == [
        "binance:announcement:900:en",
        "gate:announcement:51310:en",
    ]
    assert len(found("USDT", "--limit", "1")) == 1
    assert found("nothing-like-this") == []


@pytest.mark.parametrize("query", ['"delist USDT', "delist AND", "(NXRA", "title:"])
def test_bad_query_gives_a_clear_error_not_a_traceback(archive: str, query: str):
    result = invoke("search", query, "--db", archive)
    assert result.exit_code == 2
    assert "cannot search for" in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_search_on_an_archive_before_0002_names_the_upgrade(tmp_path: Path):
    path = tmp_path / "old.db"
    upgrade(make_engine(resolve_url(str(path))), "0001")
    result = invoke("search", "delist", "--db", str(path))
    assert result.exit_code == 5
    assert "annals db upgrade" in result.output


@pytest.mark.sqlite_only
def test_rows_helper_agrees_with_the_index(archive: str, engine):
    # The view Datasette searches holds one row per document with its current text.
    assert rows(engine, "SELECT count(*) FROM current_documents")[0][0] == 3
    assert_index_in_step(engine)


# --- PostgreSQL: pg_trgm, and the same answers as SQLite --------------------------------------

# Documents that exercise what search promises: English and Chinese, words shorter than
# the trigram limit, punctuation, a post without a title, an edit, a NOT that meets NULL.
SAME_ARCHIVE: list[dict[str, Any]] = [
    {
        "external_id": "51310",
        "title": "Gate Will Delist NXRA, QUIL and 19 Other Tokens",
        "body_html": "<p>NXRA/USDT trading ends on 2026-05-28. Delisting is final.</p>",
        "category": "Delistings",
    },
    {
        "external_id": "51322",
        "title": "Gate Launches SPCXUSDT Perpetual Futures",
        "body_html": "<p>Leverage from 1x to 5x. USDT margined perpetual futures.</p>",
    },
    {
        "external_id": "51323",
        "title": "Gate Will List OP in the Innovation Zone",
        "body_html": "<p>Spot trading for OP/USDT opens at 10:00 (UTC).</p>",
    },
    {
        "external_id": "51323",
        "language": "zh",
        "title": "Gate 将上线 OP",
        "body_html": "<p>OP/USDT 现货交易将于 10:00 开放。系统维护升级期间暂停充值。</p>",
    },
    {
        "external_id": "51324",
        "language": "zh",
        "title": "关于下架 QUIL 的公告",
        "body_html": "<p>尊敬的用户，QUIL/USDT 交易对将于下周下架。</p>",
    },
    {
        "external_id": "900",
        "source": "binance",
        "title": "Binance Will Delist NXRA",
        "body_html": "<p>Binance will delist NXRA/USDT, a blacklist of one.</p>",
    },
    {
        "external_id": "21716532",
        "kind": "post",
        "title": None,
        "body_text": "#Gate delist watch: perpetual futures for 100% of users",
        "tags": ["Gate"],
    },
]
SAME_QUERIES: list[tuple[str, dict[str, Any]]] = [
    ("delist", {}),
    ("delist USDT", {}),
    ("Delisting", {}),
    ("NXRA/USDT", {}),
    ("list", {}),
    ("100%", {}),
    ("维护升级", {}),
    ("下架", {}),
    ("上线 OP", {}),
    ("OP", {}),
    ("USDT", {"source": "gate"}),
    ("USDT", {"event_type": "delisting"}),
    ("USDT", {"since": datetime(2026, 5, 22, tzinfo=UTC)}),
    ('"spot trading" OR futures', {}),
    ('"10:00"', {}),
    ("title:delist NOT perpetual", {}),
    ("delist NOT perpetual", {}),
    ("(delist OR list) AND body:USDT", {}),
    ('" list "', {}),
    ("USDT OR 上线", {}),
    ("quokkacoin", {}),
]


def _fill(store: Store, make_record: RecordFactory) -> None:
    for n, given in enumerate(SAME_ARCHIVE):
        fields = dict(given)
        published = datetime(2026, 5, 20 + n % 5, 8, n, tzinfo=UTC)
        store.write([make_record(fields.pop("external_id"), published_at=published, **fields)])
    # An edit: the old words must not find it on either database.
    store.write(
        [
            make_record(
                "51322",
                title="Gate Launches SPCXUSDT Perpetual Futures",
                body_html="<p>Quokkacoin margined. Leverage from 1x to 10x.</p>",
                published_at=datetime(2026, 5, 21, 8, 1, tzinfo=UTC),
            )
        ]
    )
    store.write(
        [
            make_record(
                "51322",
                title="Gate Launches SPCXUSDT Perpetual Futures",
                body_html="<p>USDT margined. Leverage from 1x to 10x.</p>",
                published_at=datetime(2026, 5, 21, 8, 1, tzinfo=UTC),
            )
        ]
    )


@pytest.mark.postgres
def test_postgresql_gives_the_same_answers_as_sqlite(
    pg_server: PostgresServer, db_path: Path, make_record: RecordFactory
):
    engines = {
        "sqlite": open_archive(resolve_url(str(db_path)), create=True),
        "postgresql": open_archive(pg_server.archive()),
    }
    for engine in engines.values():
        _fill(Store(engine), make_record)
    for query, filters in SAME_QUERIES:
        hits = {
            name: search.search(engine, query, Filters(**filters), limit=100)
            for name, engine in engines.items()
        }
        lite, pg = ({h.ref for h in hits[name]} for name in engines)
        assert lite == pg, (query, filters)
        for hit in hits["postgresql"]:
            assert set(hit.as_dict()) == set(hits["sqlite"][0].as_dict())
            assert (hit.score is None) == (search.plan(query).match is None)
    # Somebody checks: these questions do find something.
    assert {h.ref for h in search.search(engines["postgresql"], "维护升级")} == {
        "gate:announcement:51323:zh"
    }
    assert len(search.search(engines["postgresql"], "下架")) == 1
    for engine in engines.values():
        engine.dispose()


@pytest.mark.postgres
def test_postgresql_ranks_a_title_match_first_and_cuts_a_snippet(
    pg_server: PostgresServer, make_record: RecordFactory
):
    engine = open_archive(pg_server.archive())
    Store(engine).write(
        [
            make_record("1", title="Weekly report", body_html="<p>Velora, and Velora again.</p>"),
            make_record("2", title="Gate Will List Velora", body_html="<p>Spot trading.</p>"),
            make_record(
                "3",
                title="Long notice",
                body_html="<p>" + "Nothing to see here. " * 10 + "Then VELORA opens.</p>",
            ),
        ]
    )
    first, second, third = search.search(engine, "velora")
    assert [first.ref, second.ref, third.ref] == [
        "gate:announcement:2:en",
        "gate:announcement:1:en",
        "gate:announcement:3:en",
    ]
    scores = [hit.score or 0.0 for hit in (first, second, third)]
    assert scores[0] > scores[1] > scores[2] > 0
    assert first.title_marked == "Gate Will List «Velora»"
    assert second.snippet == "«Velora», and «Velora» again."
    assert third.snippet.startswith("…")
    assert "«VELORA» opens." in third.snippet
    assert len(third.snippet) < 70
    engine.dispose()


@pytest.mark.postgres
def test_postgresql_search_reads_the_trigram_indexes(
    pg_server: PostgresServer, make_record: RecordFactory
):
    engine = open_archive(pg_server.archive())
    Store(engine).write([make_record("77", body_html="<p>The zephyrine upgrade.</p>")])
    assert rows(engine, "SELECT extname FROM pg_extension WHERE extname = 'pg_trgm'")
    indexes = {i["name"] for i in sa.inspect(engine).get_indexes("versions")}
    assert indexes >= search.TRGM_INDEXES
    assert refs(engine, "Zephyrine") == ["gate:announcement:77:en"]
    for query, filters in (
        ("zephyrine", Filters()),
        ("upgrade NOT delist", Filters()),
    ):
        select, _ = search.statement("postgresql", query, filters)
        compiled = select.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})
        sql = str(compiled).replace("%%", "%")  # run without parameters: no escapes
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            # One row is read faster without an index: make the planner take a trigram
            # index if it can (a GIN index is only ever read by a bitmap scan).
            cursor.execute("SET enable_seqscan = off")
            cursor.execute("SET enable_indexscan = off")
            cursor.execute("EXPLAIN " + sql)
            explained = "\n".join(line for (line,) in cursor.fetchall())
        finally:
            raw.close()
        assert "Bitmap Index Scan on ix_versions_body_trgm" in explained, explained
        assert "Bitmap Index Scan on ix_versions_title_trgm" in explained, explained
    engine.dispose()


@pytest.mark.postgres
def test_postgresql_refuses_fts5_syntax_it_cannot_honour(pg_server: PostgresServer):
    url = pg_server.archive()
    for query in ("NEAR(delist USDT, 10)", "delist*", "^Gate"):
        result = invoke("search", query, "--db", url)
        assert result.exit_code == 2, query
        assert "cannot search for" in result.output
        assert "PostgreSQL" in result.output


@pytest.mark.postgres
def test_migration_0003_indexes_an_archive_filled_at_0002(
    pg_server: PostgresServer, make_record: RecordFactory
):
    url = pg_server.empty()
    engine = make_engine(url)
    upgrade(engine, "0002")
    Store(engine).write([make_record("1", title="Gate Will Delist Ptarmigan")])
    result = invoke("search", "ptarmigan", "--db", url)
    assert result.exit_code == 5
    assert "annals db upgrade" in result.output
    assert upgrade(engine, "0003") == ("0002", "0003")
    assert refs(engine, "ptarmigan") == ["gate:announcement:1:en"]
    engine.dispose()


@pytest.mark.postgres
def test_a_role_that_may_not_create_pg_trgm_gets_a_message_and_keeps_its_archive(
    pg_server: PostgresServer, make_record: RecordFactory
):
    import psycopg

    url = pg_server.empty()
    database = sa.engine.make_url(url).database
    role = f"{database}_owner"
    plain = sa.engine.make_url(url).set(drivername="postgresql").render_as_string(False)
    admin = pg_server.admin
    admin.execute(f"CREATE ROLE {role} LOGIN")
    try:
        # The role may create tables in the schema, not extensions in the database.
        with psycopg.connect(plain, autocommit=True) as inside:
            inside.execute(f"GRANT USAGE, CREATE ON SCHEMA public TO {role}")
        as_role = sa.engine.make_url(url).set(username=role).render_as_string(False)
        engine = make_engine(as_role)
        upgrade(engine, "0002")
        Store(engine).write([make_record("1", title="Gate Will Delist Ptarmigan")])
        result = invoke("db", "upgrade", "--db", as_role)
        assert result.exit_code == 1
        assert "pg_trgm" in result.output
        assert f"CREATE EXTENSION pg_trgm;` in {database}" in result.output.replace("\n", " ")
        assert "Traceback" not in result.output
        assert rows(engine, "SELECT version_num FROM alembic_version") == [("0002",)]
        assert [r[0] for r in rows(engine, "SELECT title FROM versions")] == [
            "Gate Will Delist Ptarmigan"
        ]
        # What the message says to do works.
        with psycopg.connect(plain, autocommit=True) as inside:
            inside.execute("CREATE EXTENSION pg_trgm")
        assert invoke("db", "upgrade", "--db", as_role).exit_code == 0
        assert refs(engine, "ptarmigan") == ["gate:announcement:1:en"]
        engine.dispose()
    finally:
        admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        admin.execute(f"DROP ROLE IF EXISTS {role}")
