"""Gate's article page is read with lxml walks instead of XPaths over the whole page, and
its bytes are parsed as they come when they are clean UTF-8: each must find exactly what
the XPath (cssselect's translation of the CSS) and the decode-strip-encode route found,
on every Gate page of the fixtures and the generated mirrors and on spoilt variants of
them (second top-level element, classes split by tabs, repeated or commented elements,
broken bytes)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from parsel.csstranslator import HTMLTranslator

from crawler import synthetic
from crawler.sources import gate
from tests.helpers import FIXTURES

_CSS = HTMLTranslator()
TITLE_XPATHS = [etree.XPath(_CSS.css_to_xpath(css)) for css in ("article h1", "main h1", "h1")]
BODY_XPATH = etree.XPath(_CSS.css_to_xpath(gate.ARTICLE_BODY_CSS))
NEXT_DATA_XPATH = etree.XPath('//script[@id="__NEXT_DATA__"]/text()', smart_strings=False)
NEXT_DATA = re.compile(rb'<script id="__NEXT_DATA__"[^>]*>.*?</script>', re.S)
FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


def gate_pages() -> list[bytes]:
    paths = sorted((FIXTURES / "gate").glob("*.html")) + sorted((FIXTURES / "bad").glob("*.html"))
    pages = [path.read_bytes() for path in paths]
    for routes, _ in (synthetic.generate(3), synthetic.generate_recorded(5)):
        pages += [r.content for r in routes if r.path.startswith("/announcements/article/")]
    return pages


def spoilt(page: bytes) -> Iterator[bytes]:
    """The page and the shapes a lookup could read differently from the XPath."""
    yield page
    yield NEXT_DATA.sub(b"", page)
    yield NEXT_DATA.sub(b'<script id="__NEXT_DATA__"></script>', page)
    yield NEXT_DATA.sub(lambda m: b"<!--" + m[0] + b"-->", page)
    yield NEXT_DATA.sub(lambda m: b"<script id='__NEXT_DATA__'>{}</script>" + m[0], page)
    yield NEXT_DATA.sub(lambda m: b"</html><!-- x --><p>after</p>" + m[0], page)  # a second <html>
    yield page.replace(b'<script id="__NEXT_DATA__"', b"<SCRIPT type=x ID=__NEXT_DATA__")
    yield page.replace(b"rich-text", b"richtext")
    yield page.replace(b"rich-text", b"x\trich-text\ny", 1)
    yield page.replace(b"rich-text", b"rich-texts")
    yield page.replace(b"<body>", b'<body><div class="rich-text">first</div>', 1)
    yield page.replace(b"<h1", b'<div class="rich-text"><h1', 1)
    yield page.replace(b"<body>", b"<body><h1>outside 2020-01-01 00:00 UTC 3 views</h1>", 1)
    yield page.replace(b"<h1", b"<!-- <h1>commented</h1> --><h1", 1)
    yield page.replace(b"<article", b"<main").replace(b"</article>", b"</main>")
    yield page.replace(b"<article", b"<section").replace(b"</article>", b"</section>")
    yield page.replace(b"<h1", b"<svg><h1>in svg</h1></svg><h1", 1)
    yield page[: len(page) * 2 // 3]
    yield page[: len(page) // 2] + b"\x00\x07\xff\xfe" + page[len(page) // 2 :]


CASES = [variant for page in gate_pages() for variant in spoilt(page)]


def lookups(root: etree._Element) -> tuple[object, object, object]:
    title = gate._article_title(root)
    body = gate._article_body(root)
    return title, body, gate._next_data_text(root)


def xpaths(root: etree._Element) -> tuple[object, object, object]:
    title = next((found[0] for found in (x(root) for x in TITLE_XPATHS) if found), None)
    bodies = BODY_XPATH(root)
    texts = NEXT_DATA_XPATH(root)
    return title, bodies[0] if bodies else None, texts[0] if texts else None


def test_the_cases_hold_the_tricky_shapes():
    roots = [gate.page_root(page) for page in CASES]
    assert any(len(list(root.itersiblings(etree.Element))) for root in roots)
    assert any(xpaths(root)[1] is None for root in roots)
    assert any(xpaths(root)[2] is None for root in roots)


@pytest.mark.parametrize("page", CASES)
def test_lookups_find_what_the_xpaths_find(page):
    root = gate.page_root(page)
    title, body, text = lookups(root)
    want_title, want_body, want_text = xpaths(root)
    assert title is want_title
    assert body is want_body
    assert text == want_text


html_atoms = st.sampled_from(
    [
        "<article>", "</article>", "<main>", "</main>", "<h1>", "</h1>", "<h1 class=rich-text>",
        '<div class="a rich-text">', "<div class='rich-text\tb'>", '<p class="rich-texts">',
        "</div>", '<script id="__NEXT_DATA__">{"a": 1}</script>', "<script id=__NEXT_DATA__>",
        "</script>", "<!--", "-->", "</html>", "<html>", "<body>", "</body>", "<svg>", "</svg>",
        "text", " ", "\n", "<textarea>", "<title>", "<br>",
    ]
)  # fmt: skip


@FUZZ
@given(st.lists(html_atoms, max_size=30))
def test_lookups_find_what_the_xpaths_find_in_random_markup(atoms):
    root = gate.page_root("".join(atoms).encode())
    title, body, text = lookups(root)
    want_title, want_body, want_text = xpaths(root)
    assert (title is want_title, body is want_body, text) == (True, True, want_text)


def text_route(body: bytes | str) -> bytes:
    """What page_root parsed before: the page's text (gate._page_text), stripped, encoded."""
    return gate._page_text(body).strip().replace("\x00", "").encode("utf-8") or b"<html/>"


EDGES = [b"", b" ", b"\n\t", b"\x0b", b"\x0c", b"\x00", b"\x1f", b"\xc2\xa0", b"\xe3\x80\x80"]
EDGES += [b"\xef\xbb\xbf", b"\xff", b"\xc3", b"<", b">", b"a", b"\xc3\xa9", b"\r\n"]


@pytest.mark.parametrize("page", gate_pages()[:3])
@pytest.mark.parametrize("before", EDGES)
@pytest.mark.parametrize("after", EDGES)
def test_page_bytes_are_the_text_route_bytes(page, before, after):
    body = before + page + after
    assert gate._page_bytes(body) == text_route(body)
    assert gate._page_bytes(body.decode("utf-8", "replace")) == text_route(body)


@FUZZ
@given(st.binary(max_size=40), st.binary(max_size=40))
def test_page_bytes_are_the_text_route_bytes_for_any_bytes(head, tail):
    body = head + b"<html><body><p>\xc3\xa9 x</p></body></html>" + tail
    assert gate._page_bytes(body) == text_route(body)
    assert gate._page_bytes(head + tail) == text_route(head + tail)


def serialized(root: etree._Element) -> list[bytes]:
    """The whole document lxml parsed: the root and what it made after it."""
    return [etree.tostring(top) for top in (root, *root.itersiblings())]


@pytest.mark.parametrize("page", CASES)
def test_page_root_parses_the_tree_parsel_parses(page):
    # page_root leaves out lxml's table of id attributes (collect_ids), nothing else.
    assert serialized(gate.page_root(page)) == serialized(gate.page_selector(page).root)


@FUZZ
@given(st.lists(html_atoms, max_size=30))
def test_page_root_parses_the_tree_parsel_parses_in_random_markup(atoms):
    page = "".join(atoms).encode()
    assert serialized(gate.page_root(page)) == serialized(gate.page_selector(page).root)


@pytest.mark.parametrize("byte", range(256))
def test_control_bytes_are_found_wherever_they_stand(byte):
    # _no_control_bytes (a table translation compared) says what deleting them said.
    for body in (bytes([byte]), b"<p>" + bytes([byte]) + b"</p>", b"x" * 40 + bytes([byte])):
        expected = len(body.translate(None, gate._CONTROL_BYTES)) == len(body)
        assert gate._no_control_bytes(body) is expected
