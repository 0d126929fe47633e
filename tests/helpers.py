"""Helpers the tests share (imported, unlike conftest's fixtures)."""

from __future__ import annotations

from typing import Any

import scrapy
from scrapy.crawler import Crawler
from scrapy.utils.test import get_crawler

import crawler.settings

# --- crawlers in the test process --------------------------------------------------------


def project_settings(**overrides: Any) -> dict[str, Any]:
    """annals' settings (crawler.settings, the names Settings.setmodule reads from it),
    with `overrides`."""
    module = crawler.settings
    return {**{name: getattr(module, name) for name in dir(module) if name.isupper()}, **overrides}


def annals_crawler(spidercls: type[scrapy.Spider] | None = None, **overrides: Any) -> Crawler:
    """A crawler as `scrapy crawl` makes one in this project, its extensions made, not
    started: Scrapy's `get_crawler` with annals' settings and `overrides`."""
    return get_crawler(spidercls, settings_dict=project_settings(**overrides))
