"""One module per exchange: pure parse functions and thin spiders that navigate.

`SPIDERS` names the module of every spider, so that a crawl imports only the modules of
the spiders it runs (`SpiderLoader`, the project's SPIDER_LOADER_CLASS): Scrapy's own
loader imports every module of SPIDER_MODULES first, and crawler.spiders.api every
exchange's source module with it, for a crawl of Gate alone. A test checks the table
against the spiders Scrapy's loader finds (tests/test_spider_loader.py).
"""

from __future__ import annotations

import builtins
from collections import defaultdict
from importlib import import_module
from typing import TYPE_CHECKING

from scrapy.spiderloader import SpiderLoader as _ScrapySpiderLoader
from scrapy.utils.spider import iter_spider_classes

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.settings import BaseSettings

_API = "crawler.spiders.api"
SPIDERS = {
    "binance_announcements": _API,
    "bingx_announcements": _API,
    "bitfinex_announcements": _API,
    "bitget_announcements": _API,
    "bithumb_announcements": _API,
    "bybit_announcements": _API,
    "cryptocom_announcements": _API,
    "deepcoin_announcements": _API,
    "deribit_announcements": _API,
    "gate_announcements": "crawler.spiders.gate",
    "gate_square": "crawler.spiders.gate_square",
    "htx_announcements": _API,
    "kraken_announcements": _API,
    "kucoin_announcements": _API,
    "mexc_announcements": _API,
    "okx_announcements": _API,
    "upbit_announcements": _API,
    "xt_announcements": _API,
}


class SpiderLoader(_ScrapySpiderLoader):
    """Scrapy's spider loader, which imports a spider's module when that spider is
    loaded, not every module at the start. With other SPIDER_MODULES than this package
    (a test's, a deployment's own) it is Scrapy's loader as it is; so is a search by
    request (`find_by_request`, for `scrapy fetch` and `scrapy shell`)."""

    def __init__(self, settings: BaseSettings) -> None:
        self._everything = settings.getlist("SPIDER_MODULES") != [__name__]
        if self._everything:
            super().__init__(settings)
            return
        self.spider_modules = [__name__]
        self.warn_only = settings.getbool("SPIDER_LOADER_WARN_ONLY")
        self._spiders = {}
        self._found = defaultdict(list)

    def _load_everything(self) -> None:
        if not self._everything:
            self._everything = True
            self._spiders.clear()
            self._found.clear()
            self._load_all_spiders()

    def load(self, spider_name: str) -> type[Spider]:
        if spider_name not in self._spiders and not self._everything:
            module = SPIDERS.get(spider_name)
            if module is not None:
                for spider_cls in iter_spider_classes(import_module(module)):
                    if spider_cls.name == spider_name:
                        self._spiders[spider_name] = spider_cls
            if spider_name not in self._spiders:  # not in the table: looked for as Scrapy does
                self._load_everything()
        return super().load(spider_name)  # Scrapy's KeyError for a name no module has

    def list(self) -> list[str]:
        if self._everything:
            return super().list()
        return list(SPIDERS)

    def find_by_request(self, request: Request) -> builtins.list[str]:
        self._load_everything()
        return super().find_by_request(request)
