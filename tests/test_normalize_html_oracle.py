"""html_to_text against the plain reading of its rules: a walk that looks each list
item's number up in its parent, and normalize_text over the whole joined text (the
markers' runs replaced by a pattern). html_to_text normalizes each text alone and
numbers list items as it walks them; every source's HTML of the fixtures and random
markup (odd spaces, carriage returns, NUL, invisible and combining characters, stray
<html> and <body>) must come out the same, errors included."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree, html

from archive import normalize
from archive.normalize import html_to_text, normalize_text
from crawler import synthetic
from tests.helpers import FIXTURES

FUZZ = settings(
    max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


def reference(markup: str | None) -> str:
    if not markup or not markup.strip():
        return ""
    try:
        parts = html.fragments_fromstring(markup, parser=etree.HTMLParser())
    except (etree.ParserError, ValueError):
        return normalize_text(markup)
    chunks: list[str] = []
    for part in parts:
        if isinstance(part, str):
            chunks.append(part)
        else:
            _walk(part, chunks)
    text = "".join(chunks).replace("\n", " ")
    return normalize_text(normalize._MARKS.sub(normalize._break, text).strip("\n"))


def _walk(el: Any, out: list[str]) -> None:
    tag = el.tag if isinstance(el.tag, str) else ""
    if tag in normalize._SKIP_TAGS:
        if el.tail:
            out.append(el.tail)
        return
    marker = (
        normalize._PARA
        if tag in normalize._BLOCK_TAGS
        else normalize._LINE
        if tag in normalize._LINE_TAGS
        else None
    )
    if marker:
        out.append(marker)
    if tag == "li":
        parent = el.getparent()
        if parent is not None and parent.tag == "ol":
            out.append(f"{list(parent).index(el) + 1}. ")
        else:
            out.append("- ")
    if tag in normalize._CELL_TAGS and el.getprevious() is not None:
        out.append(" | ")
    if isinstance(el.tag, str) and el.text:
        out.append(el.text)
    for child in el:
        _walk(child, out)
    if marker and tag != "br":
        out.append(marker)
    if el.tail:
        out.append(el.tail)


def outcome(function: Any, markup: str | None) -> tuple[str, str]:
    try:
        return "text", function(markup)
    except Exception as exc:  # the errors must be the same too
        return type(exc).__name__, re.sub(r"0x[0-9a-f]+", "", str(exc))


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def fixture_html() -> list[str]:
    """Every HTML text of the fixtures, of all sources: the pages, their blocks, and
    every string of the JSON answers and the pages' JSON that holds a tag."""
    texts: set[str] = set()
    # The sources' fixture folders are links to the mirrors: the walk follows them.
    names = [Path(top, n) for top, _, files in os.walk(FIXTURES, followlinks=True) for n in files]
    for path in sorted(names):
        if path.suffix not in (".html", ".json", ".jsonl", ".xml"):
            continue
        text = path.read_bytes().decode("utf-8", "replace")
        texts.add(text)
        blocks = re.finditer(r"<(div|article|section|ul|ol|table)\b.*?</\1>", text, re.S)
        texts.update(block[0] for block in blocks)
        scripts = re.findall(r'<script[^>]*type="application/json"[^>]*>(.*?)</script>', text, re.S)
        payloads = {".json": [text], ".jsonl": text.splitlines()}.get(path.suffix, scripts)
        for payload in payloads:
            try:
                texts.update(s for s in _strings(json.loads(payload)) if "<" in s)
            except ValueError:
                continue
    routes, _ = synthetic.generate_recorded(5)
    texts.update(r.content.decode() for r in routes if r.path.startswith("/announcements/"))
    return sorted(texts)


FIXTURE_HTML = fixture_html()


def test_the_fixtures_give_many_html_texts():
    assert len(FIXTURE_HTML) > 1000


def same_as_reference(markup: str | None) -> bool:
    """html_to_text gives what the reference gives; where the reference crashed on lxml.html's
    one-<body> assertion (no body, or two), a text (test_normalize checks which)."""
    expected = outcome(reference, markup)
    if expected[0] == "AssertionError":
        return outcome(html_to_text, markup)[0] == "text"
    return outcome(html_to_text, markup) == expected


def test_html_to_text_is_the_reference_on_every_fixture_html():
    different = [m for m in FIXTURE_HTML if not same_as_reference(m)]
    assert different == []


@pytest.mark.parametrize(
    "markup",
    [None, "", " ", "\n", "\x00", "\x00P", "a\x00Pb", "a\x00Xb", "<html></html>", "<!doctype html>",
     "<p>a</p></body><body><p>b</p>", "a\r\nb<p>c\rd</p>", "<p>e\u0301</p><p>\u0301x</p>",
     "<ol><li>1<!-- c --><li>2</ol><ol><p>x</p><li>3</ol>", "<p> \xa0 </p><br> <br><p>x</p>",
     "<td>a</td><!-- c --><td>b</td>", "&#13;x&#0;y&#x200b;z", "<p>\u200b</p><p>\ufeff</p>",
     "<li>a<li> <li>b", "a<br>\xa0<br>b", "a<br><br>b", " <br>a<br> ", "<p>a \x1c</p>\xad b<br>",
     "\u3000<li>\u3000a\u3000 b\u3000</li>\u2028", "é<br> <p>e\u0301</p>", "<li>가\u11a8<li>\u11a8"],
)  # fmt: skip
def test_html_to_text_is_the_reference_on_odd_markup(markup):
    assert same_as_reference(markup)


markup_atoms = st.sampled_from(
    ["<p>", "</p>", "<div>", "</div>", "<br>", "<li>", "</li>", "<ol>", "</ol>", "<ul>", "<table>",
     "<tr>", "<td>", "<th>", "</td>", "<script>x</script>", "<style>y</style>", "<!-- c -->",
     "<?pi x?>", "<h1>", "<pre>", "<span>", "</span>", "<template>t</template>", " ", "  ", "\n",
     "\r\n", "\r", "\t", "\x0b", "\x0c", "\x00", "\x00P", "\x00L", "\u200b", "\ufeff", "\xa0",
     "\u3000", "\u2028", "\x85", "\x1c", "e\u0301", "\u0301", "a", "word", "&amp;", "&nbsp;",
     "&#13;", "é", "中文", "<html>", "<body>", "</body>", "<!doctype html>", "<", ">", "&",
     "<hr>", "<dl><dt>a<dd>b</dl>", "<?xml version='1.0' encoding='utf-8'?>"]
)  # fmt: skip


@FUZZ
@given(st.lists(markup_atoms, max_size=40))
def test_html_to_text_is_the_reference_on_random_markup(atoms):
    assert same_as_reference("".join(atoms))
