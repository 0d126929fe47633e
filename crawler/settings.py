"""Scrapy settings for annals: politeness, limits and the archive pipeline."""

BOT_NAME = "annals"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"
