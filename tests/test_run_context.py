"""The run context and the host backoff are extensions made from annals' settings, and
found with `crawler.get_extension`; a crawler without those settings is refused."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from pathlib import Path

import pytest
from scrapy import Request
from scrapy.utils.test import get_crawler

import crawler.settings as defaults
from archive.db import open_archive, resolve_url
from crawler.backoff import HostBackoff, host_backoff
from crawler.context import RunContext, run_context
from crawler.middlewares import BlockMiddleware
from crawler.pipelines import ArchivePipeline
from crawler.settings import MissingSettingsError
from crawler.spiders.gate import GateAnnouncementsSpider
from tests.helpers import annals_crawler, project_settings, rows


def test_the_run_context_and_the_backoff_are_the_crawlers_extensions():
    crawler = annals_crawler(GateAnnouncementsSpider)
    context = crawler.get_extension(RunContext)
    assert isinstance(context, RunContext)
    assert run_context(crawler) is context
    backoff = crawler.get_extension(HostBackoff)
    assert isinstance(backoff, HostBackoff)
    assert host_backoff(crawler) is backoff
    assert context.frontier is None  # no ANNALS_REDIS_URL: a crawl of its own


def test_the_defaults_are_crawler_settings_and_a_setting_changes_them():
    crawler = annals_crawler(GateAnnouncementsSpider)
    assert run_context(crawler).recheck == timedelta(days=defaults.ANNALS_RECHECK_DAYS)
    assert host_backoff(crawler).cap == defaults.ANNALS_MAX_RETRY_AFTER
    assert host_backoff(crawler).retries == defaults.ANNALS_BLOCK_RETRIES
    assert ArchivePipeline.from_crawler(crawler).batch_size == defaults.ANNALS_BATCH_SIZE

    changed = annals_crawler(
        GateAnnouncementsSpider,
        ANNALS_RECHECK_DAYS=0.5,
        ANNALS_MAX_RETRY_AFTER=7,
        ANNALS_BLOCK_RETRIES=5,
        ANNALS_BATCH_SIZE=3,
    )
    assert run_context(changed).recheck == timedelta(hours=12)
    assert host_backoff(changed).cap == 7
    assert host_backoff(changed).retries == 5
    assert ArchivePipeline.from_crawler(changed).batch_size == 3


def test_settings_without_an_annals_default_are_refused_by_name():
    settings = project_settings()
    del settings["ANNALS_BLOCK_RETRIES"], settings["ANNALS_RECHECK_DAYS"]
    with pytest.raises(MissingSettingsError, match="ANNALS_BLOCK_RETRIES, ANNALS_RECHECK_DAYS"):
        get_crawler(GateAnnouncementsSpider, settings_dict=settings)


def test_a_component_made_from_other_settings_is_refused_not_left_at_zero():
    crawler = get_crawler(GateAnnouncementsSpider, settings_dict={"ANNALS_BLOCK_BACKOFF": 1.0})
    with pytest.raises(MissingSettingsError, match="ANNALS_MAX_RETRY_AFTER"):
        HostBackoff(crawler)
    with pytest.raises(MissingSettingsError, match=re.escape("crawler.backoff.HostBackoff")):
        BlockMiddleware(crawler)
    with pytest.raises(MissingSettingsError, match=re.escape("crawler.context.RunContext")):
        run_context(crawler)


def test_the_context_opens_the_run_with_the_spider_and_the_recorder_ends_it(
    tmp_path: Path, gate_mirror
):
    """An in-process crawl of the recorded Gate pages: the context the crawler's extension
    holds is the run recorded in crawl_runs, with the status RunRecorder decided."""
    _, url = gate_mirror
    db = resolve_url(str(tmp_path / "annals.db"))
    crawler = annals_crawler(
        GateAnnouncementsSpider,
        ANNALS_DATABASE_URL=db,
        DOWNLOAD_DELAY=0,
        AUTOTHROTTLE_ENABLED=False,
        ANNALS_BLOCK_BACKOFF=0.05,
        LOG_LEVEL="WARNING",
    )
    asyncio.run(crawler.crawl_async(base_url=url))
    context = run_context(crawler)
    assert context.status == "blocked"  # two articles of the recording are blocked
    assert context.counters["blocked"] == 2
    assert context.counters["new_documents"] > 0
    engine = open_archive(db, readonly=True)
    try:
        recorded = rows(engine, "SELECT id, spider, status FROM crawl_runs")
    finally:
        engine.dispose()
    assert recorded == [(context.run_id, "gate_announcements", "blocked")]


def test_a_refused_request_is_retried_first_until_the_retries_are_spent():
    crawler = annals_crawler(GateAnnouncementsSpider, ANNALS_BLOCK_RETRIES=2)
    backoff = host_backoff(crawler)
    request = Request("https://www.gate.com/announcements", priority=3)
    first = backoff.retry(request, "annals_block_retries")
    assert first is not None
    second = backoff.retry(first, "annals_block_retries")
    assert second is not None
    assert second.meta["annals_block_retries"] == 2
    assert second.dont_filter
    assert second.priority > first.priority > request.priority  # ahead of what is queued
    assert crawler.stats is not None
    assert not crawler.stats.get_value("annals/blocked")
    assert backoff.retry(second, "annals_block_retries") is None
    assert crawler.stats.get_value("annals/blocked") == 1


def test_the_settings_module_gives_scrapy_settings_and_annals_ones_only():
    """Settings.setmodule takes every upper-case name of crawler.settings: a helper or
    constant there must not become a setting by accident."""
    from scrapy.settings import default_settings

    ours = {name for name in project_settings() if not hasattr(default_settings, name)}
    assert "ANNALS_BLOCK_RETRIES" in ours
    assert all(name.startswith("ANNALS_") for name in ours), sorted(ours)
