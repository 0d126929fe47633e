"""What `annals crawl` imports before and beside the pages: not the components annals'
settings switch off, nor Alembic for an archive already at the current schema, nor rich
when it has no error to print."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from scrapy.core.downloader.middleware import DownloaderMiddlewareManager

from archive.cliutil import Exit, archive_errors
from archive.db import ArchiveError, ArchiveNotFoundError, NeedsUpgradeError
from archive.diff import NothingToCompare, UnknownDocument
from archive.query import QueryRefused
from archive.targets import TargetError, TargetExistsError
from crawler.extensions import SWITCHED_OFF
from tests.helpers import FAST, annals_crawler

# Runs `annals crawl ...` as the console script does, then names the libraries of
# components a crawl into an archive at head never uses.
CRAWL_THEN_NAME_IMPORTS = """
import sys
from archive.cli import main
try:
    main()
except SystemExit as exc:
    assert exc.code in (0, 3), exc.code  # 3: Gate's mirror blocks two articles on purpose
unused = {"alembic", "aiohttp", "tldextract", "requests", "rich"}
print("imported:", *sorted({name.partition(".")[0] for name in sys.modules} & unused))
"""


def components(**settings: object) -> tuple[list[str], list[str]]:
    """The extensions and downloader middlewares a crawl with annals' settings runs."""
    crawler = annals_crawler(**settings)
    downloader = DownloaderMiddlewareManager.from_crawler(crawler)
    return (
        [type(ext).__qualname__ for ext in crawler.extensions.middlewares],
        [type(mw).__qualname__ for mw in downloader.middlewares],
    )


def test_switched_off_components_are_left_out_and_nothing_else():
    without_the_addon = {"ADDONS": {"crawler.frontier.FrontierAddon": 0}}
    assert components() == components(**without_the_addon)
    crawler = annals_crawler()
    for components_setting, path in SWITCHED_OFF.values():
        assert path not in crawler.settings.getwithbase(components_setting)
    assert not crawler.addons.addons  # the addon is not listed as running


def test_a_component_switched_on_is_kept():
    assert "CookiesMiddleware" in components(COOKIES_ENABLED=True)[1]
    crawler = annals_crawler(**dict.fromkeys(SWITCHED_OFF, True))
    for components_setting, path in SWITCHED_OFF.values():
        assert path in crawler.settings.getwithbase(components_setting)


def test_a_crawl_into_an_archive_at_head_imports_no_unused_library(tmp_path: Path, gate_mirror):
    _, url = gate_mirror
    db = tmp_path / "annals.db"
    command = ["crawl", "gate_announcements", "--db", str(db), "--base-url", url, *FAST]

    def imported() -> str:
        done = subprocess.run(
            [sys.executable, "-c", CRAWL_THEN_NAME_IMPORTS, *command],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"},
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.splitlines()[-1]

    assert imported() == "imported: alembic"  # a new archive: the migrations ran
    assert imported() == "imported:"


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ArchiveNotFoundError, Exit.ARCHIVE),
        (NeedsUpgradeError, Exit.ARCHIVE),
        (QueryRefused, Exit.REFUSED),
        (TargetExistsError, Exit.REFUSED),
        (TargetError, Exit.USAGE),
        (UnknownDocument, Exit.USAGE),
        (NothingToCompare, Exit.USAGE),
        (ArchiveError, Exit.FAILED),
    ],
)
def test_each_archive_error_has_its_exit_code(error: type[Exception], code: Exit):
    # archive.diff's errors are told apart once raised: the module is not imported before.
    with pytest.raises(typer.Exit) as raised, archive_errors():
        raise error("what happened")
    assert raised.value.exit_code == code
