"""Announcement bodies as html2json node trees (`{"node": "root"|"element"|"text", ...}`),
the form Binance's CMS serves since 2020-08, and the HTML of older ones.

One sanitizer serves every form: HTML is read into the same node tree
(`html_to_node_tree`) and rendered by `node_tree_to_html`, so one allow-list decides
what is kept; `body_html` takes a body in any form an answer holds.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import lxml.html
import orjson
from lxml import etree

from archive.normalize import html_to_text
from archive.records import ParseError
from crawler.sources.parsing import HTML_TAG, UnusableItemError, load_json


def body_html(body: Any, url: str) -> tuple[str | None, list[str]]:
    """(safe HTML, hrefs kept) of a detail body in any of its forms: a JSON node-tree
    string, a node-tree object, or an HTML string (articles before 2020-08)."""
    if body is None or (isinstance(body, str) and not body.strip()):
        return None, []
    if isinstance(body, str):
        body = _json_or_html(body, url)
    if not isinstance(body, Mapping | list):
        raise ParseError(url, f"detail body is a {type(body).__name__}, not a node tree or HTML")
    links: list[str] = []
    try:
        return node_tree_to_html(body, links), links
    except RecursionError:
        raise ParseError(url, "detail body nests too deep") from None


def html_body(markup: Any, url: str) -> tuple[str | None, str | None, list[str]]:
    """(body_html, body_text, hrefs kept) of an HTML body as an API answers one (a
    WordPress post's content, a Zendesk article, Deribit's body, a rendered Markdown
    notice): sanitized by the one allow-list, its text read from what is kept. A body
    with no tag is plain text (body_text only); none, or a blank one, is no body.
    ParseError when it is not readable HTML."""
    if not isinstance(markup, str) or not markup.strip():
        return None, None, []
    if not HTML_TAG.search(markup):
        return None, markup, []
    links: list[str] = []
    try:
        safe = node_tree_to_html(html_to_node_tree(markup), links)
    except (etree.ParserError, ValueError) as exc:
        raise ParseError(url, f"body is not readable HTML: {exc}") from exc
    except RecursionError:
        raise ParseError(url, "body nests too deep") from None
    return (safe, html_to_text(safe), links) if safe else (None, None, [])


def item_body(markup: Any, url: str, ref: str) -> tuple[str | None, str | None, list[str]]:
    """html_body of one list item: a body that is not readable HTML makes that item
    unusable (counted, its answer quarantined), not the whole page."""
    try:
        return html_body(markup, url)
    except ParseError as exc:
        raise UnusableItemError(f"{ref}: {exc.reason}") from None


def _is_json(text: str) -> bool:
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return "depth limit" in str(exc) or "recursion" in str(exc).lower()
    return True


def _json_or_html(body: str, url: str) -> Any:
    """A node tree is JSON text (an object: it starts with "{"); anything else is HTML,
    unless it is a JSON list of nodes ("[Update] ..." is HTML text)."""
    start = body.lstrip()[:1]
    if start in ("{", "["):
        try:
            return load_json(body, url, "detail body (a JSON node tree)")
        except ParseError:
            # "[Update] ..." is HTML text; a list that is JSON but too deep is refused.
            if start == "{" or _is_json(body):
                raise
    try:
        return html_to_node_tree(body)
    except (etree.ParserError, ValueError) as exc:
        raise ParseError(url, f"detail body is not readable HTML: {exc}") from exc
    except RecursionError:
        raise ParseError(url, "detail body nests too deep") from None


# What an announcement needs to keep its paragraphs, emphasis, lists, tables and links.
_KEEP_TAGS = frozenset(
    "p br strong b em i u a ul ol li table thead tbody tfoot tr th td caption "
    "h1 h2 h3 h4 h5 h6 span div blockquote".split()
)
# A browser never shows their content: it is code, not text.
_DROP_WITH_CONTENT = frozenset("script style noscript template iframe object embed".split())
_VOID_TAGS = frozenset({"br"})
_SAFE_SCHEMES = frozenset({"", "http", "https", "mailto"})
# Browsers ignore these inside a URL, so "java\tscript:" is still javascript.
_URL_IGNORED = re.compile(r"[\x00-\x20\x7f]")
_SPAN_ATTRS = frozenset({"colspan", "rowspan"})
_CELL_TAGS = frozenset({"td", "th"})


def node_tree_to_html(tree: Any, links: list[str] | None = None) -> str:
    """Safe HTML of an html2json node tree (`{"node": "root"|"element"|"text", ...}`).

    Text and attribute values are escaped; only structural tags are kept (`a` with its
    `href` when that is a web, mail or relative link; `td`/`th` with their spans).
    Unknown tags are unwrapped, keeping their children; script-like tags are dropped
    with their content; paragraphs inside a table cell become lines of that cell.
    html2json keeps entities as written, so text is unescaped once before it is
    escaped, and "&amp;" does not turn into "&amp;amp;". An attribute value may be a
    string or a list of fragments (html2json splits values on spaces: a `style` of
    `["color:hsl(0,", "0%,", "60%);"]`). Every href kept is appended to `links`.
    """
    out: list[str] = []
    _render(tree, out, cell=False, links=[] if links is None else links)
    return "".join(out)


def html_to_node_tree(markup: str) -> dict[str, Any]:
    """The html2json node tree of an HTML fragment (the body of an article from before
    2020-08), so that it is sanitized by the same allow-list as a node-tree body.

    Text is stored entity-escaped, as html2json stores it, because the renderer
    unescapes text once: "&amp;lt;" stays the four characters "&lt;" a reader saw.
    """
    fragments = lxml.html.fragments_fromstring(markup) if markup.strip() else []
    child: list[Any] = []
    for fragment in fragments:
        if isinstance(fragment, str):
            child.append(_text_node(fragment))
        else:
            child.extend(_element_nodes(fragment))
    return {"node": "root", "child": child}


def _element_nodes(element: Any) -> list[dict[str, Any]]:
    """The node of one lxml element, then the node of the text that follows it."""
    nodes: list[dict[str, Any]] = []
    if isinstance(element.tag, str):
        child = [_text_node(element.text)] if element.text else []
        for sub in element:
            child.extend(_element_nodes(sub))
        attr = {str(k): str(v) for k, v in element.attrib.items()}
        nodes.append({"node": "element", "tag": element.tag, "attr": attr, "child": child})
    else:
        nodes.append({"node": "comment"})  # comments, processing instructions
    if element.tail:
        nodes.append(_text_node(element.tail))
    return nodes


def _text_node(text: str) -> dict[str, str]:
    return {"node": "text", "text": html.escape(text, quote=False)}


def _render(node: Any, out: list[str], *, cell: bool, links: list[str]) -> None:
    if isinstance(node, list):
        for child in node:
            _render(child, out, cell=cell, links=links)
        return
    kind = node.get("node") if isinstance(node, Mapping) else None
    if kind == "text":
        text = node.get("text")
        if isinstance(text, str):
            out.append(html.escape(html.unescape(text), quote=False))
    elif kind == "root":
        _render(node.get("child") or [], out, cell=cell, links=links)
    elif kind == "element":
        _render_element(node, out, cell=cell, links=links)
    # Anything else (comments, node kinds added later) carries no reader-visible text.


def _render_element(
    node: Mapping[str, Any], out: list[str], *, cell: bool, links: list[str]
) -> None:
    tag = str(node.get("tag") or "").lower()
    children = node.get("child") or []
    if tag in _DROP_WITH_CONTENT:
        return
    if tag not in _KEEP_TAGS:
        _render(children, out, cell=cell, links=links)
        return
    if tag == "p" and cell:
        # The CMS wraps every cell's text in <p>; as blocks they would break each table
        # row over several lines of text, so a cell keeps their text, a <br> between.
        if not out[-1].startswith(("<td", "<th")):
            out.append("<br>")
        _render(children, out, cell=cell, links=links)
        return
    out.append(f"<{tag}{_attrs(tag, node.get('attr'), links)}>")
    if tag not in _VOID_TAGS:
        _render(children, out, cell=cell or tag in _CELL_TAGS, links=links)
        out.append(f"</{tag}>")


def _attrs(tag: str, attrs: Any, links: list[str]) -> str:
    if not isinstance(attrs, Mapping):
        return ""
    kept: list[str] = []
    for name, value in attrs.items():
        text = _attr_text(value)
        if tag == "a" and name == "href" and text.strip() and _safe_href(text):
            kept.append(f' href="{html.escape(text.strip(), quote=True)}"')
            links.append(text.strip())
        elif tag in _CELL_TAGS and name in _SPAN_ATTRS and text.isdigit():
            kept.append(f' {name}="{text}"')
    return "".join(kept)


def _attr_text(value: Any) -> str:
    """An attribute's value: a string, or html2json's list of space-split fragments."""
    if isinstance(value, list):
        return " ".join(str(part) for part in value if not isinstance(part, Mapping | list))
    return "" if isinstance(value, Mapping) or value is None else str(value)


def _safe_href(href: str) -> bool:
    try:
        scheme = urlsplit(_URL_IGNORED.sub("", href)).scheme.lower()
    except ValueError:
        return False
    return scheme in _SAFE_SCHEMES
