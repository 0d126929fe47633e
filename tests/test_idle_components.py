"""Scrapy's components that do nothing annals needs with its settings (crawler.extensions.IDLE)
are left out of a crawl, and kept as soon as one of their settings is set."""

from __future__ import annotations

import pytest
from scrapy.core.spidermw import SpiderMiddlewareManager
from scrapy.spidermiddlewares.depth import DepthMiddleware

from crawler.extensions import IDLE
from tests.helpers import annals_crawler


def spider_middlewares(**settings: object) -> list[object]:
    return SpiderMiddlewareManager.from_crawler(annals_crawler(**settings)).middlewares


def test_idle_components_are_left_out_and_nothing_else():
    names = [type(mw).__qualname__ for mw in spider_middlewares()]
    assert "DepthMiddleware" not in names
    assert {"HttpErrorMiddleware", "RefererMiddleware", "UrlLengthMiddleware"} <= set(names)
    crawler = annals_crawler()
    for components_setting, path in IDLE.values():
        assert path not in crawler.settings.getwithbase(components_setting)


@pytest.mark.parametrize(
    "setting", [{"DEPTH_LIMIT": 3}, {"DEPTH_PRIORITY": -1}, {"DEPTH_STATS_VERBOSE": True}]
)
def test_a_depth_setting_keeps_the_depth_middleware_as_set(setting):
    (depth,) = [mw for mw in spider_middlewares(**setting) if isinstance(mw, DepthMiddleware)]
    assert depth.maxdepth == setting.get("DEPTH_LIMIT", 0)
    assert depth.prio == setting.get("DEPTH_PRIORITY", 0)
    assert depth.verbose_stats == setting.get("DEPTH_STATS_VERBOSE", False)
