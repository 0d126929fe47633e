"""Spider arguments are read by their declared types and refused when unknown or unreadable."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from crawler.spiders.arguments import ArgumentError, Arguments, argument, split_private


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
