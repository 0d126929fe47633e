"""Deepcoin's help center on its saved mirror: the first article exactly, and the sample's
traps (crawler.sources.zendesk's behaviour on both help centers: tests/test_parse_zendesk.py)."""

from __future__ import annotations

import pytest

from archive.normalize import format_time
from crawler.sources import deepcoin
from tests.helpers import FIXTURES, mirror_file

MIRROR = FIXTURES / "deepcoin"


def page(number: int):
    url = deepcoin.SOURCE.list_url(number)
    file = mirror_file(MIRROR, url)
    assert file == f"articles_p{number}.json"
    records = deepcoin.SOURCE.parse_list((MIRROR / file).read_bytes(), url).records
    return {r.external_id: r for r in records}


def test_first_article_fields():
    first = next(iter(page(1).values()))
    assert (first.source, first.kind, first.language) == ("deepcoin", "announcement", "en")
    assert first.external_id == "59511051605370"
    assert first.title == "Deepcoin Will List KSTRUSDT Perpetual Contract"
    assert first.url == (
        "https://deepcoin.zendesk.com/hc/en-001/articles/"
        "59511051605370-Deepcoin-Will-List-KSTRUSDT-Perpetual-Contract"
    )
    # The body says 18:00 (UTC+8); the publication is created_at, UTC.
    assert "at 18:00 (UTC+8) on June 24, 2026" in first.body_text
    assert format_time(first.published_at) == "2026-06-24T09:00:27.000Z"
    assert first.tags == []
    assert first.extra == {"section_id": "360008197332", "author_id": "1503992018862",
                           "locale": "en-001"}  # fmt: skip
    # The italic risk warning is part of the article as a reader sees it.
    assert first.body_html.endswith("<p><em>Risk warning: trading perpetual contracts "
                                    "involves high risk. Please trade responsibly.</em></p>")  # fmt: skip


def test_entities_and_the_second_page():
    second = page(2)
    draw = second["58786426092955"]
    assert draw.title == "Deepcoin Lucky Draw: Trade Perpetuals & Win Up to 1,000 USDT"
    assert "&nbsp;" not in draw.body_html
    assert len(second) == 10


def test_the_locale_is_en_001_and_there_is_no_other():
    assert "/api/v2/help_center/en-001/" in deepcoin.SOURCE.list_url(1)
    with pytest.raises(ValueError, match="deepcoin has no 'zh' announcements"):
        deepcoin.SOURCE.list_url(1, language="zh")
