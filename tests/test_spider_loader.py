"""A crawl imports only the modules of the spiders it runs (crawler.spiders.SpiderLoader),
and its start-up runs without the cyclic garbage collector (archive.cliutil)."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import scrapy
from scrapy.settings import Settings
from scrapy.spiderloader import SpiderLoader as ScrapySpiderLoader

from archive import cliutil
from crawler.cli import project_settings, project_spiders
from crawler.spiders import SPIDERS, SpiderLoader
from tests.helpers import FAST


def scrapy_loader() -> ScrapySpiderLoader:
    return ScrapySpiderLoader.from_settings(project_settings())


def test_the_table_names_every_spider_and_its_module():
    scrapys = scrapy_loader()
    assert sorted(SPIDERS) == sorted(scrapys.list())
    assert {name: scrapys.load(name).__module__ for name in scrapys.list()} == SPIDERS


def test_the_project_loads_the_spiders_scrapy_finds():
    assert project_settings().get("SPIDER_LOADER_CLASS") == "crawler.spiders.SpiderLoader"
    loader = SpiderLoader.from_settings(project_settings())
    scrapys = scrapy_loader()
    assert sorted(loader.list()) == sorted(scrapys.list())
    for name in scrapys.list():
        assert loader.load(name) is scrapys.load(name)
    with pytest.raises(KeyError, match="Spider not found: nosuch"):
        loader.load("nosuch")
    request = scrapy.Request("https://www.gate.com/announcements")
    assert loader.find_by_request(request) == scrapys.find_by_request(request)


def test_other_spider_modules_are_loaded_as_scrapy_does():
    settings = Settings({"SPIDER_MODULES": ["crawler.spiders.gate"]})
    loader = SpiderLoader.from_settings(settings)
    assert loader.list() == ScrapySpiderLoader.from_settings(settings).list()
    assert loader.list() == ["gate_announcements"]
    with pytest.raises(KeyError):
        loader.load("okx_announcements")


def test_project_spiders_are_a_mapping_in_name_order():
    spiders = project_spiders(project_settings())
    assert list(spiders) == sorted(SPIDERS)
    assert len(spiders) == len(SPIDERS)
    assert "gate_square" in spiders
    assert "nosuch" not in spiders
    assert spiders["gate_square"].name == "gate_square"
    with pytest.raises(KeyError):
        spiders["nosuch"]
    assert dict(spiders.items()) == {n: scrapy_loader().load(n) for n in sorted(SPIDERS)}


# Loads one spider in a new process, then names the spider and source modules imported.
LOAD_THEN_NAME_MODULES = """
import sys
from crawler.cli import project_settings, project_spiders
project_spiders(project_settings())[sys.argv[1]]
print(*sorted(m for m in sys.modules if m.startswith(("crawler.spiders.", "crawler.sources."))))
"""


def modules_after_loading(name: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", LOAD_THEN_NAME_MODULES, name],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return set(done.stdout.split())


def test_loading_a_spider_imports_its_module_only():
    gate = modules_after_loading("gate_announcements")
    assert "crawler.spiders.gate" in gate
    assert not gate & {"crawler.spiders.api", "crawler.spiders.gate_square"}
    assert "crawler.sources.upbit" not in gate
    okx = modules_after_loading("okx_announcements")
    assert "crawler.spiders.api" in okx
    assert "crawler.spiders.gate" not in okx


# Runs `annals crawl ...` as the console script does, then says what it imported and
# what the collector does after it.
CRAWL_THEN_REPORT = """
import gc, sys
from archive.cli import main
try:
    main()
except SystemExit as exc:
    assert exc.code in (0, 3), exc.code  # 3: Gate's mirror blocks two articles on purpose
print("api imported:", "crawler.spiders.api" in sys.modules)
print("collector enabled:", gc.isenabled(), "frozen:", gc.get_freeze_count() > 0)
print("youngest generation collected after:", gc.get_threshold()[0])
"""


def test_a_crawl_imports_only_its_spider_and_collects_garbage(tmp_path: Path, gate_mirror):
    _, url = gate_mirror
    archive = tmp_path / "archive"
    archive.mkdir()
    command = ["crawl", "gate_announcements", "--db", str(archive / "a.db"), "--base-url", url]
    quiet = dict(os.environ, PYTHONWARNINGS="ignore::DeprecationWarning")
    script = [sys.executable, "-c", CRAWL_THEN_REPORT, *command, *FAST]
    output = subprocess.check_output(script, text=True, env=quiet, timeout=120)
    assert "gate_announcements: blocked (run 1)" in output
    last = output.splitlines()[-3:]
    assert last == [
        "api imported: False",
        "collector enabled: True frozen: True",
        f"youngest generation collected after: {cliutil.CRAWL_GC_THRESHOLD}",
    ]
    # Nothing left open beside the archive: its WAL was checkpointed and removed.
    assert sorted(p.name for p in archive.iterdir()) == ["a.db", "a.db.lock"]


@pytest.fixture
def collector() -> Iterator[None]:
    """The collector as a test found it, and nothing left frozen by one."""
    owned, enabled, threshold = cliutil._Process.owned, gc.isenabled(), gc.get_threshold()
    yield
    cliutil._Process.owned, cliutil._Process.starting = owned, False
    gc.unfreeze()
    gc.set_threshold(*threshold)
    if enabled:
        gc.enable()


def test_start_up_without_the_collector_only_in_the_annals_process(collector):
    cliutil._Process.owned = False  # a test or a script calling a command
    threshold = gc.get_threshold()
    cliutil.starting_up()
    assert gc.isenabled()
    cliutil.started()
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == threshold

    with cliutil.command_process():
        assert cliutil._Process.owned
        cliutil.starting_up()
        assert not gc.isenabled()
        cliutil.started()
        assert gc.isenabled()
        assert gc.get_threshold() == (cliutil.CRAWL_GC_THRESHOLD, *threshold[1:])
        frozen = gc.get_freeze_count()
        assert frozen > 0
        cliutil.started()  # once only
        assert gc.isenabled()
        assert gc.get_freeze_count() == frozen
    assert gc.get_freeze_count() > 0  # what was left at the command's end too
