"""End to end: Binance, OKX, Bybit, Bitget and KuCoin crawled from one local mirror.

One server on 127.0.0.1 serves private copies of the five recorded mirrors; `annals
crawl` runs the real spiders (several per process, to keep the file quick) into a real
SQLite file. What a mirror holds is read from its JSON files here, not from the parsers.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from scrapy.settings import Settings

from archive.cli import Exit
from archive.normalize import format_time, utcnow
from crawler.cli import DEMO_SPIDERS, MIRRORS
from crawler.mirror import Mirror, MirrorServer, Route
from crawler.spiders import api
from tests.helpers import FAST, FIXTURES, annals, crawl
from tests.test_crawl_gate import query

pytestmark = pytest.mark.e2e

EXCHANGES = ("binance", "okx", "bybit", "bitget", "kucoin")
SPIDERS = tuple(f"{exchange}_announcements" for exchange in EXCHANGES)
LIST_PATHS = {
    "binance": "/bapi/composite/v1/public/cms/article/list/query",
    "okx": "/api/v5/support/announcements",
    "bybit": "/v5/announcements/index",
    "bitget": "/api/v2/public/annoucements",
    "kucoin": "/api/v3/announcements",
}
BINANCE_DETAIL = "/bapi/composite/v1/public/cms/article/detail/query"
JSON = {"Content-Type": "application/json"}
BYBIT_UID = re.compile(r"blt[0-9a-f]{16}")


# --- what the mirrors hold, from their files ------------------------------------------------


@dataclass(frozen=True)
class Item:
    title: str
    published_ms: int
    url: str


def iso_ms(ms: int | str) -> str:
    seconds, millis = divmod(int(ms), 1000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{millis:03d}Z"


def list_items(exchange: str, data: dict[str, Any]) -> Iterator[tuple[str, Item]]:
    """(external id, item) for every item of one list file, as the exchange spells it."""
    if exchange == "okx":
        for i in data["data"][0]["details"]:
            yield (
                i["url"].rstrip("/").rsplit("/", 1)[1],
                Item(i["title"], int(i["pTime"]), i["url"]),
            )
    elif exchange == "bybit":
        for i in data["result"]["list"]:
            uid = BYBIT_UID.search(i["url"])
            assert uid is not None
            yield uid.group(0), Item(i["title"], int(i["publishTime"]), i["url"])
    elif exchange == "bitget":
        for i in data["data"] or []:
            yield str(i["annId"]), Item(i["annTitle"], int(i["cTime"]), i["annUrl"])
    elif exchange == "kucoin":
        for i in data["data"]["items"]:
            yield str(i["annId"]), Item(i["annTitle"], int(i["cTime"]), i["annUrl"])
    else:
        for catalog in data["data"]["catalogs"]:
            for article in catalog["articles"]:
                yield article["code"], Item(article["title"], int(article["releaseDate"]), "")


def mirror_items(exchange: str) -> dict[str, Item]:
    """Every announcement the exchange's mirror lists, by external id; for Binance, as
    its detail answers it (the detail is what is archived)."""
    folder = FIXTURES / exchange
    items: dict[str, Item] = {}
    pattern = "list_*.json" if exchange == "binance" else "announcements_*.json"
    for path in sorted(folder.glob(pattern)):
        items.update(list_items(exchange, json.loads(path.read_text())))
    assert items, folder
    if exchange == "binance":
        for code in items:
            detail = json.loads((folder / "details" / f"{code}.json").read_text())["data"]
            url = f"https://www.binance.com/en/support/announcement/{code}"
            items[code] = Item(detail["title"], int(detail["publishDate"]), url)
    return items


def archived(db: Path, source: str) -> dict[str, tuple[str, str, str]]:
    """external id -> (title, published_at, url) of the current versions."""
    rows = query(
        db,
        "SELECT d.external_id, v.title, d.published_at, d.url FROM documents d "
        "JOIN versions v ON v.document_id = d.id AND v.version = d.current_version "
        f"WHERE d.source = '{source}' AND d.language = 'en'",
    )
    return {row[0]: row[1:] for row in rows}


def runs(db: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    """spider -> (status, counters) of its last run."""
    rows = query(db, "SELECT spider, status, counters FROM crawl_runs ORDER BY id")
    return {spider: (status, json.loads(counters)) for spider, status, counters in rows}


def list_hits(mirror: Mirror, exchange: str) -> int:
    return sum(hit.path == LIST_PATHS[exchange] for hit in mirror.hits)


# --- the mirror -----------------------------------------------------------------------------


@pytest.fixture
def api_dirs(tmp_path: Path) -> dict[str, Path]:
    """Private copies of the five recorded mirrors, free to edit between crawls."""
    dirs = {exchange: tmp_path / "mirror" / exchange for exchange in EXCHANGES}
    for exchange, target in dirs.items():
        shutil.copytree(FIXTURES / exchange, target)
    return dirs


@pytest.fixture
def api_mirror(api_dirs: dict[str, Path]) -> Iterator[tuple[Mirror, str]]:
    mirror = Mirror(*api_dirs.values())
    with MirrorServer(mirror) as server:
        yield mirror, server.url


@dataclass
class Times(Route):
    """A route that answers only its first `times` matching requests."""

    times: int = 1

    def matches(self, method: str, path: str, query: dict[str, str], body: dict[str, Any]) -> bool:
        if self.times > 0 and super().matches(method, path, query, body):
            self.times -= 1
            return True
        return False


def envelope(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


# --- first and second crawl -----------------------------------------------------------------


def test_first_crawl_archives_every_item_of_each_mirror_with_utc_ms_times(tmp_path, api_mirror):
    mirror, url = api_mirror
    db = tmp_path / "annals.db"
    result = crawl(db, url, *SPIDERS)
    assert result.returncode == Exit.OK, result.stdout + result.stderr
    for exchange in EXCHANGES:
        expected = mirror_items(exchange)
        rows = archived(db, exchange)
        assert set(rows) == set(expected), exchange
        assert rows == {
            key: (item.title, iso_ms(item.published_ms), item.url) for key, item in expected.items()
        }, exchange
        status, counters = runs(db)[f"{exchange}_announcements"]
        assert status == "finished"
        assert counters["new_documents"] == counters["new_versions"] == len(expected)
    assert query(db, "SELECT count(*) FROM documents") == query(db, "SELECT count(*) FROM versions")

    # Spot checks, written out by hand.
    spot = query(
        db,
        "SELECT d.source, d.external_id, d.published_at, d.url, v.category, v.event_type "
        "FROM documents d JOIN versions v ON v.document_id = d.id WHERE d.external_id IN "
        "('047d70df37be53bcc3496077036ca5f7', 'okx-to-list-kestrel-ai-kstr-for-spot-trading', "
        "'blt718732f7bd699da6', '12560604549035', '146873') ORDER BY d.source",
    )
    assert spot == [
        ("binance", "047d70df37be53bcc3496077036ca5f7", "2026-05-21T07:48:19.806Z",
         "https://www.binance.com/en/support/announcement/047d70df37be53bcc3496077036ca5f7",
         "New Cryptocurrency Listing", "listing"),
        ("bitget", "12560604549035", "2026-06-18T04:53:31.543Z",
         "https://www.bitget.com/en/support/articles/12560604549035", "coin_listings", "listing"),
        ("bybit", "blt718732f7bd699da6", "2026-06-20T04:00:18.413Z",
         "https://announcements.bybit.com/en-US/article/new-listing-kestrel-ai-kstr-deposit-trade-"
         "and-stake-kstr-to-share-a-300-000-usdt-prize-pool--blt718732f7bd699da6/",
         "new_crypto", "listing"),
        ("kucoin", "146873", "2026-06-18T03:19:26.000Z",
         "https://www.kucoin.com/announcement/kestrel-ai-kstr-gets-listed-on-kucoin-world-premiere"
         "?lang=en_US", "new-listings", "listing"),
        ("okx", "okx-to-list-kestrel-ai-kstr-for-spot-trading", "2026-06-20T08:15:27.799Z",
         "https://www.okx.com/help/okx-to-list-kestrel-ai-kstr-for-spot-trading",
         "announcements-new-listings", "listing"),
    ]  # fmt: skip
    okx_shown = query(
        db,
        "SELECT json_extract(v.extra, '$.business_ptime') FROM versions v JOIN documents d "
        "ON d.id = v.document_id WHERE d.external_id = 'okx-to-list-kestrel-ai-kstr-for-spot-trading'",
    )
    assert okx_shown == [("2026-06-20T08:13:00.000Z",)]

    # Binance has full bodies from the detail, the others the API's description.
    bodies = dict(
        query(
            db,
            "SELECT d.source, v.body_text FROM documents d JOIN versions v ON v.document_id = d.id "
            "WHERE d.external_id IN ('047d70df37be53bcc3496077036ca5f7', '12560604549035')",
        )
    )
    assert "LUMN/USDT, LUMN/USDC and LUMN/TRY" in bodies["binance"]
    assert "Withdrawal Opening" in bodies["binance"]  # a list item of the body
    assert bodies["bitget"] == (
        "Bitget will list Kestrel AI (KSTR) in the Innovation Zone. "
        "Trading starts 2026-06-19 10:00 (UTC)."
    )
    # One detail request per Binance article, though one is listed on two pages.
    details = [h.query["articleCode"] for h in mirror.hits if h.path == BINANCE_DETAIL]
    assert sorted(details) == sorted(mirror_items("binance"))

    # By default every source asks the largest page size its API documents, and the
    # mirror answers that size: Binance's whole sample (24 articles in its biggest
    # catalog) is one page of 50, where pages of 10 took three.
    asked = {
        exchange: {h.query.get(param) for h in mirror.hits if h.path == LIST_PATHS[exchange]}
        for exchange, param in (("binance", "pageSize"), ("kucoin", "pageSize"), ("bybit", "limit"))
    }
    assert asked == {"binance": {"50"}, "kucoin": {"50"}, "bybit": {"20"}}
    assert list_hits(mirror, "binance") == 1
    assert list_hits(mirror, "kucoin") == 1


def test_second_crawl_creates_no_version_and_reads_one_page_per_listing(tmp_path, api_mirror):
    mirror, url = api_mirror
    db = tmp_path / "annals.db"
    assert crawl(db, url, *SPIDERS).returncode == Exit.OK
    versions = query(db, "SELECT count(*) FROM versions")
    mirror.hits.clear()

    second = crawl(db, url, *SPIDERS)
    assert second.returncode == Exit.OK, second.stdout + second.stderr
    assert second.stdout.count("0 new documents, 0 new versions") == len(SPIDERS)
    assert query(db, "SELECT count(*) FROM versions") == versions
    for exchange in EXCHANGES:
        assert list_hits(mirror, exchange) == 1, exchange
    # Binance asks for a detail again only while an article is young (the recheck window).
    recheck_since = format_time(utcnow() - timedelta(days=3))
    young = query(
        db,
        "SELECT count(*) FROM documents "
        f"WHERE source = 'binance' AND published_at >= '{recheck_since}'",
    )[0][0]
    assert sum(h.path == BINANCE_DETAIL for h in mirror.hits) == young


def test_full_walks_every_page_again_without_new_versions(tmp_path, api_mirror):
    mirror, url = api_mirror
    db = tmp_path / "annals.db"
    assert crawl(db, url, *SPIDERS).returncode == Exit.OK
    first = {exchange: list_hits(mirror, exchange) for exchange in EXCHANGES}
    mirror.hits.clear()
    second = crawl(db, url, *SPIDERS, "--full")
    assert second.returncode == Exit.OK, second.stdout + second.stderr
    assert second.stdout.count("0 new documents, 0 new versions") == len(SPIDERS)
    for exchange in ("binance", "okx", "bybit", "kucoin"):
        assert list_hits(mirror, exchange) == first[exchange], exchange
    # Bitget: the window of the last item brings nothing unseen, so the walk ends there.
    assert list_hits(mirror, "bitget") == first["bitget"]
    assert sum(h.path == BINANCE_DETAIL for h in mirror.hits) == len(mirror_items("binance"))


# --- one document, however often it is listed -----------------------------------------------


def test_article_in_two_catalogs_or_two_windows_is_one_document(tmp_path, api_mirror):
    mirror, url = api_mirror
    db = tmp_path / "annals.db"
    result = crawl(db, url, "binance_announcements", "-a", "categories=48,49")
    assert result.returncode == Exit.OK, result.stdout + result.stderr
    in_48 = {
        a
        for page in (1, 2, 3)
        for a, _ in list_items("binance", _load("binance", f"list_c48_p{page}.json"))
    }
    in_49 = {a for a, _ in list_items("binance", _load("binance", "list_c49_p1.json"))}
    both = "047d70df37be53bcc3496077036ca5f7"
    assert both in in_48 & in_49
    assert set(archived(db, "binance")) == in_48 | in_49
    details = [h.query["articleCode"] for h in mirror.hits if h.path == BINANCE_DETAIL]
    assert details.count(both) == 1
    assert len(details) == len(in_48 | in_49)
    catalogs = {h.query.get("catalogId") for h in mirror.hits if h.path == LIST_PATHS["binance"]}
    assert catalogs == {"48", "49"}

    # Bitget's next window ends at the oldest time of the page, inclusive: the answer
    # starts with that item again.
    result = crawl(db, url, "bitget_announcements")
    assert result.returncode == Exit.OK, result.stdout + result.stderr
    first, again = (
        _load("bitget", "announcements_p1.json"),
        _load("bitget", "announcements_p2_incl.json"),
    )
    repeated = first["data"][-1]["annId"]
    assert again["data"][0]["annId"] == repeated
    assert any(h.query.get("endTime") == first["data"][-1]["cTime"] for h in mirror.hits)
    assert query(
        db,
        f"SELECT count(*) FROM versions v JOIN documents d ON d.id = v.document_id WHERE d.external_id = '{repeated}'",
    ) == [(1,)]
    assert set(archived(db, "bitget")) == set(mirror_items("bitget"))


def test_a_smaller_page_size_is_asked_only_when_the_crawl_says_so(tmp_path, api_mirror):
    mirror, url = api_mirror
    in_48 = {
        a
        for page in (1, 2, 3)
        for a, _ in list_items("binance", _load("binance", f"list_c48_p{page}.json"))
    }
    default, small = tmp_path / "default.db", tmp_path / "small.db"
    assert crawl(default, url, "binance_announcements", "-a", "categories=48").returncode == Exit.OK
    pages_of_50 = [h.query for h in mirror.hits if h.path == LIST_PATHS["binance"]]
    mirror.hits.clear()
    # This test pages the 24 articles of catalog 48 by 10, so it says so.
    result = crawl(small, url, "binance_announcements", "-a", "categories=48", "-a", "page_size=10")
    assert result.returncode == Exit.OK, result.stdout + result.stderr
    pages_of_10 = [h.query for h in mirror.hits if h.path == LIST_PATHS["binance"]]

    assert [(q["pageNo"], q["pageSize"]) for q in pages_of_50] == [("1", "50")]
    assert [(q["pageNo"], q["pageSize"]) for q in pages_of_10] == [
        ("1", "10"),
        ("2", "10"),
        ("3", "10"),
    ]
    assert set(archived(default, "binance")) == set(archived(small, "binance")) == in_48


def test_a_page_size_the_api_does_not_take_is_refused(tmp_path, api_mirror):
    mirror, url = api_mirror
    result = crawl(tmp_path / "annals.db", url, "binance_announcements", "-a", "page_size=30")
    assert result.returncode != Exit.OK
    assert (
        "binance takes page sizes 1, 2, 5, 10, 15, 20, 50, not 30" in result.stdout + result.stderr
    )
    assert mirror.hits == []


# --- Binance's history: every body form -----------------------------------------------------

LEGACY = "360030421472"  # 2019: a legacy digit code and an HTML body
CURRENT = "5c1e9a0b7d3f48e2a6b4c8d0e2f41a37"  # the 2026 detail answer, with riskWarning


def _version_rows(db: Path, code: str) -> list[tuple[Any, ...]]:
    return query(
        db,
        "SELECT v.version, v.body_text, v.updated_at, json_extract(v.extra, '$.share_count') "
        "FROM versions v JOIN documents d ON d.id = v.document_id "
        f"WHERE d.source = 'binance' AND d.external_id = '{code}' ORDER BY v.version",
    )


def test_binance_history_is_archived_in_every_body_form(tmp_path, api_mirror, api_dirs):
    _, url = api_mirror
    db = tmp_path / "annals.db"
    result = crawl(db, url, "binance_announcements")
    assert result.returncode == Exit.OK, result.stdout + result.stderr
    assert query(db, "SELECT count(*) FROM quarantine") == [(0,)]

    # The pre-2020 article: its HTML body is archived as text, under its digit code.
    legacy = query(
        db,
        "SELECT d.published_at, d.url, v.body_text, v.body_html FROM documents d "
        f"JOIN versions v ON v.document_id = d.id WHERE d.external_id = '{LEGACY}'",
    )
    assert len(legacy) == 1
    published, page, text, markup = legacy[0]
    assert (published, page) == (
        "2019-06-11T09:12:40.517Z",
        f"https://www.binance.com/en/support/announcement/{LEGACY}",
    )
    assert "Binance will list Quasar Ledger (QSRL) and open trading for QSRL/BTC" in text
    assert '<a href="https://www.binance.com/en/trade/QSRL_USDT">QSRL/USDT</a>' in markup
    # Its trade links are Link rows of that version.
    assert query(
        db,
        "SELECT l.url FROM links l JOIN versions v ON v.id = l.version_id "
        f"JOIN documents d ON d.id = v.document_id WHERE d.external_id = '{LEGACY}' ORDER BY l.id",
    ) == [
        ("https://www.binance.com/en/trade/QSRL_BTC",),
        ("https://www.binance.com/en/trade/QSRL_BNB",),
        ("https://www.binance.com/en/trade/QSRL_USDT",),
        ("https://quasar-ledger.example.org/",),
    ]

    # The 2026 answer: the announcement without its risk warning, which is kept in extra.
    ((version, text, updated, shares),) = _version_rows(db, CURRENT)
    assert (version, updated, shares) == (1, None, 37)
    assert "TSRG/USDT and TSRG/USDC spot trading pairs at 2026-06-20 10:00 AM (UTC)" in text
    assert "Risk Warning" not in text
    (warning,) = query(
        db,
        "SELECT json_extract(v.extra, '$.risk_warning') FROM versions v JOIN documents d "
        f"ON d.id = v.document_id WHERE d.external_id = '{CURRENT}'",
    )[0]
    assert warning.startswith("Risk Warning: Cryptocurrency trading is subject to high market risk")

    # Only the share counter changes: no version.
    detail = api_dirs["binance"] / "details" / f"{CURRENT}.json"
    answer = json.loads(detail.read_text())
    answer["data"]["shareCount"] = 412
    detail.write_text(json.dumps(answer, ensure_ascii=False))
    again = crawl(db, url, "binance_announcements", "--full")
    assert again.returncode == Exit.OK, again.stdout + again.stderr
    assert "0 new documents, 0 new versions" in again.stdout
    assert [row[0] for row in _version_rows(db, CURRENT)] == [1]

    # Binance updates the article: lastUpdateTime and the body change, one version.
    edited_at = 1781949600000  # 2026-06-20T10:00:00Z
    answer["data"]["lastUpdateTime"] = edited_at
    answer["data"]["body"] = answer["data"]["body"].replace("10:00 AM (UTC)", "12:00 PM (UTC)")
    detail.write_text(json.dumps(answer, ensure_ascii=False))
    edited = crawl(db, url, "binance_announcements", "--full")
    assert edited.returncode == Exit.OK, edited.stdout + edited.stderr
    assert "0 new documents, 1 new versions" in edited.stdout
    rows = _version_rows(db, CURRENT)
    assert [(v, updated) for v, _, updated, _ in rows] == [
        (1, None),
        (2, iso_ms(edited_at)),
    ]
    assert "spot trading pairs at 2026-06-20 12:00 PM (UTC)" in rows[1][1]


def _load(exchange: str, name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / exchange / name).read_text())


# --- edits ----------------------------------------------------------------------------------


def _retitle(path: Path, old: str, new: str) -> None:
    """Change a title wherever it is in a JSON file (a list may hold it twice)."""

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return new if node == old else node

    data = json.loads(path.read_text())
    edited = walk(data)
    assert edited != data, f"{old!r} is not in {path.name}"
    path.write_text(json.dumps(edited, ensure_ascii=False))


def test_title_changed_between_crawls_gives_exactly_one_new_version(tmp_path, api_mirror, api_dirs):
    _, url = api_mirror
    db = tmp_path / "annals.db"
    assert crawl(db, url, *SPIDERS).returncode == Exit.OK
    versions = query(db, "SELECT count(*) FROM versions")[0][0]
    first_of = {  # the newest item of each exchange's first page, and the files that show it
        "okx": ("okx-to-list-kestrel-ai-kstr-for-spot-trading", ["announcements_p1.json"]),
        "bybit": ("blt718732f7bd699da6", ["announcements_p1.json"]),
        "bitget": ("12560604549035", ["announcements_p1.json"]),
        "kucoin": ("146873", ["announcements_p1.json"]),
        "binance": ("bdde772060dea41fca715342ee381c22",
                    ["list_all_p1.json", "details/bdde772060dea41fca715342ee381c22.json"]),
    }  # fmt: skip
    for exchange, (key, files) in first_of.items():
        old = archived(db, exchange)[key][0]
        for name in files:
            _retitle(api_dirs[exchange] / name, old, f"{old} (updated)")

    second = crawl(db, url, *SPIDERS)
    assert second.returncode == Exit.OK, second.stdout + second.stderr
    assert second.stdout.count("0 new documents, 1 new versions") == len(SPIDERS)
    assert query(db, "SELECT count(*) FROM versions")[0][0] == versions + len(SPIDERS)
    for exchange, (key, _) in first_of.items():
        titles = query(
            db,
            "SELECT v.title FROM versions v JOIN documents d ON d.id = v.document_id "
            f"WHERE d.source = '{exchange}' AND d.external_id = '{key}' ORDER BY v.version",
        )
        assert len(titles) == 2, exchange
        assert titles[1][0] == f"{titles[0][0]} (updated)"


def test_an_old_item_pinned_above_bitgets_first_window_hides_none_after_it(tmp_path, api_dirs):
    """Bitget pages by time window; a pinned old announcement at the top of the newest
    window must not make the next window start before the items listed under it."""
    first = api_dirs["bitget"] / "announcements_p1.json"
    answer = json.loads(first.read_text())
    oldest = json.loads((api_dirs["bitget"] / "announcements_p4_incl.json").read_text())["data"][-1]
    answer["data"].insert(0, oldest)
    first.write_text(json.dumps(answer))
    db = tmp_path / "annals.db"
    with MirrorServer(Mirror(api_dirs["bitget"])) as server:
        result = crawl(db, server.url, "bitget_announcements")

    assert result.returncode == Exit.OK, result.stdout + result.stderr
    assert set(archived(db, "bitget")) == set(mirror_items("bitget"))


# --- failures -------------------------------------------------------------------------------

ERROR_ENVELOPES = {
    "binance": ({"code": "000002", "message": "illegal parameter", "data": None, "success": False},
                "000002", "illegal parameter"),
    "okx": ({"code": "51000", "msg": "Parameter annType error", "data": []},
            "51000", "Parameter annType error"),
    "bybit": ({"retCode": 10001, "retMsg": "params error", "result": {}, "time": 1},
              "10001", "params error"),
    "bitget": ({"code": "40034", "msg": "Parameter does not exist", "requestTime": 1, "data": None},
               "40034", "Parameter does not exist"),
    "kucoin": ({"code": "400100", "msg": "Parameter error"}, "400100", "Parameter error"),
}  # fmt: skip


def test_error_envelope_is_quarantined_never_archived_and_the_run_is_partial(tmp_path, api_mirror):
    mirror, url = api_mirror
    for exchange, (payload, _, _) in ERROR_ENVELOPES.items():
        mirror.prepend(Route("GET", LIST_PATHS[exchange], content=envelope(payload), headers=JSON))
    db = tmp_path / "annals.db"
    result = crawl(db, url, *SPIDERS)
    # "partial": the pages it could read are archived, the refused answer is in quarantine.
    assert result.returncode == Exit.FAILED
    assert query(db, "SELECT count(*) FROM documents") == [(0,)]
    quarantined = dict(query(db, "SELECT spider, error FROM quarantine"))
    for exchange, (_, code, message) in ERROR_ENVELOPES.items():
        spider = f"{exchange}_announcements"
        assert f"{spider}: partial" in result.stdout
        assert f"code {code}: {message}" in quarantined[spider]
        status, counters = runs(db)[spider]
        assert (status, counters["refused"], counters["quarantined"]) == ("partial", 1, 1)
        assert list_hits(mirror, exchange) == 1, exchange  # that listing stops
    # The refused answer is kept as a snapshot, for `annals reparse`.
    assert query(
        db, "SELECT count(*) FROM quarantine q JOIN snapshots s ON s.id = q.snapshot_id"
    ) == [(5,)]


def test_binance_catalog_answering_null_articles_is_quarantined_not_read_as_empty(
    tmp_path, api_dirs
):
    """Binance answers an empty catalog with `"articles": []`; null is a broken answer,
    and the catalog's articles must not vanish from a run that says "finished"."""
    page = api_dirs["binance"] / "list_all_p1.json"
    answer = json.loads(page.read_text())
    answer["data"]["catalogs"][0]["articles"] = None
    page.write_text(json.dumps(answer))
    db = tmp_path / "annals.db"
    with MirrorServer(Mirror(api_dirs["binance"])) as server:
        result = crawl(db, server.url, "binance_announcements")

    assert result.returncode == Exit.FAILED, result.stdout + result.stderr
    status, counters = runs(db)["binance_announcements"]
    assert (status, counters["quarantined"]) == ("partial", 1)
    (error,) = query(db, "SELECT error FROM quarantine q JOIN snapshots s ON s.id = q.snapshot_id")
    assert "a catalog's articles is not a list" in error[0]


EMPTY_ANSWERS = {  # a success envelope with nothing in it, as each exchange spells one
    "binance": {"code": "000000", "message": None, "data": {"catalogs": []}, "success": True},
    "okx": {"code": "0", "msg": "", "data": [{"details": [], "totalPage": "0"}]},
    "bybit": {"retCode": 0, "retMsg": "OK", "result": {"total": 0, "list": []}, "time": 1},
    "bitget": {"code": "00000", "msg": "success", "requestTime": 1, "data": []},
    "kucoin": {"code": "200000", "data": {"totalNum": 0, "totalPage": 0, "items": []}},
}


def test_a_first_list_page_with_nothing_on_it_is_quarantined_not_a_finished_run(
    tmp_path, api_mirror
):
    """An exchange's newest announcements are never an empty list: an empty first page is
    a broken answer (as Gate's), and a run that archived nothing must not say "finished"."""
    mirror, url = api_mirror
    for exchange, payload in EMPTY_ANSWERS.items():
        mirror.prepend(Route("GET", LIST_PATHS[exchange], content=envelope(payload), headers=JSON))
    db = tmp_path / "annals.db"
    result = crawl(db, url, *SPIDERS)

    assert result.returncode == Exit.FAILED, result.stdout + result.stderr
    assert query(db, "SELECT count(*) FROM documents") == [(0,)]
    quarantined = dict(
        query(db, "SELECT spider, error FROM quarantine q JOIN snapshots s ON s.id = q.snapshot_id")
    )
    for spider in SPIDERS:
        assert f"{spider}: partial" in result.stdout
        assert "no items on its first page" in quarantined[spider]
        assert runs(db)[spider][1]["quarantined"] == 1


def test_binance_detail_refused_or_missing_leaves_the_rest_of_the_catalog(tmp_path, api_mirror):
    mirror, url = api_mirror
    refused, missing = "047d70df37be53bcc3496077036ca5f7", "8b927817cf5b36e00df5f296e9d43931"
    payload = ERROR_ENVELOPES["binance"][0]
    mirror.prepend(
        Route("GET", BINANCE_DETAIL, query={"articleCode": refused}, content=envelope(payload),
              headers=JSON),
        Route("GET", BINANCE_DETAIL, query={"articleCode": missing}, status=404),
    )  # fmt: skip
    db = tmp_path / "annals.db"
    result = crawl(db, url, "binance_announcements")
    assert result.returncode == Exit.FAILED
    assert "binance_announcements: partial" in result.stdout
    rows = archived(db, "binance")
    assert set(rows) == set(mirror_items("binance")) - {refused}
    # A detail that is not there: what the list says is kept, marked as such.
    listed = query(
        db,
        "SELECT v.body_text, json_extract(v.extra, '$.listing_only') FROM versions v "
        f"JOIN documents d ON d.id = v.document_id WHERE d.external_id = '{missing}'",
    )
    assert listed == [("", "not_found")]
    (error,) = query(db, "SELECT error FROM quarantine")[0]
    assert "code 000002: illegal parameter" in error
    assert refused in error


def test_429_and_bybit_403_never_become_records_and_the_run_is_blocked(tmp_path, api_mirror):
    mirror, url = api_mirror
    mirror.prepend(
        Route("GET", LIST_PATHS["okx"], status=429, content=b'{"msg":"Too Many Requests","code":"50011"}', headers=JSON),
        Route("GET", LIST_PATHS["bybit"], status=403, content=b"403 Forbidden: access too frequent",
              headers={"Content-Type": "text/plain"}),
    )  # fmt: skip
    db = tmp_path / "annals.db"
    # Bybit's ban lasts 10 minutes and its spider waits that long; capped here for time.
    result = crawl(db, url, "okx_announcements", "bybit_announcements",
                   "-s", "ANNALS_MAX_RETRY_AFTER=0.2")  # fmt: skip
    assert result.returncode == Exit.BLOCKED
    assert query(db, "SELECT count(*) FROM documents") == [(0,)]
    assert query(db, "SELECT count(*) FROM quarantine") == [(0,)]
    for exchange, kind in (("okx", "rate_limited"), ("bybit", "too_frequent")):
        status, counters = runs(db)[f"{exchange}_announcements"]
        assert status == "blocked"
        assert counters["blocked"] == 1
        assert counters[f"blocked/{kind}"] == 3  # the answer and ANNALS_BLOCK_RETRIES retries
        assert list_hits(mirror, exchange) == 3


def test_rate_limit_envelope_is_retried_then_archived(tmp_path, api_mirror):
    mirror, url = api_mirror
    okx_limit = {"code": "50011", "msg": "Too Many Requests", "data": []}
    bybit_limit = {"retCode": 10006, "retMsg": "Too many visits!", "result": {}, "time": 1}
    mirror.prepend(
        Times("GET", LIST_PATHS["okx"], content=envelope(okx_limit), headers=JSON),
        Times("GET", LIST_PATHS["bybit"], content=envelope(bybit_limit), headers=JSON),
    )
    db = tmp_path / "annals.db"
    # After FAST, whose short backoff it replaces, so the wait can be measured.
    result = annals("crawl", "okx_announcements", "bybit_announcements", "--db", str(db),
                    "--base-url", url, *FAST, "-s", "ANNALS_BLOCK_BACKOFF=0.4")  # fmt: skip
    assert result.returncode == Exit.OK, result.stdout + result.stderr
    # The retry is a new try of the request, not a copy of the answer's meta: Scrapy's
    # MetaCopyDetectionMiddleware has nothing to warn of.
    assert "internal meta keys" not in result.stderr
    for exchange in ("okx", "bybit"):
        assert set(archived(db, exchange)) == set(mirror_items(exchange))
        status, counters = runs(db)[f"{exchange}_announcements"]
        assert (status, counters["blocked"], counters["blocked/rate_limit_code"]) == (
            "finished",
            0,
            1,
        )
        first_page = [
            h.at
            for h in mirror.hits
            if h.path == LIST_PATHS[exchange] and h.query.get("page") == "1"
        ]
        assert len(first_page) == 2  # the rate-limited answer, then the retry
        assert first_page[1] - first_page[0] >= 0.4 * 0.75  # after the backoff, jitter included


def test_rate_limit_envelope_that_persists_ends_the_run_blocked(tmp_path, api_mirror):
    mirror, url = api_mirror
    limit = {"code": "429000", "msg": "Too Many Requests"}
    mirror.prepend(Route("GET", LIST_PATHS["kucoin"], content=envelope(limit), headers=JSON))
    db = tmp_path / "annals.db"
    result = crawl(db, url, "kucoin_announcements", "-s", "ANNALS_BLOCK_RETRIES=1")
    assert result.returncode == Exit.BLOCKED
    assert "kucoin_announcements: blocked" in result.stdout
    assert query(db, "SELECT count(*) FROM documents") == [(0,)]
    assert query(db, "SELECT count(*) FROM quarantine") == [(0,)]
    status, counters = runs(db)["kucoin_announcements"]
    assert (status, counters["blocked"], counters["blocked/rate_limit_code"]) == ("blocked", 1, 2)
    assert list_hits(mirror, "kucoin") == 2  # the answer and one retry


def test_one_sources_failure_fails_its_own_run_only(tmp_path, api_mirror):
    """Several spiders in one process (as `annals crawl --all` runs them): an error that
    one of them logs is its run's, not every run's (Scrapy's own error count is shared)."""
    mirror, url = api_mirror
    mirror.prepend(Route("GET", LIST_PATHS["kucoin"], status=500, content=b"oops"))
    db = tmp_path / "annals.db"
    result = crawl(db, url, "okx_announcements", "kucoin_announcements",
                   "-s", "RETRY_ENABLED=False")  # fmt: skip
    assert result.returncode == Exit.FAILED, result.stdout + result.stderr
    assert runs(db)["kucoin_announcements"][0] == "failed"
    status, counters = runs(db)["okx_announcements"]
    assert (status, counters["errors"]) == ("finished", 0)
    assert set(archived(db, "okx")) == set(mirror_items("okx"))


# --- languages, arguments, politeness -------------------------------------------------------


def test_each_language_is_its_own_document(tmp_path, api_mirror):
    _, url = api_mirror
    db = tmp_path / "annals.db"
    result = crawl(db, url, "okx_announcements", "-a", "lang=en,zh")
    assert result.returncode == Exit.OK, result.stdout + result.stderr
    # The mirror answers English whatever Accept-Language says; OKX itself would not.
    counts = query(db, "SELECT language, count(*) FROM documents GROUP BY language ORDER BY 1")
    expected = len(mirror_items("okx"))
    assert counts == [("en", expected), ("zh", expected)]


def _start_requests(spider: api.ApiAnnouncementsSpider) -> list[Any]:
    async def collect() -> list[Any]:
        return [request async for request in spider.start()]

    return asyncio.run(collect())


def test_languages_map_to_each_sources_parameter_or_header():
    okx = _start_requests(api.OkxAnnouncementsSpider(lang="en,zh"))
    assert [r.headers.get("Accept-Language") for r in okx] == [b"en-US", b"zh-CN"]
    binance = _start_requests(api.BinanceAnnouncementsSpider(lang="zh"))
    assert [r.headers.get("lang") for r in binance] == [b"zh-CN"]
    bybit = _start_requests(
        api.BybitAnnouncementsSpider(lang="zh", categories="delistings,new_crypto")
    )
    assert [r.url for r in bybit] == [
        "https://api.bybit.com/v5/announcements/index?locale=zh-TW&type=delistings&page=1&limit=20",
        "https://api.bybit.com/v5/announcements/index?locale=zh-TW&type=new_crypto&page=1&limit=20",
    ]
    kucoin = _start_requests(api.KucoinAnnouncementsSpider(base_url="http://127.0.0.1:9"))
    assert kucoin[0].url.startswith("http://127.0.0.1:9/api/v3/announcements?")
    assert kucoin[0].meta["annals_url"].startswith("https://api.kucoin.com/")


def test_unknown_category_or_language_is_refused():
    with pytest.raises(ValueError, match="okx_announcements has no categories delisting"):
        api.OkxAnnouncementsSpider(categories="delisting")
    with pytest.raises(ValueError, match="bitget_announcements has no languages fr"):
        api.BitgetAnnouncementsSpider(lang="fr")


@pytest.mark.parametrize("spider", [api.OkxAnnouncementsSpider, api.BinanceAnnouncementsSpider])
def test_politeness_comes_from_the_source(spider):
    settings = Settings()
    settings.setmodule("crawler.settings", priority="project")
    spider.update_settings(settings)
    source = spider.facts
    assert settings.getfloat("DOWNLOAD_DELAY") == source.download_delay
    assert settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN") == source.concurrency
    assert settings.getfloat("DOWNLOAD_DELAY_JITTER") == 0


# --- every source at once -------------------------------------------------------------------


def test_crawl_all_runs_every_source_in_one_process(tmp_path):
    """`annals crawl --all` runs every spider `annals crawl --list` shows, in one process,
    against every bundled mirror; each run's outcome is its own."""
    folders = []
    for source in DEMO_SPIDERS:
        folders.append(tmp_path / "mirror" / source)
        shutil.copytree(FIXTURES / source, folders[-1])
    db = tmp_path / "annals.db"
    with MirrorServer(Mirror(*folders)) as server:
        result = annals("crawl", "--all", "--db", str(db), "--base-url", server.url,
                        "-s", "DOWNLOAD_DELAY=0", "-s", "AUTOTHROTTLE_ENABLED=False",
                        "-s", "ANNALS_BLOCK_BACKOFF=0.05")  # fmt: skip
    # Gate's mirror blocks two articles on purpose: the run says so with exit code 3.
    assert result.returncode == Exit.BLOCKED, result.stdout + result.stderr
    spiders = [name for names in DEMO_SPIDERS.values() for name in names]
    statuses = {spider: status for spider, (status, _) in runs(db).items()}
    assert statuses == {
        spider: "blocked" if spider == "gate_announcements" else "finished" for spider in spiders
    }
    sources = dict(query(db, "SELECT source, count(*) FROM documents GROUP BY source"))
    assert set(sources) == set(DEMO_SPIDERS)
    for exchange in EXCHANGES:
        assert sources[exchange] == len(mirror_items(exchange))


@pytest.mark.parametrize("exchange", EXCHANGES)
def test_demo_mirror_is_the_tested_fixture(exchange):
    # One copy of the recorded payloads: the demo serves what the tests check.
    assert DEMO_SPIDERS[exchange] == (f"{exchange}_announcements",)
    assert (FIXTURES / exchange).resolve() == (MIRRORS / exchange).resolve()
