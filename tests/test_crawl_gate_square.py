"""End to end: Gate Square's feed, topics and posts crawled from a local mirror."""

from __future__ import annotations

import json
import re

import pytest

from archive.cli import Exit
from crawler.cli import DEMO_SPIDERS
from crawler.mirror import Route
from tests.helpers import FIXTURES, annals, crawl
from tests.test_crawl_gate import query

pytestmark = pytest.mark.e2e

SEED = "21716532"


def test_feed_crawl_archives_the_seed_post_with_body_tags_and_link(tmp_path, gate_mirror):
    mirror, url = gate_mirror
    db = tmp_path / "annals.db"
    result = crawl(db, url, "gate_square")
    assert result.returncode == Exit.OK, result.stderr
    body, tags, author, published, extra = query(
        db,
        "SELECT v.body_text, v.tags, v.author, v.published_at, v.extra FROM versions v "
        f"JOIN documents d ON d.id = v.document_id WHERE d.external_id = '{SEED}'",
    )[0]
    assert body.startswith("#Gate广场四月发帖挑战 🧠")
    assert body.split("\n\n")[1].startswith(
        "#MetaReleasesMuseSpark | AI Creativity Just Entered a New Era"
    )
    assert "Structure, originality, and human insight will always define true value." in body
    for chrome in (
        "Access hundreds of perpetual contracts",
        "Launchpool",
        "View Original",
        "Disclaimer",
    ):
        assert chrome not in body
    assert {"Gate广场四月发帖挑战", "MetaReleasesMuseSpark", "CreatorCarvinal"} <= set(
        json.loads(tags)
    )
    assert author
    assert published == "2026-04-09T13:52:07.000Z"
    assert json.loads(extra)["views"] == 4812
    links = query(
        db,
        "SELECT l.target_source, l.target_kind, l.target_external_id FROM links l "
        "JOIN versions v ON v.id = l.version_id JOIN documents d ON d.id = v.document_id "
        f"WHERE d.external_id = '{SEED}' AND l.target_external_id IS NOT NULL",
    )
    assert links == [("gate", "announcement", "50520")]
    # Posts whose page the mirror lacks come from their feed block, marked as such.
    feed_only = query(
        db,
        "SELECT count(*) FROM versions WHERE json_extract(extra, '$.from_feed') = 1",
    )[0][0]
    post_pages = sum(h.path.startswith("/post/status/") and h.status == 200 for h in mirror.hits)
    total = query(db, "SELECT count(*) FROM documents WHERE kind = 'post'")[0][0]
    assert total == post_pages + feed_only
    assert feed_only > 0


def test_counter_changes_never_create_a_version(tmp_path, gate_mirror, mirror_dir):
    _, url = gate_mirror
    db = tmp_path / "annals.db"
    assert crawl(db, url, "gate_square", "-a", f"posts={SEED}").returncode == 0
    page = mirror_dir / f"square_post_{SEED}.html"
    page.write_text(page.read_text().replace("4,812 views", "9,999 views"))
    second = crawl(db, url, "gate_square", "-a", f"posts={SEED}")
    assert second.returncode == 0, second.stderr
    rows = query(db, "SELECT version, json_extract(extra, '$.views') FROM versions")
    assert rows == [(1, 9999)]


def test_edited_post_gets_a_new_version(tmp_path, gate_mirror, mirror_dir):
    _, url = gate_mirror
    db = tmp_path / "annals.db"
    assert crawl(db, url, "gate_square", "-a", f"posts={SEED}").returncode == 0
    page = mirror_dir / f"square_post_{SEED}.html"
    html = page.read_text()
    phrase = "human insight will always define true value"
    assert phrase in html
    page.write_text(html.replace(phrase, "human insight will always define lasting value"))
    assert crawl(db, url, "gate_square", "-a", f"posts={SEED}").returncode == 0
    assert query(db, "SELECT count(*), max(version) FROM versions") == [(2, 2)]
    diff = annals("diff", f"gate:post:{SEED}:en", "--db", str(db))
    assert "+" in diff.stdout
    assert "lasting value" in diff.stdout


def test_posts_argument_fetches_only_those_posts(tmp_path, gate_mirror):
    mirror, url = gate_mirror
    db = tmp_path / "annals.db"
    result = crawl(db, url, "gate_square", "-a", "posts=21716980")
    assert result.returncode == 0, result.stderr
    assert not any(h.path == "/post" for h in mirror.hits)
    row = query(
        db,
        "SELECT external_id, language, symbols FROM documents d JOIN versions v ON v.document_id = d.id",
    )
    assert len(row) == 1
    assert row[0][:2] == ("21716980", "zh")
    assert {"BTC", "GT"} <= set(json.loads(row[0][2]))


def test_topics_argument_reads_topic_pages(tmp_path, gate_mirror):
    mirror, url = gate_mirror
    feed = (FIXTURES / "gate" / "square_feed.html").read_bytes()
    mirror.prepend(
        Route("GET", "/post/topic/MetaReleasesMuseSpark", content=feed,
              headers={"Content-Type": "text/html; charset=utf-8"})
    )  # fmt: skip
    db = tmp_path / "annals.db"
    result = crawl(db, url, "gate_square", "-a", "topics=MetaReleasesMuseSpark")
    assert result.returncode == 0, result.stderr
    assert any(h.path == "/post/topic/MetaReleasesMuseSpark" for h in mirror.hits)
    assert not any(h.path == "/post" for h in mirror.hits)
    blocks = len(re.findall(r'class="feed-item', feed.decode()))
    assert query(db, "SELECT count(*) FROM documents")[0][0] == blocks


def test_demo_runs_offline_and_a_second_run_adds_nothing(tmp_path):
    db = tmp_path / "demo.db"
    first = annals("demo", "--db", str(db))
    assert first.returncode == 0, first.stderr
    assert "gate_announcements: blocked" in first.stdout
    assert "gate_square: finished" in first.stdout
    for exchange in ("binance", "okx", "bybit", "bitget", "kucoin"):
        assert f"{exchange}_announcements: finished" in first.stdout
    # The sample query shows the newest announcements of every source: Gate's may be older.
    titles = query(db, "SELECT title FROM versions")
    assert ("Gate Will List Velora (VLR) for Spot Trading",) in titles
    second = annals("demo", "--db", str(db))
    assert second.returncode == 0
    assert second.stdout.count("0 new versions") == sum(map(len, DEMO_SPIDERS.values()))
