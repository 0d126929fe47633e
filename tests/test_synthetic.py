"""The generated Gate mirrors the benchmarks and crash tests crawl."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from crawler.sources import gate
from crawler.synthetic import FIRST_ID, TEMPLATES, generate_recorded

FETCHED = datetime(2026, 12, 1, tzinfo=UTC)


def test_recorded_mirror_serves_the_recorded_articles_under_new_ids():
    routes, paths = generate_recorded(12)
    pages = {r.path: r.content for r in routes if r.path.startswith("/announcements/article/")}
    assert len(pages) == 12
    assert [p for p in paths if "/article/" in p] == list(pages)
    recorded = {
        path.stem.removeprefix("article_"): gate.parse_article(
            path.read_bytes(), gate.canonical_article_url(path.stem.removeprefix("article_")),
            fetched_at=FETCHED,
        )
        for path in sorted(TEMPLATES.glob("article_*.html"))
    }  # fmt: skip
    originals = list(recorded.values())
    for k, (path, body) in enumerate(pages.items()):
        record = gate.parse_article(body, "https://www.gate.com" + path, fetched_at=FETCHED)
        original = originals[k % len(originals)]
        assert record.external_id == str(FIRST_ID + k)
        assert (record.title, record.body_text) == (original.title, original.body_text)
        assert str(original.external_id) not in body.decode()


def test_recorded_mirror_lists_every_article_once_newest_id_first():
    routes, _ = generate_recorded(40)
    answers = [json.loads(r.content) for r in routes if r.path == gate.SOURCE.list_path]
    listed = [item["id"] for answer in answers for item in answer["data"]["list"]]
    assert listed == [FIRST_ID + k for k in range(40)]
    assert answers[-1]["data"]["list"] == []  # the page past the end
