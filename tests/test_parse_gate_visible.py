"""Gate's visible meta lines (time and views) are read lazily: the page is searched for
its body only when a text read lies in an element of the body's class, and the views
count is taken from the first texts that hold it. Each must give what the plain reading
gives (the body found first, every meta text read, the patterns over their join), on
every Gate page of the fixtures and mirrors, their spoilt variants and random markup."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from crawler.sources import gate
from tests.helpers import FIXTURES
from tests.test_parse_gate_lookups import CASES, FUZZ, html_atoms


def reference_meta(root: etree._Element) -> str:
    """The time and views lines as read before: the body first, then the texts after the
    title up to it, ARTICLE_META_SCAN at most."""
    h1 = gate._article_title(root)
    if h1 is None:
        return ""
    body = gate._article_body(root)
    texts: list[str] = []
    for text, parent in gate._following_texts(h1):
        if not text.strip(gate._XPATH_SPACE):
            continue
        if body is not None and (parent is body or body in parent.iterancestors()):
            break
        texts.append(text.strip())
        if len(texts) == gate.ARTICLE_META_SCAN:
            break
    return " ".join(texts)


def reference(root: etree._Element) -> tuple[str, object, int | None]:
    meta = reference_meta(root)
    views = gate.VISIBLE_VIEWS_RE.search(meta)
    when = gate.VISIBLE_TIME_RE.search(meta)
    return meta, when[0] if when else None, gate.parse_count(views[1]) if views else None


def lazy(root: etree._Element, views_first: bool) -> tuple[str, object, int | None]:
    visible = gate._Visible(root)
    views = visible.views if views_first else None
    meta = visible._meta
    when = gate.VISIBLE_TIME_RE.search(meta)
    return meta, when[0] if when else None, views if views_first else visible.views


def test_the_cases_hold_views_split_and_bodies_before_the_title():
    roots = [gate.page_root(page) for page in CASES]
    assert any(reference(root)[2] is not None for root in roots)
    assert any(
        reference(root)[2] is None and gate._article_title(root) is not None for root in roots
    )


@pytest.mark.parametrize("views_first", [True, False])
@pytest.mark.parametrize("page", CASES)
def test_the_meta_lines_are_the_plain_reading(page, views_first):
    root = gate.page_root(page)
    assert lazy(root, views_first) == reference(root)


meta_atoms = html_atoms | st.sampled_from(
    ["8,638 views", "12", " views", "views", "1.2K", "万次浏览", "2026-05-22 07:56:11", "UTC",
     "(UTC+8)", "<span>", "</span>", "<div class=meta>", "3 views!", "x views"]
)  # fmt: skip


@FUZZ
@given(st.lists(meta_atoms, max_size=40), st.booleans())
def test_the_meta_lines_are_the_plain_reading_in_random_markup(atoms, views_first):
    root = gate.page_root("".join(atoms).encode())
    assert lazy(root, views_first) == reference(root)


def test_the_views_of_a_recorded_page_do_not_search_for_the_body(monkeypatch):
    page = (FIXTURES / "gate" / "article_51322.html").read_bytes()
    root = gate.page_root(page)
    want = reference(root)[2]

    def searched(root: etree._Element) -> None:
        raise AssertionError("the body was searched for")

    monkeypatch.setattr(gate, "_article_body", searched)
    assert want == 8638
    assert gate._Visible(root).views == want
