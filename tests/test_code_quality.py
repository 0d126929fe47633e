"""ruff and mypy stay clean: the checks the README promises, run as tests."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path
from typing import Any

from scrapy.settings import Settings
from scrapy.spiderloader import SpiderLoader
from scrapy.utils.misc import is_generator_with_return_value

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )


def test_ruff_lint_is_clean():
    result = _run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean():
    result = _run("ruff", "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean():
    result = _run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_archive_never_imports_scrapy():
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "archive").rglob("*.py")
        if any(
            line.strip().startswith(
                ("import scrapy", "from scrapy", "from crawler", "import crawler")
            )
            for line in path.read_text().splitlines()
        )
    ]
    assert offenders == []


def _callbacks(spider: type) -> list[Any]:
    """The spider's methods Scrapy calls with a response or a failure."""
    methods = [getattr(spider, name) for name in dir(spider) if not name.startswith("__")]
    return [
        method
        for method in methods
        if inspect.isfunction(method)
        and list(inspect.signature(method).parameters)[1:2] in (["response"], ["failure"])
    ]


def test_no_spider_callback_is_a_generator_that_returns_a_value():
    # Scrapy drops a generator callback's return value; its check of every response is
    # off (crawler/settings.py WARN_ON_GENERATOR_RETURN_VALUE), so it runs here once.
    settings = Settings()
    settings.setmodule("crawler.settings")
    loader = SpiderLoader.from_settings(settings)
    spiders = [loader.load(name) for name in loader.list()]
    callbacks = [c for spider in spiders for c in _callbacks(spider)]
    assert len(callbacks) >= 2 * len(spiders)
    offenders = [c.__qualname__ for c in callbacks if is_generator_with_return_value(c)]
    assert offenders == []
