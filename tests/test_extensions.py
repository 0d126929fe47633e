"""The crawl's stats collector (crawler.extensions.Stats)."""

from __future__ import annotations

import pytest
from scrapy.exceptions import ScrapyDeprecationWarning
from scrapy.statscollectors import MemoryStatsCollector

from crawler.extensions import Stats
from tests.helpers import annals_crawler


def test_a_crawl_keeps_its_stats_in_annals_collector():
    crawler = annals_crawler()
    stats = crawler.stats
    assert isinstance(stats, Stats)
    assert isinstance(stats, MemoryStatsCollector)
    stats.inc_value("annals/new_documents")
    stats.inc_value("annals/new_documents", 2)
    stats.max_value("annals/backoff/longest_pause", 5.0)
    stats.max_value("annals/backoff/longest_pause", 2.0)
    stats.min_value("low", 3)
    stats.min_value("low", 1)
    stats.set_value("annals/archive_error", "OSError: full")
    assert stats.get_value("annals/new_documents") == 3
    assert stats.get_value("missing", 0) == 0
    assert stats.get_stats() == {
        "annals/new_documents": 3,
        "annals/backoff/longest_pause": 5.0,
        "low": 1,
        "annals/archive_error": "OSError: full",
    }


@pytest.mark.parametrize(
    "call",
    [
        lambda stats: stats.inc_value("scheduler/enqueued/redis", spider=object()),
        lambda stats: stats.get_value("x", None, object()),
        lambda stats: stats.close_spider(None, "finished"),
    ],
)
def test_a_spider_argument_is_still_warned_about(call):
    stats = Stats(annals_crawler())
    with pytest.warns(ScrapyDeprecationWarning, match="'spider' argument to StatsCollector"):
        call(stats)
