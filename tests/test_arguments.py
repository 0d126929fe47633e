"""Spider arguments are read by their declared types and refused when unknown or unreadable."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from scrapy.settings import Settings

from crawler.cli import project_spiders
from crawler.spiders.arguments import ArgumentError, Arguments, argument, split_private
from tests.helpers import annals_crawler


@dataclass(frozen=True)
class Listed(Arguments):
    categories: tuple[str, ...] = argument(("a", "b"), "category keys")
    page_size: int | None = argument(None, "items a page")
    sitemap: bool = argument(False, "also read the sitemap")


def test_text_is_read_by_each_fields_type():
    args = Listed.parse(
        "demo", {"full": "yes", "lang": "en, zh,", "page_size": " 10 ", "categories": "x"}
    )
    assert args == Listed(full=True, lang=("en", "zh"), page_size=10, categories=("x",))
    assert Listed.parse("demo", {}) == Listed()
    assert Listed.parse("demo", {"sitemap": "0", "base_url": None}).sitemap is False


def test_an_unknown_name_is_refused_with_the_accepted_ones():
    with pytest.raises(ArgumentError) as refused:
        Listed.parse("demo", {"catgories": "48"})
    assert str(refused.value) == (
        "demo takes no argument catgories; "
        "it takes base_url, full, lang, categories, page_size, sitemap"
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("page_size", "ten", "demo: page_size must be a whole number, not 'ten'"),
        ("page_size", "-5", "demo: page_size must be a whole number, not '-5'"),
        ("full", "maybe", "demo: full takes 1 or 0 (true/false, yes/no), not 'maybe'"),
    ],
)
def test_a_value_its_type_cannot_read_is_refused(name, value, message):
    with pytest.raises(ArgumentError, match=re.escape(message)):
        Listed.parse("demo", {name: value})


def test_values_given_by_python_code_are_kept():
    assert Listed.parse("demo", {"page_size": 5, "full": True}) == Listed(page_size=5, full=True)


def test_describe_gives_each_argument_its_form_and_help():
    rows = {name: (form, text) for name, form, text in Listed.describe()}
    assert rows["page_size"] == ("N", "items a page")
    assert rows["categories"] == ("A,B,...", "category keys (default a,b)")
    assert rows["full"] == ("1|0", "walk every listing page and fetch every item again")
    assert rows["base_url"][0] == "TEXT"


def test_scrapyd_private_arguments_are_left_to_scrapy():
    own, private = split_private({"_job": "abc", "full": "1"})
    assert own == {"full": "1"}
    assert private == {"_job": "abc"}


# --- the spiders' arguments, as Scrapy and `annals crawl` hand them over -------------------

SPIDERS = project_spiders(Settings({"SPIDER_MODULES": ["crawler.spiders"]}))


@pytest.mark.parametrize("name", sorted(SPIDERS))
def test_every_spider_refuses_a_misspelt_argument_and_takes_scrapyds_job(name):
    spider_cls = SPIDERS[name]
    with pytest.raises(ArgumentError, match=f"{name} takes no argument catgories; it takes "):
        spider_cls.from_crawler(annals_crawler(spider_cls), catgories="48")
    spider = spider_cls.from_crawler(annals_crawler(spider_cls), _job="a1b2", full="1")
    assert spider.full is True
    assert spider._job == "a1b2"  # Scrapy's own handling of what Scrapyd passes


def _annals(*args: str, db: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "archive", *args, "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_crawl_list_shows_each_spiders_arguments(tmp_path):
    result = _annals("crawl", "--list", db=tmp_path / "annals.db")
    assert result.returncode == 0, result.stderr
    listed = {line.split()[0] for line in result.stdout.splitlines() if not line.startswith(" ")}
    assert listed == set(SPIDERS)
    assert "    -a page_size=N" in result.stdout
    assert "-a sitemap=1|0" in result.stdout
    assert "-a topics=A,B,..." in result.stdout
    okx = result.stdout.split("okx_announcements", 1)[1].split("\n", 1)[1]
    okx_lines = okx.split("\n")[:5]
    assert [line.split()[1].split("=")[0] for line in okx_lines] == [
        "base_url",
        "full",
        "lang",
        "categories",
        "page_size",
    ]
    assert "takes en, zh" in okx_lines[2]


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        (
            "catgories=48",
            "okx_announcements takes no argument catgories; "
            "it takes base_url, full, lang, categories, page_size",
        ),
        ("full=maybe", "okx_announcements: full takes 1 or 0 (true/false, yes/no), not 'maybe'"),
        ("categories=delisting", "okx_announcements has no categories delisting; it knows "),
    ],
)
def test_a_bad_argument_is_refused_before_the_crawl_starts(tmp_path, argument, message):
    db = tmp_path / "annals.db"
    result = _annals(
        "crawl", "okx_announcements", "--base-url", "http://127.0.0.1:9", "-a", argument, db=db
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert not db.exists()  # refused before the archive is made or a request is sent
